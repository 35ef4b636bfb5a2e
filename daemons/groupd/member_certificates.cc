#include "member_certificates.h"

#include <utility>

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
  entries_.insert_or_assign(fingerprint, Entry{.der = der, .certificate = cert, .target = {}});
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
  std::lock_guard lock(mu_);
  auto it = entries_.find(fingerprint);
  if (it != entries_.end() && it->second.der == der) it->second.target = target;
  return target;
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
