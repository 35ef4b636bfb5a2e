// The command line groupd and certd share: the configuration file and the flags that override
// its [server] listen, [store] url and log level, and the port file for tests and scripts.
// Included only by the daemons' main.cc (it pulls in CLI11).
// Thread-safety: call from main() before any thread starts.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "api/config_file.h"
#include "api/daemon.h"
#include "blindlist/result.h"
#include "obs/log.h"

namespace blindlist::api {

struct DaemonFlags {
  std::string config_file;
  std::string listen;
  std::string store_url;
  std::string log_level;
  std::string port_file;
};

inline void AddDaemonFlags(CLI::App& app, DaemonFlags& flags) {
  app.add_option("-c,--config", flags.config_file, "TOML configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--listen", flags.listen, "Override [server] listen (ADDRESS:PORT)");
  app.add_option("--store", flags.store_url,
                 "Override [store] url (sqlite:PATH or postgresql://...)");
  app.add_option("--log-level", flags.log_level, "debug, info, warning or error");
  app.add_option("--port-file", flags.port_file,
                 "Write the bound port to FILE once listening (for listen port 0)");
}

// The overrides applied to a loaded configuration (one with a `common` CommonConfig), and the
// log level set from the result. Errors: "usage" for a bad --listen.
template <typename Config>
Status ApplyDaemonFlags(const DaemonFlags& flags, Config& config) {
  if (!flags.listen.empty()) {
    Status st = ParseListen(flags.listen, config.common.server);
    if (!st.ok()) return MakeError("usage", "--listen: " + st.error().message);
  }
  if (!flags.store_url.empty()) config.common.store_url = flags.store_url;
  if (!flags.log_level.empty()) config.common.log_level = flags.log_level;
  net::SetLogLevel(ParseLogLevel(config.common.log_level));
  return Status::Ok();
}

}  // namespace blindlist::api
