// What every blindlist daemon's main() does the same way: read the master key,
// report a fatal error, and serve until SIGTERM/SIGINT (drain) with SIGHUP
// reloading. Signals are taken synchronously by the calling thread.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "net/https_server.h"
#include "obs/log.h"

namespace blindlist::api {

// 64 hex digits from `file`, or from env BLINDLIST_MASTER_KEY when no file is set
// (the variable is then removed from the environment).
Result<SecretBytes> LoadMasterKey(const std::string& file);

// Refuses to go on with a secret file (a private key, the master key, a CA passphrase) that
// group or others may read or write: "bad-config", naming the file and its mode in one line.
// Empty paths are skipped; a file that cannot be examined is left to its loader to report.
Status CheckSecretFileModes(std::initializer_list<std::string_view> paths);

// Logs the error and prints "DAEMON: MESSAGE" on stderr; returns the exit status 1.
int Fatal(const std::string& daemon, const Error& error);

// A daemon's main(): `run`'s exit status. Nothing is expected to throw this far; if something
// does, the daemon fails with one line on stderr ("DAEMON: internal error: WHAT") and status 1.
int RunMain(const char* daemon, int (*run)(int, char**), int argc, char** argv);

// Writes the port number to `path` atomically (temporary file, rename), for
// scripts and tests that start a daemon on port 0.
Status WritePortFile(const std::string& path, std::uint16_t port);

net::LogLevel ParseLogLevel(const std::string& level);

// Starts `server`, writes its port to `port_file` (when set) and logs where it
// listens. The error, if any, is for Fatal().
Status StartServer(net::HttpsServer& server, const net::HttpsServerConfig& config,
                   const std::string& port_file, const std::string& store_backend);

// Blocks SIGTERM, SIGINT and SIGHUP in this thread (call before starting
// threads so they inherit the mask).
void BlockServerSignals();
// The signal loop of every daemon: waits for the signals BlockServerSignals blocked; SIGHUP
// calls `on_reload` and waits on; SIGTERM or SIGINT is logged and returns, for the caller to
// drain and stop what it runs.
void WaitForTermination(const std::function<void()>& on_reload);
// WaitForTermination, then stops `server` (draining in-flight requests).
void ServeUntilTerminated(net::HttpsServer& server, const std::function<void()>& on_reload);

// ServeUntilTerminated with the SIGHUP reload groupd and certd share: `load()`
// re-reads the configuration (a Result of a config with a `common` member); on
// success the server takes its certificates and limits and `apply(config)` gives
// the service its new limits; on failure the old configuration stays.
template <typename Load, typename Apply>
void ServeWithReload(net::HttpsServer& server, Load load, Apply apply) {
  ServeUntilTerminated(server, [&] {
    auto fresh = load();
    if (!fresh.ok()) {
      net::Log(net::LogLevel::kError, "reload failed; keeping the old configuration",
               {{"error", fresh.error().message}});
      return;
    }
    Status reloaded = server.ReloadCertificates();
    server.UpdateLimits(fresh->common.server);
    apply(*fresh);
    net::Log(reloaded.ok() ? net::LogLevel::kInfo : net::LogLevel::kError,
             "reloaded certificates and limits",
             {{"certificates", reloaded.ok() ? "ok" : reloaded.error().message}});
  });
}

// The tail of groupd's and certd's Run(): refusals go to the service's audit, the metrics
// token is loaded, the server starts (its port written to `port_file`), and it serves until
// SIGTERM with ServeWithReload, each reload giving the service its new limits and token.
// `Service` has AuditRefusal, metrics_access, store() and UpdateLimits(config). The error, if
// any, is for Fatal().
template <typename Service, typename Load>
Status ServeService(net::HttpsServer& server, Service& service,
                    const net::HttpsServerConfig& server_config,
                    const std::string& metrics_token_file, const std::string& port_file,
                    Load load) {
  server.SetRefusalObserver([&service](const net::HttpRequest& r, const net::HttpResponse& resp) {
    service.AuditRefusal(r, resp);
  });
  BL_TRY(service.metrics_access.Load(metrics_token_file));
  BL_TRY(StartServer(server, server_config, port_file, service.store().BackendName()));
  ServeWithReload(server, load, [&service](const auto& fresh) {
    service.UpdateLimits(fresh);
    service.metrics_access.Reload(fresh.common.metrics_token_file);
  });
  return Status::Ok();
}

}  // namespace blindlist::api
