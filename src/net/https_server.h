// An HTTPS/1.1 server on Boost.Beast with C++20 coroutines, for groupd and certd.
// TLS 1.3 only (or plain HTTP with plain_http, for loopback status ports).
// Client certificates are requested but not required and not
// chain-verified here: the application decides what a presented certificate
// means (a pinned member or exploder fingerprint, or a membership certificate it
// verifies itself); the TLS handshake already proved possession of its key.
//
// Everything is bounded: header and body sizes, read timeouts, connections in
// total and per peer address, requests per connection. Stop() drains: it stops
// accepting, lets in-flight requests finish (up to a deadline), then returns.
// No Beast or Asio types appear here, so including this header is cheap.
//
// Thread-safety: Start/Stop/ReloadCertificates may be called from any thread;
// the handler is called concurrently from `threads` threads and must be thread-safe.
// A synchronous handler holds its thread until it returns; an asynchronous one
// (AsyncHttpHandler) holds it only until it returns, and answers whenever it can.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::net {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  // The target without the query, percent-decoded segment by segment: no segment decodes to a
  // "/" or a control byte (such a target gets 400 bad-target), so splitting it at "/" gives the
  // segments as sent. Empty segments ("//", a trailing "/") are kept for the router to refuse.
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;    // decoded query parameters
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  Bytes peer_certificate_der;  // empty if the client presented none
  std::string peer_address;    // "127.0.0.1"

  // The first header with this (lowercase) name, or "".
  std::string Header(std::string_view name) const;
  std::string Query(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. Retry-After

  static HttpResponse Json(int status, std::string body);
  // {"error": code, "message": message}
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Answers one request. Call it exactly once, from any thread, now or later (a
// second call is ignored); after the server has stopped it does nothing.
using HttpResponder = std::function<void(HttpResponse)>;
// A handler that answers through `respond`, so no server thread waits while the
// answer depends on something slow elsewhere (groupd: the audit commit). If it
// throws before answering, the server answers 500. The request stays valid until
// `respond` is called (its session waits for the answer), or until the server
// is destroyed if it never is.
using AsyncHttpHandler = std::function<void(const HttpRequest&, HttpResponder respond)>;
// Told about each request the server refuses itself (too large, malformed, a target that
// does not decode) before
// any handler runs: what is known of the request (at least peer_address; method,
// target and path when the header was read) and the error response sent; and about
// each connection refused for the connection limits, as a 503 too-many-connections
// (nothing is sent: the socket is closed). Called on I/O threads: it must be quick.
using RefusalObserver = std::function<void(const HttpRequest&, const HttpResponse&)>;

struct HttpsServerConfig {
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: pick a free port (see HttpsServer::port())
  std::string cert_file;   // PEM server certificate chain
  std::string key_file;    // PEM private key
  // Plain HTTP/1.1, no TLS (cert_file/key_file unused): only for loopback-only endpoints
  // such as listd's /metrics and /healthz, which carry nothing secret.
  bool plain_http = false;
  int threads = 2;
  std::size_t max_header_bytes = std::size_t{8} * 1024;
  std::size_t max_body_bytes = std::size_t{1024} * 1024;
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds drain_timeout{10000};
  int max_connections = 1024;
  int max_connections_per_peer = 64;
  int max_requests_per_connection = 1000;
};

class HttpsServer {
 public:
  HttpsServer(HttpsServerConfig config, HttpHandler handler);
  HttpsServer(HttpsServerConfig config, AsyncHttpHandler handler);
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Call before Start().
  void SetRefusalObserver(RefusalObserver observer);
  // Loads the certificate, binds and starts the worker threads. Errors name the file or port.
  Status Start();
  // The bound port (after Start).
  std::uint16_t port() const;
  // Stops accepting, waits for in-flight requests up to drain_timeout, joins the threads.
  void Stop();
  // Blocks until Stop() has completed (e.g. from a signal handler thread).
  void Wait();
  // Re-reads cert_file/key_file for new connections (SIGHUP). Keeps the old ones on error.
  Status ReloadCertificates();
  // Replaces the limits for new connections and requests (SIGHUP).
  void UpdateLimits(const HttpsServerConfig& limits);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindlist::net
