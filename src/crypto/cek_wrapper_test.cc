// CekWrapper with prepared targets (cek_wrapper.cc): the RSA paddings it builds itself are what
// RFC 8017 says, so OpenSSL's own decryption reads them, for every recipient of a message and
// across the refills of its block of random bytes; a target is shared by threads.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/cms.h"
#include "crypto/ossl.h"
#include "crypto/primitives.h"
#include "crypto/test_support.h"

namespace blindlist::crypto {
namespace {

using testkit::Identity;
using testkit::TestPki;

const TestPki& Pki() { return TestPki::Get(); }

// The raw RSA private-key operation: the encoded message as the wrapper made it.
SecretBytes RawDecrypt(const PrivateKey& key, ByteView c) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.impl().pkey.get(), nullptr));
  SecretBytes em(c.size());
  std::size_t len = em.size();
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) != 1 ||
      EVP_PKEY_decrypt(ctx.get(), em.data(), &len, c.data(), c.size()) != 1) {
    ADD_FAILURE() << "raw RSA decryption failed";
    return {};
  }
  em.resize(len);
  return em;
}

// 60 recipients of one message: more than one block of random bytes for RSA-2048 (about 18
// PKCS#1 v1.5 paddings a block).
constexpr int kRecipients = 60;

TEST(CekWrapperRsa, Pkcs1PaddingIsRfc8017AndOpenSslReadsEveryRecipient) {
  const SecretBytes cek = RandomSecret(32);
  for (const Identity* id : {&Pki().rsa2048(), &Pki().rsa2048b(), &Pki().rsa3072()}) {
    auto target = WrapTarget::Prepare(id->cert);
    ASSERT_TRUE(target.ok()) << target.error().message;
    CekWrapper wrapper(cek, RsaPadding::kPkcs1v15);
    std::set<std::string> seen;
    for (int i = 0; i < kRecipients; ++i) {
      auto der = wrapper.Wrap(*target);
      ASSERT_TRUE(der.ok()) << der.error().message;
      auto ri = RecipientInfo::Parse(*der);
      ASSERT_TRUE(ri.ok()) << ri.error().message;
      EXPECT_EQ(ri->kind, RecipientKind::kKeyTrans);
      EXPECT_EQ(ri->key_alg_oid, oid::kRsaEncryption);
      auto back = UnwrapCek(*ri, id->key);
      ASSERT_TRUE(back.ok()) << back.error().message;
      EXPECT_EQ(*back, cek);
      EXPECT_TRUE(
          seen.insert(std::string(ri->encrypted_key.begin(), ri->encrypted_key.end())).second)
          << "a padding repeated";
      // 0x00 0x02, then k - 35 nonzero octets, 0x00, the key.
      SecretBytes em = RawDecrypt(id->key, ri->encrypted_key);
      ASSERT_EQ(em.size(), ri->encrypted_key.size());
      const std::size_t ps = em.size() - 3 - cek.size();
      EXPECT_EQ(em[0], 0x00);
      EXPECT_EQ(em[1], 0x02);
      for (std::size_t j = 0; j < ps; ++j) ASSERT_NE(em[2 + j], 0x00) << "PS octet " << j;
      EXPECT_EQ(em[2 + ps], 0x00);
      EXPECT_EQ(SecretBytes(ByteView(em.data() + 3 + ps, cek.size())), cek);
    }
  }
}

TEST(CekWrapperRsa, OaepSha256IsReadByOpenSslForEveryRecipient) {
  const SecretBytes cek = RandomSecret(32);
  for (const Identity* id : {&Pki().rsa2048(), &Pki().rsa3072()}) {
    auto target = WrapTarget::Prepare(id->cert);
    ASSERT_TRUE(target.ok()) << target.error().message;
    CekWrapper wrapper(cek, RsaPadding::kOaepSha256);
    std::set<std::string> seen;
    for (int i = 0; i < kRecipients; ++i) {
      auto der = wrapper.Wrap(*target);
      ASSERT_TRUE(der.ok()) << der.error().message;
      auto ri = RecipientInfo::Parse(*der);
      ASSERT_TRUE(ri.ok()) << ri.error().message;
      EXPECT_EQ(ri->key_alg_oid, oid::kRsaesOaep);
      EXPECT_EQ(ri->der, *der);
      // UnwrapCek reads the parameters (SHA-256, MGF1-SHA-256) and lets OpenSSL check the padding.
      auto back = UnwrapCek(*ri, id->key);
      ASSERT_TRUE(back.ok()) << back.error().message;
      EXPECT_EQ(*back, cek);
      EXPECT_TRUE(
          seen.insert(std::string(ri->encrypted_key.begin(), ri->encrypted_key.end())).second)
          << "a seed repeated";
    }
  }
}

// The same as WrapCek makes, byte for byte apart from the randomness: the identifier and the
// algorithm of the certificate, as parsed.
TEST(CekWrapperRsa, PreparedTargetNamesTheCertificateAsWrapCekDoes) {
  const SecretBytes cek = RandomSecret(32);
  for (RsaPadding padding : {RsaPadding::kPkcs1v15, RsaPadding::kOaepSha256}) {
    auto target = WrapTarget::Prepare(Pki().rsa2048b().cert);
    ASSERT_TRUE(target.ok());
    CekWrapper wrapper(cek, padding);
    auto a = RecipientInfo::Parse(*wrapper.Wrap(*target));
    auto b = RecipientInfo::Parse(*WrapCek(cek, Pki().rsa2048b().cert, padding));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->rid.issuer, b->rid.issuer);
    EXPECT_EQ(a->rid.serial, b->rid.serial);
    EXPECT_TRUE(a->rid.Matches(Pki().rsa2048b().cert));
    EXPECT_EQ(a->key_alg_oid, b->key_alg_oid);
    EXPECT_EQ(a->key_alg_params, b->key_alg_params);
    EXPECT_EQ(a->der.size(), b->der.size());
  }
}

// The public-key operation is a square-and-multiply of its own (cek_wrapper.cc, RsaPublic):
// for exponents other than 65537 (3, and one with many one bits) it is still m^e mod n, which
// OpenSSL's private-key operation reads back.
TEST(CekWrapperRsa, EveryPublicExponentGivesWhatThePrivateKeyReads) {
  const testkit::TempDir& dir = Pki().dir();
  for (const std::string e : {"3", "65537", "4294967295"}) {
    const std::string key_path = dir.File("rsa-e" + e + ".key.pem");
    const std::string cert_path = dir.File("rsa-e" + e + ".cert.pem");
    testkit::Openssl(dir,
                     "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"
                     " -pkeyopt rsa_keygen_pubexp:" +
                         e + " -out " + testkit::ShellQuote(key_path));
    testkit::Openssl(dir, "req -x509 -new -key " + testkit::ShellQuote(key_path) + " -subj '/CN=e" +
                              e +
                              "' -days 2 -addext keyUsage=keyEncipherment"
                              " -out " +
                              testkit::ShellQuote(cert_path));
    auto key = PrivateKey::LoadFile(key_path);
    auto cert = Certificate::LoadFile(cert_path);
    ASSERT_TRUE(key.ok() && cert.ok());
    auto target = WrapTarget::Prepare(*cert);
    ASSERT_TRUE(target.ok()) << target.error().message;
    const SecretBytes cek = RandomSecret(32);
    for (RsaPadding padding : {RsaPadding::kPkcs1v15, RsaPadding::kOaepSha256}) {
      CekWrapper wrapper(cek, padding);
      for (int i = 0; i < 8; ++i) {
        auto der = wrapper.Wrap(*target);
        ASSERT_TRUE(der.ok()) << der.error().message;
        auto ri = RecipientInfo::Parse(*der);
        ASSERT_TRUE(ri.ok());
        auto back = UnwrapCek(*ri, *key);
        ASSERT_TRUE(back.ok()) << "e = " << e << ": " << back.error().message;
        EXPECT_EQ(*back, cek);
      }
    }
  }
}

// One prepared target, many threads each with its own wrapper (groupd's request threads).
TEST(CekWrapperRsa, PreparedTargetIsSharedAcrossThreads) {
  auto rsa = WrapTarget::Prepare(Pki().rsa2048().cert);
  auto ec = WrapTarget::Prepare(Pki().p256().cert);
  ASSERT_TRUE(rsa.ok() && ec.ok());
  const SecretBytes cek = RandomSecret(32);
  std::vector<std::vector<Bytes>> out(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < out.size(); ++t) {
    threads.emplace_back([&, t] {
      CekWrapper wrapper(cek, t % 2 == 0 ? RsaPadding::kPkcs1v15 : RsaPadding::kOaepSha256);
      for (int i = 0; i < 25; ++i) {
        auto a = wrapper.Wrap(*rsa);
        auto b = wrapper.Wrap(*ec);
        if (a.ok()) out[t].push_back(*a);
        if (b.ok()) out[t].push_back(*b);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& list : out) {
    ASSERT_EQ(list.size(), 50u);
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto ri = RecipientInfo::Parse(list[i]);
      ASSERT_TRUE(ri.ok());
      auto back = UnwrapCek(*ri, i % 2 == 0 ? Pki().rsa2048().key : Pki().p256().key);
      ASSERT_TRUE(back.ok()) << back.error().message;
      EXPECT_EQ(*back, cek);
    }
  }
}

}  // namespace
}  // namespace blindlist::crypto
