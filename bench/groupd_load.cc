// bench_groupd_load: a load client for blindlist-groupd (docs/benchmarks.md,
// "Group server throughput"; bench/groupd_load.sh drives it).
//
// N keep-alive TLS 1.3 connections, each sending one request at a time for a
// fixed duration: back to back (closed loop, --rate 0: the peak throughput), or
// on a fixed schedule (open loop, --rate R requests/s over all connections: the
// latency at a chosen load). In the open loop a request's latency counts from
// the moment it was due, not from when it was sent, so a stalled connection
// cannot hide the requests it failed to send (no coordinated omission); the
// latency from the actual send is reported beside it.
//
// The request bodies are made up front, so the client spends its CPU on TLS
// and HTTP only: posts are encrypted to the group certificate with
// crypto::Encrypt and the group's RecipientInfo is taken out of each; for
// blind, one crypto::BlindRequest per body (a pool, reused in turn). Before
// the timed run one request per operation is checked end to end: the CEK (or
// the unblinded or, with --member-key, the re-wrapped CEK) must decrypt the
// post back to what was encrypted. During the run each response must be a 200
// carrying the expected field.
//
// With --bulk N, each request is one POST /v1/groups/G/bulk carrying N items of
// the operation (how a member opening an archive asks); the check before the
// run still uses a single-item request, and every bulk response must carry N
// successful items. Throughput is then reported in items as well as requests.
//
// Connections are made before the clock starts; the server closes a
// connection after its request limit, and the client then reconnects within
// the run (counted as "reconnects": those handshakes are part of the load).
//
// Prints one JSON line: throughput, latency percentiles (nearest rank), error
// counts, and the client's own CPU time (and groupd's, with --server-pid) over
// the timed window.
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>  // first: Boost 1.74's asio/awaitable.hpp uses std::exchange
#include <vector>

#include "blindlist/base64.h"
#include "crypto/blind.h"
#include "crypto/cms.h"
#include "crypto/keys.h"

namespace blindlist::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// No single exchange may hang the run: a stuck connection is an error, not a wait.
constexpr std::chrono::seconds kIoTimeout{30};
// Open loop: requests due before the end are still sent and timed for this long
// after it; what is still unsent then is counted, not silently dropped.
constexpr std::chrono::seconds kOpenLoopGrace{5};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_groupd_load: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.error().code + ": " + r.error().message);
  return std::move(r).value();
}

struct Options {
  std::string url;
  std::string ca_file;
  std::string token;
  std::string group;
  std::string group_cert_file;
  std::string operation = "unwrap";
  std::string member_key_file;  // rewrap: check the re-wrapped CEK with the member's key
  std::string reason = "load test";
  int connections = 4;
  double duration = 10;
  double rate = 0;  // requests/s over all connections; 0: closed loop
  int threads = 1;
  int pool = 64;
  int server_pid = 0;
  int bulk = 0;  // items per /bulk request; 0: single-item requests
  bool check = true;
};

struct Endpoint {
  std::string host;
  std::string port;
  bool host_is_ip = false;
};

Endpoint ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (url.rfind(kScheme, 0) != 0) Die("--url must start with https://");
  std::string rest = url.substr(kScheme.size());
  rest = rest.substr(0, rest.find('/'));
  Endpoint ep;
  std::size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 == rest.size()) Die("--url needs a port: " + url);
  ep.host = rest.substr(0, colon);
  ep.port = rest.substr(colon + 1);
  if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']')
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  boost::system::error_code ec;
  asio::ip::make_address(ep.host, ec);
  ep.host_is_ip = !ec;
  return ep;
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// One post encrypted to the group, and what the group server is asked about it.
struct Post {
  std::string plaintext;
  crypto::Envelope envelope;
  crypto::RecipientInfo recipient;  // the group's RecipientInfo in `envelope`
};

// Everything the connections share, read-only once the run starts.
struct Plan {
  Options options;
  Endpoint endpoint;
  tcp::endpoint address;
  std::vector<Post> posts;
  std::vector<crypto::BlindRequest> blind_requests;             // blind: one per request body
  std::vector<http::request<http::string_body>> requests;       // single-item
  std::vector<http::request<http::string_body>> bulk_requests;  // --bulk: what the run sends
  std::string expected_field;  // in every successful response body (--bulk: once per item)
  const std::vector<http::request<http::string_body>>& run_requests() const {
    return bulk_requests.empty() ? requests : bulk_requests;
  }
  std::size_t items_per_request() const {
    return options.bulk > 0 ? static_cast<std::size_t>(options.bulk) : 1;
  }
};

std::size_t CountOf(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

void PreparePlan(Plan& plan) {
  const Options& o = plan.options;
  auto cert = Must(crypto::Certificate::LoadFile(o.group_cert_file), "load " + o.group_cert_file);
  // Up to 16 distinct posts; the pool of request bodies cycles through them.
  int posts = std::min(o.pool, 16);
  for (int i = 0; i < posts; ++i) {
    Post p;
    p.plaintext = "Content-Type: text/plain; charset=utf-8\r\n\r\nload test post " +
                  std::to_string(i) + "\r\n";
    Bytes cms = Must(crypto::Encrypt(AsBytes(p.plaintext), {cert}, {}, crypto::EncryptOptions{}),
                     "crypto::Encrypt");
    p.envelope = Must(crypto::Envelope::Parse(cms), "Envelope::Parse");
    if (p.envelope.recipients.size() != 1) Die("expected one RecipientInfo per post");
    p.recipient = p.envelope.recipients[0];
    plan.posts.push_back(std::move(p));
  }
  std::string target = "/v1/groups/" + PercentEncode(o.group) + "/" + o.operation;
  std::string host = plan.endpoint.host + ":" + plan.endpoint.port;
  auto make_request = [&](const std::string& path, const json& body) {
    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, host);
    req.set(http::field::authorization, "Bearer " + o.token);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "bench_groupd_load");
    req.keep_alive(true);
    req.body() = body.dump();
    req.prepare_payload();
    return req;
  };
  if (o.operation == "certificate") {
    // The floor: the same TLS, HTTP, store reads and audit commit as an operation,
    // but no private-key operation (the public certificate, unauthenticated).
    http::request<http::string_body> req{
        http::verb::get, "/v1/groups/" + PercentEncode(o.group) + "/certificate", 11};
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "bench_groupd_load");
    req.keep_alive(true);
    req.prepare_payload();
    for (int i = 0; i < o.pool; ++i) plan.requests.push_back(req);
    plan.expected_field = "-----BEGIN CERTIFICATE-----";
    return;
  }
  std::vector<json> items;
  for (int i = 0; i < o.pool; ++i) {
    const Post& post = plan.posts[static_cast<std::size_t>(i) % plan.posts.size()];
    json body = {{"recipient_info", Base64Encode(post.recipient.der)}, {"reason", o.reason}};
    if (o.operation == "blind") {
      auto br = Must(crypto::BlindRequest::Create(post.recipient, cert), "BlindRequest::Create");
      body["blinded"] = Base64Encode(br.blinded());
      plan.blind_requests.push_back(std::move(br));
    }
    plan.requests.push_back(make_request(target, body));
    json item = body;
    item.erase("reason");
    item["operation"] = o.operation;
    items.push_back(std::move(item));
  }
  if (o.bulk > 0) {
    // Each bulk body takes the next N items of the pool, cycling.
    const std::string bulk_target = "/v1/groups/" + PercentEncode(o.group) + "/bulk";
    const std::size_t bodies =
        std::max<std::size_t>(1, items.size() / static_cast<std::size_t>(o.bulk));
    std::size_t next = 0;
    for (std::size_t b = 0; b < bodies; ++b) {
      json list = json::array();
      for (int k = 0; k < o.bulk; ++k) list.push_back(items[next++ % items.size()]);
      plan.bulk_requests.push_back(
          make_request(bulk_target, {{"requests", list}, {"reason", o.reason}}));
    }
  }
  plan.expected_field = o.operation == "unwrap"   ? "\"cek\""
                        : o.operation == "rewrap" ? "\"recipient_info\""
                                                  : "\"result\"";
}

ssl::context MakeTlsContext(const Options& o) {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX* native = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1) {
    Die("cannot restrict the client to TLS 1.3");
  }
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(native, o.ca_file.c_str(), nullptr) != 1)
    Die("cannot load the CA file " + o.ca_file);
  return ctx;
}

// Connects and completes the TLS handshake; the server must prove its name or address.
asio::awaitable<std::unique_ptr<TlsStream>> Connect(const Plan& plan, ssl::context& tls,
                                                    beast::error_code& ec) {
  auto ex = co_await asio::this_coro::executor;
  auto stream = std::make_unique<TlsStream>(ex, tls);
  beast::tcp_stream& lowest = beast::get_lowest_layer(*stream);
  lowest.expires_after(kIoTimeout);
  co_await lowest.async_connect(plan.address, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return nullptr;
  lowest.socket().set_option(tcp::no_delay(true), ec);
  SSL* native = stream->native_handle();
  if (plan.endpoint.host_is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), plan.endpoint.host.c_str()) != 1)
      Die("cannot set the expected server address");
  } else if (SSL_set_tlsext_host_name(native, plan.endpoint.host.c_str()) != 1 ||
             SSL_set1_host(native, plan.endpoint.host.c_str()) != 1) {
    Die("cannot set the expected server name");
  }
  co_await stream->async_handshake(ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return nullptr;
  lowest.expires_never();
  co_return stream;
}

// What one connection saw. Each connection owns its own: no locking.
struct ConnectionStats {
  std::vector<std::uint32_t> latency_us;  // from when the request was due
  std::vector<std::uint32_t> service_us;  // from when it was sent
  std::map<int, std::uint64_t> bad_status;
  std::uint64_t io_errors = 0;
  std::uint64_t connect_errors = 0;
  std::uint64_t bad_bodies = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t late_sends = 0;  // open loop: sent more than 1 ms after it was due
  std::uint64_t unsent = 0;      // open loop: still not sent at the end of the grace period
  std::string first_error;
};

struct Window {
  Clock::time_point start;
  Clock::time_point end;
  Clock::duration interval{};  // open loop: between two requests of one connection
};

asio::awaitable<void> RunConnection(const Plan& plan, ssl::context& tls, const Window& window,
                                    int index, std::unique_ptr<TlsStream> stream,
                                    ConnectionStats& stats) {
  const Options& o = plan.options;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  const bool open_loop = o.rate > 0;
  // Spread the connections' bodies and, in the open loop, their schedules evenly.
  const auto& requests = plan.run_requests();
  std::size_t next_body =
      static_cast<std::size_t>(index) * requests.size() / static_cast<std::size_t>(o.connections);
  Clock::time_point due = window.start + window.interval * index / o.connections;
  beast::flat_buffer buffer;
  for (;;) {
    beast::error_code ec;
    if (open_loop) {
      if (due >= window.end) break;
      if (Clock::now() > window.end + kOpenLoopGrace) {
        stats.unsent += static_cast<std::uint64_t>((window.end - due) / window.interval) + 1;
        break;
      }
      if (Clock::now() < due) {
        timer.expires_at(due);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    } else {
      due = Clock::now();
      if (due >= window.end) break;
    }
    if (!stream) {
      stream = co_await Connect(plan, tls, ec);
      if (!stream) {
        ++stats.connect_errors;
        if (stats.first_error.empty()) stats.first_error = "connect: " + ec.message();
        timer.expires_after(std::chrono::milliseconds(50));
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (open_loop) due += window.interval;
        continue;
      }
      ++stats.reconnects;
      buffer.clear();
    }
    const auto& request = requests[next_body];
    next_body = (next_body + 1) % requests.size();
    const Clock::time_point scheduled = due;
    if (open_loop) due += window.interval;
    const Clock::time_point sent = Clock::now();
    if (open_loop && sent - scheduled > std::chrono::milliseconds(1)) ++stats.late_sends;
    beast::tcp_stream& lowest = beast::get_lowest_layer(*stream);
    lowest.expires_after(kIoTimeout);
    co_await http::async_write(*stream, request, asio::redirect_error(asio::use_awaitable, ec));
    http::response<http::string_body> response;
    if (!ec) {
      co_await http::async_read(*stream, buffer, response,
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    const Clock::time_point done = Clock::now();
    if (ec) {
      // A server that closes a kept-alive connection says so first; anything else is an error.
      ++stats.io_errors;
      if (stats.first_error.empty()) stats.first_error = "i/o: " + ec.message();
      stream.reset();
      continue;
    }
    // Closed loop: what completes in the window. Open loop: every request due in it.
    if (open_loop || done <= window.end) {
      auto us = [](Clock::duration d) {
        return static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(d).count());
      };
      stats.latency_us.push_back(us(done - scheduled));
      stats.service_us.push_back(us(done - sent));
      if (response.result_int() != 200) {
        ++stats.bad_status[static_cast<int>(response.result_int())];
        if (stats.first_error.empty())
          stats.first_error = "status " + std::to_string(response.result_int()) + ": " +
                              response.body().substr(0, 300);
      } else if (CountOf(response.body(), plan.expected_field) < plan.items_per_request()) {
        ++stats.bad_bodies;
        if (stats.first_error.empty())
          stats.first_error = "body: " + response.body().substr(0, 300);
      }
    }
    if (!response.keep_alive()) stream.reset();  // the server's per-connection request limit
  }
  if (stream) {
    beast::error_code ignored;
    beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
}

// Runs every coroutine spawned on `ioc` to completion on `threads` threads.
void RunIo(asio::io_context& ioc, int threads) {
  ioc.restart();
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
}

// One request per operation, checked end to end before anything is timed.
asio::awaitable<void> SelfCheck(const Plan& plan, ssl::context& tls) {
  const Options& o = plan.options;
  beast::error_code ec;
  auto stream = co_await Connect(plan, tls, ec);
  if (!stream) Die("cannot connect to " + o.url + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_write(*stream, plan.requests[0],
                             asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    co_await http::async_read(*stream, buffer, response,
                              asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) Die("self-check request failed: " + ec.message());
  if (response.result_int() != 200)
    Die("self-check: status " + std::to_string(response.result_int()) + ": " + response.body());
  if (o.operation == "certificate") {
    auto cert = crypto::Certificate::Load(AsBytes(response.body()));
    if (!cert.ok()) Die("self-check: the group certificate does not load: " + cert.error().message);
    beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ec);
    co_return;
  }
  json body = json::parse(response.body(), nullptr, false);
  if (body.is_discarded()) Die("self-check: the response is not JSON: " + response.body());
  const Post& post = plan.posts[0];
  auto field = [&](const char* name) {
    if (!body.contains(name) || !body[name].is_string()) Die(std::string("self-check: no ") + name);
    Bytes out;
    if (!Base64Decode(body[name].get<std::string>(), out))
      Die(std::string("self-check: bad base64 in ") + name);
    return out;
  };
  std::optional<SecretBytes> cek;
  if (o.operation == "unwrap") {
    cek = SecretBytes(ByteView(field("cek")));
  } else if (o.operation == "blind") {
    cek = Must(plan.blind_requests[0].Finish(field("result")), "BlindRequest::Finish");
  } else {
    auto ri =
        Must(crypto::RecipientInfo::Parse(field("recipient_info")), "re-wrapped RecipientInfo");
    if (!o.member_key_file.empty()) {
      auto key = Must(crypto::PrivateKey::LoadFile(o.member_key_file), "load " + o.member_key_file);
      std::size_t rek = 0;  // our RecipientInfo names one recipient
      cek = Must(crypto::UnwrapCek(ri, key, rek), "unwrap the re-wrapped CEK");
    }
  }
  if (cek) {
    SecretBytes plain = Must(crypto::DecryptContent(post.envelope, *cek), "DecryptContent");
    if (plain != SecretBytes(AsBytes(post.plaintext)))
      Die("self-check: the CEK does not decrypt the post back to what was encrypted");
  }
  beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ec);
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// utime + stime of another process, from /proc/PID/stat; negative if unreadable.
double ProcessCpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  std::size_t paren = line.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(line.substr(paren + 2));
  std::string f;
  double utime = 0;
  double stime = 0;
  // After the command: state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Percentile(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<std::size_t>(rank, 1)) - 1] / 1000.0;
}

json LatencyJson(std::vector<std::uint32_t> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (auto x : v) sum += x;
  auto round3 = [](double x) { return std::round(x * 1000) / 1000; };
  return {{"p50", round3(Percentile(v, 0.50))},
          {"p90", round3(Percentile(v, 0.90))},
          {"p99", round3(Percentile(v, 0.99))},
          {"max", round3(v.empty() ? 0 : v.back() / 1000.0)},
          {"mean", round3(v.empty() ? 0 : sum / static_cast<double>(v.size()) / 1000.0)}};
}

int Main(int argc, char** argv) {
  CLI::App app{"bench_groupd_load: load client for blindlist-groupd (unwrap, rewrap, blind)"};
  Options o;
  app.add_option("--url", o.url, "groupd base URL, e.g. https://127.0.0.1:8443")->required();
  app.add_option("--ca", o.ca_file, "CA certificate that verifies groupd (PEM)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--token", o.token, "A member's bearer token")->required();
  app.add_option("--group", o.group, "The group (list address)")->required();
  app.add_option("--group-cert", o.group_cert_file, "The group's certificate (PEM)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--operation", o.operation,
                 "unwrap, rewrap or blind; or certificate: GET the group's public certificate, "
                 "the same path through groupd without a private-key operation (the floor)")
      ->check(CLI::IsMember({"unwrap", "rewrap", "blind", "certificate"}))
      ->capture_default_str();
  app.add_option("--connections", o.connections, "Keep-alive TLS connections")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--duration", o.duration, "Seconds of timed load")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--rate", o.rate, "Requests/s over all connections (0: closed loop)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--threads", o.threads, "Client I/O threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--pool", o.pool, "Distinct request bodies (blind: one BlindRequest each)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--reason", o.reason, "The \"reason\" sent (recorded in the audit)")
      ->capture_default_str();
  app.add_option("--member-key", o.member_key_file,
                 "rewrap: the member's private key, to check the re-wrapped CEK")
      ->check(CLI::ExistingFile);
  app.add_option("--bulk", o.bulk, "Items per POST .../bulk request (0: single-item requests)")
      ->check(CLI::Range(0, 500))
      ->capture_default_str();
  app.add_option("--server-pid", o.server_pid, "groupd's PID: report its CPU time over the run");
  app.add_flag("!--no-check", o.check, "Skip the end-to-end check before the run");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.operation == "certificate" && o.bulk > 0) {
    Die("--bulk does not apply to --operation certificate");
  }

  Plan plan;
  plan.options = o;
  plan.endpoint = ParseUrl(o.url);
  {
    asio::io_context resolver_ioc;
    tcp::resolver resolver(resolver_ioc);
    beast::error_code ec;
    auto found = resolver.resolve(plan.endpoint.host, plan.endpoint.port, ec);
    if (ec || found.empty()) Die("cannot resolve " + plan.endpoint.host + ": " + ec.message());
    plan.address = found.begin()->endpoint();
  }
  PreparePlan(plan);
  ssl::context tls = MakeTlsContext(o);
  asio::io_context ioc;

  if (o.check) {
    asio::co_spawn(ioc, SelfCheck(plan, tls), [](const std::exception_ptr& e) {
      if (e) std::rethrow_exception(e);
    });
    RunIo(ioc, 1);
  }

  // Every connection is up before the clock starts.
  std::vector<std::unique_ptr<TlsStream>> streams(static_cast<std::size_t>(o.connections));
  std::vector<Strand> strands;
  strands.reserve(static_cast<std::size_t>(o.connections));
  for (int i = 0; i < o.connections; ++i) strands.push_back(asio::make_strand(ioc));
  std::atomic<int> failed_connects{0};
  for (int i = 0; i < o.connections; ++i) {
    auto& slot = streams[static_cast<std::size_t>(i)];
    asio::co_spawn(
        strands[static_cast<std::size_t>(i)],
        [&plan, &tls, &slot, &failed_connects]() -> asio::awaitable<void> {
          beast::error_code ec;
          slot = co_await Connect(plan, tls, ec);
          if (!slot) ++failed_connects;
        },
        asio::detached);
  }
  RunIo(ioc, o.threads);
  if (failed_connects > 0)
    Die(std::to_string(failed_connects.load()) + " of the connections could not be made");

  Window window;
  if (o.rate > 0) {
    window.interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(o.connections / o.rate));
  }
  std::vector<ConnectionStats> stats(static_cast<std::size_t>(o.connections));
  const double server_cpu_before = ProcessCpuSeconds(o.server_pid);
  const double cpu_before = CpuSeconds();
  window.start = Clock::now();
  window.end = window.start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(o.duration));
  for (int i = 0; i < o.connections; ++i) {
    auto idx = static_cast<std::size_t>(i);
    asio::co_spawn(strands[idx],
                   RunConnection(plan, tls, window, i, std::move(streams[idx]), stats[idx]),
                   [](const std::exception_ptr& e) {
                     if (e) std::rethrow_exception(e);
                   });
  }
  RunIo(ioc, o.threads);
  const double elapsed = std::chrono::duration<double>(Clock::now() - window.start).count();
  const double cpu = CpuSeconds() - cpu_before;
  const double server_cpu_after = ProcessCpuSeconds(o.server_pid);

  ConnectionStats all;
  for (auto& s : stats) {
    all.latency_us.insert(all.latency_us.end(), s.latency_us.begin(), s.latency_us.end());
    all.service_us.insert(all.service_us.end(), s.service_us.begin(), s.service_us.end());
    for (auto [status, n] : s.bad_status) all.bad_status[status] += n;
    all.io_errors += s.io_errors;
    all.connect_errors += s.connect_errors;
    all.bad_bodies += s.bad_bodies;
    all.reconnects += s.reconnects;
    all.late_sends += s.late_sends;
    all.unsent += s.unsent;
    if (all.first_error.empty()) all.first_error = s.first_error;
  }
  std::uint64_t bad_status = 0;
  json statuses = json::object();
  for (auto [status, n] : all.bad_status) {
    statuses[std::to_string(status)] = n;
    bad_status += n;
  }
  const std::uint64_t responses = all.latency_us.size();
  const std::uint64_t ok = responses - bad_status - all.bad_bodies;
  auto round1 = [](double x) { return std::round(x * 10) / 10; };
  auto round3 = [](double x) { return std::round(x * 1000) / 1000; };
  json out = {
      {"operation", o.operation},
      {"group", o.group},
      {"mode", o.rate > 0 ? "open" : "closed"},
      {"connections", o.connections},
      {"target_rate", o.rate},
      {"duration_s", round3(o.duration)},
      {"responses", responses},
      {"ok", ok},
      {"throughput_rps", round1(static_cast<double>(ok) / o.duration)},
      {"items_per_request", plan.items_per_request()},
      {"items_per_s", round1(static_cast<double>(ok * plan.items_per_request()) / o.duration)},
      {"latency_ms", LatencyJson(all.latency_us)},
      {"service_latency_ms", LatencyJson(all.service_us)},
      {"errors",
       {{"total", bad_status + all.bad_bodies + all.io_errors + all.connect_errors + all.unsent},
        {"status", statuses},
        {"bad_body", all.bad_bodies},
        {"io", all.io_errors},
        {"connect", all.connect_errors},
        {"unsent", all.unsent}}},
      {"reconnects", all.reconnects},
      {"late_sends", all.late_sends},
      {"client_threads", o.threads},
      {"client_cpu_s", round3(cpu)},
      {"client_cpu_share_of_one_core", round3(cpu / elapsed)},
  };
  if (server_cpu_before >= 0 && server_cpu_after >= 0) {
    double server_cpu = server_cpu_after - server_cpu_before;
    out["server_cpu_s"] = round3(server_cpu);
    out["server_requests_per_cpu_s"] =
        round1(server_cpu > 0 ? static_cast<double>(ok) / server_cpu : 0);
    out["server_items_per_cpu_s"] = round1(
        server_cpu > 0 ? static_cast<double>(ok * plan.items_per_request()) / server_cpu : 0);
  }
  if (!all.first_error.empty()) out["first_error"] = all.first_error;
  std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  return responses > 0 ? 0 : 1;
}

}  // namespace
}  // namespace blindlist::bench

int main(int argc, char** argv) {
  try {
    return blindlist::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_groupd_load: %s\n", e.what());
    return 1;
  }
}
