// The one hex digit codec of the tree: every hex and percent encoder and decoder (ToHex/FromHex
// in bytes.h, the spool's check words, URL and RFC 2231 percent escapes, the API client's path
// segments) is built on these. Constant time, as blindlist/base64.h: a digit is computed with
// masks, never looked up or branched on, so a key given in hex leaves no cache or branch trace
// of its bytes; non-secret text pays nothing noticeable for it.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace blindlist::hex {

namespace detail {
// All ones when lo <= c <= hi, else zero (all three below 2^16).
constexpr std::uint32_t InRange(std::uint32_t c, std::uint32_t lo, std::uint32_t hi) {
  return (((c - lo) | (hi - c)) >> 31) - 1U;
}
}  // namespace detail

// 0..15 for a hex digit (either case), -1 for anything else.
constexpr int Value(char ch) {
  const std::uint32_t c = static_cast<unsigned char>(ch);
  const std::uint32_t digit = detail::InRange(c, '0', '9');
  const std::uint32_t lower = detail::InRange(c, 'a', 'f');
  const std::uint32_t upper = detail::InRange(c, 'A', 'F');
  const std::uint32_t value =
      (digit & (c - '0')) | (lower & (c - 'a' + 10)) | (upper & (c - 'A' + 10));
  const std::uint32_t valid = digit | lower | upper;
  return static_cast<int>((value & valid) | ~valid);
}

// The digit of v (0..15): lower case, or upper case (percent escapes, RFC 3986 2.1).
constexpr char Digit(std::uint32_t v) {
  return static_cast<char>(
      v + '0' + (detail::InRange(v, 10, 15) & static_cast<std::uint32_t>('a' - '0' - 10)));
}
constexpr char UpperDigit(std::uint32_t v) {
  return static_cast<char>(
      v + '0' + (detail::InRange(v, 10, 15) & static_cast<std::uint32_t>('A' - '0' - 10)));
}

// The byte of two hex digits, or -1.
constexpr int PairValue(char hi, char lo) {
  const int h = Value(hi);
  const int l = Value(lo);
  return (h | l) < 0 ? -1 : h * 16 + l;
}

// "%XX" (upper-case digits) appended for one octet.
inline void AppendPercentEscape(std::string& out, unsigned char c) {
  out.push_back('%');
  out.push_back(UpperDigit(c >> 4U));
  out.push_back(UpperDigit(c & 15U));
}

// Exactly eight lower-case digits, most significant first (the spool's check words).
inline std::string Word32(std::uint32_t v) {
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = Digit(v & 0xFU);
    v >>= 4U;
  }
  return out;
}

// The inverse of Word32: exactly eight digits; `lower_only` refuses upper-case ones.
inline bool ParseWord32(std::string_view s, std::uint32_t& out, bool lower_only = true) {
  if (s.size() != 8) return false;
  std::uint32_t v = 0;
  for (const char c : s) {
    const int d = Value(c);
    if (d < 0 || (lower_only && c >= 'A' && c <= 'F')) return false;
    v = v << 4U | static_cast<std::uint32_t>(d);
  }
  out = v;
  return true;
}

constexpr bool SelfCheck() {
  constexpr char kLower[] = "0123456789abcdef";
  constexpr char kUpper[] = "0123456789ABCDEF";
  for (std::uint32_t v = 0; v < 16; ++v) {
    if (Digit(v) != kLower[v] || UpperDigit(v) != kUpper[v]) return false;
    if (Value(kLower[v]) != static_cast<int>(v) || Value(kUpper[v]) != static_cast<int>(v))
      return false;
  }
  int valid = 0;
  for (int c = 0; c < 256; ++c) valid += Value(static_cast<char>(c)) >= 0 ? 1 : 0;
  return valid == 22;
}
static_assert(SelfCheck(), "the constant-time hex digits");

}  // namespace blindlist::hex
