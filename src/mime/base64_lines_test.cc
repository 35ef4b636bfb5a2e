// The line-aware base64 codec against GMime's decoder and GLib's encoder, which it replaces.
#include "mime/base64_lines.h"

#include <gmime/gmime.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

namespace blindlist::mime {
namespace {

TEST(Base64LinesTest, RoundTripAndMatchesGLib) {
  std::mt19937 rng(4648);
  for (std::size_t size : {0, 1, 2, 3, 4, 56, 57, 58, 100, 1000, 65537}) {
    Bytes data(size);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    for (std::size_t line : {64, 76}) {
      for (std::string_view eol : {std::string_view("\n"), std::string_view("\r\n")}) {
        std::string ours;
        AppendBase64Lines(data, line, eol, ours);
        EXPECT_EQ(ours.size(), Base64LinesSize(size, line, eol.size()));
        gchar* glib = g_base64_encode(data.data(), data.size());
        std::string expected;
        const std::string_view text(glib);
        for (std::size_t pos = 0; pos < text.size(); pos += line) {
          expected += text.substr(pos, line);
          expected += eol;
        }
        g_free(glib);
        EXPECT_EQ(ours, expected) << size << " " << line;
        if (size == 0) continue;
        auto back = DecodeBase64Lines(ours);
        ASSERT_TRUE(back.ok()) << back.error().message;
        EXPECT_EQ(*back, data);
      }
    }
  }
}

TEST(Base64LinesTest, PiecesMakeTheSameLines) {
  std::mt19937 rng(2045);
  Bytes data(5000);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (std::size_t size : {0, 1, 2, 3, 56, 57, 58, 4999, 5000}) {
    const ByteView whole(data.data(), size);
    std::string expected;
    AppendBase64Lines(whole, 76, "\r\n", expected);
    for (std::size_t piece : {1, 2, 3, 5, 57, 100, 4096}) {
      Base64LineEncoder encoder(76, "\r\n");
      std::string out = "x";  // appends after what is there
      for (std::size_t pos = 0; pos < size; pos += piece) {
        encoder.Append(whole.subspan(pos, std::min(piece, size - pos)), out);
      }
      encoder.Finish(out);
      EXPECT_EQ(out, "x" + expected) << size << " in pieces of " << piece;
    }
  }
}

TEST(Base64LinesTest, DecodesAsGMimeDoes) {
  for (const char* text :
       {"QQ==", "QUI=", "QUJD", "QR==", "QUJ=", " Q U\r\nJ D \n", "QUJDQQ==\n"}) {
    auto ours = DecodeBase64Lines(text);
    ASSERT_TRUE(ours.ok()) << text;
    std::string compact;
    for (const char* p = text; *p; ++p) {
      if (*p != ' ' && *p != '\r' && *p != '\n' && *p != '\t') compact += *p;
    }
    Bytes gm(compact.size());
    int state = 0;
    guint32 save = 0;
    gm.resize(
        g_mime_encoding_base64_decode_step(reinterpret_cast<const unsigned char*>(compact.data()),
                                           compact.size(), gm.data(), &state, &save));
    EXPECT_EQ(*ours, gm) << text;
  }
}

TEST(Base64LinesTest, RefusesWhatIsNotBase64) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "base64 text is empty"},
      {" \n", "base64 text is empty"},
      {"QUJ", "base64 length 3 is not a multiple of 4 (truncated or badly padded)"},
      {"Q===", "base64 has more than two '=' pad characters"},
      {"QQ==QUJD", "base64 continues after its '=' padding"},
      {"QU*D", "invalid character 0x2a in base64 at offset 2"},
  };
  for (const auto& [text, message] : cases) {
    auto r = DecodeBase64Lines(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, "bad-base64");
    EXPECT_EQ(r.error().message, message);
  }
}

}  // namespace
}  // namespace blindlist::mime
