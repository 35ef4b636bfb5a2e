#include "io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

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
}  // namespace

Result<std::string> ReadInput(const std::string& path, std::size_t limit) {
  bool use_stdin = path.empty() || path == "-";
  int fd = use_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return MakeError("io", "cannot open " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      if (!use_stdin) ::close(fd);
      return MakeError("io", "cannot read " + (use_stdin ? std::string("standard input") : path) +
                                 ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) {
      if (!use_stdin) ::close(fd);
      return MakeError("too-large", "input is larger than " + std::to_string(limit) + " bytes");
    }
  }
  if (!use_stdin) ::close(fd);
  return out;
}

Status WriteOutput(const std::string& path, std::string_view data) {
  if (path.empty() || path == "-") return WriteAll(STDOUT_FILENO, data, "standard output");
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError("io", "cannot create " + tmp + ": " + std::strerror(errno));
  Status st = WriteAll(fd, data, path);
  if (st.ok() && ::fsync(fd) != 0)
    st = MakeError("io", "cannot sync " + path + ": " + std::strerror(errno));
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = MakeError("io", "cannot rename into " + path + ": " + std::strerror(errno));
  }
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

}  // namespace blindlist::cli
