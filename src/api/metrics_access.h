// Who may read a daemon's /metrics: anyone who reaches the port, or, with `[metrics]
// token_file = PATH`, only a caller with `Authorization: Bearer TOKEN` (RFC 6750), so the
// counters stay private without a reverse proxy in front of groupd and certd.
//
// The daemon keeps only the SHA-256 of the token and compares digests in constant time:
// neither the time nor the answer depends on how long or how wrong a presented token is.
// A missing and a wrong token get the same 401 and the same JSON body; only the
// WWW-Authenticate header differs, as RFC 6750 section 3.1 asks (error="invalid_token" only
// when a token was sent).
//
// Thread-safety: Refusal() may run on any thread while Load() replaces the token (SIGHUP).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "net/https_server.h"

namespace blindlist::api {

class MetricsAccess {
 public:
  // The shortest token accepted: `openssl rand -hex 32` makes 64 characters.
  static constexpr std::size_t kMinTokenLength = 32;

  // Reads the token from `path`, its first line ("" : no token, /metrics open to all).
  // "bad-config" errors name the file: missing or unreadable, not a regular file, mode
  // other than 0600 or 0640 (group write or any access for others), a token shorter than
  // kMinTokenLength or with characters outside RFC 6750's b64token. On error the token
  // in force stays.
  Status Load(const std::string& path);
  // Load() on SIGHUP: an error is logged, and the token in force stays.
  void Reload(const std::string& path);

  // Nothing when `req` may read /metrics; otherwise the 401 to send.
  std::optional<net::HttpResponse> Refusal(const net::HttpRequest& req) const;

  // True when a token is required.
  bool required() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const SecretBytes> digest_;  // SHA-256 of the token; null: open
};

}  // namespace blindlist::api
