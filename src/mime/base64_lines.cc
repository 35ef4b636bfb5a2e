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

// `groups` whole groups of 3 bytes as 4 characters each, no line ending; returns the end.
char* EncodeGroups(const std::uint8_t* in, std::size_t groups, char* p) {
  for (std::size_t k = 0; k < groups; ++k, in += 3, p += 4) {
    const std::uint32_t g =
        (std::uint32_t{in[0]} << 16) | (std::uint32_t{in[1]} << 8) | std::uint32_t{in[2]};
    p[0] = kAlphabet[g >> 18];
    p[1] = kAlphabet[(g >> 12) & 63];
    p[2] = kAlphabet[(g >> 6) & 63];
    p[3] = kAlphabet[g & 63];
  }
  return p;
}

}  // namespace

Result<Bytes> DecodeBase64Lines(std::string_view text) {
  Bytes out(text.size() / 4 * 3 + 3);
  BL_TRY_ASSIGN(std::size_t size, DecodeBase64LinesInPlace(text, out.data()));
  out.resize(size);
  return out;
}

Result<std::size_t> DecodeBase64LinesInPlace(std::string_view text, std::uint8_t* out) {
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
  return written;
}

std::size_t Base64LinesSize(std::size_t data_size, std::size_t line_length, std::size_t eol_size) {
  const std::size_t chars = (data_size + 2) / 3 * 4;
  return chars + (chars + line_length - 1) / line_length * eol_size;
}

Base64LineEncoder::Base64LineEncoder(std::size_t line_length, std::string_view eol)
    : line_length_(line_length), eol_(eol) {}

// Writes one group (1 to 3 bytes; fewer are padded) and a line ending when the line is full.
void Base64LineEncoder::Emit(const std::uint8_t* group, std::size_t size, char*& p) {
  const std::uint32_t g = (std::uint32_t{group[0]} << 16) |
                          (size > 1 ? std::uint32_t{group[1]} << 8 : 0) |
                          (size > 2 ? std::uint32_t{group[2]} : 0);
  const char chars[4] = {kAlphabet[(g >> 18) & 63], kAlphabet[(g >> 12) & 63],
                         size > 1 ? kAlphabet[(g >> 6) & 63] : '=',
                         size > 2 ? kAlphabet[g & 63] : '='};
  for (char c : chars) {
    *p++ = c;
    if (++column_ == line_length_) {
      for (char e : eol_) *p++ = e;
      column_ = 0;
    }
  }
}

void Base64LineEncoder::Append(ByteView data, std::string& out) {
  const std::size_t start = out.size();
  // Every 3 input bytes give 4 characters; each line adds its ending.
  const std::size_t groups = (pending_size_ + data.size()) / 3 + 1;
  out.resize(start + groups * 4 + (groups * 4 / line_length_ + 1) * eol_.size());
  char* p = out.data() + start;
  std::size_t i = 0;
  while (pending_size_ > 0 && pending_size_ < 3 && i < data.size())
    pending_[pending_size_++] = data[i++];
  if (pending_size_ == 3) {
    Emit(pending_, 3, p);
    pending_size_ = 0;
  }
  // Group by group to the end of the current line, then whole lines without a column check
  // per character (the encoder's cost is otherwise a fifth of a 100 KB post's encryption).
  const std::size_t line_bytes = line_length_ % 4 == 0 ? line_length_ / 4 * 3 : 0;
  for (; column_ != 0 && i + 3 <= data.size(); i += 3) Emit(data.data() + i, 3, p);
  if (line_bytes > 0) {
    for (; column_ == 0 && i + line_bytes <= data.size(); i += line_bytes) {
      p = EncodeGroups(data.data() + i, line_bytes / 3, p);
      for (char e : eol_) *p++ = e;
    }
  }
  for (; i + 3 <= data.size(); i += 3) Emit(data.data() + i, 3, p);
  while (i < data.size()) pending_[pending_size_++] = data[i++];
  out.resize(static_cast<std::size_t>(p - out.data()));
}

void Base64LineEncoder::Finish(std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + 4 + 2 * eol_.size());
  char* p = out.data() + start;
  if (pending_size_ > 0) Emit(pending_, pending_size_, p);
  pending_size_ = 0;
  if (column_ != 0) {
    for (char e : eol_) *p++ = e;
    column_ = 0;
  }
  out.resize(static_cast<std::size_t>(p - out.data()));
}

void AppendBase64Lines(ByteView data, std::size_t line_length, std::string_view eol,
                       std::string& out) {
  out.reserve(out.size() + Base64LinesSize(data.size(), line_length, eol.size()));
  Base64LineEncoder encoder(line_length, eol);
  encoder.Append(data, out);
  encoder.Finish(out);
}

}  // namespace blindlist::mime
