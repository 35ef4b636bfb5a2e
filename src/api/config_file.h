// TOML configuration files for the daemons (toml++ stays in the .cc). The
// sections every daemon shares — [server], [limits], [store], [log] — are read
// here once; each daemon reads its own sections with the typed getters.
// Errors name the file, the section, the key and what is wrong.
// Thread-safety: the getters and CheckKnownKeys may be called from any thread (the set of
// keys asked for is locked).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blindlist/result.h"
#include "net/https_server.h"

namespace blindlist::api {

struct CommonConfig {
  net::HttpsServerConfig server;
  std::string store_url;
  std::string log_level = "info";
  double rate_per_second = 50;  // per caller (a verified credential, else the peer address)
  double rate_burst = 100;
  // The bucket every request is charged first, before any credential is looked at,
  // is per peer address and holds this many times the per-caller rate and burst
  // (members behind one address share it).
  double address_rate_factor = 4;
  // Refused requests (429, and what the HTTPS layer refuses) are audited in aggregate,
  // one record per caller, group, operation and result every this many seconds.
  double refusal_audit_seconds = 60;
};

class ConfigFile {
 public:
  static Result<ConfigFile> Load(const std::string& path);

  // Each returns `fallback` when the key is absent and an error when it has the wrong type.
  Result<std::string> String(std::string_view section, std::string_view key,
                             std::string fallback) const;
  Result<std::int64_t> Int(std::string_view section, std::string_view key,
                           std::int64_t fallback) const;
  Result<double> Double(std::string_view section, std::string_view key, double fallback) const;
  Result<bool> Bool(std::string_view section, std::string_view key, bool fallback) const;
  Result<std::vector<std::string>> Strings(std::string_view section, std::string_view key) const;

  // [server] listen/certificate/private_key/threads, [limits], [store] url, [log] level.
  // `default_listen` and `default_store` apply when the file leaves them out.
  Result<CommonConfig> Common(const std::string& default_listen,
                              const std::string& default_store) const;

  // Call once every key the daemon knows has been asked for (read, or left at its
  // default): a key or section nobody asked for is a typo, an error naming the file, the
  // section and the key (as postconf warns of unused parameters).
  Status CheckKnownKeys() const;

  const std::string& path() const { return path_; }

  struct Table;

 private:
  std::string path_;
  std::shared_ptr<Table> table_;
};

// "ADDRESS:PORT" (IPv6 in brackets) into the server config.
Status ParseListen(const std::string& listen, net::HttpsServerConfig& server);

}  // namespace blindlist::api
