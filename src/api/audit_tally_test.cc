#include "api/audit_tally.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/rate_limiter.h"

namespace blindlist::api {
namespace {

struct Written {
  std::mutex mu;
  std::vector<std::vector<store::AuditRecord>> batches;
  AuditTally::Sink Sink() {
    return [this](std::vector<store::AuditRecord> records) {
      std::lock_guard lock(mu);
      batches.push_back(std::move(records));
      return Status::Ok();
    };
  }
};

TEST(AuditTallyTest, OneRecordPerKeyWithTheCount) {
  Written w;
  AuditTally tally("groupd", std::chrono::hours(1), w.Sink());
  for (int i = 0; i < 1000; ++i)
    tally.Count("ip:192.0.2.1", "a@example.org", "unwrap", "rate-limited");
  for (int i = 0; i < 3; ++i) tally.Count("ip:192.0.2.2", "", "refused", "body-too-large");
  tally.Flush();
  ASSERT_EQ(w.batches.size(), 1u);
  ASSERT_EQ(w.batches[0].size(), 2u);
  const store::AuditRecord& r = w.batches[0][0];
  EXPECT_EQ(r.daemon, "groupd");
  EXPECT_EQ(r.caller, "ip:192.0.2.1");
  EXPECT_EQ(r.group, "a@example.org");
  EXPECT_EQ(r.operation, "unwrap");
  EXPECT_EQ(r.result, "rate-limited");
  EXPECT_EQ(r.reason, "count:1000");
  EXPECT_GT(r.time, 0);
  EXPECT_EQ(w.batches[0][1].reason, "count:3");
  tally.Flush();  // nothing new: nothing written
  EXPECT_EQ(w.batches.size(), 1u);
}

TEST(AuditTallyTest, DistinctKeysAreBoundedByAnOverflowRecord) {
  Written w;
  AuditTally tally("certd", std::chrono::hours(1), w.Sink(), /*max_keys=*/8);
  // Every refusal names a new group and a long operation: still at most 9 records.
  for (int i = 0; i < 500; ++i)
    tally.Count("ip:192.0.2.1", "g" + std::to_string(i), std::string(5000, 'x'), "rate-limited");
  tally.Flush();
  ASSERT_EQ(w.batches.size(), 1u);
  ASSERT_EQ(w.batches[0].size(), 9u);
  std::int64_t total = 0;
  for (const auto& r : w.batches[0]) {
    EXPECT_LE(r.operation.size(), 256u);
    total += std::stoll(r.reason.substr(6));
  }
  EXPECT_EQ(total, 500);
  EXPECT_EQ(w.batches[0].back().caller, "*");
  EXPECT_EQ(w.batches[0].back().reason, "count:492");
}

TEST(AuditTallyTest, FlushesOnTheTimerAndOnStop) {
  Written w;
  {
    AuditTally tally("groupd", std::chrono::milliseconds(20), w.Sink());
    tally.Count("ip:192.0.2.1", "", "refused", "bad-request");
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(w.mu);
        if (!w.batches.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard lock(w.mu);
    ASSERT_EQ(w.batches.size(), 1u) << "the timer did not flush";
  }
  Written last;
  {
    AuditTally tally("groupd", std::chrono::hours(1), last.Sink());
    tally.Count("ip:192.0.2.1", "", "refused", "bad-request");
  }  // destroyed: flushed
  ASSERT_EQ(last.batches.size(), 1u);
  EXPECT_EQ(last.batches[0][0].reason, "count:1");
}

TEST(RateLimiterTest, ACostTakesThatManyUnits) {
  RateLimiter limiter(0.001, 10);
  EXPECT_EQ(limiter.Acquire("m", 7), 0);
  EXPECT_GT(limiter.Acquire("m", 7), 0);  // 3 left
  EXPECT_EQ(limiter.Acquire("m", 3), 0);
  EXPECT_GT(limiter.Acquire("m"), 0);
  EXPECT_EQ(limiter.Acquire("other", 10), 0);
  EXPECT_EQ(limiter.burst(), 10);
}

TEST(AddressBucketTest, Ipv4WholeIpv6ByItsSlash64) {
  EXPECT_EQ(AddressBucket("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(AddressBucket("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(AddressBucket("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(AddressBucket("::1"), "::/64");
  EXPECT_EQ(AddressBucket("not an address"), "not an address");
}

}  // namespace
}  // namespace blindlist::api
