// FaultInjectionEnv: remembers what is not yet durable and can put it back (see the header).
// A removal is a rename to a hidden trash name, so it can be undone until its directory is synced.

#include "spool/fault_injection_env.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blindlist::spool {
namespace {

constexpr std::string_view kTrashPrefix = ".fi-trash-";

std::string DirName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

Error Injected(std::string what) { return MakeError("injected-fault", std::move(what)); }

}  // namespace

// A File whose writes and fsyncs go through the env's bookkeeping.
class FaultInjectionFile final : public File {
 public:
  FaultInjectionFile(FaultInjectionEnv* env, std::unique_ptr<File> base, int file)
      : env_(env), base_(std::move(base)), file_(file) {}
  Status WriteAt(std::uint64_t offset, std::string_view data) override {
    return env_->FileWriteAt(*base_, file_, offset, data);
  }
  Result<std::string> ReadAt(std::uint64_t offset, std::size_t n) override {
    return env_->FileReadAt(*base_, offset, n);
  }
  Status Sync() override { return env_->FileSync(*base_, file_); }

 private:
  FaultInjectionEnv* env_;
  std::unique_ptr<File> base_;
  int file_;
};

FaultInjectionEnv::FaultInjectionEnv(Env* base) : base_(base) {}

FaultInjectionEnv::~FaultInjectionEnv() {
  // A clean shutdown: the removals happened.
  for (const DirOp& op : journal_) {
    if (op.kind == OpKind::kRemove) (void)base_->RemoveFile(op.b);
    if (op.kind == OpKind::kRename && !op.c.empty()) (void)base_->RemoveFile(op.c);
  }
}

void FaultInjectionEnv::FailWrites(bool on) {
  const std::lock_guard<std::mutex> lock(mu_);
  fail_writes_ = on;
}
void FaultInjectionEnv::FailFileSyncs(bool on) {
  const std::lock_guard<std::mutex> lock(mu_);
  fail_file_syncs_ = on;
}
void FaultInjectionEnv::FailDirSyncs(bool on) {
  const std::lock_guard<std::mutex> lock(mu_);
  fail_dir_syncs_ = on;
}
void FaultInjectionEnv::CrashAfter(std::int64_t operations) {
  const std::lock_guard<std::mutex> lock(mu_);
  ops_until_crash_ = operations;
  crashed_ = false;
}
bool FaultInjectionEnv::crashed() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return crashed_;
}
void FaultInjectionEnv::SetNowMicros(std::int64_t micros) {
  const std::lock_guard<std::mutex> lock(mu_);
  fixed_now_ = micros;
}
std::uint64_t FaultInjectionEnv::bytes_read() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return bytes_read_;
}
std::uint64_t FaultInjectionEnv::bytes_written() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return bytes_written_;
}
void FaultInjectionEnv::ResetCounters() {
  const std::lock_guard<std::mutex> lock(mu_);
  bytes_read_ = 0;
  bytes_written_ = 0;
}

Status FaultInjectionEnv::Tick() {
  if (crashed_) return Injected("injected crash: the process is gone");
  if (ops_until_crash_ == 0) {
    crashed_ = true;
    return Injected("injected crash: the process is gone");
  }
  if (ops_until_crash_ > 0) --ops_until_crash_;
  return Status::Ok();
}

int FaultInjectionEnv::TrackExisting(const std::string& path) {
  if (auto it = file_at_.find(path); it != file_at_.end()) return it->second;
  const int file = next_file_++;
  auto size = base_->FileSize(path);
  const std::uint64_t bytes = size.ok() ? *size : 0;
  files_[file] = FileState{path, bytes, bytes, {}};
  file_at_[path] = file;
  return file;
}

std::string FaultInjectionEnv::TrashName() { return std::to_string(next_trash_++); }

Status FaultInjectionEnv::FileWriteAt(File& base, int file, std::uint64_t offset,
                                      std::string_view data) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY(Tick());
  if (fail_writes_) return Injected("injected write failure");
  BL_TRY_ASSIGN(std::string old_bytes, base.ReadAt(offset, data.size()));
  BL_TRY(base.WriteAt(offset, data));
  FileState& state = files_[file];
  if (!old_bytes.empty()) state.undo.push_back(Undo{offset, std::move(old_bytes)});
  state.size = std::max<std::uint64_t>(state.size, offset + data.size());
  bytes_written_ += data.size();
  return Status::Ok();
}

Status FaultInjectionEnv::FileSync(File& base, int file) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY(Tick());
  if (fail_file_syncs_) return Injected("injected fsync failure");
  BL_TRY(base.Sync());
  FileState& state = files_[file];
  state.synced_size = state.size;
  state.undo.clear();
  return Status::Ok();
}

Result<std::string> FaultInjectionEnv::FileReadAt(File& base, std::uint64_t offset, std::size_t n) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY_ASSIGN(std::string bytes, base.ReadAt(offset, n));
  bytes_read_ += bytes.size();
  return bytes;
}

Result<std::unique_ptr<File>> FaultInjectionEnv::CreateExclusive(const std::string& path) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY(Tick());
  BL_TRY_ASSIGN(std::unique_ptr<File> base, base_->CreateExclusive(path));
  const int file = next_file_++;
  files_[file] = FileState{path, 0, 0, {}};
  file_at_[path] = file;
  journal_.push_back(DirOp{OpKind::kCreate, DirName(path), file, path, {}, {}});
  return std::unique_ptr<File>(std::make_unique<FaultInjectionFile>(this, std::move(base), file));
}

Result<std::unique_ptr<File>> FaultInjectionEnv::OpenExisting(const std::string& path) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY_ASSIGN(std::unique_ptr<File> base, base_->OpenExisting(path));
  const int file = TrackExisting(path);
  return std::unique_ptr<File>(std::make_unique<FaultInjectionFile>(this, std::move(base), file));
}

Result<std::string> FaultInjectionEnv::ReadWholeFile(const std::string& path) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY_ASSIGN(std::string bytes, base_->ReadWholeFile(path));
  bytes_read_ += bytes.size();
  return bytes;
}

Result<std::uint64_t> FaultInjectionEnv::FileSize(const std::string& path) {
  return base_->FileSize(path);
}

bool FaultInjectionEnv::Exists(const std::string& path) { return base_->Exists(path); }

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY(Tick());
  const int file = TrackExisting(from);
  std::string replaced;
  if (base_->Exists(to)) {
    // Keep the file being replaced, so the rename can be undone.
    const int old = TrackExisting(to);
    replaced = DirName(to) + "/" + std::string(kTrashPrefix) + TrashName();
    BL_TRY(base_->Rename(to, replaced));
    files_[old].path = replaced;
    file_at_.erase(to);
    file_at_[replaced] = old;
  }
  if (Status s = base_->Rename(from, to); !s.ok()) {
    if (!replaced.empty()) (void)base_->Rename(replaced, to);
    return s;
  }
  files_[file].path = to;
  file_at_.erase(from);
  file_at_[to] = file;
  journal_.push_back(DirOp{OpKind::kRename, DirName(to), file, from, to, replaced});
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY(Tick());
  if (!base_->Exists(path)) return base_->RemoveFile(path);  // the base Env's error
  const int file = TrackExisting(path);
  const std::string trash = DirName(path) + "/" + std::string(kTrashPrefix) + TrashName();
  BL_TRY(base_->Rename(path, trash));
  files_[file].path = trash;
  file_at_.erase(path);
  file_at_[trash] = file;
  journal_.push_back(DirOp{OpKind::kRemove, DirName(path), file, path, trash, {}});
  return Status::Ok();
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& dir) {
  BL_TRY_ASSIGN(std::vector<std::string> names, base_->ListDir(dir));
  std::erase_if(names, [](const std::string& n) { return n.starts_with(kTrashPrefix); });
  return names;
}

Status FaultInjectionEnv::CreateDir(const std::string& dir, unsigned mode) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY(Tick());
  return base_->CreateDir(dir, mode);
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  const std::lock_guard<std::mutex> lock(mu_);
  BL_TRY(Tick());
  if (fail_dir_syncs_) return Injected("injected directory fsync failure");
  BL_TRY(base_->SyncDir(dir));
  std::vector<bool> committed(journal_.size(), false);
  for (std::size_t i = 0; i < journal_.size(); ++i) {
    const DirOp& op = journal_[i];
    if (op.commit_dir != dir) continue;
    committed[i] = true;
    if (op.kind == OpKind::kRename) {
      // The file's new entry is durable, and with it the file itself.
      for (std::size_t j = 0; j < i; ++j) {
        if (journal_[j].file == op.file && journal_[j].kind == OpKind::kCreate) {
          committed[j] = true;
        }
      }
      if (!op.c.empty()) (void)base_->RemoveFile(op.c);
    } else if (op.kind == OpKind::kRemove) {
      // Gone for good: nothing earlier about this file can be undone.
      for (std::size_t j = 0; j < i; ++j) {
        if (journal_[j].file == op.file) committed[j] = true;
      }
      (void)base_->RemoveFile(op.b);
      file_at_.erase(op.b);
      files_.erase(op.file);
    }
  }
  std::vector<DirOp> left;
  for (std::size_t i = 0; i < journal_.size(); ++i) {
    if (!committed[i]) left.push_back(std::move(journal_[i]));
  }
  journal_ = std::move(left);
  return Status::Ok();
}

std::int64_t FaultInjectionEnv::NowMicros() {
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (fixed_now_ != 0) return fixed_now_;
  }
  return base_->NowMicros();
}

Status FaultInjectionEnv::DropUnsyncedData() {
  const std::lock_guard<std::mutex> lock(mu_);
  // File contents first, where the files are now; then the directory changes, newest first.
  for (auto& [file, state] : files_) {
    if (state.undo.empty() && state.size == state.synced_size) continue;
    if (!base_->Exists(state.path)) continue;
    BL_TRY_ASSIGN(std::string content, base_->ReadWholeFile(state.path));
    for (auto it = state.undo.rbegin(); it != state.undo.rend(); ++it) {
      if (it->offset + it->old_bytes.size() > content.size()) {
        content.resize(it->offset + it->old_bytes.size());
      }
      content.replace(it->offset, it->old_bytes.size(), it->old_bytes);
    }
    content.resize(state.synced_size);
    BL_TRY(base_->RemoveFile(state.path));
    BL_TRY_ASSIGN(std::unique_ptr<File> rewritten, base_->CreateExclusive(state.path));
    BL_TRY(rewritten->WriteAt(0, content));
    BL_TRY(rewritten->Sync());
  }
  for (auto it = journal_.rbegin(); it != journal_.rend(); ++it) {
    switch (it->kind) {
      case OpKind::kCreate:
        BL_TRY(base_->RemoveFile(it->a));
        break;
      case OpKind::kRename:
        BL_TRY(base_->Rename(it->b, it->a));
        if (!it->c.empty()) BL_TRY(base_->Rename(it->c, it->b));
        break;
      case OpKind::kRemove:
        BL_TRY(base_->Rename(it->b, it->a));
        break;
    }
  }
  journal_.clear();
  files_.clear();
  file_at_.clear();
  crashed_ = false;
  ops_until_crash_ = -1;
  return Status::Ok();
}

}  // namespace blindlist::spool
