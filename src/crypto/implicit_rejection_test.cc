// UnwrapCekImplicit: the real key for a valid RecipientInfo, and for everything else a synthetic
// key that is deterministic, differs between keys and ciphertexts, and has a CEK's length.
// Ciphertexts with chosen padding are made with the raw RSA public operation.
#include <gtest/gtest.h>
#include <openssl/rsa.h>

#include <set>
#include <string>
#include <vector>

#include "crypto/cms.h"
#include "crypto/constant_time.h"
#include "crypto/der.h"
#include "crypto/ossl.h"
#include "crypto/primitives.h"
#include "crypto/test_support.h"

namespace blindlist::crypto {
namespace {

using testkit::Exposed;
using testkit::Identity;
using testkit::Unwrap;

const testkit::TestPki& Pki() { return testkit::TestPki::Get(); }

std::size_t ModulusLength(const PrivateKey& key) {
  return static_cast<std::size_t>(EVP_PKEY_get_size(key.impl().pkey.get()));
}

// c = m^e mod n for an encoded message `em` of the modulus length.
Bytes RawPublic(const PrivateKey& key, const Bytes& em) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.impl().pkey.get(), nullptr));
  std::size_t len = em.size();
  Bytes c(len);
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) != 1 ||
      EVP_PKEY_encrypt(ctx.get(), c.data(), &len, em.data(), em.size()) != 1) {
    throw std::runtime_error("raw RSA encryption failed");
  }
  return c;
}

Bytes RandomNonzero(std::size_t n) {
  Bytes out(n);
  for (auto& b : out) {
    do {
      if (!RandomBytes(&b, 1).ok()) throw std::runtime_error("random");
    } while (b == 0);
  }
  return out;
}

// 00 02 PS 00 M, with PS nonzero random padding filling the modulus length.
Bytes Pkcs1Type2(std::size_t k, const Bytes& message) {
  Bytes em = {0x00, 0x02};
  Bytes ps = RandomNonzero(k - 3 - message.size());
  em.insert(em.end(), ps.begin(), ps.end());
  em.push_back(0x00);
  em.insert(em.end(), message.begin(), message.end());
  return em;
}

Bytes RandomBytesOf(std::size_t n) {
  Bytes out(n);
  if (!RandomBytes(out.data(), n).ok()) throw std::runtime_error("random");
  return out;
}

// A random integer below n, as a modulus-length octet string.
Bytes RandomBelowN(std::size_t k) {
  Bytes out = RandomBytesOf(k);
  out[0] = 0;
  return out;
}

// A KeyTransRecipientInfo for `id` with PKCS#1 v1.5 (or OAEP) whose encryptedKey is replaced.
RecipientInfo Ktri(const Identity& id, RsaPadding padding, const Bytes& encrypted_key) {
  Bytes der = Unwrap(WrapCek(RandomSecret(32), id.cert, padding), "wrap");
  RecipientInfo ri = Unwrap(RecipientInfo::Parse(der), "parse");
  ri.encrypted_key = encrypted_key;
  return ri;
}

SecretBytes Implicit(const RecipientInfo& ri, const PrivateKey& key) {
  return Unwrap(UnwrapCekImplicit(ri, key), "implicit unwrap");
}

TEST(ConstantTime, MasksAgreeWithComparisons) {
  const std::vector<std::uint32_t> values = {0,  1,          2,          15,         16,
                                             31, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};
  for (std::uint32_t a : values) {
    EXPECT_EQ(ct::IsZero(a), a == 0 ? ~0U : 0U) << a;
    for (std::uint32_t b : values) {
      EXPECT_EQ(ct::Eq(a, b), a == b ? ~0U : 0U) << a << " " << b;
      EXPECT_EQ(ct::Lt(a, b), a < b ? ~0U : 0U) << a << " " << b;
      EXPECT_EQ(ct::Ge(a, b), a >= b ? ~0U : 0U) << a << " " << b;
      EXPECT_EQ(ct::Select(~0U, a, b), a);
      EXPECT_EQ(ct::Select(0U, a, b), b);
    }
  }
}

TEST(ImplicitRejection, ValidPkcs1AndOaepGiveTheRealKey) {
  for (const Identity* id : {&Pki().rsa2048(), &Pki().rsa3072()}) {
    for (RsaPadding padding : {RsaPadding::kPkcs1v15, RsaPadding::kOaepSha256}) {
      for (std::size_t len : {16U, 24U, 32U}) {
        SecretBytes cek = RandomSecret(len);
        Bytes der = Unwrap(WrapCek(cek, id->cert, padding), "wrap");
        RecipientInfo ri = Unwrap(RecipientInfo::Parse(der), "parse");
        SecretBytes got = Implicit(ri, id->key);
        EXPECT_EQ(Exposed(got), Exposed(cek)) << id->name << " " << len;
        EXPECT_EQ(Exposed(got), Exposed(Unwrap(UnwrapCek(ri, id->key), "explicit")));
      }
    }
  }
}

TEST(ImplicitRejection, EveryPkcs1FailureGivesADeterministicSyntheticKey) {
  const Identity& id = Pki().rsa3072();
  const std::size_t k = ModulusLength(id.key);
  auto encrypt = [&](const Bytes& em) { return RawPublic(id.key, em); };
  Bytes bad_type = Pkcs1Type2(k, RandomBytesOf(32));
  bad_type[1] = 0x03;
  Bytes bad_lead = Pkcs1Type2(k, RandomBytesOf(32));
  bad_lead[0] = 0x01;
  bad_lead[1] = 0x02;
  Bytes no_separator = {0x00, 0x02};
  Bytes ps = RandomNonzero(k - 2);
  no_separator.insert(no_separator.end(), ps.begin(), ps.end());
  Bytes short_ps = {0x00, 0x02};  // 7 octets of padding string: one too few
  Bytes ps7 = RandomNonzero(7);
  short_ps.insert(short_ps.end(), ps7.begin(), ps7.end());
  short_ps.push_back(0x00);
  Bytes tail = RandomBytesOf(k - short_ps.size());
  short_ps.insert(short_ps.end(), tail.begin(), tail.end());
  Bytes at_n(id.key.impl().rsa_modulus);
  Bytes valid = encrypt(Pkcs1Type2(k, RandomBytesOf(32)));
  Bytes truncated(valid.begin() + 1, valid.end());
  Bytes oversized = valid;
  oversized.insert(oversized.begin(), 0x00);

  const std::vector<std::pair<std::string, Bytes>> cases = {
      {"padding valid, 5-byte key", encrypt(Pkcs1Type2(k, RandomBytesOf(5)))},
      {"padding valid, 47-byte key", encrypt(Pkcs1Type2(k, RandomBytesOf(47)))},
      {"padding valid, 0-byte key", encrypt(Pkcs1Type2(k, {}))},
      {"padding valid, 33-byte key", encrypt(Pkcs1Type2(k, RandomBytesOf(33)))},
      {"padding valid, 20-byte key", encrypt(Pkcs1Type2(k, RandomBytesOf(20)))},
      {"block type 3", encrypt(bad_type)},
      {"leading octet 1", encrypt(bad_lead)},
      {"no separator", encrypt(no_separator)},
      {"padding string of 7", encrypt(short_ps)},
      {"random integer", encrypt(RandomBelowN(k))},
      {"truncated ciphertext", truncated},
      {"oversized ciphertext", oversized},
      {"ciphertext equal to n", at_n},
      {"all ones (above n)", Bytes(k, 0xff)},
      {"empty ciphertext", Bytes{}},
  };
  std::set<std::string> seen;  // hex: GCC 12 misreads std::set<Bytes>
  for (const auto& [what, c] : cases) {
    SCOPED_TRACE(what);
    RecipientInfo ri = Ktri(id, RsaPadding::kPkcs1v15, c);
    SecretBytes first = Implicit(ri, id.key);
    EXPECT_TRUE(first.size() == 16 || first.size() == 24 || first.size() == 32) << first.size();
    EXPECT_EQ(Exposed(Implicit(ri, id.key)), Exposed(first)) << "not deterministic";
    EXPECT_TRUE(seen.insert(ToHex(first.view())).second) << "two ciphertexts gave the same key";
    // The explicit unwrap of local reads still says it failed (or, for a padding that passes
    // with a key of the wrong length, returns that length).
    auto explicit_cek = UnwrapCek(ri, id.key);
    if (explicit_cek.ok()) {
      EXPECT_NE(Exposed(*explicit_cek), Exposed(first));
    } else {
      EXPECT_EQ(explicit_cek.error().code, "unwrap-failed");
    }
  }
}

TEST(ImplicitRejection, SyntheticKeysDependOnTheKeyAndTheScheme) {
  // The same ciphertext under two keys of the same size, and as v1.5 and as OAEP.
  const Identity& a = Pki().rsa2048();
  const Identity& b = Pki().rsa2048b();
  Bytes c = RawPublic(a.key, Pkcs1Type2(ModulusLength(a.key), RandomBytesOf(7)));
  RecipientInfo ri = Ktri(a, RsaPadding::kPkcs1v15, c);
  SecretBytes under_a = Implicit(ri, a.key);
  SecretBytes under_b = Implicit(ri, b.key);
  EXPECT_NE(Exposed(under_a), Exposed(under_b));
  RecipientInfo as_oaep = Ktri(a, RsaPadding::kOaepSha256, c);
  EXPECT_NE(Exposed(Implicit(as_oaep, a.key)), Exposed(under_a));
  // A key loaded again from its PEM derives the same secret.
  PrivateKey again = Unwrap(PrivateKey::LoadFile(a.key_path), "reload");
  EXPECT_EQ(Exposed(Implicit(ri, again)), Exposed(under_a));
  // The wrong key for a valid ciphertext: a synthetic key, not an error.
  Bytes der = Unwrap(WrapCek(RandomSecret(32), b.cert, RsaPadding::kPkcs1v15), "wrap");
  RecipientInfo for_b = Unwrap(RecipientInfo::Parse(der), "parse");
  SecretBytes wrong = Implicit(for_b, a.key);
  EXPECT_EQ(Exposed(Implicit(for_b, a.key)), Exposed(wrong));
}

TEST(ImplicitRejection, SyntheticLengthsCoverEveryCekLength) {
  const Identity& id = Pki().rsa2048();
  const std::size_t k = ModulusLength(id.key);
  std::set<std::size_t> pkcs1_lengths;
  std::set<std::size_t> oaep_lengths;
  for (int i = 0; i < 48; ++i) {
    Bytes c = RawPublic(id.key, Pkcs1Type2(k, RandomBytesOf(5)));
    pkcs1_lengths.insert(Implicit(Ktri(id, RsaPadding::kPkcs1v15, c), id.key).size());
    oaep_lengths.insert(Implicit(Ktri(id, RsaPadding::kOaepSha256, c), id.key).size());
  }
  EXPECT_EQ(pkcs1_lengths, (std::set<std::size_t>{16, 24, 32}));
  EXPECT_EQ(oaep_lengths, (std::set<std::size_t>{16, 24, 32}));
}

TEST(ImplicitRejection, OaepFailuresGiveSyntheticKeys) {
  const Identity& id = Pki().rsa3072();
  const std::size_t k = ModulusLength(id.key);
  // A valid OAEP encoding of a 5-byte key: decodes, but is no CEK.
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, id.key.impl().pkey.get(), nullptr));
  Bytes five = RandomBytesOf(5);
  std::size_t len = k;
  Bytes short_key(k);
  ASSERT_TRUE(ctx && EVP_PKEY_encrypt_init(ctx.get()) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) == 1 &&
              EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) == 1 &&
              EVP_PKEY_encrypt(ctx.get(), short_key.data(), &len, five.data(), five.size()) == 1);
  const std::vector<std::pair<std::string, Bytes>> cases = {
      {"5-byte key", short_key},
      {"garbage", RawPublic(id.key, RandomBelowN(k))},
      {"a PKCS#1 v1.5 block", RawPublic(id.key, Pkcs1Type2(k, RandomBytesOf(32)))},
      {"truncated", Bytes(short_key.begin() + 1, short_key.end())},
  };
  std::set<std::string> seen;  // hex: GCC 12 misreads std::set<Bytes>
  for (const auto& [what, c] : cases) {
    SCOPED_TRACE(what);
    RecipientInfo ri = Ktri(id, RsaPadding::kOaepSha256, c);
    SecretBytes got = Implicit(ri, id.key);
    EXPECT_TRUE(got.size() == 16 || got.size() == 24 || got.size() == 32) << got.size();
    EXPECT_EQ(Exposed(Implicit(ri, id.key)), Exposed(got));
    EXPECT_TRUE(seen.insert(ToHex(got.view())).second);
  }
}

TEST(ImplicitRejection, PublicPropertiesOfTheRequestStayExplicit) {
  const Identity& rsa = Pki().rsa2048();
  RecipientInfo ri = Ktri(rsa, RsaPadding::kOaepSha256, Bytes(ModulusLength(rsa.key), 1));
  RecipientInfo bad_params = ri;
  bad_params.key_alg_params =
      der::Encode(der::kSequence, ByteView{});  // fine: all defaults (SHA-1)
  EXPECT_EQ(testkit::ErrorCode(UnwrapCekImplicit(bad_params, rsa.key)), "ok");
  bad_params.key_alg_params =
      der::Encode(der::kSequence, der::Encode(der::ContextConstructed(0),
                                              EncodeAlgorithmId("1.2.840.113549.2.5")));  // MD5
  EXPECT_EQ(testkit::ErrorCode(UnwrapCekImplicit(bad_params, rsa.key)), "unsupported");
  RecipientInfo other_alg = ri;
  other_alg.key_alg_oid = "1.2.3.4";
  EXPECT_EQ(testkit::ErrorCode(UnwrapCekImplicit(other_alg, rsa.key)), "unsupported");
  EXPECT_EQ(testkit::ErrorCode(UnwrapCekImplicit(ri, Pki().p256().key)), "wrong-key");
}

TEST(ImplicitRejection, KariIntegrityFailureGivesASyntheticKeyAndBadPointsAreRefused) {
  for (const Identity* id : {&Pki().p256(), &Pki().p384()}) {
    SCOPED_TRACE(id->name);
    SecretBytes cek = RandomSecret(32);
    Bytes der = Unwrap(WrapCek(cek, id->cert, RsaPadding::kOaepSha256), "wrap");
    RecipientInfo ri = Unwrap(RecipientInfo::Parse(der), "parse");
    EXPECT_EQ(Exposed(Unwrap(UnwrapCekImplicit(ri, id->key, 0), "valid")), Exposed(cek));

    RecipientInfo tampered = ri;
    tampered.recipient_keys[0].encrypted_key.back() ^= 1;
    EXPECT_EQ(testkit::ErrorCode(UnwrapCek(tampered, id->key, 0)), "unwrap-failed");
    SecretBytes synthetic = Unwrap(UnwrapCekImplicit(tampered, id->key, 0), "tampered");
    EXPECT_EQ(synthetic.size(), cek.size());
    EXPECT_NE(Exposed(synthetic), Exposed(cek));
    EXPECT_EQ(Exposed(Unwrap(UnwrapCekImplicit(tampered, id->key, 0), "again")),
              Exposed(synthetic));
    RecipientInfo tampered2 = ri;
    tampered2.recipient_keys[0].encrypted_key.front() ^= 1;
    EXPECT_NE(Exposed(Unwrap(UnwrapCekImplicit(tampered2, id->key, 0), "other")),
              Exposed(synthetic));
    // Another key of the same curve: ECDH gives another KEK, so a synthetic key too.
    if (id == &Pki().p256()) {
      PrivateKey other = Unwrap(PrivateKey::Generate(KeyType::kEcP256), "keygen");
      SecretBytes under_other = Unwrap(UnwrapCekImplicit(ri, other, 0), "other key");
      EXPECT_EQ(under_other.size(), cek.size());
      EXPECT_NE(Exposed(under_other), Exposed(cek));
    }

    RecipientInfo off_curve = ri;
    off_curve.originator_key = Bytes(ri.originator_key.size(), 0x01);
    off_curve.originator_key[0] = 0x04;
    EXPECT_EQ(testkit::ErrorCode(UnwrapCekImplicit(off_curve, id->key, 0)), "bad-point");
    RecipientInfo infinity = ri;
    infinity.originator_key = {0x00};
    EXPECT_EQ(testkit::ErrorCode(UnwrapCekImplicit(infinity, id->key, 0)), "bad-point");
    EXPECT_EQ(testkit::ErrorCode(UnwrapCekImplicit(ri, id->key, 1)), "bad-index");
    EXPECT_EQ(testkit::ErrorCode(UnwrapCekImplicit(ri, Pki().rsa2048().key, 0)), "wrong-key");
  }
}

TEST(ImplicitRejection, WrapTargetsAreCheckedAlone) {
  EXPECT_TRUE(CheckWrapTarget(Pki().rsa2048().cert).ok());
  EXPECT_TRUE(CheckWrapTarget(Pki().p256().cert).ok());
  GroupSecret secret{ToBytes("id"), RandomSecret(32)};
  EXPECT_TRUE(CheckWrapTarget(secret).ok());
  secret.key = RandomSecret(20);
  EXPECT_EQ(testkit::ErrorCode(CheckWrapTarget(secret)), "bad-key");
  secret.key = RandomSecret(32);
  secret.id.clear();
  EXPECT_EQ(testkit::ErrorCode(CheckWrapTarget(secret)), "bad-key");
}

}  // namespace
}  // namespace blindlist::crypto
