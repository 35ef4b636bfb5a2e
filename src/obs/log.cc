
#include "obs/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace blindlist::net {
namespace {

// One mutex for the daemon name and for stderr, so lines never interleave.
std::mutex& LogMutex() {
  static std::mutex mu;
  return mu;
}
std::string& DaemonName() {
  static std::string name = "blindlist";
  return name;
}
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// RFC 3339, UTC, milliseconds: 2024-05-01T12:34:56.789Z
std::string NowRfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms.count() % 1000));
  return buf;
}

void WriteAll(const std::string& line) {
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t w = ::write(STDERR_FILENO, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a failing stderr
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
}

}  // namespace

void SetLogDaemonName(std::string name) {
  std::lock_guard lock(LogMutex());
  DaemonName() = std::move(name);
}

void SetLogLevel(LogLevel level) { g_min_level.store(static_cast<int>(level)); }

void Log(LogLevel level, std::string_view message,
         const std::vector<std::pair<std::string, std::string>>& fields) {
  if (static_cast<int>(level) < g_min_level.load()) return;
  nlohmann::ordered_json line;
  line["time"] = NowRfc3339();
  line["level"] = LevelName(level);
  {
    std::lock_guard lock(LogMutex());
    line["daemon"] = DaemonName();
  }
  line["msg"] = std::string(message);
  for (const auto& [key, value] : fields) {
    // A field never overwrites the fixed keys: a reader must trust time/level/msg.
    if (line.contains(key)) {
      line["field_" + key] = value;
    } else {
      line[key] = value;
    }
  }
  // Invalid UTF-8 (a peer-supplied string, say) becomes U+FFFD instead of throwing.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  std::lock_guard lock(LogMutex());
  WriteAll(text);
}

}  // namespace blindlist::net
