// Internal to src/crypto: branch-free masks for code that must not branch on secret data
// (the padding checks of implicit rejection, the AES key-unwrap verdict). A mask is all ones
// (true) or all zeros (false). The barrier keeps the compiler from turning a select back into
// a branch, as OpenSSL's value_barrier does.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

namespace blindlist::crypto::ct {

inline std::uint32_t Barrier(std::uint32_t a) {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+r"(a));
#endif
  return a;
}

// All ones if the top bit of `a` is set.
inline std::uint32_t Msb(std::uint32_t a) { return 0U - (a >> 31); }
inline std::uint32_t IsZero(std::uint32_t a) { return Msb(~a & (a - 1)); }
inline std::uint32_t Eq(std::uint32_t a, std::uint32_t b) { return IsZero(a ^ b); }
// a < b, unsigned.
inline std::uint32_t Lt(std::uint32_t a, std::uint32_t b) {
  return Msb(a ^ ((a ^ b) | ((a - b) ^ b)));
}
inline std::uint32_t Ge(std::uint32_t a, std::uint32_t b) { return ~Lt(a, b); }
inline std::uint32_t Select(std::uint32_t mask, std::uint32_t a, std::uint32_t b) {
  mask = Barrier(mask);
  return (mask & a) | (~mask & b);
}
inline std::uint8_t Select8(std::uint32_t mask, std::uint8_t a, std::uint8_t b) {
  return static_cast<std::uint8_t>(Select(mask, a, b));
}

}  // namespace blindlist::crypto::ct
