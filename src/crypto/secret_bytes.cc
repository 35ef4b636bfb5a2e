#include <openssl/crypto.h>

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

std::string ToHex(ByteView b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (auto c : b) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <typename Out>
bool DecodeHex(std::string_view hex, Out& out) {
  if (hex.size() % 2 != 0) return false;
  out.resize(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      out.clear();
      return false;
    }
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}
}  // namespace

bool FromHex(std::string_view hex, Bytes& out) { return DecodeHex(hex, out); }
bool FromHex(std::string_view hex, SecretBytes& out) { return DecodeHex(hex, out); }

}  // namespace blindlist
