#include "key_ring.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "crypto/x509.h"

namespace blindlist::groupd {

std::string GroupKeyRing::KeyContext(const std::string& group, int version) {
  return "blindlist group-key " + group + " v" + std::to_string(version);
}

std::string GroupKeyRing::SecretContext(const std::string& group, const Bytes& key_id) {
  return "blindlist group-secret " + group + " " + ToHex(key_id);
}

Result<Bytes> GroupKeyRing::SealKey(const std::string& group, int version,
                                    const crypto::PrivateKey& key) const {
  BL_TRY_ASSIGN(SecretBytes der, crypto::PrivateKeyToDer(key));
  return crypto::Seal(master_key_, KeyContext(group, version), der.view());
}

Result<Bytes> GroupKeyRing::SealSecret(const std::string& group, const Bytes& key_id,
                                       const SecretBytes& secret) const {
  return crypto::Seal(master_key_, SecretContext(group, key_id), secret.view());
}

std::string GroupKeyRing::ShareContext(const std::string& group, int version) {
  return "blindlist threshold-share " + group + " v" + std::to_string(version);
}

Result<Bytes> GroupKeyRing::SealShare(const std::string& group, int version,
                                      const crypto::threshold::Share& share,
                                      const std::vector<Bytes>& commitments) const {
  const SecretBytes encoded = crypto::threshold::EncodeShare(share);
  const Bytes tail = crypto::threshold::EncodeCommitments(commitments);
  SecretBytes plain(encoded.size() + tail.size());
  std::copy(encoded.data(), encoded.data() + encoded.size(), plain.data());
  std::copy(tail.begin(), tail.end(), plain.data() + encoded.size());
  return crypto::Seal(master_key_, ShareContext(group, version), plain.view());
}

Result<Bytes> GroupKeyRing::SealRepairState(const std::string& context,
                                            const SecretBytes& scalar) const {
  return crypto::Seal(master_key_, context, scalar.view());
}

Result<SecretBytes> GroupKeyRing::UnsealRepairState(const std::string& context,
                                                    ByteView sealed) const {
  return crypto::Unseal(master_key_, context, sealed);
}

Result<ThresholdShareRecord> GroupKeyRing::ShareFor(const std::string& group,
                                                    const store::GroupKey& row) const {
  if (row.key_type != kThresholdKeyType)
    return MakeError("not-threshold", "this key version is not a threshold share");
  if (row.state == store::KeyState::kDestroyed || row.sealed_private_key.empty())
    return MakeError("key-destroyed", "this key version has been destroyed");
  BL_TRY_ASSIGN(SecretBytes plain, crypto::Unseal(master_key_, ShareContext(group, row.version),
                                                  row.sealed_private_key));
  if (plain.size() < crypto::threshold::kShareLen)
    return MakeError("bad-share", "the sealed share is too short");
  const ByteView all = plain.view();
  ThresholdShareRecord out;
  BL_TRY_ASSIGN(out.share, crypto::threshold::ParseShare(all.first(crypto::threshold::kShareLen)));
  BL_TRY_ASSIGN(out.commitments, crypto::threshold::ParseCommitments(
                                     all.subspan(crypto::threshold::kShareLen), out.share.k));
  const VersionId id{row.group_id, row.version};
  {
    std::lock_guard lock(public_mu_);
    auto it = public_shares_.find(id);
    if (it != public_shares_.end() && it->second.sealed == row.sealed_private_key) {
      out.public_share = it->second.point;
      return out;
    }
  }
  BL_TRY_ASSIGN(out.public_share, crypto::threshold::PublicShareOf(out.share));
  std::lock_guard lock(public_mu_);
  public_shares_.insert_or_assign(id, CachedPublicShare{row.sealed_private_key, out.public_share});
  return out;
}

Result<crypto::PrivateKey> GroupKeyRing::PrivateKeyFor(const std::string& group,
                                                       const store::GroupKey& row) {
  if (row.state == store::KeyState::kDestroyed || row.sealed_private_key.empty()) {
    return MakeError("key-destroyed", "this key version has been destroyed");
  }
  // Keyed by the row, served only if the sealed bytes are the same: cheaper than hashing them.
  const VersionId id{row.group_id, row.version};
  {
    std::lock_guard lock(mu_);
    if (destroyed_.count(id) != 0)
      return MakeError("key-destroyed", "this key version has been destroyed");
    auto it = keys_.find(id);
    if (it != keys_.end() && it->second.sealed == row.sealed_private_key) return it->second.key;
  }
  BL_TRY_ASSIGN(SecretBytes der, crypto::Unseal(master_key_, KeyContext(group, row.version),
                                                row.sealed_private_key));
  BL_TRY_ASSIGN(crypto::PrivateKey key, crypto::PrivateKey::Load(der.view()));
  std::lock_guard lock(mu_);
  // Destroyed while this request unsealed it (from rows read before): serve it this once, as
  // a request already in flight, but never keep it.
  if (destroyed_.count(id) == 0) keys_.insert_or_assign(id, CachedKey{row.sealed_private_key, key});
  return key;
}

void GroupKeyRing::ForgetLocked(const VersionId& id) {
  destroyed_.insert(id);
  keys_.erase(id);
  certs_.erase(id);
}

void GroupKeyRing::Forget(std::int64_t group_id, int version) {
  std::lock_guard lock(mu_);
  ForgetLocked({group_id, version});
}

void GroupKeyRing::Retain(const std::vector<store::GroupKey>& rows) {
  if (rows.empty()) return;
  const std::int64_t group_id = rows.front().group_id;
  const auto live = [&rows](int version) {
    for (const auto& r : rows) {
      if (r.version == version)
        return r.state != store::KeyState::kDestroyed && !r.sealed_private_key.empty();
    }
    return false;
  };
  std::lock_guard lock(mu_);
  for (const auto& r : rows) {
    if (r.state == store::KeyState::kDestroyed) ForgetLocked({group_id, r.version});
  }
  const VersionId first{group_id, std::numeric_limits<int>::min()};
  for (auto it = keys_.lower_bound(first); it != keys_.end() && it->first.first == group_id;) {
    it = live(it->first.second) ? std::next(it) : keys_.erase(it);
  }
}

std::size_t GroupKeyRing::CachedKeyCount() {
  std::lock_guard lock(mu_);
  return keys_.size();
}

Result<crypto::Certificate> GroupKeyRing::CertificateFor(const store::GroupKey& row) {
  if (row.certificate_der.empty())
    return MakeError("no-certificate", "key version has no certificate yet");
  const VersionId id{row.group_id, row.version};
  {
    std::lock_guard lock(mu_);
    auto it = certs_.find(id);
    if (it != certs_.end() && it->second.der == row.certificate_der) return it->second.certificate;
  }
  BL_TRY_ASSIGN(crypto::Certificate cert, crypto::Certificate::Load(row.certificate_der));
  std::lock_guard lock(mu_);
  certs_.insert_or_assign(id, CachedCertificate{row.certificate_der, cert});
  return cert;
}

Result<SecretBytes> GroupKeyRing::SecretFor(const std::string& group,
                                            const store::GroupSecretVersion& row) const {
  return crypto::Unseal(master_key_, SecretContext(group, row.key_id), row.sealed_secret);
}

std::optional<KeyMatch> MatchRecipient(GroupKeyRing& ring, const std::vector<store::GroupKey>& keys,
                                       const crypto::RecipientInfo& ri) {
  ring.Retain(keys);  // whatever another node destroyed leaves this node's memory now
  for (const auto& key : keys) {
    if (key.state == store::KeyState::kDestroyed) continue;
    auto cert = ring.CertificateFor(key);
    if (!cert.ok()) continue;
    if (ri.kind == crypto::RecipientKind::kKeyTrans && ri.rid.Matches(*cert)) {
      return KeyMatch{&key, 0};
    }
    if (ri.kind == crypto::RecipientKind::kKeyAgree) {
      for (std::size_t i = 0; i < ri.recipient_keys.size(); ++i) {
        if (ri.recipient_keys[i].rid.Matches(*cert)) return KeyMatch{&key, i};
      }
    }
  }
  return std::nullopt;
}

}  // namespace blindlist::groupd
