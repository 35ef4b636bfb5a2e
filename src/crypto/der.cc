#include "crypto/der.h"

#include <charconv>

namespace blindlist::der {

namespace {
Error Malformed(std::string_view what, std::string_view why) {
  return MakeError("malformed-der",
                   "malformed CMS: " + std::string(what) + ": " + std::string(why));
}

// Finds the end of the indefinite-length contents starting at `data[0]`:
// returns the contents length (excluding the 00 00 marker).
Result<std::size_t> IndefiniteContentLength(ByteView data, int depth, std::string_view what) {
  DerReader inner(data, depth);
  std::size_t consumed = 0;
  while (true) {
    if (data.size() - consumed < 2) return Malformed(what, "missing end-of-contents");
    if (data[consumed] == 0 && data[consumed + 1] == 0) return consumed;
    DerReader one(data.subspan(consumed), depth);
    BL_TRY_ASSIGN(Tlv child, one.Next(what));
    consumed += child.raw.size();
  }
}
}  // namespace

Result<Tlv> DerReader::Next(std::string_view what) {
  if (depth_ > kMaxDepth) return Malformed(what, "nesting too deep");
  if (empty()) return Malformed(what, "missing");
  ByteView rest = data_.subspan(pos_);
  if (rest.size() < 2) return Malformed(what, "truncated");
  Tlv tlv;
  tlv.tag = rest[0];
  if ((tlv.tag & 0x1f) == 0x1f) return Malformed(what, "high tag numbers are not used in CMS");
  if (tlv.tag == 0 && rest[1] == 0) return Malformed(what, "unexpected end-of-contents");
  std::size_t header = 2;
  std::size_t length = 0;
  std::uint8_t first = rest[1];
  if (first < 0x80) {
    length = first;
  } else if (first == 0x80) {
    if (!tlv.constructed()) return Malformed(what, "indefinite length on a primitive element");
    tlv.indefinite = true;
  } else {
    std::size_t octets = first & 0x7f;
    if (octets > 4) return Malformed(what, "length too large");
    if (rest.size() < 2 + octets) return Malformed(what, "truncated length");
    for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | rest[2 + i];
    header += octets;
  }
  if (tlv.indefinite) {
    BL_TRY_ASSIGN(std::size_t content_len,
                  IndefiniteContentLength(rest.subspan(header), depth_ + 1, what));
    tlv.content = rest.subspan(header, content_len);
    tlv.raw = rest.subspan(0, header + content_len + 2);
  } else {
    if (length > rest.size() - header) return Malformed(what, "length runs past the end");
    tlv.content = rest.subspan(header, length);
    tlv.raw = rest.subspan(0, header + length);
  }
  pos_ += tlv.raw.size();
  return tlv;
}

Result<Tlv> DerReader::Expect(std::uint8_t tag, std::string_view what) {
  BL_TRY_ASSIGN(Tlv tlv, Next(what));
  if (tlv.tag != tag) return Malformed(what, "unexpected element");
  return tlv;
}

Result<Tlv> ParseSingle(ByteView data, std::string_view what) {
  DerReader reader(data);
  BL_TRY_ASSIGN(Tlv tlv, reader.Next(what));
  if (!reader.empty()) return Malformed(what, "trailing bytes");
  return tlv;
}

Result<Bytes> OctetStringValue(const Tlv& tlv, std::string_view what, int depth) {
  if (!tlv.constructed()) return Bytes(tlv.content.begin(), tlv.content.end());
  if (depth > kMaxDepth) return Malformed(what, "nesting too deep");
  // BER constructed string: a series of OCTET STRING segments.
  Bytes out;
  DerReader segments(tlv, depth + 1);
  while (!segments.empty()) {
    BL_TRY_ASSIGN(Tlv seg, segments.Next(what));
    if (!seg.Is(kOctetString)) return Malformed(what, "segment is not an OCTET STRING");
    BL_TRY_ASSIGN(Bytes part, OctetStringValue(seg, what, depth + 1));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

Result<std::uint32_t> SmallIntegerValue(const Tlv& tlv, std::string_view what) {
  if (tlv.tag != kInteger) return Malformed(what, "not an INTEGER");
  if (tlv.content.empty()) return Malformed(what, "empty INTEGER");
  if (tlv.content[0] & 0x80) return Malformed(what, "negative INTEGER");
  std::size_t start = (tlv.content.size() > 1 && tlv.content[0] == 0) ? 1 : 0;
  if (tlv.content.size() - start > 4) return Malformed(what, "INTEGER too large");
  std::uint32_t v = 0;
  for (std::size_t i = start; i < tlv.content.size(); ++i) v = (v << 8) | tlv.content[i];
  return v;
}

std::string OidToString(ByteView content) {
  std::string out;
  std::uint64_t value = 0;
  bool first = true;
  // The last octet of an OID must end a subidentifier; a truncated one is not a shorter OID.
  if (!content.empty() && (content.back() & 0x80)) return "(invalid)";
  for (std::uint8_t b : content) {
    if (value > (UINT64_MAX >> 7)) return "(invalid)";
    value = (value << 7) | (b & 0x7f);
    if (b & 0x80) continue;
    if (first) {
      std::uint64_t arc0 = value < 40 ? 0 : (value < 80 ? 1 : 2);
      out = std::to_string(arc0) + "." + std::to_string(value - arc0 * 40);
      first = false;
    } else {
      out += "." + std::to_string(value);
    }
    value = 0;
  }
  return out.empty() ? "(empty)" : out;
}

void AppendTlv(Bytes& out, std::uint8_t tag, ByteView content) {
  out.push_back(tag);
  std::size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    std::uint8_t len[8];
    int count = 0;
    for (std::size_t v = n; v != 0; v >>= 8) len[count++] = static_cast<std::uint8_t>(v & 0xff);
    out.push_back(static_cast<std::uint8_t>(0x80 | count));
    for (int i = count - 1; i >= 0; --i) out.push_back(len[i]);
  }
  out.insert(out.end(), content.begin(), content.end());
}

Bytes Encode(std::uint8_t tag, ByteView content) {
  Bytes out;
  out.reserve(content.size() + 6);
  AppendTlv(out, tag, content);
  return out;
}

Bytes Concat(std::initializer_list<ByteView> parts) {
  Bytes out;
  std::size_t total = 0;
  for (auto p : parts) total += p.size();
  out.reserve(total);
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Encode(std::uint8_t tag, std::initializer_list<ByteView> parts) {
  return Encode(tag, Concat(parts));
}

Bytes EncodeInteger(std::uint32_t value) {
  Bytes content;
  for (int shift = 24; shift >= 0; shift -= 8) {
    auto b = static_cast<std::uint8_t>((value >> shift) & 0xff);
    if (content.empty() && b == 0 && shift != 0) continue;
    if (content.empty() && (b & 0x80)) content.push_back(0);
    content.push_back(b);
  }
  return Encode(kInteger, content);
}

Bytes EncodeOid(std::string_view dotted) {
  std::vector<std::uint64_t> arcs;
  while (!dotted.empty()) {
    auto dot = dotted.find('.');
    std::string_view part = dotted.substr(0, dot);
    std::uint64_t v = 0;
    std::from_chars(part.data(), part.data() + part.size(), v);
    arcs.push_back(v);
    dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
  }
  Bytes content;
  auto push_arc = [&content](std::uint64_t v) {
    std::uint8_t tmp[10];
    int n = 0;
    do {
      tmp[n++] = static_cast<std::uint8_t>(v & 0x7f);
      v >>= 7;
    } while (v != 0);
    for (int i = n - 1; i >= 0; --i) content.push_back(tmp[i] | (i ? 0x80 : 0));
  };
  if (arcs.size() >= 2) {
    push_arc(arcs[0] * 40 + arcs[1]);
    for (std::size_t i = 2; i < arcs.size(); ++i) push_arc(arcs[i]);
  }
  return Encode(kOid, content);
}

Bytes EncodeNull() { return Bytes{kNull, 0x00}; }

}  // namespace blindlist::der
