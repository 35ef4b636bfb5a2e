// The part of a TCP server that does not depend on its protocol, shared by HttpsServer and
// SmtpServer: binding, the accept loop (with a back-off on errors such as EMFILE), the TLS
// context and its reload, the worker threads, connection limits in total and per peer, and
// the drain on Stop(). A protocol supplies a Session per connection (what a drain needs to
// reach it) and a coroutine that serves the connection on the session's strand.
//
// Internal to src/net: this header names Asio types, so only the servers' .cc files include
// it; their public headers stay free of Asio and Beast.
//
// Thread-safety: Start/Stop/Wait/ReloadTls/SetConnectionLimits may be called from any thread.
// The ConnectionHandler is called on the accept strand (NewSession, Refuse, Serve's start);
// each Session is touched only on its strand.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// (keep the line above first)
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/result.h"

namespace blindlist::net {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using TlsContext = boost::asio::ssl::context;

// What a drain needs to reach a live connection. Touched only on its strand.
class Session {
 public:
  explicit Session(Strand s) : strand(std::move(s)) {}
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Cancels the connection's pending I/O (on the strand); the protocol then answers or closes.
  virtual void CancelIo() = 0;
  // The serving coroutine has ended, normally or by an exception (on the strand).
  virtual void Finished() noexcept {}

  Strand strand;
  bool idle = false;  // between requests or transactions: a drain may cut in
  bool open = true;   // false once the connection is over
};

class Listener;

// Counts a connection against the limits and registers its session for draining; released
// when the serving coroutine's frame (which owns it) is destroyed.
class ConnectionSlot {
 public:
  ConnectionSlot(Listener* listener, std::uint64_t id, std::string peer);
  ConnectionSlot(ConnectionSlot&& o) noexcept;
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot();
  const std::string& peer() const { return peer_; }

 private:
  Listener* listener_;
  std::uint64_t id_;
  std::string peer_;
};

// What a protocol plugs into the listener.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  virtual std::shared_ptr<Session> NewSession(const Strand& strand) = 0;
  // A connection over the limits: answer briefly or just let the socket close.
  virtual void Refuse(boost::asio::ip::tcp::socket& socket, const std::string& peer) = 0;
  // Serves an admitted connection; runs on session->strand. `tls` is the context in force
  // when the connection was admitted (null when the listener has none).
  virtual boost::asio::awaitable<void> Serve(boost::asio::ip::tcp::socket socket,
                                             std::shared_ptr<Session> session, ConnectionSlot slot,
                                             std::shared_ptr<TlsContext> tls) = 0;
};

struct TlsSettings {
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
  int min_version = 0;    // TLS1_2_VERSION, TLS1_3_VERSION
  int max_version = 0;    // 0: no ceiling
  // Ask for (never require, never chain-verify) a client certificate; no resumption.
  bool request_client_certificate = false;
};

// A server TLS context with renegotiation off and server cipher preference. Errors
// ("tls-config") name the file and carry the OpenSSL reason.
Result<std::shared_ptr<TlsContext>> BuildServerTlsContext(const TlsSettings& settings);

struct ListenerConfig {
  std::string log_prefix;  // "" or "smtp ": starts each log message
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 0;
  int threads = 2;
  int max_connections = 1024;
  int max_connections_per_peer = 64;
  std::optional<TlsSettings> tls;  // none: plain TCP (or STARTTLS not offered)
};

struct DrainPolicy {
  std::chrono::milliseconds timeout{10000};
  // Past the timeout: 0 stops the I/O threads at once; otherwise every session is cancelled
  // and gets this long to say goodbye.
  std::chrono::milliseconds grace{0};
  // Runs after the threads are joined, before Wait() returns.
  std::function<void()> after_join;
};

class Listener {
 public:
  Listener(ListenerConfig config, ConnectionHandler* handler);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Builds the TLS context (if configured), binds, starts the accept loop and the threads.
  // `fields` are added to the "listening" log line.
  Status Start(std::vector<std::pair<std::string, std::string>> fields = {});
  std::uint16_t port() const;
  // Stops accepting, cancels idle sessions, waits for the others up to the drain timeout,
  // then stops the threads. A second caller waits for the first.
  void Stop(const DrainPolicy& drain);
  void Wait();
  // Rebuilds the TLS context for new connections; keeps the old one on error.
  Status ReloadTls();
  std::shared_ptr<TlsContext> Tls() const;
  // Limits for connections admitted from now on.
  void SetConnectionLimits(int max_connections, int max_connections_per_peer);
  // True once Stop() began: sessions finish what is in flight and then close.
  bool draining() const;

  // Logs an exception that ended a coroutine.
  static void LogException(std::string_view what, const std::exception_ptr& e);

 private:
  friend class ConnectionSlot;
  struct Impl;
  void Release(std::uint64_t id, const std::string& peer);
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindlist::net
