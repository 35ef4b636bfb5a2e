#include "api/audit_tally.h"

#include <ctime>
#include <utility>

#include "obs/log.h"

namespace blindlist::api {

namespace {
// Enough for an address, a group (an email address) and an operation name; the
// path-derived parts of a refused request are the caller's choice and unbounded.
constexpr std::size_t kFieldChars = 256;

std::string Bounded(const std::string& s) { return s.substr(0, kFieldChars); }
}  // namespace

AuditTally::AuditTally(std::string daemon, std::chrono::milliseconds interval, Sink sink,
                       std::size_t max_keys)
    : daemon_(std::move(daemon)),
      interval_(interval.count() > 0 ? interval : std::chrono::milliseconds(1000)),
      sink_(std::move(sink)),
      max_keys_(max_keys),
      thread_([this] { Run(); }) {}

AuditTally::~AuditTally() { Stop(); }

void AuditTally::Count(const std::string& caller, const std::string& group,
                       const std::string& operation, const std::string& result) {
  Key key{Bounded(caller), Bounded(group), Bounded(operation), Bounded(result)};
  std::lock_guard lock(mu_);
  if (stopping_) return;
  auto it = counts_.find(key);
  if (it != counts_.end()) {
    ++it->second;
  } else if (counts_.size() < max_keys_) {
    counts_.emplace(std::move(key), 1);
  } else {
    ++overflow_;
  }
}

std::vector<store::AuditRecord> AuditTally::Take() {
  std::map<Key, std::int64_t> counts;
  std::int64_t overflow = 0;
  {
    std::lock_guard lock(mu_);
    counts.swap(counts_);
    std::swap(overflow, overflow_);
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  std::vector<store::AuditRecord> records;
  records.reserve(counts.size() + 1);
  const auto add = [&](const Key& key, std::int64_t n) {
    store::AuditRecord r;
    r.time = now;
    r.daemon = daemon_;
    std::tie(r.caller, r.group, r.operation, r.result) = key;
    r.reason = "count:" + std::to_string(n);
    records.push_back(std::move(r));
  };
  for (const auto& [key, n] : counts) add(key, n);
  if (overflow > 0) add(Key{"*", "*", "*", "*"}, overflow);
  return records;
}

void AuditTally::Flush() {
  std::lock_guard flushing(flush_mu_);
  std::vector<store::AuditRecord> records = Take();
  if (records.empty()) return;
  Status st = sink_(std::move(records));
  if (!st.ok()) {
    net::Log(net::LogLevel::kError, "refusal audit write failed", {{"error", st.error().message}});
  }
}

void AuditTally::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  Flush();
}

void AuditTally::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    try {
      Flush();
    } catch (const std::exception& e) {
      // Out of memory or a throwing sink: keep counting, try again next interval.
      net::Log(net::LogLevel::kError, "refusal audit flush failed", {{"error", e.what()}});
    }
    lock.lock();
  }
}

}  // namespace blindlist::api
