// SmtpServer: the I/O around SmtpSession, one C++20 coroutine per connection, each on its
// own strand; the Listener accepts, limits and drains.
//
// The session says what to do next; this loop does it: reads (sending the replies collected
// so far first, so pipelined commands, RFC 2920, are answered in one write), calls the
// handler, runs the STARTTLS handshake, or sends the last reply and closes.
//
// Timeouts use a per-session timer that cancels (not closes) the socket, so a timed-out
// client still gets its 421. Expected I/O errors come back as values (redirect_error);
// anything thrown is caught at the session boundary and logged.
//
// Stop() drains: the acceptor closes; sessions waiting for a command outside a transaction
// are cancelled and answer 421; the others do so once their transaction ends. At
// drain_timeout the stragglers are cancelled as well, and a moment later the io_context stops.

// The own header first: Boost 1.74's asio/awaitable.hpp needs <utility> included before it.
#include "net/smtp_server.h"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "net/listener.h"
#include "obs/log.h"

namespace blindlist::net {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr std::size_t kReadChunk = std::size_t{64} * 1024;
// After a final reply (221/421) we read and discard briefly, so that closing with unread
// input does not reset the connection before the client has read the reply.
constexpr std::chrono::milliseconds kLinger{1000};
constexpr std::chrono::milliseconds kWriteTimeout{30000};
// Once the drain deadline has passed, how long the cancelled sessions get to say 421.
constexpr std::chrono::milliseconds kDrainGrace{1000};
SmtpReply InternalError() { return SmtpReply{451, "4.3.0", "Internal error, try again later"}; }

// A handler that throws costs the client a 451 (nullopt here), not the session.
template <typename Fn>
auto CallHandler(std::string_view what, const std::string& peer, Fn&& fn)
    -> std::optional<decltype(fn())> {
  try {
    return fn();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "smtp handler threw",
        {{"call", std::string(what)}, {"peer", peer}, {"error", e.what()}});
  } catch (...) {
    Log(LogLevel::kError, "smtp handler threw",
        {{"call", std::string(what)}, {"peer", peer}, {"error", "unknown exception"}});
  }
  return std::nullopt;
}

// The socket and what reaches it from outside the coroutine (the timeout timer, Stop()).
// Shared with the timer's handler and the listener; touched only on its strand.
struct Connection : Session, std::enable_shared_from_this<Connection> {
  explicit Connection(const Strand& s) : Session(s), socket(s), timer(s) {}

  void CancelIo() override {
    error_code ignored;
    socket.cancel(ignored);
  }
  void Finished() noexcept override { Disarm(); }

  // Cancels pending socket operations when `timeout` passes; the next Arm or Disarm resets it.
  void Arm(std::chrono::milliseconds timeout) {
    timed_out = false;
    timer.expires_after(timeout);
    timer.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec) return;  // re-armed or disarmed
      self->timed_out = true;
      error_code ignored;
      self->socket.cancel(ignored);
    });
  }
  // Never throws: called from destructors and completion handlers.
  void Disarm() noexcept {
    try {
      timer.cancel();
    } catch (const std::exception& e) {
      Log(LogLevel::kWarning, "smtp timer cancel failed", {{"error", e.what()}});
    } catch (...) {
    }
  }

  asio::awaitable<std::size_t> ReadSome(asio::mutable_buffer into, error_code& ec) {
    if (tls)
      co_return co_await tls->async_read_some(into, asio::redirect_error(asio::use_awaitable, ec));
    co_return co_await socket.async_read_some(into, asio::redirect_error(asio::use_awaitable, ec));
  }
  asio::awaitable<void> Write(std::string_view data, error_code& ec) {
    if (tls) {
      co_await asio::async_write(*tls, asio::buffer(data.data(), data.size()),
                                 asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await asio::async_write(socket, asio::buffer(data.data(), data.size()),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  tcp::socket socket;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;
  asio::steady_timer timer;
  std::vector<char> buffer = std::vector<char>(kReadChunk);  // what one read takes in
  bool timed_out = false;
};

ListenerConfig MakeListenerConfig(const SmtpServerConfig& c) {
  ListenerConfig l;
  l.log_prefix = "smtp ";
  l.listen_address = c.listen_address;
  l.port = c.port;
  l.threads = c.threads;
  l.max_connections = c.max_connections;
  l.max_connections_per_peer = c.max_connections_per_peer;
  // TLS 1.2 as the floor, unlike our HTTPS (1.3 only): the peers here are other MTAs, and
  // STARTTLS is opportunistic, so refusing 1.2 would only push them to plaintext.
  if (!c.cert_file.empty() && !c.key_file.empty()) {
    l.tls = TlsSettings{c.cert_file, c.key_file, TLS1_2_VERSION, 0, false};
  }
  return l;
}

}  // namespace

struct SmtpServer::Impl : ConnectionHandler {
  Impl(SmtpServerConfig c, std::shared_ptr<SmtpHandler> h)
      : config(std::move(c)), handler(std::move(h)), listener(MakeListenerConfig(config), this) {}

  std::shared_ptr<Session> NewSession(const Strand& strand) override {
    return std::make_shared<Connection>(strand);
  }
  void Refuse(tcp::socket& socket, const std::string& /*peer*/) override {
    // A short answer beats a bare close: the client retries later instead of bouncing. The
    // socket is fresh, so this small write does not block.
    static constexpr std::string_view kBusy = "421 4.7.0 Too many connections, try later\r\n";
    error_code ignored;
    asio::write(socket, asio::buffer(kBusy.data(), kBusy.size()), ignored);
  }
  asio::awaitable<void> Serve(tcp::socket socket, std::shared_ptr<Session> session,
                              ConnectionSlot slot, std::shared_ptr<TlsContext> tls) override;

  SmtpSessionConfig SessionConfig(bool starttls_available) const {
    return SmtpSessionConfig{config.protocol == SmtpServerConfig::Protocol::kLmtp,
                             config.hostname,
                             config.max_message_bytes,
                             config.max_line_bytes,
                             config.max_recipients,
                             config.max_commands,
                             config.max_errors,
                             starttls_available};
  }
  // Sends the collected replies. False: the connection is gone.
  static asio::awaitable<bool> Flush(Connection& conn, std::string& out, const std::string& peer);
  // Reads more into the session, or tells it why nothing came. False: the connection is
  // gone without a word to say.
  asio::awaitable<bool> Read(Connection& conn, SmtpSession& smtp, bool data,
                             const std::string& peer);
  // Sends the last replies and closes without resetting the connection.
  static asio::awaitable<void> Finish(Connection& conn, std::string& out, const std::string& peer);
  static asio::awaitable<bool> StartTls(Connection& conn, TlsContext& ctx, SmtpSession& smtp,
                                        const std::string& peer, std::chrono::milliseconds timeout);
  void CallData(SmtpSession& smtp, const std::string& peer);

  const SmtpServerConfig config;
  const std::shared_ptr<SmtpHandler> handler;
  // Last: stopping and destroying it ends the sessions, which use the members above.
  Listener listener;
};

asio::awaitable<bool> SmtpServer::Impl::Flush(Connection& conn, std::string& out,
                                              const std::string& peer) {
  if (out.empty()) co_return true;
  error_code ec;
  conn.Arm(kWriteTimeout);
  co_await conn.Write(out, ec);
  conn.Disarm();
  out.clear();
  if (ec) Log(LogLevel::kDebug, "smtp write failed", {{"peer", peer}, {"error", ec.message()}});
  co_return !ec;
}

asio::awaitable<bool> SmtpServer::Impl::Read(Connection& conn, SmtpSession& smtp, bool data,
                                             const std::string& peer) {
  const bool idle = !data && smtp.idle();
  // Checked with no suspension before the read starts: Stop() sets `draining` before it
  // posts its cancel, so either we see the flag or the cancel finds the read pending.
  if (idle && listener.draining()) {
    smtp.ShuttingDown();
    co_return true;
  }
  error_code ec;
  conn.idle = idle;
  conn.Arm(data ? config.data_timeout : config.command_timeout);
  const std::size_t n = co_await conn.ReadSome(asio::buffer(conn.buffer), ec);
  conn.Disarm();
  conn.idle = false;
  if (!ec) {
    smtp.Receive(std::string_view(conn.buffer.data(), n));
    co_return true;
  }
  if (conn.timed_out) {
    Log(LogLevel::kInfo, "smtp client timed out", {{"peer", peer}});
    smtp.TimedOut();
    co_return true;
  }
  if (listener.draining() && ec == asio::error::operation_aborted) {
    smtp.ShuttingDown();
    co_return true;
  }
  Log(LogLevel::kDebug, "smtp connection closed", {{"peer", peer}, {"reason", ec.message()}});
  co_return false;
}

asio::awaitable<void> SmtpServer::Impl::Finish(Connection& conn, std::string& out,
                                               const std::string& peer) {
  if (!co_await Flush(conn, out, peer)) co_return;
  error_code ec;
  if (conn.tls) {
    // close_notify without waiting for the peer's.
    SSL_set_shutdown(conn.tls->native_handle(), SSL_RECEIVED_SHUTDOWN);
    conn.Arm(kLinger);
    co_await conn.tls->async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    conn.Disarm();
  }
  conn.socket.shutdown(tcp::socket::shutdown_send, ec);
  conn.Arm(kLinger);
  for (std::size_t discarded = 0; !ec && discarded < kReadChunk * 16;) {
    discarded += co_await conn.socket.async_read_some(
        asio::buffer(conn.buffer), asio::redirect_error(asio::use_awaitable, ec));
  }
  conn.Disarm();
}

asio::awaitable<bool> SmtpServer::Impl::StartTls(Connection& conn, TlsContext& ctx,
                                                 SmtpSession& smtp, const std::string& peer,
                                                 std::chrono::milliseconds timeout) {
  if (!co_await Flush(conn, smtp.Output(), peer)) co_return false;
  conn.tls = std::make_unique<ssl::stream<tcp::socket&>>(conn.socket, ctx);
  error_code ec;
  conn.Arm(timeout);
  co_await conn.tls->async_handshake(ssl::stream_base::server,
                                     asio::redirect_error(asio::use_awaitable, ec));
  conn.Disarm();
  if (ec) {
    Log(LogLevel::kInfo, "smtp tls handshake failed", {{"peer", peer}, {"error", ec.message()}});
    co_return false;
  }
  smtp.TlsStarted();
  co_return true;
}

void SmtpServer::Impl::CallData(SmtpSession& smtp, const std::string& peer) {
  const std::size_t wanted = smtp.data_replies_wanted();
  std::vector<SmtpReply> replies = CallHandler("OnData", peer, [&] {
                                     return handler->OnData(smtp.envelope(), smtp.TakeMessage());
                                   }).value_or(std::vector<SmtpReply>(wanted, InternalError()));
  if (replies.size() != wanted) {
    Log(LogLevel::kError, "smtp handler gave the wrong number of DATA replies",
        {{"wanted", std::to_string(wanted)}, {"got", std::to_string(replies.size())}});
  }
  smtp.DataDone(std::move(replies));
}

asio::awaitable<void> SmtpServer::Impl::Serve(tcp::socket socket, std::shared_ptr<Session> session,
                                              ConnectionSlot slot,
                                              std::shared_ptr<TlsContext> tls) {
  auto conn = std::static_pointer_cast<Connection>(session);
  conn->socket = std::move(socket);
  struct Closer {
    Connection& c;
    ~Closer() {
      c.open = false;
      c.Disarm();
      error_code ignored;
      c.socket.close(ignored);
    }
  } closer{*conn};
  const std::string& peer = slot.peer();
  SmtpSession smtp(SessionConfig(tls != nullptr), peer);
  using Action = SmtpSession::Action;
  for (;;) {
    const Action action = smtp.Next();
    switch (action) {
      case Action::kRead:
      case Action::kReadData: {
        const bool data = action == Action::kReadData;
        if (!co_await Flush(*conn, smtp.Output(), peer)) co_return;
        if (!co_await Read(*conn, smtp, data, peer)) co_return;
        break;
      }
      case Action::kMailFrom:
        smtp.MailFromDone(CallHandler("OnMailFrom", peer, [&] {
                            return handler->OnMailFrom(smtp.envelope());
                          }).value_or(InternalError()));
        break;
      case Action::kRcptTo:
        smtp.RcptToDone(CallHandler("OnRcptTo", peer, [&] {
                          return handler->OnRcptTo(smtp.envelope(), smtp.recipient());
                        }).value_or(InternalError()));
        break;
      case Action::kData:
        CallData(smtp, peer);
        break;
      case Action::kStartTls:
        if (!co_await StartTls(*conn, *tls, smtp, peer, config.command_timeout)) co_return;
        break;
      case Action::kClose:
        if (smtp.close_reason() == SmtpSession::CloseReason::kTooManyErrors) {
          Log(LogLevel::kInfo, "smtp client sent too many bad commands", {{"peer", peer}});
        }
        co_await Finish(*conn, smtp.Output(), peer);
        co_return;
    }
  }
}

SmtpServer::SmtpServer(SmtpServerConfig config, std::shared_ptr<SmtpHandler> handler)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(handler))) {}

SmtpServer::~SmtpServer() {
  try {
    Stop();
  } catch (...) {
    try {
      Log(LogLevel::kError, "stopping the smtp server failed");
    } catch (...) {
      std::fputs("smtp server: stopping failed\n", stderr);
    }
  }
}

Status SmtpServer::Start() {
  Impl& s = *impl_;
  if (!s.handler) return MakeError("bad-config", "the smtp server needs a handler");
  return s.listener.Start(
      {{"protocol", s.config.protocol == SmtpServerConfig::Protocol::kLmtp ? "lmtp" : "smtp"}});
}

std::uint16_t SmtpServer::port() const { return impl_->listener.port(); }

void SmtpServer::Stop() {
  impl_->listener.Stop(DrainPolicy{impl_->config.drain_timeout, kDrainGrace, {}});
}

void SmtpServer::Wait() { impl_->listener.Wait(); }

Status SmtpServer::ReloadCertificates() {
  Impl& s = *impl_;
  if (s.config.cert_file.empty() || s.config.key_file.empty()) {
    return MakeError("bad-config", "no cert_file/key_file configured: STARTTLS is off");
  }
  return s.listener.ReloadTls();
}

}  // namespace blindlist::net
