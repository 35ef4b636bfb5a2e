// The Spool: queue files in tmp/, incoming/, active/, corrupt/ and held/ (docs/queue-format.md).

#include "spool/spool.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "blindlist/error_codes.h"

namespace blindlist::spool {
namespace {

constexpr std::string_view kTmp = "tmp";
constexpr std::string_view kIncoming = "incoming";
constexpr std::string_view kActive = "active";
constexpr std::string_view kCorrupt = "corrupt";
constexpr std::string_view kHeld = "held";
constexpr std::string_view kReleased = "released";
constexpr unsigned kDirMode = 0700;
constexpr std::string_view kReasonSuffix = ".reason";
// "\nend " + 8 hex digits + "\n": what every complete queue file ends with.
constexpr std::size_t kEndMarkerBytes = 14;

bool LooksComplete(std::string_view tail) {
  if (tail.size() != kEndMarkerBytes || tail.substr(0, 5) != "\nend " || tail.back() != '\n') {
    return false;
  }
  return std::all_of(tail.begin() + 5, tail.end() - 1,
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string RandomInstance() {
  std::random_device rd;
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", static_cast<unsigned>(rd()));
  return std::string(buf, 8);
}

Error InvalidUpdate(std::string message) {
  return MakeError("spool-invalid-update", std::move(message));
}

// The records before the message of an incoming file (its first bytes): enough for `held list`
// without reading a 25 MB post. Nullopt for anything but a well-formed head.
std::optional<HeldPost> ParseIncomingHead(std::string_view head) {
  std::vector<std::string_view> lines;
  while (lines.size() < 5) {
    const std::size_t nl = head.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    lines.push_back(head.substr(0, nl));
    head.remove_prefix(nl + 1);
  }
  auto value = [&](std::size_t i, std::string_view key) -> std::optional<std::string> {
    if (lines[i].size() < key.size() + 1 || lines[i].substr(0, key.size()) != key ||
        lines[i][key.size()] != ' ') {
      return std::nullopt;
    }
    return std::string(lines[i].substr(key.size() + 1));
  };
  if (lines[0] != "blindlist-queue 1 incoming") return std::nullopt;
  auto id = value(1, "id");
  auto list = value(2, "list");
  auto sender = lines[3] == "sender" ? std::optional<std::string>("") : value(3, "sender");
  auto received = value(4, "received-at");
  if (!id || !list || !sender || !received) return std::nullopt;
  HeldPost post;
  const char* end = received->data() + received->size();
  auto [ptr, ec] = std::from_chars(received->data(), end, post.received_at);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  post.id = std::move(*id);
  post.list = std::move(*list);
  post.sender = std::move(*sender);
  return post;
}

}  // namespace

Spool::Spool(std::string dir, Env* env, std::string instance)
    : dir_(std::move(dir)), env_(env), instance_(std::move(instance)) {}

std::string Spool::Path(std::string_view sub, std::string_view name) const {
  std::string path = dir_;
  path.push_back('/');
  path.append(sub);
  if (!name.empty()) {
    path.push_back('/');
    path.append(name);
  }
  return path;
}

Result<std::unique_ptr<Spool>> Spool::Open(const std::string& dir, Env* env, Role role) {
  if (dir.empty()) return MakeError("spool-invalid", "empty spool directory name");
  std::unique_ptr<Spool> spool(
      new Spool(dir, env, (role == Role::kGuest ? "p" : "") + RandomInstance()));
  BL_TRY(env->CreateDir(dir, kDirMode));
  for (const std::string_view sub : {kTmp, kIncoming, kActive, kCorrupt, kHeld, kReleased}) {
    BL_TRY(env->CreateDir(spool->Path(sub, ""), kDirMode));
  }
  BL_TRY(env->SyncDir(dir));

  if (role == Role::kGuest) return spool;
  // Whatever is in tmp/ was never acknowledged: the sender still has it.
  BL_TRY_ASSIGN(const std::vector<std::string> stale, env->ListDir(spool->Path(kTmp, "")));
  for (const std::string& name : stale) BL_TRY(env->RemoveFile(spool->Path(kTmp, name)));
  if (!stale.empty()) BL_TRY(env->SyncDir(spool->Path(kTmp, "")));

  // Activation writes the active file before it removes the incoming one.
  BL_TRY_ASSIGN(const std::vector<std::string> incoming, env->ListDir(spool->Path(kIncoming, "")));
  bool removed = false;
  for (const std::string& name : incoming) {
    if (IsValidId(name) && env->Exists(spool->Path(kActive, name))) {
      BL_TRY(env->RemoveFile(spool->Path(kIncoming, name)));
      removed = true;
    }
  }
  if (removed) BL_TRY(env->SyncDir(spool->Path(kIncoming, "")));
  BL_TRY(spool->CleanUpHeld());
  return spool;
}

Status Spool::CleanUpHeld() {
  auto queued = [&](const std::string& name) {
    return env_->Exists(Path(kIncoming, name)) || env_->Exists(Path(kActive, name));
  };
  // A release writes incoming/<id> before it removes held/<id>.
  BL_TRY_ASSIGN(const std::vector<std::string> held, env_->ListDir(Path(kHeld, "")));
  bool removed = false;
  for (const std::string& name : held) {
    if (IsValidId(name) && queued(name)) {
      BL_TRY(env_->RemoveFile(Path(kHeld, name)));
      removed = true;
    }
  }
  if (removed) BL_TRY(env_->SyncDir(Path(kHeld, "")));
  // A mark outlives its post only if a crash fell between expansion and ClearReleased.
  BL_TRY_ASSIGN(const std::vector<std::string> marks, env_->ListDir(Path(kReleased, "")));
  removed = false;
  for (const std::string& name : marks) {
    if (IsValidId(name) && !queued(name) && !env_->Exists(Path(kHeld, name))) {
      BL_TRY(env_->RemoveFile(Path(kReleased, name)));
      removed = true;
    }
  }
  if (removed) BL_TRY(env_->SyncDir(Path(kReleased, "")));
  return Status::Ok();
}

bool Spool::WrittenByGuest(std::string_view id) {
  const std::size_t dash = id.find('-');
  return dash != std::string_view::npos && dash + 1 < id.size() && id[dash + 1] == 'p';
}

std::string Spool::NewId() {
  std::int64_t micros = env_->NowMicros();
  {
    const std::lock_guard<std::mutex> lock(id_mu_);
    micros = std::max(micros, last_id_micros_ + 1);  // strictly increasing within this run
    last_id_micros_ = micros;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%017lld", static_cast<long long>(micros));
  return std::string(buf) + "-" + instance_;
}

Status Spool::WriteDurably(const std::string& tmp_name, const QueueFileFrame& frame,
                           const std::vector<std::string_view>& message_parts,
                           std::string_view to_sub, const std::string& id) {
  const std::string tmp = Path(kTmp, tmp_name);
  const std::string final_path = Path(to_sub, id);
  BL_TRY_ASSIGN(std::unique_ptr<File> file, env_->CreateExclusive(tmp));
  Status written = file->WriteAt(0, frame.head);
  std::uint64_t offset = frame.head.size();
  for (const std::string_view part : message_parts) {
    if (!written.ok()) break;
    written = file->WriteAt(offset, part);
    offset += part.size();
  }
  if (written.ok()) written = file->WriteAt(offset, frame.tail);
  if (written.ok()) written = file->Sync();
  file.reset();
  if (written.ok()) written = env_->Rename(tmp, final_path);
  if (!written.ok()) {
    (void)env_->RemoveFile(tmp);  // best effort: Open clears tmp/ anyway
    return written;
  }
  if (Status synced = env_->SyncDir(Path(to_sub, "")); !synced.ok()) {
    // Not known to be durable, so not acknowledged: take it back out of the queue.
    (void)env_->RemoveFile(final_path);
    return synced;
  }
  return Status::Ok();
}

Result<std::string> Spool::Accept(const std::string& list, const std::string& sender,
                                  std::string_view message) {
  std::string id = NewId();
  const IncomingPost meta{id, list, sender, env_->NowMicros() / 1'000'000, {}};
  BL_TRY_ASSIGN(const QueueFileFrame frame, FrameIncoming(meta, message));
  BL_TRY(WriteDurably(id + ".incoming", frame, {message}, kIncoming, id));
  return id;
}

Result<std::vector<std::string>> Spool::ListQueue(std::string_view sub) {
  BL_TRY_ASSIGN(std::vector<std::string> names, env_->ListDir(Path(sub, "")));
  std::vector<std::string> ids;
  ids.reserve(names.size());
  for (std::string& name : names) {
    if (!IsValidId(name)) continue;  // not ours (an editor's backup, a stray file): left alone
    // A cheap look at the end marker, so an incomplete file is never offered for delivery.
    const std::string path = Path(sub, name);
    auto size = env_->FileSize(path);
    if (!size.ok()) continue;  // removed meanwhile
    bool complete = false;
    if (*size >= kEndMarkerBytes) {
      auto file = env_->OpenExisting(path);
      if (!file.ok()) continue;
      auto tail = (*file)->ReadAt(*size - kEndMarkerBytes, kEndMarkerBytes);
      if (!tail.ok()) return tail.error();
      complete = LooksComplete(*tail);
    }
    if (!complete) {
      BL_TRY(QuarantineFile(sub, name, "incomplete: no end marker"));
      continue;
    }
    ids.push_back(std::move(name));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::vector<std::string>> Spool::ListIncoming() {
  const std::lock_guard<std::mutex> lock(mu_);
  return ListQueue(kIncoming);
}

Result<std::vector<std::string>> Spool::ListActive() {
  const std::lock_guard<std::mutex> lock(mu_);
  return ListQueue(kActive);
}

Result<IncomingPost> Spool::ReadIncoming(const std::string& id) {
  if (!IsValidId(id))
    return MakeError(std::string(errc::kSpoolInvalidId), "bad queue id '" + id + "'");
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY_ASSIGN(std::string bytes, env_->ReadWholeFile(Path(kIncoming, id)));
  auto post = ParseIncomingFileInPlace(std::move(bytes));
  if (post.ok() && post->id != id) post = MakeError("spool-corrupt", "the id inside differs");
  if (!post.ok()) {
    BL_TRY(QuarantineFile(kIncoming, id, post.error().message));
    return MakeError("spool-corrupt",
                     "incoming " + id + ": " + post.error().message + " (moved to corrupt/)");
  }
  return post;
}

Result<ActivePost> Spool::ReadActive(const std::string& id) {
  if (!IsValidId(id))
    return MakeError(std::string(errc::kSpoolInvalidId), "bad queue id '" + id + "'");
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY_ASSIGN(std::string bytes, env_->ReadWholeFile(Path(kActive, id)));
  auto post = ParseActiveFileInPlace(std::move(bytes));
  if (post.ok() && post->id != id) post = MakeError("spool-corrupt", "the id inside differs");
  if (!post.ok()) {
    BL_TRY(QuarantineFile(kActive, id, post.error().message));
    return MakeError("spool-corrupt",
                     "active " + id + ": " + post.error().message + " (moved to corrupt/)");
  }
  return post;
}

Status Spool::Activate(const ActivePost& post) { return Activate(post, {post.message}); }

Status Spool::Activate(const ActivePost& post, const std::vector<std::string_view>& message_parts) {
  BL_TRY_ASSIGN(const QueueFileFrame frame, FrameActive(post, message_parts));
  const std::lock_guard<std::mutex> lock(mu_);
  if (env_->Exists(Path(kActive, post.id))) {
    return MakeError(std::string(errc::kSpoolAlreadyActive),
                     "post " + post.id + " already has an active file");
  }
  BL_TRY(WriteDurably(post.id + ".active", frame, message_parts, kActive, post.id));
  const std::string incoming = Path(kIncoming, post.id);
  if (env_->Exists(incoming)) {
    // No directory sync: if the removal is lost in a crash, Open removes the file again.
    BL_TRY(env_->RemoveFile(incoming));
  }
  return Status::Ok();
}

Status Spool::UpdateRecipients(const std::string& id,
                               const std::vector<std::pair<std::size_t, RecipientEntry>>& updates,
                               bool sync) {
  if (!IsValidId(id))
    return MakeError(std::string(errc::kSpoolInvalidId), "bad queue id '" + id + "'");
  if (updates.empty()) return Status::Ok();
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY_ASSIGN(std::unique_ptr<File> file, env_->OpenExisting(Path(kActive, id)));
  BL_TRY_ASSIGN(const std::string prefix, file->ReadAt(0, kActiveHeadProbeBytes));
  BL_TRY_ASSIGN(const RecipientTable table, ParseRecipientTable(prefix));

  // A batch of neighbouring records (the usual fan-out batch) is read in one call and, below,
  // written back in one call; scattered updates go record by record.
  std::size_t low = table.count;
  std::size_t high = 0;
  for (const auto& update : updates) {
    if (update.first >= table.count) {
      return InvalidUpdate("recipient " + std::to_string(update.first) + " out of range (" +
                           std::to_string(table.count) + " recipients)");
    }
    low = std::min(low, update.first);
    high = std::max(high, update.first);
  }
  const bool dense = high - low + 1 <= 2 * updates.size();
  std::string range;
  const std::uint64_t range_offset = table.offset + std::uint64_t{low} * table.width;
  if (dense) {
    BL_TRY_ASSIGN(range, file->ReadAt(range_offset, (high - low + 1) * table.width));
    if (range.size() != (high - low + 1) * table.width) {
      return MakeError("spool-corrupt", "post " + id + ": recipient table is truncated");
    }
  }

  // Check the whole batch before writing any of it.
  std::vector<std::pair<std::uint64_t, std::string>> writes;
  writes.reserve(updates.size());
  for (const auto& [index, entry] : updates) {
    const std::uint64_t offset = table.offset + std::uint64_t{index} * table.width;
    std::string record;
    if (dense) {
      record = range.substr((index - low) * table.width, table.width);
    } else {
      BL_TRY_ASSIGN(record, file->ReadAt(offset, table.width));
    }
    BL_TRY_ASSIGN(const RecipientEntry current, ParseRecord(record, index));
    if (current.address != entry.address) {
      return InvalidUpdate("recipient " + std::to_string(index) + " is " + current.address +
                           ", not " + entry.address);
    }
    if (IsFinal(current.state)) {
      if (entry.state == current.state) continue;  // already crossed off
      return InvalidUpdate("recipient " + std::to_string(index) + " (" + current.address +
                           ") is already in a final state");
    }
    BL_TRY_ASSIGN(std::string state, EncodeRecordState(index, entry));
    writes.emplace_back(offset, std::move(state));
  }
  if (writes.empty()) return Status::Ok();
  if (dense) {
    for (const auto& [offset, state] : writes) {
      range.replace(static_cast<std::size_t>(offset - range_offset), state.size(), state);
    }
    BL_TRY(file->WriteAt(range_offset, range));
  } else {
    for (const auto& [offset, state] : writes) BL_TRY(file->WriteAt(offset, state));
  }
  return sync ? file->Sync() : Status::Ok();
}

Status Spool::Remove(const std::string& id) {
  if (!IsValidId(id))
    return MakeError(std::string(errc::kSpoolInvalidId), "bad queue id '" + id + "'");
  const std::lock_guard<std::mutex> lock(mu_);
  bool found = false;
  for (const std::string_view sub : {kActive, kIncoming}) {
    const std::string path = Path(sub, id);
    if (!env_->Exists(path)) continue;
    found = true;
    BL_TRY(env_->RemoveFile(path));
    BL_TRY(env_->SyncDir(Path(sub, "")));
  }
  if (!found) return MakeError("spool-not-found", "no queued post " + id);
  return Status::Ok();
}

Status Spool::Quarantine(const std::string& id, const std::string& reason) {
  if (!IsValidId(id))
    return MakeError(std::string(errc::kSpoolInvalidId), "bad queue id '" + id + "'");
  const std::lock_guard<std::mutex> lock(mu_);
  bool found = false;
  for (const std::string_view sub : {kActive, kIncoming}) {
    if (!env_->Exists(Path(sub, id))) continue;
    found = true;
    BL_TRY(QuarantineFile(sub, id, reason));
  }
  if (!found) return MakeError("spool-not-found", "no queued post " + id);
  return Status::Ok();
}

Status Spool::QuarantineFile(std::string_view sub, const std::string& id,
                             const std::string& reason) {
  // corrupt/<id>.<incoming|active>[.<n>]: never overwrites an earlier one.
  std::string name = id + "." + std::string(sub);
  for (int n = 1; env_->Exists(Path(kCorrupt, name)); ++n) {
    name = id + "." + std::string(sub) + "." + std::to_string(n);
  }
  BL_TRY(env_->Rename(Path(sub, id), Path(kCorrupt, name)));
  std::string text = reason;
  std::replace(text.begin(), text.end(), '\n', ' ');
  text.push_back('\n');
  BL_TRY_ASSIGN(std::unique_ptr<File> note,
                env_->CreateExclusive(Path(kCorrupt, name + std::string(kReasonSuffix))));
  BL_TRY(note->WriteAt(0, text));
  BL_TRY(note->Sync());
  return env_->SyncDir(Path(kCorrupt, ""));
}

Status Spool::Hold(const std::string& id) {
  if (!IsValidId(id))
    return MakeError(std::string(errc::kSpoolInvalidId), "bad queue id '" + id + "'");
  const std::lock_guard<std::mutex> lock(mu_);
  if (!env_->Exists(Path(kIncoming, id))) {
    return MakeError("spool-not-found", "no incoming post " + id);
  }
  BL_TRY(env_->Rename(Path(kIncoming, id), Path(kHeld, id)));
  BL_TRY(env_->SyncDir(Path(kHeld, "")));
  return env_->SyncDir(Path(kIncoming, ""));
}

Result<std::vector<HeldPost>> Spool::ListHeld() {
  BL_TRY_ASSIGN(std::vector<std::string> names, env_->ListDir(Path(kHeld, "")));
  std::sort(names.begin(), names.end());
  std::vector<HeldPost> posts;
  for (const std::string& name : names) {
    if (!IsValidId(name)) continue;
    const std::string path = Path(kHeld, name);
    auto size = env_->FileSize(path);
    auto file = env_->OpenExisting(path);
    if (!size.ok() || !file.ok()) continue;  // released or discarded meanwhile
    auto head = (*file)->ReadAt(
        0, static_cast<std::size_t>(std::min<std::uint64_t>(*size, kActiveHeadProbeBytes)));
    if (!head.ok()) continue;
    std::optional<HeldPost> post = ParseIncomingHead(*head);
    if (!post || post->id != name) continue;
    post->size = *size;
    posts.push_back(std::move(*post));
  }
  return posts;
}

Status Spool::Release(const std::string& id, std::int64_t now) {
  if (!IsValidId(id))
    return MakeError(std::string(errc::kSpoolInvalidId), "bad queue id '" + id + "'");
  const std::lock_guard<std::mutex> lock(mu_);
  const std::string held = Path(kHeld, id);
  if (!env_->Exists(held)) return MakeError("spool-not-found", "no held post " + id);
  BL_TRY_ASSIGN(std::string bytes, env_->ReadWholeFile(held));
  BL_TRY_ASSIGN(IncomingPost post, ParseIncomingFileInPlace(std::move(bytes)));
  if (post.id != id) return MakeError("spool-corrupt", "held " + id + ": the id inside differs");
  // The mark first: the post must never be in incoming/ without it.
  const std::string mark = Path(kReleased, id);
  if (!env_->Exists(mark)) {
    BL_TRY_ASSIGN(std::unique_ptr<File> file, env_->CreateExclusive(mark));
    BL_TRY(file->Sync());
    BL_TRY(env_->SyncDir(Path(kReleased, "")));
  }
  post.received_at = now;
  BL_TRY_ASSIGN(const QueueFileFrame frame, FrameIncoming(post, post.message));
  BL_TRY(WriteDurably(id + ".released", frame, {post.message}, kIncoming, id));
  BL_TRY(env_->RemoveFile(held));
  return env_->SyncDir(Path(kHeld, ""));
}

Status Spool::Discard(const std::string& id) {
  if (!IsValidId(id))
    return MakeError(std::string(errc::kSpoolInvalidId), "bad queue id '" + id + "'");
  const std::lock_guard<std::mutex> lock(mu_);
  const std::string held = Path(kHeld, id);
  if (!env_->Exists(held)) return MakeError("spool-not-found", "no held post " + id);
  BL_TRY(env_->RemoveFile(held));
  return env_->SyncDir(Path(kHeld, ""));
}

bool Spool::Released(const std::string& id) {
  return IsValidId(id) && env_->Exists(Path(kReleased, id));
}

Status Spool::ClearReleased(const std::string& id) {
  if (!IsValidId(id) || !env_->Exists(Path(kReleased, id))) return Status::Ok();
  BL_TRY(env_->RemoveFile(Path(kReleased, id)));
  return env_->SyncDir(Path(kReleased, ""));
}

Result<SpoolCounts> Spool::Counts() {
  SpoolCounts counts;
  BL_TRY_ASSIGN(const std::vector<std::string> incoming, env_->ListDir(Path(kIncoming, "")));
  BL_TRY_ASSIGN(const std::vector<std::string> active, env_->ListDir(Path(kActive, "")));
  BL_TRY_ASSIGN(const std::vector<std::string> corrupt, env_->ListDir(Path(kCorrupt, "")));
  BL_TRY_ASSIGN(const std::vector<std::string> held, env_->ListDir(Path(kHeld, "")));
  counts.incoming = static_cast<std::size_t>(std::count_if(
      incoming.begin(), incoming.end(), [](const std::string& n) { return IsValidId(n); }));
  counts.active = static_cast<std::size_t>(std::count_if(
      active.begin(), active.end(), [](const std::string& n) { return IsValidId(n); }));
  counts.corrupt = static_cast<std::size_t>(
      std::count_if(corrupt.begin(), corrupt.end(), [](const std::string& n) {
        return n.size() < kReasonSuffix.size() ||
               n.compare(n.size() - kReasonSuffix.size(), kReasonSuffix.size(), kReasonSuffix) != 0;
      }));
  counts.held = static_cast<std::size_t>(
      std::count_if(held.begin(), held.end(), [](const std::string& n) { return IsValidId(n); }));
  return counts;
}

}  // namespace blindlist::spool
