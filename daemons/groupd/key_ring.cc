#include "key_ring.h"

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

Result<crypto::PrivateKey> GroupKeyRing::PrivateKeyFor(const std::string& group,
                                                       const store::GroupKey& row) {
  if (row.state == store::KeyState::kDestroyed || row.sealed_private_key.empty()) {
    return MakeError("key-destroyed", "this key version has been destroyed");
  }
  // Keyed by the row, served only if the sealed bytes are the same: cheaper than hashing them.
  std::string id = group + "\n" + std::to_string(row.version);
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(id);
    if (it != keys_.end() && it->second.sealed == row.sealed_private_key) return it->second.key;
  }
  BL_TRY_ASSIGN(SecretBytes der, crypto::Unseal(master_key_, KeyContext(group, row.version),
                                                row.sealed_private_key));
  BL_TRY_ASSIGN(crypto::PrivateKey key, crypto::PrivateKey::Load(der.view()));
  std::lock_guard lock(mu_);
  keys_.insert_or_assign(id, CachedKey{row.sealed_private_key, key});
  return key;
}

Result<crypto::Certificate> GroupKeyRing::CertificateFor(const store::GroupKey& row) {
  if (row.certificate_der.empty())
    return MakeError("no-certificate", "key version has no certificate yet");
  std::string id = std::to_string(row.group_id) + "\n" + std::to_string(row.version);
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
