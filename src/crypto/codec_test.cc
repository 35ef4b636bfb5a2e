// The one base64 (RFC 4648) and hex codec of blindlist/base64.h and blindlist/bytes.h, decoded in
// constant time: checked here against table-driven references over every character.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "blindlist/base64.h"
#include "blindlist/bytes.h"

namespace blindlist {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

TEST(CodecTest, Base64RoundTripsAndMatchesTheAlphabet) {
  std::mt19937 rng(4648);
  for (std::size_t size = 0; size < 70; ++size) {
    Bytes data(size);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    const std::string text = Base64Encode(data);
    ASSERT_EQ(text.size(), (size + 2) / 3 * 4);
    // The reference: 6 bits at a time through the alphabet.
    std::string expected;
    for (std::size_t i = 0; i < size; i += 3) {
      std::uint32_t g = std::uint32_t{data[i]} << 16;
      if (i + 1 < size) g |= std::uint32_t{data[i + 1]} << 8;
      if (i + 2 < size) g |= data[i + 2];
      for (std::size_t k = 0; k < 4; ++k) {
        expected += k <= size - i ? kAlphabet[(g >> (18 - 6 * k)) & 63] : '=';
      }
    }
    EXPECT_EQ(text, expected) << size;
    Bytes back;
    ASSERT_TRUE(Base64Decode(text, back)) << text;
    EXPECT_EQ(back, data);
    SecretBytes secret;
    ASSERT_TRUE(Base64Decode(text, secret)) << text;
    EXPECT_EQ(Bytes(secret.data(), secret.data() + secret.size()), data);
  }
}

TEST(CodecTest, Base64RefusesEveryCharacterOutsideTheAlphabet) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool in_alphabet = kAlphabet.find(ch) != std::string_view::npos;
    for (std::size_t at = 0; at < 4; ++at) {
      std::string text = "QUEE";
      text[at] = ch;
      Bytes out;
      // '=' is padding, valid only at the end ("QUE=" is canonical, "QU=E" is not).
      const bool want = in_alphabet || (ch == '=' && at == 3);
      EXPECT_EQ(Base64Decode(text, out), want) << c << " at " << at;
      if (!want) {
        EXPECT_TRUE(out.empty());
      }
    }
  }
  Bytes out;
  EXPECT_FALSE(Base64Decode("QR==", out));  // stray bits under the padding
  EXPECT_FALSE(Base64Decode("QUJ", out));
  EXPECT_FALSE(Base64Decode("QQ==QUJD", out));
}

TEST(CodecTest, HexRoundTripsInEitherCaseAndRefusesTheRest) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  const std::string hex = ToHex(all);
  std::string expected;
  for (int i = 0; i < 256; ++i) {
    expected += "0123456789abcdef"[i >> 4];
    expected += "0123456789abcdef"[i & 15];
  }
  EXPECT_EQ(hex, expected);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& text : {hex, upper}) {
    Bytes back;
    ASSERT_TRUE(FromHex(text, back));
    EXPECT_EQ(back, all);
    SecretBytes secret;
    ASSERT_TRUE(FromHex(text, secret));
    EXPECT_EQ(secret.size(), all.size());
  }
  const std::string_view digits = "0123456789abcdefABCDEF";
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    std::string text = "a0";
    text[1] = ch;
    Bytes out;
    EXPECT_EQ(FromHex(text, out), digits.find(ch) != std::string_view::npos) << c;
  }
  Bytes out;
  EXPECT_FALSE(FromHex("abc", out));
}

}  // namespace
}  // namespace blindlist
