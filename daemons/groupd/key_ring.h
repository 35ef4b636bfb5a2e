// GroupKeyRing: turns the sealed key rows of a group into usable keys. Private
// keys are unsealed under the master key on first use and kept decoded, keyed
// by (group id, version) and served only while the row's sealed bytes are the same,
// so a destroyed or replaced row is never served from the cache (the caller
// always reads the rows from the store first). Certificates likewise.
// A destroyed version leaves the cache at once: Forget() on this node, and Retain()
// (called by MatchRecipient with the rows just read) for a version another node
// sharing the store destroyed. Destroyed is final, so a forgotten version is never
// cached again, even by a request that read its rows before the destruction.
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/cms.h"
#include "crypto/keys.h"
#include "crypto/threshold.h"
#include "store/store.h"

namespace blindlist::groupd {

// A threshold group's key version on this node: its one share and the dealer's commitments.
struct ThresholdShareRecord {
  crypto::threshold::Share share;
  std::vector<Bytes> commitments;
  Bytes public_share;  // D_i = d_i·G, compressed
};

// The key type of a threshold group's key versions (docs/threshold.md).
inline constexpr std::string_view kThresholdKeyType = "p256-threshold";

class GroupKeyRing {
 public:
  explicit GroupKeyRing(SecretBytes master_key) : master_key_(std::move(master_key)) {}

  // The AAD that binds a sealed blob to its row.
  static std::string KeyContext(const std::string& group, int version);
  static std::string SecretContext(const std::string& group, const Bytes& key_id);

  Result<Bytes> SealKey(const std::string& group, int version, const crypto::PrivateKey& key) const;
  Result<Bytes> SealSecret(const std::string& group, const Bytes& key_id,
                           const SecretBytes& secret) const;

  // A threshold share sealed for key version `version`: the share's encoding, then the
  // commitments, in the row's sealed_private_key (the AEAD binds the commitments too).
  static std::string ShareContext(const std::string& group, int version);
  Result<Bytes> SealShare(const std::string& group, int version,
                          const crypto::threshold::Share& share,
                          const std::vector<Bytes>& commitments) const;
  // Unsealed on every call (one AES-GCM open): a share is never kept decoded. Its public share
  // D_i (public, and a fixed-base multiplication to make) is kept, per row and sealed bytes.
  Result<ThresholdShareRecord> ShareFor(const std::string& group, const store::GroupKey& row) const;

  // A repair round's key scalar, sealed for the round (`context` names the group, the round and
  // the party), so a node keeps nothing between the steps of a repair (docs/threshold.md).
  Result<Bytes> SealRepairState(const std::string& context, const SecretBytes& scalar) const;
  Result<SecretBytes> UnsealRepairState(const std::string& context, ByteView sealed) const;

  Result<crypto::PrivateKey> PrivateKeyFor(const std::string& group, const store::GroupKey& row);
  // Drops the decoded private key and certificate of a destroyed version now.
  void Forget(std::int64_t group_id, int version);
  // Drops what is cached for the group of `rows` (one group's rows, as just read from the
  // store) but not live in them: a version destroyed, or gone, there.
  void Retain(const std::vector<store::GroupKey>& rows);
  // How many decoded private keys are held (for tests).
  std::size_t CachedKeyCount();
  Result<crypto::Certificate> CertificateFor(const store::GroupKey& row);
  Result<SecretBytes> SecretFor(const std::string& group,
                                const store::GroupSecretVersion& row) const;

 private:
  SecretBytes master_key_;
  std::mutex mu_;
  struct CachedKey {
    Bytes sealed;
    crypto::PrivateKey key;
  };
  struct CachedCertificate {
    Bytes der;
    crypto::Certificate certificate;
  };
  using VersionId = std::pair<std::int64_t, int>;  // (group id, version)
  void ForgetLocked(const VersionId& id);
  std::map<VersionId, CachedKey> keys_;  // with the sealed bytes it came from
  std::map<VersionId, CachedCertificate> certs_;
  std::set<VersionId> destroyed_;  // never cached again
  struct CachedPublicShare {
    Bytes sealed;
    Bytes point;
  };
  mutable std::mutex public_mu_;
  mutable std::map<VersionId, CachedPublicShare> public_shares_;
};

// Which key version of `keys` a RecipientInfo is addressed to, and for KARI
// which RecipientEncryptedKey. Only active or retired versions with a certificate count.
struct KeyMatch {
  const store::GroupKey* key = nullptr;
  std::size_t rek_index = 0;
};
std::optional<KeyMatch> MatchRecipient(GroupKeyRing& ring, const std::vector<store::GroupKey>& keys,
                                       const crypto::RecipientInfo& ri);

}  // namespace blindlist::groupd
