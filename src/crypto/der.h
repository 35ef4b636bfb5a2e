// A strict BER reader and a DER writer, just enough for CMS envelopes.
// The reader accepts what stock S/MIME clients send (indefinite lengths,
// constructed OCTET STRINGs) and rejects everything else: high tag numbers,
// lengths past the buffer, nesting deeper than kMaxDepth, non-minimal
// long-form lengths are tolerated (BER), trailing bytes are the caller's call.
// Thread-safety: DerReader is a cursor over caller-owned bytes; not shared.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::der {

// Identifier octets (low tag numbers only; CMS needs nothing else).
inline constexpr std::uint8_t kInteger = 0x02;
inline constexpr std::uint8_t kBitString = 0x03;
inline constexpr std::uint8_t kOctetString = 0x04;
inline constexpr std::uint8_t kNull = 0x05;
inline constexpr std::uint8_t kOid = 0x06;
inline constexpr std::uint8_t kUtf8String = 0x0c;
inline constexpr std::uint8_t kGeneralizedTime = 0x18;
inline constexpr std::uint8_t kSequence = 0x30;
inline constexpr std::uint8_t kSet = 0x31;
inline constexpr std::uint8_t kConstructedBit = 0x20;
inline constexpr std::uint8_t ContextPrimitive(int n) {
  return static_cast<std::uint8_t>(0x80 | n);
}
inline constexpr std::uint8_t ContextConstructed(int n) {
  return static_cast<std::uint8_t>(0xa0 | n);
}

inline constexpr int kMaxDepth = 32;

struct Tlv {
  std::uint8_t tag = 0;  // the identifier octet
  bool indefinite = false;
  ByteView raw;      // the whole encoding, identifier to end-of-contents inclusive
  ByteView content;  // contents octets (without the end-of-contents marker)

  bool constructed() const { return (tag & kConstructedBit) != 0; }
  // Same tag number and class, either form (BER strings may be constructed).
  bool Is(std::uint8_t primitive_tag) const {
    return (tag | kConstructedBit) == (primitive_tag | kConstructedBit);
  }
};

class DerReader {
 public:
  explicit DerReader(ByteView data, int depth = 0) : data_(data), depth_(depth) {}
  explicit DerReader(const Tlv& parent, int depth = 0) : DerReader(parent.content, depth) {}

  bool empty() const { return pos_ >= data_.size(); }
  // Reads the next element. `what` names it in the error message.
  Result<Tlv> Next(std::string_view what);
  // Reads the next element and checks its identifier octet exactly.
  Result<Tlv> Expect(std::uint8_t tag, std::string_view what);
  // The identifier octet of the next element, or 0 at the end.
  std::uint8_t PeekTag() const { return empty() ? 0 : data_[pos_]; }
  int depth() const { return depth_; }

 private:
  ByteView data_;
  std::size_t pos_ = 0;
  int depth_;
};

// Parses exactly one element that fills `data` (trailing bytes are an error).
Result<Tlv> ParseSingle(ByteView data, std::string_view what);

// The value of an OCTET STRING (or an implicitly tagged one), joining the
// segments of a constructed BER string.
Result<Bytes> OctetStringValue(const Tlv& tlv, std::string_view what, int depth = 0);
// A non-negative INTEGER that fits in 32 bits.
Result<std::uint32_t> SmallIntegerValue(const Tlv& tlv, std::string_view what);

// An OID in dotted form from its contents octets ("1.2.840.113549.1.7.3").
std::string OidToString(ByteView content);

// ---- writing (always DER, definite lengths) ----
void AppendTlv(Bytes& out, std::uint8_t tag, ByteView content);
Bytes Encode(std::uint8_t tag, ByteView content);
Bytes Encode(std::uint8_t tag, std::initializer_list<ByteView> parts);
Bytes Concat(std::initializer_list<ByteView> parts);
Bytes EncodeInteger(std::uint32_t value);
// The full TLV of an OID given in dotted form. The dotted text is trusted (constants).
Bytes EncodeOid(std::string_view dotted);
Bytes EncodeNull();

}  // namespace blindlist::der
