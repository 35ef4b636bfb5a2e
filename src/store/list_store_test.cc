// listd's list database, one suite run against both backends like store_test:
// ctest runs it with BLINDLIST_STORE_BACKEND=sqlite and =postgresql (fixture
// "postgres"); the PostgreSQL run fails, never skips, without a server.
#include "store/list_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/migrations/list_migrations.h"
#include "store/migrations/migrations.h"
#include "store/scratch_database.h"
#include "store/sql.h"
#include "store/store.h"
#include "store/store_test_support.h"

namespace blindlist::store {

namespace {

using testkit::Backend;
using testkit::ScratchDatabase;

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// Stand-ins for DER certificates, with NUL and high bytes so no backend gets away with text.
Bytes Cert(std::uint8_t seed) {
  Bytes out(64);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(seed + i * 37);
  out[0] = 0x30;
  out[1] = 0;
  return out;
}

MailingList MakeList(const std::string& address) {
  MailingList l;
  l.address = address;
  l.group = address;
  l.description = "a list";
  l.certificates = {Cert(1)};
  return l;
}

class ListStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto db = ScratchDatabase::Create(GetParam());
    ASSERT_TRUE(db.ok()) << "no " << testkit::BackendName(GetParam())
                         << " database for the test: " << db.error().message;
    db_ = std::move(db).value();
    auto store = OpenListStore(db_->url());
    ASSERT_TRUE(store.ok()) << store.error().code << ": " << store.error().message;
    store_ = std::move(store).value();
  }

  void TearDown() override {
    store_.reset();
    db_.reset();
  }

  // A list that must exist for the test to go on.
  MailingList Make(const std::string& address) {
    auto l = store_->CreateList(MakeList(address));
    EXPECT_TRUE(l.ok()) << l.error().code << ": " << l.error().message;
    return l.ok() ? *l : MailingList{};
  }

  std::vector<std::string> Addresses(std::int64_t list_id, bool enabled_only) {
    std::vector<std::string> out;
    auto members = store_->ListMembers(list_id, enabled_only);
    EXPECT_TRUE(members.ok()) << members.error().message;
    if (members.ok()) {
      for (const ListMember& m : *members) out.push_back(m.address);
    }
    return out;
  }

  std::unique_ptr<ScratchDatabase> db_;
  std::unique_ptr<ListStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, ListStoreTest,
                         ::testing::ValuesIn(testkit::BackendsFromEnvironment()),
                         testkit::BackendParamName);

// ---- addresses ----

TEST(MailboxTest, AcceptsOrdinaryAddressesAndRefusesHeaderBreakers) {
  EXPECT_TRUE(IsValidMailbox("list@example.org"));
  EXPECT_TRUE(IsValidMailbox("first.last+tag@Sub.Example.ORG"));
  EXPECT_TRUE(IsValidMailbox("o'brien@example.org"));
  EXPECT_TRUE(
      IsValidMailbox("j\xc3\xb6rg@b\xc3\xbc"
                     "cher.example"));  // UTF-8 (SMTPUTF8)
  EXPECT_FALSE(IsValidMailbox(""));
  EXPECT_FALSE(IsValidMailbox("list"));
  EXPECT_FALSE(IsValidMailbox("@example.org"));
  EXPECT_FALSE(IsValidMailbox("list@"));
  EXPECT_FALSE(IsValidMailbox("a@b@example.org"));
  EXPECT_FALSE(IsValidMailbox("a b@example.org"));
  EXPECT_FALSE(IsValidMailbox("ab@exa mple.org"));
  EXPECT_FALSE(IsValidMailbox("ab@example.org\r\nBcc: x@evil.example"));
  EXPECT_FALSE(IsValidMailbox("ab\n@example.org"));
  EXPECT_FALSE(IsValidMailbox(std::string("ab\0c@example.org", 16)));
  EXPECT_FALSE(IsValidMailbox("<ab@example.org>"));
  EXPECT_FALSE(IsValidMailbox("ab,cd@example.org"));
  EXPECT_FALSE(IsValidMailbox("\"quoted\"@example.org"));
  EXPECT_FALSE(IsValidMailbox("ab@example..org"));
  EXPECT_FALSE(IsValidMailbox("ab@.example.org"));
  EXPECT_FALSE(IsValidMailbox(".ab@example.org"));
  EXPECT_FALSE(IsValidMailbox("a..b@example.org"));
  EXPECT_FALSE(IsValidMailbox("ab@exa_mple.org"));
  EXPECT_FALSE(IsValidMailbox("bad\xff@example.org"));
  EXPECT_FALSE(IsValidMailbox(std::string(65, 'a') + "@example.org"));
  EXPECT_TRUE(IsValidMailbox(std::string(64, 'a') + "@example.org"));
  EXPECT_FALSE(IsValidMailbox("a@" + std::string(64, 'b') + ".org"));
  // A domain of 259 bytes, every label within 63.
  const std::string label(63, 'b');
  EXPECT_FALSE(IsValidMailbox("a@" + label + "." + label + "." + label + "." + label + ".org"));
}

TEST(MailboxTest, CanonicalFormLowersOnlyTheDomain) {
  EXPECT_EQ(CanonicalMailbox("Alice.Smith@Example.ORG"), "Alice.Smith@example.org");
  EXPECT_EQ(DefaultBounceAddress("Team@Example.org"), "Team-bounces@example.org");
}

// ---- opening and migrations ----

TEST_P(ListStoreTest, OpensTwiceAndKeepsItsSchemaApartFromGroupds) {
  EXPECT_EQ(store_->BackendName(), testkit::BackendName(GetParam()));
  auto version = store_->SchemaVersion();
  ASSERT_OK(version);
  EXPECT_EQ(*version, migrations::ListLatestVersion());
  Make("list@example.org");

  // groupd's store on the same database migrates its own schema, and neither
  // sees the other's rows: the delivery list is not the roster.
  auto groupd = Store::Open(db_->url());
  ASSERT_OK(groupd);
  auto group_version = (*groupd)->SchemaVersion();
  ASSERT_OK(group_version);
  EXPECT_GE(*group_version, 1);
  auto groups = (*groupd)->ListGroups();
  ASSERT_OK(groups);
  EXPECT_TRUE(groups->empty());

  store_.reset();
  auto again = OpenListStore(db_->url());
  ASSERT_OK(again);
  store_ = std::move(again).value();
  version = store_->SchemaVersion();
  ASSERT_OK(version);
  EXPECT_EQ(*version, migrations::ListLatestVersion());
  auto found = store_->FindList("list@example.org");
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());
}

TEST_P(ListStoreTest, UpgradesASchemaOneDatabaseWithAeadOff) {
  // A database made by a build that knew only step 1, with a list in it.
  auto old = ScratchDatabase::Create(GetParam());
  ASSERT_OK(old);
  {
    auto version = testkit::ApplyFirstSteps((*old)->url(), migrations::ListSchema(), 1);
    ASSERT_OK(version);
    ASSERT_EQ(*version, 1);
    auto pool = sql::OpenPool((*old)->url());
    ASSERT_OK(pool);
    auto insert = [](sql::Connection& c) {
      return c.Exec(
          "INSERT INTO lists (address, group_name, description, reading, posting, "
          "encrypted_only, bounce_address, bounce_threshold, created_at) VALUES "
          "('old@example.org', 'g', '', 'direct', 'members', 1, 'old-bounces@example.org', 5, 1)",
          {});
    };
    auto inserted = sql::RunOnPool(**pool, true, insert);
    ASSERT_OK(inserted);
  }
  auto upgraded = OpenListStore((*old)->url());
  ASSERT_OK(upgraded);
  auto version = (*upgraded)->SchemaVersion();
  ASSERT_OK(version);
  EXPECT_EQ(*version, migrations::ListLatestVersion());
  auto found = (*upgraded)->FindList("old@example.org");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_FALSE((*found)->require_aead);
}

TEST_P(ListStoreTest, OpensConcurrentlyOnAFreshDatabase) {
  auto fresh = ScratchDatabase::Create(GetParam());
  ASSERT_OK(fresh);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto s = OpenListStore((*fresh)->url());
      if (s.ok() && (*s)->SchemaVersion().ok()) ++opened;
      if (!s.ok()) ADD_FAILURE() << s.error().code << ": " << s.error().message;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
}

// Every released schema of listd's database is upgraded by this build; a build that knows
// fewer steps than the database has (a rollback) refuses it and changes nothing.
TEST_P(ListStoreTest, UpgradesEveryOlderSchemaAndRefusesARollback) {
  const migrations::Schema current = migrations::ListSchema();
  testkit::ForEachOlderSchema(GetParam(), current, [](const std::string& url) {
    auto upgraded = OpenListStore(url);
    ASSERT_OK(upgraded);
    auto version = (*upgraded)->SchemaVersion();
    ASSERT_OK(version);
    EXPECT_EQ(*version, migrations::ListLatestVersion());
  });
  Make("kept@example.org");
  auto refused = testkit::ApplyFirstSteps(db_->url(), current, current.steps.size() - 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("newer than this build knows (" +
                                         std::to_string(migrations::ListLatestVersion() - 1) + ")"),
            std::string::npos)
      << refused.error().message;
  auto found = store_->FindList("kept@example.org");
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());
}

TEST(OpenListStoreTest, RefusesAnUnknownUrl) {
  EXPECT_ERROR(OpenListStore("mysql://localhost/lists"), "bad-url");
  EXPECT_ERROR(OpenListStore("sqlite:"), "bad-url");
  EXPECT_ERROR(OpenListStore("sqlite:/nonexistent-dir/x/lists.db"), "store-unavailable");
}

// ---- lists ----

TEST_P(ListStoreTest, CreatesAListWithDefaultsAndFindsItWithAnyDomainCase) {
  const std::int64_t before = Now();
  MailingList in = MakeList("Team@Example.ORG");
  in.certificates = {Cert(1), Cert(2)};
  auto created = store_->CreateList(in);
  ASSERT_OK(created);
  EXPECT_GT(created->id, 0);
  EXPECT_EQ(created->address, "Team@example.org");
  EXPECT_EQ(created->bounce_address, "Team-bounces@example.org");
  EXPECT_GE(created->created_at, before);

  for (const char* spelling : {"Team@example.org", "Team@EXAMPLE.org", "Team@Example.ORG"}) {
    auto found = store_->FindList(spelling);
    ASSERT_OK(found);
    ASSERT_TRUE(found->has_value()) << spelling;
    const MailingList& l = **found;
    EXPECT_EQ(l.id, created->id);
    EXPECT_EQ(l.address, "Team@example.org");
    EXPECT_EQ(l.group, "Team@Example.ORG");
    EXPECT_EQ(l.description, "a list");
    EXPECT_EQ(l.reading, "direct");
    EXPECT_EQ(l.posting, "members");
    EXPECT_TRUE(l.encrypted_only);
    EXPECT_FALSE(l.require_aead);  // Thunderbird sends AES-CBC
    EXPECT_EQ(l.bounce_threshold, 5);
    EXPECT_EQ(l.created_at, created->created_at);
    ASSERT_EQ(l.certificates.size(), 2u);
    EXPECT_EQ(l.certificates[0], Cert(1));
    EXPECT_EQ(l.certificates[1], Cert(2));
  }
  // The local part is as given: another case is another mailbox.
  auto other = store_->FindList("team@example.org");
  ASSERT_OK(other);
  EXPECT_FALSE(other->has_value());

  auto by_bounce = store_->FindListByBounceAddress("Team-bounces@EXAMPLE.ORG");
  ASSERT_OK(by_bounce);
  ASSERT_TRUE(by_bounce->has_value());
  EXPECT_EQ((*by_bounce)->id, created->id);
  auto not_bounce = store_->FindListByBounceAddress("Team@example.org");
  ASSERT_OK(not_bounce);
  EXPECT_FALSE(not_bounce->has_value());
}

TEST_P(ListStoreTest, StoresEveryField) {
  MailingList in = MakeList("l@example.org");
  in.group = "the-group";
  in.description = "Caf\xc3\xa9 talk";
  in.reading = "path-b";
  in.posting = "open";
  in.encrypted_only = false;
  in.require_aead = true;
  in.bounce_address = "returns@Bounces.Example.org";
  in.bounce_threshold = 2;
  ASSERT_OK(store_->CreateList(in));
  auto found = store_->FindList("l@example.org");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->group, "the-group");
  EXPECT_EQ((*found)->description, "Caf\xc3\xa9 talk");
  EXPECT_EQ((*found)->reading, "path-b");
  EXPECT_EQ((*found)->posting, "open");
  EXPECT_FALSE((*found)->encrypted_only);
  EXPECT_TRUE((*found)->require_aead);
  EXPECT_EQ((*found)->bounce_address, "returns@bounces.example.org");
  EXPECT_EQ((*found)->bounce_threshold, 2);
}

TEST_P(ListStoreTest, StoresPerMemberReading) {
  MailingList in = MakeList("pm@example.org");
  in.reading = "per-member";
  in.per_member_fallback = "skip";
  in.member_clients = "nss";
  ASSERT_OK(store_->CreateList(in));
  auto found = store_->FindList("pm@example.org");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->reading, "per-member");
  EXPECT_EQ((*found)->per_member_fallback, "skip");
  EXPECT_EQ((*found)->member_clients, "nss");
  MailingList back = **found;
  back.reading = "path-b";
  back.per_member_fallback = "group";
  ASSERT_OK(store_->UpdateList(back));
  found = store_->FindList("pm@example.org");
  ASSERT_OK(found);
  EXPECT_EQ((*found)->reading, "path-b");
  EXPECT_EQ((*found)->per_member_fallback, "group");
  EXPECT_EQ(MakeList("d@example.org").member_clients, "any");
  MailingList bad = MakeList("e@example.org");
  bad.per_member_fallback = "drop";
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
  bad = MakeList("e@example.org");
  bad.member_clients = "outlook";
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
}

// ClaimOwnerNotice: one notice of a kind per list per interval, whoever asks.
TEST_P(ListStoreTest, OwnerNoticesAreClaimedAtMostOncePerInterval) {
  auto a = store_->CreateList(MakeList("a@example.org"));
  ASSERT_OK(a);
  auto b = store_->CreateList(MakeList("b@example.org"));
  ASSERT_OK(b);
  const std::int64_t t = 1700000000;
  const std::int64_t day = 86400;
  auto claim = [&](std::int64_t list, const std::string& kind, std::int64_t now) {
    auto r = store_->ClaimOwnerNotice(list, kind, now, day);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() && *r;
  };
  EXPECT_TRUE(claim(a->id, "not-current", t));
  EXPECT_FALSE(claim(a->id, "not-current", t));
  EXPECT_FALSE(claim(a->id, "not-current", t + day - 1));
  // Another list, another kind: their own intervals.
  EXPECT_TRUE(claim(b->id, "not-current", t + 10));
  EXPECT_TRUE(claim(a->id, "other", t + 10));
  EXPECT_TRUE(claim(a->id, "not-current", t + day));
  EXPECT_FALSE(claim(a->id, "not-current", t + day + 3600));
  // A clock set back: not before the interval has passed since the recorded one.
  EXPECT_FALSE(claim(a->id, "not-current", t));
  EXPECT_ERROR(store_->ClaimOwnerNotice(a->id + b->id + 100, "not-current", t, day), "not-found");
  // Deleting the list forgets its notices.
  ASSERT_OK(store_->DeleteList("a@example.org"));
  auto again = store_->CreateList(MakeList("a@example.org"));
  ASSERT_OK(again);
  EXPECT_TRUE(claim(again->id, "not-current", t + day + 3600));
}

TEST_P(ListStoreTest, RefusesBadListsAndTakenAddresses) {
  Make("a@example.org");
  EXPECT_ERROR(store_->CreateList(MakeList("a@EXAMPLE.org")), "exists");
  // A new list may not take another's bounce address, nor use one as its own bounce address.
  EXPECT_ERROR(store_->CreateList(MakeList("a-bounces@example.org")), "exists");
  MailingList steals = MakeList("b@example.org");
  steals.bounce_address = "a@example.org";
  EXPECT_ERROR(store_->CreateList(steals), "exists");

  MailingList bad = MakeList("not an address");
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
  bad = MakeList("c@example.org");
  bad.reading = "psychic";
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
  bad = MakeList("c@example.org");
  bad.posting = "anyone";
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
  bad = MakeList("c@example.org");
  bad.bounce_threshold = 0;
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
  bad = MakeList("c@example.org");
  bad.certificates.clear();
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
  bad = MakeList("c@example.org");
  bad.group.clear();
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
  bad = MakeList("c@example.org");
  bad.description = "bad\xff";
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");
  bad = MakeList("c@example.org");
  bad.bounce_address = "c@example.org";
  EXPECT_ERROR(store_->CreateList(bad), "invalid-argument");

  auto all = store_->ListLists();
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 1u);
}

TEST_P(ListStoreTest, UpdatesSettingsAndReplacesCertificates) {
  MailingList l = Make("l@example.org");
  l.address = "ignored@example.org";  // the address cannot change
  l.group = "g2";
  l.description = "new";
  l.reading = "path-b-prime";
  l.posting = "open";
  l.encrypted_only = false;
  l.require_aead = true;
  l.bounce_address = "";  // back to the default
  l.bounce_threshold = 9;
  l.certificates = {Cert(7), Cert(1)};
  ASSERT_OK(store_->UpdateList(l));
  auto found = store_->FindList("l@example.org");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->group, "g2");
  EXPECT_EQ((*found)->description, "new");
  EXPECT_EQ((*found)->reading, "path-b-prime");
  EXPECT_EQ((*found)->posting, "open");
  EXPECT_FALSE((*found)->encrypted_only);
  EXPECT_TRUE((*found)->require_aead);
  EXPECT_EQ((*found)->bounce_address, "l-bounces@example.org");
  EXPECT_EQ((*found)->bounce_threshold, 9);
  ASSERT_EQ((*found)->certificates.size(), 2u);
  EXPECT_EQ((*found)->certificates[0], Cert(7));
  EXPECT_EQ((*found)->certificates[1], Cert(1));
  auto ignored = store_->FindList("ignored@example.org");
  ASSERT_OK(ignored);
  EXPECT_FALSE(ignored->has_value());

  MailingList other = Make("m@example.org");
  other.bounce_address = "l-bounces@example.org";
  EXPECT_ERROR(store_->UpdateList(other), "exists");
  other.bounce_address = "m-returns@example.org";
  EXPECT_OK(store_->UpdateList(other));
  other.certificates.clear();
  EXPECT_ERROR(store_->UpdateList(other), "invalid-argument");
  other.id = 999999;
  other.certificates = {Cert(3)};
  EXPECT_ERROR(store_->UpdateList(other), "not-found");
}

TEST_P(ListStoreTest, ListsInByteOrderAndDeletesWithMembers) {
  const MailingList b = Make("b@example.org");
  Make("C@example.org");
  Make("a@example.org");
  // No two lists differ only in case: they are found without case.
  EXPECT_ERROR(store_->CreateList(MakeList("B@example.org")), "exists");
  auto upper = store_->FindList("B@EXAMPLE.org");
  ASSERT_OK(upper);
  ASSERT_TRUE(upper->has_value());
  EXPECT_EQ((*upper)->address, "b@example.org");
  auto all = store_->ListLists();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].address, "C@example.org");
  EXPECT_EQ((*all)[1].address, "a@example.org");
  EXPECT_EQ((*all)[2].address, "b@example.org");
  EXPECT_EQ((*all)[2].certificates.size(), 1u);

  ASSERT_OK(store_->AddMember(b.id, "x@example.net"));
  ASSERT_OK(store_->DeleteList("b@EXAMPLE.org"));
  EXPECT_ERROR(store_->DeleteList("b@example.org"), "not-found");
  auto gone = store_->FindList("b@example.org");
  ASSERT_OK(gone);
  EXPECT_FALSE(gone->has_value());
  // The members went with it: a new list at the address starts empty.
  const MailingList again = Make("b@example.org");
  auto count = store_->CountMembers(again.id);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 0);
  EXPECT_ERROR(store_->AddMember(b.id, "y@example.net"), "not-found");
}

// ---- members ----

TEST_P(ListStoreTest, ReplacesTheDeliveryListWithARosterKeepingMemberState) {
  MailingList l = Make("l@example.org");
  EXPECT_EQ(l.roster, "manual");
  l.roster = "groupd";
  ASSERT_OK(store_->UpdateList(l));
  auto found = store_->FindList("l@example.org");
  ASSERT_OK(found);
  EXPECT_EQ((*found)->roster, "groupd");
  l.roster = "sometimes";
  EXPECT_ERROR(store_->UpdateList(l), "invalid-argument");

  ASSERT_OK(store_->AddMembers(l.id, {"alice@example.net", "bob@example.net", "old@example.net"}));
  // Bob is disabled for bounces: five days of bounces, then a bounced probe.
  constexpr std::int64_t kT0 = 1'700'000'000;
  constexpr std::int64_t kDay = 86'400;
  for (int i = 0; i < 5; ++i)
    ASSERT_OK(store_->RecordBounce(l.id, "bob@example.net", kT0 + i * kDay));
  ASSERT_OK(store_->MarkProbeSent(l.id, "bob@example.net", kT0 + 5 * kDay));
  auto confirmed =
      store_->ConfirmProbeBounce(l.id, "bob@example.net", kT0 + 5 * kDay, "5.1.1 user unknown");
  ASSERT_OK(confirmed);
  ASSERT_TRUE(confirmed->has_value());

  auto change =
      store_->ReplaceMembers(l.id, {"carol@Example.NET", "bob@example.net", "alice@example.net",
                                    "not a mailbox", "l@example.org", "carol@example.net"});
  ASSERT_OK(change);
  EXPECT_EQ(change->added, (std::vector<std::string>{"carol@example.net"}));
  EXPECT_EQ(change->removed, (std::vector<std::string>{"old@example.net"}));
  EXPECT_EQ(change->unchanged, 2);
  EXPECT_EQ(change->skipped, (std::vector<std::string>{"not a mailbox", "l@example.org"}));
  EXPECT_EQ(
      Addresses(l.id, false),
      (std::vector<std::string>{"alice@example.net", "bob@example.net", "carol@example.net"}));
  auto bob = store_->FindMember(l.id, "bob@example.net");
  ASSERT_OK(bob);
  EXPECT_FALSE((*bob)->enabled);  // a sync does not undo the bounce handling

  change = store_->ReplaceMembers(l.id, {});
  ASSERT_OK(change);
  EXPECT_EQ(change->removed.size(), 3U);
  EXPECT_TRUE(Addresses(l.id, false).empty());
  EXPECT_ERROR(store_->ReplaceMembers(999999, {"a@example.net"}), "not-found");
}

TEST_P(ListStoreTest, AddsFindsListsAndRemovesMembers) {
  const MailingList l = Make("l@example.org");
  const MailingList other = Make("other@example.org");
  const std::int64_t before = Now();
  ASSERT_OK(store_->AddMember(l.id, "carol@Example.NET"));
  ASSERT_OK(store_->AddMember(l.id, "alice@example.net"));
  ASSERT_OK(store_->AddMember(l.id, "Bob@example.net"));
  ASSERT_OK(store_->AddMember(other.id, "alice@example.net"));
  EXPECT_ERROR(store_->AddMember(l.id, "alice@EXAMPLE.net"), "exists");
  EXPECT_ERROR(store_->AddMember(l.id, "not an address"), "invalid-argument");
  // The list's own addresses would loop; most servers ignore the local part's case, so this does
  // too.
  EXPECT_ERROR(store_->AddMember(l.id, "l@EXAMPLE.org"), "invalid-argument");
  EXPECT_ERROR(store_->AddMember(l.id, "L@example.org"), "invalid-argument");
  EXPECT_ERROR(store_->AddMember(l.id, "l-bounces@example.org"), "invalid-argument");
  EXPECT_ERROR(store_->AddMember(999999, "alice@example.net"), "not-found");

  EXPECT_EQ(
      Addresses(l.id, false),
      (std::vector<std::string>{"Bob@example.net", "alice@example.net", "carol@example.net"}));
  auto m = store_->FindMember(l.id, "CAROL@example.net");
  ASSERT_OK(m);
  EXPECT_FALSE(m->has_value());  // the local part is as given
  m = store_->FindMember(l.id, "carol@EXAMPLE.NET");
  ASSERT_OK(m);
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->address, "carol@example.net");
  EXPECT_TRUE((*m)->enabled);
  EXPECT_EQ((*m)->bounce_score, 0);
  EXPECT_EQ((*m)->disabled_reason, "");
  EXPECT_GE((*m)->added_at, before);

  auto count = store_->CountMembers(l.id);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 3);
  ASSERT_OK(store_->RemoveMember(l.id, "alice@Example.net"));
  EXPECT_ERROR(store_->RemoveMember(l.id, "alice@example.net"), "not-found");
  count = store_->CountMembers(l.id);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 2);
  // Removing from one list leaves the other alone.
  EXPECT_EQ(Addresses(other.id, false), (std::vector<std::string>{"alice@example.net"}));
}

TEST_P(ListStoreTest, BouncesScoreOncePerDayProbeThenDisableAndEnableResets) {
  MailingList in = MakeList("l@example.org");
  in.bounce_threshold = 3;
  auto l = store_->CreateList(in);
  ASSERT_OK(l);
  EXPECT_EQ(l->bounce_info_stale_after, 7);
  EXPECT_EQ(store::OwnerAddress(*l), "l-owner@example.org");
  ASSERT_OK(store_->AddMember(l->id, "gone@example.net"));
  ASSERT_OK(store_->AddMember(l->id, "fine@example.net"));
  constexpr std::int64_t kDay = 86400;
  const std::int64_t t0 = 1'700'000'000 - 1'700'000'000 % kDay + 3600;  // 01:00 UTC

  for (int i = 1; i <= 2; ++i) {
    auto b = store_->RecordBounce(l->id, "gone@EXAMPLE.net", t0 + (i - 1) * kDay);
    ASSERT_OK(b);
    EXPECT_TRUE(b->counted);
    EXPECT_EQ(b->member.bounce_score, i);
    EXPECT_FALSE(b->probe_wanted);
    // A second bounce the same day counts for nothing.
    b = store_->RecordBounce(l->id, "gone@example.net", t0 + (i - 1) * kDay + 3600);
    ASSERT_OK(b);
    EXPECT_FALSE(b->counted);
    EXPECT_EQ(b->member.bounce_score, i);
  }
  // The threshold wants a probe; the member stays enabled until the probe bounces.
  auto b = store_->RecordBounce(l->id, "gone@example.net", t0 + 2 * kDay);
  ASSERT_OK(b);
  EXPECT_TRUE(b->counted);
  EXPECT_TRUE(b->probe_wanted);
  EXPECT_TRUE(b->member.enabled);
  auto probes = store_->PendingProbes(10);
  ASSERT_OK(probes);
  ASSERT_EQ(probes->size(), 1u);
  EXPECT_EQ((*probes)[0].member.address, "gone@example.net");
  EXPECT_EQ((*probes)[0].list_address, "l@example.org");
  // A probe bounce before the probe went out confirms nothing.
  auto confirmed = store_->ConfirmProbeBounce(l->id, "gone@example.net", t0 + 2 * kDay, "x");
  ASSERT_OK(confirmed);
  EXPECT_FALSE(confirmed->has_value());
  ASSERT_OK(store_->MarkProbeSent(l->id, "gone@example.net", t0 + 2 * kDay + 5));
  EXPECT_ERROR(store_->MarkProbeSent(l->id, "gone@example.net", t0 + 2 * kDay + 6), "not-found");
  probes = store_->PendingProbes(10);
  ASSERT_OK(probes);
  EXPECT_TRUE(probes->empty());
  // Another bounce while the probe is outstanding wants no second probe.
  b = store_->RecordBounce(l->id, "gone@example.net", t0 + 3 * kDay);
  ASSERT_OK(b);
  EXPECT_TRUE(b->counted);
  EXPECT_FALSE(b->probe_wanted);
  // The wrong probe time confirms nothing; the right one disables, once.
  confirmed = store_->ConfirmProbeBounce(l->id, "gone@example.net", t0 + 2 * kDay + 4, "x");
  ASSERT_OK(confirmed);
  EXPECT_FALSE(confirmed->has_value());
  confirmed = store_->ConfirmProbeBounce(l->id, "gone@example.net", t0 + 2 * kDay + 5,
                                         "5.1.1 user unknown");
  ASSERT_OK(confirmed);
  ASSERT_TRUE(confirmed->has_value());
  EXPECT_FALSE((*confirmed)->enabled);
  EXPECT_EQ((*confirmed)->disabled_reason, "bounces: 5.1.1 user unknown");
  confirmed = store_->ConfirmProbeBounce(l->id, "gone@example.net", t0 + 2 * kDay + 5, "again");
  ASSERT_OK(confirmed);
  EXPECT_FALSE(confirmed->has_value());
  auto notices = store_->PendingOwnerNotices(10);
  ASSERT_OK(notices);
  ASSERT_EQ(notices->size(), 1u);
  ASSERT_OK(store_->MarkOwnerNotified(l->id, "gone@example.net"));
  notices = store_->PendingOwnerNotices(10);
  ASSERT_OK(notices);
  EXPECT_TRUE(notices->empty());
  // A disabled member is not scored.
  b = store_->RecordBounce(l->id, "gone@example.net", t0 + 5 * kDay);
  ASSERT_OK(b);
  EXPECT_FALSE(b->counted);

  EXPECT_EQ(Addresses(l->id, true), (std::vector<std::string>{"fine@example.net"}));
  auto counts = store_->CountMembersByState(l->id);
  ASSERT_OK(counts);
  EXPECT_EQ(counts->enabled, 1);
  EXPECT_EQ(counts->disabled, 1);
  auto disabled = store_->ListDisabledMembers(l->id);
  ASSERT_OK(disabled);
  ASSERT_EQ(disabled->size(), 1u);
  EXPECT_EQ((*disabled)[0].disabled_reason, "bounces: 5.1.1 user unknown");

  ASSERT_OK(store_->EnableMember(l->id, "gone@Example.Net"));
  auto found = store_->FindMember(l->id, "gone@example.net");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_TRUE((*found)->enabled);
  EXPECT_EQ((*found)->bounce_score, 0);
  EXPECT_EQ((*found)->last_bounce_at, 0);
  EXPECT_EQ((*found)->probe, store::ProbeState::kNone);
  EXPECT_EQ((*found)->disabled_reason, "");

  EXPECT_ERROR(store_->RecordBounce(l->id, "nobody@example.net", t0), "not-found");
  EXPECT_ERROR(store_->EnableMember(l->id, "nobody@example.net"), "not-found");
}

TEST_P(ListStoreTest, BounceScoresDecayAfterTheStalePeriod) {
  MailingList in = MakeList("l@example.org");
  in.bounce_threshold = 3;
  in.bounce_info_stale_after = 2;
  in.owner = "Boss@EXAMPLE.org";
  auto l = store_->CreateList(in);
  ASSERT_OK(l);
  EXPECT_EQ(store::OwnerAddress(*l), "Boss@example.org");
  ASSERT_OK(store_->AddMember(l->id, "x@example.net"));
  constexpr std::int64_t kDay = 86400;
  const std::int64_t t0 = 1'700'000'000;
  ASSERT_OK(store_->RecordBounce(l->id, "x@example.net", t0));
  auto b = store_->RecordBounce(l->id, "x@example.net", t0 + 2 * kDay);
  ASSERT_OK(b);
  EXPECT_EQ(b->member.bounce_score, 2);
  // More than two days later: the old score is forgotten.
  b = store_->RecordBounce(l->id, "x@example.net", t0 + 5 * kDay);
  ASSERT_OK(b);
  EXPECT_TRUE(b->counted);
  EXPECT_EQ(b->member.bounce_score, 1);
  EXPECT_FALSE(b->probe_wanted);
  MailingList bad = *l;
  bad.bounce_info_stale_after = 0;
  EXPECT_ERROR(store_->UpdateList(bad), "invalid-argument");
  bad.bounce_info_stale_after = 3;
  bad.owner = "not an address";
  EXPECT_ERROR(store_->UpdateList(bad), "invalid-argument");
}

TEST_P(ListStoreTest, BounceReasonsFromRemoteServersAreStoredNotRefused) {
  MailingList in = MakeList("l@example.org");
  in.bounce_threshold = 1;
  auto l = store_->CreateList(in);
  ASSERT_OK(l);
  ASSERT_OK(store_->AddMember(l->id, "x@example.net"));
  auto b = store_->RecordBounce(l->id, "x@example.net", 1'700'000'000);
  ASSERT_OK(b);
  EXPECT_TRUE(b->probe_wanted);
  ASSERT_OK(store_->MarkProbeSent(l->id, "x@example.net", 1'700'000'001));
  auto m = store_->ConfirmProbeBounce(l->id, "x@example.net", 1'700'000'001,
                                      std::string("bad\xff\0byte", 9) + std::string(1000, 'r'));
  ASSERT_OK(m);
  ASSERT_TRUE(m->has_value());
  EXPECT_FALSE((*m)->enabled);
  EXPECT_EQ((*m)->disabled_reason.rfind("bounces: bad", 0), 0u);
  EXPECT_LT((*m)->disabled_reason.size(), 300u);
}

TEST_P(ListStoreTest, AddsMembersInBulkSkippingExistingOnes) {
  const MailingList l = Make("l@example.org");
  ASSERT_OK(store_->AddMember(l.id, "m00007@example.net"));
  std::vector<std::string> addresses;
  for (int i = 0; i < 2345; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "m%05d@Example.net", i);
    addresses.emplace_back(buf);
  }
  addresses.emplace_back("m00001@example.NET");  // a repeat in another spelling
  auto added = store_->AddMembers(l.id, addresses);
  ASSERT_OK(added);
  EXPECT_EQ(*added, 2344);
  auto count = store_->CountMembers(l.id);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 2345);
  auto members = Addresses(l.id, false);
  ASSERT_EQ(members.size(), 2345u);
  EXPECT_EQ(members.front(), "m00000@example.net");
  EXPECT_EQ(members.back(), "m02344@example.net");

  added = store_->AddMembers(l.id, addresses);
  ASSERT_OK(added);
  EXPECT_EQ(*added, 0);

  // One bad address: nothing is written.
  EXPECT_ERROR(store_->AddMembers(l.id, {"new@example.net", "bad address"}), "invalid-argument");
  EXPECT_ERROR(store_->AddMembers(l.id, {"new@example.net", "l@example.org"}), "invalid-argument");
  auto none = store_->FindMember(l.id, "new@example.net");
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  EXPECT_ERROR(store_->AddMembers(999999, {"new@example.net"}), "not-found");
  added = store_->AddMembers(l.id, {});
  ASSERT_OK(added);
  EXPECT_EQ(*added, 0);
}

TEST_P(ListStoreTest, ConcurrentAddMemberFromThreadsLosesNothing) {
  const MailingList l = Make("l@example.org");
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::atomic<int> exists{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Each thread adds its own addresses and one shared address races between all.
        Status s = store_->AddMember(
            l.id, "t" + std::to_string(t) + "-" + std::to_string(i) + "@example.net");
        if (!s.ok()) ADD_FAILURE() << s.error().code << ": " << s.error().message;
        Status shared = store_->AddMember(l.id, "shared" + std::to_string(i) + "@example.net");
        if (!shared.ok()) {
          if (shared.error().code == "exists") {
            ++exists;
          } else {
            ADD_FAILURE() << shared.error().code << ": " << shared.error().message;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto count = store_->CountMembers(l.id);
  ASSERT_OK(count);
  EXPECT_EQ(*count, kThreads * kEach + kEach);
  EXPECT_EQ(exists.load(), (kThreads - 1) * kEach);
  const auto members = Addresses(l.id, false);
  EXPECT_EQ(std::set<std::string>(members.begin(), members.end()).size(), members.size());
}

TEST_P(ListStoreTest, TwoStoresOnOneDatabaseSeeEachOthersWrites) {
  // Several listd nodes share one database: a member removed on one is gone on the other.
  auto second = OpenListStore(db_->url());
  ASSERT_OK(second);
  const MailingList l = Make("l@example.org");
  ASSERT_OK((*second)->AddMember(l.id, "x@example.net"));
  auto m = store_->FindMember(l.id, "x@example.net");
  ASSERT_OK(m);
  EXPECT_TRUE(m->has_value());
  ASSERT_OK(store_->RemoveMember(l.id, "x@example.net"));
  m = (*second)->FindMember(l.id, "x@example.net");
  ASSERT_OK(m);
  EXPECT_FALSE(m->has_value());
}

}  // namespace
}  // namespace blindlist::store
