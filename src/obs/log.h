// JSON lines on stderr: {"time":..., "level":..., "daemon":..., "msg":..., ...fields}.
// Never pass key material, tokens or message content as a field.
// Thread-safety: each call writes one whole line atomically.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blindlist::net {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void SetLogDaemonName(std::string name);
void SetLogLevel(LogLevel level);
void Log(LogLevel level, std::string_view message,
         const std::vector<std::pair<std::string, std::string>>& fields = {});

}  // namespace blindlist::net
