#include "monitoring.h"

#include <charconv>
#include <vector>

#include "api/certificate_expiry.h"

namespace blindlist::listd {
namespace {

// Seconds since the epoch from an id's 17-digit microsecond prefix (docs/queue-format.md).
std::int64_t ArrivalOf(const std::string& id) {
  std::int64_t micros = 0;
  auto [end, ec] =
      std::from_chars(id.data(), id.data() + std::min<std::size_t>(id.size(), 17), micros);
  return ec == std::errc() ? micros / 1000000 : 0;
}

std::string OldestPost(spool::Spool* spool, std::int64_t now) {
  std::int64_t oldest = 0;
  for (auto list : {spool->ListIncoming(), spool->ListActive()}) {
    if (!list.ok() || list->empty()) continue;
    const std::int64_t t = ArrivalOf(list->front());
    if (t > 0 && (oldest == 0 || t < oldest)) oldest = t;
  }
  const std::int64_t age = oldest == 0 ? 0 : std::max<std::int64_t>(0, now - oldest);
  return "# HELP listd_spool_oldest_post_age_seconds Age of the oldest post not yet delivered to "
         "everyone (0: the queue is empty).\n"
         "# TYPE listd_spool_oldest_post_age_seconds gauge\n"
         "listd_spool_oldest_post_age_seconds " +
         std::to_string(age) + "\n";
}

}  // namespace

std::string MonitoringMetrics(const Config& config, store::ListStore* lists, spool::Spool* spool,
                              std::int64_t now) {
  std::vector<api::WatchedCertificate> watched = {
      {"tls-server", "", config.smtp.cert_file, {}},
      {"groupd-client", "", config.groupd.client_certificate, {}},
      {"groupd-ca", "", config.groupd.ca, {}},
      {"smarthost-ca", "", config.delivery.smarthost.ca_file, {}},
  };
  auto all = lists->ListLists();
  if (!all.ok()) {
    watched.push_back({"list", "(store unavailable)", "", Bytes{0}});
  } else {
    for (const store::MailingList& list : *all) {
      if (!list.certificates.empty())
        watched.push_back({"list", list.address, "", list.certificates[0]});
    }
  }
  return api::RenderCertificateExpiry("listd", watched, now) + OldestPost(spool, now);
}

}  // namespace blindlist::listd
