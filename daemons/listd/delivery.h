// Fan-out of prepared posts: to a smarthost over SMTP, many recipients per
// transaction (the body is the same for every member), or to one Maildir per
// member. Per recipient: 2xx crossed off, 4xx retried with exponential backoff
// until max_age, 5xx recorded as a bounce. Each batch's results are written to
// the queue file before the next batch and synced every few batches, so a crash
// repeats at most those few batches (duplicates, never a loss).
// Thread-safety: one Deliverer per thread (the runner's).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "config.h"
#include "obs/metrics.h"
#include "spool/spool.h"
#include "store/list_store.h"

namespace blindlist::listd {

// Writes `message` into ROOT/ADDRESS/new (tmp, fsync, rename, fsync dir).
Status DeliverToMaildir(const std::string& root, const std::string& address,
                        std::string_view message);

class Deliverer {
 public:
  Deliverer(const Config& config, store::ListStore* lists, spool::Spool* spool,
            net::Metrics* metrics);

  // Delivers what is due in every active post. Returns the earliest time
  // something else becomes due (0: nothing waiting).
  std::int64_t RunOnce(std::int64_t now);

 private:
  void DeliverPost(spool::ActivePost& post, std::int64_t now);
  void Settle(spool::ActivePost& post, std::size_t index, int code, const std::string& text,
              std::int64_t now,
              std::vector<std::pair<std::size_t, spool::RecipientEntry>>& updates);
  std::int64_t Backoff(int attempts) const;

  const Config& config_;
  store::ListStore* lists_;
  spool::Spool* spool_;
  net::Metrics* metrics_;
  std::map<std::string, std::int64_t> next_due_;  // post id -> earliest pending retry
};

}  // namespace blindlist::listd
