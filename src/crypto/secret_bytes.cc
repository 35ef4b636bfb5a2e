#include <openssl/crypto.h>

#include <cstdint>

#include "blindlist/bytes.h"
#include "blindlist/hex.h"

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
  std::string out;
  out.reserve(b.size() * 2);
  for (auto c : b) {
    out.push_back(hex::Digit(c >> 4U));
    out.push_back(hex::Digit(c & 15U));
  }
  return out;
}

namespace {
template <typename Out>
bool DecodeHex(std::string_view text, Out& out) {
  if (text.size() % 2 != 0) return false;
  out.resize(text.size() / 2);
  int bad = 0;  // negative once any character is not a hex digit
  for (std::size_t i = 0; i < text.size() / 2; ++i) {
    const int hi = hex::Value(text[2 * i]);
    const int lo = hex::Value(text[2 * i + 1]);
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
