// Byte containers. Bytes holds public data (ciphertext, DER, certificates);
// SecretBytes holds keys and plaintext key material: it is cleansed when it is
// destroyed or cleared, is never printed, and compares in constant time.
// Thread-safety: plain value types; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace blindlist {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsChars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes ToBytes(std::string_view s) {
  auto v = AsBytes(s);
  return Bytes(v.begin(), v.end());
}

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t n) : data_(n) {}
  explicit SecretBytes(ByteView b) : data_(b.begin(), b.end()) {}
  SecretBytes(const SecretBytes& other) : data_(other.data_) {}
  SecretBytes(SecretBytes&& other) noexcept : data_(std::move(other.data_)) { other.data_.clear(); }
  SecretBytes& operator=(const SecretBytes& other);
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  ~SecretBytes() { clear(); }

  std::uint8_t* data() { return data_.data(); }
  const std::uint8_t* data() const { return data_.data(); }
  std::size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  ByteView view() const { return {data_.data(), data_.size()}; }
  std::uint8_t& operator[](std::size_t i) { return data_[i]; }
  const std::uint8_t& operator[](std::size_t i) const { return data_[i]; }

  // Shrinking cleanses the bytes given up; growing never reallocates silently.
  void resize(std::size_t n);
  void clear();

  // Constant-time in the contents (the lengths are not secret).
  bool operator==(const SecretBytes& other) const;
  bool operator!=(const SecretBytes& other) const { return !(*this == other); }

 private:
  std::vector<std::uint8_t> data_;
};

// Constant-time comparison of two equal-length buffers; false if lengths differ.
bool ConstantTimeEqual(ByteView a, ByteView b);

// Lowercase hex, and its strict inverse (even length, hex digits only), both constant time in
// the bytes (no table lookup or branch on a digit's value; secret keys are given in hex).
std::string ToHex(ByteView b);
bool FromHex(std::string_view hex, Bytes& out);
bool FromHex(std::string_view hex, SecretBytes& out);

}  // namespace blindlist
