// What listd's /metrics adds to its counters, computed at each scrape: the seconds until
// notAfter of the certificates it depends on (its SMTP/LMTP TLS certificate, the client
// certificate and CA it uses towards groupd, the smarthost's CA, and each list's current
// group certificate: a list whose certificate expires stops getting posts from S/MIME
// clients), and the age of the oldest post in the queue.
// Thread-safety: safe to call concurrently (the store and the spool are).
#pragma once

#include <cstdint>
#include <string>

#include "config.h"
#include "spool/spool.h"
#include "store/list_store.h"

namespace blindlist::listd {

// Prometheus text: listd_certificate_expiry_seconds{certificate,name} (and
// listd_certificate_unreadable) and listd_spool_oldest_post_age_seconds (0 when the queue is
// empty: incoming/ and active/).
std::string MonitoringMetrics(const Config& config, store::ListStore* lists, spool::Spool* spool,
                              std::int64_t now);

}  // namespace blindlist::listd
