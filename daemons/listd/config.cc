#include "config.h"

#include <charconv>

#include "api/config_file.h"

namespace blindlist::listd {
namespace {

Error Bad(const std::string& path, const std::string& what) {
  return MakeError("bad-config", path + ": " + what);
}

Result<net::SmtpServerConfig> ReadListener(const api::ConfigFile& file, std::string_view section,
                                           const std::string& default_listen, bool* enabled) {
  net::SmtpServerConfig c;
  c.protocol = section == "lmtp" ? net::SmtpServerConfig::Protocol::kLmtp
                                 : net::SmtpServerConfig::Protocol::kSmtp;
  BL_TRY_ASSIGN(std::string listen, file.String(section, "listen", default_listen));
  *enabled = !listen.empty();
  if (*enabled) {
    Status st = ParseHostPort(listen, c.listen_address, c.port);
    if (!st.ok())
      return Bad(file.path(), "[" + std::string(section) + "] listen: " + st.error().message);
  }
  BL_TRY_ASSIGN(c.hostname, file.String("smtp", "hostname", c.hostname));
  BL_TRY_ASSIGN(c.cert_file, file.String("smtp", "certificate", ""));
  BL_TRY_ASSIGN(c.key_file, file.String("smtp", "private_key", ""));
  BL_TRY_ASSIGN(std::int64_t max_message, file.Int("smtp", "max_message_bytes",
                                                   static_cast<std::int64_t>(c.max_message_bytes)));
  BL_TRY_ASSIGN(std::int64_t max_rcpt, file.Int("smtp", "max_recipients", c.max_recipients));
  BL_TRY_ASSIGN(std::int64_t threads, file.Int("smtp", "threads", c.threads));
  BL_TRY_ASSIGN(std::int64_t max_conn, file.Int("smtp", "max_connections", c.max_connections));
  BL_TRY_ASSIGN(std::int64_t timeout_s, file.Int("smtp", "command_timeout_seconds", 300));
  if (c.cert_file.empty() != c.key_file.empty())
    return Bad(file.path(), "[smtp] certificate and private_key go together");
  if (max_message < 1024 || max_rcpt < 1 || threads < 1 || threads > 64 || max_conn < 1 ||
      timeout_s < 1) {
    return Bad(file.path(), "[smtp] a limit is out of range");
  }
  c.max_message_bytes = static_cast<std::size_t>(max_message);
  c.max_recipients = static_cast<int>(max_rcpt);
  c.threads = static_cast<int>(threads);
  c.max_connections = static_cast<int>(max_conn);
  c.command_timeout = std::chrono::seconds(timeout_s);
  return c;
}

Result<RequestConfig> ReadRequest(const api::ConfigFile& file) {
  RequestConfig r;
  BL_TRY_ASSIGN(r.enabled, file.Bool("request", "enabled", r.enabled));
  BL_TRY_ASSIGN(r.owner, file.String("request", "owner", ""));
  BL_TRY_ASSIGN(std::int64_t interval,
                file.Int("request", "reply_interval_seconds", r.interval.count()));
  if (interval < 60) return Bad(file.path(), "[request] reply_interval_seconds must be >= 60");
  if (!r.owner.empty() && (r.owner.find('@') == std::string::npos ||
                           r.owner.find_first_of(" <>\r\n\t\"") != std::string::npos)) {
    return Bad(file.path(), "[request] owner must be a plain address (local@domain)");
  }
  r.interval = std::chrono::seconds(interval);
  return r;
}

}  // namespace

Status ParseHostPort(const std::string& text, std::string& host, std::uint16_t& port) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return MakeError("usage", "\"" + text + "\" is not ADDRESS:PORT");
  std::string h = text.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned value = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last || value > 65535)
    return MakeError("usage", "\"" + text + "\": bad port");
  host = h;
  port = static_cast<std::uint16_t>(value);
  return Status::Ok();
}

Result<Config> LoadConfig(const std::string& path) {
  BL_TRY_ASSIGN(api::ConfigFile file, api::ConfigFile::Load(path));
  Config c;
  c.path = path;
  BL_TRY_ASSIGN(c.smtp, ReadListener(file, "smtp", "127.0.0.1:2525", &c.smtp_enabled));
  BL_TRY_ASSIGN(c.lmtp, ReadListener(file, "lmtp", "", &c.lmtp_enabled));

  BL_TRY_ASSIGN(std::string status, file.String("status", "listen", "127.0.0.1:9025"));
  c.status_enabled = !status.empty();
  c.status.plain_http = true;
  c.status.threads = 1;
  if (c.status_enabled) {
    Status st = ParseHostPort(status, c.status.listen_address, c.status.port);
    if (!st.ok()) return Bad(path, "[status] listen: " + st.error().message);
  }
  BL_TRY_ASSIGN(c.metrics_token_file, file.String("metrics", "token_file", ""));

  BL_TRY_ASSIGN(c.store_url, file.String("store", "url", ""));
  if (c.store_url.empty()) {
    return Bad(path, "[store] url is required (sqlite:PATH or postgresql://...)");
  }
  BL_TRY_ASSIGN(c.spool_dir, file.String("spool", "directory", c.spool_dir));
  BL_TRY_ASSIGN(std::int64_t held_days, file.Int("spool", "held_days", c.held_days));
  if (held_days < 1 || held_days > 3650) return Bad(path, "[spool] held_days must be 1 to 3650");
  c.held_days = static_cast<int>(held_days);
  BL_TRY_ASSIGN(std::int64_t held_notices,
                file.Int("spool", "held_notices_per_hour", c.held_notices_per_hour));
  if (held_notices < 0 || held_notices > 10000) {
    return Bad(path, "[spool] held_notices_per_hour must be 0 to 10000");
  }
  c.held_notices_per_hour = static_cast<int>(held_notices);
  BL_TRY_ASSIGN(c.held_max_posts, file.Int("spool", "held_max_posts", c.held_max_posts));
  if (c.held_max_posts < 0 || c.held_max_posts > 1'000'000) {
    return Bad(path, "[spool] held_max_posts must be 0 to 1000000");
  }
  BL_TRY_ASSIGN(c.held_max_bytes, file.Int("spool", "held_max_bytes", c.held_max_bytes));
  if (c.held_max_bytes < 0) return Bad(path, "[spool] held_max_bytes must be 0 or more");
  BL_TRY_ASSIGN(c.log_level, file.String("log", "level", c.log_level));
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warning" &&
      c.log_level != "error") {
    return Bad(path, "[log] level must be debug, info, warning or error");
  }

  DeliveryConfig& d = c.delivery;
  BL_TRY_ASSIGN(std::string mode, file.String("delivery", "mode", "maildir"));
  if (mode == "maildir") {
    d.mode = DeliveryConfig::Mode::kMaildir;
  } else if (mode == "smtp") {
    d.mode = DeliveryConfig::Mode::kSmtp;
  } else {
    return Bad(path, "[delivery] mode must be \"maildir\" or \"smtp\"");
  }
  BL_TRY_ASSIGN(d.maildir_root, file.String("delivery", "maildir_root", d.maildir_root));
  BL_TRY_ASSIGN(std::string smarthost, file.String("delivery", "smarthost", "127.0.0.1:25"));
  Status st = ParseHostPort(smarthost, d.smarthost.host, d.smarthost.port);
  if (!st.ok()) return Bad(path, "[delivery] smarthost: " + st.error().message);
  BL_TRY_ASSIGN(d.smarthost.helo_name, file.String("smtp", "hostname", "localhost"));
  BL_TRY_ASSIGN(std::string starttls, file.String("delivery", "starttls", "if-offered"));
  if (starttls == "if-offered") {
    d.smarthost.starttls = net::SmtpClientConfig::StartTls::kIfOffered;
  } else if (starttls == "required") {
    d.smarthost.starttls = net::SmtpClientConfig::StartTls::kRequired;
  } else if (starttls == "never") {
    d.smarthost.starttls = net::SmtpClientConfig::StartTls::kNever;
  } else {
    return Bad(path, "[delivery] starttls must be \"if-offered\", \"required\" or \"never\"");
  }
  BL_TRY_ASSIGN(d.smarthost.ca_file, file.String("delivery", "ca", ""));
  if (d.smarthost.starttls == net::SmtpClientConfig::StartTls::kRequired &&
      d.smarthost.ca_file.empty()) {
    return Bad(path,
               "[delivery] starttls = \"required\" needs ca (the CA that signed the "
               "smarthost's certificate)");
  }
  BL_TRY_ASSIGN(std::int64_t batch, file.Int("delivery", "batch_size", d.batch_size));
  BL_TRY_ASSIGN(std::int64_t initial,
                file.Int("delivery", "retry_initial_seconds", d.retry_initial.count()));
  BL_TRY_ASSIGN(std::int64_t max_retry,
                file.Int("delivery", "retry_max_seconds", d.retry_max.count()));
  BL_TRY_ASSIGN(std::int64_t max_age, file.Int("delivery", "max_age_seconds", d.max_age.count()));
  if (batch < 1 || batch > 10000) return Bad(path, "[delivery] batch_size must be 1..10000");
  if (initial < 1 || max_retry < initial || max_age < 1)
    return Bad(path, "[delivery] retry_initial_seconds <= retry_max_seconds, all positive");
  d.batch_size = static_cast<int>(batch);
  d.retry_initial = std::chrono::seconds(initial);
  d.retry_max = std::chrono::seconds(max_retry);
  d.max_age = std::chrono::seconds(max_age);
  BL_TRY_ASSIGN(std::string verp, file.String("delivery", "verp", "auto"));
  if (verp == "auto") {
    d.verp = DeliveryConfig::Verp::kAuto;
  } else if (verp == "xverp") {
    d.verp = DeliveryConfig::Verp::kXverp;
  } else if (verp == "per-recipient") {
    d.verp = DeliveryConfig::Verp::kPerRecipient;
  } else if (verp == "off") {
    d.verp = DeliveryConfig::Verp::kOff;
  } else {
    return Bad(path, "[delivery] verp must be \"auto\", \"xverp\", \"per-recipient\" or \"off\"");
  }
  BL_TRY_ASSIGN(d.verp_secret_file, file.String("delivery", "verp_secret_file", ""));
  BL_TRY_ASSIGN(std::int64_t connections, file.Int("delivery", "connections", d.connections));
  if (connections < 1 || connections > 64) return Bad(path, "[delivery] connections must be 1..64");
  d.connections = static_cast<int>(connections);

  GroupdConfig& g = c.groupd;
  BL_TRY_ASSIGN(g.url, file.String("groupd", "url", ""));
  BL_TRY_ASSIGN(g.public_url, file.String("groupd", "public_url", g.url));
  BL_TRY_ASSIGN(g.client_certificate, file.String("groupd", "client_certificate", ""));
  BL_TRY_ASSIGN(g.client_key, file.String("groupd", "client_key", ""));
  BL_TRY_ASSIGN(g.ca, file.String("groupd", "ca", ""));
  if (g.client_certificate.empty() != g.client_key.empty())
    return Bad(path, "[groupd] client_certificate and client_key go together");
  BL_TRY_ASSIGN(g.roster_sync_seconds,
                file.Int("groupd", "roster_sync_seconds", g.roster_sync_seconds));
  if (g.roster_sync_seconds < 0 || g.roster_sync_seconds > std::int64_t{7} * 24 * 3600)
    return Bad(path, "[groupd] roster_sync_seconds must be 0..604800 (0: on demand only)");

  BL_TRY_ASSIGN(c.request, ReadRequest(file));

  BL_TRY_ASSIGN(c.allow_local_group_keys, file.Bool("unsafe", "allow_local_group_keys", false));
  BL_TRY_ASSIGN(c.group_keys_dir, file.String("unsafe", "group_keys_directory", ""));
  if (c.allow_local_group_keys && c.group_keys_dir.empty())
    return Bad(path, "[unsafe] allow_local_group_keys needs group_keys_directory");
  BL_TRY(file.CheckKnownKeys());
  return c;
}

std::string VerpSecretPath(const Config& config) {
  if (!config.delivery.verp_secret_file.empty()) return config.delivery.verp_secret_file;
  return config.spool_dir + "/verp.key";
}

}  // namespace blindlist::listd
