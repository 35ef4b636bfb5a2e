#include "blindlist/base64.h"

#include <bit>
#include <cstdint>
#include <cstring>

namespace blindlist {

namespace {
// Constant time: a character's value is computed with masks, never looked up in a table or
// branched on, so decoding a key or token leaves no cache or branch trace of its bytes. Only
// whether the whole text is valid (and where its padding sits) decides a branch.

// All ones when lo <= c <= hi, else zero (all three below 2^16).
constexpr std::uint32_t InRange(std::uint32_t c, std::uint32_t lo, std::uint32_t hi) {
  return (((c - lo) | (hi - c)) >> 31) - 1U;
}

// 0..63 for a base64 alphabet character, -1 for anything else.
constexpr int Base64Value(char ch) {
  const std::uint32_t c = static_cast<unsigned char>(ch);
  const std::uint32_t upper = InRange(c, 'A', 'Z');
  const std::uint32_t lower = InRange(c, 'a', 'z');
  const std::uint32_t digit = InRange(c, '0', '9');
  const std::uint32_t plus = InRange(c, '+', '+');
  const std::uint32_t slash = InRange(c, '/', '/');
  const std::uint32_t value = (upper & (c - 'A')) | (lower & (c - 'a' + 26)) |
                              (digit & (c - '0' + 52)) | (plus & 62U) | (slash & 63U);
  const std::uint32_t valid = upper | lower | digit | plus | slash;
  return static_cast<int>((value & valid) | ~valid);
}

// The alphabet character of v (0..63).
constexpr char Base64Char(std::uint32_t v) {
  std::uint32_t c = v + 'A';
  c += InRange(v, 26, 63) & 6U;   // 'a' - 26 - 'A'
  c -= InRange(v, 52, 63) & 75U;  // '0' - 52 - ('a' - 26)
  c -= InRange(v, 62, 63) & 15U;  // '+' - ('0' + 10)
  c += InRange(v, 63, 63) & 3U;   // '/' - ('+' + 1)
  return static_cast<char>(c);
}

// The characters of 8 sextets at once, one sextet (0..63) per byte lane of x, first in the
// lowest lane: Base64Char's masks, computed for all lanes by one addition each (a base64 answer
// of groupd's per-member re-wrap is 4 times cheaper so). No lane carries into the next: each
// step keeps every lane within 0..255.
constexpr std::uint64_t Base64Chars8(std::uint64_t x) {
  constexpr std::uint64_t kLanes = 0x0101010101010101ULL;
  // 1 in each lane whose sextet is at least k: x + 128 - k reaches 128 exactly then.
  auto at_least = [x](std::uint64_t k) { return ((x + kLanes * (128 - k)) >> 7) & kLanes; };
  const std::uint64_t up = kLanes * 'A' + at_least(26) * 6U;  // 'A', or 'a' - 26
  const std::uint64_t down = at_least(52) * 75U + at_least(62) * 15U - at_least(63) * 3U;
  return x + up - down;
}

constexpr bool CheckAlphabet() {
  constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::uint32_t v = 0; v < 64; ++v) {
    if (Base64Char(v) != kAlphabet[v] || Base64Value(kAlphabet[v]) != static_cast<int>(v))
      return false;
    // v in one lane, its neighbours in the others: no lane disturbs another.
    std::uint64_t lanes = 0;
    for (std::uint32_t k = 0; k < 8; ++k) lanes |= std::uint64_t{(v + k * 9) & 63} << (8 * k);
    const std::uint64_t chars = Base64Chars8(lanes);
    for (std::uint32_t k = 0; k < 8; ++k) {
      if (static_cast<char>(chars >> (8 * k)) != kAlphabet[(v + k * 9) & 63]) return false;
    }
  }
  int valid = 0;
  for (int c = 0; c < 256; ++c) valid += Base64Value(static_cast<char>(c)) >= 0 ? 1 : 0;
  return valid == 64;
}
static_assert(CheckAlphabet(), "the constant-time base64 alphabet");

template <typename Out>
bool Decode(std::string_view text, Out& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=')
    pad = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  out.resize(text.size() / 4 * 3 - pad);
  std::size_t o = 0;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int bad = 0;  // negative once any character of the group is outside the alphabet
    for (int k = 0; k < 4; ++k) {
      char c = text[i + k];
      const bool last_group = i + 4 == text.size();
      // Only a padding position is compared with '=' (no branch on the other characters).
      if (last_group && k >= 4 - static_cast<int>(pad) && c == '=') {
        v[k] = 0;
        continue;
      }
      v[k] = Base64Value(c);
      bad |= v[k];
    }
    if (bad < 0) {
      out.clear();
      return false;
    }
    std::uint32_t triple = static_cast<std::uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    std::uint8_t bytes[3] = {static_cast<std::uint8_t>(triple >> 16),
                             static_cast<std::uint8_t>(triple >> 8),
                             static_cast<std::uint8_t>(triple)};
    for (int k = 0; k < 3 && o < out.size(); ++k) out[o++] = bytes[k];
    // Non-canonical encodings (stray bits under the padding) are refused.
    if (i + 4 == text.size() && ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))) {
      out.clear();
      return false;
    }
  }
  return true;
}
}  // namespace

void AppendBase64(std::string& out, ByteView data) {
  const std::size_t start = out.size();
  out.resize(start + (data.size() + 2) / 3 * 4);
  char* o = out.data() + start;
  std::size_t i = 0;
  for (; i + 6 <= data.size(); i += 6, o += 8) {
    const std::uint64_t a = std::uint64_t{data[i]} << 16 | data[i + 1] << 8 | data[i + 2];
    const std::uint64_t b = std::uint64_t{data[i + 3]} << 16 | data[i + 4] << 8 | data[i + 5];
    const std::uint64_t chars =
        Base64Chars8((a >> 18) | (a >> 12 & 63) << 8 | (a >> 6 & 63) << 16 | (a & 63) << 24 |
                     (b >> 18) << 32 | (b >> 12 & 63) << 40 | (b >> 6 & 63) << 48 | (b & 63) << 56);
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(o, &chars, 8);
    } else {
      for (int k = 0; k < 8; ++k) o[k] = static_cast<char>(chars >> (8 * k));
    }
  }
  for (; i + 3 <= data.size(); i += 3) {
    const auto t = static_cast<std::uint32_t>(data[i] << 16 | data[i + 1] << 8 | data[i + 2]);
    *o++ = Base64Char(t >> 18 & 63);
    *o++ = Base64Char(t >> 12 & 63);
    *o++ = Base64Char(t >> 6 & 63);
    *o++ = Base64Char(t & 63);
  }
  const std::size_t rest = data.size() - i;
  if (rest > 0) {
    const auto t = static_cast<std::uint32_t>(data[i] << 16 | (rest == 2 ? data[i + 1] << 8 : 0));
    *o++ = Base64Char(t >> 18 & 63);
    *o++ = Base64Char(t >> 12 & 63);
    *o++ = rest == 2 ? Base64Char(t >> 6 & 63) : '=';
    *o = '=';
  }
}

std::string Base64Encode(ByteView data) {
  std::string out;
  AppendBase64(out, data);
  return out;
}

bool Base64Decode(std::string_view text, Bytes& out) { return Decode(text, out); }
bool Base64Decode(std::string_view text, SecretBytes& out) { return Decode(text, out); }

}  // namespace blindlist
