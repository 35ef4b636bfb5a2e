#include "io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace blindlist::cli {

namespace {
Status WriteAll(int fd, std::string_view data, const std::string& name) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError("io", "cannot write " + name + ": " + std::strerror(errno));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

bool IsStdio(const std::string& path) { return path.empty() || path == "-"; }

Error TooLarge(std::size_t limit) {
  return MakeError("too-large", "input is larger than " + std::to_string(limit) + " bytes");
}

// Large buffers are mapped rather than allocated, so they can ask for huge pages.
constexpr std::size_t kPage = 4096;
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kHugeFrom = std::size_t{4} << 20;
}  // namespace

Result<std::string> ReadInput(const std::string& path, std::size_t limit) {
  BL_TRY_ASSIGN(Input in, Input::Read(path, limit));
  return std::string(in.text());
}

Status WriteOutput(const std::string& path, std::string_view data, mode_t mode) {
  BL_TRY_ASSIGN(Output out, Output::Open(path, mode));
  BL_TRY(out.Write(data));
  return out.Commit();
}

// ---- Input ----

Input::Input(Input&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)),
      wipe_(std::exchange(other.wipe_, false)) {}

Input::~Input() {
  if (data_ == nullptr) return;
  if (wipe_) ::explicit_bzero(data_, size_);
  ::munmap(data_, capacity_);
}

Status Input::Reserve(std::size_t capacity) {
  if (capacity <= capacity_) return Status::Ok();
  const bool huge = capacity >= kHugeFrom;
  const std::size_t unit = huge ? kHugePage : kPage;
  capacity = (capacity + unit - 1) / unit * unit;
  void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return MakeError("io", std::string("out of memory: ") + std::strerror(errno));
  if (huge) ::madvise(p, capacity, MADV_HUGEPAGE);  // a hint: without it, ordinary pages
  auto* bytes = static_cast<char*>(p);
  if (size_ > 0) std::memcpy(bytes, data_, size_);
  if (data_ != nullptr) ::munmap(data_, capacity_);
  data_ = bytes;
  capacity_ = capacity;
  return Status::Ok();
}

Result<Input> Input::Read(const std::string& path, std::size_t limit) {
  const bool use_stdin = IsStdio(path);
  const int fd = use_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return MakeError("io", "cannot open " + path + ": " + std::strerror(errno));
  struct FdCloser {
    int fd;
    bool close;
    ~FdCloser() {
      if (close) ::close(fd);
    }
  } closer{fd, !use_stdin};
  Input in;
  struct stat st {};
  // A regular file is read in one go into a buffer of its size (plus one byte, to see EOF).
  std::size_t expected = 0;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    expected = static_cast<std::size_t>(st.st_size);
    if (expected > limit) return TooLarge(limit);
  }
  BL_TRY(in.Reserve(expected + 65536));
  while (true) {
    if (in.size_ == in.capacity_) BL_TRY(in.Reserve(in.capacity_ * 2));
    const ssize_t n = ::read(fd, in.data_ + in.size_, in.capacity_ - in.size_);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return MakeError("io", "cannot read " + (use_stdin ? std::string("standard input") : path) +
                                 ": " + std::strerror(errno));
    }
    if (n == 0) break;
    in.size_ += static_cast<std::size_t>(n);
    if (in.size_ > limit) return TooLarge(limit);
  }
  return in;
}

// ---- Output ----

Output::Output(Output&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_(std::move(other.tmp_)),
      fd_(std::exchange(other.fd_, -1)) {}

Output::~Output() {
  if (fd_ >= 0 && !tmp_.empty()) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

Result<Output> Output::Open(const std::string& path, mode_t mode) {
  Output out;
  if (IsStdio(path)) {
    out.fd_ = STDOUT_FILENO;
    return out;
  }
  out.path_ = path;
  out.tmp_ = path + ".tmp." + std::to_string(::getpid());
  out.fd_ = ::open(out.tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out.fd_ < 0) {
    return MakeError("io", "cannot create " + out.tmp_ + ": " + std::strerror(errno));
  }
  // Created 0600 and only then given its mode, so the umask neither narrows a public file (a
  // root shell's `umask 077`) nor is a secret one ever wider for a moment.
  if (::fchmod(out.fd_, mode) != 0) {
    return MakeError("io", "cannot set the mode of " + out.tmp_ + ": " + std::strerror(errno));
  }
  return out;
}

Status Output::Write(std::string_view data) {
  return WriteAll(fd_, data, path_.empty() ? std::string("standard output") : path_);
}

Status Output::Commit() {
  if (path_.empty()) return Status::Ok();
  Status st = Status::Ok();
  if (::fsync(fd_) != 0) st = MakeError("io", "cannot sync " + path_ + ": " + std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (st.ok() && ::rename(tmp_.c_str(), path_.c_str()) != 0) {
    st = MakeError("io", "cannot rename into " + path_ + ": " + std::strerror(errno));
  }
  if (!st.ok()) ::unlink(tmp_.c_str());
  return st;
}

}  // namespace blindlist::cli
