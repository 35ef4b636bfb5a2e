#include "crypto/der.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/test_support.h"

namespace blindlist::der {
namespace {

using crypto::testkit::Hex;

Bytes Repeat(std::uint8_t b, std::size_t n) { return Bytes(n, b); }

void ExpectMalformed(ByteView input, std::string_view why = {}) {
  auto r = ParseSingle(input, "test element");
  ASSERT_FALSE(r.ok()) << "accepted " << ToHex(input);
  EXPECT_EQ(r.error().code, "malformed-der");
  EXPECT_NE(r.error().message.find("test element"), std::string::npos) << r.error().message;
  if (!why.empty()) {
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  }
}

// ---- reading: definite lengths ----

TEST(DerReader, ShortFormLength) {
  Bytes in = Hex("0403010203");
  auto r = ParseSingle(in, "x");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tag, kOctetString);
  EXPECT_FALSE(r->indefinite);
  EXPECT_FALSE(r->constructed());
  EXPECT_EQ(Bytes(r->content.begin(), r->content.end()), Hex("010203"));
  EXPECT_EQ(r->raw.size(), in.size());
  EXPECT_EQ(r->raw.data(), in.data());
}

TEST(DerReader, LongFormLengths) {
  for (std::size_t n : {std::size_t{127}, std::size_t{128}, std::size_t{255}, std::size_t{256},
                        std::size_t{65535}, std::size_t{65536}}) {
    Bytes content = Repeat(0x5a, n);
    Bytes in;
    in.push_back(kOctetString);
    if (n < 128) {
      in.push_back(static_cast<std::uint8_t>(n));
    } else if (n < 256) {
      in.insert(in.end(), {0x81, static_cast<std::uint8_t>(n)});
    } else if (n < 65536) {
      in.insert(in.end(), {0x82, static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
    } else {
      in.insert(in.end(), {0x83, static_cast<std::uint8_t>(n >> 16),
                           static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
    }
    std::size_t header = in.size();
    in.insert(in.end(), content.begin(), content.end());
    auto r = ParseSingle(in, "x");
    ASSERT_TRUE(r.ok()) << n << ": " << r.error().message;
    EXPECT_EQ(r->content.size(), n);
    EXPECT_EQ(r->content.data(), in.data() + header) << n;
    EXPECT_EQ(r->raw.size(), in.size()) << n;
  }
}

TEST(DerReader, ToleratesNonMinimalLongFormLengths) {
  // BER allows them; stock clients have sent them.
  const Bytes a_in = Hex("048103aabbcc");
  auto a = ParseSingle(a_in, "x");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->content.size(), 3u);
  const Bytes b_in = Hex("04840000000201ff");
  auto b = ParseSingle(b_in, "x");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(Bytes(b->content.begin(), b->content.end()), Hex("01ff"));
}

TEST(DerReader, IteratesChildrenInOrder) {
  Bytes in =
      Hex("300a020105040101"
          "0500"
          "0600");
  auto seq = ParseSingle(in, "seq");
  ASSERT_TRUE(seq.ok()) << seq.error().message;
  EXPECT_TRUE(seq->constructed());
  DerReader r(*seq);
  EXPECT_EQ(r.PeekTag(), kInteger);
  auto i = r.Expect(kInteger, "int");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(Bytes(i->content.begin(), i->content.end()), Hex("05"));
  auto o = r.Next("octets");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->tag, kOctetString);
  auto n = r.Expect(kNull, "null");
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->content.empty());
  auto oid = r.Expect(kOid, "oid");
  ASSERT_TRUE(oid.ok());
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.PeekTag(), 0);
  auto past = r.Next("past the end");
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.error().code, "malformed-der");
}

TEST(DerReader, ExpectRejectsOtherTags) {
  Bytes in = Hex("020105");
  DerReader r(in);
  auto wrong = r.Expect(kOctetString, "octets");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, "malformed-der");
  // Expect compares the identifier octet exactly: a constructed form is another tag.
  Bytes constructed = Hex("2403040100");
  DerReader c(constructed);
  EXPECT_FALSE(c.Expect(kOctetString, "octets").ok());
}

TEST(DerReader, TlvIsMatchesEitherForm) {
  Tlv t;
  t.tag = 0x24;
  EXPECT_TRUE(t.Is(kOctetString));
  EXPECT_TRUE(t.constructed());
  EXPECT_FALSE(t.Is(kBitString));
  t.tag = kOctetString;
  EXPECT_TRUE(t.Is(kOctetString));
  EXPECT_FALSE(t.constructed());
  t.tag = ContextConstructed(0);
  EXPECT_TRUE(t.Is(ContextPrimitive(0)));
  EXPECT_FALSE(t.Is(ContextPrimitive(1)));
}

TEST(DerReader, TrailingBytesAreAnErrorForParseSingle) {
  ExpectMalformed(Hex("05000500"), "trailing");
  // ...but a reader hands them to the caller.
  Bytes in = Hex("05000500");
  DerReader r(in);
  ASSERT_TRUE(r.Next("a").ok());
  EXPECT_FALSE(r.empty());
}

// ---- reading: indefinite lengths (BER, as openssl -stream writes) ----

TEST(DerReader, IndefiniteLength) {
  Bytes in =
      Hex("3080"
          "020105"
          "0401ff"
          "0000");
  auto r = ParseSingle(in, "x");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->indefinite);
  EXPECT_EQ(r->tag, kSequence);
  EXPECT_EQ(Bytes(r->content.begin(), r->content.end()), Hex("0201050401ff"));
  EXPECT_EQ(r->raw.size(), in.size());
  DerReader children(*r);
  ASSERT_TRUE(children.Expect(kInteger, "int").ok());
  ASSERT_TRUE(children.Expect(kOctetString, "octets").ok());
  EXPECT_TRUE(children.empty());
}

TEST(DerReader, NestedIndefiniteLengthsFollowedByMore) {
  // SEQUENCE(indef){ SEQUENCE(indef){ INTEGER 1 } [0](indef){ } } NULL
  Bytes in =
      Hex("3080"
          "3080"
          "020101"
          "0000"
          "a080"
          "0000"
          "0000"
          "0500");
  DerReader r(in);
  auto outer = r.Next("outer");
  ASSERT_TRUE(outer.ok()) << outer.error().message;
  EXPECT_EQ(outer->raw.size(), in.size() - 2);
  EXPECT_EQ(outer->content.size(), in.size() - 2 - 4);
  DerReader inner(*outer);
  auto first = inner.Next("first");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->indefinite);
  EXPECT_EQ(Bytes(first->content.begin(), first->content.end()), Hex("020101"));
  auto empty_ctx = inner.Next("second");
  ASSERT_TRUE(empty_ctx.ok());
  EXPECT_EQ(empty_ctx->tag, ContextConstructed(0));
  EXPECT_TRUE(empty_ctx->content.empty());
  EXPECT_TRUE(inner.empty());
  auto null = r.Expect(kNull, "null");
  ASSERT_TRUE(null.ok()) << null.error().message;
  EXPECT_TRUE(r.empty());
}

TEST(DerReader, IndefiniteWithoutEndOfContents) {
  ExpectMalformed(Hex("3080020105"), "end-of-contents");
  ExpectMalformed(Hex("308002010500"), "end-of-contents");
  ExpectMalformed(Hex("3080"));
}

TEST(DerReader, IndefiniteLengthOnPrimitiveIsRejected) {
  ExpectMalformed(Hex("0480aabb0000"), "primitive");
  ExpectMalformed(Hex("0280010000"), "primitive");
}

TEST(DerReader, StrayEndOfContentsIsRejected) {
  ExpectMalformed(Hex("0000"), "end-of-contents");
  Bytes in = Hex("30020000");
  auto seq = ParseSingle(in, "seq");
  ASSERT_TRUE(seq.ok());
  DerReader r(*seq);
  EXPECT_FALSE(r.Next("child").ok());
}

// ---- reading: broken input ----

TEST(DerReader, TruncatedInput) {
  ExpectMalformed({}, "missing");
  ExpectMalformed(Hex("30"), "truncated");
  ExpectMalformed(Hex("0482"), "truncated length");
  ExpectMalformed(Hex("048201"), "truncated length");
}

TEST(DerReader, EveryStrictPrefixIsRejected) {
  // A definite-length structure and its BER indefinite twin, as CMS uses them.
  const Bytes definite =
      Hex("3014"
          "06092a864886f70d010703"
          "a007"
          "04050102030405");
  const Bytes indefinite =
      Hex("3080"
          "06092a864886f70d010703"
          "a080"
          "2480"
          "0402"
          "0102"
          "0403"
          "030405"
          "0000"
          "0000"
          "0000");
  for (const Bytes* whole : {&definite, &indefinite}) {
    ASSERT_TRUE(ParseSingle(*whole, "whole").ok()) << ToHex(*whole);
    for (std::size_t n = 0; n < whole->size(); ++n) {
      ByteView prefix(whole->data(), n);
      auto r = ParseSingle(prefix, "prefix");
      EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted: " << ToHex(prefix);
    }
  }
}

TEST(DerReader, LengthPastTheEnd) {
  ExpectMalformed(Hex("0405010203"), "past the end");
  ExpectMalformed(Hex("04817f00"), "past the end");
  ExpectMalformed(Hex("0484ffffffff00"), "past the end");
  // A child whose length runs past its parent's end, though not past the buffer.
  Bytes in =
      Hex("3003"
          "0405"
          "01"
          "0203040506");
  DerReader r(in);
  auto seq = r.Next("seq");
  ASSERT_TRUE(seq.ok());
  DerReader child(*seq);
  auto c = child.Next("child");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "malformed-der");
}

TEST(DerReader, LengthOfMoreThanFourOctetsIsRejected) {
  ExpectMalformed(Hex("04850000000001ff"), "too large");
  ExpectMalformed(Hex("04ff00"));
}

TEST(DerReader, HighTagNumbersAreRejected) {
  ExpectMalformed(Hex("1f810000"), "high tag");      // universal, tag 128
  ExpectMalformed(Hex("bf2200"), "high tag");        // context-specific constructed [34]
  ExpectMalformed(Hex("5f0100"), "high tag");        // application [1] in high-tag form
  ExpectMalformed(Hex("3f8080800100"), "high tag");  // multi-octet tag number
  // Inside a structure too.
  Bytes in =
      Hex("3003"
          "9f0100");
  auto seq = ParseSingle(in, "seq");
  ASSERT_TRUE(seq.ok());
  DerReader r(*seq);
  auto c = r.Next("child");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("high tag"), std::string::npos);
}

// ---- nesting limits: an error, never a crash or unbounded recursion ----

Bytes NestedIndefinite(std::size_t levels) {
  Bytes out;
  out.reserve(levels * 4 + 2);
  for (std::size_t i = 0; i < levels; ++i) out.insert(out.end(), {0x30, 0x80});
  out.insert(out.end(), {0x05, 0x00});
  for (std::size_t i = 0; i < levels; ++i) out.insert(out.end(), {0x00, 0x00});
  return out;
}

TEST(DerReader, ModerateIndefiniteNestingIsAccepted) {
  Bytes in = NestedIndefinite(8);
  auto r = ParseSingle(in, "nested");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->raw.size(), in.size());
}

TEST(DerReader, TooDeepIndefiniteNestingIsAnError) {
  for (std::size_t levels : {std::size_t{kMaxDepth + 2}, std::size_t{100}, std::size_t{200000}}) {
    Bytes in = NestedIndefinite(levels);
    auto r = ParseSingle(in, "nested");
    ASSERT_FALSE(r.ok()) << levels;
    EXPECT_EQ(r.error().code, "malformed-der");
    EXPECT_NE(r.error().message.find("too deep"), std::string::npos) << r.error().message;
  }
}

TEST(DerReader, DeepNestingWithoutEndOfContentsIsAnError) {
  // Only openers: a naive reader recurses until the stack runs out.
  Bytes in;
  for (int i = 0; i < 100000; ++i) in.insert(in.end(), {0x24, 0x80});
  auto r = ParseSingle(in, "openers");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "malformed-der");
}

TEST(DerReader, TooDeepNestingOfDefiniteConstructedOctetStrings) {
  auto nest = [](std::size_t levels) {
    Bytes v = Encode(kOctetString, Hex("aa"));
    for (std::size_t i = 0; i < levels; ++i) v = Encode(0x24, v);
    return v;
  };
  Bytes shallow = nest(5);
  auto s = ParseSingle(shallow, "shallow");
  ASSERT_TRUE(s.ok());
  auto sv = OctetStringValue(*s, "shallow");
  ASSERT_TRUE(sv.ok()) << sv.error().message;
  EXPECT_EQ(*sv, Hex("aa"));

  for (std::size_t levels : {std::size_t{100}, std::size_t{5000}}) {
    Bytes deep = nest(levels);
    auto d = ParseSingle(deep, "deep");
    ASSERT_TRUE(d.ok());  // definite lengths: the outer element alone is fine
    auto dv = OctetStringValue(*d, "deep");
    ASSERT_FALSE(dv.ok()) << levels;
    EXPECT_EQ(dv.error().code, "malformed-der");
    EXPECT_NE(dv.error().message.find("too deep"), std::string::npos);
  }
}

// ---- constructed OCTET STRINGs ----

TEST(OctetStringValue, Primitive) {
  Bytes in = Hex("0403010203");
  auto t = ParseSingle(in, "x");
  ASSERT_TRUE(t.ok());
  auto v = OctetStringValue(*t, "x");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, Hex("010203"));
}

TEST(OctetStringValue, ConstructedDefiniteSegmentsAreJoined) {
  Bytes in =
      Hex("2409"
          "0402aabb"
          "0400"
          "0401cc");
  auto t = ParseSingle(in, "x");
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto v = OctetStringValue(*t, "x");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, Hex("aabbcc"));
}

TEST(OctetStringValue, ConstructedIndefiniteNestedSegmentsAreJoined) {
  Bytes in =
      Hex("2480"
          "0402aabb"
          "2480"
          "0401cc"
          "0000"
          "0401dd"
          "0000");
  auto t = ParseSingle(in, "x");
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto v = OctetStringValue(*t, "x");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, Hex("aabbccdd"));
}

TEST(OctetStringValue, ImplicitlyTaggedConstructedString) {
  // CMS encryptedContent [0] IMPLICIT OCTET STRING, streamed.
  Bytes in =
      Hex("a080"
          "040301020304020405"
          "0000");
  auto t = ParseSingle(in, "x");
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto v = OctetStringValue(*t, "x");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, Hex("0102030405"));
}

TEST(OctetStringValue, NonOctetStringSegmentIsRejected) {
  Bytes in =
      Hex("2407"
          "0402aabb"
          "020101");
  auto t = ParseSingle(in, "x");
  ASSERT_TRUE(t.ok());
  auto v = OctetStringValue(*t, "x");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "malformed-der");
}

// ---- INTEGER ----

TEST(SmallIntegerValue, Values) {
  struct Case {
    const char* hex;
    std::uint32_t value;
  };
  for (const Case& c : {Case{"020100", 0}, Case{"02017f", 127}, Case{"02020080", 128},
                        Case{"020200ff", 255}, Case{"020300ffff", 65535},
                        Case{"02047fffffff", 0x7fffffff}, Case{"020500ffffffff", 0xffffffff}}) {
    Bytes in = Hex(c.hex);
    auto t = ParseSingle(in, "int");
    ASSERT_TRUE(t.ok()) << c.hex;
    auto v = SmallIntegerValue(*t, "int");
    ASSERT_TRUE(v.ok()) << c.hex << ": " << v.error().message;
    EXPECT_EQ(*v, c.value) << c.hex;
  }
}

TEST(SmallIntegerValue, Rejects) {
  for (const char* hex :
       {"0200", "020180", "0202ff00", "02050100000000", "0206000100000000", "040100", "0a0100"}) {
    Bytes in = Hex(hex);
    auto t = ParseSingle(in, "int");
    ASSERT_TRUE(t.ok()) << hex;
    auto v = SmallIntegerValue(*t, "int");
    ASSERT_FALSE(v.ok()) << hex << " gave " << *v;
    EXPECT_EQ(v.error().code, "malformed-der");
  }
}

// ---- OBJECT IDENTIFIER ----

TEST(OidToString, KnownOids) {
  EXPECT_EQ(OidToString(Hex("2a864886f70d010703")), "1.2.840.113549.1.7.3");
  EXPECT_EQ(OidToString(Hex("2a864886f70d0109100117")), "1.2.840.113549.1.9.16.1.23");
  EXPECT_EQ(OidToString(Hex("60864801650304012e")), "2.16.840.1.101.3.4.1.46");
  EXPECT_EQ(OidToString(Hex("2b8104010b01")), "1.3.132.1.11.1");
  EXPECT_EQ(OidToString(Hex("2b0e03021a")), "1.3.14.3.2.26");
}

TEST(OidToString, FirstArcBoundaries) {
  EXPECT_EQ(OidToString(Hex("00")), "0.0");
  EXPECT_EQ(OidToString(Hex("27")), "0.39");
  EXPECT_EQ(OidToString(Hex("28")), "1.0");
  EXPECT_EQ(OidToString(Hex("4f")), "1.39");
  EXPECT_EQ(OidToString(Hex("50")), "2.0");
  EXPECT_EQ(OidToString(Hex("883703")), "2.999.3");  // first subidentifier 1079 > 127
  EXPECT_EQ(OidToString(Hex("099226")), "0.9.2342");
}

TEST(OidToString, LargeArc) {
  // 2^64 - 1 as the last arc: ten base-128 digits.
  EXPECT_EQ(OidToString(Hex("2a81ffffffffffffffff7f")), "1.2.18446744073709551615");
}

TEST(OidToString, InvalidEncodings) {
  EXPECT_EQ(OidToString({}), "(empty)");
  // More than 64 bits in one arc.
  EXPECT_EQ(OidToString(Hex("2a82808080808080808000")), "(invalid)");
  // Truncated: the last subidentifier still has its continuation bit set.
  EXPECT_EQ(OidToString(Hex("2a864886")), "(invalid)");
  EXPECT_EQ(OidToString(Hex("86")), "(invalid)");
}

// ---- writing ----

TEST(DerWriter, EncodeIntegerEdgeValues) {
  EXPECT_EQ(EncodeInteger(0), Hex("020100"));
  EXPECT_EQ(EncodeInteger(1), Hex("020101"));
  EXPECT_EQ(EncodeInteger(127), Hex("02017f"));
  EXPECT_EQ(EncodeInteger(128), Hex("02020080"));
  EXPECT_EQ(EncodeInteger(255), Hex("020200ff"));
  EXPECT_EQ(EncodeInteger(256), Hex("02020100"));
  EXPECT_EQ(EncodeInteger(32767), Hex("02027fff"));
  EXPECT_EQ(EncodeInteger(32768), Hex("0203008000"));
  EXPECT_EQ(EncodeInteger(65535), Hex("020300ffff"));
  EXPECT_EQ(EncodeInteger(65536), Hex("0203010000"));
  EXPECT_EQ(EncodeInteger(0x01000000), Hex("020401000000"));
  EXPECT_EQ(EncodeInteger(0x7fffffff), Hex("02047fffffff"));
  EXPECT_EQ(EncodeInteger(0x80000000), Hex("02050080000000"));
  EXPECT_EQ(EncodeInteger(0xffffffff), Hex("020500ffffffff"));
}

TEST(DerWriter, EncodeIntegerRoundTrips) {
  for (std::uint32_t v : {0u, 1u, 2u, 127u, 128u, 255u, 256u, 4095u, 65535u, 65536u, 0x00ffffffu,
                          0x01000000u, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu}) {
    Bytes enc = EncodeInteger(v);
    auto t = ParseSingle(enc, "int");
    ASSERT_TRUE(t.ok()) << v;
    auto back = SmallIntegerValue(*t, "int");
    ASSERT_TRUE(back.ok()) << v << ": " << back.error().message;
    EXPECT_EQ(*back, v);
    // Minimal: no redundant leading 00 (the next octet would have its high bit clear).
    if (t->content.size() > 1 && t->content[0] == 0) {
      EXPECT_TRUE(t->content[1] & 0x80) << v;
    }
  }
}

TEST(DerWriter, LengthEncodings) {
  struct Case {
    std::size_t n;
    const char* header;
  };
  for (const Case& c : {Case{0, "0400"}, Case{1, "0401"}, Case{127, "047f"}, Case{128, "048180"},
                        Case{255, "0481ff"}, Case{256, "04820100"}, Case{65535, "0482ffff"},
                        Case{65536, "0483010000"}}) {
    Bytes content = Repeat(0xa5, c.n);
    Bytes enc = Encode(kOctetString, content);
    Bytes header = Hex(c.header);
    ASSERT_EQ(enc.size(), header.size() + c.n) << c.n;
    EXPECT_EQ(Bytes(enc.begin(), enc.begin() + static_cast<std::ptrdiff_t>(header.size())), header)
        << c.n;
    auto t = ParseSingle(enc, "x");
    ASSERT_TRUE(t.ok()) << c.n;
    EXPECT_EQ(Bytes(t->content.begin(), t->content.end()), content);
  }
}

TEST(DerWriter, AppendTlvAppends) {
  Bytes out = Hex("ff");
  AppendTlv(out, kNull, {});
  AppendTlv(out, kOctetString, Hex("0102"));
  EXPECT_EQ(out, Hex("ff"
                     "0500"
                     "04020102"));
}

TEST(DerWriter, ConcatAndPartsEncode) {
  Bytes a = Hex("0101");
  Bytes b;
  Bytes c = Hex("ff");
  EXPECT_EQ(Concat({a, b, c}), Hex("0101ff"));
  EXPECT_EQ(Encode(kSequence, {a, b, c}), Hex("30030101ff"));
  EXPECT_EQ(Encode(kSequence, {}), Hex("3000"));
  EXPECT_EQ(EncodeNull(), Hex("0500"));
}

TEST(DerWriter, EncodeOidKnownBytes) {
  EXPECT_EQ(EncodeOid("1.2.840.113549.1.7.3"), Hex("06092a864886f70d010703"));
  EXPECT_EQ(EncodeOid("2.16.840.1.101.3.4.1.46"), Hex("060960864801650304012e"));
  EXPECT_EQ(EncodeOid("2.999.3"), Hex("0603883703"));
}

TEST(DerWriter, EncodeOidRoundTrips) {
  for (std::string_view dotted :
       {"0.0", "0.39", "1.0", "1.39", "2.0", "2.47", "2.48", "2.999", "1.2.840.113549.1.7.1",
        "1.2.840.113549.1.9.16.1.23", "1.3.132.1.11.1", "1.3.133.16.840.63.0.2",
        "2.16.840.1.101.3.4.1.45", "1.2.840.10045.2.1", "1.2.18446744073709551615"}) {
    Bytes enc = EncodeOid(dotted);
    auto t = ParseSingle(enc, "oid");
    ASSERT_TRUE(t.ok()) << dotted;
    EXPECT_EQ(t->tag, kOid);
    EXPECT_EQ(OidToString(t->content), dotted);
  }
}

TEST(DerWriter, NestedStructureRoundTripsByteForByte) {
  Bytes big = Repeat(0x42, 300);
  Bytes inner = Encode(ContextConstructed(0), Encode(kOctetString, big));
  Bytes doc =
      Encode(kSequence, {EncodeInteger(2), EncodeOid("1.2.840.113549.1.7.3"), inner,
                         Encode(kSet, {}), EncodeNull(), Encode(ContextPrimitive(1), Hex("beef"))});
  auto t = ParseSingle(doc, "doc");
  ASSERT_TRUE(t.ok()) << t.error().message;
  DerReader r(*t);
  auto version = r.Expect(kInteger, "version");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*SmallIntegerValue(*version, "version"), 2u);
  auto oid = r.Expect(kOid, "oid");
  ASSERT_TRUE(oid.ok());
  EXPECT_EQ(OidToString(oid->content), "1.2.840.113549.1.7.3");
  auto ctx = r.Expect(ContextConstructed(0), "[0]");
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(Bytes(ctx->raw.begin(), ctx->raw.end()), inner);
  DerReader in_ctx(*ctx);
  auto octets = in_ctx.Expect(kOctetString, "octets");
  ASSERT_TRUE(octets.ok());
  EXPECT_EQ(*OctetStringValue(*octets, "octets"), big);
  auto set = r.Expect(kSet, "set");
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->content.empty());
  ASSERT_TRUE(r.Expect(kNull, "null").ok());
  auto prim = r.Expect(ContextPrimitive(1), "[1]");
  ASSERT_TRUE(prim.ok());
  EXPECT_EQ(Bytes(prim->content.begin(), prim->content.end()), Hex("beef"));
  EXPECT_TRUE(r.empty());

  // Re-encoding the parsed parts gives the same bytes.
  Bytes again =
      Encode(kSequence, {version->raw, oid->raw, ctx->raw, set->raw, EncodeNull(), prim->raw});
  EXPECT_EQ(again, doc);
}

}  // namespace
}  // namespace blindlist::der
