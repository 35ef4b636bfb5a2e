#include "audit_writer.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace blindlist::groupd {

// Append(): lives on the caller's stack until its result is set.
// AppendAsync(): owned by the queue, then by the batch, which calls `done`.
struct AuditWriter::Pending {
  std::vector<store::AuditRecord> records;  // one, or one request's in order
  std::optional<Status> result;
  std::function<void(Status)> done;
};

namespace {

std::vector<store::AuditRecord> One(store::AuditRecord record) {
  std::vector<store::AuditRecord> v;
  v.push_back(std::move(record));
  return v;
}

}  // namespace

AuditWriter::AuditWriter(store::Store* store, std::size_t max_batch)
    : store_(store), max_batch_(max_batch == 0 ? 1 : max_batch), thread_([this] { Drain(); }) {}

AuditWriter::~AuditWriter() { Stop(); }

Status AuditWriter::Append(store::AuditRecord record) {
  Pending pending{One(std::move(record)), std::nullopt, nullptr};
  std::unique_lock lock(mu_);
  if (stopped_) {
    lock.unlock();
    return store_->AppendAudit(pending.records.front());
  }
  queue_.push_back(&pending);
  lock.unlock();
  work_.notify_one();
  lock.lock();
  done_.wait(lock, [&] { return pending.result.has_value(); });
  return *pending.result;
}

void AuditWriter::AppendAsync(store::AuditRecord record, std::function<void(Status)> done) {
  AppendAsync(One(std::move(record)), std::move(done));
}

void AuditWriter::AppendAsync(std::vector<store::AuditRecord> records,
                              std::function<void(Status)> done) {
  if (records.empty()) {
    done(Status::Ok());
    return;
  }
  auto pending =
      std::make_unique<Pending>(Pending{std::move(records), std::nullopt, std::move(done)});
  std::unique_lock lock(mu_);
  if (stopped_) {
    lock.unlock();
    Status st = Status::Ok();
    for (const auto& r : pending->records) {
      if (Status one = store_->AppendAudit(r); st.ok() && !one.ok()) st = one;
    }
    pending->done(st);
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
    // Whole entries up to max_batch_ records (an entry larger than that goes alone).
    std::vector<Pending*> batch;
    std::size_t count = 0;
    while (!queue_.empty() &&
           (batch.empty() || count + queue_.front()->records.size() <= max_batch_)) {
      count += queue_.front()->records.size();
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();

    std::vector<store::AuditRecord> records;
    records.reserve(count);
    for (Pending* p : batch) {
      for (auto& r : p->records) records.push_back(std::move(r));  // not read again
    }
    Status st = store_->AppendAuditBatch(records);
    std::vector<Status> results(batch.size(), st);
    std::size_t written = st.ok() ? records.size() : 0;
    if (!st.ok() && records.size() > 1) {
      // One record the store refuses must not take the others down with it: each entry fails
      // only with a record of its own.
      std::size_t next = 0;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        results[i] = Status::Ok();
        for (std::size_t k = 0; k < batch[i]->records.size(); ++k) {
          Status one = store_->AppendAudit(records[next++]);
          if (one.ok()) ++written;
          if (results[i].ok() && !one.ok()) results[i] = one;
        }
      }
    }

    lock.lock();
    records_ += written;
    std::vector<std::unique_ptr<Pending>> answered;  // AppendAsync() records
    bool waiters = false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
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
