// MemberCertificateCache: parsed member certificates for rewrap, keyed by their
// SHA-256 fingerprint. Parsing an RSA-3072 certificate costs OpenSSL 3.0 about two
// P-256 ECDHs; the certificate bytes of a fingerprint never change, so the parse
// can be kept. Membership is not cached: the caller reads the member's row (or its
// fingerprint) from the store on every request, so removing a member, or replacing its
// certificate, takes effect on the next request. Get and GetWrapTarget serve a hit only
// if the cached DER equals the row's DER byte for byte; FindWrapTarget, given only a
// fingerprint, serves only an entry whose DER was checked to hash to it.
//
// Thread-safety: Get() may be called from any number of threads at once.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/cms.h"
#include "crypto/keys.h"

namespace blindlist::groupd {

class MemberCertificateCache {
 public:
  // At most `capacity` entries; when full, the cache starts over (no LRU bookkeeping
  // on the hot path; a refill costs one parse per member). The default holds the
  // certificates of a per-member list of 16,384 members (a few KB each): a smaller cache
  // would start over within every post to a larger list and parse every certificate again.
  explicit MemberCertificateCache(std::size_t capacity = 16384) : capacity_(capacity) {}

  // The certificate `der`, whose fingerprint is `fingerprint`; parsed on a miss.
  // Errors: those of crypto::Certificate::Load.
  Result<crypto::Certificate> Get(const std::string& fingerprint, const Bytes& der);

  // The same certificate prepared for wraps (crypto::WrapTarget), kept with it, so a member's
  // later posts pay only the wrap. Errors: those of Get and of crypto::WrapTarget::Prepare.
  Result<crypto::WrapTarget> GetWrapTarget(const std::string& fingerprint, const Bytes& der);

  // The prepared certificate whose SHA-256 is `fingerprint` (lowercase hex), if a
  // GetWrapTarget call made it; nothing otherwise (the caller then reads the certificate and
  // calls GetWrapTarget). Lets the per-member re-wrap read only fingerprints from the store.
  std::optional<crypto::WrapTarget> FindWrapTarget(const std::string& fingerprint) const;

  std::size_t size() const;
  std::size_t parses() const;  // misses that parsed, for tests

 private:
  struct Entry {
    Bytes der;
    crypto::Certificate certificate;
    std::optional<crypto::WrapTarget> target;  // made on the first wrap to it
    bool der_matches_key = false;              // SHA-256 of `der` is the entry's fingerprint
  };
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::size_t parses_ = 0;
};

}  // namespace blindlist::groupd
