#include "audit_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "store/scratch_database.h"

namespace blindlist::groupd {
namespace {

using store::testkit::Backend;
using store::testkit::ScratchDatabase;

class AuditWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = ScratchDatabase::Create(Backend::kSqlite);
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto st = store::Store::Open(db_->url());
    ASSERT_TRUE(st.ok()) << st.error().message;
    store_ = std::move(*st);
  }
  void TearDown() override { store_.reset(); }

  static store::AuditRecord Record(const std::string& caller, const std::string& operation) {
    store::AuditRecord r;
    r.daemon = "groupd";
    r.caller = caller;
    r.group = "list@example.org";
    r.operation = operation;
    r.result = "ok";
    return r;
  }

  // Oldest first.
  std::vector<store::AuditRecord> All() {
    auto rows = store_->ListAudit("", 100000);
    EXPECT_TRUE(rows.ok());
    return {rows->rbegin(), rows->rend()};
  }

  std::unique_ptr<ScratchDatabase> db_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(AuditWriterTest, RecordsFromOneThreadLandInOrder) {
  AuditWriter writer(store_.get());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(writer.Append(Record("a@example.org", "op" + std::to_string(i))).ok());
  }
  auto rows = All();
  ASSERT_EQ(rows.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(rows[i].operation, "op" + std::to_string(i));
}

TEST_F(AuditWriterTest, ConcurrentRecordsAllLandKeepingEachCallersOrderInSharedCommits) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  AuditWriter writer(store_.get());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Status st = writer.Append(Record("t" + std::to_string(t), std::to_string(i)));
        if (!st.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto rows = All();
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::map<std::string, int> next;
  for (const auto& r : rows) {
    EXPECT_EQ(r.operation, std::to_string(next[r.caller])) << r.caller;
    ++next[r.caller];
  }
  EXPECT_EQ(writer.records(), static_cast<std::size_t>(kThreads * kPerThread));
  // Group commit: concurrent callers shared transactions.
  EXPECT_LT(writer.batches(), writer.records());
}

TEST_F(AuditWriterTest, StopDrainsWhatIsQueuedAndLaterRecordsStillLand) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 30;
  auto writer = std::make_unique<AuditWriter>(store_.get());
  std::atomic<int> ok{0};
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++started;
      for (int i = 0; i < kPerThread; ++i) {
        if (writer->Append(Record("t" + std::to_string(t), std::to_string(i))).ok()) ++ok;
      }
    });
  }
  while (started.load() < kThreads) std::this_thread::yield();
  writer->Stop();  // while the threads are still appending
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(All().size(), static_cast<std::size_t>(kThreads * kPerThread));
  // After Stop(), Append() writes directly.
  EXPECT_TRUE(writer->Append(Record("late", "after-stop")).ok());
  writer.reset();
  auto rows = All();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().operation, "after-stop");
}

// AppendAsync: `done` runs only once the record is committed (it is then in the
// store), records keep their order with the blocking ones, and Stop() answers
// every record still queued.
TEST_F(AuditWriterTest, AsyncRecordsAreAnsweredOnlyOnceCommitted) {
  constexpr int kRecords = 200;
  auto writer = std::make_unique<AuditWriter>(store_.get());
  std::atomic<int> answered{0};
  std::atomic<int> committed_when_answered{0};
  for (int i = 0; i < kRecords; ++i) {
    std::string op = "async" + std::to_string(i);
    writer->AppendAsync(Record("a", op), [&, op](const Status& st) {
      EXPECT_TRUE(st.ok());
      // The writer answers after its commit: the record is visible to a reader now.
      auto rows = store_->ListAudit("", 100000);
      bool found = false;
      for (const auto& r : *rows) found = found || r.operation == op;
      if (found) ++committed_when_answered;
      ++answered;
    });
    if (i == kRecords / 2) {
      ASSERT_TRUE(writer->Append(Record("a", "blocking")).ok());
    }
  }
  writer->Stop();  // answers what is still queued
  EXPECT_EQ(answered.load(), kRecords);
  EXPECT_EQ(committed_when_answered.load(), kRecords);
  auto rows = All();
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kRecords + 1));
  EXPECT_EQ(rows[kRecords / 2 + 1].operation, "blocking");
  EXPECT_EQ(rows.back().operation, "async" + std::to_string(kRecords - 1));
  // After Stop(), AppendAsync() writes directly and answers on the caller's thread.
  bool late = false;
  writer->AppendAsync(Record("late", "after-stop"), [&](const Status& st) { late = st.ok(); });
  EXPECT_TRUE(late);
}

// One request's records (a per-member re-wrap: one per member, then its own) as one entry: one
// callback once all are committed, never split between transactions even with other callers'
// records around them, and after Stop() written directly.
TEST_F(AuditWriterTest, OneRequestsRecordsAreOneEntryCommittedTogether) {
  constexpr int kThreads = 4;
  constexpr int kRequests = 10;
  constexpr int kMembers = 50;
  auto writer = std::make_unique<AuditWriter>(store_.get(), 128);
  std::atomic<int> answered{0};
  std::atomic<int> complete_when_answered{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int q = 0; q < kRequests; ++q) {
        const std::string caller = "t" + std::to_string(t) + "q" + std::to_string(q);
        std::vector<store::AuditRecord> records;
        records.reserve(kMembers + 1);
        for (int m = 0; m < kMembers; ++m) records.push_back(Record(caller, std::to_string(m)));
        records.push_back(Record(caller, "request"));
        writer->AppendAsync(std::move(records), [&, caller](const Status& st) {
          EXPECT_TRUE(st.ok());
          int seen = 0;
          auto listed = store_->ListAudit("", 100000);
          for (const auto& r : *listed) seen += r.caller == caller ? 1 : 0;
          if (seen == kMembers + 1) ++complete_when_answered;
          ++answered;
        });
        writer->AppendAsync(Record("single" + std::to_string(t), std::to_string(q)),
                            [](const Status& st) { EXPECT_TRUE(st.ok()); });
      }
    });
  }
  for (auto& th : threads) th.join();
  writer->Stop();
  EXPECT_EQ(answered.load(), kThreads * kRequests);
  EXPECT_EQ(complete_when_answered.load(), kThreads * kRequests);
  // Each request's records are contiguous and in order: nothing came between them.
  auto rows = All();
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kThreads * kRequests * (kMembers + 2)));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].caller.rfind("single", 0) == 0) continue;
    ASSERT_EQ(rows[i].operation, "0") << i;
    for (int m = 1; m <= kMembers; ++m) {
      ASSERT_EQ(rows[i + m].caller, rows[i].caller);
      EXPECT_EQ(rows[i + m].operation, m == kMembers ? "request" : std::to_string(m));
    }
    i += kMembers;
  }
  EXPECT_EQ(writer->records(), rows.size());
  bool late = false;
  std::vector<store::AuditRecord> after;
  after.push_back(Record("late", "1"));
  after.push_back(Record("late", "2"));
  writer->AppendAsync(std::move(after), [&](const Status& st) { late = st.ok(); });
  EXPECT_TRUE(late);
  EXPECT_EQ(All().size(), rows.size() + 2);
}

TEST_F(AuditWriterTest, TextThatIsNotUtf8IsStoredNotRefused) {
  AuditWriter writer(store_.get());
  ASSERT_TRUE(writer.Append(Record("a@example.org", std::string("bad\xff\0x", 6))).ok());
  auto rows = All();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_NE(rows[0].operation.find("bad"), std::string::npos);
}

}  // namespace
}  // namespace blindlist::groupd
