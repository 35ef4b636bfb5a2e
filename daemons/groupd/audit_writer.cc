#include "audit_writer.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace blindlist::groupd {

// Append(): lives on the caller's stack until its result is set.
// AppendAsync(): owned by the queue, then by the batch, which calls `done`.
struct AuditWriter::Pending {
  store::AuditRecord record;
  std::optional<Status> result;
  std::function<void(Status)> done;
};

AuditWriter::AuditWriter(store::Store* store, std::size_t max_batch)
    : store_(store), max_batch_(max_batch == 0 ? 1 : max_batch), thread_([this] { Drain(); }) {}

AuditWriter::~AuditWriter() { Stop(); }

Status AuditWriter::Append(store::AuditRecord record) {
  Pending pending{std::move(record), std::nullopt, nullptr};
  std::unique_lock lock(mu_);
  if (stopped_) {
    lock.unlock();
    return store_->AppendAudit(pending.record);
  }
  queue_.push_back(&pending);
  lock.unlock();
  work_.notify_one();
  lock.lock();
  done_.wait(lock, [&] { return pending.result.has_value(); });
  return *pending.result;
}

void AuditWriter::AppendAsync(store::AuditRecord record, std::function<void(Status)> done) {
  auto pending =
      std::make_unique<Pending>(Pending{std::move(record), std::nullopt, std::move(done)});
  std::unique_lock lock(mu_);
  if (stopped_) {
    lock.unlock();
    pending->done(store_->AppendAudit(pending->record));
    return;
  }
  queue_.push_back(pending.release());
  lock.unlock();
  work_.notify_one();
}

void AuditWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  work_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::size_t AuditWriter::batches() const {
  std::lock_guard lock(mu_);
  return batches_;
}

std::size_t AuditWriter::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

void AuditWriter::Drain() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      // stopping_ and nothing left: later Append() calls write directly.
      stopped_ = true;
      return;
    }
    std::vector<Pending*> batch;
    while (!queue_.empty() && batch.size() < max_batch_) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();

    std::vector<store::AuditRecord> records;
    records.reserve(batch.size());
    for (Pending* p : batch) records.push_back(std::move(p->record));  // not read again
    Status st = store_->AppendAuditBatch(records);
    std::vector<Status> results(batch.size(), st);
    if (!st.ok() && batch.size() > 1) {
      // One record the store refuses must not take the others down with it.
      for (std::size_t i = 0; i < batch.size(); ++i) results[i] = store_->AppendAudit(records[i]);
    }

    lock.lock();
    std::vector<std::unique_ptr<Pending>> answered;  // AppendAsync() records
    bool waiters = false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (results[i].ok()) ++records_;
      if (batch[i]->done) {
        batch[i]->result = results[i];
        answered.emplace_back(batch[i]);
      } else {
        batch[i]->result = results[i];  // the Append() caller may return now
        waiters = true;
      }
    }
    if (st.ok()) ++batches_;
    lock.unlock();
    if (waiters) done_.notify_all();
    for (auto& p : answered) {
      try {
        p->done(*p->result);
      } catch (...) {
        // A callback that throws (out of memory) must not end the writer; its
        // request's answer is then lost with its connection, not the audit record.
      }
    }
    lock.lock();
  }
}

}  // namespace blindlist::groupd
