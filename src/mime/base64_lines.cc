#include "mime/base64_lines.h"

#include <array>
#include <cstdint>
#include <cstdio>

#include "mime/smime_common.h"

namespace blindlist::mime {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::int8_t kSpace = -2;
constexpr std::int8_t kPad = -3;
constexpr std::int8_t kInvalid = -1;

constexpr std::array<std::int8_t, 256> MakeTable() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = kInvalid;
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  for (char c : {' ', '\t', '\r', '\n'}) t[static_cast<unsigned char>(c)] = kSpace;
  t['='] = kPad;
  return t;
}
constexpr std::array<std::int8_t, 256> kTable = MakeTable();

Error BadCharacter(char c, std::size_t offset) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
  return Error{"bad-base64", std::string("invalid character ") + hex + " in base64 at offset " +
                                 std::to_string(offset)};
}

}  // namespace

Result<Bytes> DecodeBase64Lines(std::string_view text) {
  Bytes out(text.size() / 4 * 3 + 3);
  std::size_t written = 0;
  std::uint32_t group = 0;
  std::size_t symbols = 0;  // alphabet characters and pads, white space left out
  int padding = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const std::int8_t v = kTable[static_cast<unsigned char>(c)];
    if (v >= 0) {
      if (padding > 0) return MakeError("bad-base64", "base64 continues after its '=' padding");
      group = (group << 6) | static_cast<std::uint32_t>(v);
      if (++symbols % 4 == 0) {
        out[written++] = static_cast<std::uint8_t>(group >> 16);
        out[written++] = static_cast<std::uint8_t>(group >> 8);
        out[written++] = static_cast<std::uint8_t>(group);
        group = 0;
      }
    } else if (v == kSpace) {
      continue;
    } else if (v == kPad) {
      if (++padding > 2)
        return MakeError("bad-base64", "base64 has more than two '=' pad characters");
      ++symbols;
    } else {
      return BadCharacter(c, i);
    }
  }
  if (symbols == 0) return MakeError("bad-base64", "base64 text is empty");
  if (symbols % 4 != 0) {
    return MakeError("bad-base64", "base64 length " + std::to_string(symbols) +
                                       " is not a multiple of 4 (truncated or badly padded)");
  }
  // The last group held `padding` pads: its 4 - padding symbols give 3 - padding bytes (bits
  // left over in a non-canonical final symbol are ignored, as MIME decoders do).
  if (padding > 0) {
    group <<= 6 * padding;
    out[written++] = static_cast<std::uint8_t>(group >> 16);
    if (padding == 1) out[written++] = static_cast<std::uint8_t>(group >> 8);
  }
  out.resize(written);
  return out;
}

std::size_t Base64LinesSize(std::size_t data_size, std::size_t line_length, std::size_t eol_size) {
  const std::size_t chars = (data_size + 2) / 3 * 4;
  return chars + (chars + line_length - 1) / line_length * eol_size;
}

void AppendBase64Lines(ByteView data, std::size_t line_length, std::string_view eol,
                       std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + Base64LinesSize(data.size(), line_length, eol.size()));
  char* p = out.data() + start;
  std::size_t column = 0;
  std::size_t i = 0;
  const auto emit = [&](char c) {
    *p++ = c;
    if (++column == line_length) {
      for (char e : eol) *p++ = e;
      column = 0;
    }
  };
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t g = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                            std::uint32_t{data[i + 2]};
    emit(kAlphabet[(g >> 18) & 63]);
    emit(kAlphabet[(g >> 12) & 63]);
    emit(kAlphabet[(g >> 6) & 63]);
    emit(kAlphabet[g & 63]);
  }
  if (i < data.size()) {
    const bool two = i + 1 < data.size();
    const std::uint32_t g =
        (std::uint32_t{data[i]} << 16) | (two ? std::uint32_t{data[i + 1]} << 8 : 0);
    emit(kAlphabet[(g >> 18) & 63]);
    emit(kAlphabet[(g >> 12) & 63]);
    emit(two ? kAlphabet[(g >> 6) & 63] : '=');
    emit('=');
  }
  if (column != 0) {
    for (char e : eol) *p++ = e;
  }
  out.resize(static_cast<std::size_t>(p - out.data()));
}

}  // namespace blindlist::mime
