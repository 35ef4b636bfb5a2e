#include "member_certificates.h"

#include <gtest/gtest.h>

#include "blindlist/bytes.h"
#include "crypto/x509.h"

namespace blindlist::groupd {
namespace {

Bytes NewCertificateDer(const std::string& name) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  EXPECT_TRUE(key.ok());
  auto cert = crypto::MakeCaCertificate(*key, name, 3600);
  EXPECT_TRUE(cert.ok()) << cert.error().message;
  return cert->Der();
}

std::string FingerprintOf(const Bytes& der) { return ToHex(crypto::Sha256(der)); }

TEST(MemberCertificateCache, ParsesOncePerCertificate) {
  MemberCertificateCache cache;
  Bytes a = NewCertificateDer("a@example.org");
  Bytes b = NewCertificateDer("b@example.org");
  for (int i = 0; i < 3; ++i) {
    auto ca = cache.Get(FingerprintOf(a), a);
    ASSERT_TRUE(ca.ok()) << ca.error().message;
    EXPECT_EQ(ca->Der(), a);
    auto cb = cache.Get(FingerprintOf(b), b);
    ASSERT_TRUE(cb.ok()) << cb.error().message;
    EXPECT_EQ(cb->Der(), b);
  }
  EXPECT_EQ(cache.parses(), 2u);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(MemberCertificateCache, NeverServesOtherBytesUnderTheSameFingerprint) {
  // The fingerprint comes from the store row; the cache still checks the bytes.
  MemberCertificateCache cache;
  Bytes a = NewCertificateDer("a@example.org");
  Bytes b = NewCertificateDer("b@example.org");
  ASSERT_TRUE(cache.Get("same", a).ok());
  auto got = cache.Get("same", b);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->Der(), b);
  EXPECT_EQ(cache.parses(), 2u);
}

TEST(MemberCertificateCache, RefusesWhatDoesNotParse) {
  MemberCertificateCache cache;
  Bytes junk = ToBytes("not a certificate");
  EXPECT_FALSE(cache.Get(FingerprintOf(junk), junk).ok());
  EXPECT_EQ(cache.size(), 0u);
}

TEST(MemberCertificateCache, StaysWithinItsCapacity) {
  MemberCertificateCache cache(2);
  for (int i = 0; i < 5; ++i) {
    Bytes der = NewCertificateDer("m" + std::to_string(i) + "@example.org");
    ASSERT_TRUE(cache.Get(FingerprintOf(der), der).ok());
    EXPECT_LE(cache.size(), 2u);
  }
  EXPECT_EQ(cache.parses(), 5u);
}

// The per-member re-wrap reads only fingerprints from the store: FindWrapTarget serves a
// prepared certificate by its fingerprint alone, and only one whose bytes hash to it.
TEST(MemberCertificateCache, FindsAPreparedCertificateByItsFingerprintOnly) {
  MemberCertificateCache cache;
  Bytes a = NewCertificateDer("a@example.org");
  Bytes b = NewCertificateDer("b@example.org");
  EXPECT_FALSE(cache.FindWrapTarget(FingerprintOf(a)).has_value());
  ASSERT_TRUE(cache.Get(FingerprintOf(a), a).ok());
  EXPECT_FALSE(cache.FindWrapTarget(FingerprintOf(a)).has_value()) << "parsed, not prepared";
  ASSERT_TRUE(cache.GetWrapTarget(FingerprintOf(a), a).ok());
  auto hit = cache.FindWrapTarget(FingerprintOf(a));
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->certificate().Der(), a);
  EXPECT_EQ(cache.parses(), 1u);
  EXPECT_FALSE(cache.FindWrapTarget(FingerprintOf(b)).has_value());
  // A row whose fingerprint is not its certificate's: wrapped to through GetWrapTarget (bytes
  // compared), never served by that fingerprint alone.
  ASSERT_TRUE(cache.GetWrapTarget(FingerprintOf(a), b).ok());
  EXPECT_FALSE(cache.FindWrapTarget(FingerprintOf(a)).has_value());
  ASSERT_TRUE(cache.GetWrapTarget("not-its-fingerprint", b).ok());
  EXPECT_FALSE(cache.FindWrapTarget("not-its-fingerprint").has_value());
}

}  // namespace
}  // namespace blindlist::groupd
