// der::DerReader over arbitrary bytes: every element of the BER tree, recursively, and the
// value decoders on the elements they apply to. Invariants: every element lies inside its
// parent, and the DER writer reproduces any element that was already minimally encoded.

#include <cstddef>
#include <cstdint>
#include <string>

#include "crypto/der.h"
#include "fuzz_check.h"

namespace der = blindlist::der;
using blindlist::Bytes;
using blindlist::ByteView;

namespace {

bool Inside(ByteView inner, ByteView outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// Contents octets of an OID that OidToString and EncodeOid map one to one: each subidentifier
// minimally encoded (no leading 0x80) and the last one complete.
bool CanonicalOid(ByteView content) {
  if (content.empty() || (content.back() & 0x80) != 0) return false;
  bool start = true;
  for (std::uint8_t b : content) {
    if (start && b == 0x80) return false;
    start = (b & 0x80) == 0;
  }
  return true;
}

void CheckValues(const der::Tlv& tlv, int depth) {
  if (tlv.Is(der::kOctetString)) (void)der::OctetStringValue(tlv, "fuzz", depth);
  if (tlv.tag == der::kInteger) {
    auto v = der::SmallIntegerValue(tlv, "fuzz");
    if (v.ok()) {
      const Bytes encoded = der::EncodeInteger(*v);
      // Minimal encodings come back byte for byte.
      if (tlv.raw.size() == encoded.size() && !tlv.indefinite) {
        FUZZ_CHECK(Bytes(tlv.raw.begin(), tlv.raw.end()) == encoded,
                   "EncodeInteger(SmallIntegerValue(x)) != x");
      }
    }
  }
  if (tlv.tag == der::kOid) {
    const std::string dotted = der::OidToString(tlv.content);
    FUZZ_CHECK(!dotted.empty(), "OidToString is empty");
    if (CanonicalOid(tlv.content) && dotted != "(invalid)") {
      FUZZ_CHECK(der::EncodeOid(dotted) == der::Encode(der::kOid, tlv.content),
                 "EncodeOid(OidToString(x)) != x");
    }
  }
}

void Walk(ByteView data, int depth) {
  der::DerReader reader(data, depth);
  FUZZ_CHECK(reader.depth() == depth, "depth");
  while (!reader.empty()) {
    const std::uint8_t peek = reader.PeekTag();
    auto next = reader.Next("fuzz");
    if (!next.ok()) return;
    const der::Tlv& tlv = *next;
    FUZZ_CHECK(tlv.tag == peek, "PeekTag disagrees with Next");
    FUZZ_CHECK(Inside(tlv.raw, data), "element runs outside its parent");
    FUZZ_CHECK(Inside(tlv.content, tlv.raw), "contents run outside the element");
    FUZZ_CHECK(tlv.raw.size() >= 2 + tlv.content.size(), "element shorter than its contents");
    FUZZ_CHECK(!tlv.indefinite || tlv.constructed(), "indefinite primitive element");
    if (!tlv.indefinite) {
      const Bytes encoded = der::Encode(tlv.tag, tlv.content);
      // Same size means the length was minimal, and then DER is unique.
      if (encoded.size() == tlv.raw.size()) {
        FUZZ_CHECK(Bytes(tlv.raw.begin(), tlv.raw.end()) == encoded, "Encode(tag, contents) != x");
      }
    }
    CheckValues(tlv, depth);
    if (tlv.constructed()) Walk(tlv.content, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  (void)der::ParseSingle(input, "fuzz");
  Walk(input, 0);
  return 0;
}
