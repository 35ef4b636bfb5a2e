#include <openssl/crypto.h>

#include <cstdint>

#include "blindlist/bytes.h"

namespace blindlist {

SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
  if (this != &other) {
    clear();
    data_ = other.data_;
  }
  return *this;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    clear();
    data_ = std::move(other.data_);
    other.data_.clear();
  }
  return *this;
}

void SecretBytes::resize(std::size_t n) {
  if (n <= data_.size()) {
    OPENSSL_cleanse(data_.data() + n, data_.size() - n);
    data_.resize(n);
    return;
  }
  // Grow through a fresh buffer so the old one can be cleansed, not leaked by realloc.
  std::vector<std::uint8_t> grown(n);
  std::copy(data_.begin(), data_.end(), grown.begin());
  clear();
  data_ = std::move(grown);
}

void SecretBytes::clear() {
  if (!data_.empty()) OPENSSL_cleanse(data_.data(), data_.size());
  data_.clear();
}

bool SecretBytes::operator==(const SecretBytes& other) const {
  return ConstantTimeEqual(view(), other.view());
}

bool ConstantTimeEqual(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {
// Constant time, as blindlist/base64.h: hex digits are computed with masks, never looked up or
// branched on, so a key given in hex leaves no cache or branch trace of its bytes.

// All ones when lo <= c <= hi, else zero (all three below 2^16).
constexpr std::uint32_t InRange(std::uint32_t c, std::uint32_t lo, std::uint32_t hi) {
  return (((c - lo) | (hi - c)) >> 31) - 1U;
}

// 0..15 for a hex digit (either case), -1 for anything else.
constexpr int HexValue(char ch) {
  const std::uint32_t c = static_cast<unsigned char>(ch);
  const std::uint32_t digit = InRange(c, '0', '9');
  const std::uint32_t lower = InRange(c, 'a', 'f');
  const std::uint32_t upper = InRange(c, 'A', 'F');
  const std::uint32_t value =
      (digit & (c - '0')) | (lower & (c - 'a' + 10)) | (upper & (c - 'A' + 10));
  const std::uint32_t valid = digit | lower | upper;
  return static_cast<int>((value & valid) | ~valid);
}

// The lower-case digit of v (0..15).
constexpr char HexDigit(std::uint32_t v) {
  return static_cast<char>(v + '0' +
                           (InRange(v, 10, 15) & static_cast<std::uint32_t>('a' - '0' - 10)));
}

constexpr bool CheckHexDigits() {
  constexpr char kDigits[] = "0123456789abcdef";
  for (std::uint32_t v = 0; v < 16; ++v) {
    if (HexDigit(v) != kDigits[v] || HexValue(kDigits[v]) != static_cast<int>(v)) return false;
  }
  int valid = 0;
  for (int c = 0; c < 256; ++c) valid += HexValue(static_cast<char>(c)) >= 0 ? 1 : 0;
  return valid == 22;
}
static_assert(CheckHexDigits(), "the constant-time hex digits");
}  // namespace

std::string ToHex(ByteView b) {
  std::string out;
  out.reserve(b.size() * 2);
  for (auto c : b) {
    out.push_back(HexDigit(c >> 4U));
    out.push_back(HexDigit(c & 15U));
  }
  return out;
}

namespace {
template <typename Out>
bool DecodeHex(std::string_view hex, Out& out) {
  if (hex.size() % 2 != 0) return false;
  out.resize(hex.size() / 2);
  int bad = 0;  // negative once any character is not a hex digit
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    bad |= hi | lo;
    out[i] = static_cast<std::uint8_t>(static_cast<unsigned>(hi) << 4U | static_cast<unsigned>(lo));
  }
  // One branch on the whole text's validity, after every digit is decoded.
  if (bad < 0) {
    out.clear();
    return false;
  }
  return true;
}
}  // namespace

bool FromHex(std::string_view hex, Bytes& out) { return DecodeHex(hex, out); }
bool FromHex(std::string_view hex, SecretBytes& out) { return DecodeHex(hex, out); }

}  // namespace blindlist
