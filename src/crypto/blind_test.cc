#include "crypto/blind.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/cms.h"
#include "crypto/der.h"
#include "crypto/test_support.h"

namespace blindlist::crypto {
namespace {

using testkit::Contains;
using testkit::ErrorCode;
using testkit::Exposed;
using testkit::Identity;
using testkit::Openssl;
using testkit::ReadFileBytes;
using testkit::ShellQuote;
using testkit::TempDir;
using testkit::TestPki;
using testkit::Unwrap;
using testkit::WriteFileBytes;

const TestPki& Pki() { return TestPki::Get(); }

Bytes SampleContent(std::size_t n) {
  std::string s = "Content-Type: text/plain\r\n\r\n";
  while (s.size() < n) s += "Only the member can read this. ";
  s.resize(n);
  return ToBytes(s);
}

// The RSA modulus n of `cert`, big-endian, from its SubjectPublicKeyInfo.
Bytes RsaModulus(const Certificate& cert) {
  // Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version, serial, sigalg, issuer,
  //   validity, subject, SubjectPublicKeyInfo, ... } ... }
  Bytes der_cert = cert.Der();
  auto outer = der::ParseSingle(der_cert, "certificate");
  EXPECT_TRUE(outer.ok());
  der::DerReader c(*outer);
  auto tbs = c.Next("tbs");
  EXPECT_TRUE(tbs.ok());
  der::DerReader t(*tbs);
  if (t.PeekTag() == der::ContextConstructed(0)) {
    EXPECT_TRUE(t.Next("version").ok());
  }
  for (const char* skip : {"serial", "signature", "issuer", "validity", "subject"}) {
    EXPECT_TRUE(t.Next(skip).ok());
  }
  auto spki = t.Expect(der::kSequence, "spki");
  EXPECT_TRUE(spki.ok());
  der::DerReader s(*spki);
  EXPECT_TRUE(s.Next("algorithm").ok());
  auto bits = s.Expect(der::kBitString, "subjectPublicKey");
  EXPECT_TRUE(bits.ok());
  // BIT STRING: one octet of unused bits, then RSAPublicKey ::= SEQUENCE { n, e }.
  auto rsa = der::ParseSingle(bits->content.subspan(1), "RSAPublicKey");
  EXPECT_TRUE(rsa.ok());
  der::DerReader r(*rsa);
  auto n = r.Expect(der::kInteger, "n");
  EXPECT_TRUE(n.ok());
  ByteView value = n->content;
  while (!value.empty() && value[0] == 0) value = value.subspan(1);
  return Bytes(value.begin(), value.end());
}

// Adds one to a big-endian unsigned integer of fixed width (wrapping is not expected).
Bytes PlusOne(Bytes v) {
  for (std::size_t i = v.size(); i-- > 0;) {
    if (++v[i] != 0) break;
  }
  return v;
}

Bytes MinusOne(Bytes v) {
  for (std::size_t i = v.size(); i-- > 0;) {
    if (v[i]-- != 0) break;
  }
  return v;
}

// ---- the whole blind unwrap, for every group key kind ----

struct BlindCase {
  const char* name;
  const Identity* (*identity)();
  RsaPadding padding;
  ContentCipher cipher;
};

const Identity* Rsa2048() { return &Pki().rsa2048(); }
const Identity* Rsa3072() { return &Pki().rsa3072(); }
const Identity* P256() { return &Pki().p256(); }
const Identity* P384() { return &Pki().p384(); }

const BlindCase kCases[] = {
    {"rsa2048_oaep_gcm", Rsa2048, RsaPadding::kOaepSha256, ContentCipher::kAes256Gcm},
    {"rsa2048_pkcs1_cbc", Rsa2048, RsaPadding::kPkcs1v15, ContentCipher::kAes256Cbc},
    {"rsa3072_oaep_cbc", Rsa3072, RsaPadding::kOaepSha256, ContentCipher::kAes128Cbc},
    {"rsa3072_pkcs1_gcm", Rsa3072, RsaPadding::kPkcs1v15, ContentCipher::kAes192Gcm},
    {"p256_gcm", P256, RsaPadding::kOaepSha256, ContentCipher::kAes256Gcm},
    {"p256_cbc", P256, RsaPadding::kOaepSha256, ContentCipher::kAes128Cbc},
    {"p384_gcm", P384, RsaPadding::kOaepSha256, ContentCipher::kAes128Gcm},
    {"p384_cbc", P384, RsaPadding::kOaepSha256, ContentCipher::kAes256Cbc},
};

class BlindUnwrap : public ::testing::TestWithParam<BlindCase> {
 protected:
  void SetUp() override {
    const BlindCase& tc = GetParam();
    group_ = tc.identity();
    content_ = SampleContent(700);
    EncryptOptions options;
    options.cipher = tc.cipher;
    options.rsa_padding = tc.padding;
    // Another recipient first, so the group's RecipientInfo must be found, not assumed.
    const Certificate& other =
        group_ == &Pki().rsa2048() ? Pki().rsa2048b().cert : Pki().rsa2048().cert;
    message_ = Unwrap(Encrypt(content_, {other, group_->cert}, {}, options), "encrypt");
    env_ = Unwrap(Envelope::Parse(message_), "parse");
    for (const RecipientInfo& ri : env_.recipients) {
      const RecipientId& rid =
          ri.kind == RecipientKind::kKeyAgree ? ri.recipient_keys.at(0).rid : ri.rid;
      if (rid.Matches(group_->cert)) ri_ = &ri;
    }
    ASSERT_NE(ri_, nullptr);
    expected_cek_ = Unwrap(UnwrapCek(*ri_, group_->key), "direct unwrap");
  }

  bool IsRsa() const { return group_->key.type() == KeyType::kRsa; }

  const Identity* group_ = nullptr;
  Bytes content_;
  Bytes message_;
  Envelope env_;
  const RecipientInfo* ri_ = nullptr;
  SecretBytes expected_cek_;
};

TEST_P(BlindUnwrap, FinishGivesTheCekAndTheContentDecrypts) {
  auto req = BlindRequest::Create(*ri_, group_->cert);
  ASSERT_TRUE(req.ok()) << req.error().code << ": " << req.error().message;
  EXPECT_EQ(req->kind(), IsRsa() ? BlindKind::kRsa : BlindKind::kEc);
  if (IsRsa()) {
    EXPECT_EQ(req->blinded().size(), static_cast<std::size_t>(group_->key.bits() / 8));
    EXPECT_NE(req->blinded(), ri_->encrypted_key);
  } else {
    EXPECT_EQ(req->blinded().size(), ri_->originator_key.size());
    EXPECT_EQ(req->blinded()[0], 0x04);
    EXPECT_NE(req->blinded(), ri_->originator_key);
  }

  // The key holder sees only the blinded value.
  auto response = ApplyBlind(group_->key, req->blinded());
  ASSERT_TRUE(response.ok()) << response.error().code << ": " << response.error().message;
  auto cek = req->Finish(*response);
  ASSERT_TRUE(cek.ok()) << cek.error().code << ": " << cek.error().message;
  EXPECT_EQ(*cek, expected_cek_);
  EXPECT_EQ(cek->size(), CekLength(*env_.cipher));
  auto plain = DecryptContent(env_, *cek);
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(Exposed(*plain), content_);
}

TEST_P(BlindUnwrap, BlindingIsRandomised) {
  auto a = BlindRequest::Create(*ri_, group_->cert);
  auto b = BlindRequest::Create(*ri_, group_->cert);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->blinded(), b->blinded());
  auto ra = ApplyBlind(group_->key, a->blinded());
  auto rb = ApplyBlind(group_->key, b->blinded());
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_NE(*ra, *rb);
  auto ca = a->Finish(*ra);
  auto cb = b->Finish(*rb);
  ASSERT_TRUE(ca.ok() && cb.ok());
  EXPECT_EQ(*ca, expected_cek_);
  EXPECT_EQ(*cb, expected_cek_);
}

TEST_P(BlindUnwrap, KeyHolderLearnsNeitherTheCekNorTheUnblindedValue) {
  auto req = BlindRequest::Create(*ri_, group_->cert);
  ASSERT_TRUE(req.ok());
  auto response = ApplyBlind(group_->key, req->blinded());
  ASSERT_TRUE(response.ok());
  const Bytes cek = Exposed(expected_cek_);
  EXPECT_FALSE(Contains(*response, cek));
  EXPECT_FALSE(Contains(req->blinded(), cek));
  EXPECT_NE(*response, cek);

  // What the key holder would compute on the unblinded value, which the member never sends:
  // RSA: the encoded message m (for PKCS#1 v1.5 it ends with the CEK in the clear);
  // EC: the ECDH secret Z from which the KEK follows.
  ByteView unblinded_input = IsRsa() ? ByteView(ri_->encrypted_key) : ByteView(ri_->originator_key);
  auto unblinded = ApplyBlind(group_->key, unblinded_input);
  ASSERT_TRUE(unblinded.ok()) << unblinded.error().message;
  EXPECT_NE(*response, *unblinded);
  EXPECT_NE(req->blinded(), Bytes(unblinded_input.begin(), unblinded_input.end()));
  if (IsRsa() && GetParam().padding == RsaPadding::kPkcs1v15) {
    // Positive control for Contains(): the unblinded private-key operation does expose the CEK.
    EXPECT_TRUE(Contains(*unblinded, cek));
  }
}

TEST_P(BlindUnwrap, WrongResponsesFail) {
  auto a = BlindRequest::Create(*ri_, group_->cert);
  auto b = BlindRequest::Create(*ri_, group_->cert);
  ASSERT_TRUE(a.ok() && b.ok());
  auto rb = ApplyBlind(group_->key, b->blinded());
  ASSERT_TRUE(rb.ok());

  Bytes too_short(rb->begin(), rb->end() - 1);
  EXPECT_EQ(ErrorCode(a->Finish(too_short)), "bad-response");
  Bytes too_long = *rb;
  too_long.push_back(0);
  EXPECT_EQ(ErrorCode(a->Finish(too_long)), "bad-response");
  EXPECT_EQ(ErrorCode(a->Finish({})), "bad-response");

  // b's answer does not finish a's request (different blinding factor). RSA PKCS#1
  // v1.5 padding passes by chance about once in 2^16; then the result is garbage.
  auto crossed = a->Finish(*rb);
  if (crossed.ok()) {
    EXPECT_TRUE(IsRsa() && GetParam().padding == RsaPadding::kPkcs1v15);
    EXPECT_NE(*crossed, expected_cek_);
  } else {
    EXPECT_EQ(crossed.error().code, "unwrap-failed");
  }
}

INSTANTIATE_TEST_SUITE_P(GroupKeys, BlindUnwrap, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<BlindCase>& p) {
                           return std::string(p.param.name);
                         });

// ---- ApplyBlind input checks (the key holder's side faces untrusted input) ----

TEST(ApplyBlindEc, RejectsBadPoints) {
  for (const Identity* id : {&Pki().p256(), &Pki().p384()}) {
    SCOPED_TRACE(id->name);
    const std::size_t field = id->key.type() == KeyType::kEcP256 ? 32 : 48;
    auto expect_bad_point = [&](const Bytes& point, const char* what) {
      auto r = ApplyBlind(id->key, point);
      ASSERT_FALSE(r.ok()) << what;
      EXPECT_EQ(r.error().code, "bad-point") << what << ": " << r.error().message;
    };
    expect_bad_point(Bytes{0x00}, "point at infinity");
    expect_bad_point(Bytes{}, "empty");
    // (1, 1) is on neither curve: 1 = 1 - 3 + b would need b = 3.
    Bytes off_curve{0x04};
    off_curve.resize(1 + 2 * field, 0);
    off_curve[field] = 1;
    off_curve[2 * field] = 1;
    expect_bad_point(off_curve, "(1, 1)");
    Bytes zero{0x04};
    zero.resize(1 + 2 * field, 0);
    expect_bad_point(zero, "(0, 0)");

    // A valid point from a real request, then broken in length or form.
    auto message = Encrypt(SampleContent(10), {id->cert}, {}, EncryptOptions{});
    ASSERT_TRUE(message.ok());
    auto env = Envelope::Parse(*message);
    ASSERT_TRUE(env.ok());
    auto req = BlindRequest::Create(env->recipients[0], id->cert);
    ASSERT_TRUE(req.ok());
    const Bytes good = req->blinded();
    ASSERT_EQ(good.size(), 1 + 2 * field);
    ASSERT_TRUE(ApplyBlind(id->key, good).ok());
    expect_bad_point(Bytes(good.begin(), good.end() - 1), "one octet short");
    Bytes longer = good;
    longer.push_back(0x00);
    expect_bad_point(longer, "one octet long");
    Bytes x_only(good.begin(), good.begin() + 1 + static_cast<std::ptrdiff_t>(field));
    expect_bad_point(x_only, "uncompressed tag with x only");
    Bytes wrong_y = good;
    wrong_y.back() ^= 0x01;
    expect_bad_point(wrong_y, "y changed");
    Bytes bad_tag = good;
    bad_tag[0] = 0x05;
    expect_bad_point(bad_tag, "unknown form octet");
    Bytes rsa_sized(256, 0x42);
    expect_bad_point(rsa_sized, "an RSA-sized value");
  }
  // A P-256 point to the P-384 key and the other way round.
  auto m256 = Encrypt(SampleContent(10), {Pki().p256().cert}, {}, EncryptOptions{});
  auto m384 = Encrypt(SampleContent(10), {Pki().p384().cert}, {}, EncryptOptions{});
  ASSERT_TRUE(m256.ok() && m384.ok());
  auto r256 =
      BlindRequest::Create(Unwrap(Envelope::Parse(*m256), "p").recipients[0], Pki().p256().cert);
  auto r384 =
      BlindRequest::Create(Unwrap(Envelope::Parse(*m384), "p").recipients[0], Pki().p384().cert);
  ASSERT_TRUE(r256.ok() && r384.ok());
  EXPECT_EQ(ErrorCode(ApplyBlind(Pki().p384().key, r256->blinded())), "bad-point");
  EXPECT_EQ(ErrorCode(ApplyBlind(Pki().p256().key, r384->blinded())), "bad-point");
}

TEST(ApplyBlindEc, AcceptsCompressedPoints) {
  // SEC1 compressed form of a valid point gives the same x(d·P) as its uncompressed form.
  const Identity& id = Pki().p256();
  auto message = Encrypt(SampleContent(10), {id.cert}, {}, EncryptOptions{});
  ASSERT_TRUE(message.ok());
  auto env = Envelope::Parse(*message);
  ASSERT_TRUE(env.ok());
  auto req = BlindRequest::Create(env->recipients[0], id.cert);
  ASSERT_TRUE(req.ok());
  const Bytes& p = req->blinded();
  Bytes compressed(p.begin(), p.begin() + 33);
  compressed[0] = (p.back() & 1) ? 0x03 : 0x02;
  auto a = ApplyBlind(id.key, p);
  auto b = ApplyBlind(id.key, compressed);
  ASSERT_TRUE(a.ok() && b.ok()) << ErrorCode(b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 32u);
}

TEST(ApplyBlindRsa, RejectsOutOfRangeValues) {
  for (const Identity* id : {&Pki().rsa2048(), &Pki().rsa3072()}) {
    SCOPED_TRACE(id->name);
    const Bytes n = RsaModulus(id->cert);
    const std::size_t k = n.size();
    ASSERT_EQ(k, static_cast<std::size_t>(id->key.bits() / 8));
    auto expect_out_of_range = [&](const Bytes& v, const char* what) {
      auto r = ApplyBlind(id->key, v);
      ASSERT_FALSE(r.ok()) << what;
      EXPECT_EQ(r.error().code, "out-of-range") << what << ": " << r.error().message;
    };
    Bytes zero(k, 0);
    expect_out_of_range(zero, "0");
    Bytes one(k, 0);
    one.back() = 1;
    expect_out_of_range(one, "1");
    expect_out_of_range(n, "n");
    expect_out_of_range(PlusOne(n), "n + 1");
    expect_out_of_range(Bytes(k, 0xff), "2^(8k) - 1");
    Bytes two(k, 0);
    two.back() = 2;
    expect_out_of_range(Bytes(two.begin() + 1, two.end()), "k - 1 octets");
    Bytes padded{0x00};
    padded.insert(padded.end(), two.begin(), two.end());
    expect_out_of_range(padded, "k + 1 octets, leading zero");
    expect_out_of_range(Bytes{}, "empty");
    expect_out_of_range(Bytes{0x02}, "one octet");

    // The edges of the valid range are accepted.
    auto r2 = ApplyBlind(id->key, two);
    ASSERT_TRUE(r2.ok()) << r2.error().message;
    EXPECT_EQ(r2->size(), k);
    auto top = ApplyBlind(id->key, MinusOne(n));
    ASSERT_TRUE(top.ok()) << top.error().message;
    // (n - 1)^d = (-1)^d = -1 mod n, d being odd.
    EXPECT_EQ(*top, MinusOne(n));
  }
}

TEST(ApplyBlindRsa, IsTheRawPrivateKeyOperation) {
  // For PKCS#1 v1.5, m = 00 02 PS 00 CEK: the raw operation on c gives m.
  const Identity& id = Pki().rsa2048();
  SecretBytes cek = RandomSecret(32);
  auto ri = RecipientInfo::Parse(Unwrap(WrapCek(cek, id.cert, RsaPadding::kPkcs1v15), "wrap"));
  ASSERT_TRUE(ri.ok());
  auto m = ApplyBlind(id.key, ri->encrypted_key);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->size(), 256u);
  EXPECT_EQ((*m)[0], 0x00);
  EXPECT_EQ((*m)[1], 0x02);
  EXPECT_EQ((*m)[256 - 33], 0x00);
  EXPECT_EQ(Bytes(m->end() - 32, m->end()), Exposed(cek));
}

TEST(ApplyBlind, KeyTypeMismatch) {
  // An RSA-sized value to an EC key and an EC point to an RSA key.
  EXPECT_EQ(ErrorCode(ApplyBlind(Pki().p256().key, Bytes(256, 0x42))), "bad-point");
  Bytes point(65, 0x01);
  point[0] = 0x04;
  EXPECT_EQ(ErrorCode(ApplyBlind(Pki().rsa2048().key, point)), "out-of-range");
}

// ---- BlindRequest::Create input checks ----

TEST(BlindRequestCreate, RefusesMismatchedInputs) {
  SecretBytes cek = RandomSecret(32);
  auto ktri = RecipientInfo::Parse(
      Unwrap(WrapCek(cek, Pki().rsa2048().cert, RsaPadding::kOaepSha256), "w"));
  auto kari =
      RecipientInfo::Parse(Unwrap(WrapCek(cek, Pki().p256().cert, RsaPadding::kOaepSha256), "w"));
  GroupSecret secret;
  secret.id = ToBytes("v1");
  secret.key = RandomSecret(32);
  auto kekri = RecipientInfo::Parse(Unwrap(WrapCek(cek, secret), "w"));
  ASSERT_TRUE(ktri.ok() && kari.ok() && kekri.ok());

  EXPECT_EQ(ErrorCode(BlindRequest::Create(*ktri, Pki().p256().cert)), "wrong-key");
  EXPECT_EQ(ErrorCode(BlindRequest::Create(*kari, Pki().rsa2048().cert)), "wrong-key");
  EXPECT_EQ(ErrorCode(BlindRequest::Create(*kekri, Pki().rsa2048().cert)), "wrong-key");
  EXPECT_EQ(ErrorCode(BlindRequest::Create(*kari, Pki().p256().cert, 1)), "bad-index");
  // A KTRI for a 2048-bit key against a 3072-bit group certificate.
  EXPECT_FALSE(BlindRequest::Create(*ktri, Pki().rsa3072().cert).ok());
  // A P-256 ephemeral point against a P-384 group certificate.
  EXPECT_FALSE(BlindRequest::Create(*kari, Pki().p384().cert).ok());
}

// ---- blind unwrap of what a stock client (openssl) sends to the group ----

TEST(BlindInterop, OpensslMessages) {
  struct Case {
    const Identity* id;
    const char* args;
  };
  TempDir dir;
  const Bytes content = SampleContent(1200);
  WriteFileBytes(dir.File("in"), content);
  int i = 0;
  for (const Case& c :
       {Case{&Pki().rsa3072(), "-aes256"},  // PKCS#1 v1.5, what NSS sends
        Case{&Pki().rsa2048(), "-aes-256-gcm -keyopt rsa_padding_mode:oaep"},
        Case{&Pki().rsa2048(),
             "-aes128 -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt "
             "rsa_oaep_label:cafe"},
        Case{&Pki().p256(), "-aes256"},  // SHA-1 KDF
        Case{&Pki().p384(), "-aes-128-gcm -keyopt ecdh_kdf_md:sha384 -keyid"}}) {
    SCOPED_TRACE(std::string(c.id->name) + " " + c.args);
    std::string out = dir.File("m" + std::to_string(++i));
    Openssl(dir, "cms -encrypt -binary -outform DER -recip " + ShellQuote(c.id->cert_path) + " " +
                     c.args + " -in " + ShellQuote(dir.File("in")) + " -out " + ShellQuote(out));
    auto env = Envelope::Parse(ReadFileBytes(out));
    ASSERT_TRUE(env.ok()) << env.error().message;
    const RecipientInfo& ri = env->recipients.at(0);
    auto req = BlindRequest::Create(ri, c.id->cert);
    ASSERT_TRUE(req.ok()) << req.error().code << ": " << req.error().message;
    auto response = ApplyBlind(c.id->key, req->blinded());
    ASSERT_TRUE(response.ok()) << response.error().message;
    auto cek = req->Finish(*response);
    ASSERT_TRUE(cek.ok()) << cek.error().code << ": " << cek.error().message;
    auto direct = UnwrapCek(ri, c.id->key);
    ASSERT_TRUE(direct.ok()) << direct.error().message;
    EXPECT_EQ(*cek, *direct);
    auto plain = DecryptContent(*env, *cek);
    ASSERT_TRUE(plain.ok()) << plain.error().message;
    EXPECT_EQ(Exposed(*plain), content);
  }
}

}  // namespace
}  // namespace blindlist::crypto
