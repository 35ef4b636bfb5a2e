// An Env for crash and fault tests (as LevelDB's fault_injection_test): it forwards to a real Env
// and remembers what is not yet durable: file bytes written since the file's last fsync, and
// directory entries created, renamed or removed since their directory's last fsync.
// DropUnsyncedData() then puts the files back as a power cut would leave them. It can also fail
// writes or fsyncs on demand, or "crash" after a number of operations (every later write, fsync,
// rename or removal fails, as if the process had died). Usable by any module's tests.
// Thread-safety: every method may be called from any thread (one internal mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/result.h"
#include "spool/env.h"

namespace blindlist::spool {

class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(Env* base = Env::Default());
  ~FaultInjectionEnv() override;
  FaultInjectionEnv(const FaultInjectionEnv&) = delete;
  FaultInjectionEnv& operator=(const FaultInjectionEnv&) = delete;

  // Faults. A failed write writes nothing; a failed fsync makes nothing durable.
  void FailWrites(bool on);
  void FailFileSyncs(bool on);
  void FailDirSyncs(bool on);
  // The next `operations` mutating calls succeed, then every one fails ("injected-crash") until
  // DropUnsyncedData(). Negative: never.
  void CrashAfter(std::int64_t operations);
  bool crashed() const;

  // Reverts every file and directory to its last durable state, and clears the crash.
  Status DropUnsyncedData();

  // A fixed clock (microseconds) instead of the base Env's; 0 uses the base Env again.
  void SetNowMicros(std::int64_t micros);

  // Bytes the caller read and wrote through File objects, for cost checks.
  std::uint64_t bytes_read() const;
  std::uint64_t bytes_written() const;
  void ResetCounters();

  Result<std::unique_ptr<File>> CreateExclusive(const std::string& path) override;
  Result<std::unique_ptr<File>> OpenExisting(const std::string& path) override;
  Result<std::string> ReadWholeFile(const std::string& path) override;
  Result<std::uint64_t> FileSize(const std::string& path) override;
  bool Exists(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir, unsigned mode) override;
  Status SyncDir(const std::string& dir) override;
  std::int64_t NowMicros() override;

 private:
  friend class FaultInjectionFile;

  // Bytes overwritten since the last fsync, to put back.
  struct Undo {
    std::uint64_t offset = 0;
    std::string old_bytes;
  };
  struct FileState {
    std::string path;  // where the file is now (a trash name once removed)
    std::uint64_t size = 0;
    std::uint64_t synced_size = 0;
    std::vector<Undo> undo;
  };
  enum class OpKind { kCreate, kRename, kRemove };
  // A directory change not yet made durable by SyncDir(commit_dir).
  struct DirOp {
    OpKind kind = OpKind::kCreate;
    std::string commit_dir;
    int file = 0;
    std::string a;  // create: path; rename: from; remove: path
    std::string b;  // rename: to; remove: trash name
    std::string c;  // rename: trash name of the file it replaced, if any
  };

  Status Tick();  // counts a mutating operation; fails once crashed
  int TrackExisting(const std::string& path);
  std::string TrashName();
  Status FileWriteAt(File& base, int file, std::uint64_t offset, std::string_view data);
  Status FileSync(File& base, int file);
  Result<std::string> FileReadAt(File& base, std::uint64_t offset, std::size_t n);

  Env* const base_;
  mutable std::mutex mu_;
  bool fail_writes_ = false;
  bool fail_file_syncs_ = false;
  bool fail_dir_syncs_ = false;
  std::int64_t ops_until_crash_ = -1;
  bool crashed_ = false;
  std::int64_t fixed_now_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::uint64_t bytes_written_ = 0;
  int next_file_ = 1;
  int next_trash_ = 1;
  std::map<int, FileState> files_;
  std::map<std::string, int> file_at_;  // current path -> file
  std::vector<DirOp> journal_;
};

}  // namespace blindlist::spool
