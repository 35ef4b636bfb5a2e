#include "crypto/cms.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/der.h"
#include "crypto/primitives.h"
#include "crypto/test_support.h"
#include "crypto/x509.h"

namespace blindlist::crypto {
namespace {

using testkit::Contains;
using testkit::ErrorCode;
using testkit::Exposed;
using testkit::Hex;
using testkit::Identity;
using testkit::Openssl;
using testkit::ReadFileBytes;
using testkit::SecretHex;
using testkit::ShellQuote;
using testkit::TempDir;
using testkit::TestPki;
using testkit::Unwrap;
using testkit::WriteFileBytes;

const TestPki& Pki() { return TestPki::Get(); }

// A MIME entity of exactly `n` bytes.
Bytes SampleContent(std::size_t n) {
  std::string s = "Content-Type: text/plain; charset=utf-8\r\nSubject: hidden\r\n\r\n";
  while (s.size() < n) s += "The list server never reads this line.\r\n";
  s.resize(n);
  return ToBytes(s);
}

// Every byte value, twice: binary content must come back unchanged.
Bytes BinaryContent() {
  Bytes b;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 256; ++i) b.push_back(static_cast<std::uint8_t>(i));
  }
  return b;
}

GroupSecret MakeSecret(std::size_t len, std::string_view id = "group-secret-v1") {
  GroupSecret s;
  s.id = ToBytes(id);
  s.key = RandomSecret(len);
  return s;
}

::testing::AssertionResult SamePlaintext(const Result<SecretBytes>& plain, ByteView expected) {
  if (!plain.ok()) {
    return ::testing::AssertionFailure()
           << "decrypt: " << plain.error().code << ": " << plain.error().message;
  }
  if (!ConstantTimeEqual(plain->view(), expected)) {
    return ::testing::AssertionFailure()
           << "plaintext differs: got " << plain->size() << " bytes, want " << expected.size();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult DecryptsWithKey(ByteView message, const PrivateKey& key,
                                           const Certificate* cert, ByteView expected) {
  auto env = Envelope::Parse(message);
  if (!env.ok()) {
    return ::testing::AssertionFailure()
           << "parse: " << env.error().code << ": " << env.error().message;
  }
  auto cek = FindAndUnwrapCek(*env, key, cert);
  if (!cek.ok()) {
    return ::testing::AssertionFailure()
           << "unwrap: " << cek.error().code << ": " << cek.error().message;
  }
  return SamePlaintext(DecryptContent(*env, *cek), expected);
}

::testing::AssertionResult DecryptsWithSecret(ByteView message, const GroupSecret& secret,
                                              ByteView expected) {
  auto env = Envelope::Parse(message);
  if (!env.ok()) {
    return ::testing::AssertionFailure()
           << "parse: " << env.error().code << ": " << env.error().message;
  }
  auto cek = FindAndUnwrapCek(*env, secret);
  if (!cek.ok()) {
    return ::testing::AssertionFailure()
           << "unwrap: " << cek.error().code << ": " << cek.error().message;
  }
  return SamePlaintext(DecryptContent(*env, *cek), expected);
}

// The version INTEGER of the EnvelopedData / AuthEnvelopedData in `message`.
std::uint32_t BodyVersion(ByteView message) {
  auto ci = der::ParseSingle(message, "ContentInfo");
  EXPECT_TRUE(ci.ok());
  if (!ci.ok()) return 99;
  der::DerReader r(*ci);
  EXPECT_TRUE(r.Next("type").ok());
  auto wrapper = r.Next("[0]");
  if (!wrapper.ok()) return 99;
  der::DerReader w(*wrapper);
  auto body = w.Next("body");
  if (!body.ok()) return 99;
  der::DerReader b(*body);
  auto version = b.Next("version");
  if (!version.ok()) return 99;
  auto v = der::SmallIntegerValue(*version, "version");
  return v.ok() ? *v : 99;
}

constexpr ContentCipher kAllCiphers[] = {ContentCipher::kAes128Cbc, ContentCipher::kAes192Cbc,
                                         ContentCipher::kAes256Cbc, ContentCipher::kAes128Gcm,
                                         ContentCipher::kAes192Gcm, ContentCipher::kAes256Gcm};

std::string CipherTestName(ContentCipher c) {
  std::string name(ContentCipherName(c));
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

// ---- cipher table ----

TEST(ContentCipher, NamesLengthsAndModes) {
  EXPECT_EQ(ContentCipherName(ContentCipher::kAes128Cbc), "aes-128-cbc");
  EXPECT_EQ(ContentCipherName(ContentCipher::kAes192Gcm), "aes-192-gcm");
  EXPECT_EQ(ContentCipherName(ContentCipher::kAes256Gcm), "aes-256-gcm");
  EXPECT_EQ(CekLength(ContentCipher::kAes128Cbc), 16u);
  EXPECT_EQ(CekLength(ContentCipher::kAes128Gcm), 16u);
  EXPECT_EQ(CekLength(ContentCipher::kAes192Cbc), 24u);
  EXPECT_EQ(CekLength(ContentCipher::kAes192Gcm), 24u);
  EXPECT_EQ(CekLength(ContentCipher::kAes256Cbc), 32u);
  EXPECT_EQ(CekLength(ContentCipher::kAes256Gcm), 32u);
  EXPECT_FALSE(IsGcm(ContentCipher::kAes256Cbc));
  EXPECT_TRUE(IsGcm(ContentCipher::kAes128Gcm));
  EXPECT_EQ(RecipientKindName(RecipientKind::kKeyTrans), "ktri");
  EXPECT_EQ(RecipientKindName(RecipientKind::kKeyAgree), "kari");
  EXPECT_EQ(RecipientKindName(RecipientKind::kKek), "kekri");
}

// ---- Encrypt -> Parse -> FindAndUnwrapCek -> DecryptContent, every cipher and recipient ----

enum class Who { kRsa2048, kRsa3072, kP256, kP384, kKek16, kKek24, kKek32 };

struct RoundTripCase {
  ContentCipher cipher;
  Who who;
  RsaPadding padding;
};

bool IsKek(Who w) { return w == Who::kKek16 || w == Who::kKek24 || w == Who::kKek32; }
bool IsRsa(Who w) { return w == Who::kRsa2048 || w == Who::kRsa3072; }

const Identity& IdentityFor(Who w) {
  switch (w) {
    case Who::kRsa2048:
      return Pki().rsa2048();
    case Who::kRsa3072:
      return Pki().rsa3072();
    case Who::kP256:
      return Pki().p256();
    default:
      return Pki().p384();
  }
}

std::size_t KekLength(Who w) { return w == Who::kKek16 ? 16 : (w == Who::kKek24 ? 24 : 32); }

std::string WhoName(Who w) {
  switch (w) {
    case Who::kRsa2048:
      return "rsa2048";
    case Who::kRsa3072:
      return "rsa3072";
    case Who::kP256:
      return "p256";
    case Who::kP384:
      return "p384";
    case Who::kKek16:
      return "kek16";
    case Who::kKek24:
      return "kek24";
    case Who::kKek32:
      return "kek32";
  }
  return "?";
}

std::vector<RoundTripCase> AllRoundTripCases() {
  std::vector<RoundTripCase> cases;
  for (ContentCipher c : kAllCiphers) {
    for (Who w : {Who::kRsa2048, Who::kRsa3072}) {
      cases.push_back({c, w, RsaPadding::kOaepSha256});
      cases.push_back({c, w, RsaPadding::kPkcs1v15});
    }
    for (Who w : {Who::kP256, Who::kP384, Who::kKek16, Who::kKek24, Who::kKek32}) {
      cases.push_back({c, w, RsaPadding::kOaepSha256});
    }
  }
  return cases;
}

class CmsRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(CmsRoundTrip, EncryptParseUnwrapDecrypt) {
  const RoundTripCase& tc = GetParam();
  const Bytes content = SampleContent(1000);
  EncryptOptions options;
  options.cipher = tc.cipher;
  options.rsa_padding = tc.padding;

  std::vector<Certificate> certs;
  std::vector<GroupSecret> secrets;
  if (IsKek(tc.who)) {
    secrets.push_back(MakeSecret(KekLength(tc.who)));
  } else {
    certs.push_back(IdentityFor(tc.who).cert);
  }
  auto message = Encrypt(content, certs, secrets, options);
  ASSERT_TRUE(message.ok()) << message.error().message;
  EXPECT_FALSE(Contains(*message, content));

  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok()) << env.error().code << ": " << env.error().message;
  EXPECT_EQ(env->auth_enveloped, IsGcm(tc.cipher));
  ASSERT_TRUE(env->cipher.has_value());
  EXPECT_EQ(*env->cipher, tc.cipher);
  EXPECT_EQ(env->content_type_oid, oid::kData);
  EXPECT_EQ(env->iv.size(), IsGcm(tc.cipher) ? 12u : 16u);
  if (IsGcm(tc.cipher)) {
    EXPECT_EQ(env->tag_len, 16u);
    EXPECT_EQ(env->mac.size(), 16u);
    EXPECT_EQ(env->ciphertext.size(), content.size());
  } else {
    EXPECT_TRUE(env->mac.empty());
    EXPECT_EQ(env->ciphertext.size(), (content.size() / 16 + 1) * 16);
  }
  // Our own output is DER: parsing and serializing again changes nothing.
  EXPECT_EQ(env->Serialize(), *message);
  {
    // The same in two parts, the head written from a copy without the ciphertext.
    const Bytes tail = env->SerializeTail();
    Envelope light = *env;
    light.encrypted_content_info.clear();
    light.ciphertext.clear();
    Bytes joined = light.SerializeHead(tail.size());
    joined.insert(joined.end(), tail.begin(), tail.end());
    EXPECT_EQ(joined, *message);
  }

  ASSERT_EQ(env->recipients.size(), 1u);
  const RecipientInfo& ri = env->recipients[0];
  SecretBytes cek;
  if (IsKek(tc.who)) {
    EXPECT_EQ(ri.kind, RecipientKind::kKek);
    EXPECT_EQ(ri.key_alg_oid, WrapOidForKeyLength(KekLength(tc.who)));
    auto r = FindAndUnwrapCek(*env, secrets[0]);
    ASSERT_TRUE(r.ok()) << r.error().message;
    cek = *r;
  } else {
    const Identity& id = IdentityFor(tc.who);
    if (IsRsa(tc.who)) {
      EXPECT_EQ(ri.kind, RecipientKind::kKeyTrans);
      EXPECT_EQ(ri.key_alg_oid,
                tc.padding == RsaPadding::kOaepSha256 ? oid::kRsaesOaep : oid::kRsaEncryption);
      EXPECT_TRUE(ri.rid.Matches(id.cert));
      EXPECT_EQ(ri.encrypted_key.size(), static_cast<std::size_t>(id.key.bits() / 8));
    } else {
      EXPECT_EQ(ri.kind, RecipientKind::kKeyAgree);
      ASSERT_EQ(ri.recipient_keys.size(), 1u);
      EXPECT_TRUE(ri.recipient_keys[0].rid.Matches(id.cert));
    }
    auto with_cert = FindAndUnwrapCek(*env, id.key, &id.cert);
    ASSERT_TRUE(with_cert.ok()) << with_cert.error().code << ": " << with_cert.error().message;
    auto without_cert = FindAndUnwrapCek(*env, id.key, nullptr);
    ASSERT_TRUE(without_cert.ok()) << without_cert.error().message;
    EXPECT_EQ(*with_cert, *without_cert);
    cek = *with_cert;
  }
  EXPECT_EQ(cek.size(), CekLength(tc.cipher));
  EXPECT_TRUE(SamePlaintext(DecryptContent(*env, cek), content));
}

INSTANTIATE_TEST_SUITE_P(AllCiphersAndRecipients, CmsRoundTrip,
                         ::testing::ValuesIn(AllRoundTripCases()),
                         [](const ::testing::TestParamInfo<RoundTripCase>& p) {
                           std::string name =
                               CipherTestName(p.param.cipher) + "_" + WhoName(p.param.who);
                           if (IsRsa(p.param.who)) {
                             name +=
                                 p.param.padding == RsaPadding::kOaepSha256 ? "_oaep" : "_pkcs1";
                           }
                           return name;
                         });

TEST(CmsEncrypt, ContentSizesAroundBlockBoundaries) {
  GroupSecret secret = MakeSecret(32);
  for (ContentCipher c : {ContentCipher::kAes256Cbc, ContentCipher::kAes256Gcm}) {
    for (std::size_t n : {0, 1, 15, 16, 17, 31, 32, 33, 4096, 70000}) {
      Bytes content = SampleContent(n);
      EncryptOptions options;
      options.cipher = c;
      auto message = Encrypt(content, {}, {secret}, options);
      ASSERT_TRUE(message.ok()) << message.error().message;
      EXPECT_TRUE(DecryptsWithSecret(*message, secret, content))
          << ContentCipherName(c) << " " << n;
    }
  }
  Bytes binary = BinaryContent();
  auto message = Encrypt(binary, {}, {secret}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  EXPECT_TRUE(DecryptsWithSecret(*message, secret, binary));
}

TEST(CmsEncrypt, DefaultsAreAes256GcmAndOaep) {
  EncryptOptions defaults;
  EXPECT_EQ(defaults.cipher, ContentCipher::kAes256Gcm);
  EXPECT_EQ(defaults.rsa_padding, RsaPadding::kOaepSha256);
  auto message = Encrypt(SampleContent(10), {Pki().rsa2048().cert}, {}, defaults);
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  EXPECT_TRUE(env->auth_enveloped);
  EXPECT_EQ(env->recipients[0].key_alg_oid, oid::kRsaesOaep);
}

TEST(CmsEncrypt, FreshKeyAndIvEachTime) {
  Bytes content = SampleContent(100);
  GroupSecret secret = MakeSecret(16);
  for (ContentCipher c : {ContentCipher::kAes128Cbc, ContentCipher::kAes128Gcm}) {
    EncryptOptions options;
    options.cipher = c;
    auto a = Encrypt(content, {}, {secret}, options);
    auto b = Encrypt(content, {}, {secret}, options);
    ASSERT_TRUE(a.ok() && b.ok());
    auto ea = Envelope::Parse(*a);
    auto eb = Envelope::Parse(*b);
    ASSERT_TRUE(ea.ok() && eb.ok());
    EXPECT_NE(ea->iv, eb->iv);
    EXPECT_NE(ea->ciphertext, eb->ciphertext);
    EXPECT_NE(*FindAndUnwrapCek(*ea, secret), *FindAndUnwrapCek(*eb, secret));
  }
}

TEST(CmsEncrypt, RefusesNoRecipients) {
  auto r = Encrypt(SampleContent(10), {}, {}, EncryptOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "usage");
}

TEST(CmsEncrypt, EveryRecipientOfOneMessageGetsTheSameCek) {
  const Bytes content = SampleContent(333);
  GroupSecret secret = MakeSecret(32);
  for (ContentCipher c : {ContentCipher::kAes256Gcm, ContentCipher::kAes256Cbc}) {
    EncryptOptions options;
    options.cipher = c;
    auto message = Encrypt(
        content, {Pki().rsa2048().cert, Pki().p256().cert, Pki().p384().cert, Pki().rsa3072().cert},
        {secret}, options);
    ASSERT_TRUE(message.ok()) << message.error().message;
    auto env = Envelope::Parse(*message);
    ASSERT_TRUE(env.ok()) << env.error().message;
    ASSERT_EQ(env->recipients.size(), 5u);
    auto reference = FindAndUnwrapCek(*env, secret);
    ASSERT_TRUE(reference.ok());
    for (const Identity* id : {&Pki().rsa2048(), &Pki().p256(), &Pki().p384(), &Pki().rsa3072()}) {
      auto cek = FindAndUnwrapCek(*env, id->key, &id->cert);
      ASSERT_TRUE(cek.ok()) << id->name << ": " << cek.error().message;
      EXPECT_EQ(*cek, *reference) << id->name;
      auto blind_search = FindAndUnwrapCek(*env, id->key, nullptr);
      ASSERT_TRUE(blind_search.ok()) << id->name << ": " << blind_search.error().message;
      EXPECT_EQ(*blind_search, *reference) << id->name;
    }
    EXPECT_TRUE(SamePlaintext(DecryptContent(*env, *reference), content));
    if (!IsGcm(c)) {
      EXPECT_EQ(BodyVersion(*message), 2u);  // KARI and KEKRI present
    }
  }
}

TEST(CmsPeek, RecipientInfosFromTheFirstBytesOfALargePost) {
  const Bytes content = SampleContent(200000);
  auto message = Encrypt(content, {Pki().rsa3072().cert, Pki().p256().cert}, {MakeSecret(32)},
                         EncryptOptions{});
  ASSERT_TRUE(message.ok()) << message.error().message;
  auto full = Envelope::Parse(*message);
  ASSERT_TRUE(full.ok());
  const ByteView prefix = ByteView(*message).first(4096);
  auto peeked = PeekRecipientInfos(prefix);
  ASSERT_TRUE(peeked.ok()) << peeked.error().message;
  ASSERT_EQ(peeked->size(), full->recipients.size());
  for (std::size_t i = 0; i < peeked->size(); ++i)
    EXPECT_EQ((*peeked)[i].der, full->recipients[i].der);
  EXPECT_TRUE((*peeked)[0].rid.Matches(Pki().rsa3072().cert));
  // Too short a prefix says so; a whole message works too.
  auto cut = PeekRecipientInfos(ByteView(*message).first(200));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().code, "truncated");
  EXPECT_TRUE(PeekRecipientInfos(*message).ok());
  // Not CMS, or not an envelope.
  EXPECT_FALSE(PeekRecipientInfos(Hex("3003020100")).ok());
  EXPECT_FALSE(PeekRecipientInfos(Hex("00")).ok());
}

// ---- recipient identifiers ----

TEST(CmsRecipientId, IssuerAndSerialPicksTheRightCertificate) {
  const Identity& a = Pki().rsa2048();
  const Identity& b = Pki().rsa2048b();  // same issuer, other serial
  const Bytes content = SampleContent(64);
  EncryptOptions options;
  options.cipher = ContentCipher::kAes128Cbc;
  auto message = Encrypt(content, {a.cert, b.cert}, {}, options);
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  ASSERT_EQ(env->recipients.size(), 2u);
  EXPECT_EQ(BodyVersion(*message), 0u);  // only issuerAndSerialNumber KTRIs

  const RecipientId& ra = env->recipients[0].rid;
  const RecipientId& rb = env->recipients[1].rid;
  EXPECT_EQ(ra.kind, RecipientId::Kind::kIssuerSerial);
  EXPECT_EQ(ra.issuer, a.cert.IssuerDer());
  EXPECT_EQ(ra.issuer, Pki().ca().cert.IssuerDer());  // the CA is self-signed
  EXPECT_EQ(ra.serial, a.cert.SerialContent());
  EXPECT_EQ(ra.serial, Hex("1001"));
  // A serial with its high bit set keeps its leading zero octet on both sides.
  EXPECT_EQ(rb.serial, Hex("008000000000000002"));
  EXPECT_EQ(b.cert.SerialContent(), rb.serial);
  EXPECT_EQ(rb.Describe(), "issuer-serial:008000000000000002");
  EXPECT_TRUE(ra.Matches(a.cert));
  EXPECT_FALSE(ra.Matches(b.cert));
  EXPECT_TRUE(rb.Matches(b.cert));
  EXPECT_FALSE(rb.Matches(a.cert));
  EXPECT_FALSE(ra.Matches(Pki().p256().cert));

  // b's RecipientInfo is second: found by identifier, not by position.
  EXPECT_TRUE(DecryptsWithKey(*message, b.key, &b.cert, content));
  EXPECT_TRUE(DecryptsWithKey(*message, a.key, &a.cert, content));
  // Without a certificate every KTRI is tried.
  EXPECT_TRUE(DecryptsWithKey(*message, b.key, nullptr, content));
  // The certificate picks a's RecipientInfo; b's key cannot open it.
  auto mismatched = FindAndUnwrapCek(*env, b.key, &a.cert);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().code, "unwrap-failed");
}

TEST(CmsRecipientId, WithoutCertificateAWrongLengthUnwrapIsNotTheAnswer) {
  // PKCS#1 v1.5 under a wrong key sometimes "succeeds" with garbage (always, with
  // OpenSSL 3.2+ implicit rejection). Simulate it deterministically: a decoy KTRI
  // that unwraps under the member's key to 20 bytes, ahead of the real one.
  const Identity& member = Pki().rsa2048b();
  const Bytes content = SampleContent(64);
  EncryptOptions options;
  options.cipher = ContentCipher::kAes256Cbc;
  options.rsa_padding = RsaPadding::kPkcs1v15;
  auto message = Encrypt(content, {member.cert}, {}, options);
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  const Bytes real = env->recipients[0].der;
  Bytes decoy = Unwrap(WrapCek(RandomSecret(20), member.cert, RsaPadding::kPkcs1v15), "decoy wrap");
  ASSERT_TRUE(env->ReplaceRecipient(0, decoy).ok());
  ASSERT_TRUE(env->AddRecipient(real).ok());
  Bytes edited = env->Serialize();
  EXPECT_TRUE(DecryptsWithKey(edited, member.key, nullptr, content));
  // Named by certificate, the first matching RecipientInfo is the answer; a CEK of
  // the wrong length is reported as a failed unwrap, not handed out.
  auto reparsed = Envelope::Parse(edited);
  ASSERT_TRUE(reparsed.ok());
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*reparsed, member.key, &member.cert)), "unwrap-failed");
}

TEST(CmsRecipientId, SameSerialFromAnotherIssuerDoesNotMatch) {
  const Certificate& cert = Pki().rsa2048().cert;
  RecipientId rid;
  rid.kind = RecipientId::Kind::kIssuerSerial;
  rid.issuer = cert.IssuerDer();
  rid.serial = cert.SerialContent();
  EXPECT_TRUE(rid.Matches(cert));
  rid.issuer = cert.IssuerDer();
  rid.issuer.back() ^= 0x01;  // one letter of the CN differs
  EXPECT_FALSE(rid.Matches(cert));
  rid.issuer = cert.IssuerDer();
  rid.serial = Hex("1002");
  EXPECT_FALSE(rid.Matches(cert));
  rid.serial = Hex("001001");  // not the same INTEGER encoding
  EXPECT_FALSE(rid.Matches(cert));
}

TEST(CmsRecipientId, SubjectKeyIdentifierAndKekIdMatching) {
  const Certificate& cert = Pki().rsa2048().cert;
  auto ski = cert.SubjectKeyId();
  ASSERT_TRUE(ski.has_value());
  EXPECT_EQ(ski->size(), 20u);  // subjectKeyIdentifier=hash: SHA-1 of the key
  RecipientId rid;
  rid.kind = RecipientId::Kind::kSubjectKeyId;
  rid.key_id = *ski;
  EXPECT_TRUE(rid.Matches(cert));
  EXPECT_FALSE(rid.Matches(Pki().rsa2048b().cert));
  EXPECT_EQ(rid.Describe(), "ski:" + ToHex(*ski));
  rid.kind = RecipientId::Kind::kKekId;
  EXPECT_FALSE(rid.Matches(cert));  // a KEK identifier never names a certificate
  EXPECT_EQ(rid.Describe(), "kek-id:" + ToHex(*ski));
}

// A KTRI v2 built by hand: rid [0] subjectKeyIdentifier instead of issuerAndSerialNumber.
Bytes KtriWithSki(const RecipientInfo& v0, const Certificate& cert) {
  auto ski = cert.SubjectKeyId();
  EXPECT_TRUE(ski.has_value());
  return der::Encode(der::kSequence,
                     {der::EncodeInteger(2), der::Encode(der::ContextPrimitive(0), *ski),
                      EncodeAlgorithmId(v0.key_alg_oid, v0.key_alg_params),
                      der::Encode(der::kOctetString, v0.encrypted_key)});
}

TEST(CmsRecipientId, HandBuiltKtriV2WithSubjectKeyIdentifier) {
  const Identity& id = Pki().rsa2048();
  const Bytes content = SampleContent(200);
  for (RsaPadding padding : {RsaPadding::kOaepSha256, RsaPadding::kPkcs1v15}) {
    EncryptOptions options;
    options.cipher = ContentCipher::kAes256Cbc;
    options.rsa_padding = padding;
    auto message = Encrypt(content, {id.cert}, {}, options);
    ASSERT_TRUE(message.ok());
    auto env = Envelope::Parse(*message);
    ASSERT_TRUE(env.ok());
    Bytes v2 = KtriWithSki(env->recipients[0], id.cert);
    ASSERT_TRUE(env->ReplaceRecipient(0, v2).ok());
    Bytes edited = env->Serialize();
    EXPECT_EQ(BodyVersion(edited), 2u);  // RFC 5652 6.1: a v2 KTRI makes the envelope v2

    auto reparsed = Envelope::Parse(edited);
    ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
    const RecipientInfo& ri = reparsed->recipients[0];
    EXPECT_EQ(ri.kind, RecipientKind::kKeyTrans);
    EXPECT_EQ(ri.rid.kind, RecipientId::Kind::kSubjectKeyId);
    EXPECT_EQ(ri.rid.key_id, *id.cert.SubjectKeyId());
    EXPECT_EQ(ri.der, v2);
    EXPECT_TRUE(DecryptsWithKey(edited, id.key, &id.cert, content));
    auto other = FindAndUnwrapCek(*reparsed, Pki().rsa2048b().key, &Pki().rsa2048b().cert);
    EXPECT_EQ(ErrorCode(other), "no-recipient");

    // And openssl, as an independent reader, agrees.
    TempDir dir;
    WriteFileBytes(dir.File("m.der"), edited);
    Openssl(dir, "cms -decrypt -binary -inform DER -in " + ShellQuote(dir.File("m.der")) +
                     " -recip " + ShellQuote(id.cert_path) + " -inkey " + ShellQuote(id.key_path) +
                     " -out " + ShellQuote(dir.File("out")));
    EXPECT_EQ(ReadFileBytes(dir.File("out")), content);
  }
}

// ---- wrong keys: an error code and no CEK, hence no plaintext ----

TEST(CmsWrongKey, RsaOaep) {
  auto message = Encrypt(SampleContent(50), {Pki().rsa2048().cert}, {}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());

  auto other_size = FindAndUnwrapCek(*env, Pki().rsa3072().key, nullptr);
  ASSERT_FALSE(other_size.ok());
  EXPECT_EQ(other_size.error().code, "unwrap-failed");
  auto same_size = FindAndUnwrapCek(*env, Pki().rsa2048b().key, nullptr);
  ASSERT_FALSE(same_size.ok());
  EXPECT_EQ(same_size.error().code, "unwrap-failed");
  auto direct = UnwrapCek(env->recipients[0], Pki().rsa2048b().key);
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.error().code, "unwrap-failed");
  auto not_addressed = FindAndUnwrapCek(*env, Pki().rsa3072().key, &Pki().rsa3072().cert);
  ASSERT_FALSE(not_addressed.ok());
  EXPECT_EQ(not_addressed.error().code, "no-recipient");
  auto ec_key = FindAndUnwrapCek(*env, Pki().p256().key, nullptr);
  ASSERT_FALSE(ec_key.ok());
  EXPECT_EQ(ec_key.error().code, "no-recipient");
}

TEST(CmsWrongKey, RsaPkcs1v15) {
  EncryptOptions options;
  options.rsa_padding = RsaPadding::kPkcs1v15;
  auto message = Encrypt(SampleContent(50), {Pki().rsa2048().cert}, {}, options);
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  auto right = FindAndUnwrapCek(*env, Pki().rsa2048().key, nullptr);
  ASSERT_TRUE(right.ok());

  auto not_addressed = FindAndUnwrapCek(*env, Pki().rsa2048b().key, &Pki().rsa2048b().cert);
  EXPECT_EQ(ErrorCode(not_addressed), "no-recipient");
  // PKCS#1 v1.5 padding under a wrong key passes by chance about once in 2^16
  // tries; then the "CEK" is garbage. Either way the real CEK never comes out.
  auto wrong = FindAndUnwrapCek(*env, Pki().rsa2048b().key, nullptr);
  if (wrong.ok()) {
    EXPECT_NE(*wrong, *right);
  } else {
    EXPECT_EQ(wrong.error().code, "unwrap-failed");
  }
}

TEST(CmsWrongKey, Ec) {
  const Identity& p256 = Pki().p256();
  auto message = Encrypt(SampleContent(50), {p256.cert}, {}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());

  auto stranger = Unwrap(PrivateKey::Generate(KeyType::kEcP256), "keygen");
  auto same_curve = FindAndUnwrapCek(*env, stranger, nullptr);
  ASSERT_FALSE(same_curve.ok());
  EXPECT_EQ(same_curve.error().code, "unwrap-failed");
  EXPECT_EQ(ErrorCode(UnwrapCek(env->recipients[0], stranger)), "unwrap-failed");
  // The right certificate but the wrong key: the identifier matches, the unwrap fails.
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, stranger, &p256.cert)), "unwrap-failed");

  auto other_curve = FindAndUnwrapCek(*env, Pki().p384().key, nullptr);
  ASSERT_FALSE(other_curve.ok());
  EXPECT_EQ(other_curve.error().code, "unwrap-failed");
  EXPECT_FALSE(UnwrapCek(env->recipients[0], Pki().p384().key).ok());
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, Pki().p384().key, &Pki().p384().cert)),
            "no-recipient");
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, Pki().rsa2048().key, nullptr)), "no-recipient");
}

TEST(CmsWrongKey, GroupSecret) {
  GroupSecret secret = MakeSecret(32, "v7");
  auto message = Encrypt(SampleContent(50), {}, {secret}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  ASSERT_TRUE(FindAndUnwrapCek(*env, secret).ok());

  GroupSecret wrong_key = MakeSecret(32, "v7");
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, wrong_key)), "unwrap-failed");
  GroupSecret other_version = secret;
  other_version.id = ToBytes("v8");
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, other_version)), "no-recipient");
  GroupSecret short_key = MakeSecret(16, "v7");
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, short_key)), "wrong-key");
  // A message without any KEKRecipientInfo.
  auto rsa_only = Encrypt(SampleContent(5), {Pki().rsa2048().cert}, {}, EncryptOptions{});
  ASSERT_TRUE(rsa_only.ok());
  auto rsa_env = Envelope::Parse(*rsa_only);
  ASSERT_TRUE(rsa_env.ok());
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*rsa_env, secret)), "no-recipient");
}

TEST(CmsWrongKey, DecryptContentRefusesAWrongCek) {
  GroupSecret secret = MakeSecret(32);
  auto message = Encrypt(SampleContent(500), {}, {secret}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  auto wrong_length = DecryptContent(*env, RandomSecret(16));
  EXPECT_EQ(ErrorCode(wrong_length), "unwrap-failed");
  auto wrong_key = DecryptContent(*env, RandomSecret(32));
  EXPECT_EQ(ErrorCode(wrong_key), "tampered");
}

// ---- tampering ----

TEST(CmsTamper, GcmTagInTheSerializedMessage) {
  const Identity& id = Pki().rsa2048();
  const Bytes content = SampleContent(300);
  auto message = Encrypt(content, {id.cert}, {}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  ASSERT_TRUE(DecryptsWithKey(*message, id.key, &id.cert, content));
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  // With no unauthAttrs the mac OCTET STRING ends the message.
  ASSERT_TRUE(env->trailing_attrs.empty());
  Bytes tampered = *message;
  tampered.back() ^= 0x01;
  auto tenv = Envelope::Parse(tampered);
  ASSERT_TRUE(tenv.ok());
  EXPECT_NE(tenv->mac, env->mac);
  auto cek = FindAndUnwrapCek(*tenv, id.key, &id.cert);
  ASSERT_TRUE(cek.ok());
  auto plain = DecryptContent(*tenv, *cek);
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().code, "tampered");
}

TEST(CmsTamper, GcmTagCiphertextAndAttributes) {
  GroupSecret secret = MakeSecret(16);
  EncryptOptions options;
  options.cipher = ContentCipher::kAes128Gcm;
  const Bytes content = SampleContent(100);
  auto message = Encrypt(content, {}, {secret}, options);
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  auto cek = FindAndUnwrapCek(*env, secret);
  ASSERT_TRUE(cek.ok());
  ASSERT_TRUE(SamePlaintext(DecryptContent(*env, *cek), content));

  for (std::size_t i : {std::size_t{0}, std::size_t{7}, std::size_t{15}}) {
    Envelope t = *env;
    t.mac[i] ^= 0x80;
    EXPECT_EQ(ErrorCode(DecryptContent(t, *cek)), "tampered") << i;
  }
  {
    Envelope t = *env;
    t.ciphertext[42] ^= 0x01;
    EXPECT_EQ(ErrorCode(DecryptContent(t, *cek)), "tampered");
  }
  {
    Envelope t = *env;
    t.ciphertext.pop_back();
    EXPECT_EQ(ErrorCode(DecryptContent(t, *cek)), "tampered");
  }
  {
    Envelope t = *env;
    t.mac.resize(12);  // a truncated tag is not accepted as a shorter tag
    EXPECT_EQ(ErrorCode(DecryptContent(t, *cek)), "tampered");
  }
  {
    Envelope t = *env;
    t.iv[0] ^= 0x01;
    EXPECT_EQ(ErrorCode(DecryptContent(t, *cek)), "tampered");
  }
  {
    // authAttrs are authenticated: adding some breaks the tag.
    Envelope t = *env;
    Bytes attr = der::Encode(der::kSequence, {der::EncodeOid("1.2.840.113549.1.9.3"),
                                              der::Encode(der::kSet, der::EncodeOid(oid::kData))});
    t.auth_attrs = der::Encode(der::ContextConstructed(1), attr);
    EXPECT_EQ(ErrorCode(DecryptContent(t, *cek)), "tampered");
  }
}

TEST(CmsTamper, CbcPaddingIsCheckedDeterministically) {
  GroupSecret secret = MakeSecret(32);
  EncryptOptions options;
  options.cipher = ContentCipher::kAes256Cbc;
  for (std::size_t n : {5, 16, 100}) {
    const Bytes content = SampleContent(n);
    auto message = Encrypt(content, {}, {secret}, options);
    ASSERT_TRUE(message.ok());
    auto env = Envelope::Parse(*message);
    ASSERT_TRUE(env.ok());
    auto cek = FindAndUnwrapCek(*env, secret);
    ASSERT_TRUE(cek.ok());
    ASSERT_TRUE(SamePlaintext(DecryptContent(*env, *cek), content));
    // Flipping the top bit of the octet before the last block's last octet (the
    // previous block, or the IV) turns the padding length 1..16 into 0x81..0x90.
    Envelope t = *env;
    if (t.ciphertext.size() >= 32) {
      t.ciphertext[t.ciphertext.size() - 17] ^= 0x80;
    } else {
      t.iv[15] ^= 0x80;
    }
    auto plain = DecryptContent(t, *cek);
    ASSERT_FALSE(plain.ok()) << n;
    EXPECT_EQ(plain.error().code, "tampered");

    Envelope ragged = *env;
    ragged.ciphertext.resize(ragged.ciphertext.size() - 3);
    EXPECT_FALSE(DecryptContent(ragged, *cek).ok()) << n;
  }
}

TEST(CmsTamper, CbcLastBlockInAFixedMessage) {
  // Fixed input (tests/vectors/cms), so the garbled last block is the same on every run.
  Bytes message = ReadFileBytes(testkit::VectorDir() / "kek128-aes128cbc.der");
  GroupSecret secret;
  secret.id = Hex("6b656b2d313238");
  secret.key = SecretHex("000102030405060708090a0b0c0d0e0f");
  Bytes plaintext = ReadFileBytes(testkit::VectorDir() / "plaintext.txt");
  ASSERT_TRUE(DecryptsWithSecret(message, secret, plaintext));
  auto env = Envelope::Parse(message);
  ASSERT_TRUE(env.ok());
  auto cek = FindAndUnwrapCek(*env, secret);
  ASSERT_TRUE(cek.ok());
  for (std::size_t back : {1, 5, 16}) {
    Envelope t = *env;
    t.ciphertext[t.ciphertext.size() - back] ^= 0x01;
    auto plain = DecryptContent(t, *cek);
    ASSERT_FALSE(plain.ok()) << back;
    EXPECT_EQ(plain.error().code, "tampered");
  }
  // The same edit in the serialized bytes: the ciphertext ends the message.
  Bytes tampered = message;
  tampered.back() ^= 0x01;
  auto tenv = Envelope::Parse(tampered);
  ASSERT_TRUE(tenv.ok());
  EXPECT_EQ(ErrorCode(DecryptContent(*tenv, *cek)), "tampered");
}

// ---- parsing what is not a well-formed envelope ----

TEST(CmsParse, RejectsNonEnvelopes) {
  EXPECT_EQ(ErrorCode(Envelope::Parse({})), "malformed-der");
  EXPECT_EQ(ErrorCode(Envelope::Parse(Hex("0500"))), "not-cms");
  // SignedData is CMS but not for us.
  Bytes signed_data = der::Encode(
      der::kSequence, {der::EncodeOid("1.2.840.113549.1.7.2"),
                       der::Encode(der::ContextConstructed(0), der::Encode(der::kSequence, {}))});
  EXPECT_EQ(ErrorCode(Envelope::Parse(signed_data)), "not-enveloped");
}

TEST(CmsParse, EveryPrefixAndEveryByteFlipIsHandled) {
  auto message =
      Encrypt(SampleContent(40), {Pki().p256().cert}, {MakeSecret(16)}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  ASSERT_TRUE(Envelope::Parse(*message).ok());
  for (std::size_t n = 0; n < message->size(); ++n) {
    auto r = Envelope::Parse(ByteView(message->data(), n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
  }
  Bytes longer = *message;
  longer.push_back(0);
  EXPECT_EQ(ErrorCode(Envelope::Parse(longer)), "malformed-der");
  // Flipped bytes must give an error or a parse, never a crash (run under ASan in CI).
  for (std::size_t i = 0; i < message->size(); ++i) {
    Bytes flipped = *message;
    flipped[i] ^= 0xff;
    auto r = Envelope::Parse(flipped);
    if (r.ok()) {
      for (const auto& ri : r->recipients) (void)ri.AlgorithmName();
    }
  }
}

TEST(CmsParse, StructuralErrors) {
  GroupSecret secret = MakeSecret(16);
  EncryptOptions cbc;
  cbc.cipher = ContentCipher::kAes128Cbc;
  auto cbc_message = Encrypt(SampleContent(40), {}, {secret}, cbc);
  auto gcm_message = Encrypt(SampleContent(40), {}, {secret}, EncryptOptions{});
  ASSERT_TRUE(cbc_message.ok() && gcm_message.ok());
  auto cbc_env = Envelope::Parse(*cbc_message);
  auto gcm_env = Envelope::Parse(*gcm_message);
  ASSERT_TRUE(cbc_env.ok() && gcm_env.ok());

  {
    Envelope e = *cbc_env;
    e.recipients.clear();
    EXPECT_EQ(ErrorCode(Envelope::Parse(e.Serialize())), "malformed-der");
  }
  {
    Envelope e = *gcm_env;  // GCM inside EnvelopedData has nowhere to put the tag
    e.auth_enveloped = false;
    e.mac.clear();
    EXPECT_EQ(ErrorCode(Envelope::Parse(e.Serialize())), "unsupported");
  }
  {
    Envelope e = *cbc_env;  // CBC inside AuthEnvelopedData
    e.auth_enveloped = true;
    e.mac = Bytes(16, 0);
    EXPECT_EQ(ErrorCode(Envelope::Parse(e.Serialize())), "unsupported");
  }
  {
    Envelope e = *cbc_env;  // detached content
    e.encrypted_content_info = der::Encode(
        der::kSequence,
        {der::EncodeOid(oid::kData),
         EncodeAlgorithmId(cbc_env->cipher_oid, der::Encode(der::kOctetString, cbc_env->iv))});
    EXPECT_EQ(ErrorCode(Envelope::Parse(e.Serialize())), "unsupported");
  }
  {
    Envelope e = *cbc_env;  // an 8-byte CBC IV
    e.encrypted_content_info = der::Encode(
        der::kSequence,
        {der::EncodeOid(oid::kData),
         EncodeAlgorithmId(cbc_env->cipher_oid, der::Encode(der::kOctetString, Bytes(8, 1))),
         der::Encode(der::ContextPrimitive(0), cbc_env->ciphertext)});
    EXPECT_EQ(ErrorCode(Envelope::Parse(e.Serialize())), "malformed-der");
  }
  {
    Envelope e = *gcm_env;  // an 8-byte GCM ICV
    e.encrypted_content_info = der::Encode(
        der::kSequence,
        {der::EncodeOid(oid::kData),
         EncodeAlgorithmId(gcm_env->cipher_oid,
                           der::Encode(der::kSequence, {der::Encode(der::kOctetString, gcm_env->iv),
                                                        der::EncodeInteger(8)})),
         der::Encode(der::ContextPrimitive(0), gcm_env->ciphertext)});
    EXPECT_EQ(ErrorCode(Envelope::Parse(e.Serialize())), "malformed-der");
  }
  {
    // GCM parameters without aes-ICVlen: the default is 12.
    Envelope e = *gcm_env;
    e.encrypted_content_info =
        der::Encode(der::kSequence,
                    {der::EncodeOid(oid::kData),
                     EncodeAlgorithmId(
                         gcm_env->cipher_oid,
                         der::Encode(der::kSequence, der::Encode(der::kOctetString, gcm_env->iv))),
                     der::Encode(der::ContextPrimitive(0), gcm_env->ciphertext)});
    auto parsed = Envelope::Parse(e.Serialize());
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->tag_len, 12u);
  }
  {
    // A cipher we do not support (DES-EDE3-CBC) parses, but does not decrypt.
    Envelope e = *cbc_env;
    e.encrypted_content_info = der::Encode(
        der::kSequence,
        {der::EncodeOid(oid::kData),
         EncodeAlgorithmId("1.2.840.113549.3.7", der::Encode(der::kOctetString, Bytes(8, 1))),
         der::Encode(der::ContextPrimitive(0), cbc_env->ciphertext)});
    auto parsed = Envelope::Parse(e.Serialize());
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_FALSE(parsed->cipher.has_value());
    EXPECT_EQ(parsed->cipher_oid, "1.2.840.113549.3.7");
    auto cek = FindAndUnwrapCek(*parsed, secret);
    ASSERT_TRUE(cek.ok());
    EXPECT_EQ(ErrorCode(DecryptContent(*parsed, *cek)), "unsupported");
  }
}

TEST(CmsParse, OtherRecipientKindsAreKeptAndSkipped) {
  const Identity& id = Pki().rsa2048();
  const Bytes content = SampleContent(70);
  EncryptOptions options;
  options.cipher = ContentCipher::kAes192Cbc;
  auto message = Encrypt(content, {id.cert}, {}, options);
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  // [3] PasswordRecipientInfo and [4] OtherRecipientInfo: only their shape is checked.
  Bytes pwri = der::Encode(der::ContextConstructed(3),
                           {der::EncodeInteger(0), EncodeAlgorithmId(oid::kAes128Wrap),
                            der::Encode(der::kOctetString, Bytes(24, 7))});
  Bytes ori =
      der::Encode(der::ContextConstructed(4), {der::EncodeOid("1.2.3.4"), der::EncodeNull()});
  ASSERT_TRUE(env->AddRecipient(pwri).ok());
  ASSERT_TRUE(env->AddRecipient(ori).ok());
  Bytes edited = env->Serialize();
  EXPECT_EQ(BodyVersion(edited), 3u);  // RFC 5652 6.1: pwri or ori makes it version 3
  auto reparsed = Envelope::Parse(edited);
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  ASSERT_EQ(reparsed->recipients.size(), 3u);
  EXPECT_EQ(reparsed->recipients[1].kind, RecipientKind::kPassword);
  EXPECT_EQ(reparsed->recipients[2].kind, RecipientKind::kOther);
  EXPECT_EQ(reparsed->recipients[1].der, pwri);
  EXPECT_TRUE(DecryptsWithKey(edited, id.key, nullptr, content));
  EXPECT_EQ(ErrorCode(RecipientInfo::Parse(Hex("0500"))), "malformed-der");
  EXPECT_EQ(ErrorCode(UnwrapCek(reparsed->recipients[1], id.key)), "wrong-key");
}

TEST(CmsParse, TrailingAttributesAreKeptVerbatim) {
  const Identity& id = Pki().rsa2048();
  const Bytes content = SampleContent(90);
  // Attribute ::= SEQUENCE { attrType OID, attrValues SET OF ANY }
  const Bytes attribute = der::Encode(
      der::kSequence, {der::EncodeOid("1.2.3.4.5"),
                       der::Encode(der::kSet, der::Encode(der::kOctetString, Hex("01")))});
  struct Case {
    ContentCipher cipher;
    std::uint8_t tag;  // unprotectedAttrs [1] (EnvelopedData), unauthAttrs [2] (AuthEnvelopedData)
    std::uint32_t version;
  };
  for (const Case& c : {Case{ContentCipher::kAes128Cbc, der::ContextConstructed(1), 2},
                        Case{ContentCipher::kAes128Gcm, der::ContextConstructed(2), 0}}) {
    EncryptOptions options;
    options.cipher = c.cipher;
    auto message = Encrypt(content, {id.cert}, {}, options);
    ASSERT_TRUE(message.ok());
    auto env = Envelope::Parse(*message);
    ASSERT_TRUE(env.ok());
    EXPECT_EQ(BodyVersion(*message), 0u);
    env->trailing_attrs = der::Encode(c.tag, attribute);
    Bytes with_attrs = env->Serialize();
    // RFC 5652 6.1: unprotectedAttrs make EnvelopedData version 2; AuthEnvelopedData stays 0.
    EXPECT_EQ(BodyVersion(with_attrs), c.version);
    auto reparsed = Envelope::Parse(with_attrs);
    ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
    EXPECT_EQ(reparsed->trailing_attrs, env->trailing_attrs);
    EXPECT_EQ(reparsed->Serialize(), with_attrs);
    EXPECT_TRUE(DecryptsWithKey(with_attrs, id.key, &id.cert, content));
  }
}

// ---- strict structure: nothing after the last field of a SEQUENCE ----

// The children of the element at `path` (child indices, outermost first) of a definite-length
// encoding, passed to `edit`; every enclosing element is re-encoded around the result.
Bytes EditChildren(ByteView encoding, const std::vector<std::size_t>& path,
                   const std::function<void(std::vector<Bytes>&)>& edit, std::size_t depth = 0) {
  der::Tlv tlv = Unwrap(der::ParseSingle(encoding, "edit"), "edit: parse");
  std::vector<Bytes> kids;
  der::DerReader r(tlv);
  while (!r.empty()) {
    der::Tlv kid = Unwrap(r.Next("edit"), "edit: child");
    kids.emplace_back(kid.raw.begin(), kid.raw.end());
  }
  if (depth == path.size()) {
    edit(kids);
  } else {
    Bytes& kid = kids.at(path[depth]);
    kid = EditChildren(kid, path, edit, depth + 1);
  }
  Bytes content;
  for (const auto& kid : kids) content.insert(content.end(), kid.begin(), kid.end());
  return der::Encode(tlv.tag, content);
}

// `count` NULLs after the last child (two for an AlgorithmIdentifier without parameters, whose
// first NULL would be its parameters).
Bytes AppendNull(ByteView encoding, const std::vector<std::size_t>& path, int count = 1) {
  return EditChildren(encoding, path, [count](std::vector<Bytes>& kids) {
    for (int i = 0; i < count; ++i) kids.push_back(der::EncodeNull());
  });
}

struct StrictCase {
  std::string name;
  Bytes der;
  std::string names;  // the structure the error message must name
};

::testing::AssertionResult RefusedNaming(const Status& s, std::string_view names) {
  if (s.ok()) return ::testing::AssertionFailure() << "accepted";
  if (s.error().code != "malformed-der") {
    return ::testing::AssertionFailure() << s.error().code << ": " << s.error().message;
  }
  if (s.error().message.find(names) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "message does not name " << names << ": " << s.error().message;
  }
  return ::testing::AssertionSuccess();
}

template <typename T>
Status AsStatus(const Result<T>& r) {
  return r.ok() ? Status::Ok() : Status(r.error());
}

std::vector<StrictCase> RecipientInfoCases() {
  const SecretBytes cek = RandomSecret(32);
  const Bytes ktri = Unwrap(WrapCek(cek, Pki().rsa2048().cert, RsaPadding::kOaepSha256), "ktri");
  const Bytes kari = Unwrap(WrapCek(cek, Pki().p256().cert, RsaPadding::kOaepSha256), "kari");
  const Bytes kekri = Unwrap(WrapCek(cek, MakeSecret(32)), "kekri");
  const Bytes pwri = der::Encode(der::ContextConstructed(3),
                                 {der::EncodeInteger(0), EncodeAlgorithmId(oid::kAes128Wrap),
                                  der::Encode(der::kOctetString, Bytes(24, 7))});
  const Bytes ori =
      der::Encode(der::ContextConstructed(4), {der::EncodeOid("1.2.3.4"), der::EncodeNull()});
  const Bytes ukm =
      der::Encode(der::ContextConstructed(1), der::Encode(der::kOctetString, Hex("01")));
  const Bytes ukm_extra = der::Encode(
      der::ContextConstructed(1), {der::Encode(der::kOctetString, Hex("01")), der::EncodeNull()});
  const Bytes date = der::Encode(der::kGeneralizedTime, ToBytes("20250101000000Z"));
  const Bytes other = der::Encode(der::kSequence, der::EncodeOid("1.2.3.4"));
  const Bytes rkeyid = der::Encode(der::ContextConstructed(0),
                                   {der::Encode(der::kOctetString, Hex("0102")), date, other});
  const Bytes rkeyid_extra =
      der::Encode(der::ContextConstructed(0),
                  {der::Encode(der::kOctetString, Hex("0102")), date, other, der::EncodeNull()});
  auto insert_at = [](std::size_t i, const Bytes& kid) {
    return [i, kid](std::vector<Bytes>& kids) {
      kids.insert(kids.begin() + static_cast<std::ptrdiff_t>(i), kid);
    };
  };
  auto replace_at = [](std::size_t i, const Bytes& kid) {
    return [i, kid](std::vector<Bytes>& kids) { kids.at(i) = kid; };
  };
  // The OAEP parameters of RFC 4055 with [1] before [0].
  const Bytes oaep_unordered = EditChildren(
      ktri, {2, 1}, [](std::vector<Bytes>& kids) { std::swap(kids.at(0), kids.at(1)); });
  return {
      // Well-formed variants first (names empty): these must parse.
      {"ktri", ktri, ""},
      {"kari", kari, ""},
      {"kekri", kekri, ""},
      {"pwri", pwri, ""},
      {"ori", ori, ""},
      {"kari-with-ukm", EditChildren(kari, {}, insert_at(2, ukm)), ""},
      {"kari-rkeyid", EditChildren(kari, {3, 0}, replace_at(0, rkeyid)), ""},
      {"kekid-date-other",
       EditChildren(kekri, {1},
                    [&](std::vector<Bytes>& kids) {
                      kids.push_back(date);
                      kids.push_back(other);
                    }),
       ""},
      // One element too many, at every level.
      {"ktri-extra", AppendNull(ktri, {}), "KeyTransRecipientInfo"},
      {"ktri-rid-extra", AppendNull(ktri, {1}), "IssuerAndSerialNumber"},
      {"ktri-alg-extra", AppendNull(ktri, {2}), "AlgorithmIdentifier keyEncryptionAlgorithm"},
      {"ktri-oaep-hash-extra", AppendNull(ktri, {2, 1, 0}), "RSAES-OAEP-params"},
      {"ktri-oaep-hash-alg-extra", AppendNull(ktri, {2, 1, 0, 0}, 2), "AlgorithmIdentifier"},
      {"ktri-oaep-mgf1-hash-extra", AppendNull(ktri, {2, 1, 1, 0, 1}, 2), "MGF1 hash"},
      {"ktri-oaep-unordered", oaep_unordered, "RSAES-OAEP-params"},
      {"kari-extra", AppendNull(kari, {}), "KeyAgreeRecipientInfo"},
      {"kari-originator-extra", AppendNull(kari, {1}), "originator"},
      {"kari-originator-key-extra", AppendNull(kari, {1, 0}), "OriginatorPublicKey"},
      {"kari-originator-alg-extra", AppendNull(kari, {1, 0, 0}, 2), "originator key algorithm"},
      {"kari-originator-unknown-choice", EditChildren(kari, {1}, replace_at(0, der::EncodeNull())),
       "originator"},
      {"kari-ukm-extra", EditChildren(kari, {}, insert_at(2, ukm_extra)), "ukm"},
      {"kari-alg-extra", AppendNull(kari, {2}), "AlgorithmIdentifier keyEncryptionAlgorithm"},
      {"kari-wrap-alg-extra", AppendNull(kari, {2, 1}, 2), "key wrap algorithm"},
      {"kari-rek-extra", AppendNull(kari, {3, 0}), "RecipientEncryptedKey"},
      {"kari-rek-rid-extra", AppendNull(kari, {3, 0, 0}), "IssuerAndSerialNumber"},
      {"kari-rkeyid-extra", EditChildren(kari, {3, 0}, replace_at(0, rkeyid_extra)),
       "RecipientKeyIdentifier"},
      {"kari-rid-primitive-0",
       EditChildren(kari, {3, 0}, replace_at(0, der::Encode(der::ContextPrimitive(0), Hex("01")))),
       "recipient identifier"},
      {"kekri-extra", AppendNull(kekri, {}), "KEKRecipientInfo"},
      {"kekri-kekid-extra",
       EditChildren(kekri, {1},
                    [&](std::vector<Bytes>& kids) {
                      kids.push_back(date);
                      kids.push_back(other);
                      kids.push_back(der::EncodeNull());
                    }),
       "KEKIdentifier"},
      {"kekri-alg-extra", AppendNull(kekri, {2}, 2), "AlgorithmIdentifier keyEncryptionAlgorithm"},
      {"pwri-extra", AppendNull(pwri, {}), "PasswordRecipientInfo"},
      {"pwri-missing-key",
       EditChildren(pwri, {}, [](std::vector<Bytes>& kids) { kids.pop_back(); }), "encryptedKey"},
      {"ori-extra", AppendNull(ori, {}), "OtherRecipientInfo"},
      {"ori-no-value", EditChildren(ori, {}, [](std::vector<Bytes>& kids) { kids.pop_back(); }),
       "oriValue"},
  };
}

TEST(CmsParseStrict, RecipientInfosWithAnElementTooManyAreMalformed) {
  const Identity& id = Pki().rsa2048();
  const Bytes message = Unwrap(Encrypt(SampleContent(50), {id.cert}, {}, EncryptOptions{}), "enc");
  for (const StrictCase& c : RecipientInfoCases()) {
    SCOPED_TRACE(c.name);
    auto ri = RecipientInfo::Parse(c.der);
    // In an envelope, and seen by the exploder's prefix peek: the same answer.
    Envelope env = Unwrap(Envelope::Parse(message), "parse");
    env.recipients.push_back(RecipientInfo{});
    env.recipients.back().der = c.der;
    const Bytes spliced = env.Serialize();
    auto parsed = Envelope::Parse(spliced);
    auto peeked = PeekRecipientInfos(spliced);
    if (c.names.empty()) {
      EXPECT_TRUE(ri.ok()) << ri.error().message;
      EXPECT_TRUE(parsed.ok()) << parsed.error().message;
      EXPECT_TRUE(peeked.ok()) << peeked.error().message;
      continue;
    }
    EXPECT_TRUE(RefusedNaming(AsStatus(ri), c.names));
    EXPECT_TRUE(RefusedNaming(AsStatus(parsed), c.names));
    EXPECT_TRUE(RefusedNaming(AsStatus(peeked), c.names));
    // Nor can an edit put it in.
    Envelope edited = Unwrap(Envelope::Parse(message), "parse");
    EXPECT_EQ(ErrorCode(edited.AddRecipient(c.der)), "malformed-der");
  }
}

TEST(CmsParseStrict, RecipientKeyIdentifierIsReadFromAStrictKari) {
  // The rKeyId of a KARI carries a SubjectKeyIdentifier, optionally a date and other attribute.
  const Bytes kari =
      Unwrap(WrapCek(RandomSecret(32), Pki().p256().cert, RsaPadding::kOaepSha256), "kari");
  const Bytes rkeyid = der::Encode(
      der::ContextConstructed(0), {der::Encode(der::kOctetString, Hex("0a0b0c")),
                                   der::Encode(der::kGeneralizedTime, ToBytes("20250101000000Z"))});
  auto ri = RecipientInfo::Parse(
      EditChildren(kari, {3, 0}, [&](std::vector<Bytes>& kids) { kids.at(0) = rkeyid; }));
  ASSERT_TRUE(ri.ok()) << ri.error().message;
  ASSERT_EQ(ri->recipient_keys.size(), 1u);
  EXPECT_EQ(ri->recipient_keys[0].rid.kind, RecipientId::Kind::kSubjectKeyId);
  EXPECT_EQ(ri->recipient_keys[0].rid.key_id, Hex("0a0b0c"));
  // A KTRI's [0] is the SubjectKeyIdentifier itself, also as a BER constructed string.
  const Bytes ktri =
      Unwrap(WrapCek(RandomSecret(32), Pki().rsa2048().cert, RsaPadding::kPkcs1v15), "ktri");
  const Bytes segmented = der::Encode(
      der::ContextConstructed(0),
      {der::Encode(der::kOctetString, Hex("0a")), der::Encode(der::kOctetString, Hex("0b0c"))});
  auto kt = RecipientInfo::Parse(
      EditChildren(ktri, {}, [&](std::vector<Bytes>& kids) { kids.at(1) = segmented; }));
  ASSERT_TRUE(kt.ok()) << kt.error().message;
  EXPECT_EQ(kt->rid.kind, RecipientId::Kind::kSubjectKeyId);
  EXPECT_EQ(kt->rid.key_id, Hex("0a0b0c"));
}

TEST(CmsParseStrict, EnvelopesWithAnElementTooManyAreMalformed) {
  const Identity& id = Pki().rsa2048();
  EncryptOptions cbc;
  cbc.cipher = ContentCipher::kAes256Cbc;
  const Bytes gcm = Unwrap(Encrypt(SampleContent(50), {id.cert}, {}, EncryptOptions{}), "gcm");
  const Bytes cbc_message = Unwrap(Encrypt(SampleContent(50), {id.cert}, {}, cbc), "cbc");
  // ContentInfo { type, [0] { body { version, recipientInfos, EncryptedContentInfo, ... } } }
  std::vector<StrictCase> cases = {
      {"content-info-extra", AppendNull(gcm, {}), "trailing elements in ContentInfo"},
      {"content-wrapper-extra", AppendNull(gcm, {1}), "ContentInfo content"},
      {"auth-enveloped-data-extra", AppendNull(gcm, {1, 0}), "AuthEnvelopedData"},
      {"enveloped-data-extra", AppendNull(cbc_message, {1, 0}), "EnvelopedData"},
      {"eci-extra", AppendNull(gcm, {1, 0, 2}), "EncryptedContentInfo"},
      {"cbc-eci-extra", AppendNull(cbc_message, {1, 0, 2}), "EncryptedContentInfo"},
      {"content-alg-extra", AppendNull(gcm, {1, 0, 2, 1}),
       "AlgorithmIdentifier contentEncryptionAlgorithm"},
      {"gcm-parameters-extra", AppendNull(gcm, {1, 0, 2, 1, 1}), "GCMParameters"},
  };
  Envelope env = Unwrap(Envelope::Parse(cbc_message), "parse");
  env.originator_info = der::Encode(der::ContextConstructed(0), der::EncodeNull());
  cases.push_back({"originator-info-unknown-field", env.Serialize(), "OriginatorInfo"});
  env.originator_info = der::Encode(
      der::ContextConstructed(0), {der::Encode(der::ContextConstructed(0), id.cert.Der()),
                                   der::Encode(der::ContextConstructed(1), {}), der::EncodeNull()});
  cases.push_back({"originator-info-extra", env.Serialize(), "OriginatorInfo"});
  for (const StrictCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(RefusedNaming(AsStatus(Envelope::Parse(c.der)), c.names));
  }
  // What the optional fields allow still parses: originatorInfo with certs and crls, and
  // unprotectedAttrs after the EncryptedContentInfo.
  env.originator_info = der::Encode(der::ContextConstructed(0),
                                    {der::Encode(der::ContextConstructed(0), id.cert.Der()),
                                     der::Encode(der::ContextConstructed(1), {})});
  env.trailing_attrs =
      der::Encode(der::ContextConstructed(1),
                  der::Encode(der::kSequence,
                              {der::EncodeOid("1.2.3.4.5"),
                               der::Encode(der::kSet, der::Encode(der::kOctetString, Hex("01")))}));
  const Bytes with_optional = env.Serialize();
  auto parsed = Envelope::Parse(with_optional);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(DecryptsWithKey(with_optional, id.key, &id.cert, SampleContent(50)));
}

// ---- DER-level edits: the EncryptedContentInfo never changes ----

struct EditFixture {
  Bytes message;
  Envelope env;
  SecretBytes cek;
};

EditFixture EncryptForEdit(ContentCipher cipher, const Bytes& content) {
  const Identity& id = Pki().rsa2048();
  EncryptOptions options;
  options.cipher = cipher;
  EditFixture f;
  f.message = Unwrap(Encrypt(content, {id.cert}, {}, options), "encrypt");
  f.env = Unwrap(Envelope::Parse(f.message), "parse");
  f.cek = Unwrap(FindAndUnwrapCek(f.env, id.key, &id.cert), "unwrap");
  return f;
}

class CmsEdit : public ::testing::TestWithParam<ContentCipher> {};

TEST_P(CmsEdit, AddRecipient) {
  const Bytes content = SampleContent(123);
  EditFixture f = EncryptForEdit(GetParam(), content);
  const Bytes eci = f.env.encrypted_content_info;
  const Bytes original_ri = f.env.recipients[0].der;
  const Identity& p256 = Pki().p256();
  Bytes added = Unwrap(WrapCek(f.cek, p256.cert, RsaPadding::kOaepSha256), "wrap");

  ASSERT_TRUE(f.env.AddRecipient(added).ok());
  Bytes edited = f.env.Serialize();
  auto env = Envelope::Parse(edited);
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_EQ(env->encrypted_content_info, eci);
  EXPECT_TRUE(Contains(edited, eci));
  EXPECT_EQ(env->mac, f.env.mac);
  ASSERT_EQ(env->recipients.size(), 2u);
  EXPECT_EQ(env->recipients[0].der, original_ri);
  EXPECT_EQ(env->recipients[1].der, added);
  EXPECT_TRUE(DecryptsWithKey(edited, p256.key, &p256.cert, content));
  EXPECT_TRUE(DecryptsWithKey(edited, Pki().rsa2048().key, &Pki().rsa2048().cert, content));
  if (!IsGcm(GetParam())) {
    EXPECT_EQ(BodyVersion(f.message), 0u);
    EXPECT_EQ(BodyVersion(edited), 2u);
  }
}

TEST_P(CmsEdit, ReplaceRecipient) {
  const Bytes content = SampleContent(77);
  EditFixture f = EncryptForEdit(GetParam(), content);
  const Bytes eci = f.env.encrypted_content_info;
  const Identity& p384 = Pki().p384();
  Bytes replacement = Unwrap(WrapCek(f.cek, p384.cert, RsaPadding::kOaepSha256), "wrap");

  ASSERT_TRUE(f.env.ReplaceRecipient(0, replacement).ok());
  Bytes edited = f.env.Serialize();
  auto env = Envelope::Parse(edited);
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_EQ(env->encrypted_content_info, eci);
  ASSERT_EQ(env->recipients.size(), 1u);
  EXPECT_EQ(env->recipients[0].kind, RecipientKind::kKeyAgree);
  EXPECT_TRUE(DecryptsWithKey(edited, p384.key, &p384.cert, content));
  const Identity& old = Pki().rsa2048();
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, old.key, &old.cert)), "no-recipient");
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, old.key, nullptr)), "no-recipient");
}

TEST_P(CmsEdit, ReplaceWithGroupSecret) {
  // Path B: the exploder swaps the group RecipientInfo for a KEKRecipientInfo.
  const Bytes content = SampleContent(64);
  EditFixture f = EncryptForEdit(GetParam(), content);
  const Bytes eci = f.env.encrypted_content_info;
  GroupSecret secret = MakeSecret(32, "group-v3");
  ASSERT_TRUE(f.env.ReplaceRecipient(0, Unwrap(WrapCek(f.cek, secret), "wrap")).ok());
  Bytes edited = f.env.Serialize();
  auto env = Envelope::Parse(edited);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->encrypted_content_info, eci);
  EXPECT_TRUE(DecryptsWithSecret(edited, secret, content));
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, Pki().rsa2048().key, nullptr)), "no-recipient");
}

TEST_P(CmsEdit, RemoveRecipient) {
  const Bytes content = SampleContent(500);
  EditFixture f = EncryptForEdit(GetParam(), content);
  const Bytes eci = f.env.encrypted_content_info;
  const Identity& p256 = Pki().p256();
  ASSERT_TRUE(
      f.env.AddRecipient(Unwrap(WrapCek(f.cek, p256.cert, RsaPadding::kOaepSha256), "w")).ok());
  ASSERT_TRUE(f.env.RemoveRecipient(0).ok());
  Bytes edited = f.env.Serialize();
  auto env = Envelope::Parse(edited);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->encrypted_content_info, eci);
  ASSERT_EQ(env->recipients.size(), 1u);
  EXPECT_TRUE(DecryptsWithKey(edited, p256.key, &p256.cert, content));
  const Identity& removed = Pki().rsa2048();
  EXPECT_EQ(ErrorCode(FindAndUnwrapCek(*env, removed.key, &removed.cert)), "no-recipient");
  if (!IsGcm(GetParam())) {
    EXPECT_EQ(BodyVersion(edited), 2u);
  }

  // The last RecipientInfo stays: without it nobody could read the message.
  Status last = env->RemoveRecipient(0);
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code, "last-recipient");
  ASSERT_EQ(env->recipients.size(), 1u);
  EXPECT_EQ(env->Serialize(), edited);
}

TEST_P(CmsEdit, BadEditsChangeNothing) {
  EditFixture f = EncryptForEdit(GetParam(), SampleContent(10));
  const Bytes before = f.env.Serialize();
  EXPECT_EQ(ErrorCode(f.env.RemoveRecipient(1)), "bad-index");
  EXPECT_EQ(ErrorCode(f.env.ReplaceRecipient(1, f.env.recipients[0].der)), "bad-index");
  EXPECT_EQ(ErrorCode(f.env.AddRecipient(Hex("3003020100ff"))), "malformed-der");
  EXPECT_EQ(ErrorCode(f.env.AddRecipient({})), "malformed-der");
  EXPECT_EQ(ErrorCode(f.env.ReplaceRecipient(0, Hex("a203020104"))), "malformed-der");
  EXPECT_EQ(f.env.Serialize(), before);
}

INSTANTIATE_TEST_SUITE_P(CbcAndGcm, CmsEdit,
                         ::testing::Values(ContentCipher::kAes256Cbc, ContentCipher::kAes256Gcm),
                         [](const ::testing::TestParamInfo<ContentCipher>& p) {
                           return CipherTestName(p.param);
                         });

TEST(CmsEditInterop, SpliceIntoBerMessageFromOpenssl) {
  // Path E on what a stock client sends: BER, indefinite lengths, streamed content.
  TempDir dir;
  const Identity& group = Pki().rsa2048();
  const Identity& member = Pki().p256();
  const Bytes content = SampleContent(3000);
  WriteFileBytes(dir.File("in"), content);
  Openssl(dir, "cms -encrypt -binary -stream -aes256 -outform DER -in " +
                   ShellQuote(dir.File("in")) + " -out " + ShellQuote(dir.File("m.der")) + " " +
                   ShellQuote(group.cert_path));
  Bytes message = ReadFileBytes(dir.File("m.der"));
  ASSERT_GE(message.size(), 2u);
  ASSERT_EQ(message[1], 0x80) << "expected an indefinite-length encoding";

  auto env = Envelope::Parse(message);
  ASSERT_TRUE(env.ok()) << env.error().message;
  const Bytes eci = env->encrypted_content_info;
  EXPECT_TRUE(Contains(message, eci));
  ASSERT_GE(eci.size(), 2u);
  EXPECT_EQ(eci[1], 0x80);  // the streamed EncryptedContentInfo, verbatim
  auto cek = FindAndUnwrapCek(*env, group.key, &group.cert);
  ASSERT_TRUE(cek.ok()) << cek.error().message;
  ASSERT_TRUE(
      env->ReplaceRecipient(0, Unwrap(WrapCek(*cek, member.cert, RsaPadding::kOaepSha256), "wrap"))
          .ok());
  Bytes edited = env->Serialize();
  auto reparsed = Envelope::Parse(edited);
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  EXPECT_EQ(reparsed->encrypted_content_info, eci);
  EXPECT_TRUE(DecryptsWithKey(edited, member.key, &member.cert, content));

  WriteFileBytes(dir.File("edited.der"), edited);
  Openssl(dir, "cms -decrypt -binary -inform DER -in " + ShellQuote(dir.File("edited.der")) +
                   " -recip " + ShellQuote(member.cert_path) + " -inkey " +
                   ShellQuote(member.key_path) + " -out " + ShellQuote(dir.File("out")));
  EXPECT_EQ(ReadFileBytes(dir.File("out")), content);
}

// ---- WrapCek / UnwrapCek ----

TEST(CmsWrapCek, CertificateRecipientsRoundTrip) {
  struct Case {
    const Identity* id;
    RsaPadding padding;
  };
  for (const Case& c :
       {Case{&Pki().rsa2048(), RsaPadding::kOaepSha256},
        Case{&Pki().rsa2048(), RsaPadding::kPkcs1v15},
        Case{&Pki().rsa3072(), RsaPadding::kOaepSha256},
        Case{&Pki().rsa3072(), RsaPadding::kPkcs1v15}, Case{&Pki().p256(), RsaPadding::kOaepSha256},
        Case{&Pki().p384(), RsaPadding::kOaepSha256}}) {
    for (std::size_t len : {16, 24, 32}) {
      SecretBytes cek = RandomSecret(len);
      auto der = WrapCek(cek, c.id->cert, c.padding);
      ASSERT_TRUE(der.ok()) << c.id->name << ": " << der.error().message;
      EXPECT_FALSE(Contains(*der, cek.view()));
      auto ri = RecipientInfo::Parse(*der);
      ASSERT_TRUE(ri.ok()) << c.id->name << ": " << ri.error().message;
      EXPECT_EQ(ri->der, *der);
      auto back = UnwrapCek(*ri, c.id->key);
      ASSERT_TRUE(back.ok()) << c.id->name << " " << len << ": " << back.error().message;
      EXPECT_EQ(*back, cek) << c.id->name << " " << len;
      // A second wrap of the same CEK is randomised (RSA padding / ephemeral key).
      auto again = WrapCek(cek, c.id->cert, c.padding);
      ASSERT_TRUE(again.ok());
      EXPECT_NE(*again, *der) << c.id->name;
    }
  }
}

TEST(CmsWrapCek, RecipientInfoFields) {
  SecretBytes cek = RandomSecret(32);
  {
    auto ri = RecipientInfo::Parse(
        Unwrap(WrapCek(cek, Pki().rsa3072().cert, RsaPadding::kOaepSha256), "wrap"));
    ASSERT_TRUE(ri.ok());
    EXPECT_EQ(ri->kind, RecipientKind::kKeyTrans);
    EXPECT_EQ(ri->rid.kind, RecipientId::Kind::kIssuerSerial);
    EXPECT_TRUE(ri->rid.Matches(Pki().rsa3072().cert));
    EXPECT_EQ(ri->key_alg_oid, oid::kRsaesOaep);
    EXPECT_EQ(ri->encrypted_key.size(), 384u);
    auto params = ParseOaepParams(ri->key_alg_params);
    ASSERT_TRUE(params.ok());
    EXPECT_EQ(params->hash, DigestForOid(oid::kSha256));
    EXPECT_EQ(params->mgf1_hash, DigestForOid(oid::kSha256));
    EXPECT_TRUE(params->label.empty());
    EXPECT_NE(ri->AlgorithmName().find("OAEP"), std::string::npos) << ri->AlgorithmName();
  }
  {
    auto ri = RecipientInfo::Parse(
        Unwrap(WrapCek(cek, Pki().rsa2048().cert, RsaPadding::kPkcs1v15), "wrap"));
    ASSERT_TRUE(ri.ok());
    EXPECT_EQ(ri->key_alg_oid, oid::kRsaEncryption);
    EXPECT_EQ(ri->AlgorithmName(), "RSA PKCS#1 v1.5");
  }
  for (const Identity* id : {&Pki().p256(), &Pki().p384()}) {
    auto ri = RecipientInfo::Parse(Unwrap(WrapCek(cek, id->cert, RsaPadding::kOaepSha256), "w"));
    ASSERT_TRUE(ri.ok());
    EXPECT_EQ(ri->kind, RecipientKind::kKeyAgree);
    EXPECT_EQ(ri->key_alg_oid, oid::kStdDhSha256Kdf);
    EXPECT_EQ(ri->wrap_alg_oid, oid::kAes256Wrap);
    EXPECT_FALSE(ri->ukm.has_value());
    EXPECT_EQ(ri->originator_key.size(), id == &Pki().p256() ? 65u : 97u);
    EXPECT_EQ(ri->originator_key[0], 0x04);
    ASSERT_EQ(ri->recipient_keys.size(), 1u);
    EXPECT_TRUE(ri->recipient_keys[0].rid.Matches(id->cert));
    EXPECT_EQ(ri->recipient_keys[0].encrypted_key.size(), 40u);
    EXPECT_NE(ri->AlgorithmName().find("AES-256 wrap"), std::string::npos) << ri->AlgorithmName();
  }
  for (std::size_t len : {16, 24, 32}) {
    GroupSecret secret = MakeSecret(len, "kek-id");
    auto ri = RecipientInfo::Parse(Unwrap(WrapCek(cek, secret), "wrap"));
    ASSERT_TRUE(ri.ok());
    EXPECT_EQ(ri->kind, RecipientKind::kKek);
    EXPECT_EQ(ri->rid.kind, RecipientId::Kind::kKekId);
    EXPECT_EQ(ri->rid.key_id, ToBytes("kek-id"));
    EXPECT_EQ(ri->key_alg_oid, WrapOidForKeyLength(len));
    EXPECT_EQ(ri->encrypted_key.size(), 40u);
    EXPECT_EQ(ri->AlgorithmName(), "AES-" + std::to_string(len * 8) + " key wrap");
  }
}

TEST(CmsWrapCek, GroupSecretRoundTripAndDeterminism) {
  for (std::size_t kek_len : {16, 24, 32}) {
    GroupSecret secret = MakeSecret(kek_len);
    for (std::size_t cek_len : {16, 24, 32}) {
      SecretBytes cek = RandomSecret(cek_len);
      auto der = WrapCek(cek, secret);
      ASSERT_TRUE(der.ok()) << der.error().message;
      auto ri = RecipientInfo::Parse(*der);
      ASSERT_TRUE(ri.ok());
      auto back = UnwrapCek(*ri, secret);
      ASSERT_TRUE(back.ok()) << back.error().message;
      EXPECT_EQ(*back, cek);
      // AES key wrap has no randomness: the same inputs give the same bytes.
      EXPECT_EQ(Unwrap(WrapCek(cek, secret), "again"), *der);
    }
  }
}

TEST(CmsWrapCek, Errors) {
  SecretBytes cek = RandomSecret(32);
  GroupSecret odd = MakeSecret(20);
  EXPECT_EQ(ErrorCode(WrapCek(cek, odd)), "bad-key");
  GroupSecret no_id = MakeSecret(32);
  no_id.id.clear();
  EXPECT_EQ(ErrorCode(WrapCek(cek, no_id)), "bad-key");

  auto ktri = RecipientInfo::Parse(
      Unwrap(WrapCek(cek, Pki().rsa2048().cert, RsaPadding::kOaepSha256), "w"));
  auto kari =
      RecipientInfo::Parse(Unwrap(WrapCek(cek, Pki().p256().cert, RsaPadding::kOaepSha256), "w"));
  auto kekri = RecipientInfo::Parse(Unwrap(WrapCek(cek, MakeSecret(32)), "w"));
  ASSERT_TRUE(ktri.ok() && kari.ok() && kekri.ok());
  EXPECT_EQ(ErrorCode(UnwrapCek(*ktri, Pki().p256().key)), "wrong-key");
  EXPECT_EQ(ErrorCode(UnwrapCek(*kari, Pki().rsa2048().key)), "wrong-key");
  EXPECT_EQ(ErrorCode(UnwrapCek(*kekri, Pki().rsa2048().key)), "wrong-key");
  EXPECT_EQ(ErrorCode(UnwrapCek(*ktri, MakeSecret(32))), "wrong-key");
  EXPECT_EQ(ErrorCode(UnwrapCek(*kari, Pki().p256().key, 1)), "bad-index");
  EXPECT_TRUE(UnwrapCek(*kari, Pki().p256().key, 0).ok());
}

// ---- interop: openssl cms -encrypt -> this library ----

struct FromOpensslCase {
  const char* name;
  const char* args;  // cipher and options for `openssl cms -encrypt`
  Who who;
  bool auth_enveloped;
  RecipientKind kind;
  RecipientId::Kind rid;
  std::string_view key_alg_oid;
  bool ber;
};

const char* SecretHexFor(Who w) {
  switch (w) {
    case Who::kKek16:
      return "8899aabbccddeeff0011223344556677";
    case Who::kKek24:
      return "8899aabbccddeeff00112233445566778899aabbccddeeff";
    default:
      return "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677";
  }
}

GroupSecret FixedSecret(Who w) {
  GroupSecret s;
  s.id = ToBytes("interop-" + WhoName(w));
  s.key = SecretHex(SecretHexFor(w));
  return s;
}

std::string RecipientArgs(Who w) {
  if (IsKek(w)) {
    GroupSecret s = FixedSecret(w);
    return std::string(" -secretkey ") + SecretHexFor(w) + " -secretkeyid " + ToHex(s.id);
  }
  const Identity& id = IdentityFor(w);
  return " -recip " + ShellQuote(id.cert_path) + " -inkey " + ShellQuote(id.key_path);
}

constexpr std::string_view kSha1Kdf = "1.3.133.16.840.63.0.2";
using IdKind = RecipientId::Kind;

const FromOpensslCase kFromOpenssl[] = {
    {"rsa_pkcs1_aes256cbc", "-aes256", Who::kRsa2048, false, RecipientKind::kKeyTrans,
     IdKind::kIssuerSerial, oid::kRsaEncryption, false},
    {"rsa3072_oaep_sha1_aes128cbc", "-aes128 -keyopt rsa_padding_mode:oaep", Who::kRsa3072, false,
     RecipientKind::kKeyTrans, IdKind::kIssuerSerial, oid::kRsaesOaep, false},
    {"rsa_oaep_sha256_aes192cbc",
     "-aes192 -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256",
     Who::kRsa2048, false, RecipientKind::kKeyTrans, IdKind::kIssuerSerial, oid::kRsaesOaep, false},
    {"rsa_oaep_sha256_label_aes256cbc",
     "-aes256 -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt "
     "rsa_oaep_label:0a0b0c0d",
     Who::kRsa2048, false, RecipientKind::kKeyTrans, IdKind::kIssuerSerial, oid::kRsaesOaep, false},
    {"rsa_pkcs1_keyid_aes256cbc", "-aes256 -keyid", Who::kRsa2048, false, RecipientKind::kKeyTrans,
     IdKind::kSubjectKeyId, oid::kRsaEncryption, false},
    {"rsa_pkcs1_aes256gcm", "-aes-256-gcm", Who::kRsa2048, true, RecipientKind::kKeyTrans,
     IdKind::kIssuerSerial, oid::kRsaEncryption, false},
    {"rsa3072_oaep_aes128gcm", "-aes-128-gcm -keyopt rsa_padding_mode:oaep", Who::kRsa3072, true,
     RecipientKind::kKeyTrans, IdKind::kIssuerSerial, oid::kRsaesOaep, false},
    {"p256_aes256cbc", "-aes256", Who::kP256, false, RecipientKind::kKeyAgree,
     IdKind::kIssuerSerial, kSha1Kdf, false},
    {"p256_sha256kdf_aes128cbc", "-aes128 -keyopt ecdh_kdf_md:sha256", Who::kP256, false,
     RecipientKind::kKeyAgree, IdKind::kIssuerSerial, oid::kStdDhSha256Kdf, false},
    {"p256_cofactor_sha256kdf_aes256gcm",
     "-aes-256-gcm -keyopt ecdh_kdf_md:sha256 -keyopt ecdh_cofactor_mode:1", Who::kP256, true,
     RecipientKind::kKeyAgree, IdKind::kIssuerSerial, "1.3.132.1.14.1", false},
    {"p256_keyid_aes192gcm", "-aes-192-gcm -keyid", Who::kP256, true, RecipientKind::kKeyAgree,
     IdKind::kSubjectKeyId, kSha1Kdf, false},
    {"p384_aes128cbc", "-aes128", Who::kP384, false, RecipientKind::kKeyAgree,
     IdKind::kIssuerSerial, kSha1Kdf, false},
    {"p384_sha384kdf_aes128wrap_aes256cbc", "-aes256 -aes128-wrap -keyopt ecdh_kdf_md:sha384",
     Who::kP384, false, RecipientKind::kKeyAgree, IdKind::kIssuerSerial, "1.3.132.1.11.2", false},
    {"p384_aes256gcm", "-aes-256-gcm", Who::kP384, true, RecipientKind::kKeyAgree,
     IdKind::kIssuerSerial, kSha1Kdf, false},
    {"kek16_aes128cbc", "-aes128", Who::kKek16, false, RecipientKind::kKek, IdKind::kKekId,
     oid::kAes128Wrap, false},
    {"kek24_aes192gcm", "-aes-192-gcm", Who::kKek24, true, RecipientKind::kKek, IdKind::kKekId,
     oid::kAes192Wrap, false},
    {"kek32_aes256cbc", "-aes256", Who::kKek32, false, RecipientKind::kKek, IdKind::kKekId,
     oid::kAes256Wrap, false},
    {"kek32_aes256gcm", "-aes-256-gcm", Who::kKek32, true, RecipientKind::kKek, IdKind::kKekId,
     oid::kAes256Wrap, false},
    // BER: openssl -stream writes indefinite lengths and a segmented encryptedContent.
    {"ber_rsa_pkcs1_aes256cbc", "-aes256 -stream", Who::kRsa2048, false, RecipientKind::kKeyTrans,
     IdKind::kIssuerSerial, oid::kRsaEncryption, true},
    {"ber_p256_aes256gcm", "-aes-256-gcm -stream", Who::kP256, true, RecipientKind::kKeyAgree,
     IdKind::kIssuerSerial, kSha1Kdf, true},
    {"ber_kek32_aes128cbc", "-aes128 -stream", Who::kKek32, false, RecipientKind::kKek,
     IdKind::kKekId, oid::kAes256Wrap, true},
};

class CmsFromOpenssl : public ::testing::TestWithParam<FromOpensslCase> {};

TEST_P(CmsFromOpenssl, ParsesAndDecrypts) {
  const FromOpensslCase& tc = GetParam();
  TempDir dir;
  // Large enough that -stream splits the content into several segments.
  const Bytes content = tc.ber ? SampleContent(9000) : SampleContent(1500);
  WriteFileBytes(dir.File("in"), content);
  std::string recipient_args;
  if (IsKek(tc.who)) {
    recipient_args = RecipientArgs(tc.who);
  } else {
    recipient_args = " -recip " + ShellQuote(IdentityFor(tc.who).cert_path);
  }
  // -keyopt applies to the -recip before it.
  Openssl(dir, "cms -encrypt -binary -outform DER" + recipient_args + " " + tc.args + " -in " +
                   ShellQuote(dir.File("in")) + " -out " + ShellQuote(dir.File("m")));
  Bytes message = ReadFileBytes(dir.File("m"));
  ASSERT_GE(message.size(), 2u);
  EXPECT_EQ(message[1] == 0x80, tc.ber) << "first octets " << ToHex(ByteView(message).first(2));

  auto env = Envelope::Parse(message);
  ASSERT_TRUE(env.ok()) << env.error().code << ": " << env.error().message;
  EXPECT_EQ(env->auth_enveloped, tc.auth_enveloped);
  ASSERT_TRUE(env->cipher.has_value()) << env->cipher_oid;
  ASSERT_EQ(env->recipients.size(), 1u);
  const RecipientInfo& ri = env->recipients[0];
  EXPECT_EQ(ri.kind, tc.kind);
  EXPECT_EQ(ri.key_alg_oid, tc.key_alg_oid);
  const RecipientId& rid =
      ri.kind == RecipientKind::kKeyAgree ? ri.recipient_keys.at(0).rid : ri.rid;
  EXPECT_EQ(rid.kind, tc.rid);

  SecretBytes cek;
  if (IsKek(tc.who)) {
    GroupSecret secret = FixedSecret(tc.who);
    EXPECT_EQ(rid.key_id, secret.id);
    auto r = FindAndUnwrapCek(*env, secret);
    ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
    cek = *r;
  } else {
    const Identity& id = IdentityFor(tc.who);
    EXPECT_TRUE(rid.Matches(id.cert));
    if (tc.rid == IdKind::kSubjectKeyId) {
      EXPECT_EQ(rid.key_id, *id.cert.SubjectKeyId());
      EXPECT_EQ(BodyVersion(message), tc.auth_enveloped ? 0u : 2u);
    }
    auto r = FindAndUnwrapCek(*env, id.key, &id.cert);
    ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
    auto r2 = FindAndUnwrapCek(*env, id.key, nullptr);
    ASSERT_TRUE(r2.ok()) << r2.error().message;
    EXPECT_EQ(*r, *r2);
    cek = *r;
  }
  EXPECT_EQ(cek.size(), CekLength(*env->cipher));
  EXPECT_TRUE(SamePlaintext(DecryptContent(*env, cek), content));

  // Re-serialized (outer DER, inner parts verbatim) it still parses and decrypts.
  Bytes again = env->Serialize();
  auto env2 = Envelope::Parse(again);
  ASSERT_TRUE(env2.ok()) << env2.error().message;
  EXPECT_EQ(env2->encrypted_content_info, env->encrypted_content_info);
  EXPECT_TRUE(SamePlaintext(DecryptContent(*env2, cek), content));
  if (!tc.ber) {
    EXPECT_EQ(again, message) << "openssl's DER should survive a round trip";
  }
}

INSTANTIATE_TEST_SUITE_P(Openssl, CmsFromOpenssl, ::testing::ValuesIn(kFromOpenssl),
                         [](const ::testing::TestParamInfo<FromOpensslCase>& p) {
                           return std::string(p.param.name);
                         });

// ---- interop: this library -> openssl cms -decrypt ----

struct ToOpensslCase {
  ContentCipher cipher;
  Who who;
  RsaPadding padding;
};

class CmsToOpenssl : public ::testing::TestWithParam<ToOpensslCase> {};

TEST_P(CmsToOpenssl, OpensslDecrypts) {
  const ToOpensslCase& tc = GetParam();
  TempDir dir;
  const Bytes content = SampleContent(2500);
  EncryptOptions options;
  options.cipher = tc.cipher;
  options.rsa_padding = tc.padding;
  std::vector<Certificate> certs;
  std::vector<GroupSecret> secrets;
  if (IsKek(tc.who)) {
    secrets.push_back(FixedSecret(tc.who));
  } else {
    certs.push_back(IdentityFor(tc.who).cert);
  }
  auto message = Encrypt(content, certs, secrets, options);
  ASSERT_TRUE(message.ok()) << message.error().message;
  WriteFileBytes(dir.File("m.der"), *message);
  Openssl(dir, "cms -decrypt -binary -inform DER -in " + ShellQuote(dir.File("m.der")) +
                   RecipientArgs(tc.who) + " -out " + ShellQuote(dir.File("out")));
  EXPECT_EQ(ReadFileBytes(dir.File("out")), content);
}

INSTANTIATE_TEST_SUITE_P(
    Openssl, CmsToOpenssl,
    ::testing::Values(
        ToOpensslCase{ContentCipher::kAes256Gcm, Who::kRsa2048, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes256Cbc, Who::kRsa2048, RsaPadding::kPkcs1v15},
        ToOpensslCase{ContentCipher::kAes128Cbc, Who::kRsa3072, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes192Gcm, Who::kRsa3072, RsaPadding::kPkcs1v15},
        ToOpensslCase{ContentCipher::kAes256Gcm, Who::kP256, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes128Cbc, Who::kP256, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes192Cbc, Who::kP384, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes256Gcm, Who::kP384, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes128Gcm, Who::kKek16, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes192Cbc, Who::kKek24, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes256Gcm, Who::kKek32, RsaPadding::kOaepSha256},
        ToOpensslCase{ContentCipher::kAes256Cbc, Who::kKek32, RsaPadding::kOaepSha256}),
    [](const ::testing::TestParamInfo<ToOpensslCase>& p) {
      std::string name = CipherTestName(p.param.cipher) + "_" + WhoName(p.param.who);
      if (IsRsa(p.param.who)) {
        name += p.param.padding == RsaPadding::kOaepSha256 ? "_oaep" : "_pkcs1";
      }
      return name;
    });

TEST(CmsToOpensslMulti, EachRecipientOfAMultiRecipientMessage) {
  TempDir dir;
  const Bytes content = SampleContent(800);
  GroupSecret secret = FixedSecret(Who::kKek32);
  auto message =
      Encrypt(content, {Pki().rsa3072().cert, Pki().p384().cert}, {secret}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  WriteFileBytes(dir.File("m.der"), *message);
  for (Who w : {Who::kRsa3072, Who::kP384, Who::kKek32}) {
    std::string out = dir.File("out-" + WhoName(w));
    Openssl(dir, "cms -decrypt -binary -inform DER -in " + ShellQuote(dir.File("m.der")) +
                     RecipientArgs(w) + " -out " + ShellQuote(out));
    EXPECT_EQ(ReadFileBytes(out), content) << WhoName(w);
  }
}

// ---- known-answer vectors (tests/vectors/cms/manifest.json) ----

nlohmann::json LoadManifest() {
  Bytes raw = ReadFileBytes(testkit::VectorDir() / "manifest.json");
  return nlohmann::json::parse(raw.begin(), raw.end());
}

Bytes JsonHex(const nlohmann::json& j, const char* key) {
  return Hex(j.at(key).get<std::string>());
}

TEST(CmsVectors, OpensslMessagesDecrypt) {
  const nlohmann::json manifest = LoadManifest();
  const auto& messages = manifest.at("messages");
  ASSERT_GE(messages.size(), 8u);
  const auto dir = testkit::VectorDir();
  for (const auto& v : messages) {
    const std::string file = v.at("file").get<std::string>();
    SCOPED_TRACE(file);
    Bytes message = ReadFileBytes(dir / file);
    Bytes plaintext = ReadFileBytes(dir / v.at("plaintext").get<std::string>());
    if (v.at("ber").get<bool>()) {
      EXPECT_EQ(message.at(1), 0x80);
    } else {
      EXPECT_NE(message.at(1), 0x80);
    }
    auto env = Envelope::Parse(message);
    ASSERT_TRUE(env.ok()) << env.error().code << ": " << env.error().message;
    ASSERT_TRUE(env->cipher.has_value());
    EXPECT_EQ(ContentCipherName(*env->cipher), v.at("cipher").get<std::string>());
    EXPECT_EQ(env->auth_enveloped, v.at("auth_enveloped").get<bool>());
    ASSERT_EQ(env->recipients.size(), 1u);
    const RecipientInfo& ri = env->recipients[0];
    EXPECT_EQ(RecipientKindName(ri.kind), v.at("recipient_kind").get<std::string>());
    EXPECT_EQ(ri.key_alg_oid, v.at("key_alg_oid").get<std::string>());
    const RecipientId& rid =
        ri.kind == RecipientKind::kKeyAgree ? ri.recipient_keys.at(0).rid : ri.rid;
    const std::string describe = rid.Describe();
    EXPECT_EQ(describe.substr(0, describe.find(':')), v.at("rid").get<std::string>());

    const auto& recipient = v.at("recipient");
    SecretBytes cek;
    if (recipient.contains("secret")) {
      GroupSecret secret;
      secret.id = JsonHex(recipient, "secret_id");
      secret.key = SecretBytes(JsonHex(recipient, "secret"));
      cek = Unwrap(FindAndUnwrapCek(*env, secret), "unwrap " + file);
    } else {
      auto key = PrivateKey::LoadFile((dir / recipient.at("key").get<std::string>()).string());
      ASSERT_TRUE(key.ok()) << key.error().message;
      auto cert = Certificate::LoadFile((dir / recipient.at("cert").get<std::string>()).string());
      ASSERT_TRUE(cert.ok()) << cert.error().message;
      ASSERT_TRUE(cert->Matches(*key));
      EXPECT_TRUE(rid.Matches(*cert));
      cek = Unwrap(FindAndUnwrapCek(*env, *key, &*cert), "unwrap " + file);
    }
    EXPECT_EQ(cek.size(), CekLength(*env->cipher));
    EXPECT_TRUE(SamePlaintext(DecryptContent(*env, cek), plaintext));
  }
}

TEST(CmsVectors, AesKeyWrapRfc3394) {
  const nlohmann::json manifest = LoadManifest();
  const auto& vectors = manifest.at("aes_key_wrap");
  ASSERT_EQ(vectors.size(), 6u);
  for (const auto& v : vectors) {
    SCOPED_TRACE(v.at("source").get<std::string>());
    SecretBytes kek(JsonHex(v, "kek"));
    SecretBytes key(JsonHex(v, "key"));
    Bytes wrapped = JsonHex(v, "wrapped");
    auto w = AesWrap(kek, key);
    ASSERT_TRUE(w.ok()) << w.error().message;
    EXPECT_EQ(ToHex(*w), ToHex(wrapped));
    auto u = AesUnwrap(kek, wrapped);
    ASSERT_TRUE(u.ok()) << u.error().message;
    EXPECT_EQ(*u, key);
    // The integrity check catches any change.
    Bytes bad = wrapped;
    bad[bad.size() / 2] ^= 0x01;
    EXPECT_EQ(ErrorCode(AesUnwrap(kek, bad)), "unwrap-failed");
    SecretBytes other_kek = kek;
    other_kek[0] ^= 0x01;
    EXPECT_EQ(ErrorCode(AesUnwrap(other_kek, wrapped)), "unwrap-failed");
  }
}

TEST(CmsVectors, AesKeyWrapRejectsBadSizes) {
  SecretBytes kek(Bytes(16, 7));
  EXPECT_EQ(ErrorCode(AesWrap(SecretBytes(Bytes(20, 7)), SecretBytes(Bytes(16, 1)))), "bad-key");
  EXPECT_EQ(ErrorCode(AesWrap(kek, SecretBytes(Bytes(8, 1)))), "bad-key");
  EXPECT_EQ(ErrorCode(AesWrap(kek, SecretBytes(Bytes(20, 1)))), "bad-key");
  EXPECT_EQ(ErrorCode(AesUnwrap(kek, Bytes(16, 0))), "unwrap-failed");
  EXPECT_EQ(ErrorCode(AesUnwrap(kek, Bytes(25, 0))), "unwrap-failed");
  EXPECT_EQ(ErrorCode(AesUnwrap(kek, Bytes(80, 0))), "unwrap-failed");
}

// AesWrap/AesUnwrap run RFC 3394 over AES-ECB; OpenSSL's own wrap cipher is the reference.
TEST(CmsVectors, AesKeyWrapOverEcbMatchesOpensslWrapCipher) {
  for (std::size_t kek_len : {16u, 24u, 32u}) {
    for (std::size_t key_len : {16u, 24u, 32u, 64u}) {
      SCOPED_TRACE("kek " + std::to_string(kek_len) + " key " + std::to_string(key_len));
      SecretBytes kek = RandomSecret(kek_len);
      SecretBytes key = RandomSecret(key_len);
      const EVP_CIPHER* reference = kek_len == 16   ? EVP_aes_128_wrap()
                                    : kek_len == 24 ? EVP_aes_192_wrap()
                                                    : EVP_aes_256_wrap();
      EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
      Bytes expected(key_len + 8);
      int len = 0;
      ASSERT_EQ(EVP_EncryptInit_ex(ctx.get(), reference, nullptr, kek.data(), nullptr), 1);
      ASSERT_EQ(EVP_EncryptUpdate(ctx.get(), expected.data(), &len, key.data(),
                                  static_cast<int>(key_len)),
                1);
      ASSERT_EQ(static_cast<std::size_t>(len), key_len + 8);
      auto w = AesWrap(kek, key);
      ASSERT_TRUE(w.ok()) << w.error().message;
      EXPECT_EQ(ToHex(*w), ToHex(expected));
      auto u = AesUnwrap(kek, expected);
      ASSERT_TRUE(u.ok()) << u.error().message;
      EXPECT_EQ(*u, key);
      // Each 64-bit block is covered by the integrity check, the first and the last too.
      for (std::size_t at : {std::size_t{0}, std::size_t{8}, expected.size() - 1}) {
        Bytes bad = expected;
        bad[at] ^= 0x80;
        EXPECT_EQ(ErrorCode(AesUnwrap(kek, bad)), "unwrap-failed") << "byte " << at;
      }
    }
  }
}

// The key holder's ECDH (no peer EVP_PKEY) agrees with the EVP path and refuses the same points.
TEST(CmsVectors, EcdhWithKeyMatchesEvpDerive) {
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384}) {
    SCOPED_TRACE(std::string(KeyTypeName(type)));
    auto mine = PrivateKey::Generate(type);
    auto theirs = PrivateKey::Generate(type);
    ASSERT_TRUE(mine.ok() && theirs.ok());
    EXPECT_EQ(mine->type(), type);
    // Their public point, uncompressed, as a KARI originator key carries it.
    EVP_PKEY* their_pkey = theirs->impl().pkey.get();
    std::uint8_t* encoded = nullptr;
    std::size_t encoded_len = EVP_PKEY_get1_encoded_public_key(their_pkey, &encoded);
    ASSERT_GT(encoded_len, 0u);
    Bytes point(encoded, encoded + encoded_len);
    OPENSSL_free(encoded);
    auto z = EcdhWithKey(*mine, point);
    ASSERT_TRUE(z.ok()) << z.error().message;
    auto reference = EcdhDerive(mine->impl().pkey.get(), their_pkey);
    ASSERT_TRUE(reference.ok()) << reference.error().message;
    EXPECT_EQ(*z, *reference);
    // Compressed form of the same point gives the same secret.
    Bytes compressed(point.begin(), point.begin() + 1 + (point.size() - 1) / 2);
    compressed[0] = static_cast<std::uint8_t>(0x02 | (point.back() & 1));
    auto zc = EcdhWithKey(*mine, compressed);
    ASSERT_TRUE(zc.ok()) << zc.error().message;
    EXPECT_EQ(*zc, *reference);
    // The point at infinity, a point off the curve and an empty point are refused.
    EXPECT_EQ(ErrorCode(EcdhWithKey(*mine, Bytes{0x00})), "bad-point");
    EXPECT_EQ(ErrorCode(EcdhWithKey(*mine, Bytes{})), "bad-point");
    Bytes off = point;
    off.back() ^= 0x01;
    EXPECT_EQ(ErrorCode(EcdhWithKey(*mine, off)), "bad-point");
  }
  auto rsa = PrivateKey::Generate(KeyType::kRsa, 2048);
  ASSERT_TRUE(rsa.ok());
  EXPECT_EQ(ErrorCode(EcdhWithKey(*rsa, Bytes(65, 0x04))), "wrong-key");
}

TEST(CmsVectors, X963KdfForKari) {
  const nlohmann::json manifest = LoadManifest();
  const auto& vectors = manifest.at("x963_kdf");
  ASSERT_GE(vectors.size(), 4u);
  for (const auto& v : vectors) {
    const std::string scheme = v.at("scheme_oid").get<std::string>();
    SCOPED_TRACE(scheme + " " + v.at("digest").get<std::string>());
    const EVP_MD* md = KdfDigestForScheme(scheme);
    ASSERT_NE(md, nullptr);
    Bytes z = JsonHex(v, "z");
    std::optional<Bytes> ukm;
    if (!v.at("ukm").is_null()) ukm = JsonHex(v, "ukm");
    auto kek = KariKek(md, z, v.at("wrap_oid").get<std::string>(), ukm ? &*ukm : nullptr);
    ASSERT_TRUE(kek.ok()) << kek.error().message;
    EXPECT_EQ(ToHex(kek->view()), v.at("kek").get<std::string>());
  }
  EXPECT_EQ(ErrorCode(KariKek(KdfDigestForScheme(oid::kStdDhSha256Kdf), Bytes(32, 1),
                              "2.16.840.1.101.3.4.1.2", nullptr)),
            "unsupported");
  EXPECT_EQ(KdfDigestForScheme("1.2.3.4"), nullptr);
}

// CekWrapper: the EC recipients of one message share one originator key per curve, each still
// unwraps with only its own key; every RecipientInfo is one WrapCek would make; another
// wrapper (another message) has a fresh ephemeral key.
TEST(CekWrapper, SharesOneEphemeralPerCurveAndEachRecipientUnwraps) {
  const SecretBytes cek = RandomSecret(32);
  auto other_key = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(other_key.ok());
  CertificateProfile profile;
  profile.common_name = "second p256";
  profile.email = "b@example.org";
  auto other_cert =
      IssueCertificate(other_key->PublicKeyDer(), profile, Pki().ca().cert, Pki().ca().key);
  ASSERT_TRUE(other_cert.ok()) << other_cert.error().message;

  CekWrapper wrapper(cek, RsaPadding::kPkcs1v15);
  struct Case {
    const PrivateKey* key;
    const Certificate* cert;
  };
  const std::vector<Case> cases = {{&Pki().p256().key, &Pki().p256().cert},
                                   {&*other_key, &*other_cert},
                                   {&Pki().p384().key, &Pki().p384().cert},
                                   {&Pki().rsa2048().key, &Pki().rsa2048().cert}};
  std::vector<RecipientInfo> ris;
  for (const Case& c : cases) {
    auto der = wrapper.Wrap(*c.cert);
    ASSERT_TRUE(der.ok()) << der.error().message;
    auto ri = RecipientInfo::Parse(*der);
    ASSERT_TRUE(ri.ok()) << ri.error().message;
    auto unwrapped = UnwrapCek(*ri, *c.key);
    ASSERT_TRUE(unwrapped.ok()) << unwrapped.error().message;
    EXPECT_EQ(*unwrapped, cek);
    ris.push_back(std::move(*ri));
  }
  // The two P-256 recipients share the originator key; P-384 has its own; RSA has none.
  EXPECT_EQ(ris[0].kind, RecipientKind::kKeyAgree);
  EXPECT_EQ(ris[0].originator_key, ris[1].originator_key);
  EXPECT_NE(ris[0].recipient_keys[0].encrypted_key, ris[1].recipient_keys[0].encrypted_key);
  EXPECT_NE(ris[2].originator_key, ris[0].originator_key);
  EXPECT_EQ(ris[2].originator_key.size(), 97u);
  EXPECT_EQ(ris[3].kind, RecipientKind::kKeyTrans);
  // One recipient's key never opens another's RecipientInfo.
  EXPECT_FALSE(UnwrapCek(ris[1], Pki().p256().key).ok());
  // A second message: a fresh ephemeral key.
  CekWrapper next(cek, RsaPadding::kPkcs1v15);
  auto again = next.Wrap(Pki().p256().cert);
  ASSERT_TRUE(again.ok());
  auto again_ri = RecipientInfo::Parse(*again);
  ASSERT_TRUE(again_ri.ok());
  EXPECT_NE(again_ri->originator_key, ris[0].originator_key);
}

}  // namespace
}  // namespace blindlist::crypto
