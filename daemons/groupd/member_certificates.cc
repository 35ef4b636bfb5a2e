#include "member_certificates.h"

#include <utility>

#include "crypto/x509.h"

namespace blindlist::groupd {

Result<crypto::Certificate> MemberCertificateCache::Get(const std::string& fingerprint,
                                                        const Bytes& der) {
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(fingerprint);
    if (it != entries_.end() && it->second.der == der) return it->second.certificate;
  }
  // Parse outside the lock: it is the expensive part, and two threads parsing the
  // same certificate at once only waste one parse.
  BL_TRY_ASSIGN(crypto::Certificate cert, crypto::Certificate::Load(der));
  std::lock_guard lock(mu_);
  ++parses_;
  if (entries_.size() >= capacity_) entries_.clear();
  entries_.insert_or_assign(
      fingerprint, Entry{.der = der, .certificate = cert, .target = {}, .der_matches_key = false});
  return cert;
}

Result<crypto::WrapTarget> MemberCertificateCache::GetWrapTarget(const std::string& fingerprint,
                                                                 const Bytes& der) {
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(fingerprint);
    if (it != entries_.end() && it->second.target && it->second.der == der)
      return *it->second.target;
  }
  BL_TRY_ASSIGN(crypto::Certificate cert, Get(fingerprint, der));
  BL_TRY_ASSIGN(crypto::WrapTarget target, crypto::WrapTarget::Prepare(cert));
  // Checked once here, so that FindWrapTarget can trust the fingerprint alone: a row whose
  // fingerprint is not its certificate's is served only through the DER comparison above.
  const bool matches = ToHex(crypto::Sha256(der)) == fingerprint;
  std::lock_guard lock(mu_);
  auto it = entries_.find(fingerprint);
  if (it != entries_.end() && it->second.der == der) {
    it->second.target = target;
    it->second.der_matches_key = matches;
  }
  return target;
}

std::optional<crypto::WrapTarget> MemberCertificateCache::FindWrapTarget(
    const std::string& fingerprint) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(fingerprint);
  if (it == entries_.end() || !it->second.der_matches_key) return std::nullopt;
  return it->second.target;
}

std::size_t MemberCertificateCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::size_t MemberCertificateCache::parses() const {
  std::lock_guard lock(mu_);
  return parses_;
}

}  // namespace blindlist::groupd
