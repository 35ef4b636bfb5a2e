// HttpsClient: blocking calls made of Beast async operations run to completion
// on a private io_context, so that every step (connect, handshake, write, read)
// is bounded by one per-request deadline (beast::tcp_stream's timer).

#include "net/https_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <optional>

#include "blindlist/error_codes.h"
#include "net/openssl_error.h"

namespace blindlist::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

constexpr std::uint32_t kMaxResponseHeaderBytes = 64 * 1024;
constexpr std::uint64_t kMaxResponseBodyBytes = std::uint64_t{64} * 1024 * 1024;

struct Url {
  std::string host;  // without brackets for IPv6
  bool host_is_ip = false;
  std::string port;    // decimal
  std::string target;  // "/path?query"
};

bool IsDigits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

Result<Url> ParseUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return MakeError(std::string(errc::kBadUrl), "'" + std::string(url) + "': " + std::string(why));
  };
  constexpr std::string_view kScheme = "https://";
  if (url.size() < kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), url.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return bad("only https:// URLs are accepted");
  }
  if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; })) {
    return bad("contains spaces or control characters");
  }
  std::string_view rest = url.substr(kScheme.size());
  std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.empty()) return bad("no host");
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");

  Url out;
  std::string_view port;
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
    beast::error_code ec;
    asio::ip::make_address_v6(out.host, ec);
    if (ec) return bad("invalid IPv6 address");
    out.host_is_ip = true;
  } else {
    std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
    out.host = std::string(authority.substr(0, colon));
    if (out.host.empty()) return bad("no host");
    bool name_chars = std::all_of(out.host.begin(), out.host.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '.' || c == '_';
    });
    if (!name_chars) return bad("invalid host name");
    beast::error_code ec;
    asio::ip::make_address_v4(out.host, ec);
    out.host_is_ip = !ec;
  }
  if (port.empty()) {
    out.port = "443";
  } else {
    if (!IsDigits(port) || port.size() > 5) return bad("invalid port");
    int p = std::stoi(std::string(port));
    if (p < 1 || p > 65535) return bad("port out of range");
    out.port = std::to_string(p);
  }
  target = target.substr(0, target.find('#'));
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  return out;
}

// A dropped keep-alive connection: the server closed it while it sat idle.
bool IsStaleConnection(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == ssl::error::stream_truncated;
}

}  // namespace

struct HttpsClient::Impl {
  explicit Impl(HttpsClientConfig c) : config(std::move(c)), tls(ssl::context::tls_client) {
    SSL_CTX* native = tls.native_handle();
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION);
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
    if (!config.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(native, config.ca_file.c_str(), nullptr) != 1) {
        config_error = MakeError(std::string(errc::kTlsFailed),
                                 "cannot load CA file " + config.ca_file + ": " + OpenSslError());
        return;
      }
    } else if (SSL_CTX_set_default_verify_paths(native) != 1) {
      config_error = MakeError(std::string(errc::kTlsFailed),
                               "cannot load the system CA store: " + OpenSslError());
      return;
    }
    if (!config.client_cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(native, config.client_cert_file.c_str()) != 1) {
        config_error = MakeError(
            std::string(errc::kTlsFailed),
            "cannot load client certificate " + config.client_cert_file + ": " + OpenSslError());
        return;
      }
      const std::string& key =
          config.client_key_file.empty() ? config.client_cert_file : config.client_key_file;
      if (SSL_CTX_use_PrivateKey_file(native, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(native) != 1) {
        config_error = MakeError(std::string(errc::kTlsFailed),
                                 "cannot load client key " + key + ": " + OpenSslError());
        return;
      }
    }
  }

  // Runs one async operation to completion (or to the stream's deadline).
  template <typename Start>
  beast::error_code Run(Start&& start) {
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  void Disconnect() {
    stream.reset();
    buffer.clear();
    connected_host.clear();
    connected_port.clear();
  }

  std::optional<Error> Connect(const Url& url, std::chrono::steady_clock::time_point deadline);
  Result<ClientResponse> Exchange(const Url& url, http::request<http::string_body>& request,
                                  std::chrono::steady_clock::time_point deadline, bool& stale);

  HttpsClientConfig config;
  std::optional<Error> config_error;
  asio::io_context ioc;
  ssl::context tls;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream;  // kept for reuse
  beast::flat_buffer buffer;
  std::string connected_host;
  std::string connected_port;
};

std::optional<Error> HttpsClient::Impl::Connect(const Url& url,
                                                std::chrono::steady_clock::time_point deadline) {
  const std::string where = url.host + ":" + url.port;
  tcp::resolver::results_type endpoints;
  beast::error_code ec;
  if (url.host_is_ip) {
    auto address = asio::ip::make_address(url.host, ec);
    if (ec) return MakeError(std::string(errc::kBadUrl), "invalid address " + url.host);
    endpoints = tcp::resolver::results_type::create(
        tcp::endpoint(address, static_cast<unsigned short>(std::stoi(url.port))), url.host,
        url.port);
  } else {
    // Name resolution is blocking and bounded by the resolver's own timeouts.
    tcp::resolver resolver(ioc);
    endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec)
      return MakeError(std::string(errc::kConnectFailed),
                       "cannot resolve " + url.host + ": " + ec.message());
  }

  stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, tls);
  beast::tcp_stream& lowest = beast::get_lowest_layer(*stream);
  lowest.expires_at(deadline);
  ec = Run([&](auto handler) { lowest.async_connect(endpoints, std::move(handler)); });
  if (ec) {
    Disconnect();
    if (ec == beast::error::timeout)
      return MakeError(std::string(errc::kTimeout), "connecting to " + where);
    return MakeError(std::string(errc::kConnectFailed),
                     "cannot connect to " + where + ": " + ec.message());
  }
  // A request larger than one TLS record (a bulk request) goes out whole, without its
  // tail waiting for the server's delayed ACK.
  beast::error_code ignored;
  lowest.socket().set_option(tcp::no_delay(true), ignored);

  SSL* ssl = stream->native_handle();
  ERR_clear_error();
  if (url.host_is_ip) {
    // No SNI for address literals (RFC 6066); the certificate must name the IP.
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str()) != 1) {
      Disconnect();
      return MakeError(std::string(errc::kTlsFailed), "cannot set the expected IP " + url.host);
    }
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set_tlsext_host_name(ssl, url.host.c_str()) != 1 ||
        SSL_set1_host(ssl, url.host.c_str()) != 1) {
      Disconnect();
      return MakeError(std::string(errc::kTlsFailed),
                       "cannot set the expected host name " + url.host);
    }
  }
  ec = Run(
      [&](auto handler) { stream->async_handshake(ssl::stream_base::client, std::move(handler)); });
  if (ec) {
    std::string reason = ec.message();
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) reason = X509_verify_cert_error_string(verify);
    Disconnect();
    if (ec == beast::error::timeout)
      return MakeError(std::string(errc::kTimeout), "TLS handshake with " + where);
    return MakeError(std::string(errc::kTlsFailed),
                     "TLS handshake with " + where + " failed: " + reason);
  }
  connected_host = url.host;
  connected_port = url.port;
  return std::nullopt;
}

Result<ClientResponse> HttpsClient::Impl::Exchange(const Url& url,
                                                   http::request<http::string_body>& request,
                                                   std::chrono::steady_clock::time_point deadline,
                                                   bool& stale) {
  const std::string where = url.host + ":" + url.port;
  beast::tcp_stream& lowest = beast::get_lowest_layer(*stream);
  lowest.expires_at(deadline);
  beast::error_code ec =
      Run([&](auto handler) { http::async_write(*stream, request, std::move(handler)); });
  if (ec) {
    stale = IsStaleConnection(ec);
    Disconnect();
    if (ec == beast::error::timeout)
      return MakeError(std::string(errc::kTimeout), "sending the request to " + where);
    return MakeError(std::string(errc::kConnectFailed),
                     "sending the request to " + where + ": " + ec.message());
  }
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxResponseHeaderBytes);
  parser.body_limit(kMaxResponseBodyBytes);
  // A response to HEAD announces a body it does not carry.
  parser.skip(request.method() == http::verb::head);
  ec = Run([&](auto handler) { http::async_read(*stream, buffer, parser, std::move(handler)); });
  if (ec) {
    stale = !parser.got_some() && IsStaleConnection(ec);
    Disconnect();
    if (ec == beast::error::timeout)
      return MakeError(std::string(errc::kTimeout), "waiting for " + where);
    return MakeError(std::string(errc::kConnectFailed),
                     "reading the response from " + where + ": " + ec.message());
  }
  lowest.expires_never();

  auto& message = parser.get();
  ClientResponse out;
  out.status = static_cast<int>(message.result_int());
  for (const auto& field : message) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == "content-type") out.content_type = std::string(field.value());
    out.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  const bool keep_alive = message.keep_alive();
  out.body = std::move(message.body());
  if (!keep_alive) Disconnect();
  return out;
}

HttpsClient::HttpsClient(HttpsClientConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}

HttpsClient::~HttpsClient() = default;

Result<ClientResponse> HttpsClient::Request(
    const std::string& method, const std::string& url, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  Impl& c = *impl_;
  if (c.config_error) return *c.config_error;
  auto parsed = ParseUrl(url);
  if (!parsed.ok()) return parsed.error();
  if (method.empty() || std::any_of(method.begin(), method.end(), [](unsigned char ch) {
        return !std::isalpha(ch) && ch != '-';
      })) {
    return MakeError("bad-request", "invalid method '" + method + "'");
  }

  http::request<http::string_body> request;
  request.version(11);
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    request.method_string(method);
  } else {
    request.method(verb);
  }
  request.target(parsed->target);
  std::string host_header =
      parsed->host.find(':') != std::string::npos ? "[" + parsed->host + "]" : parsed->host;
  if (parsed->port != "443") host_header += ":" + parsed->port;
  request.set(http::field::host, host_header);
  request.set(http::field::user_agent, "blindlist");
  for (const auto& [name, value] : headers) {
    auto bad = [](unsigned char ch) { return ch == '\r' || ch == '\n' || ch == '\0'; };
    if (name.empty() || std::any_of(name.begin(), name.end(), bad) ||
        std::any_of(value.begin(), value.end(), bad)) {
      return MakeError("bad-request", "header '" + name + "' contains control characters");
    }
    request.set(name, value);
  }
  request.body() = body;
  request.prepare_payload();

  const auto deadline = std::chrono::steady_clock::now() + c.config.timeout;
  if (c.stream && (c.connected_host != parsed->host || c.connected_port != parsed->port)) {
    c.Disconnect();
  }
  // A reused connection may have been closed by the server while idle: then,
  // and only if nothing of a response arrived, try once more on a fresh one.
  for (int attempt = 0;; ++attempt) {
    const bool reused = c.stream != nullptr;
    if (!reused) {
      if (auto error = c.Connect(*parsed, deadline)) return *error;
    }
    bool stale = false;
    auto response = c.Exchange(*parsed, request, deadline, stale);
    if (response.ok() || !(reused && stale) || attempt > 0) return response;
  }
}

}  // namespace blindlist::net
