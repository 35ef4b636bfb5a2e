// The spool's seam to the file system and the clock, as LevelDB's Env: the spool does all its
// I/O through it, so tests can swap in a FaultInjectionEnv that fails writes or fsyncs and drops
// whatever was not made durable, then check that nothing committed was lost.
// Thread-safety: Env::Default() is safe to use from many threads. A File is used by one thread
// at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/result.h"

namespace blindlist::spool {

// An open file: positioned reads and writes (pread/pwrite) and fsync. Closed when destroyed.
class File {
 public:
  virtual ~File() = default;
  virtual Status WriteAt(std::uint64_t offset, std::string_view data) = 0;
  // Reads up to `n` bytes at `offset`; fewer only at the end of the file.
  virtual Result<std::string> ReadAt(std::uint64_t offset, std::size_t n) = 0;
  virtual Status Sync() = 0;  // fsync: data and size are durable on success
};

class Env {
 public:
  virtual ~Env() = default;

  // O_CREAT|O_EXCL, mode 0600: fails if the name exists, so two writers never share a file.
  virtual Result<std::unique_ptr<File>> CreateExclusive(const std::string& path) = 0;
  // An existing file, for reading and in-place updates.
  virtual Result<std::unique_ptr<File>> OpenExisting(const std::string& path) = 0;
  // The whole file in one string (one allocation of the file's size).
  virtual Result<std::string> ReadWholeFile(const std::string& path) = 0;
  virtual Result<std::uint64_t> FileSize(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // rename(2): atomic, replaces `to` if it exists. Durable after SyncDir of `to`'s directory.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // The names in `dir` (not "." or ".."), unsorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // mkdir with the given mode; success if the directory already exists.
  virtual Status CreateDir(const std::string& dir, unsigned mode) = 0;
  // fsync of the directory, so entries created, renamed or removed in it are durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Wall clock, microseconds since the Unix epoch.
  virtual std::int64_t NowMicros() = 0;

  // The real POSIX Env; never destroyed.
  static Env* Default();
};

}  // namespace blindlist::spool
