// A small blocking HTTPS client for the blindlist command and listd: one
// request per call over TLS 1.3 (keep-alive reuse within one HttpsClient).
// Verifies the server against a CA file (or the system store), optionally
// presents a client certificate (mTLS), and can pin nothing more.
// Thread-safety: one HttpsClient per thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "blindlist/result.h"

namespace blindlist::net {

struct HttpsClientConfig {
  std::string ca_file;           // PEM CA(s) to verify the server; empty: system default store
  std::string client_cert_file;  // PEM, for mTLS; empty: none
  std::string client_key_file;
  std::chrono::milliseconds timeout{15000};
};

struct ClientResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
};

class HttpsClient {
 public:
  explicit HttpsClient(HttpsClientConfig config);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // url: "https://host:port/path?query". headers: extra request headers
  // (e.g. {"authorization", "Bearer ..."}). Errors: "bad-url", "connect-failed",
  // "tls-failed" (with the verification reason), "timeout".
  Result<ClientResponse> Request(
      const std::string& method, const std::string& url, const std::string& body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindlist::net
