#include "key_ring.h"

#include <gtest/gtest.h>

#include "crypto/cms.h"
#include "crypto/x509.h"

namespace blindlist::groupd {
namespace {

struct Version {
  store::GroupKey row;
  crypto::Certificate certificate;
};

// A sealed P-256 key row of `group` (id `group_id`) at `version`, with its certificate.
Version MakeVersion(GroupKeyRing& ring, const std::string& group, std::int64_t group_id,
                    int version) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  EXPECT_TRUE(key.ok());
  auto cert = crypto::MakeCaCertificate(*key, group, 3600);
  EXPECT_TRUE(cert.ok());
  auto sealed = ring.SealKey(group, version, *key);
  EXPECT_TRUE(sealed.ok());
  store::GroupKey row;
  row.group_id = group_id;
  row.version = version;
  row.key_type = "p256";
  row.certificate_der = cert->Der();
  row.sealed_private_key = *sealed;
  row.state = store::KeyState::kRetired;
  return {row, *cert};
}

crypto::RecipientInfo RecipientFor(const crypto::Certificate& cert) {
  auto der = crypto::WrapCek(crypto::RandomSecret(32), cert, crypto::RsaPadding::kOaepSha256);
  EXPECT_TRUE(der.ok());
  auto ri = crypto::RecipientInfo::Parse(*der);
  EXPECT_TRUE(ri.ok());
  return *ri;
}

store::GroupKey Destroyed(store::GroupKey row) {
  row.state = store::KeyState::kDestroyed;
  row.sealed_private_key.clear();
  return row;
}

TEST(GroupKeyRing, ForgetDropsADestroyedVersionAtOnceAndForGood) {
  GroupKeyRing ring(crypto::RandomSecret(32));
  Version v1 = MakeVersion(ring, "a@example.org", 1, 1);
  Version v2 = MakeVersion(ring, "a@example.org", 1, 2);
  Version other = MakeVersion(ring, "b@example.org", 2, 1);
  for (const auto* v : {&v1, &v2}) ASSERT_TRUE(ring.PrivateKeyFor("a@example.org", v->row).ok());
  ASSERT_TRUE(ring.PrivateKeyFor("b@example.org", other.row).ok());
  EXPECT_EQ(ring.CachedKeyCount(), 3u);

  ring.Forget(1, 1);
  EXPECT_EQ(ring.CachedKeyCount(), 2u);
  // Even a request holding the row as it was before the destruction gets nothing, and the
  // version is not cached again.
  auto stale = ring.PrivateKeyFor("a@example.org", v1.row);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, "key-destroyed");
  EXPECT_EQ(ring.CachedKeyCount(), 2u);
  EXPECT_TRUE(ring.PrivateKeyFor("a@example.org", v2.row).ok());
  EXPECT_TRUE(ring.PrivateKeyFor("b@example.org", other.row).ok());
}

TEST(GroupKeyRing, MatchRecipientPrunesWhatAnotherNodeDestroyed) {
  GroupKeyRing ring(crypto::RandomSecret(32));
  Version v1 = MakeVersion(ring, "a@example.org", 1, 1);
  Version v2 = MakeVersion(ring, "a@example.org", 1, 2);
  Version other = MakeVersion(ring, "b@example.org", 2, 1);
  std::vector<store::GroupKey> rows = {v1.row, v2.row};
  auto match = MatchRecipient(ring, rows, RecipientFor(v1.certificate));
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->key->version, 1);
  for (const auto* v : {&v1, &v2}) ASSERT_TRUE(ring.PrivateKeyFor("a@example.org", v->row).ok());
  ASSERT_TRUE(ring.PrivateKeyFor("b@example.org", other.row).ok());
  EXPECT_EQ(ring.CachedKeyCount(), 3u);

  // Another node destroyed version 1: the rows this node reads next say so.
  std::vector<store::GroupKey> now = {Destroyed(v1.row), v2.row};
  EXPECT_FALSE(MatchRecipient(ring, now, RecipientFor(v1.certificate)).has_value());
  EXPECT_EQ(ring.CachedKeyCount(), 2u);  // v2 of a, v1 of b
  EXPECT_FALSE(ring.PrivateKeyFor("a@example.org", v1.row).ok());
  EXPECT_TRUE(MatchRecipient(ring, now, RecipientFor(v2.certificate)).has_value());

  // A version missing from the rows altogether goes too; other groups stay.
  ring.Retain({Destroyed(v1.row)});
  EXPECT_EQ(ring.CachedKeyCount(), 1u);
  EXPECT_TRUE(ring.PrivateKeyFor("b@example.org", other.row).ok());
  EXPECT_EQ(ring.CachedKeyCount(), 1u);
}

}  // namespace
}  // namespace blindlist::groupd
