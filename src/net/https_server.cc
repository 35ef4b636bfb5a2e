// HttpsServer: one C++20 coroutine per connection, each on its own strand.
//
// Shape of a connection: TLS 1.3 handshake (client certificate requested, any
// chain accepted: the application judges it), then requests read one at a time
// with a per-request deadline and header/body limits, the handler called on the
// connection's strand (it answers at once, or later from any thread through an
// HttpResponder), the response written, and keep-alive until a
// limit, an error or a drain ends it. Expected I/O errors come back as values
// (redirect_error); anything thrown is caught at the session boundary and logged.
//
// Stop() drains: the acceptor closes, idle connections (waiting for the first
// byte of a request) are cancelled, connections with a request in flight finish
// it and answer with "Connection: close"; after drain_timeout the io_context stops.

// The own header first, as usual; here it also matters: Boost 1.74's
// asio/awaitable.hpp uses std::exchange without including <utility>.
#include "net/https_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

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
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include "blindlist/hex.h"
#include "net/listener.h"
#include "obs/log.h"

namespace blindlist::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// After an error response or the last response, how long we keep reading and
// discarding what the client still sends, so that closing does not reset the
// connection before the client has read our answer (Apache's lingering close).
constexpr std::chrono::milliseconds kMaxLinger{2000};
constexpr std::size_t kMaxLingerBytes = std::size_t{8} * 1024 * 1024;
// The first read of a request only tells us one has begun; the parser reads the rest.
constexpr std::size_t kFirstReadBytes = std::size_t{16} * 1024;

// Percent-decoding; '+' means space only in a query. False on a malformed
// escape or a decoded NUL (never useful, sometimes dangerous downstream).
bool PercentDecode(std::string_view in, bool plus_is_space, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int v = hex::PairValue(in[i + 1], in[i + 2]);
      if (v < 0) return false;
      c = static_cast<char>(v);
      if (c == '\0') return false;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out += c;
  }
  return true;
}

// Well-formed UTF-8 (RFC 3629): no overlong form, no surrogate, nothing above U+10FFFF. A path
// names groups and addresses, which are text: other bytes could reach no record but a store.
bool WellFormedUtf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    unsigned int low = 0x80;
    unsigned int high = 0xBF;  // the first continuation byte's range
    if (b < 0x80) {
      ++i;
      continue;
    }
    if (b >= 0xC2 && b <= 0xDF) {
      extra = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      extra = 2;
      low = b == 0xE0 ? 0xA0 : 0x80;
      high = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
      extra = 3;
      low = b == 0xF0 ? 0x90 : 0x80;
      high = b == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // cut short
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if (c < (k == 1 ? low : 0x80) || c > (k == 1 ? high : 0xBF)) return false;
    }
    i += extra + 1;
  }
  return true;
}

// The path is split at its raw "/" first and each segment decoded alone, so an encoded "/"
// ("a%2Fb") can never become two segments: a segment that decodes to a "/" or a control byte is
// refused, which makes the decoded path split back into exactly the segments that were sent.
// Empty segments are kept; the route table matches no path that has one.
bool DecodePath(std::string_view raw, std::string& path) {
  path.clear();
  std::string segment;
  for (;;) {
    const auto slash = raw.find('/');
    if (!PercentDecode(raw.substr(0, slash), false, segment)) return false;
    if (std::any_of(
            segment.begin(), segment.end(),
            [](char c) { return c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }) ||
        !WellFormedUtf8(segment)) {
      return false;
    }
    path += segment;
    if (slash == std::string_view::npos) return true;
    path += '/';
    raw.remove_prefix(slash + 1);
  }
}

// origin-form only: "/path?query". Absolute-form and "*" are refused.
bool ParseTarget(std::string_view target, std::string& path,
                 std::vector<std::pair<std::string, std::string>>& query) {
  if (target.empty() || target.front() != '/') return false;
  std::size_t q = target.find('?');
  if (!DecodePath(target.substr(0, q), path)) return false;
  if (q == std::string_view::npos) return true;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    std::size_t amp = rest.find('&');
    std::string_view item = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    std::string key, value;
    if (!PercentDecode(item.substr(0, eq), true, key)) return false;
    if (eq != std::string_view::npos && !PercentDecode(item.substr(eq + 1), true, value)) {
      return false;
    }
    query.emplace_back(std::move(key), std::move(value));
  }
  return true;
}

std::string Lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool HasControlChars(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](unsigned char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

http::response<http::string_body> ToBeast(const HttpResponse& r, unsigned version,
                                          bool keep_alive) {
  http::response<http::string_body> out;
  out.version(version);
  out.result(r.status >= 100 && r.status <= 599 ? static_cast<unsigned>(r.status) : 500u);
  if (!r.content_type.empty() && !HasControlChars(r.content_type)) {
    out.set(http::field::content_type, r.content_type);
  }
  // JSON answers carry keys, tokens and roster data: no cache may keep them.
  if (r.content_type.rfind("application/json", 0) == 0) {
    out.set(http::field::cache_control, "no-store");
  }
  for (const auto& [name, value] : r.headers) {
    // A handler must not be able to split the response.
    if (name.empty() || HasControlChars(name) || HasControlChars(value)) {
      Log(LogLevel::kWarning, "dropping a response header with control characters",
          {{"header", name}});
      continue;
    }
    out.set(name, value);
  }
  out.body() = r.body;
  out.keep_alive(keep_alive);
  out.prepare_payload();  // Content-Length, always
  return out;
}

// What Stop() needs to reach a live connection. Touched only on its strand.
struct SessionControl : Session {
  explicit SessionControl(Strand s) : Session(std::move(s)) { idle = true; }
  void CancelIo() override {
    if (stream != nullptr) stream->cancel();
  }
  beast::tcp_stream* stream = nullptr;  // null once the session is over
};

}  // namespace

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

std::string HttpRequest::Query(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return {};
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message) {
  nlohmann::json j = {{"error", std::string(code)}, {"message", std::string(message)}};
  return Json(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

namespace {

// The answers the server still waits for. A responder may outlive the server
// (a handler hands it to another thread), so it holds this registry, not the
// server: at Stop() the registry closes and drops every waiting completion while
// the io_context still exists, and responders called later do nothing.
class PendingCalls {
 public:
  using Resume = std::function<void(HttpResponse)>;

  // Registers `resume` (which posts to the session's strand); 0 if closed.
  std::uint64_t Add(Resume resume) {
    std::lock_guard lock(mu_);
    if (!open_) return 0;
    live_.emplace(++next_, std::move(resume));
    return next_;
  }
  // The first answer for `id` resumes its session; later ones are ignored.
  void Answer(std::uint64_t id, HttpResponse response) {
    std::lock_guard lock(mu_);  // held while posting, so Close() cannot pass us
    auto it = live_.find(id);
    if (it == live_.end()) return;
    Resume resume = std::move(it->second);
    live_.erase(it);
    resume(std::move(response));
  }
  void Close() {
    std::map<std::uint64_t, Resume> dropped;
    std::lock_guard lock(mu_);
    open_ = false;
    dropped.swap(live_);
    dropped.clear();  // under the lock: a racing Answer() must not post afterwards
  }

 private:
  std::mutex mu_;
  bool open_ = true;
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, Resume> live_;
};

AsyncHttpHandler FromSync(HttpHandler handler) {
  return [handler = std::move(handler)](const HttpRequest& request, const HttpResponder& respond) {
    respond(handler(request));
  };
}

}  // namespace

namespace {

ListenerConfig MakeListenerConfig(const HttpsServerConfig& c) {
  ListenerConfig l;
  l.listen_address = c.listen_address;
  l.port = c.port;
  l.threads = c.threads;
  l.max_connections = c.max_connections;
  l.max_connections_per_peer = c.max_connections_per_peer;
  if (!c.plain_http) {
    l.tls = TlsSettings{c.cert_file, c.key_file, TLS1_3_VERSION, TLS1_3_VERSION,
                        /*request_client_certificate=*/true};
  }
  return l;
}

}  // namespace

struct HttpsServer::Impl : ConnectionHandler {
  Impl(HttpsServerConfig c, AsyncHttpHandler h)
      : config(std::move(c)),
        handler(std::move(h)),
        limits(std::make_shared<const HttpsServerConfig>(config)),
        listener(MakeListenerConfig(config), this) {}

  std::shared_ptr<const HttpsServerConfig> Limits() {
    std::lock_guard lock(mu);
    return limits;
  }

  std::shared_ptr<Session> NewSession(const Strand& strand) override {
    return std::make_shared<SessionControl>(strand);
  }
  void Refuse(tcp::socket& /*socket*/, const std::string& peer) override {
    // Nothing is sent (closing the socket refuses the connection); the observer hears of it
    // as the 503 it amounts to.
    HttpRequest partial;
    partial.peer_address = peer;
    Observe(partial,
            HttpResponse::Error(503, "too-many-connections", "too many connections; retry later"));
  }
  asio::awaitable<void> Serve(tcp::socket socket, std::shared_ptr<Session> session,
                              ConnectionSlot slot, std::shared_ptr<TlsContext> tls) override;

  // Stream: TlsStream, or beast::tcp_stream when config.plain_http.
  template <typename Stream>
  asio::awaitable<void> ServeRequests(Stream& stream, SessionControl& control,
                                      const ConnectionSlot& slot, Bytes peer_der);
  template <typename Stream>
  asio::awaitable<void> CloseGracefully(Stream& stream, std::chrono::milliseconds timeout);

  // Runs the handler and waits, without holding a thread, for its answer, which
  // resumes the session on `strand` (the session's own).
  asio::awaitable<HttpResponse> Call(const HttpRequest& request, Strand strand);
  // Tells the refusal observer, if any, of a request refused before the handler.
  void Observe(const HttpRequest& partial, const HttpResponse& answer) const;

  const HttpsServerConfig config;  // address, port, files, threads: fixed at construction
  const AsyncHttpHandler handler;
  const std::shared_ptr<PendingCalls> pending = std::make_shared<PendingCalls>();
  RefusalObserver refusal_observer;  // set before Start, read-only afterwards

  std::mutex mu;  // guards `limits`
  std::shared_ptr<const HttpsServerConfig> limits;

  // Last: stopping and destroying it ends the sessions, which use the members above.
  Listener listener;
};

asio::awaitable<void> HttpsServer::Impl::Serve(tcp::socket socket, std::shared_ptr<Session> session,
                                               ConnectionSlot slot,
                                               std::shared_ptr<TlsContext> ctx) {
  auto& control = static_cast<SessionControl&>(*session);
  // Every response is written whole, at once: with Nagle's algorithm, the tail of a
  // response larger than one TLS record waited for the client's delayed ACK (40 ms).
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (config.plain_http) {
    beast::tcp_stream plain(std::move(socket));
    control.stream = &plain;
    struct Unregister {
      SessionControl& c;
      ~Unregister() { c.stream = nullptr; }
    } unregister{control};
    co_await ServeRequests(plain, control, slot, Bytes());
    co_return;
  }
  TlsStream stream(std::move(socket), *ctx);
  control.stream = &beast::get_lowest_layer(stream);
  struct Unregister {
    SessionControl& c;
    ~Unregister() { c.stream = nullptr; }
  } unregister{control};

  auto lim = Limits();
  beast::error_code ec;
  beast::get_lowest_layer(stream).expires_after(lim->read_timeout);
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    Log(LogLevel::kDebug, "tls handshake failed", {{"peer", slot.peer()}, {"error", ec.message()}});
    co_return;
  }
  Bytes peer_der;
  if (X509* cert = SSL_get0_peer_certificate(stream.native_handle())) {
    int len = i2d_X509(cert, nullptr);
    if (len > 0) {
      peer_der.resize(static_cast<std::size_t>(len));
      unsigned char* p = peer_der.data();
      i2d_X509(cert, &p);
    }
  }
  co_await ServeRequests(stream, control, slot, std::move(peer_der));
}

template <typename Stream>
asio::awaitable<void> HttpsServer::Impl::ServeRequests(Stream& stream, SessionControl& control,
                                                       const ConnectionSlot& slot, Bytes peer_der) {
  beast::tcp_stream& lowest = beast::get_lowest_layer(stream);

  beast::flat_buffer buffer;
  for (int served = 0;;) {
    beast::error_code ec;
    if (buffer.size() == 0) {
      // Idle between requests: the only state in which a drain may cut us off.
      control.idle = true;
      if (listener.draining()) co_return;
      lowest.expires_after(Limits()->read_timeout);
      std::size_t n = co_await stream.async_read_some(
          buffer.prepare(kFirstReadBytes), asio::redirect_error(asio::use_awaitable, ec));
      buffer.commit(n);
      control.idle = false;
      if (ec) {
        // eof, a truncated stream, a timeout or a drain: nothing to answer.
        Log(LogLevel::kDebug, "connection closed",
            {{"peer", slot.peer()}, {"reason", ec.message()}});
        co_return;
      }
    }
    // The limits in force when the request's first bytes arrived.
    auto lim = Limits();
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(lim->max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(static_cast<std::uint64_t>(lim->max_body_bytes));

    // One deadline for the whole request, so a slow sender cannot hold the slot.
    lowest.expires_after(lim->read_timeout);
    while (!parser.is_done()) {
      co_await http::async_read_some(stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    lowest.expires_never();

    if (ec) {
      std::optional<HttpResponse> answer;
      if (ec == http::error::body_limit) {
        answer = HttpResponse::Error(
            413, "body-too-large",
            "the request body exceeds " + std::to_string(lim->max_body_bytes) + " bytes");
      } else if (ec == http::error::header_limit) {
        answer = HttpResponse::Error(
            431, "headers-too-large",
            "the request headers exceed " + std::to_string(lim->max_header_bytes) + " bytes");
      } else if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
        if (ec != http::error::end_of_stream && ec != http::error::partial_message) {
          answer = HttpResponse::Error(400, "bad-request", "malformed request: " + ec.message());
        }
      }
      if (!answer) {
        // end_of_stream, timeout, cancellation by a drain, a reset: nothing to answer.
        Log(LogLevel::kDebug, "connection closed",
            {{"peer", slot.peer()}, {"reason", ec.message()}});
        co_return;
      }
      Log(LogLevel::kInfo, "request refused",
          {{"peer", slot.peer()},
           {"status", std::to_string(answer->status)},
           {"reason", ec.message()}});
      if (refusal_observer) {
        // What is known of a request refused before the handler saw it, so the
        // application can audit it too.
        HttpRequest partial;
        partial.peer_address = slot.peer();
        // The request line is stored as soon as it is parsed, before the fields
        // (where a too-large Content-Length is caught), so it is usually known.
        partial.method = std::string(parser.get().method_string());
        partial.target = std::string(parser.get().target());
        if (!partial.target.empty()) (void)ParseTarget(partial.target, partial.path, partial.query);
        Observe(partial, *answer);
      }
      auto out = ToBeast(*answer, 11, false);
      lowest.expires_after(lim->read_timeout);
      co_await http::async_write(stream, out, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) co_await CloseGracefully(stream, lim->read_timeout);
      co_return;
    }

    auto& message = parser.get();
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    HttpResponse response;
    if (!ParseTarget(request.target, request.path, request.query)) {
      response = HttpResponse::Error(400, "bad-target", "the request target is malformed");
      HttpRequest partial;
      partial.peer_address = slot.peer();
      partial.method = request.method;
      partial.target = request.target;
      Observe(partial, response);
    } else {
      for (const auto& field : message) {
        request.headers.emplace_back(Lowercase(std::string(field.name_string())),
                                     std::string(field.value()));
      }
      request.body = std::move(message.body());
      request.peer_certificate_der = peer_der;
      request.peer_address = slot.peer();
      response = co_await Call(request, control.strand);
    }
    ++served;
    const bool keep_alive =
        message.keep_alive() && served < lim->max_requests_per_connection && !listener.draining();
    auto out = ToBeast(response, message.version(), keep_alive);
    lowest.expires_after(lim->read_timeout);
    if (message.method() == http::verb::head) {
      // Content-Length as for GET, but no body: it would corrupt the next response.
      http::response_serializer<http::string_body> serializer(out);
      co_await http::async_write_header(stream, serializer,
                                        asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await http::async_write(stream, out, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      Log(LogLevel::kDebug, "write failed", {{"peer", slot.peer()}, {"error", ec.message()}});
      co_return;
    }
    if (!keep_alive) {
      co_await CloseGracefully(stream, lim->read_timeout);
      co_return;
    }
  }
}

asio::awaitable<HttpResponse> HttpsServer::Impl::Call(const HttpRequest& request, Strand strand) {
  auto initiate = [this, &request, executor = std::move(strand)](auto completion) {
    // The completion resumes this coroutine; it is move-only, so it is shared.
    auto shared = std::make_shared<decltype(completion)>(std::move(completion));
    std::uint64_t id = pending->Add([shared, executor](HttpResponse response) {
      asio::post(executor, [shared, response = std::move(response)]() mutable {
        std::move (*shared)(std::move(response));
      });
    });
    if (id == 0) return;  // stopping: the session is dropped with the io_context
    HttpResponder respond = [calls = pending, id](HttpResponse response) {
      calls->Answer(id, std::move(response));
    };
    const char* failure = nullptr;
    std::string what;
    try {
      handler(request, respond);
    } catch (const std::exception& e) {
      failure = "handler threw";
      what = e.what();
    } catch (...) {
      failure = "handler threw";
      what = "unknown exception";
    }
    if (failure != nullptr) {
      Log(LogLevel::kError, failure,
          {{"path", request.path}, {"method", request.method}, {"error", what}});
      respond(HttpResponse::Error(500, "internal", "internal server error"));  // unless answered
    }
  };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(HttpResponse)>(
      std::move(initiate), asio::use_awaitable);
}

template <typename Stream>
asio::awaitable<void> HttpsServer::Impl::CloseGracefully(Stream& stream,
                                                         std::chrono::milliseconds timeout) {
  beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
  beast::error_code ec;
  const auto linger = std::min<std::chrono::milliseconds>(timeout, kMaxLinger);
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    // Send close_notify without waiting for the client's: pretending it already
    // arrived makes SSL_shutdown complete as soon as ours is written.
    SSL_set_shutdown(stream.native_handle(), SSL_RECEIVED_SHUTDOWN);
    lowest.expires_after(linger);
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {  // includes a timeout, after which Beast has closed the socket
      lowest.close();
      co_return;
    }
  }
  lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, std::size_t{16} * 1024> scratch;
  std::size_t discarded = 0;
  lowest.expires_after(linger);
  while (!ec && discarded < kMaxLingerBytes) {
    discarded += co_await lowest.async_read_some(asio::buffer(scratch),
                                                 asio::redirect_error(asio::use_awaitable, ec));
  }
  lowest.close();
}

HttpsServer::HttpsServer(HttpsServerConfig config, HttpHandler handler)
    : impl_(std::make_unique<Impl>(std::move(config), FromSync(std::move(handler)))) {}

HttpsServer::HttpsServer(HttpsServerConfig config, AsyncHttpHandler handler)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(handler))) {}

HttpsServer::~HttpsServer() {
  // A destructor must not throw: stopping is best effort here, and so is saying it failed.
  try {
    Stop();
  } catch (...) {
    try {
      Log(LogLevel::kError, "stopping the server failed");
    } catch (...) {
      std::fputs("https server: stopping failed\n", stderr);
    }
  }
}

void HttpsServer::Impl::Observe(const HttpRequest& partial, const HttpResponse& answer) const {
  if (!refusal_observer) return;
  try {
    refusal_observer(partial, answer);
  } catch (const std::exception& ex) {
    Log(LogLevel::kError, "refusal observer failed", {{"error", ex.what()}});
  }
}

void HttpsServer::SetRefusalObserver(RefusalObserver observer) {
  impl_->refusal_observer = std::move(observer);
}

Status HttpsServer::Start() { return impl_->listener.Start(); }

std::uint16_t HttpsServer::port() const { return impl_->listener.port(); }

void HttpsServer::Stop() {
  Impl& s = *impl_;
  // Handlers still owing an answer (past the drain deadline) answer into nothing.
  s.listener.Stop(DrainPolicy{s.Limits()->drain_timeout, std::chrono::milliseconds(0),
                              [&s] { s.pending->Close(); }});
}

void HttpsServer::Wait() { impl_->listener.Wait(); }

Status HttpsServer::ReloadCertificates() { return impl_->listener.ReloadTls(); }

void HttpsServer::UpdateLimits(const HttpsServerConfig& limits) {
  Impl& s = *impl_;
  auto next = std::make_shared<HttpsServerConfig>(s.config);
  next->max_header_bytes = limits.max_header_bytes;
  next->max_body_bytes = limits.max_body_bytes;
  next->read_timeout = limits.read_timeout;
  next->drain_timeout = limits.drain_timeout;
  next->max_connections = limits.max_connections;
  next->max_connections_per_peer = limits.max_connections_per_peer;
  next->max_requests_per_connection = limits.max_requests_per_connection;
  s.listener.SetConnectionLimits(next->max_connections, next->max_connections_per_peer);
  std::lock_guard lock(s.mu);
  s.limits = std::move(next);
}

}  // namespace blindlist::net
