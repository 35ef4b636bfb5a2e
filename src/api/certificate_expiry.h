// Certificate expiry for /metrics: for each certificate a daemon depends on (its TLS server
// certificate, the CAs it trusts or signs with, the group certificates it serves or accepts),
// a gauge of the seconds until notAfter (negative once expired), so an alert can fire weeks
// before anything stops working. Files are read at each scrape: a renewed file shows at once.
// The gauges are rendered as Prometheus text appended to the daemon's own metrics.
// Thread-safety: free functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blindlist/bytes.h"

namespace blindlist::api {

struct WatchedCertificate {
  std::string kind;  // label `certificate`: "tls-server", "deployment-ca", "membership-ca", ...
  std::string name;  // label `name`: the file, or the group / list address
  std::string path;  // PEM or DER file; empty when `der` is given
  Bytes der;
};

// "<prefix>_certificate_expiry_seconds{certificate=KIND,name=NAME} SECONDS" per certificate
// (the first in a PEM file), and "<prefix>_certificate_unreadable{...} 1" for a file that
// cannot be read or parsed, so a missing certificate is never a silent gap.
std::string RenderCertificateExpiry(const std::string& prefix,
                                    const std::vector<WatchedCertificate>& certificates,
                                    std::int64_t now);

}  // namespace blindlist::api
