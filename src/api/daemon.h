// What every blindlist daemon's main() does the same way: read the master key,
// report a fatal error, and serve until SIGTERM/SIGINT (drain) with SIGHUP
// reloading. Signals are taken synchronously by the calling thread.
#pragma once

#include <functional>
#include <string>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "net/https_server.h"
#include "net/log.h"

namespace blindlist::api {

// 64 hex digits from `file`, or from env BLINDLIST_MASTER_KEY when no file is set
// (the variable is then removed from the environment).
Result<SecretBytes> LoadMasterKey(const std::string& file);

// Logs the error and prints "DAEMON: MESSAGE" on stderr; returns the exit status 1.
int Fatal(const std::string& daemon, const Error& error);

// Writes the port number to `path` atomically (temporary file, rename), for
// scripts and tests that start a daemon on port 0.
Status WritePortFile(const std::string& path, std::uint16_t port);

net::LogLevel ParseLogLevel(const std::string& level);

// Blocks SIGTERM, SIGINT and SIGHUP in this thread (call before starting
// threads so they inherit the mask).
void BlockServerSignals();
// Waits for signals: SIGHUP calls `on_reload`; SIGTERM/SIGINT stop `server`
// (draining in-flight requests) and return.
void ServeUntilTerminated(net::HttpsServer& server, const std::function<void()>& on_reload);

}  // namespace blindlist::api
