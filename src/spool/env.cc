// The POSIX Env: plain system calls, retried on EINTR, every failure named with its path.

#include "spool/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blindlist::spool {
namespace {

Error IoError(std::string_view what, const std::string& path, int err) {
  return MakeError("spool-io", std::string(what) + " " + path + ": " + std::strerror(err));
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Status WriteAt(std::uint64_t offset, std::string_view data) override {
    while (!data.empty()) {
      const ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("write", path_, errno);
      }
      data.remove_prefix(static_cast<std::size_t>(n));
      offset += static_cast<std::uint64_t>(n);
    }
    return Status::Ok();
  }

  Result<std::string> ReadAt(std::uint64_t offset, std::size_t n) override {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, out.data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return IoError("read", path_, errno);
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
  }

  Status Sync() override {
    if (::fsync(fd_) != 0) return IoError("fsync", path_, errno);
    return Status::Ok();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> CreateExclusive(const std::string& path) override {
    return Open(path, O_RDWR | O_CREAT | O_EXCL);
  }

  Result<std::unique_ptr<File>> OpenExisting(const std::string& path) override {
    return Open(path, O_RDWR);
  }

  Result<std::string> ReadWholeFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open", path, errno);
    PosixFile file(fd, path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return IoError("stat", path, errno);
    return file.ReadAt(0, static_cast<std::size_t>(st.st_size));
  }

  Result<std::uint64_t> FileSize(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return IoError("stat", path, errno);
    return static_cast<std::uint64_t>(st.st_size);
  }

  bool Exists(const std::string& path) override {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return IoError("rename", from + " to", errno);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return IoError("unlink", path, errno);
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return IoError("opendir", dir, errno);
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, &::closedir);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(d)) {
      const std::string_view name(entry->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    if (errno != 0) return IoError("readdir", dir, errno);
    return names;
  }

  Status CreateDir(const std::string& dir, unsigned mode) override {
    if (::mkdir(dir.c_str(), static_cast<mode_t>(mode)) == 0) return Status::Ok();
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return Status::Ok();
    }
    return IoError("mkdir", dir, err);
  }

  Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return IoError("open directory", dir, errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return IoError("fsync directory", dir, err);
    return Status::Ok();
  }

  std::int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

 private:
  static Result<std::unique_ptr<File>> Open(const std::string& path, int flags) {
    int fd = -1;
    do {
      fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return IoError("open", path, errno);
    return std::unique_ptr<File>(std::make_unique<PosixFile>(fd, path));
  }
};

}  // namespace

Env* Env::Default() {
  static auto* env = new PosixEnv();  // NOLINT: never destroyed, shared by all threads
  return env;
}

}  // namespace blindlist::spool
