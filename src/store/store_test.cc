// One suite, run against both backends: SQLite in a temporary file and
// PostgreSQL on the test server of the ctest fixture "postgres" (a fresh schema
// per test). ctest runs the binary twice, with BLINDLIST_STORE_BACKEND=sqlite
// and =postgresql; the PostgreSQL run fails, never skips, without a server.
#include "store/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/migrations/migrations.h"
#include "store/scratch_database.h"
#include "store/sql.h"
#include "store/store_test_support.h"

// The tests build records with designated initializers and leave the fields a
// case does not care about at their defaults, on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace blindlist::store {

namespace {

using testkit::Backend;
using testkit::ScratchDatabase;

UnixTime Now() { return static_cast<UnixTime>(std::time(nullptr)); }

Bytes B(std::initializer_list<int> bytes) {
  Bytes out;
  for (int b : bytes) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

// Binary values with NUL and high bytes, so no backend gets away with text.
Bytes Blob(std::uint8_t seed, std::size_t n = 40) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 37);
  out[0] = 0;
  return out;
}

template <typename T>
std::string ErrorCode(const Result<T>& r) {
  return r.ok() ? "ok" : r.error().code;
}
std::string ErrorCode(const Status& s) { return s.ok() ? "ok" : s.error().code; }

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto db = ScratchDatabase::Create(GetParam());
    ASSERT_TRUE(db.ok()) << "no " << testkit::BackendName(GetParam())
                         << " database for the test: " << db.error().message;
    db_ = std::move(db).value();
    auto store = Store::Open(db_->url());
    ASSERT_TRUE(store.ok()) << store.error().code << ": " << store.error().message;
    store_ = std::move(store).value();
  }

  void TearDown() override {
    store_.reset();
    db_.reset();
  }

  // A group that must exist for the test to go on.
  std::int64_t MakeGroup(const std::string& name) {
    auto g = store_->CreateGroup(name);
    EXPECT_TRUE(g.ok()) << g.error().message;
    return g.ok() ? g->id : -1;
  }

  static Member MakeMember(std::int64_t group_id, const std::string& address, std::uint8_t seed) {
    Member m;
    m.group_id = group_id;
    m.address = address;
    m.certificate_der = Blob(seed);
    m.cert_fingerprint = "ab" + std::to_string(seed) + "cd";
    m.token_hash = Blob(static_cast<std::uint8_t>(seed + 100), 32);
    return m;
  }

  // Whether `serial` is recorded and revoked; nothing if it is not recorded.
  std::optional<bool> Revoked(const std::string& serial) {
    auto found = store_->FindIssuedCertificate(serial);
    EXPECT_TRUE(found.ok()) << found.error().message;
    if (!found.ok() || !found->has_value()) return std::nullopt;
    return (*found)->record.revoked;
  }

  std::unique_ptr<ScratchDatabase> db_;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::ValuesIn(testkit::BackendsFromEnvironment()),
                         testkit::BackendParamName);

// ---- opening and migrations ----

TEST_P(StoreTest, OpensTwiceAndKeepsTheSchemaVersion) {
  EXPECT_EQ(store_->BackendName(), testkit::BackendName(GetParam()));
  auto version = store_->SchemaVersion();
  ASSERT_OK(version);
  EXPECT_EQ(*version, migrations::LatestVersion());
  EXPECT_GE(*version, 1);
  ASSERT_OK(store_->CreateGroup("list@example.org"));

  // Open again: the migrations see the schema is current and change nothing.
  store_.reset();
  auto again = Store::Open(db_->url());
  ASSERT_OK(again);
  store_ = std::move(again).value();
  version = store_->SchemaVersion();
  ASSERT_OK(version);
  EXPECT_EQ(*version, migrations::LatestVersion());
  auto found = store_->FindGroup("list@example.org");
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());
}

TEST_P(StoreTest, OpensConcurrentlyOnAFreshDatabase) {
  // Several processes starting at once on an empty database must not race the migrations.
  auto fresh = ScratchDatabase::Create(GetParam());
  ASSERT_OK(fresh);
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto s = Store::Open((*fresh)->url());
      if (s.ok() && (*s)->SchemaVersion().ok()) ++opened;
      if (!s.ok()) ADD_FAILURE() << s.error().code << ": " << s.error().message;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
}

// An upgrade from every released schema: a database a build that knew only its first v steps
// made is migrated by this build, and takes writes after it. A rollback: a build that knows
// fewer steps than the database has refuses it, naming both versions, and changes nothing.
TEST_P(StoreTest, UpgradesEveryOlderSchemaAndRefusesARollback) {
  const migrations::Schema current{
      .steps = migrations::All(), .version_table = "schema_migrations", .lock_key = 0x626c6e64};
  testkit::ForEachOlderSchema(GetParam(), current, [](const std::string& url) {
    {
      // An audit record of the older build: it must read after the upgrade, members empty.
      auto pool = sql::OpenPool(url);
      ASSERT_OK(pool);
      auto lease = (*pool)->Acquire();
      ASSERT_OK(lease);
      ASSERT_OK((*lease)->Exec(
          "INSERT INTO audit_log (occurred_at, daemon, caller, group_name, key_version, "
          "operation, result, reason) VALUES (1700000000, 'groupd', 'exploder', "
          "'old@example.org', 1, 'rewrap-member', 'ok', 'member:alice@example.org')",
          {}));
    }
    auto upgraded = Store::Open(url);
    ASSERT_OK(upgraded);
    auto version = (*upgraded)->SchemaVersion();
    ASSERT_OK(version);
    EXPECT_EQ(*version, migrations::LatestVersion());
    ASSERT_OK((*upgraded)->CreateGroup("after-upgrade@example.org"));
    auto kept = (*upgraded)->ListAudit("old@example.org", 10);
    ASSERT_OK(kept);
    ASSERT_EQ(kept->size(), 1u);
    EXPECT_EQ((*kept)[0].reason, "member:alice@example.org");
    EXPECT_EQ((*kept)[0].members, "");
    // The key generation rounds' table (step 6) is there and takes a round.
    auto begun = (*upgraded)->BeginDkgRound(DkgRound{.group = "dkg-after-upgrade@example.org",
                                                     .round = "r1",
                                                     .context = "c",
                                                     .start_answer = Blob(1),
                                                     .expires_at = Now() + 60});
    ASSERT_OK(begun);
    EXPECT_EQ(begun->round, "r1");
  });
  ASSERT_OK(store_->CreateGroup("kept@example.org"));
  auto refused = testkit::ApplyFirstSteps(db_->url(), current, current.steps.size() - 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find(
                "the database schema is version " + std::to_string(migrations::LatestVersion()) +
                ", newer than this build knows (" +
                std::to_string(current.steps[current.steps.size() - 2].version) + ")"),
            std::string::npos)
      << refused.error().message;
  auto version = store_->SchemaVersion();
  ASSERT_OK(version);
  EXPECT_EQ(*version, migrations::LatestVersion());
  auto kept = store_->FindGroup("kept@example.org");
  ASSERT_OK(kept);
  EXPECT_TRUE(kept->has_value());
}

// ---- threshold key generation rounds ----

// One round per group at a node: a second start of the same round gets the first one's record
// back, another round is not recorded while the first lasts; a round deals on one view only; a
// finish claims its round once; an ended or expired round makes way for a new one, and its id
// is never started again.
TEST_P(StoreTest, KeepsOneKeyGenerationRoundPerGroupUntilItEndsOrExpires) {
  const DkgRound first{.group = "g@example.org",
                       .round = "r1",
                       .context = "k=2 n=3 index=1",
                       .start_answer = Blob(1),
                       .expires_at = Now() + 3600};
  auto begun = store_->BeginDkgRound(first);
  ASSERT_OK(begun);
  EXPECT_EQ(begun->round, "r1");
  EXPECT_EQ(begun->start_answer, Blob(1));
  EXPECT_FALSE(begun->dealt);
  DkgRound again = first;
  again.start_answer = Blob(2);
  auto kept = store_->BeginDkgRound(again);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->start_answer, Blob(1));  // the first answer, never a new one
  DkgRound other = first;
  other.round = "r2";
  kept = store_->BeginDkgRound(other);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->round, "r1");
  // Another group has a round of its own.
  DkgRound elsewhere = other;
  elsewhere.group = "h@example.org";
  ASSERT_OK(store_->BeginDkgRound(elsewhere));

  auto dealt = store_->DealDkgRound("g@example.org", "r1", Blob(3, 32), Blob(4));
  ASSERT_OK(dealt);
  EXPECT_TRUE(dealt->dealt);
  EXPECT_EQ(dealt->view_digest, Blob(3, 32));
  dealt = store_->DealDkgRound("g@example.org", "r1", Blob(5, 32), Blob(6));
  ASSERT_OK(dealt);
  EXPECT_EQ(dealt->view_digest, Blob(3, 32));  // the first view stays
  EXPECT_EQ(dealt->deal_answer, Blob(4));
  EXPECT_EQ(ErrorCode(store_->DealDkgRound("g@example.org", "r2", Blob(5, 32), Blob(6))),
            "not-found");
  auto found = store_->FindDkgRound("g@example.org");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->view_digest, Blob(3, 32));

  // A check only on the view dealt on; the first check stays (accepted or failed).
  EXPECT_EQ((*found)->checked, DkgCheck::kNone);
  auto checked = store_->CheckDkgRound("g@example.org", "r1", Blob(5, 32), DkgCheck::kAccepted,
                                       Blob(7), Blob(8));
  ASSERT_OK(checked);
  EXPECT_EQ(checked->checked, DkgCheck::kNone);  // another view: not recorded
  checked = store_->CheckDkgRound("g@example.org", "r1", Blob(3, 32), DkgCheck::kFailed, {}, {});
  ASSERT_OK(checked);
  EXPECT_EQ(checked->checked, DkgCheck::kFailed);
  checked = store_->CheckDkgRound("g@example.org", "r1", Blob(3, 32), DkgCheck::kAccepted, Blob(7),
                                  Blob(8));
  ASSERT_OK(checked);
  EXPECT_EQ(checked->checked, DkgCheck::kFailed);  // a failed round never accepts
  EXPECT_TRUE(checked->sealed_share.empty());
  auto accepted = store_->CheckDkgRound("h@example.org", "r2", Blob(3, 32), DkgCheck::kAccepted,
                                        Blob(7), Blob(8));
  ASSERT_OK(accepted);
  EXPECT_EQ(accepted->checked, DkgCheck::kNone);  // not dealt yet
  ASSERT_OK(store_->DealDkgRound("h@example.org", "r2", Blob(3, 32), Blob(4)));
  accepted = store_->CheckDkgRound("h@example.org", "r2", Blob(3, 32), DkgCheck::kAccepted, Blob(7),
                                   Blob(8));
  ASSERT_OK(accepted);
  EXPECT_EQ(accepted->checked, DkgCheck::kAccepted);
  EXPECT_EQ(accepted->check_answer, Blob(7));
  EXPECT_EQ(accepted->sealed_share, Blob(8));
  // A failure after an accept (a check racing a good and a bad piece) changes nothing: the
  // first check stands, and every later answer says what it was.
  auto second =
      store_->CheckDkgRound("h@example.org", "r2", Blob(3, 32), DkgCheck::kFailed, {}, {});
  ASSERT_OK(second);
  EXPECT_EQ(second->checked, DkgCheck::kAccepted);
  EXPECT_EQ(second->sealed_share, Blob(8));
  EXPECT_EQ(ErrorCode(store_->CheckDkgRound("g@example.org", "r9", Blob(3, 32), DkgCheck::kAccepted,
                                            Blob(7), Blob(8))),
            "not-found");

  EXPECT_EQ(ErrorCode(store_->EndDkgRound("g@example.org", "r2", false)), "not-found");
  ASSERT_OK(store_->EndDkgRound("G@Example.org", "r1", true));  // any spelling: one group
  EXPECT_EQ(ErrorCode(store_->EndDkgRound("g@example.org", "r1", false)), "not-found");
  found = store_->FindDkgRound("g@example.org");
  ASSERT_OK(found);
  EXPECT_FALSE(found->has_value());

  // An ended round's id is used for good: the same round cannot start again, a new one can.
  EXPECT_EQ(ErrorCode(store_->BeginDkgRound(first)), "conflict");
  found = store_->FindDkgRound("g@example.org");
  ASSERT_OK(found);
  EXPECT_FALSE(found->has_value());
  // Nor can another group's round id (h@example.org keeps r2).
  EXPECT_EQ(ErrorCode(store_->BeginDkgRound(other)), "conflict");

  // A round already expired is not started; a new round takes its place.
  DkgRound expired = first;
  expired.round = "old";
  expired.expires_at = Now() - 10;
  EXPECT_EQ(ErrorCode(store_->BeginDkgRound(expired)), "not-found");  // over before it starts
  found = store_->FindDkgRound("g@example.org");
  ASSERT_OK(found);
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(ErrorCode(store_->DealDkgRound("g@example.org", "old", Blob(3, 32), Blob(4))),
            "not-found");
  DkgRound fresh = first;
  fresh.round = "r3";
  kept = store_->BeginDkgRound(fresh);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->round, "r3");
  // r3 runs out (as an hour passing would make it): the next start ends it, and its id is used.
  {
    auto pool = sql::OpenPool(db_->url());
    ASSERT_OK(pool);
    auto lease = (*pool)->Acquire();
    ASSERT_OK(lease);
    ASSERT_OK(
        (*lease)->Exec("UPDATE dkg_rounds SET expires_at = $1 WHERE round = 'r3'", {Now() - 10}));
  }
  DkgRound next = first;
  next.round = "r4";
  kept = store_->BeginDkgRound(next);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->round, "r4");
  fresh.group = "k@example.org";
  EXPECT_EQ(ErrorCode(store_->BeginDkgRound(fresh)), "conflict");

  // Every round id the group was started in, for good: not r2 (refused while r1 lasted; it is
  // h@example.org's), not "old" (over before it started).
  auto started = store_->ListStartedDkgRounds("g@example.org");
  ASSERT_OK(started);
  std::vector<std::string> ids;
  for (const auto& r : *started) {
    ids.push_back(r.round);
    EXPECT_GE(r.started_at, Now() - 60);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"r1", "r3", "r4"}));
  EXPECT_GE((*started)[0].finished_at, Now() - 60);  // r1 was ended as finished
  EXPECT_EQ((*started)[1].finished_at, 0);
  // Every spelling of the address is the one group: its list, and its one round at a time.
  auto spelled = store_->ListStartedDkgRounds("G@EXAMPLE.ORG");
  ASSERT_OK(spelled);
  EXPECT_EQ(spelled->size(), 3U);
  DkgRound other_spelling = first;
  other_spelling.group = "G@example.ORG";
  other_spelling.round = "r5";
  kept = store_->BeginDkgRound(other_spelling);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->round, "r4");  // the round in progress, whatever the spelling
  // A group of the address, in any spelling, takes no round.
  ASSERT_OK(store_->CreateGroup("Made@example.org"));
  DkgRound for_made = first;
  for_made.group = "made@EXAMPLE.org";
  for_made.round = "r6";
  EXPECT_EQ(ErrorCode(store_->BeginDkgRound(for_made)), "exists");
  started = store_->ListStartedDkgRounds("h@example.org");
  ASSERT_OK(started);
  ASSERT_EQ(started->size(), 1U);
  EXPECT_EQ((*started)[0].round, "r2");
}

// A round id starts once under concurrency too: concurrent first starts of one id get the one
// answer recorded, and fresh starts racing a cancel never record a second answer for the id.
TEST_P(StoreTest, StartsARoundIdOnceUnderConcurrentStartsAndCancels) {
  const auto start = [&](const std::string& id, std::uint8_t answer) {
    return store_->BeginDkgRound(DkgRound{.group = "race@example.org",
                                          .round = id,
                                          .context = "k=2 n=3 index=1",
                                          .start_answer = Blob(answer),
                                          .expires_at = Now() + 3600});
  };
  for (int trial = 0; trial < 5; ++trial) {
    const std::string id = "race" + std::to_string(trial);
    std::mutex lock;
    std::vector<std::string> answers;  // as text: one distinct value expected
    std::vector<std::thread> threads;
    for (std::uint8_t i = 0; i < 6; ++i) {
      threads.emplace_back([&, i] {
        auto begun = start(id, static_cast<std::uint8_t>(10 + i));
        ASSERT_OK(begun);
        const std::lock_guard<std::mutex> held(lock);
        answers.emplace_back(begun->start_answer.begin(), begun->start_answer.end());
      });
    }
    for (auto& t : threads) t.join();
    threads.clear();
    ASSERT_EQ(answers.size(), 6U);
    ASSERT_EQ(std::count(answers.begin(), answers.end(), answers[0]), 6) << "trial " << trial;
    const Bytes first(answers[0].begin(), answers[0].end());
    // A cancel and more starts of the same id at once: each start gets the first answer or is
    // refused ("conflict": the id has ended), never a new answer.
    threads.emplace_back([&] { EXPECT_OK(store_->EndDkgRound("race@example.org", id, false)); });
    for (std::uint8_t i = 0; i < 5; ++i) {
      threads.emplace_back([&, i] {
        auto again = start(id, static_cast<std::uint8_t>(40 + i));
        if (again.ok()) {
          EXPECT_EQ(again->start_answer, first);
        } else {
          EXPECT_EQ(again.error().code, "conflict") << again.error().message;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ErrorCode(start(id, 99)), "conflict");
  }
}

// ---- groups ----

TEST_P(StoreTest, CreatesFindsAndListsGroups) {
  const UnixTime before = Now();
  auto b = store_->CreateGroup("b@example.org");
  ASSERT_OK(b);
  auto a = store_->CreateGroup("a@example.org");
  ASSERT_OK(a);
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(b->name, "b@example.org");
  EXPECT_GE(b->created_at, before);
  EXPECT_LE(b->created_at, Now());

  auto found = store_->FindGroup("b@example.org");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, b->id);
  EXPECT_EQ((*found)->created_at, b->created_at);

  auto missing = store_->FindGroup("nobody@example.org");
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());

  auto all = store_->ListGroups();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "a@example.org");
  EXPECT_EQ((*all)[1].name, "b@example.org");
}

TEST_P(StoreTest, RefusesADuplicateGroup) {
  ASSERT_OK(store_->CreateGroup("list@example.org"));
  EXPECT_ERROR(store_->CreateGroup("list@example.org"), "exists");
  EXPECT_ERROR(store_->CreateGroup(""), "invalid-argument");
  auto all = store_->ListGroups();
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 1u);
}

// A group's name is its list's address: one differing only in the case of its letters is the
// same group, refused on every creation path with the stored spelling named. Lookups stay exact.
TEST_P(StoreTest, RefusesAGroupNameDifferingOnlyInCase) {
  ASSERT_OK(store_->CreateGroup("List@Example.org"));
  auto again = store_->CreateGroup("list@example.org");
  EXPECT_ERROR(again, "exists");
  if (!again.ok()) {
    EXPECT_NE(again.error().message.find("List@Example.org"), std::string::npos)
        << again.error().message;
  }
  const GroupKey key{.key_type = "p256", .certificate_der = Blob(5), .sealed_private_key = Blob(6)};
  const GroupSecretVersion secret{.key_id = Blob(7, 16), .sealed_secret = Blob(8)};
  auto with_keys = store_->CreateGroupWithKeys("LIST@EXAMPLE.ORG", key, secret);
  EXPECT_ERROR(with_keys, "exists");
  if (!with_keys.ok()) {
    EXPECT_NE(with_keys.error().message.find("List@Example.org"), std::string::npos)
        << with_keys.error().message;
  }
  auto exact = store_->FindGroup("list@example.org");
  ASSERT_OK(exact);
  EXPECT_FALSE(exact->has_value());
  auto all = store_->ListGroups();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "List@Example.org");
  // Names differing in more than case are other groups.
  ASSERT_OK(store_->CreateGroup("List2@Example.org"));
}

// Creations racing with names differing only in case: one wins, whatever the interleaving, on
// SQLite's single writer as on PostgreSQL's concurrent transactions.
TEST_P(StoreTest, OneOfConcurrentCreationsDifferingInCaseWins) {
  for (int round = 0; round < 5; ++round) {
    const std::string name = "race" + std::to_string(round) + "@example.org";
    std::vector<std::string> spellings = {name, "RACE" + std::to_string(round) + "@example.org",
                                          "Race" + std::to_string(round) + "@Example.org",
                                          "race" + std::to_string(round) + "@EXAMPLE.ORG"};
    std::atomic<int> created{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> threads;
    for (const std::string& spelling : spellings) {
      threads.emplace_back([&, spelling] {
        auto g = store_->CreateGroup(spelling);
        if (g.ok()) ++created;
        if (!g.ok() && g.error().code == "exists") ++refused;
        if (!g.ok() && g.error().code != "exists") ADD_FAILURE() << g.error().message;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(created.load(), 1) << name;
    EXPECT_EQ(refused.load(), 3) << name;
  }
  auto all = store_->ListGroups();
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 5u);
}

// A store that already holds two names differing only in case (made before the index): the
// upgrade refuses it with one line naming both, applies nothing, and keeps both groups; once one
// is gone, the upgrade goes through.
TEST_P(StoreTest, UpgradeRefusesAStoreHoldingNamesDifferingOnlyInCase) {
  const migrations::Schema current{
      .steps = migrations::All(), .version_table = "schema_migrations", .lock_key = 0x626c6e64};
  auto old = ScratchDatabase::Create(GetParam());
  ASSERT_OK(old);
  const std::string url = (*old)->url();
  auto before = testkit::ApplyFirstSteps(url, current, current.steps.size() - 1);
  ASSERT_OK(before);
  const int old_version = *before;
  {
    auto pool = sql::OpenPool(url);
    ASSERT_OK(pool);
    auto lease = (*pool)->Acquire();
    ASSERT_OK(lease);
    ASSERT_OK(
        (*lease)->Exec("INSERT INTO groups (name, created_at) VALUES ($1, 1), ($2, 2), "
                       "($3, 3)",
                       {std::string("List@Example.org"), std::string("other@example.org"),
                        std::string("list@example.org")}));
  }
  auto refused = Store::Open(url);
  ASSERT_FALSE(refused.ok());
  const std::string& line = refused.error().message;
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_NE(line.find("List@Example.org and list@example.org"), std::string::npos) << line;
  EXPECT_NE(line.find("differ only in case"), std::string::npos) << line;
  {
    auto pool = sql::OpenPool(url);
    ASSERT_OK(pool);
    auto lease = (*pool)->Acquire();
    ASSERT_OK(lease);
    auto rows = (*lease)->Query("SELECT MAX(version) FROM schema_migrations", {});
    ASSERT_OK(rows);
    EXPECT_EQ(sql::AsInt((*rows)[0][0]), old_version);
    rows = (*lease)->Query("SELECT name FROM groups ORDER BY created_at", {});
    ASSERT_OK(rows);
    ASSERT_EQ(rows->size(), 3u);
    EXPECT_EQ(sql::AsText((*rows)[2][0]), "list@example.org");
    ASSERT_OK(
        (*lease)->Exec("DELETE FROM groups WHERE name = $1", {std::string("list@example.org")}));
  }
  auto upgraded = Store::Open(url);
  ASSERT_OK(upgraded);
  auto version = (*upgraded)->SchemaVersion();
  ASSERT_OK(version);
  EXPECT_EQ(*version, migrations::LatestVersion());
  EXPECT_ERROR((*upgraded)->CreateGroup("LIST@example.org"), "exists");
}

TEST_P(StoreTest, RefusesTextThatIsNotUtf8TheSameOnBothBackends) {
  EXPECT_ERROR(store_->CreateGroup("bad\xff@example.org"), "invalid-argument");
  EXPECT_ERROR(store_->CreateGroup(std::string("nul\0@example.org", 16)), "invalid-argument");
  ASSERT_OK(store_->CreateGroup("liste-\xc3\xa9t\xc3\xa9@example.org"));  // é is fine
  auto found = store_->FindGroup("liste-\xc3\xa9t\xc3\xa9@example.org");
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());
}

TEST_P(StoreTest, DeleteGroupCascades) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  GroupKey key{.group_id = g, .key_type = "p256", .sealed_private_key = Blob(1)};
  ASSERT_OK(store_->AddGroupKey(key));
  ASSERT_OK(store_->AddGroupSecret({.group_id = g, .key_id = Blob(2), .sealed_secret = Blob(3)}));
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@example.org", 4)));
  ASSERT_OK(store_->AddMember(MakeMember(other, "alice@example.org", 4)));
  ASSERT_OK(
      store_->SetExploder({.group_id = g, .certificate_der = Blob(5), .cert_fingerprint = "ff"}));
  ASSERT_OK(store_->RecordIssuedCertificate({.serial_hex = "01",
                                             .group_id = g,
                                             .member_address = "alice@example.org",
                                             .not_after = Now() + 3600}));

  ASSERT_OK(store_->DeleteGroup(g));

  auto found = store_->FindGroup("list@example.org");
  ASSERT_OK(found);
  EXPECT_FALSE(found->has_value());
  auto keys = store_->ListGroupKeys(g);
  ASSERT_OK(keys);
  EXPECT_TRUE(keys->empty());
  auto secrets = store_->ListGroupSecrets(g);
  ASSERT_OK(secrets);
  EXPECT_TRUE(secrets->empty());
  auto members = store_->ListMembers(g);
  ASSERT_OK(members);
  EXPECT_TRUE(members->empty());
  auto exploder = store_->FindExploder(g);
  ASSERT_OK(exploder);
  EXPECT_FALSE(exploder->has_value());
  // The deleted group's membership certificates stay known, as revoked.
  EXPECT_EQ(Revoked("01"), std::optional<bool>(true));
  // Other groups are untouched.
  auto alice = store_->FindMember(other, "alice@example.org");
  ASSERT_OK(alice);
  EXPECT_TRUE(alice->has_value());

  EXPECT_ERROR(store_->DeleteGroup(g), "not-found");
  // The name is free again, under a new id.
  auto again = store_->CreateGroup("list@example.org");
  ASSERT_OK(again);
  EXPECT_NE(again->id, g);
}

// ---- keys and secrets ----

TEST_P(StoreTest, AssignsKeyVersionsAndTracksTheirState) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  for (int expected = 1; expected <= 3; ++expected) {
    GroupKey key{.group_id = g,
                 .version = 99,  // ignored
                 .key_type = expected == 2 ? "rsa3072" : "p256",
                 .certificate_der = expected == 3 ? Bytes{} : Blob(10),
                 .csr_der = expected == 3 ? Blob(11) : Bytes{},
                 .sealed_private_key = Blob(static_cast<std::uint8_t>(20 + expected)),
                 .created_at = 1700000000 + expected};
    auto version = store_->AddGroupKey(key);
    ASSERT_OK(version);
    EXPECT_EQ(*version, expected);
  }
  auto first_other = store_->AddGroupKey({.group_id = other, .key_type = "p256"});
  ASSERT_OK(first_other);
  EXPECT_EQ(*first_other, 1);  // versions count per group
  EXPECT_ERROR(store_->AddGroupKey({.group_id = 9999, .key_type = "p256"}), "not-found");

  auto keys = store_->ListGroupKeys(g);
  ASSERT_OK(keys);
  ASSERT_EQ(keys->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const GroupKey& k = (*keys)[i];
    EXPECT_EQ(k.group_id, g);
    EXPECT_EQ(k.version, i + 1);
    EXPECT_EQ(k.state, KeyState::kActive);
    EXPECT_EQ(k.sealed_private_key, Blob(static_cast<std::uint8_t>(21 + i)));
    EXPECT_EQ(k.created_at, 1700000001 + i);
  }
  EXPECT_EQ((*keys)[1].key_type, "rsa3072");
  EXPECT_EQ((*keys)[0].certificate_der, Blob(10));
  EXPECT_TRUE((*keys)[0].csr_der.empty());
  EXPECT_TRUE((*keys)[2].certificate_der.empty());
  EXPECT_EQ((*keys)[2].csr_der, Blob(11));

  // The outside CA's certificate arrives for the CSR.
  ASSERT_OK(store_->SetGroupKeyCertificate(g, 3, Blob(12)));
  ASSERT_OK(store_->SetGroupKeyState(g, 1, KeyState::kRetired));
  EXPECT_ERROR(store_->SetGroupKeyState(g, 7, KeyState::kRetired), "not-found");
  EXPECT_ERROR(store_->SetGroupKeyCertificate(g, 7, Blob(12)), "not-found");

  ASSERT_OK(store_->DestroyGroupKey(g, 2));
  EXPECT_ERROR(store_->DestroyGroupKey(g, 7), "not-found");
  // Destroyed is final.
  EXPECT_ERROR(store_->SetGroupKeyState(g, 2, KeyState::kActive), "key-destroyed");

  keys = store_->ListGroupKeys(g);
  ASSERT_OK(keys);
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].state, KeyState::kRetired);
  EXPECT_EQ((*keys)[0].sealed_private_key, Blob(21));
  EXPECT_EQ((*keys)[1].state, KeyState::kDestroyed);
  EXPECT_TRUE((*keys)[1].sealed_private_key.empty());
  EXPECT_EQ((*keys)[1].certificate_der, Blob(10));  // the public part stays
  EXPECT_EQ((*keys)[2].state, KeyState::kActive);
  EXPECT_EQ((*keys)[2].certificate_der, Blob(12));

  // Setting the destroyed state through SetGroupKeyState erases the key too.
  ASSERT_OK(store_->SetGroupKeyState(g, 3, KeyState::kDestroyed));
  keys = store_->ListGroupKeys(g);
  ASSERT_OK(keys);
  EXPECT_EQ((*keys)[2].state, KeyState::kDestroyed);
  EXPECT_TRUE((*keys)[2].sealed_private_key.empty());

  // A new version after destruction still counts up.
  auto next = store_->AddGroupKey({.group_id = g, .key_type = "p256"});
  ASSERT_OK(next);
  EXPECT_EQ(*next, 4);
}

// A threshold share refresh replaces the sealed share only if no other refresh got there first.
TEST_P(StoreTest, ReplacesASealedKeyOnlyFromWhatItWas) {
  const std::int64_t g = MakeGroup("threshold@example.org");
  auto v = store_->AddGroupKey({.group_id = g,
                                .key_type = "p256-threshold",
                                .certificate_der = Blob(10),
                                .sealed_private_key = Blob(30)});
  ASSERT_OK(v);
  ASSERT_OK(store_->ReplaceSealedKey(g, *v, Blob(30), Blob(31)));
  EXPECT_ERROR(store_->ReplaceSealedKey(g, *v, Blob(30), Blob(32)), "conflict");  // stale
  EXPECT_ERROR(store_->ReplaceSealedKey(g, 7, Blob(31), Blob(32)), "conflict");   // no such row
  auto keys = store_->ListGroupKeys(g);
  ASSERT_OK(keys);
  EXPECT_EQ((*keys)[0].sealed_private_key, Blob(31));
  EXPECT_EQ((*keys)[0].certificate_der, Blob(10));
  ASSERT_OK(store_->DestroyGroupKey(g, *v));
  EXPECT_ERROR(store_->ReplaceSealedKey(g, *v, Bytes{}, Blob(33)), "conflict");  // destroyed
}

TEST_P(StoreTest, RotatesAKeyInOneTransaction) {
  const std::int64_t g = MakeGroup("list@example.org");
  ASSERT_OK(
      store_->AddGroupKey({.group_id = g, .key_type = "p256", .sealed_private_key = Blob(1)}));
  ASSERT_OK(
      store_->AddGroupKey({.group_id = g, .key_type = "p256", .sealed_private_key = Blob(2)}));
  ASSERT_OK(store_->SetGroupKeyState(g, 1, KeyState::kRetired));
  ASSERT_OK(store_->DestroyGroupKey(g, 1));
  // Version 3, and the older active one (2) retired with it; destroyed stays destroyed.
  auto v3 =
      store_->RotateGroupKey({.group_id = g, .key_type = "p256", .sealed_private_key = Blob(3)}, 3);
  ASSERT_OK(v3);
  EXPECT_EQ(*v3, 3);
  auto keys = store_->ListGroupKeys(g);
  ASSERT_OK(keys);
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].state, KeyState::kDestroyed);
  EXPECT_EQ((*keys)[1].state, KeyState::kRetired);
  EXPECT_EQ((*keys)[2].state, KeyState::kActive);
  EXPECT_EQ((*keys)[2].sealed_private_key, Blob(3));
  // A rotation sealed for a version another one took writes nothing: no row, no retirement,
  // and the next version is still 4.
  EXPECT_ERROR(
      store_->RotateGroupKey({.group_id = g, .key_type = "p256", .sealed_private_key = Blob(4)}, 3),
      "conflict");
  keys = store_->ListGroupKeys(g);
  ASSERT_OK(keys);
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[2].state, KeyState::kActive);
  EXPECT_ERROR(store_->RotateGroupKey({.group_id = 9999, .key_type = "p256"}, 1), "not-found");
  auto v4 =
      store_->RotateGroupKey({.group_id = g, .key_type = "p256", .sealed_private_key = Blob(4)}, 4);
  ASSERT_OK(v4);
  EXPECT_EQ(*v4, 4);
}

TEST_P(StoreTest, CreatesAGroupWithItsFirstKeysOrNothing) {
  const GroupKey key{.key_type = "p256", .certificate_der = Blob(5), .sealed_private_key = Blob(6)};
  const GroupSecretVersion secret{.key_id = Blob(7, 16), .sealed_secret = Blob(8)};
  auto g = store_->CreateGroupWithKeys("list@example.org", key, secret);
  ASSERT_OK(g);
  auto keys = store_->ListGroupKeys(g->id);
  ASSERT_OK(keys);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].version, 1);
  EXPECT_EQ((*keys)[0].group_id, g->id);
  EXPECT_EQ((*keys)[0].sealed_private_key, Blob(6));
  auto secrets = store_->ListGroupSecrets(g->id);
  ASSERT_OK(secrets);
  ASSERT_EQ(secrets->size(), 1u);
  EXPECT_EQ((*secrets)[0].version, 1);
  EXPECT_EQ((*secrets)[0].key_id, Blob(7, 16));
  EXPECT_ERROR(store_->CreateGroupWithKeys("list@example.org", key, secret), "exists");
  // A failure after the group's row (text a backend refuses, in the key) leaves no group behind.
  GroupKey bad = key;
  bad.key_type = "bad\xff";
  EXPECT_ERROR(store_->CreateGroupWithKeys("other@example.org", bad, secret), "invalid-argument");
  auto other = store_->FindGroup("other@example.org");
  ASSERT_OK(other);
  EXPECT_FALSE(other->has_value()) << "a failed creation left a group without keys";
}

TEST_P(StoreTest, AssignsGroupSecretVersions) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  for (int expected = 1; expected <= 3; ++expected) {
    auto version =
        store_->AddGroupSecret({.group_id = g,
                                .version = 42,  // ignored
                                .key_id = B({0, expected}),
                                .sealed_secret = Blob(static_cast<std::uint8_t>(expected)),
                                .created_at = 1700000000 + expected});
    ASSERT_OK(version);
    EXPECT_EQ(*version, expected);
  }
  auto first_other = store_->AddGroupSecret({.group_id = other, .key_id = B({9})});
  ASSERT_OK(first_other);
  EXPECT_EQ(*first_other, 1);
  EXPECT_ERROR(store_->AddGroupSecret({.group_id = 9999}), "not-found");

  auto secrets = store_->ListGroupSecrets(g);
  ASSERT_OK(secrets);
  ASSERT_EQ(secrets->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const GroupSecretVersion& s = (*secrets)[i];
    EXPECT_EQ(s.group_id, g);
    EXPECT_EQ(s.version, i + 1);
    EXPECT_EQ(s.key_id, B({0, i + 1}));
    EXPECT_EQ(s.sealed_secret, Blob(static_cast<std::uint8_t>(i + 1)));
    EXPECT_EQ(s.created_at, 1700000001 + i);
  }
}

// ---- roster ----

TEST_P(StoreTest, AddsFindsListsAndRemovesMembers) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  const Member alice = MakeMember(g, "alice@example.org", 1);
  const Member bob = MakeMember(g, "bob@example.org", 2);
  Member carol = MakeMember(g, "carol@example.org", 3);  // no certificate, no token
  carol.certificate_der.clear();
  carol.cert_fingerprint.clear();
  carol.token_hash.clear();
  ASSERT_OK(store_->AddMember(bob));
  ASSERT_OK(store_->AddMember(alice));
  ASSERT_OK(store_->AddMember(carol));
  EXPECT_ERROR(store_->AddMember(alice), "exists");
  EXPECT_ERROR(store_->AddMember(MakeMember(9999, "x@example.org", 4)), "not-found");
  EXPECT_ERROR(store_->AddMember(MakeMember(g, "", 4)), "invalid-argument");

  auto found = store_->FindMember(g, "alice@example.org");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->group_id, g);
  EXPECT_EQ((*found)->address, "alice@example.org");
  EXPECT_EQ((*found)->certificate_der, alice.certificate_der);
  EXPECT_EQ((*found)->cert_fingerprint, alice.cert_fingerprint);
  EXPECT_EQ((*found)->token_hash, alice.token_hash);
  EXPECT_GT((*found)->created_at, 0);

  auto by_fingerprint = store_->FindMemberByCertFingerprint(g, bob.cert_fingerprint);
  ASSERT_OK(by_fingerprint);
  ASSERT_TRUE(by_fingerprint->has_value());
  EXPECT_EQ((*by_fingerprint)->address, "bob@example.org");
  auto upper = store_->FindMemberByCertFingerprint(g, "AB2CD");
  ASSERT_OK(upper);
  EXPECT_TRUE(upper->has_value());

  auto by_token = store_->FindMemberByTokenHash(g, alice.token_hash);
  ASSERT_OK(by_token);
  ASSERT_TRUE(by_token->has_value());
  EXPECT_EQ((*by_token)->address, "alice@example.org");

  // Lookups are per group, and an empty credential never matches a member without one.
  auto elsewhere = store_->FindMemberByTokenHash(other, alice.token_hash);
  ASSERT_OK(elsewhere);
  EXPECT_FALSE(elsewhere->has_value());
  auto empty_fingerprint = store_->FindMemberByCertFingerprint(g, "");
  ASSERT_OK(empty_fingerprint);
  EXPECT_FALSE(empty_fingerprint->has_value());
  auto empty_token = store_->FindMemberByTokenHash(g, {});
  ASSERT_OK(empty_token);
  EXPECT_FALSE(empty_token->has_value());
  auto wrong_token = store_->FindMemberByTokenHash(g, Blob(77, 32));
  ASSERT_OK(wrong_token);
  EXPECT_FALSE(wrong_token->has_value());

  auto members = store_->ListMembers(g);
  ASSERT_OK(members);
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ((*members)[0].address, "alice@example.org");
  EXPECT_EQ((*members)[1].address, "bob@example.org");
  EXPECT_EQ((*members)[2].address, "carol@example.org");
  EXPECT_TRUE((*members)[2].certificate_der.empty());

  ASSERT_OK(store_->RemoveMember(g, "alice@example.org"));
  EXPECT_ERROR(store_->RemoveMember(g, "alice@example.org"), "not-found");
  found = store_->FindMember(g, "alice@example.org");
  ASSERT_OK(found);
  EXPECT_FALSE(found->has_value());
  by_token = store_->FindMemberByTokenHash(g, alice.token_hash);
  ASSERT_OK(by_token);
  EXPECT_FALSE(by_token->has_value());
  by_fingerprint = store_->FindMemberByCertFingerprint(g, alice.cert_fingerprint);
  ASSERT_OK(by_fingerprint);
  EXPECT_FALSE(by_fingerprint->has_value());
  members = store_->ListMembers(g);
  ASSERT_OK(members);
  EXPECT_EQ(members->size(), 2u);
}

// FindMembers reads only the named addresses, in one query per chunk: the domain's case does
// not matter, the local part's does, other groups' members and non-members are absent.
TEST_P(StoreTest, FindMembersLooksUpOnlyTheNamedAddresses) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@Example.ORG", 1)));
  ASSERT_OK(store_->AddMember(MakeMember(g, "bob@example.org", 2)));
  ASSERT_OK(store_->AddMember(MakeMember(g, "carol@example.org", 3)));
  ASSERT_OK(store_->AddMember(MakeMember(g, "\xc3\x89lan@example.org", 4)));  // É
  ASSERT_OK(store_->AddMember(MakeMember(other, "dave@example.org", 5)));

  auto found = store_->FindMembers(
      g, {"alice@example.org", "Bob@example.org", "dave@example.org", "nobody@example.org",
          "carol@EXAMPLE.org", "carol@example.org", "\xc3\x89lan@example.org"});
  ASSERT_OK(found);
  std::vector<std::string> addresses;
  for (const auto& m : *found) addresses.push_back(m.address);
  std::sort(addresses.begin(), addresses.end());
  EXPECT_EQ(addresses, (std::vector<std::string>{"alice@Example.ORG", "carol@example.org",
                                                 "\xc3\x89lan@example.org"}));
  for (const auto& m : *found) {
    if (m.address == "alice@Example.ORG") {
      EXPECT_EQ(m.certificate_der, Blob(1));
      EXPECT_EQ(m.cert_fingerprint, "ab1cd");
    }
  }
  // A lower-case local part never matches an upper-case one ("Élan" is not "élan").
  auto folded = store_->FindMembers(g, {"\xc3\xa9lan@example.org"});
  ASSERT_OK(folded);
  EXPECT_TRUE(folded->empty());
  // An address with a letter outside ASCII and a capital inside it, asked as it was added,
  // its domain in capitals: the member (SQLite's lower() folds the capital on both sides).
  // So is an ASCII one with a capital in its local part.
  ASSERT_OK(store_->AddMember(MakeMember(g, "\xc3\x89Mile@example.org", 6)));  // ÉMile
  ASSERT_OK(store_->AddMember(MakeMember(g, "Zoe@example.org", 7)));
  auto capitals = store_->FindMembers(g, {"\xc3\x89Mile@EXAMPLE.org", "Zoe@EXAMPLE.org"});
  ASSERT_OK(capitals);
  std::vector<std::string> with_capitals;
  for (const auto& m : *capitals) with_capitals.push_back(m.address);
  std::sort(with_capitals.begin(), with_capitals.end());
  EXPECT_EQ(with_capitals,
            (std::vector<std::string>{"Zoe@example.org", "\xc3\x89Mile@example.org"}));
  ASSERT_OK(store_->RemoveMember(g, "\xc3\x89Mile@example.org"));
  ASSERT_OK(store_->RemoveMember(g, "Zoe@example.org"));
  auto none = store_->FindMembers(g, {});
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());

  // More addresses than one query takes: every member is found once.
  std::vector<std::string> many;
  for (int i = 0; i < 1100; ++i) many.push_back("m" + std::to_string(i) + "@example.org");
  for (int i = 0; i < 1100; i += 100) {
    Member m =
        MakeMember(g, many[static_cast<std::size_t>(i)], static_cast<std::uint8_t>(10 + i / 100));
    m.cert_fingerprint = "f" + std::to_string(i);
    ASSERT_OK(store_->AddMember(m));
  }
  many.push_back("alice@example.org");
  auto bulk = store_->FindMembers(g, many);
  ASSERT_OK(bulk);
  EXPECT_EQ(bulk->size(), 12u);
  ASSERT_OK(store_->RemoveMember(g, "alice@Example.ORG"));
  bulk = store_->FindMembers(g, many);
  ASSERT_OK(bulk);
  EXPECT_EQ(bulk->size(), 11u);
}

// FindMemberFingerprints finds the members FindMembers finds, with their fingerprints only,
// and sees a removal and a replaced certificate at once.
TEST_P(StoreTest, FindMemberFingerprintsGivesTheCurrentFingerprintOfEachNamedMember) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@Example.ORG", 1)));
  Member bob = MakeMember(g, "bob@example.org", 2);
  bob.certificate_der.clear();
  bob.cert_fingerprint.clear();
  ASSERT_OK(store_->AddMember(bob));
  ASSERT_OK(store_->AddMember(MakeMember(other, "dave@example.org", 5)));
  const auto fingerprints = [&](const std::vector<std::string>& asked) {
    std::map<std::string, std::string> out;
    auto found = store_->FindMemberFingerprints(g, asked);
    EXPECT_TRUE(found.ok()) << found.error().message;
    if (found.ok()) {
      for (const auto& m : *found) out.emplace(m.address, m.cert_fingerprint);
    }
    return out;
  };
  const std::vector<std::string> asked = {"alice@example.org", "bob@EXAMPLE.org",
                                          "dave@example.org", "Alice@example.org"};
  EXPECT_EQ(fingerprints(asked), (std::map<std::string, std::string>{{"alice@Example.ORG", "ab1cd"},
                                                                     {"bob@example.org", ""}}));
  ASSERT_OK(store_->SetMemberCertificate(g, "alice@Example.ORG", Blob(7), "EF07"));
  EXPECT_EQ(fingerprints(asked), (std::map<std::string, std::string>{{"alice@Example.ORG", "ef07"},
                                                                     {"bob@example.org", ""}}));
  ASSERT_OK(store_->RemoveMember(g, "bob@example.org"));
  EXPECT_EQ(fingerprints(asked),
            (std::map<std::string, std::string>{{"alice@Example.ORG", "ef07"}}));
  auto none = store_->FindMemberFingerprints(g, {});
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreTest, RemovingAMemberRevokesItsUnexpiredCertificates) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@example.org", 1)));
  ASSERT_OK(store_->AddMember(MakeMember(g, "bob@example.org", 2)));
  ASSERT_OK(store_->AddMember(MakeMember(other, "alice@example.org", 3)));
  const UnixTime now = Now();
  const auto issue = [&](const std::string& serial, std::int64_t group, const std::string& who,
                         UnixTime not_after) {
    return store_->RecordIssuedCertificate(
        {.serial_hex = serial, .group_id = group, .member_address = who, .not_after = not_after});
  };
  ASSERT_OK(issue("0a01", g, "alice@example.org", now + 3600));      // current
  ASSERT_OK(issue("0a02", g, "alice@example.org", now + 86400));     // current
  ASSERT_OK(issue("0a03", g, "alice@example.org", now - 3600));      // expired
  ASSERT_OK(issue("0b01", g, "bob@example.org", now + 3600));        // someone else
  ASSERT_OK(issue("0c01", other, "alice@example.org", now + 3600));  // another group
  EXPECT_ERROR(issue("0a01", g, "alice@example.org", now + 3600), "exists");
  EXPECT_ERROR(issue("0d01", 9999, "alice@example.org", now + 3600), "not-found");

  EXPECT_EQ(Revoked("0a01"), std::optional<bool>(false));

  ASSERT_OK(store_->RemoveMember(g, "alice@example.org"));

  for (const char* serial : {"0a01", "0A02"}) {  // any case
    EXPECT_EQ(Revoked(serial), std::optional<bool>(true)) << serial;
  }
  for (const char* serial : {"0a03", "0b01", "0c01"}) {
    EXPECT_EQ(Revoked(serial), std::optional<bool>(false)) << serial;
  }
  EXPECT_EQ(Revoked("ffff"), std::nullopt);  // never recorded: unknown, not "not revoked"

  auto list = store_->ListRevokedCertificates();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].serial_hex, "0a01");
  EXPECT_EQ((*list)[1].serial_hex, "0a02");
  for (const IssuedCertificate& c : *list) {
    EXPECT_TRUE(c.revoked);
    EXPECT_EQ(c.group_id, g);
    EXPECT_EQ(c.member_address, "alice@example.org");
    EXPECT_GE(c.revoked_at, now);
    EXPECT_LE(c.revoked_at, Now());
  }
}

TEST_P(StoreTest, ReplacesOneCredentialKeepingTheMemberAndItsCertificates) {
  const std::int64_t g = MakeGroup("list@example.org");
  const Member alice = MakeMember(g, "alice@example.org", 1);
  const Member renewed = MakeMember(g, "alice@example.org", 7);  // another certificate and token
  ASSERT_OK(store_->AddMember(alice));
  ASSERT_OK(store_->RecordIssuedCertificate({.serial_hex = "0a01",
                                             .group_id = g,
                                             .member_address = "alice@example.org",
                                             .not_after = Now() + 3600}));
  ASSERT_OK(store_->SetMemberCertificate(g, "alice@example.org", renewed.certificate_der,
                                         renewed.cert_fingerprint));
  auto by_new = store_->FindMemberByCertFingerprint(g, renewed.cert_fingerprint);
  ASSERT_OK(by_new);
  ASSERT_TRUE(by_new->has_value());
  EXPECT_EQ((*by_new)->token_hash, alice.token_hash);  // the token is untouched
  auto by_old = store_->FindMemberByCertFingerprint(g, alice.cert_fingerprint);
  ASSERT_OK(by_old);
  EXPECT_FALSE(by_old->has_value());

  ASSERT_OK(store_->SetMemberTokenHash(g, "alice@example.org", renewed.token_hash));
  auto by_token = store_->FindMemberByTokenHash(g, renewed.token_hash);
  ASSERT_OK(by_token);
  ASSERT_TRUE(by_token->has_value());
  EXPECT_EQ((*by_token)->cert_fingerprint, renewed.cert_fingerprint);
  auto old_token = store_->FindMemberByTokenHash(g, alice.token_hash);
  ASSERT_OK(old_token);
  EXPECT_FALSE(old_token->has_value());

  // Path G certificates stay valid: the member never left the roster.
  auto issued = store_->FindIssuedCertificate("0a01");
  ASSERT_OK(issued);
  ASSERT_TRUE(issued->has_value());
  EXPECT_FALSE((*issued)->record.revoked);
  EXPECT_TRUE((*issued)->member_current);

  EXPECT_ERROR(store_->SetMemberCertificate(g, "nobody@example.org", renewed.certificate_der,
                                            renewed.cert_fingerprint),
               "not-found");
  EXPECT_ERROR(store_->SetMemberTokenHash(g, "nobody@example.org", renewed.token_hash),
               "not-found");
}

TEST_P(StoreTest, RevokesMemberCertificatesOnRequest) {
  const std::int64_t g = MakeGroup("list@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "a@x", 1)));
  ASSERT_OK(store_->AddMember(MakeMember(g, "b@x", 2)));
  const UnixTime now = 1800000000;
  ASSERT_OK(store_->RecordIssuedCertificate(
      {.serial_hex = "01", .group_id = g, .member_address = "a@x", .not_after = now + 10}));
  ASSERT_OK(store_->RecordIssuedCertificate(
      {.serial_hex = "02", .group_id = g, .member_address = "a@x", .not_after = now}));
  ASSERT_OK(store_->RecordIssuedCertificate(
      {.serial_hex = "03", .group_id = g, .member_address = "a@x", .not_after = now - 1}));
  ASSERT_OK(store_->RecordIssuedCertificate({.serial_hex = "04",
                                             .group_id = g,
                                             .member_address = "b@x",
                                             .not_after = now + 10,
                                             .revoked = true,
                                             .revoked_at = now - 5}));
  auto n = store_->RevokeMemberCertificates(g, "a@x", now);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 2);  // 01 and 02 (valid through not_after); 03 had expired
  n = store_->RevokeMemberCertificates(g, "a@x", now);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0);

  auto list = store_->ListRevokedCertificates();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].serial_hex, "04");  // oldest revocation first
  EXPECT_EQ((*list)[0].revoked_at, now - 5);
  EXPECT_EQ((*list)[1].serial_hex, "01");
  EXPECT_EQ((*list)[1].revoked_at, now);
  EXPECT_EQ((*list)[1].not_after, now + 10);
  EXPECT_EQ((*list)[2].serial_hex, "02");
}

TEST_P(StoreTest, RecordsACertificateOnlyForACurrentMember) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@example.org", 1)));
  ASSERT_OK(store_->AddMember(MakeMember(other, "bob@example.org", 2)));
  const auto issue = [&](const std::string& serial, std::int64_t group, const std::string& who) {
    return store_->RecordIssuedCertificate(
        {.serial_hex = serial, .group_id = group, .member_address = who, .not_after = Now() + 60});
  };
  EXPECT_ERROR(issue("01", g, "mallory@example.org"), "not-a-member");
  EXPECT_ERROR(issue("02", g, "bob@example.org"), "not-a-member");  // a member elsewhere
  EXPECT_ERROR(issue("03", 9999, "alice@example.org"), "not-found");
  ASSERT_OK(issue("04", g, "alice@example.org"));
  for (const char* serial : {"01", "02", "03"}) EXPECT_EQ(Revoked(serial), std::nullopt) << serial;

  auto found = store_->FindIssuedCertificate("04");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->record.group_id, g);
  EXPECT_EQ((*found)->record.member_address, "alice@example.org");
  EXPECT_FALSE((*found)->record.revoked);
  EXPECT_TRUE((*found)->member_current);

  // The removal race, sequentially: a member removed after certd checked the roster but before
  // the certificate was recorded gets nothing recorded, so certd never hands it out.
  ASSERT_OK(store_->RemoveMember(g, "alice@example.org"));
  EXPECT_ERROR(issue("05", g, "alice@example.org"), "not-a-member");
  EXPECT_EQ(Revoked("05"), std::nullopt);
  found = store_->FindIssuedCertificate("04");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_TRUE((*found)->record.revoked);
  EXPECT_FALSE((*found)->member_current);

  // Re-added, the member has a current record again for new certificates, not for old ones.
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@example.org", 1)));
  found = store_->FindIssuedCertificate("04");
  ASSERT_OK(found);
  EXPECT_TRUE((*found)->record.revoked);
  EXPECT_TRUE((*found)->member_current);
}

TEST_P(StoreTest, IssuingRacingRemovalNeverLeavesAnUnrevokedCertificate) {
  auto second = Store::Open(db_->url());
  ASSERT_OK(second);
  Store& remover = **second;
  const std::int64_t g = MakeGroup("list@example.org");
  constexpr int kRounds = 30;
  for (int i = 0; i < kRounds; ++i) {
    const std::string who = "m" + std::to_string(i) + "@example.org";
    const std::string serial = "0f" + std::to_string(1000 + i);
    ASSERT_OK(store_->AddMember(MakeMember(g, who, 1)));
    Status issued = Status::Ok();
    std::thread issue([&] {
      issued = store_->RecordIssuedCertificate(
          {.serial_hex = serial, .group_id = g, .member_address = who, .not_after = Now() + 60});
    });
    ASSERT_OK(remover.RemoveMember(g, who));
    issue.join();
    // Either the issuance lost (nothing recorded, nothing handed out) or the removal revoked it.
    if (issued.ok()) {
      EXPECT_EQ(Revoked(serial), std::optional<bool>(true)) << serial;
    } else {
      EXPECT_EQ(issued.error().code, "not-a-member");
      EXPECT_EQ(Revoked(serial), std::nullopt) << serial;
    }
  }
}

TEST_P(StoreTest, SetsAndReplacesTheExploder) {
  const std::int64_t g = MakeGroup("list@example.org");
  auto none = store_->FindExploder(g);
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());

  ASSERT_OK(
      store_->SetExploder({.group_id = g, .certificate_der = Blob(1), .cert_fingerprint = "aa"}));
  auto found = store_->FindExploder(g);
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->group_id, g);
  EXPECT_EQ((*found)->certificate_der, Blob(1));
  EXPECT_EQ((*found)->cert_fingerprint, "aa");

  ASSERT_OK(
      store_->SetExploder({.group_id = g, .certificate_der = Blob(2), .cert_fingerprint = "bb"}));
  found = store_->FindExploder(g);
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->certificate_der, Blob(2));
  EXPECT_EQ((*found)->cert_fingerprint, "bb");

  EXPECT_ERROR(store_->SetExploder({.group_id = 9999, .certificate_der = Blob(3)}), "not-found");
}

// ---- administrators ----

TEST_P(StoreTest, StoresAdminTokens) {
  const Bytes hash = Blob(1, 32);
  ASSERT_OK(store_->AddAdminToken({.name = "root", .token_hash = hash, .created_at = 1700000000}));
  EXPECT_ERROR(store_->AddAdminToken({.name = "root", .token_hash = Blob(2, 32)}), "exists");
  EXPECT_ERROR(store_->AddAdminToken({.name = "other", .token_hash = hash}), "exists");
  EXPECT_ERROR(store_->AddAdminToken({.name = "empty", .token_hash = {}}), "invalid-argument");
  ASSERT_OK(store_->AddAdminToken({.name = "second", .token_hash = Blob(3, 32)}));

  auto found = store_->FindAdminToken(hash);
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->name, "root");
  EXPECT_EQ((*found)->token_hash, hash);
  EXPECT_EQ((*found)->created_at, 1700000000);

  auto unknown = store_->FindAdminToken(Blob(4, 32));
  ASSERT_OK(unknown);
  EXPECT_FALSE(unknown->has_value());
  auto empty = store_->FindAdminToken({});
  ASSERT_OK(empty);
  EXPECT_FALSE(empty->has_value());
}

// ---- audit ----

// A batch of audit records (many rows per INSERT, the rest one each) keeps every record,
// every field and their order; text that is not UTF-8 is made storable, as one at a time.
TEST_P(StoreTest, AuditBatchKeepsEveryRecordInOrder) {
  std::vector<AuditRecord> batch;
  for (int i = 0; i < 75; ++i) {
    batch.push_back(
        {.time = 1700000000 + i,
         .daemon = "groupd",
         .caller = "exploder",
         .group = "list@example.org",
         .key_version = i % 3,
         .operation = "rewrap-member",
         .result = i % 2 == 0 ? "ok" : "not-member",
         .reason = "member:m" + std::to_string(i) + (i == 40 ? "\xff" : "") + "@example.org",
         .members = i % 5 == 0 ? R"({"ok":["m)" + std::to_string(i) + R"(@example.org"]})" : ""});
  }
  ASSERT_OK(store_->AppendAuditBatch(batch));
  auto all = store_->ListAudit("list@example.org", 100);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 75u);
  for (std::size_t i = 0; i < 75; ++i) {
    const AuditRecord& r = (*all)[74 - i];  // newest first
    EXPECT_EQ(r.time, 1700000000 + static_cast<std::int64_t>(i));
    EXPECT_EQ(r.key_version, static_cast<int>(i % 3));
    EXPECT_EQ(r.result, i % 2 == 0 ? "ok" : "not-member");
    if (i != 40) {
      EXPECT_EQ(r.reason, "member:m" + std::to_string(i) + "@example.org");
    }
    EXPECT_EQ(r.members,
              i % 5 == 0 ? R"({"ok":["m)" + std::to_string(i) + R"(@example.org"]})" : "");
  }
  EXPECT_EQ((*all)[74 - 40].reason, "member:m40\xef\xbf\xbd@example.org");
}

// One record of a per-member re-wrap names up to 1000 addresses: kept whole, not cut like a
// reason.
TEST_P(StoreTest, AuditKeepsEveryMemberOfARecord) {
  std::string members = R"({"ok":[)";
  for (int i = 0; i < 1000; ++i) {
    if (i != 0) members += ',';
    members += '"' + std::string(240, 'a') + std::to_string(i) + "@example.org\"";
  }
  members += "]}";
  ASSERT_OK(store_->AppendAudit({.time = 1700000000,
                                 .daemon = "groupd",
                                 .caller = "exploder",
                                 .group = "list@example.org",
                                 .key_version = 1,
                                 .operation = "rewrap-members",
                                 .result = "ok",
                                 .reason = "members:1000 wrapped:1000",
                                 .members = members}));
  auto all = store_->ListAudit("list@example.org", 10);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_GT(members.size(), 250000u);
  EXPECT_EQ((*all)[0].members, members);
  EXPECT_EQ((*all)[0].reason, "members:1000 wrapped:1000");
}

TEST_P(StoreTest, ListsAuditNewestFirstPerGroupAndWithinTheLimit) {
  const auto record = [](const std::string& group, const std::string& operation) {
    return AuditRecord{.time = 1700000000,
                       .daemon = "groupd",
                       .caller = "alice@example.org",
                       .group = group,
                       .key_version = 2,
                       .operation = operation,
                       .result = "ok",
                       .reason = "reading the list"};
  };
  ASSERT_OK(store_->AppendAudit(record("a@example.org", "op1")));
  ASSERT_OK(store_->AppendAudit(record("b@example.org", "op2")));
  ASSERT_OK(store_->AppendAudit(record("a@example.org", "op3")));
  ASSERT_OK(store_->AppendAudit(record("", "op4")));
  ASSERT_OK(store_->AppendAudit(record("a@example.org", "op5")));

  auto all = store_->ListAudit("", 100);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 5u);
  const char* expected[] = {"op5", "op4", "op3", "op2", "op1"};
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ((*all)[i].operation, expected[i]);
  for (std::size_t i = 1; i < 5; ++i) EXPECT_GT((*all)[i - 1].id, (*all)[i].id);
  const AuditRecord& r = (*all)[0];
  EXPECT_EQ(r.time, 1700000000);
  EXPECT_EQ(r.daemon, "groupd");
  EXPECT_EQ(r.caller, "alice@example.org");
  EXPECT_EQ(r.group, "a@example.org");
  EXPECT_EQ(r.key_version, 2);
  EXPECT_EQ(r.result, "ok");
  EXPECT_EQ(r.reason, "reading the list");

  auto a = store_->ListAudit("a@example.org", 100);
  ASSERT_OK(a);
  ASSERT_EQ(a->size(), 3u);
  EXPECT_EQ((*a)[0].operation, "op5");
  EXPECT_EQ((*a)[2].operation, "op1");

  auto limited = store_->ListAudit("", 2);
  ASSERT_OK(limited);
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[0].operation, "op5");
  EXPECT_EQ((*limited)[1].operation, "op4");
  limited = store_->ListAudit("a@example.org", 1);
  ASSERT_OK(limited);
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ((*limited)[0].operation, "op5");
  auto none = store_->ListAudit("", 0);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
  auto unknown = store_->ListAudit("nobody@example.org", 10);
  ASSERT_OK(unknown);
  EXPECT_TRUE(unknown->empty());
}

TEST_P(StoreTest, PagesTheAuditBackwardsAndByTimeSoOldRecordsStayInView) {
  // 30 records of one group, one a minute, interleaved with another group's.
  constexpr int kRecords = 30;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_OK(store_->AppendAudit({.time = 1700000000 + 60 * i,
                                   .daemon = "groupd",
                                   .caller = "ip:192.0.2.1",
                                   .group = "a@example.org",
                                   .operation = "op" + std::to_string(i),
                                   .result = "ok"}));
    ASSERT_OK(store_->AppendAudit({.time = 1700000000 + 60 * i,
                                   .daemon = "groupd",
                                   .caller = "ip:192.0.2.1",
                                   .group = "b@example.org",
                                   .operation = "other",
                                   .result = "ok"}));
  }
  // Page through with before_id: every record once, newest first, the oldest included.
  std::vector<std::string> seen;
  AuditQuery q{.group = "a@example.org", .limit = 7};
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store_->ListAudit(q);
    ASSERT_OK(page);
    if (page->empty()) break;
    EXPECT_LE(page->size(), 7u);
    for (const auto& r : *page) {
      EXPECT_EQ(r.group, "a@example.org");
      if (q.before_id > 0) {
        EXPECT_LT(r.id, q.before_id);
      }
      seen.push_back(r.operation);
    }
    q.before_id = page->back().id;
  }
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(seen[i], "op" + std::to_string(kRecords - 1 - i));

  // A time window: [since, until), newest first.
  auto window = store_->ListAudit(AuditQuery{.group = "a@example.org",
                                             .limit = 100,
                                             .since = 1700000000 + 60 * 3,
                                             .until = 1700000000 + 60 * 6});
  ASSERT_OK(window);
  ASSERT_EQ(window->size(), 3u);
  EXPECT_EQ((*window)[0].operation, "op5");
  EXPECT_EQ((*window)[2].operation, "op3");
  // The oldest record is reachable however many newer ones there are.
  auto oldest =
      store_->ListAudit(AuditQuery{.group = "a@example.org", .limit = 1, .until = 1700000000 + 1});
  ASSERT_OK(oldest);
  ASSERT_EQ(oldest->size(), 1u);
  EXPECT_EQ((*oldest)[0].operation, "op0");
  // All groups, paged and windowed together.
  auto both = store_->ListAudit(AuditQuery{.limit = 100, .since = 1700000000 + 60 * 29});
  ASSERT_OK(both);
  EXPECT_EQ(both->size(), 2u);
  auto before_all = store_->ListAudit(AuditQuery{.limit = 100, .before_id = 1});
  ASSERT_OK(before_all);
  EXPECT_TRUE(before_all->empty());
}

TEST_P(StoreTest, PrunesAuditRecordsOlderThanATime) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(store_->AppendAudit({.time = 1700000000 + 60 * i,
                                   .daemon = "groupd",
                                   .caller = "admin:x",
                                   .group = i % 2 == 0 ? "a@example.org" : "b@example.org",
                                   .operation = "op" + std::to_string(i),
                                   .result = "ok"}));
  }
  auto pruned = store_->PruneAudit(1700000000 + 60 * 4);  // op0..op3
  ASSERT_OK(pruned);
  EXPECT_EQ(*pruned, 4);
  auto left = store_->ListAudit("", 100);
  ASSERT_OK(left);
  ASSERT_EQ(left->size(), 6U);
  EXPECT_EQ(left->back().operation, "op4");
  pruned = store_->PruneAudit(1700000000 + 60 * 4);
  ASSERT_OK(pruned);
  EXPECT_EQ(*pruned, 0);
}

TEST_P(StoreTest, TruncatesTheAuditReasonAndKeepsOddText) {
  AuditRecord r{.daemon = "certd", .caller = "anonymous", .operation = "issue", .result = "ok"};
  r.reason = std::string(300, 'x');
  ASSERT_OK(store_->AppendAudit(r));
  // 300 two-byte characters: cut after 200 characters, never inside one.
  r.reason.clear();
  for (int i = 0; i < 300; ++i) r.reason += "\xc3\xa9";
  ASSERT_OK(store_->AppendAudit(r));
  // Bytes that are not UTF-8 are recorded as U+FFFD, not refused.
  static constexpr char kOdd[] = "bad \xff byte and a \0 NUL";
  r.reason = std::string(kOdd, sizeof kOdd - 1);
  r.caller = "caller\xfe";
  ASSERT_OK(store_->AppendAudit(r));

  auto list = store_->ListAudit("", 10);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[2].reason, std::string(200, 'x'));
  EXPECT_GT((*list)[2].time, 0);  // the store filled in the time
  EXPECT_EQ((*list)[1].reason.size(), 400u);
  EXPECT_EQ((*list)[0].reason, "bad \xef\xbf\xbd byte and a \xef\xbf\xbd NUL");
  EXPECT_EQ((*list)[0].caller, "caller\xef\xbf\xbd");
}

TEST_P(StoreTest, OneCertificateAuthenticatesOneMemberOfAGroup) {
  const std::int64_t g = MakeGroup("list@example.org");
  const std::int64_t other = MakeGroup("other@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@example.org", 7)));
  ASSERT_OK(store_->AddMember(MakeMember(other, "alice2@example.org", 7)));  // another group
  EXPECT_ERROR(store_->AddMember(MakeMember(g, "bob@example.org", 7)), "certificate-in-use");
  ASSERT_OK(store_->AddMember(MakeMember(g, "bob@example.org", 8)));
  const Member alice = MakeMember(g, "alice@example.org", 7);
  EXPECT_ERROR(store_->SetMemberCertificate(g, "bob@example.org", alice.certificate_der,
                                            alice.cert_fingerprint),
               "certificate-in-use");
  auto bob = store_->FindMember(g, "bob@example.org");
  ASSERT_TRUE(bob.ok() && bob->has_value());
  EXPECT_EQ((*bob)->cert_fingerprint, MakeMember(g, "bob@example.org", 8).cert_fingerprint);
  // Setting a member's own certificate again is no conflict.
  ASSERT_OK(store_->SetMemberCertificate(g, "alice@example.org", alice.certificate_der,
                                         alice.cert_fingerprint));
}

// ---- concurrency ----

TEST_P(StoreTest, ManyThreadsWriteAtOnce) {
  const std::int64_t g = MakeGroup("list@example.org");
  constexpr int kThreads = 4;
  constexpr int kEach = 15;
  std::vector<std::thread> threads;
  std::vector<std::vector<int>> versions(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string address = "m" + std::to_string(t) + "-" + std::to_string(i) + "@x";
        Status added =
            store_->AddMember(MakeMember(g, address, static_cast<std::uint8_t>(t * kEach + i)));
        EXPECT_TRUE(added.ok()) << added.error().message;
        Status audited = store_->AppendAudit({.daemon = "groupd",
                                              .caller = address,
                                              .group = "list@example.org",
                                              .operation = "add-member",
                                              .result = "ok"});
        EXPECT_TRUE(audited.ok()) << audited.error().message;
        auto found = store_->FindMember(g, address);
        EXPECT_TRUE(found.ok() && found->has_value());
        if (i % 5 == 0) {
          auto v = store_->AddGroupKey({.group_id = g, .key_type = "p256"});
          EXPECT_TRUE(v.ok());
          if (v.ok()) versions[t].push_back(*v);
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  auto members = store_->ListMembers(g);
  ASSERT_OK(members);
  EXPECT_EQ(members->size(), static_cast<std::size_t>(kThreads * kEach));
  auto audit = store_->ListAudit("list@example.org", 1000);
  ASSERT_OK(audit);
  EXPECT_EQ(audit->size(), static_cast<std::size_t>(kThreads * kEach));
  std::set<int> distinct;
  for (const auto& vs : versions) distinct.insert(vs.begin(), vs.end());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kThreads * 3));
  EXPECT_EQ(*distinct.begin(), 1);
  EXPECT_EQ(*distinct.rbegin(), kThreads * 3);
}

// Two Stores on one database stand for two processes (two groupd replicas).
TEST_P(StoreTest, TwoStoresOnOneDatabaseSeeEachOthersWritesAtOnce) {
  auto second = Store::Open(db_->url());
  ASSERT_OK(second);
  Store& other = **second;
  const std::int64_t g = MakeGroup("list@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@example.org", 1)));

  auto seen = other.FindMember(g, "alice@example.org");
  ASSERT_OK(seen);
  EXPECT_TRUE(seen->has_value());
  ASSERT_OK(store_->RemoveMember(g, "alice@example.org"));
  // The very next call through the other Store no longer finds the member.
  seen = other.FindMember(g, "alice@example.org");
  ASSERT_OK(seen);
  EXPECT_FALSE(seen->has_value());

  // Both add key versions at once: every version is handed out exactly once.
  constexpr int kEach = 10;
  std::vector<int> from_first;
  std::vector<int> from_second;
  const auto add_keys = [g](Store* s, std::vector<int>* out) {
    for (int i = 0; i < kEach; ++i) {
      auto v = s->AddGroupKey({.group_id = g, .key_type = "p256", .sealed_private_key = Blob(1)});
      EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
      if (v.ok()) out->push_back(*v);
    }
  };
  std::thread a(add_keys, store_.get(), &from_first);
  std::thread b(add_keys, &other, &from_second);
  a.join();
  b.join();
  std::vector<int> all = from_first;
  all.insert(all.end(), from_second.begin(), from_second.end());
  std::sort(all.begin(), all.end());
  std::vector<int> expected(2 * kEach);
  for (int i = 0; i < 2 * kEach; ++i) expected[i] = i + 1;
  EXPECT_EQ(all, expected);
  auto keys = other.ListGroupKeys(g);
  ASSERT_OK(keys);
  EXPECT_EQ(keys->size(), static_cast<std::size_t>(2 * kEach));
}

// ---- PostgreSQL only ----

class PostgresStoreTest : public StoreTest {};

std::vector<Backend> PostgresOnly() {
  std::vector<Backend> out;
  for (Backend b : testkit::BackendsFromEnvironment()) {
    if (b == Backend::kPostgres) out.push_back(b);
  }
  return out;
}

// Empty in the SQLite-only run.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PostgresStoreTest);
INSTANTIATE_TEST_SUITE_P(Backends, PostgresStoreTest, ::testing::ValuesIn(PostgresOnly()),
                         testkit::BackendParamName);

TEST_P(PostgresStoreTest, ReconnectsWhenTheServerDropsItsConnections) {
  const std::string app = "blindlist-reconnect-test-" + std::to_string(getpid());
  auto opened = Store::Open(testkit::WithUrlParameter(db_->url(), "application_name", app));
  ASSERT_OK(opened);
  Store& s = **opened;
  ASSERT_OK(s.CreateGroup("list@example.org"));

  auto server = testkit::PostgresTestUrl();
  ASSERT_OK(server);
  const std::string terminate =
      "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = '" +
      app + "'";
  ASSERT_OK(testkit::PostgresExec(*server, terminate));
  auto found = s.FindGroup("list@example.org");  // a read
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());

  ASSERT_OK(testkit::PostgresExec(*server, terminate));
  ASSERT_OK(s.CreateGroup("second@example.org"));  // a write, in a transaction
  auto all = s.ListGroups();
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 2u);
}

// Another session's transaction on the same database, held open while the store works, so the
// interleavings of an issuance and a removal (or a group deletion) are forced, not hoped for.
class HeldTransaction {
 public:
  static std::unique_ptr<HeldTransaction> Begin(const std::string& url) {
    auto pool = sql::OpenPool(url);
    if (!pool.ok()) return nullptr;
    auto held = std::unique_ptr<HeldTransaction>(new HeldTransaction(std::move(*pool)));
    auto lease = held->pool_->Acquire();
    if (!lease.ok()) return nullptr;
    held->lease_.emplace(std::move(*lease));
    if (!(*held->lease_)->Begin().ok()) return nullptr;
    return held;
  }
  sql::Connection& operator*() { return **lease_; }
  sql::Connection* operator->() { return &**lease_; }

 private:
  explicit HeldTransaction(std::unique_ptr<sql::ConnectionPool> pool) : pool_(std::move(pool)) {}
  std::unique_ptr<sql::ConnectionPool> pool_;
  std::optional<sql::Lease> lease_;
};

constexpr auto kLongEnoughToRace = std::chrono::milliseconds(400);

TEST_P(PostgresStoreTest, AnIssuanceWaitsForAnUncommittedRemovalAndThenFails) {
  const std::int64_t g = MakeGroup("list@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@example.org", 1)));
  // RemoveMember's own statements, in another session, not yet committed.
  auto removal = HeldTransaction::Begin(db_->url());
  ASSERT_NE(removal, nullptr);
  ASSERT_OK((*removal)->Exec("DELETE FROM members WHERE group_id = $1 AND address = $2",
                             {g, std::string("alice@example.org")}));
  ASSERT_OK(
      (*removal)->Exec("UPDATE issued_certificates SET revoked = 1, revoked_at = $1 "
                       "WHERE revoked = 0 AND group_id = $2 AND member_address = $3",
                       {Now(), g, std::string("alice@example.org")}));
  Status issued = Status::Ok();
  std::thread issue([&] {
    issued = store_->RecordIssuedCertificate({.serial_hex = "0e01",
                                              .group_id = g,
                                              .member_address = "alice@example.org",
                                              .not_after = Now() + 60});
  });
  // An issuance that read the roster without holding the row would record now, unrevoked.
  std::this_thread::sleep_for(kLongEnoughToRace);
  ASSERT_OK((*removal)->Commit());
  issue.join();
  EXPECT_FALSE(issued.ok());
  if (!issued.ok()) {
    EXPECT_EQ(issued.error().code, "not-a-member");
  }
  EXPECT_EQ(Revoked("0e01"), std::nullopt);
}

TEST_P(PostgresStoreTest, ARemovalOrDeletionWaitingForAnIssuanceRevokesItsCertificate) {
  const std::int64_t g = MakeGroup("list@example.org");
  ASSERT_OK(store_->AddMember(MakeMember(g, "alice@example.org", 1)));
  ASSERT_OK(store_->AddMember(MakeMember(g, "bob@example.org", 2)));
  // RecordIssuedCertificate's statements for each member in another session, not yet committed,
  // while RemoveMember (alice) and then DeleteGroup (bob) run.
  const auto hold_issuance = [&](const std::string& who, const std::string& serial) {
    auto held = HeldTransaction::Begin(db_->url());
    EXPECT_NE(held, nullptr);
    if (held == nullptr) return held;
    EXPECT_TRUE((*held)
                    ->Query("SELECT 1 FROM members WHERE group_id = $1 AND address = $2 FOR SHARE",
                            {g, who})
                    .ok());
    EXPECT_TRUE((*held)
                    ->Exec("INSERT INTO issued_certificates (serial_hex, group_id, member_address, "
                           "not_after, revoked, revoked_at) VALUES ($1, $2, $3, $4, 0, 0)",
                           {serial, g, who, Now() + 60})
                    .ok());
    return held;
  };
  const auto race = [&](std::unique_ptr<HeldTransaction> held, const auto& write) {
    Status written = Status::Ok();
    std::thread t([&] { written = write(); });
    std::this_thread::sleep_for(kLongEnoughToRace);
    EXPECT_TRUE((*held)->Commit().ok());
    t.join();
    EXPECT_TRUE(written.ok()) << written.error().message;
  };
  race(hold_issuance("alice@example.org", "0e02"),
       [&] { return store_->RemoveMember(g, "alice@example.org"); });
  EXPECT_EQ(Revoked("0e02"), std::optional<bool>(true));
  race(hold_issuance("bob@example.org", "0e03"), [&] { return store_->DeleteGroup(g); });
  EXPECT_EQ(Revoked("0e03"), std::optional<bool>(true));
}

TEST_P(PostgresStoreTest, ReportsAnUnreachableServerWithoutThePassword) {
  auto s = Store::Open("postgresql://blindlist:hunter2secret@127.0.0.1:1/blindlist");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "store-unavailable");
  EXPECT_EQ(s.error().message.find("hunter2secret"), std::string::npos) << s.error().message;
}

// ---- URLs and the SQLite file (no server needed) ----

TEST(StoreOpenTest, RefusesUnknownUrls) {
  for (const char* url : {"", "mysql://localhost/db", "sqlite:", "file:/tmp/x.db", "SQLITE:/x"}) {
    auto s = Store::Open(url);
    ASSERT_FALSE(s.ok()) << url;
    EXPECT_EQ(s.error().code, "bad-url") << url;
  }
}

TEST(StoreOpenTest, ReportsAnUnusableSqlitePath) {
  auto s = Store::Open("sqlite:/nonexistent-directory/store.db");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "store-unavailable");
}

TEST(StoreOpenTest, CreatesTheSqliteFileReadableByItsOwnerOnly) {
  auto db = ScratchDatabase::Create(Backend::kSqlite);
  ASSERT_OK(db);
  auto s = Store::Open((*db)->url());
  ASSERT_OK(s);
  const std::string path = (*db)->url().substr(std::string("sqlite:").size());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ((*s)->BackendName(), "sqlite");
}

}  // namespace
}  // namespace blindlist::store
