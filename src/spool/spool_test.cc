#include "spool/spool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "spool/fault_injection_env.h"

namespace blindlist::spool {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Helpers

class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = (fs::temp_directory_path() / "spool-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string spool() const { return (path_ / "spool").string(); }

 private:
  fs::path path_;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<Spool> OpenOrDie(const std::string& dir, Env* env) {
  auto spool = Spool::Open(dir, env);
  EXPECT_TRUE(spool.ok()) << spool.error().message;
  return spool.ok() ? std::move(spool).value() : nullptr;
}

// A message with the bytes a queue format must not trip over: CRLF, a lone LF, NUL, and lines
// that look like the format's own records.
std::string Message(std::string_view tag) {
  std::string m = "From: alice@example.org\r\nSubject: [...]\r\n\r\n";
  m += "body of ";
  m += tag;
  m += "\r\nend 00000000\n";
  m.push_back('\0');
  m += "message 5\r\n.\r\n";
  return m;
}

ActivePost Expand(const IncomingPost& in, std::size_t members) {
  ActivePost post;
  post.id = in.id;
  post.list = in.list;
  post.envelope_sender = "team-bounces@lists.example";
  post.received_at = in.received_at;
  for (std::size_t i = 0; i < members; ++i) {
    post.recipients.push_back(RecipientEntry{"member" + std::to_string(i) + "@example.net",
                                             RecipientState::kPending, 0, 0});
  }
  post.message = in.message;
  return post;
}

RecipientEntry Entry(const ActivePost& post, std::size_t i, RecipientState state, int attempts = 1,
                     std::int64_t next = 0) {
  return RecipientEntry{post.recipients[i].address, state, attempts, next};
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(SpoolTest, AcceptThenReadIncomingGivesTheSamePost) {
  ScratchDir dir;
  FaultInjectionEnv env;
  env.SetNowMicros(1'732'800'000'123'456);
  auto spool = OpenOrDie(dir.spool(), &env);
  ASSERT_NE(spool, nullptr);

  auto id = spool->Accept("team@lists.example", "alice@example.org", Message("one"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_TRUE(IsValidId(*id));

  auto listed = spool->ListIncoming();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{*id});

  auto post = spool->ReadIncoming(*id);
  ASSERT_TRUE(post.ok()) << post.error().message;
  EXPECT_EQ(post->id, *id);
  EXPECT_EQ(post->list, "team@lists.example");
  EXPECT_EQ(post->sender, "alice@example.org");
  EXPECT_EQ(post->received_at, 1'732'800'000);
  EXPECT_EQ(post->message, Message("one"));
  EXPECT_TRUE(Names(fs::path(dir.spool()) / "tmp").empty());
}

TEST(SpoolTest, NullSenderAndEmptyMessageRoundTrip) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  auto id = spool->Accept("team@lists.example", "", "");
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto post = spool->ReadIncoming(*id);
  ASSERT_TRUE(post.ok()) << post.error().message;
  EXPECT_EQ(post->sender, "");
  EXPECT_EQ(post->message, "");
}

// ---------------------------------------------------------------------------------------------
// held/: posts a members-only list holds for its owner

TEST(SpoolTest, HeldPostsAreCountedListedReleasedAndDiscarded) {
  ScratchDir dir;
  FaultInjectionEnv env;
  env.SetNowMicros(1'732'800'000'000'000);
  auto spool = OpenOrDie(dir.spool(), &env);
  ASSERT_NE(spool, nullptr);
  auto a = spool->Accept("closed@lists.example", "mallory@example.net", Message("a"));
  auto b = spool->Accept("closed@lists.example", "", Message("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(spool->Hold(*a).ok());
  ASSERT_TRUE(spool->Hold(*b).ok());
  EXPECT_EQ(spool->Hold(*a).error().code, "spool-not-found");

  auto counts = spool->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->held, 2U);
  EXPECT_EQ(counts->incoming, 0U);
  EXPECT_EQ(counts->corrupt, 0U);
  auto held = spool->ListHeld();
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 2U);
  EXPECT_EQ((*held)[0].id, *a);
  EXPECT_EQ((*held)[0].list, "closed@lists.example");
  EXPECT_EQ((*held)[0].sender, "mallory@example.net");
  EXPECT_EQ((*held)[0].received_at, 1'732'800'000);
  EXPECT_EQ((*held)[0].size, fs::file_size(fs::path(dir.spool()) / "held" / *a));
  EXPECT_EQ((*held)[1].sender, "");

  // Released: back in incoming/ with a new received-at and the mark; the mark goes once cleared.
  EXPECT_FALSE(spool->Released(*a));
  ASSERT_TRUE(spool->Release(*a, 1'732'900'000).ok());
  EXPECT_TRUE(spool->Released(*a));
  auto post = spool->ReadIncoming(*a);
  ASSERT_TRUE(post.ok()) << post.error().message;
  EXPECT_EQ(post->received_at, 1'732'900'000);
  EXPECT_EQ(post->sender, "mallory@example.net");
  EXPECT_EQ(post->message, Message("a"));
  EXPECT_EQ(spool->Release(*a, 1).error().code, "spool-not-found");
  ASSERT_TRUE(spool->ClearReleased(*a).ok());
  EXPECT_FALSE(spool->Released(*a));

  ASSERT_TRUE(spool->Discard(*b).ok());
  EXPECT_EQ(spool->Discard(*b).error().code, "spool-not-found");
  EXPECT_EQ(spool->Discard("../incoming/x").error().code, "spool-invalid-id");
  EXPECT_EQ(spool->Counts()->held, 0U);
  EXPECT_TRUE(Names(fs::path(dir.spool()) / "tmp").empty());
}

TEST(SpoolTest, OpenFinishesAReleaseACrashInterrupted) {
  ScratchDir dir;
  std::string id;
  std::string orphan;
  {
    auto spool = OpenOrDie(dir.spool(), Env::Default());
    ASSERT_NE(spool, nullptr);
    auto a = spool->Accept("closed@lists.example", "eve@example.net", Message("a"));
    auto b = spool->Accept("closed@lists.example", "eve@example.net", Message("b"));
    ASSERT_TRUE(a.ok() && b.ok());
    id = *a;
    orphan = *b;
    ASSERT_TRUE(spool->Hold(id).ok());
  }
  const fs::path root(dir.spool());
  // A crash after the release wrote incoming/<id> but before it removed held/<id>, and a mark
  // whose post is gone.
  fs::copy_file(root / "held" / id, root / "incoming" / id);
  WriteFile(root / "released" / id, "");
  WriteFile(root / "released" / "01700000000000000-deadbeef", "");
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  EXPECT_TRUE(Names(root / "held").empty());
  EXPECT_EQ(Names(root / "released"), std::vector<std::string>{id});
  EXPECT_TRUE(spool->Released(id));
  EXPECT_EQ(spool->ListIncoming()->size(), 2U);
  EXPECT_FALSE(spool->Released(orphan));
}

TEST(SpoolTest, ActivateThenReadActiveGivesTheSamePostAndDropsIncoming) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  auto id = spool->Accept("team@lists.example", "alice@example.org", Message("two"));
  ASSERT_TRUE(id.ok());
  auto in = spool->ReadIncoming(*id);
  ASSERT_TRUE(in.ok());
  ActivePost post = Expand(*in, 3);
  post.recipients[1].address = "\"quoted local part\"@example.net";  // spaces are allowed
  post.recipients[2].attempts = 4;
  post.recipients[2].next_attempt_at = 1'900'000'000;
  ASSERT_TRUE(spool->Activate(post).ok());

  EXPECT_TRUE(spool->ListIncoming()->empty());
  EXPECT_EQ(*spool->ListActive(), std::vector<std::string>{*id});
  auto back = spool->ReadActive(*id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->id, post.id);
  EXPECT_EQ(back->list, post.list);
  EXPECT_EQ(back->envelope_sender, post.envelope_sender);
  EXPECT_EQ(back->received_at, post.received_at);
  EXPECT_EQ(back->message, post.message);
  ASSERT_EQ(back->recipients.size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back->recipients[i].address, post.recipients[i].address);
    EXPECT_EQ(back->recipients[i].state, RecipientState::kPending);
    EXPECT_EQ(back->recipients[i].attempts, post.recipients[i].attempts);
    EXPECT_EQ(back->recipients[i].next_attempt_at, post.recipients[i].next_attempt_at);
  }
  // Activating twice would forget who was delivered.
  EXPECT_EQ(spool->Activate(post).error().code, "spool-already-active");

  ASSERT_TRUE(spool->Remove(*id).ok());
  EXPECT_TRUE(spool->ListActive()->empty());
  EXPECT_EQ(spool->Remove(*id).error().code, "spool-not-found");
}

TEST(SpoolTest, ParsersRoundTripWhatTheFramersWrite) {
  ActivePost post;
  post.id = "00001732800000123456-0badcafe";
  post.list = "team@lists.example";
  post.envelope_sender = "";
  post.received_at = -5;
  post.message = Message("frame");
  post.recipients.push_back(RecipientEntry{std::string(kMaxAddressBytes, 'a'),
                                           RecipientState::kDelivered, 2147483647, INT64_MAX});
  post.recipients.push_back(RecipientEntry{"b@x", RecipientState::kExpired, 0, 0});
  auto frame = FrameActive(post);
  ASSERT_TRUE(frame.ok()) << frame.error().message;
  const std::string file = frame->head + post.message + frame->tail;
  auto table = ParseRecipientTable(file);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->offset % 512, 0U);
  EXPECT_EQ(table->count, 2U);
  EXPECT_EQ(table->width, 1024U);
  auto back = ParseActiveFile(file);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->recipients[0].address, post.recipients[0].address);
  EXPECT_EQ(back->recipients[0].state, RecipientState::kDelivered);
  EXPECT_EQ(back->recipients[0].attempts, 2147483647);
  EXPECT_EQ(back->recipients[0].next_attempt_at, INT64_MAX);
  EXPECT_EQ(back->recipients[1].state, RecipientState::kExpired);
  EXPECT_EQ(back->received_at, -5);
  EXPECT_EQ(back->message, post.message);

  IncomingPost in{"id-1", "team@lists.example", "a@b", 7, {}};
  auto iframe = FrameIncoming(in, "hello");
  ASSERT_TRUE(iframe.ok());
  auto iback = ParseIncomingFile(iframe->head + "hello" + iframe->tail);
  ASSERT_TRUE(iback.ok()) << iback.error().message;
  EXPECT_EQ(iback->message, "hello");
  EXPECT_EQ(iback->sender, "a@b");
  // Each kind of file is refused by the other parser.
  EXPECT_FALSE(ParseActiveFile(iframe->head + "hello" + iframe->tail).ok());
  EXPECT_FALSE(ParseIncomingFile(file).ok());
}

TEST(SpoolTest, PerMemberRecipientInfosRoundTripAndAreChecked) {
  ActivePost post;
  post.id = "00001732800000123456-0badcafe";
  post.list = "team@lists.example";
  post.received_at = 5;
  post.message = Message("per member");
  post.recipients.push_back(RecipientEntry{"a@x", RecipientState::kPending, 0, 0});
  post.recipients.push_back(RecipientEntry{"b@x", RecipientState::kPending, 0, 0});
  post.recipient_infos = {"MIIBAAAA+/==", ""};
  auto frame = FrameActive(post);
  ASSERT_TRUE(frame.ok()) << frame.error().message;
  const std::string file = frame->head + post.message + frame->tail;
  auto back = ParseActiveFile(file);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->recipient_infos, post.recipient_infos);
  EXPECT_EQ(back->message, post.message);
  // The section is covered by the checksum, and every truncation is refused.
  std::string damaged = file;
  damaged[damaged.find("MIIB")] = 'N';
  EXPECT_EQ(ParseActiveFile(damaged).error().code, "spool-corrupt");
  for (std::size_t n = 0; n < file.size(); n += 7)
    EXPECT_FALSE(ParseActiveFile(file.substr(0, n)).ok()) << n;
  // One entry per recipient, base64 only.
  post.recipient_infos = {"MIIB"};
  EXPECT_FALSE(FrameActive(post).ok());
  post.recipient_infos = {"MII\nB", ""};
  EXPECT_FALSE(FrameActive(post).ok());
}

TEST(SpoolTest, IdsAreUniqueAndSortByAcceptOrderEvenWithAStoppedClock) {
  ScratchDir dir;
  FaultInjectionEnv env;
  env.SetNowMicros(1'000'000);
  auto spool = OpenOrDie(dir.spool(), &env);
  ASSERT_NE(spool, nullptr);
  std::vector<std::string> ids;
  ids.reserve(20);
  for (int i = 0; i < 20; ++i) ids.push_back(*spool->Accept("l@x", "s@x", "m"));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  EXPECT_EQ(*spool->ListIncoming(), ids);
}

TEST(SpoolTest, ConcurrentAcceptsAllLand) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  std::vector<std::vector<std::string>> ids(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < ids.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto id = spool->Accept("l@x", "s@x", "thread " + std::to_string(t));
        if (id.ok()) ids[t].push_back(*id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 100U);
  EXPECT_EQ(spool->ListIncoming()->size(), 100U);
}

TEST(SpoolTest, RefusesLineBreaksAndNulInAddresses) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->Accept("team@lists.example\r\nX: y", "a@b", "m").error().code, "spool-invalid");
  EXPECT_EQ(spool->Accept("team@lists.example", std::string("a\0b", 3), "m").error().code,
            "spool-invalid");
  EXPECT_EQ(spool->Accept("", "a@b", "m").error().code, "spool-invalid");
  auto id = spool->Accept("team@lists.example", "a@b", "m");
  ASSERT_TRUE(id.ok());
  ActivePost post = Expand(*spool->ReadIncoming(*id), 2);
  post.recipients[1].address = "evil@x\nrecipients 1 64";
  EXPECT_EQ(spool->Activate(post).error().code, "spool-invalid");
  post.recipients[1].address = std::string(kMaxAddressBytes + 1, 'a');
  EXPECT_EQ(spool->Activate(post).error().code, "spool-invalid");
  EXPECT_TRUE(spool->ListActive()->empty());
  EXPECT_EQ(spool->ListIncoming()->size(), 1U);
}

// ---------------------------------------------------------------------------------------------
// Incomplete and damaged files

TEST(SpoolTest, FileWithoutEndMarkerIsNeverListedAndIsMovedAside) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  auto id = spool->Accept("team@lists.example", "a@b", Message("cut"));
  ASSERT_TRUE(id.ok());
  const fs::path incoming = fs::path(dir.spool()) / "incoming" / *id;
  const std::string whole = ReadFile(incoming);
  const std::string cut = whole.substr(0, whole.rfind("end "));
  WriteFile(incoming, cut);

  EXPECT_TRUE(spool->ListIncoming()->empty());
  const fs::path corrupt = fs::path(dir.spool()) / "corrupt";
  EXPECT_EQ(Names(corrupt),
            (std::vector<std::string>{*id + ".incoming", *id + ".incoming.reason"}));
  EXPECT_EQ(ReadFile(corrupt / (*id + ".incoming")), cut);  // moved, not deleted or changed
  EXPECT_NE(ReadFile(corrupt / (*id + ".incoming.reason")).find("end marker"), std::string::npos);
  EXPECT_EQ(spool->Counts()->corrupt, 1U);
}

TEST(SpoolTest, EveryTruncationIsRefusedByTheParsers) {
  IncomingPost in{"id-1", "team@lists.example", "a@b", 7, {}};
  auto iframe = FrameIncoming(in, Message("t"));
  ASSERT_TRUE(iframe.ok());
  const std::string ifile = iframe->head + Message("t") + iframe->tail;
  ActivePost post = Expand(IncomingPost{"id-2", "l@x", "", 1, Message("t")}, 3);
  auto aframe = FrameActive(post);
  ASSERT_TRUE(aframe.ok());
  const std::string afile = aframe->head + post.message + aframe->tail;
  for (std::size_t n = 0; n < ifile.size(); ++n) {
    EXPECT_EQ(ParseIncomingFile(ifile.substr(0, n)).error().code, "spool-corrupt") << n;
  }
  for (std::size_t n = 0; n < afile.size(); ++n) {
    EXPECT_EQ(ParseActiveFile(afile.substr(0, n)).error().code, "spool-corrupt") << n;
  }
  EXPECT_FALSE(ParseIncomingFile(ifile + "x").ok());
}

TEST(SpoolTest, DamagedByteIsDetectedAndTheFileIsMovedAsideNotDeleted) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  auto id = spool->Accept("team@lists.example", "a@b", Message("damaged"));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(spool->Activate(Expand(*spool->ReadIncoming(*id), 4)).ok());

  const fs::path active = fs::path(dir.spool()) / "active" / *id;
  std::string bytes = ReadFile(active);
  const std::size_t at = bytes.find("body of damaged");
  ASSERT_NE(at, std::string::npos);
  bytes[at] ^= 0x20;  // "body" -> "Body": a single flipped bit
  WriteFile(active, bytes);

  auto read = spool->ReadActive(*id);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, "spool-corrupt");
  EXPECT_NE(read.error().message.find("checksum"), std::string::npos) << read.error().message;
  EXPECT_FALSE(fs::exists(active));
  EXPECT_EQ(ReadFile(fs::path(dir.spool()) / "corrupt" / (*id + ".active")), bytes);
  EXPECT_TRUE(spool->ListActive()->empty());
  auto counts = spool->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->corrupt, 1U);
  EXPECT_EQ(counts->active, 0U);

  // A damaged address is caught too: it is outside the in-place fields.
  auto id2 = spool->Accept("team@lists.example", "a@b", "m");
  ASSERT_TRUE(spool->Activate(Expand(*spool->ReadIncoming(*id2), 4)).ok());
  const fs::path active2 = fs::path(dir.spool()) / "active" / *id2;
  bytes = ReadFile(active2);
  bytes[bytes.find("member2@")] = 'n';
  WriteFile(active2, bytes);
  EXPECT_EQ(spool->ReadActive(*id2).error().code, "spool-corrupt");
}

TEST(SpoolTest, ATornRecordStateReadsAsPendingNeverAsDelivered) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  auto id = spool->Accept("team@lists.example", "a@b", "m");
  const ActivePost post = Expand(*spool->ReadIncoming(*id), 3);
  ASSERT_TRUE(spool->Activate(post).ok());
  const fs::path active = fs::path(dir.spool()) / "active" / *id;
  auto table = ParseRecipientTable(ReadFile(active));
  ASSERT_TRUE(table.ok());

  std::string bytes = ReadFile(active);
  bytes[table->offset + table->width] = 'D';  // recipient 1: state byte changed, check not
  WriteFile(active, bytes);
  auto read = spool->ReadActive(*id);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->recipients[1].state, RecipientState::kPending);
}

TEST(SpoolTest, QuarantineKeepsTheFileAndTheReason) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  auto id = spool->Accept("team@lists.example", "a@b", "m");
  ASSERT_TRUE(spool->Quarantine(*id, "policy: refused\nby admin").ok());
  const fs::path corrupt = fs::path(dir.spool()) / "corrupt";
  EXPECT_EQ(ReadFile(corrupt / (*id + ".incoming.reason")), "policy: refused by admin\n");
  EXPECT_TRUE(ParseIncomingFile(ReadFile(corrupt / (*id + ".incoming"))).ok());
  EXPECT_EQ(spool->Quarantine(*id, "again").error().code, "spool-not-found");
  EXPECT_EQ(spool->ReadIncoming("../active/x").error().code, "spool-invalid-id");
}

// ---------------------------------------------------------------------------------------------
// Crossing off

TEST(SpoolTest, UpdateRecipientsCrossesOffAndNeverUndoesAFinalState) {
  ScratchDir dir;
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  auto id = spool->Accept("team@lists.example", "a@b", Message("x"));
  const ActivePost post = Expand(*spool->ReadIncoming(*id), 5);
  ASSERT_TRUE(spool->Activate(post).ok());

  ASSERT_TRUE(spool
                  ->UpdateRecipients(*id, {{0, Entry(post, 0, RecipientState::kDelivered)},
                                           {3, Entry(post, 3, RecipientState::kPending, 2, 99)},
                                           {4, Entry(post, 4, RecipientState::kBounced)}})
                  .ok());
  auto read = spool->ReadActive(*id);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->recipients[0].state, RecipientState::kDelivered);
  EXPECT_EQ(read->recipients[1].state, RecipientState::kPending);
  EXPECT_EQ(read->recipients[3].attempts, 2);
  EXPECT_EQ(read->recipients[3].next_attempt_at, 99);
  EXPECT_EQ(read->recipients[4].state, RecipientState::kBounced);
  EXPECT_EQ(read->message, post.message);

  // D -> P is refused, and so is the whole batch it is in.
  auto refused = spool->UpdateRecipients(*id, {{1, Entry(post, 1, RecipientState::kDelivered)},
                                               {0, Entry(post, 0, RecipientState::kPending)}});
  EXPECT_EQ(refused.error().code, "spool-invalid-update");
  EXPECT_EQ(spool->ReadActive(*id)->recipients[1].state, RecipientState::kPending);
  EXPECT_EQ(spool->ReadActive(*id)->recipients[0].state, RecipientState::kDelivered);
  // B -> D as well; D -> D again is a no-op.
  EXPECT_FALSE(
      spool->UpdateRecipients(*id, {{4, Entry(post, 4, RecipientState::kDelivered)}}).ok());
  EXPECT_TRUE(spool->UpdateRecipients(*id, {{0, Entry(post, 0, RecipientState::kDelivered)}}).ok());
  // The address must match the index; the index must exist.
  EXPECT_EQ(
      spool->UpdateRecipients(*id, {{2, Entry(post, 1, RecipientState::kDelivered)}}).error().code,
      "spool-invalid-update");
  EXPECT_EQ(
      spool->UpdateRecipients(*id, {{5, Entry(post, 1, RecipientState::kDelivered)}}).error().code,
      "spool-invalid-update");
  EXPECT_FALSE(
      spool->UpdateRecipients(*id, {{1, Entry(post, 1, RecipientState::kPending, -1)}}).ok());
}

TEST(SpoolTest, UpdateCostIsProportionalToTheBatchNotTheFile) {
  ScratchDir dir;
  FaultInjectionEnv env;
  auto spool = OpenOrDie(dir.spool(), &env);
  ASSERT_NE(spool, nullptr);
  const std::string message(4 << 20, 'm');
  auto id = spool->Accept("team@lists.example", "a@b", message);
  ASSERT_TRUE(id.ok());
  const ActivePost post = Expand(*spool->ReadIncoming(*id), 10'000);
  ASSERT_TRUE(spool->Activate(post).ok());
  const std::uint64_t file_size = *env.FileSize((fs::path(dir.spool()) / "active" / *id).string());

  auto batch_cost = [&](std::size_t first, std::size_t n) {
    std::vector<std::pair<std::size_t, RecipientEntry>> updates;
    for (std::size_t i = first; i < first + n; ++i) {
      updates.emplace_back(i, Entry(post, i, RecipientState::kDelivered));
    }
    env.ResetCounters();
    EXPECT_TRUE(spool->UpdateRecipients(*id, updates).ok());
    return env.bytes_read() + env.bytes_written();
  };
  const std::uint64_t ten = batch_cost(0, 10);
  const std::uint64_t thousand = batch_cost(100, 1000);
  EXPECT_LT(ten, 8192U);            // the head, ten records, ten state fields
  EXPECT_LT(ten * 200, file_size);  // nowhere near the file
  EXPECT_GT(thousand, ten * 20);    // grows with the batch ...
  // ... by about a record per recipient, read and written back (a dense batch goes in one
  // read and one write of its records; the records here are 128 bytes wide).
  EXPECT_LT(thousand, 1000U * 2 * 128 + 8192);

  auto read = spool->ReadActive(*id);
  ASSERT_TRUE(read.ok());
  std::size_t delivered = 0;
  for (const auto& r : read->recipients) delivered += r.state == RecipientState::kDelivered;
  EXPECT_EQ(delivered, 1010U);
}

// ---------------------------------------------------------------------------------------------
// Faults and crashes

TEST(SpoolTest, FailedFsyncMeansAnErrorAndNoVisibleFile) {
  for (int which = 0; which < 3; ++which) {
    ScratchDir dir;
    FaultInjectionEnv env;
    auto spool = OpenOrDie(dir.spool(), &env);
    ASSERT_NE(spool, nullptr);
    if (which == 0) env.FailFileSyncs(true);
    if (which == 1) env.FailDirSyncs(true);
    if (which == 2) env.FailWrites(true);
    auto id = spool->Accept("team@lists.example", "a@b", Message("lost"));
    EXPECT_FALSE(id.ok()) << which;
    env.FailFileSyncs(false);
    env.FailDirSyncs(false);
    env.FailWrites(false);
    EXPECT_TRUE(spool->ListIncoming()->empty()) << which;
    // (through the env: it keeps removed files under hidden names until a power cut)
    EXPECT_TRUE(env.ListDir((fs::path(dir.spool()) / "tmp").string())->empty()) << which;
    // Not after a power cut either.
    ASSERT_TRUE(env.DropUnsyncedData().ok());
    EXPECT_TRUE(spool->ListIncoming()->empty()) << which;
  }
}

TEST(SpoolTest, FailedFsyncOfAnUpdateIsReported) {
  ScratchDir dir;
  FaultInjectionEnv env;
  auto spool = OpenOrDie(dir.spool(), &env);
  ASSERT_NE(spool, nullptr);
  auto id = spool->Accept("team@lists.example", "a@b", "m");
  const ActivePost post = Expand(*spool->ReadIncoming(*id), 2);
  ASSERT_TRUE(spool->Activate(post).ok());
  env.FailFileSyncs(true);
  EXPECT_FALSE(
      spool->UpdateRecipients(*id, {{0, Entry(post, 0, RecipientState::kDelivered)}}).ok());
}

TEST(SpoolTest, OpenClearsTmpAndDropsIncomingThatWasAlreadyActivated) {
  ScratchDir dir;
  std::string id;
  {
    auto spool = OpenOrDie(dir.spool(), Env::Default());
    ASSERT_NE(spool, nullptr);
    id = *spool->Accept("team@lists.example", "a@b", "m");
    ASSERT_TRUE(spool->Activate(Expand(*spool->ReadIncoming(id), 1)).ok());
  }
  const fs::path root(dir.spool());
  // As a crash would leave them: a half-written tmp file, and the incoming file of a post that
  // was activated just before the crash.
  WriteFile(root / "tmp" / (id + "9.incoming"), "blindlist-queue 1 incoming\nid x");
  WriteFile(root / "incoming" / id, "anything");
  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  EXPECT_TRUE(Names(root / "tmp").empty());
  EXPECT_TRUE(Names(root / "incoming").empty());
  EXPECT_EQ(*spool->ListActive(), std::vector<std::string>{id});
  EXPECT_TRUE(Names(root / "corrupt").empty());
}

// What the workload below got acknowledged before the crash.
struct Acknowledged {
  std::map<std::string, std::string> accepted;  // id -> message
  std::set<std::string> removed;
  std::map<std::string, std::map<std::size_t, RecipientState>> final_states;
};

// A listd-like sequence of operations; stops at the first failure (the "crash").
void RunWorkload(Spool& spool, Acknowledged& ack) {
  auto accept = [&](const std::string& tag) -> std::string {
    auto id = spool.Accept("team@lists.example", "alice@example.org", Message(tag));
    if (!id.ok()) return {};
    ack.accepted[*id] = Message(tag);
    return *id;
  };
  auto update = [&](const ActivePost& post,
                    const std::vector<std::pair<std::size_t, RecipientState>>& changes) {
    std::vector<std::pair<std::size_t, RecipientEntry>> updates;
    updates.reserve(changes.size());
    for (const auto& [i, state] : changes) updates.emplace_back(i, Entry(post, i, state, 1, 60));
    if (!spool.UpdateRecipients(post.id, updates).ok()) return false;
    for (const auto& [i, state] : changes) {
      if (IsFinal(state)) ack.final_states[post.id][i] = state;
    }
    return true;
  };
  auto activate = [&](const std::string& id, std::size_t members) -> std::optional<ActivePost> {
    auto in = spool.ReadIncoming(id);
    if (!in.ok()) return std::nullopt;
    ActivePost post = Expand(*in, members);
    if (!spool.Activate(post).ok()) return std::nullopt;
    return post;
  };

  const std::string a = accept("a");
  if (a.empty()) return;
  const std::string b = accept("b");
  if (b.empty()) return;
  auto pa = activate(a, 6);
  if (!pa) return;
  if (!update(*pa, {{0, RecipientState::kDelivered}, {1, RecipientState::kDelivered}})) return;
  if (!update(*pa, {{2, RecipientState::kPending}})) return;
  if (accept("c").empty()) return;
  if (!update(*pa, {{3, RecipientState::kDelivered},
                    {4, RecipientState::kBounced},
                    {5, RecipientState::kDelivered}})) {
    return;
  }
  auto pb = activate(b, 3);
  if (!pb) return;
  if (!update(*pb, {{1, RecipientState::kDelivered}})) return;
  if (!update(*pa, {{2, RecipientState::kDelivered}})) return;
  if (!spool.Remove(a).ok()) return;
  ack.removed.insert(a);
  if (!update(*pb, {{0, RecipientState::kDelivered}, {2, RecipientState::kExpired}})) return;
  if (!spool.Quarantine(b, "operator").ok()) return;
  ack.removed.insert(b);
}

TEST(SpoolTest, CrashAtAnyPointLosesNothingAcknowledged) {
  int crash_points = 0;
  for (std::int64_t after = 0;; ++after) {
    ScratchDir dir;
    FaultInjectionEnv env;
    env.SetNowMicros(1'800'000'000'000'000);
    Acknowledged ack;
    {
      auto spool = OpenOrDie(dir.spool(), &env);
      ASSERT_NE(spool, nullptr);
      env.CrashAfter(after);
      RunWorkload(*spool, ack);
    }
    if (!env.crashed()) break;  // the workload ran to its end: every point has been tried
    ++crash_points;
    ASSERT_TRUE(env.DropUnsyncedData().ok()) << after;

    auto spool = OpenOrDie(dir.spool(), &env);
    ASSERT_NE(spool, nullptr);
    auto incoming = spool->ListIncoming();
    auto active = spool->ListActive();
    ASSERT_TRUE(incoming.ok() && active.ok());
    const std::set<std::string> in_set(incoming->begin(), incoming->end());
    const std::set<std::string> active_set(active->begin(), active->end());
    for (const auto& [id, message] : ack.accepted) {
      if (ack.removed.count(id) != 0) {
        EXPECT_EQ(in_set.count(id) + active_set.count(id), 0U) << "removed " << id;
        continue;
      }
      if (active_set.count(id) != 0) {
        auto post = spool->ReadActive(id);
        ASSERT_TRUE(post.ok()) << after << ": " << post.error().message;
        EXPECT_EQ(post->message, message);
        for (const auto& [i, state] : ack.final_states[id]) {
          EXPECT_EQ(post->recipients[i].state, state) << "crash after " << after << ", " << i;
        }
      } else {
        ASSERT_EQ(in_set.count(id), 1U) << "crash after " << after << ": lost " << id;
        EXPECT_TRUE(ack.final_states[id].empty());
        auto post = spool->ReadIncoming(id);
        ASSERT_TRUE(post.ok()) << after << ": " << post.error().message;
        EXPECT_EQ(post->message, message);
      }
    }
    const fs::path root(dir.spool());
    EXPECT_TRUE(Names(root / "tmp").empty()) << after;
    // A crash never quarantines anything; only the operator's Quarantine of a whole, intact
    // active file can put something there.
    for (const std::string& name : Names(root / "corrupt")) {
      if (name.ends_with(".reason")) continue;
      EXPECT_TRUE(ParseActiveFile(ReadFile(root / "corrupt" / name)).ok()) << after << name;
    }
  }
  EXPECT_GT(crash_points, 30);
  std::printf("crash points tried: %d\n", crash_points);
}

TEST(SpoolTest, KillNineNeverLosesAnAcknowledgedPost) {
  ScratchDir dir;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    auto spool = Spool::Open(dir.spool());
    if (!spool.ok()) ::_exit(2);
    for (int i = 0;; ++i) {
      auto id = (*spool)->Accept("team@lists.example", "a@b", Message(std::to_string(i)));
      if (!id.ok()) ::_exit(3);
      const std::string line = *id + "\n";  // the "250", sent only once Accept returned
      if (::write(fds[1], line.data(), line.size()) < 0) ::_exit(4);
    }
  }
  ::close(fds[1]);
  std::string acked;
  char buf[4096];
  while (std::count(acked.begin(), acked.end(), '\n') < 20) {
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    acked.append(buf, static_cast<std::size_t>(n));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  acked.resize(acked.rfind('\n') + 1);

  auto spool = OpenOrDie(dir.spool(), Env::Default());
  ASSERT_NE(spool, nullptr);
  auto listed = spool->ListIncoming();
  ASSERT_TRUE(listed.ok());
  const std::set<std::string> present(listed->begin(), listed->end());
  std::size_t checked = 0;
  for (std::size_t pos = 0; pos < acked.size();) {
    const std::size_t nl = acked.find('\n', pos);
    const std::string id = acked.substr(pos, nl - pos);
    pos = nl + 1;
    EXPECT_EQ(present.count(id), 1U) << "lost " << id;
    EXPECT_TRUE(spool->ReadIncoming(id).ok()) << id;
    ++checked;
  }
  EXPECT_GE(checked, 20U);
  EXPECT_TRUE(Names(fs::path(dir.spool()) / "tmp").empty());
  EXPECT_TRUE(Names(fs::path(dir.spool()) / "corrupt").empty());
}

}  // namespace
}  // namespace blindlist::spool
