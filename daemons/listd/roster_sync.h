// One roster, not two by hand: a list whose delivery list follows groupd (roster = "groupd")
// gets the addresses of its group's current members from groupd, asked as the list's registered
// exploder (mTLS), and its delivery list becomes exactly those (store::ListStore::ReplaceMembers:
// one transaction; a member disabled for bounces stays disabled). groupd stays the only roster:
// nothing here can make anyone a member, and groupd tells the exploder addresses only.
// Lists with roster = "manual" are never touched.
// Thread-safety: SyncRoster and SyncAllRosters may run concurrently (each call uses its own
// connection); a RosterSyncLoop is started and destroyed on one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/groupd_client.h"
#include "blindlist/result.h"
#include "config.h"
#include "obs/metrics.h"
#include "store/list_store.h"

namespace blindlist::listd {

// Where a roster comes from: groupd in production, a fake in tests.
class RosterSource {
 public:
  virtual ~RosterSource() = default;
  // The addresses of the current members of `group`.
  virtual Result<std::vector<std::string>> Fetch(const std::string& group) = 0;
};

// GET /v1/groups/GROUP/roster on [groupd] url with the exploder's client certificate.
std::unique_ptr<RosterSource> MakeGroupdRosterSource(const GroupdConfig& config);

// Copies the roster into `list` (which must follow groupd), logs the difference and counts it
// (listd_roster_sync_total{result}, listd_roster_changes_total{change}; `metrics` may be null).
// On any error the delivery list is left as it was.
Result<store::RosterChange> SyncRoster(store::ListStore& lists, const store::MailingList& list,
                                       RosterSource& source, net::Metrics* metrics);

// SyncRoster for every list with roster = "groupd"; one list's failure does not stop the others.
// Returns how many lists failed.
int SyncAllRosters(store::ListStore& lists, RosterSource& source, net::Metrics* metrics);

// Runs SyncAllRosters at start and then every `interval` on its own thread, until destroyed.
class RosterSyncLoop {
 public:
  RosterSyncLoop(store::ListStore* lists, std::unique_ptr<RosterSource> source,
                 std::chrono::seconds interval, net::Metrics* metrics);
  ~RosterSyncLoop();  // wakes and joins the thread
  RosterSyncLoop(const RosterSyncLoop&) = delete;
  RosterSyncLoop& operator=(const RosterSyncLoop&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The loop listd runs: none when [groupd] roster_sync_seconds is 0 or [groupd] url is unset.
std::unique_ptr<RosterSyncLoop> StartRosterSync(const GroupdConfig& config, store::ListStore* lists,
                                                net::Metrics* metrics);

}  // namespace blindlist::listd
