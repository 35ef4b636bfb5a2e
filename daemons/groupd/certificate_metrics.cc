// groupd's certificate expiry gauges for /metrics (api/certificate_expiry.h): its TLS server
// certificate, the deployment CA that signs group certificates, certd's membership CA (path G),
// and the current certificate of every group. Read at each scrape; a store error leaves the
// group certificates out and is counted as one unreadable entry, never a failed scrape.
#include <ctime>

#include "api/certificate_expiry.h"
#include "service.h"

namespace blindlist::groupd {

std::string GroupService::CertificateMetrics() {
  std::vector<api::WatchedCertificate> watched = {
      {"tls-server", "", config_.common.server.cert_file, {}},
      {"deployment-ca", "", config_.ca_certificate_file, {}},
      {"membership-ca", "", config_.membership_ca_certificate_file, {}},
  };
  auto groups = store_->ListGroups();
  if (!groups.ok()) {
    watched.push_back({"group", "(store unavailable)", "", Bytes{0}});
  } else {
    for (const store::Group& g : *groups) {
      auto keys = store_->ListGroupKeys(g.id);
      if (!keys.ok()) {
        watched.push_back({"group", g.name, "", Bytes{0}});
        continue;
      }
      // The current key version: the highest active one with a certificate.
      for (auto it = keys->rbegin(); it != keys->rend(); ++it) {
        if (it->state == store::KeyState::kActive && !it->certificate_der.empty()) {
          watched.push_back({"group", g.name, "", it->certificate_der});
          break;
        }
      }
    }
  }
  return api::RenderCertificateExpiry("groupd", watched,
                                      static_cast<std::int64_t>(std::time(nullptr)));
}

}  // namespace blindlist::groupd
