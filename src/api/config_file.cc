#include "api/config_file.h"

#include <toml++/toml.h>

#include <mutex>
#include <set>

namespace blindlist::api {

struct ConfigFile::Table {
  toml::table table;
  // "section.key" of every key a getter asked for, present or not: what the daemon knows.
  std::mutex mu;
  std::set<std::string, std::less<>> asked;

  const toml::node* Find(std::string_view section, std::string_view key) {
    std::string name = std::string(section) + "." + std::string(key);
    const toml::node* node = table.at_path(name).node();
    std::lock_guard<std::mutex> lock(mu);
    asked.insert(std::move(name));
    asked.insert(std::string(section));
    return node;
  }
};

Result<ConfigFile> ConfigFile::Load(const std::string& path) {
  ConfigFile f;
  f.path_ = path;
  try {
    auto t = std::make_shared<Table>();
    t->table = toml::parse_file(path);
    f.table_ = std::move(t);
  } catch (const toml::parse_error& e) {
    return MakeError("bad-config", path + ":" + std::to_string(e.source().begin.line) + ": " +
                                       std::string(e.description()));
  }
  return f;
}

namespace {
template <typename T>
Result<T> Get(ConfigFile::Table& t, const std::string& file, std::string_view section,
              std::string_view key, T fallback) {
  const toml::node* node = t.Find(section, key);
  if (node == nullptr) return fallback;
  auto v = node->value<T>();
  if (!v) {
    return MakeError("bad-config", file + ": [" + std::string(section) + "] " + std::string(key) +
                                       " has the wrong type");
  }
  return *v;
}
}  // namespace

Result<std::string> ConfigFile::String(std::string_view section, std::string_view key,
                                       std::string fallback) const {
  return Get<std::string>(*table_, path_, section, key, std::move(fallback));
}
Result<std::int64_t> ConfigFile::Int(std::string_view section, std::string_view key,
                                     std::int64_t fallback) const {
  return Get<std::int64_t>(*table_, path_, section, key, fallback);
}
Result<double> ConfigFile::Double(std::string_view section, std::string_view key,
                                  double fallback) const {
  return Get<double>(*table_, path_, section, key, fallback);
}
Result<bool> ConfigFile::Bool(std::string_view section, std::string_view key, bool fallback) const {
  return Get<bool>(*table_, path_, section, key, fallback);
}

Result<std::vector<std::string>> ConfigFile::Strings(std::string_view section,
                                                     std::string_view key) const {
  std::vector<std::string> out;
  const toml::node* node = table_->Find(section, key);
  if (node == nullptr) return out;
  const toml::array* arr = node->as_array();
  if (arr == nullptr) {
    return MakeError("bad-config", path_ + ": [" + std::string(section) + "] " + std::string(key) +
                                       " must be a list");
  }
  for (const auto& item : *arr) {
    auto s = item.value<std::string>();
    if (!s) {
      return MakeError("bad-config", path_ + ": [" + std::string(section) + "] " +
                                         std::string(key) + " must hold strings");
    }
    out.push_back(*s);
  }
  return out;
}

namespace {
// "FILE: unknown key "KEY" in section [SECTION]" and its kin: `parts` in order after "FILE: ".
Error UnknownKey(const std::string& file, std::initializer_list<std::string_view> parts) {
  std::string message = file + ": ";
  for (std::string_view part : parts) message += part;
  return MakeError("bad-config", message);
}
}  // namespace

Status ConfigFile::CheckKnownKeys() const {
  std::lock_guard<std::mutex> lock(table_->mu);
  const auto& asked = table_->asked;
  for (const auto& [name, node] : table_->table) {
    const std::string_view section = name.str();
    const toml::table* keys = node.as_table();
    if (keys == nullptr)
      return UnknownKey(path_, {"unknown key \"", section, "\" outside any section"});
    const bool known_section = asked.contains(section);
    std::string dotted(section);
    dotted += '.';
    const std::size_t prefix = dotted.size();
    for (const auto& [key_name, value] : *keys) {
      const std::string_view key = key_name.str();
      if (!known_section) {
        return UnknownKey(path_, {"unknown section [", section, "] (key \"", key, "\")"});
      }
      dotted.resize(prefix);
      dotted += key;
      if (!asked.contains(dotted))
        return UnknownKey(path_, {"unknown key \"", key, "\" in section [", section, "]"});
    }
    if (!known_section && keys->empty())
      return UnknownKey(path_, {"unknown section [", section, "]"});
  }
  return Status::Ok();
}

Status ParseListen(const std::string& listen, net::HttpsServerConfig& server) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return MakeError("bad-config", "listen must be ADDRESS:PORT, not \"" + listen + "\"");
  }
  std::string address = listen.substr(0, colon);
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535)
    return MakeError("bad-config", "listen has a bad port: \"" + listen + "\"");
  server.listen_address = address;
  server.port = static_cast<std::uint16_t>(port);
  return Status::Ok();
}

Result<CommonConfig> ConfigFile::Common(const std::string& default_listen,
                                        const std::string& default_store) const {
  CommonConfig c;
  BL_TRY_ASSIGN(std::string listen, String("server", "listen", default_listen));
  Status st = ParseListen(listen, c.server);
  if (!st.ok()) return MakeError("bad-config", path_ + ": [server] " + st.error().message);
  BL_TRY_ASSIGN(c.server.cert_file, String("server", "certificate", ""));
  BL_TRY_ASSIGN(c.server.key_file, String("server", "private_key", ""));
  BL_TRY_ASSIGN(std::int64_t threads, Int("server", "threads", c.server.threads));
  BL_TRY_ASSIGN(c.store_url, String("store", "url", default_store));
  BL_TRY_ASSIGN(c.log_level, String("log", "level", "info"));
  BL_TRY_ASSIGN(std::int64_t max_body, Int("limits", "max_body_bytes",
                                           static_cast<std::int64_t>(c.server.max_body_bytes)));
  BL_TRY_ASSIGN(std::int64_t max_header, Int("limits", "max_header_bytes",
                                             static_cast<std::int64_t>(c.server.max_header_bytes)));
  BL_TRY_ASSIGN(std::int64_t read_timeout_ms,
                Int("limits", "read_timeout_ms", c.server.read_timeout.count()));
  BL_TRY_ASSIGN(std::int64_t max_conn, Int("limits", "max_connections", c.server.max_connections));
  BL_TRY_ASSIGN(std::int64_t max_conn_peer,
                Int("limits", "max_connections_per_peer", c.server.max_connections_per_peer));
  BL_TRY_ASSIGN(c.rate_per_second, Double("limits", "rate_per_second", c.rate_per_second));
  BL_TRY_ASSIGN(c.rate_burst, Double("limits", "rate_burst", c.rate_burst));
  BL_TRY_ASSIGN(c.address_rate_factor,
                Double("limits", "address_rate_factor", c.address_rate_factor));
  BL_TRY_ASSIGN(c.refusal_audit_seconds,
                Double("limits", "refusal_audit_seconds", c.refusal_audit_seconds));
  if (threads < 1 || threads > 256)
    return MakeError("bad-config", path_ + ": [server] threads must be 1..256");
  if (max_body < 1024 || max_header < 1024 || read_timeout_ms < 100 || max_conn < 1 ||
      max_conn_peer < 1) {
    return MakeError("bad-config", path_ + ": [limits] a value is out of range");
  }
  if (c.rate_per_second <= 0 || c.rate_burst < 1) {
    return MakeError("bad-config",
                     path_ + ": [limits] rate_per_second and rate_burst must be positive");
  }
  if (c.address_rate_factor < 1 || c.refusal_audit_seconds < 0.1 ||
      c.refusal_audit_seconds > 3600) {
    return MakeError("bad-config", path_ +
                                       ": [limits] address_rate_factor must be at least 1 and "
                                       "refusal_audit_seconds 0.1..3600");
  }
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warning" &&
      c.log_level != "error") {
    return MakeError("bad-config", path_ + ": [log] level must be debug, info, warning or error");
  }
  c.server.threads = static_cast<int>(threads);
  c.server.max_body_bytes = static_cast<std::size_t>(max_body);
  c.server.max_header_bytes = static_cast<std::size_t>(max_header);
  c.server.read_timeout = std::chrono::milliseconds(read_timeout_ms);
  c.server.max_connections = static_cast<int>(max_conn);
  c.server.max_connections_per_peer = static_cast<int>(max_conn_peer);
  return c;
}

}  // namespace blindlist::api
