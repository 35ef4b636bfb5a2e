// A client for groupd's JSON API (and certd's, which shares the conventions):
// base URL, credentials, and errors mapped from {"error","message"} bodies.
// Thread-safety: one ApiClient per thread.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blindlist/result.h"
#include "net/https_client.h"

namespace blindlist::api {

struct ApiCredentials {
  std::string server;  // "https://host:port"
  std::string token;   // bearer token, or empty
  std::string client_cert_file;
  std::string client_key_file;
  std::string ca_file;  // to verify the server; empty: system store
};

class ApiClient {
 public:
  explicit ApiClient(const ApiCredentials& creds);
  ~ApiClient();

  // Sends `body` (a JSON value; null for none) and returns the parsed JSON reply.
  // A non-2xx reply becomes an Error whose code is the server's "error" and whose
  // message says "server refused (STATUS CODE): MESSAGE"; a 2xx reply that is not JSON
  // is kBadReply.
  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const nlohmann::json& body);
  // A GET whose reply is not JSON (e.g. a PEM certificate).
  Result<std::string> GetText(const std::string& path);

  // Percent-encodes one path segment (a group name or address).
  static std::string Segment(const std::string& s);

  // The HTTP status of the last answer, or 0 if the last call got none (the transport failed).
  int last_status() const { return last_status_; }
  // The value of header `name` (lowercase) of the last answer, or "" if it had none.
  std::string last_header(std::string_view name) const;

  // Whether a failed call may succeed later, unchanged: no answer came (connect-failed, timeout,
  // tls-failed), the server failed (5xx) or asked to slow down (429), or its answer was not JSON
  // (kBadReply). `status` is last_status() after that call.
  static bool IsTransient(const Error& error, int status);

 private:
  std::string server_;
  std::string token_;
  std::unique_ptr<net::HttpsClient> http_;
  int last_status_ = 0;
  std::vector<std::pair<std::string, std::string>> last_headers_;
};

}  // namespace blindlist::api
