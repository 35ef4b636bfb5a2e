// listd's configuration: TOML file, then command-line flags on top. Built once
// at start and passed down; no globals. Holds no key material: path B' names a
// directory of group key files, read only when [unsafe] allows it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "api/groupd_client.h"
#include "blindlist/result.h"
#include "net/https_server.h"
#include "net/smtp_client.h"
#include "net/smtp_server.h"

namespace blindlist::listd {

struct DeliveryConfig {
  enum class Mode { kMaildir, kSmtp } mode = Mode::kMaildir;
  std::string maildir_root = "/var/mail/blindlist";
  net::SmtpClientConfig smarthost;  // host, port, STARTTLS, CA
  int batch_size = 100;             // recipients per SMTP transaction
  std::chrono::seconds retry_initial{60};
  std::chrono::seconds retry_max{3600};
  std::chrono::seconds max_age{5 * 24 * 3600};  // then 4xx recipients expire
  // Envelope senders (docs/operations.md, "Bounces"): kAuto uses XVERP when the smarthost
  // offers it and one transaction per member otherwise; kXverp insists on XVERP (a post waits,
  // logged, while the smarthost does not offer it); kOff sends today's plain batches from the
  // bare bounce address, and then no bounce report can be attributed to a member.
  enum class Verp { kAuto, kXverp, kPerRecipient, kOff } verp = Verp::kAuto;
  // listd's own 32-byte VERP key; empty: SPOOL/verp.key (VerpSecretPath).
  std::string verp_secret_file;
  int connections = 4;  // concurrent smarthost connections (1..64)
};

struct GroupdConfig {
  std::string url;                 // for path B: "https://host:port"
  std::string public_url;          // named in refusals of plaintext posts; default: url
  std::string client_certificate;  // the exploder identity registered with groupd
  std::string client_key;
  std::string ca;
  // Lists with roster = "groupd" copy groupd's roster this often (0: only `blindlist list sync`).
  std::int64_t roster_sync_seconds = 300;

  // How listd authenticates to groupd as the list's exploder (mTLS, verified against ca).
  api::ApiCredentials Credentials() const {
    return api::ApiCredentials{.server = url,
                               .token = {},
                               .client_cert_file = client_certificate,
                               .client_key_file = client_key,
                               .ca_file = ca};
  }
};

// LIST-request@: the automatic answer saying whom to ask (request_reply.h).
struct RequestConfig {
  bool enabled = true;
  std::string owner;  // named in the answer; "" means postmaster@ the list's domain
  std::chrono::seconds interval{24 * 3600};  // one answer per sender and list per interval
};

struct Config {
  std::string path;            // the file it came from
  net::SmtpServerConfig smtp;  // port 0 with an empty listen: disabled
  bool smtp_enabled = true;
  net::SmtpServerConfig lmtp;
  bool lmtp_enabled = false;
  net::HttpsServerConfig status;  // plain HTTP: /healthz, /metrics
  bool status_enabled = true;
  std::string metrics_token_file;  // [metrics] token_file: /metrics needs this bearer token
  std::string store_url;           // [store] url: required
  std::string spool_dir = "/var/spool/blindlist";
  int held_days = 14;  // [spool] held_days: a held post older than this is deleted
  // At most this many "post held" mails to one list's owner an hour; past it the post is only
  // logged (it is still held and listed).
  int held_notices_per_hour = 10;
  // What held/ may hold for one list (anyone may mail a members-only list): past either bound a
  // non-member's post is deleted, not held (it was answered 250 like any other).
  std::int64_t held_max_posts = 1000;                     // [spool] held_max_posts
  std::int64_t held_max_bytes = std::int64_t{100} << 20;  // [spool] held_max_bytes
  DeliveryConfig delivery;
  GroupdConfig groupd;
  RequestConfig request;
  // Path B': listd re-wraps with group keys from this directory. Breaks the
  // trust split, so it needs allow_local_group_keys = true and is logged loudly.
  bool allow_local_group_keys = false;
  std::string group_keys_dir;
  std::string log_level = "info";
};

Result<Config> LoadConfig(const std::string& path);

// [delivery] verp_secret_file, or verp.key in the spool directory.
std::string VerpSecretPath(const Config& config);

// "ADDRESS:PORT" (IPv6 in brackets).
Status ParseHostPort(const std::string& text, std::string& host, std::uint16_t& port);

}  // namespace blindlist::listd
