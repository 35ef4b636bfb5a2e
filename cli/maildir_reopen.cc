#include "maildir_reopen.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include "io.h"

namespace blindlist::cli {
namespace {

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return MakeError("io", "cannot open " + dir + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return MakeError("io", "cannot sync " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

Result<std::vector<std::string>> ListFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return MakeError("usage", dir + ": " + std::strerror(errno));
  std::vector<std::string> out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// A new unique Maildir base name (time.M<usec>P<pid>Q<n>.host), as Dovecot and maildrop make.
std::string UniqueName(int n) {
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  for (char* p = host; *p != '\0'; ++p) {
    if (*p == '/' || *p == ':' || *p == ',') *p = '_';
  }
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::to_string(ts.tv_sec) + ".M" + std::to_string(ts.tv_nsec / 1000) + "P" +
         std::to_string(::getpid()) + "Q" + std::to_string(n) + "." + host;
}

// ":2,FLAGS" of a cur/ name (kept: the reader's seen, answered ... flags), or "".
std::string InfoOf(const std::string& name) {
  const std::size_t colon = name.rfind(':');
  return colon == std::string::npos ? std::string() : name.substr(colon);
}

std::string Join(std::string_view a, std::string_view b, std::string_view c = {}) {
  std::string out;
  out.reserve(a.size() + b.size() + c.size() + 1);
  out.append(a).append("/").append(b).append(c);
  return out;
}

}  // namespace

Result<ReopenCounts> ReopenMaildir(
    const std::string& dir, const std::function<bool(const std::string& message)>& is_candidate,
    const std::function<Status(const std::string& message, const std::string& out_path)>&
        open_into) {
  for (const char* sub : {"/tmp", "/new", "/cur"}) {
    struct stat st {};
    if (::stat((dir + sub).c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return MakeError("usage", dir + " is not a Maildir (no " + (dir + sub) + ")");
  }
  ReopenCounts counts;
  int serial = 0;
  for (const char* sub : {"new", "cur"}) {
    const std::string folder = Join(dir, sub);
    BL_TRY_ASSIGN(std::vector<std::string> names, ListFiles(folder));
    for (const std::string& name : names) {
      const std::string path = Join(folder, name);
      auto message = ReadInput(path);
      if (!message.ok() || !is_candidate(*message)) {
        ++counts.skipped;
        continue;
      }
      const std::string base = UniqueName(serial++);
      const std::string tmp = Join(dir, "tmp/", base);
      Status opened = open_into(*message, tmp);
      if (!opened.ok()) {
        ::unlink(tmp.c_str());
        std::fprintf(stderr, "blindlist: %s: %s; kept as it is\n", path.c_str(),
                     opened.error().message.c_str());
        ++counts.failed;
        continue;
      }
      const std::string final_path = Join(folder, base, InfoOf(name));
      if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
        std::fprintf(stderr, "blindlist: cannot move %s into %s: %s; kept as it is\n", tmp.c_str(),
                     folder.c_str(), std::strerror(errno));
        ::unlink(tmp.c_str());
        ++counts.failed;
        continue;
      }
      // The opened post is durable before the original goes.
      BL_TRY(SyncDir(folder));
      if (::unlink(path.c_str()) != 0) {
        // A reader renamed it meanwhile (a flag change): both copies stay, nothing is lost.
        std::fprintf(stderr, "blindlist: opened %s as %s but cannot remove the original: %s\n",
                     path.c_str(), final_path.c_str(), std::strerror(errno));
      }
      BL_TRY(SyncDir(folder));
      ++counts.opened;
    }
  }
  return counts;
}

}  // namespace blindlist::cli
