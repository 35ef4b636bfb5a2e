// AuditWriter: group commit for groupd's audit log. A request hands its record to
// Append(), which returns once the record is committed, in one transaction (one
// sync) with the records of the requests that arrived while the previous batch
// was being written. So nothing is answered as audited before it is durable,
// and concurrent requests share a sync instead of queueing for one each.
//
// Order: records are committed in the order Append() was called. A failed batch is
// retried record by record, so one bad record cannot fail its neighbours; a record
// that still cannot be written makes its Append() fail (the caller then refuses the
// request). Stop() (and the destructor) commits everything queued, then joins;
// Append() after Stop() writes directly.
//
// Thread-safety: Append() may be called from any number of threads at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "blindlist/result.h"
#include "store/store.h"

namespace blindlist::groupd {

class AuditWriter {
 public:
  // `store` must outlive the writer. `max_batch` bounds one transaction.
  explicit AuditWriter(store::Store* store, std::size_t max_batch = 512);
  ~AuditWriter();
  AuditWriter(const AuditWriter&) = delete;
  AuditWriter& operator=(const AuditWriter&) = delete;

  // Blocks until the record is committed (Ok) or cannot be (the store's error).
  Status Append(store::AuditRecord record);
  // Returns at once; `done` is called with what Append() would return, on the
  // writer's thread once the record's batch is committed (or on this thread after
  // Stop()). `done` must be quick: the next batch waits for it.
  void AppendAsync(store::AuditRecord record, std::function<void(Status)> done);
  // AppendAsync for the records of one request (a per-member re-wrap: one per member and the
  // request's own), in order and never split between transactions unless they are more than
  // `max_batch`; `done` is called once, Ok only if every record was committed. One queue entry
  // and one callback for them all, not one each.
  void AppendAsync(std::vector<store::AuditRecord> records, std::function<void(Status)> done);
  // Commits what is queued and stops the writer thread. Idempotent.
  void Stop();

  // Counters for tests and metrics: transactions committed, records in them.
  std::size_t batches() const;
  std::size_t records() const;

 private:
  struct Pending;
  void Drain();

  store::Store* store_;
  const std::size_t max_batch_;
  mutable std::mutex mu_;
  std::condition_variable work_;  // the writer waits for records or Stop()
  std::condition_variable done_;  // Append() callers wait for their batch
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::size_t batches_ = 0;
  std::size_t records_ = 0;
  std::thread thread_;  // last: started once everything above is ready
};

}  // namespace blindlist::groupd
