// SmtpServer: one C++20 coroutine per connection, each on its own strand.
//
// A session reads into one buffer and takes complete lines from it, so pipelined commands
// (RFC 2920) are answered from the buffer and their replies collected; the replies go out
// in one write whenever the buffer runs dry, i.e. before every socket read. After 354 the
// same buffer feeds a DotUnstuffer, and what follows the end marker is the next command.
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

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "net/log.h"
#include "net/openssl_error.h"

namespace blindlist::net {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;
using Strand = asio::strand<asio::io_context::executor_type>;

constexpr std::size_t kReadChunk = std::size_t{64} * 1024;
// After a final reply (221/421) we read and discard briefly, so that closing with unread
// input does not reset the connection before the client has read the reply.
constexpr std::chrono::milliseconds kLinger{1000};
constexpr std::chrono::milliseconds kWriteTimeout{30000};
// Once the drain deadline has passed, how long the cancelled sessions get to say 421.
constexpr std::chrono::milliseconds kDrainGrace{1000};

// TLS 1.2 as the floor, unlike our HTTPS (1.3 only): the peers here are other MTAs, and
// STARTTLS is opportunistic, so refusing 1.2 would only push them to plaintext.
Result<std::shared_ptr<ssl::context>> BuildTlsContext(const std::string& cert_file,
                                                      const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return MakeError("tls-config", "cannot set the TLS version floor: " + OpenSslError());
  }
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
    return MakeError("tls-config",
                     "cannot load certificate chain " + cert_file + ": " + OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return MakeError("tls-config", "cannot load private key " + key_file + ": " + OpenSslError());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return MakeError("tls-config", "private key " + key_file + " does not match " + cert_file +
                                       ": " + OpenSslError());
  }
  return ctx;
}

std::string PeerAddress(const tcp::socket& socket) {
  error_code ec;
  tcp::endpoint ep = socket.remote_endpoint(ec);
  if (ec) return {};
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a.to_string();
}

void LogException(std::string_view what, const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    Log(LogLevel::kError, what, {{"error", ex.what()}});
  } catch (...) {
    Log(LogLevel::kError, what, {{"error", "unknown exception"}});
  }
}

// A handler that throws costs the client a 451, not the session.
template <typename Fn>
SmtpReply CallHandler(std::string_view what, const std::string& peer, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "smtp handler threw",
        {{"call", std::string(what)}, {"peer", peer}, {"error", e.what()}});
  } catch (...) {
    Log(LogLevel::kError, "smtp handler threw",
        {{"call", std::string(what)}, {"peer", peer}, {"error", "unknown exception"}});
  }
  return SmtpReply{451, "4.3.0", "Internal error, try again later"};
}

// The socket and what reaches it from outside the coroutine (the timeout timer, Stop()).
// Shared with the timer's handler and Stop(); touched only on its strand.
struct Connection : std::enable_shared_from_this<Connection> {
  explicit Connection(const Strand& s) : strand(s), socket(s), timer(s) {}

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

  asio::awaitable<std::size_t> ReadSome(asio::mutable_buffer buffer, error_code& ec) {
    if (tls)
      co_return co_await tls->async_read_some(buffer,
                                              asio::redirect_error(asio::use_awaitable, ec));
    co_return co_await socket.async_read_some(buffer,
                                              asio::redirect_error(asio::use_awaitable, ec));
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

  Strand strand;
  tcp::socket socket;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;
  asio::steady_timer timer;
  bool timed_out = false;
  bool idle = false;  // waiting for a command outside a transaction: a drain may cut in
  bool open = true;   // false once the session is over
};

}  // namespace

struct SmtpServer::Impl {
  Impl(SmtpServerConfig c, std::shared_ptr<SmtpHandler> h)
      : config(std::move(c)),
        handler(std::move(h)),
        accept_strand(asio::make_strand(ioc)),
        acceptor(accept_strand) {}

  // Counts a connection against the limits; released when the session ends.
  class ConnectionSlot {
   public:
    ConnectionSlot(Impl* impl, std::uint64_t id, std::string peer)
        : impl_(impl), id_(id), peer_(std::move(peer)) {}
    ConnectionSlot(ConnectionSlot&& o) noexcept
        : impl_(std::exchange(o.impl_, nullptr)), id_(o.id_), peer_(std::move(o.peer_)) {}
    ConnectionSlot& operator=(ConnectionSlot&&) = delete;
    ~ConnectionSlot() {
      if (impl_ != nullptr) impl_->Release(id_, peer_);
    }
    const std::string& peer() const { return peer_; }

   private:
    Impl* impl_;
    std::uint64_t id_;
    std::string peer_;
  };

  void Release(std::uint64_t id, const std::string& peer) {
    std::lock_guard lock(mu);
    --connections;
    auto it = per_peer.find(peer);
    if (it != per_peer.end() && --it->second <= 0) per_peer.erase(it);
    sessions.erase(id);
    cv.notify_all();
  }

  std::shared_ptr<ssl::context> Tls() {
    std::lock_guard lock(mu);
    return tls;
  }

  asio::awaitable<void> AcceptLoop();
  void Admit(tcp::socket socket, const Strand& strand);
  asio::awaitable<void> RunSession(std::shared_ptr<Connection> conn, ConnectionSlot slot);
  void CancelSessions(bool only_idle);

  const SmtpServerConfig config;
  const std::shared_ptr<SmtpHandler> handler;

  std::mutex mu;                      // guards the members up to `cv`
  std::shared_ptr<ssl::context> tls;  // null: no STARTTLS
  int connections = 0;
  std::map<std::string, int> per_peer;
  std::map<std::uint64_t, std::shared_ptr<Connection>> sessions;
  std::uint64_t next_session = 0;
  bool started = false;
  bool stop_called = false;
  bool stopped = false;
  std::condition_variable cv;

  std::atomic<bool> draining{false};
  std::uint16_t bound_port = 0;

  // After the state above: destroying the io_context destroys parked coroutine frames,
  // which release their slots into that state.
  asio::io_context ioc;
  Strand accept_strand;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
};

asio::awaitable<void> SmtpServer::Impl::AcceptLoop() {
  for (;;) {
    Strand strand = asio::make_strand(ioc);
    tcp::socket socket(strand);
    error_code ec;
    co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (draining) co_return;
    if (ec) {
      if (!acceptor.is_open()) co_return;
      Log(LogLevel::kWarning, "smtp accept failed", {{"error", ec.message()}});
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    Admit(std::move(socket), strand);
  }
}

void SmtpServer::Impl::Admit(tcp::socket socket, const Strand& strand) {
  std::string peer = PeerAddress(socket);
  if (peer.empty()) return;
  auto conn = std::make_shared<Connection>(strand);
  std::uint64_t id = 0;
  bool busy = false;
  {
    std::lock_guard lock(mu);
    if (stop_called) return;
    auto it = per_peer.find(peer);
    const int from_peer = it == per_peer.end() ? 0 : it->second;
    if (connections >= config.max_connections || from_peer >= config.max_connections_per_peer) {
      Log(LogLevel::kWarning, "smtp connection refused: limit reached",
          {{"peer", peer},
           {"connections", std::to_string(connections)},
           {"from_peer", std::to_string(from_peer)}});
      busy = true;
    } else {
      ++connections;
      ++per_peer[peer];
      id = next_session++;
      sessions.emplace(id, conn);
    }
  }
  if (busy) {
    // A short answer beats a bare close: the client retries later instead of bouncing. The
    // socket is fresh, so this small write does not block.
    static constexpr std::string_view kBusy = "421 4.7.0 Too many connections, try later\r\n";
    error_code ignored;
    asio::write(socket, asio::buffer(kBusy.data(), kBusy.size()), ignored);
    return;
  }
  conn->socket = std::move(socket);
  ConnectionSlot slot(this, id, std::move(peer));
  asio::co_spawn(strand, RunSession(conn, std::move(slot)), [conn](const std::exception_ptr& e) {
    conn->open = false;
    conn->Disarm();
    LogException("smtp session failed", e);
  });
}

asio::awaitable<void> SmtpServer::Impl::RunSession(std::shared_ptr<Connection> conn,
                                                   ConnectionSlot slot) {
  const SmtpServerConfig& cfg = config;
  const bool lmtp = cfg.protocol == SmtpServerConfig::Protocol::kLmtp;
  std::shared_ptr<ssl::context> tls_ctx = Tls();
  struct Closer {
    Connection& c;
    ~Closer() {
      c.open = false;
      c.Disarm();
      error_code ignored;
      c.socket.close(ignored);
    }
  } closer{*conn};

  std::string in;  // received, not yet consumed from in_pos on
  std::size_t in_pos = 0;
  std::string out;  // replies not yet sent
  std::vector<char> chunk(kReadChunk);
  error_code ec;

  SmtpEnvelope env;
  env.peer_address = slot.peer();
  bool greeted = false;
  bool in_transaction = false;
  int commands = 0;
  int errors = 0;

  auto reply = [&out](int code, std::string_view enhanced, std::string_view text) {
    AppendReply(SmtpReply{code, std::string(enhanced), std::string(text)}, out);
  };
  auto reset_transaction = [&] {
    in_transaction = false;
    env.mail_from.clear();
    env.declared_size.reset();
    env.recipients.clear();
  };
  auto flush = [&]() -> asio::awaitable<bool> {
    if (out.empty()) co_return true;
    conn->Arm(kWriteTimeout);
    co_await conn->Write(out, ec);
    conn->Disarm();
    out.clear();
    if (ec) {
      Log(LogLevel::kDebug, "smtp write failed", {{"peer", slot.peer()}, {"error", ec.message()}});
    }
    co_return !ec;
  };
  // Sends what is queued plus a last reply, then closes without resetting the connection.
  auto finish = [&](int code, std::string_view enhanced,
                    std::string_view text) -> asio::awaitable<void> {
    reply(code, enhanced, text);
    if (!co_await flush()) co_return;
    if (conn->tls) {
      // close_notify without waiting for the peer's.
      SSL_set_shutdown(conn->tls->native_handle(), SSL_RECEIVED_SHUTDOWN);
      conn->Arm(kLinger);
      co_await conn->tls->async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
      conn->Disarm();
    }
    conn->socket.shutdown(tcp::socket::shutdown_send, ec);
    conn->Arm(kLinger);
    for (std::size_t discarded = 0; !ec && discarded < kReadChunk * 16;) {
      discarded += co_await conn->socket.async_read_some(
          asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    }
    conn->Disarm();
  };
  // Flushes the replies, then reads more input. False: the session is over (a 421 was sent
  // when there was a reason to). `idle`: between transactions, where a drain may end us.
  auto read_more = [&](std::chrono::milliseconds timeout, bool idle) -> asio::awaitable<bool> {
    if (!co_await flush()) co_return false;
    if (in_pos > 0) {
      in.erase(0, in_pos);
      in_pos = 0;
    }
    // Checked with no suspension before the read starts: Stop() sets `draining` before it
    // posts its cancel, so either we see the flag or the cancel finds the read pending.
    if (idle && draining) {
      co_await finish(421, "4.3.2", cfg.hostname + " Service shutting down, try again later");
      co_return false;
    }
    conn->idle = idle;
    conn->Arm(timeout);
    const std::size_t n = co_await conn->ReadSome(asio::buffer(chunk), ec);
    conn->Disarm();
    conn->idle = false;
    if (!ec) {
      in.append(chunk.data(), n);
      co_return true;
    }
    if (conn->timed_out) {
      Log(LogLevel::kInfo, "smtp client timed out", {{"peer", slot.peer()}});
      co_await finish(421, "4.4.2", cfg.hostname + " Error: timeout exceeded");
    } else if (draining && ec == asio::error::operation_aborted) {
      co_await finish(421, "4.3.2", cfg.hostname + " Service shutting down, try again later");
    } else {
      Log(LogLevel::kDebug, "smtp connection closed",
          {{"peer", slot.peer()}, {"reason", ec.message()}});
    }
    co_return false;
  };

  reply(220, "", cfg.hostname + (lmtp ? " LMTP" : " ESMTP") + " blindlist ready");
  for (;;) {
    // Take one complete line from the buffer, reading more as needed.
    const std::size_t nl = in.find('\n', in_pos);
    if (nl == std::string::npos) {
      if (in.size() - in_pos > cfg.max_line_bytes + 2) {
        co_await finish(500, "5.5.2", "Line too long");
        co_return;
      }
      if (!co_await read_more(cfg.command_timeout, !in_transaction)) co_return;
      continue;
    }
    std::string_view line(in.data() + in_pos, nl - in_pos);
    in_pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    if (++commands > cfg.max_commands) {
      co_await finish(421, "4.7.0", cfg.hostname + " Too many commands, closing connection");
      co_return;
    }
    auto bad_command = [&](const SmtpReply& r) -> bool {
      if (++errors > cfg.max_errors) return false;
      AppendReply(r, out);
      return true;
    };
    auto parsed = line.size() > cfg.max_line_bytes
                      ? Result<SmtpCommand>(MakeError("smtp-syntax", "500 5.5.2 Line too long"))
                      : ParseCommand(line);
    if (!parsed.ok()) {
      if (!bad_command(ReplyForError(parsed.error()))) break;
      continue;
    }
    SmtpCommand& cmd = *parsed;
    bool give_up = false;  // the error limit was reached
    using Verb = SmtpCommand::Verb;
    const bool wrong_hello = (lmtp && (cmd.verb == Verb::kHelo || cmd.verb == Verb::kEhlo)) ||
                             (!lmtp && cmd.verb == Verb::kLhlo);
    if (cmd.verb == Verb::kUnknown || wrong_hello) {
      if (!bad_command(SmtpReply{500, "5.5.1", "Command unrecognized"})) break;
      continue;
    }
    const bool needs_hello = cmd.verb == Verb::kMail || cmd.verb == Verb::kRcpt ||
                             cmd.verb == Verb::kData || cmd.verb == Verb::kStartTls;
    if (needs_hello && !greeted) {
      if (!bad_command(SmtpReply{503, "5.5.1", lmtp ? "Send LHLO first" : "Send EHLO/HELO first"}))
        break;
      continue;
    }

    switch (cmd.verb) {
      case Verb::kHelo:
      case Verb::kEhlo:
      case Verb::kLhlo: {
        reset_transaction();
        env.helo = cmd.argument;
        greeted = true;
        if (cmd.verb == Verb::kHelo) {
          reply(250, "", cfg.hostname);
          break;
        }
        std::string text = cfg.hostname + "\nPIPELINING\nSIZE " +
                           std::to_string(cfg.max_message_bytes) +
                           "\n8BITMIME\nENHANCEDSTATUSCODES";
        if (tls_ctx && !conn->tls) text += "\nSTARTTLS";
        // No enhanced code on EHLO lines: clients parse the keywords.
        reply(250, "", text);
        break;
      }
      case Verb::kMail: {
        if (in_transaction) {
          give_up = !bad_command(SmtpReply{503, "5.5.1", "Nested MAIL command"});
          break;
        }
        env.declared_size.reset();
        for (const auto& [key, value] : cmd.parameters) {
          if (key == "SIZE") env.declared_size = std::stoull(value);
        }
        if (env.declared_size && *env.declared_size > cfg.max_message_bytes) {
          reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
          env.declared_size.reset();
          break;
        }
        env.mail_from = cmd.address;
        SmtpReply r =
            CallHandler("OnMailFrom", slot.peer(), [&] { return handler->OnMailFrom(env); });
        if (r.code >= 200 && r.code < 300) {
          in_transaction = true;
        } else {
          env.mail_from.clear();
          env.declared_size.reset();
        }
        AppendReply(r, out);
        break;
      }
      case Verb::kRcpt: {
        if (!in_transaction) {
          give_up = !bad_command(SmtpReply{503, "5.5.1", "Need MAIL before RCPT"});
          break;
        }
        if (static_cast<int>(env.recipients.size()) >= cfg.max_recipients) {
          reply(452, "4.5.3", "Too many recipients");
          break;
        }
        SmtpReply r = CallHandler("OnRcptTo", slot.peer(),
                                  [&] { return handler->OnRcptTo(env, cmd.address); });
        if (r.code >= 200 && r.code < 300) env.recipients.push_back(cmd.address);
        AppendReply(r, out);
        break;
      }
      case Verb::kData: {
        if (!in_transaction) {
          give_up = !bad_command(SmtpReply{503, "5.5.1", "Need MAIL command"});
          break;
        }
        if (env.recipients.empty()) {
          reply(554, "5.5.1", "No valid recipients");
          break;
        }
        reply(354, "", "End data with <CR><LF>.<CR><LF>");
        DotUnstuffer data(cfg.max_message_bytes, cfg.max_line_bytes);
        for (;;) {
          in_pos += data.Feed(std::string_view(in).substr(in_pos));
          if (data.done()) break;
          if (!co_await read_more(cfg.data_timeout, false)) co_return;
        }
        const std::size_t wanted = lmtp ? env.recipients.size() : 1;
        std::vector<SmtpReply> replies;
        if (data.too_large()) {
          replies.assign(
              wanted, SmtpReply{552, "5.3.4", "Message size exceeds fixed maximum message size"});
        } else if (data.line_too_long()) {
          replies.assign(wanted, SmtpReply{500, "5.5.2", "Line too long in message"});
        } else {
          try {
            replies = handler->OnData(env, std::move(data.message()));
          } catch (const std::exception& e) {
            Log(LogLevel::kError, "smtp handler threw",
                {{"peer", slot.peer()}, {"error", e.what()}});
            replies.assign(wanted, SmtpReply{451, "4.3.0", "Internal error, try again later"});
          }
          if (replies.size() != wanted) {
            Log(LogLevel::kError, "smtp handler gave the wrong number of DATA replies",
                {{"wanted", std::to_string(wanted)}, {"got", std::to_string(replies.size())}});
            replies.resize(wanted, SmtpReply{451, "4.3.0", "Internal error, try again later"});
          }
        }
        for (const auto& r : replies) AppendReply(r, out);
        reset_transaction();
        break;
      }
      case Verb::kRset:
        reset_transaction();
        reply(250, "2.0.0", "OK");
        break;
      case Verb::kNoop:
        reply(250, "2.0.0", "OK");
        break;
      case Verb::kVrfy:
        reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
        break;
      case Verb::kHelp:
        reply(214, "2.0.0", "See RFC 5321");
        break;
      case Verb::kQuit:
        co_await finish(221, "2.0.0", "Bye");
        co_return;
      case Verb::kStartTls: {
        if (!tls_ctx || conn->tls) {
          give_up =
              !bad_command(SmtpReply{conn->tls ? 503 : 502, "5.5.1",
                                     conn->tls ? "TLS already active" : "STARTTLS not available"});
          break;
        }
        // Whatever the client sent after STARTTLS was sent in plaintext: drop it, or a man
        // in the middle could inject commands that run inside the TLS session.
        in.clear();
        in_pos = 0;
        reply(220, "2.0.0", "Ready to start TLS");
        if (!co_await flush()) co_return;
        conn->tls = std::make_unique<ssl::stream<tcp::socket&>>(conn->socket, *tls_ctx);
        conn->Arm(cfg.command_timeout);
        co_await conn->tls->async_handshake(ssl::stream_base::server,
                                            asio::redirect_error(asio::use_awaitable, ec));
        conn->Disarm();
        if (ec) {
          Log(LogLevel::kInfo, "smtp tls handshake failed",
              {{"peer", slot.peer()}, {"error", ec.message()}});
          co_return;
        }
        // RFC 3207: forget everything learnt before TLS.
        reset_transaction();
        greeted = false;
        env.helo.clear();
        env.tls = true;
        break;
      }
      case Verb::kUnknown:
        break;
    }
    if (give_up) break;
  }
  // Only the error limit leaves the loop with `break`.
  Log(LogLevel::kInfo, "smtp client sent too many bad commands", {{"peer", slot.peer()}});
  co_await finish(421, "4.7.0", cfg.hostname + " Too many errors, closing connection");
}

void SmtpServer::Impl::CancelSessions(bool only_idle) {
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(mu);
    for (const auto& [id, conn] : sessions) live.push_back(conn);
  }
  for (auto& conn : live) {
    asio::post(conn->strand, [conn, only_idle] {
      if (conn->open && (conn->idle || !only_idle)) {
        error_code ignored;
        conn->socket.cancel(ignored);
      }
    });
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
  {
    std::lock_guard lock(s.mu);
    if (s.started || s.stop_called) return MakeError("bad-state", "the server was already started");
  }
  if (s.config.threads < 1) return MakeError("bad-config", "threads must be at least 1");
  if (!s.handler) return MakeError("bad-config", "the smtp server needs a handler");
  std::shared_ptr<ssl::context> tls;
  if (!s.config.cert_file.empty() && !s.config.key_file.empty()) {
    auto built = BuildTlsContext(s.config.cert_file, s.config.key_file);
    if (!built.ok()) return built.error();
    tls = std::move(built).value();
  }
  error_code ec;
  asio::ip::address address = asio::ip::make_address(s.config.listen_address, ec);
  if (ec) {
    return MakeError("bad-config",
                     "listen address '" + s.config.listen_address + "' is not an IP address");
  }
  tcp::endpoint endpoint(address, s.config.port);
  const std::string where = s.config.listen_address + ":" + std::to_string(s.config.port);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    s.acceptor.close(ignored);
    return MakeError("bind-failed", "cannot listen on " + where + ": " + ec.message());
  }
  s.bound_port = s.acceptor.local_endpoint(ec).port();
  {
    std::lock_guard lock(s.mu);
    s.tls = std::move(tls);
    s.started = true;
  }
  asio::co_spawn(s.accept_strand, s.AcceptLoop(),
                 [](const std::exception_ptr& e) { LogException("smtp accept loop failed", e); });
  for (int i = 0; i < s.config.threads; ++i) {
    s.threads.emplace_back([&s] {
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          Log(LogLevel::kError, "smtp worker caught an exception", {{"error", e.what()}});
        }
      }
    });
  }
  Log(LogLevel::kInfo, "smtp server listening",
      {{"address", s.config.listen_address},
       {"port", std::to_string(s.bound_port)},
       {"protocol", s.config.protocol == SmtpServerConfig::Protocol::kLmtp ? "lmtp" : "smtp"}});
  return Status::Ok();
}

std::uint16_t SmtpServer::port() const { return impl_->bound_port; }

void SmtpServer::Stop() {
  Impl& s = *impl_;
  {
    std::unique_lock lock(s.mu);
    if (s.stop_called) {
      s.cv.wait(lock, [&] { return s.stopped; });
      return;
    }
    s.stop_called = true;
    s.draining = true;
    if (!s.started) {
      s.stopped = true;
      s.cv.notify_all();
      return;
    }
  }
  asio::post(s.accept_strand, [&s] {
    error_code ignored;
    s.acceptor.close(ignored);
  });
  s.CancelSessions(/*only_idle=*/true);
  {
    std::unique_lock lock(s.mu);
    const auto deadline = std::chrono::steady_clock::now() + s.config.drain_timeout;
    if (!s.cv.wait_until(lock, deadline, [&] { return s.connections == 0; })) {
      Log(LogLevel::kWarning, "smtp drain timeout: closing sessions still in a transaction",
          {{"connections", std::to_string(s.connections)}});
      lock.unlock();
      s.CancelSessions(/*only_idle=*/false);
      lock.lock();
      s.cv.wait_for(lock, kDrainGrace, [&] { return s.connections == 0; });
    }
  }
  s.ioc.stop();
  for (auto& t : s.threads) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else if (t.joinable()) {
      t.join();
    }
  }
  s.threads.clear();
  {
    std::lock_guard lock(s.mu);
    s.stopped = true;
  }
  s.cv.notify_all();
  Log(LogLevel::kInfo, "smtp server stopped", {{"port", std::to_string(s.bound_port)}});
}

void SmtpServer::Wait() {
  Impl& s = *impl_;
  std::unique_lock lock(s.mu);
  s.cv.wait(lock, [&] { return s.stopped; });
}

Status SmtpServer::ReloadCertificates() {
  Impl& s = *impl_;
  if (s.config.cert_file.empty() || s.config.key_file.empty()) {
    return MakeError("bad-config", "no cert_file/key_file configured: STARTTLS is off");
  }
  auto tls = BuildTlsContext(s.config.cert_file, s.config.key_file);
  if (!tls.ok()) {
    Log(LogLevel::kError, "smtp certificate reload failed; keeping the old ones",
        {{"error", tls.error().message}});
    return tls.error();
  }
  {
    std::lock_guard lock(s.mu);
    s.tls = std::move(tls).value();
  }
  Log(LogLevel::kInfo, "smtp certificates reloaded", {{"cert_file", s.config.cert_file}});
  return Status::Ok();
}

}  // namespace blindlist::net
