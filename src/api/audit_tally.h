// AuditTally: the audit of refused requests, in aggregate. A daemon counts each
// request it refuses without doing its work (429 rate-limited, and what the HTTPS
// layer refuses: too large, malformed, too many connections) here instead of
// writing one audit record each; every `interval` the tally hands the store one
// record per (caller, group, operation, result) with the count in its reason
// ("count:N"). At most `max_keys` distinct keys are kept per interval; later ones
// are counted in one overflow record (caller, group, operation and result "*"), so
// a flood of refusals adds at most max_keys + 1 records per interval however many
// addresses, paths or groups it names, and costs an I/O thread only a map update.
//
// Thread-safety: Count() may be called from any number of threads at once. The
// sink runs on the tally's own thread (or on the thread calling Flush()/Stop()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "blindlist/result.h"
#include "store/store.h"

namespace blindlist::api {

class AuditTally {
 public:
  // Writes one interval's records; its failure is logged and the counts are dropped.
  using Sink = std::function<Status(std::vector<store::AuditRecord>)>;

  AuditTally(std::string daemon, std::chrono::milliseconds interval, Sink sink,
             std::size_t max_keys = kDefaultMaxKeys);
  // Flushes what is counted, then stops.
  ~AuditTally();
  AuditTally(const AuditTally&) = delete;
  AuditTally& operator=(const AuditTally&) = delete;

  // Counts one refusal. Fields are truncated to what an audit record may hold.
  void Count(const std::string& caller, const std::string& group, const std::string& operation,
             const std::string& result);
  // Writes what is counted now (also done every interval and by Stop()).
  void Flush();
  // Flushes and joins the timer thread. Idempotent; Count() afterwards is ignored.
  void Stop();

  static constexpr std::size_t kDefaultMaxKeys = 256;

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  std::vector<store::AuditRecord> Take();
  void Run();

  const std::string daemon_;
  const std::chrono::milliseconds interval_;
  const Sink sink_;
  const std::size_t max_keys_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::map<Key, std::int64_t> counts_;
  std::int64_t overflow_ = 0;
  bool stopping_ = false;
  std::mutex flush_mu_;  // one sink call at a time, in interval order
  std::thread thread_;   // last: started once everything above is ready
};

}  // namespace blindlist::api
