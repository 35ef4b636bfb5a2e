// Listener: the accept loop, connection limits, worker threads and drain of every server
// in src/net. Connections are admitted on the accept strand and served on a strand of
// their own, so a protocol's timers and I/O never race.
#include "net/listener.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "net/openssl_error.h"
#include "obs/log.h"

namespace blindlist::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// The application, not TLS, decides what a client certificate means; the
// handshake has still proved that the client holds its private key.
int AcceptAnyClientChain(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

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

}  // namespace

Result<std::shared_ptr<TlsContext>> BuildServerTlsContext(const TlsSettings& settings) {
  auto ctx = std::make_shared<TlsContext>(TlsContext::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(native, settings.min_version) != 1 ||
      SSL_CTX_set_max_proto_version(native, settings.max_version) != 1) {
    return MakeError("tls-config", "cannot set the TLS versions: " + OpenSslError());
  }
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  const std::string& cert_file = settings.cert_file;
  const std::string& key_file = settings.key_file;
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
  if (settings.request_client_certificate) {
    // Request, never require, a client certificate (no SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, AcceptAnyClientChain);
    // No resumption: every connection proves possession of its client key afresh,
    // and with verify mode set OpenSSL insists on a session id context anyway.
    static const unsigned char kSessionContext[] = "blindlist-https";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(native, 0);
  }
  return ctx;
}

struct Listener::Impl {
  Impl(ListenerConfig c, ConnectionHandler* h)
      : config(std::move(c)),
        handler(h),
        max_connections(config.max_connections),
        max_connections_per_peer(config.max_connections_per_peer),
        accept_strand(asio::make_strand(ioc)),
        acceptor(accept_strand) {}

  std::string Message(std::string_view what) const { return config.log_prefix + std::string(what); }
  asio::awaitable<void> AcceptLoop(Listener* owner);
  void Admit(Listener* owner, tcp::socket socket, const Strand& strand);
  void CancelSessions(bool only_idle);
  Status Bind();

  const ListenerConfig config;
  ConnectionHandler* const handler;

  mutable std::mutex mu;  // guards the members up to `cv`
  std::shared_ptr<TlsContext> tls;
  int max_connections;
  int max_connections_per_peer;
  int connections = 0;
  std::map<std::string, int> per_peer;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions;
  std::uint64_t next_session = 0;
  bool started = false;
  bool stop_called = false;
  bool stopped = false;
  std::condition_variable cv;  // connections dropped, or stopped

  std::atomic<bool> draining{false};
  std::uint16_t bound_port = 0;

  // Declared after the state above so that destroying the io_context (and with
  // it any coroutine frames still parked in it) finds that state alive.
  asio::io_context ioc;
  Strand accept_strand;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
};

ConnectionSlot::ConnectionSlot(Listener* listener, std::uint64_t id, std::string peer)
    : listener_(listener), id_(id), peer_(std::move(peer)) {}

ConnectionSlot::ConnectionSlot(ConnectionSlot&& o) noexcept
    : listener_(std::exchange(o.listener_, nullptr)), id_(o.id_), peer_(std::move(o.peer_)) {}

ConnectionSlot::~ConnectionSlot() {
  if (listener_ != nullptr) listener_->Release(id_, peer_);
}

void Listener::Release(std::uint64_t id, const std::string& peer) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  --s.connections;
  auto it = s.per_peer.find(peer);
  if (it != s.per_peer.end() && --it->second <= 0) s.per_peer.erase(it);
  s.sessions.erase(id);
  s.cv.notify_all();
}

asio::awaitable<void> Listener::Impl::AcceptLoop(Listener* owner) {
  for (;;) {
    // The socket lives on the connection's own strand from the start: a protocol's
    // timeout handlers run on the socket's executor and must not race the session.
    Strand strand = asio::make_strand(ioc);
    tcp::socket socket(strand);
    error_code ec;
    co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (draining) co_return;  // the socket, if any, closes on destruction
    if (ec) {
      if (!acceptor.is_open()) co_return;
      // EMFILE and friends: back off instead of spinning, keep serving.
      Log(LogLevel::kWarning, Message("accept failed"), {{"error", ec.message()}});
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    Admit(owner, std::move(socket), strand);
  }
}

void Listener::Impl::Admit(Listener* owner, tcp::socket socket, const Strand& strand) {
  std::string peer = PeerAddress(socket);
  if (peer.empty()) return;  // already gone
  std::shared_ptr<Session> session = handler->NewSession(strand);
  std::shared_ptr<TlsContext> ctx;
  std::uint64_t id = 0;
  bool refused = false;
  {
    std::lock_guard lock(mu);
    if (stop_called) return;
    auto it = per_peer.find(peer);
    const int from_peer = it == per_peer.end() ? 0 : it->second;
    if (connections >= max_connections || from_peer >= max_connections_per_peer) {
      Log(LogLevel::kWarning, Message("connection refused: limit reached"),
          {{"peer", peer},
           {"connections", std::to_string(connections)},
           {"from_peer", std::to_string(from_peer)}});
      refused = true;
    } else {
      ++connections;
      ++per_peer[peer];
      id = next_session++;
      sessions.emplace(id, session);
      ctx = tls;
    }
  }
  if (refused) {
    handler->Refuse(socket, peer);
    return;
  }
  ConnectionSlot slot(owner, id, std::move(peer));
  asio::co_spawn(session->strand,
                 handler->Serve(std::move(socket), session, std::move(slot), std::move(ctx)),
                 [session, what = Message("session failed")](const std::exception_ptr& e) {
                   session->open = false;
                   session->Finished();
                   LogException(what, e);
                 });
}

void Listener::Impl::CancelSessions(bool only_idle) {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mu);
    for (const auto& [id, session] : sessions) live.push_back(session);
  }
  for (auto& session : live) {
    asio::post(session->strand, [session, only_idle] {
      if (session->open && (session->idle || !only_idle)) session->CancelIo();
    });
  }
}

Status Listener::Impl::Bind() {
  error_code ec;
  asio::ip::address address = asio::ip::make_address(config.listen_address, ec);
  if (ec) {
    return MakeError("bad-config",
                     "listen address '" + config.listen_address + "' is not an IP address");
  }
  tcp::endpoint endpoint(address, config.port);
  const std::string where = config.listen_address + ":" + std::to_string(config.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acceptor.close(ignored);
    return MakeError("bind-failed", "cannot listen on " + where + ": " + ec.message());
  }
  bound_port = acceptor.local_endpoint(ec).port();
  return Status::Ok();
}

Listener::Listener(ListenerConfig config, ConnectionHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(config), handler)) {}

Listener::~Listener() = default;

Status Listener::Start(std::vector<std::pair<std::string, std::string>> fields) {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.started || s.stop_called) return MakeError("bad-state", "the server was already started");
  }
  if (s.config.threads < 1) return MakeError("bad-config", "threads must be at least 1");
  std::shared_ptr<TlsContext> tls;
  if (s.config.tls) {
    auto built = BuildServerTlsContext(*s.config.tls);
    if (!built.ok()) return built.error();
    tls = std::move(built).value();
  }
  BL_TRY(s.Bind());
  {
    std::lock_guard lock(s.mu);
    s.tls = std::move(tls);
    s.started = true;
  }
  asio::co_spawn(s.accept_strand, s.AcceptLoop(this),
                 [what = s.Message("accept loop failed")](const std::exception_ptr& e) {
                   LogException(what, e);
                 });
  for (int i = 0; i < s.config.threads; ++i) {
    s.threads.emplace_back([&s] {
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          Log(LogLevel::kError, s.Message("worker caught an exception"), {{"error", e.what()}});
        }
      }
    });
  }
  fields.insert(fields.begin(),
                {{"address", s.config.listen_address}, {"port", std::to_string(s.bound_port)}});
  Log(LogLevel::kInfo, s.Message("server listening"), fields);
  return Status::Ok();
}

std::uint16_t Listener::port() const { return impl_->bound_port; }

bool Listener::draining() const { return impl_->draining; }

void Listener::Stop(const DrainPolicy& drain) {
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
  // Idle sessions go now; the others see draining() once what is in flight is done.
  s.CancelSessions(/*only_idle=*/true);
  {
    std::unique_lock lock(s.mu);
    const auto deadline = std::chrono::steady_clock::now() + drain.timeout;
    if (!s.cv.wait_until(lock, deadline, [&] { return s.connections == 0; })) {
      Log(LogLevel::kWarning, s.Message("drain timeout: closing connections still in flight"),
          {{"connections", std::to_string(s.connections)}});
      if (drain.grace.count() > 0) {
        lock.unlock();
        s.CancelSessions(/*only_idle=*/false);
        lock.lock();
        s.cv.wait_for(lock, drain.grace, [&] { return s.connections == 0; });
      }
    }
  }
  s.ioc.stop();
  for (auto& t : s.threads) {
    // Stop() from inside a handler cannot join its own thread.
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else if (t.joinable()) {
      t.join();
    }
  }
  s.threads.clear();
  if (drain.after_join) drain.after_join();
  {
    std::lock_guard lock(s.mu);
    s.stopped = true;
  }
  s.cv.notify_all();
  Log(LogLevel::kInfo, s.Message("server stopped"), {{"port", std::to_string(s.bound_port)}});
}

void Listener::Wait() {
  Impl& s = *impl_;
  std::unique_lock lock(s.mu);
  s.cv.wait(lock, [&] { return s.stopped; });
}

Status Listener::ReloadTls() {
  Impl& s = *impl_;
  if (!s.config.tls) return Status::Ok();
  auto tls = BuildServerTlsContext(*s.config.tls);
  if (!tls.ok()) {
    Log(LogLevel::kError, s.Message("certificate reload failed; keeping the old ones"),
        {{"error", tls.error().message}});
    return tls.error();
  }
  {
    std::lock_guard lock(s.mu);
    s.tls = std::move(tls).value();  // connections already open keep theirs
  }
  Log(LogLevel::kInfo, s.Message("certificates reloaded"),
      {{"cert_file", s.config.tls->cert_file}});
  return Status::Ok();
}

std::shared_ptr<TlsContext> Listener::Tls() const {
  std::lock_guard lock(impl_->mu);
  return impl_->tls;
}

void Listener::SetConnectionLimits(int max_connections, int max_connections_per_peer) {
  std::lock_guard lock(impl_->mu);
  impl_->max_connections = max_connections;
  impl_->max_connections_per_peer = max_connections_per_peer;
}

void Listener::LogException(std::string_view what, const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    Log(LogLevel::kError, what, {{"error", ex.what()}});
  } catch (...) {
    Log(LogLevel::kError, what, {{"error", "unknown exception"}});
  }
}

}  // namespace blindlist::net
