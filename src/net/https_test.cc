// HttpsServer and HttpsClient against each other over loopback, with a
// throwaway CA made by the openssl CLI; plus Metrics and Log output formats.
// Timing: only generous upper bounds (seconds), never tight ones.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/https_client.h"
#include "net/https_server.h"
#include "obs/log.h"
#include "obs/metrics.h"

namespace blindlist::net {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;

std::string Hex(const unsigned char* p, std::size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

std::string Sha256Hex(const Bytes& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return "?";
  return Hex(md, len);
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// SHA-256 of the DER of the first certificate in a PEM file.
std::string PemCertFingerprint(const fs::path& pem) {
  FILE* f = std::fopen(pem.c_str(), "r");
  if (f == nullptr) return "?";
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return "?";
  int len = i2d_X509(cert, nullptr);
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  i2d_X509(cert, &p);
  X509_free(cert);
  return Sha256Hex(der);
}

int RawConnect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True once the peer has closed (EOF or reset) within `bound`.
bool WaitClosed(int fd, std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
  return false;
}

template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds bound = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

std::string HeaderOf(const ClientResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

HttpResponse Echo(const HttpRequest& req) {
  Json query = Json::object();
  for (const auto& [k, v] : req.query) query[k] = v;
  Json out = {
      {"method", req.method},
      {"path", req.path},
      {"target", req.target},
      {"query", query},
      {"body", req.body},
      {"x_test", req.Header("x-test")},
      {"peer", req.peer_address},
      {"cert", req.peer_certificate_der.empty() ? "" : Sha256Hex(req.peer_certificate_der)}};
  return HttpResponse::Json(200, out.dump());
}

class HttpsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/blindlist-net-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new fs::path(tmpl);
    std::ofstream(*dir_ / "t.cnf") << R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
)";
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    const std::string script =
        "set -e; cd '" + dir_->string() + "';" +  //
        "openssl req -config t.cnf -x509" + key +
        " -keyout ca.key -out ca.pem -days 2 -subj '/CN=blindlist test CA' -extensions ca_ext;" +
        "openssl req -config t.cnf -x509" + key +
        " -keyout other_ca.key -out other_ca.pem -days 2 -subj '/CN=other CA' -extensions ca_ext;" +
        "openssl req -config t.cnf -new" + key +
        " -keyout server.key -out server.csr -subj '/CN=127.0.0.1';" +
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2"
        " -extfile t.cnf -extensions server_ext -out server.pem;" +
        "openssl req -config t.cnf -new" + key +
        " -keyout client.key -out client.csr -subj '/CN=member';" +
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 3 -days 2"
        " -extfile t.cnf -extensions client_ext -out client.pem;";
    ASSERT_EQ(
        std::system(("(" + script + ") >openssl.log 2>&1 || (cat openssl.log; exit 1)").c_str()),
        0);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }

  static fs::path Path(const char* name) { return *dir_ / name; }

  HttpsServerConfig Config() const {
    HttpsServerConfig c;
    c.cert_file = Path("server.pem");
    c.key_file = Path("server.key");
    c.threads = 2;
    return c;
  }

  std::unique_ptr<HttpsServer> StartServer(HttpsServerConfig config, HttpHandler handler = Echo) {
    auto server = std::make_unique<HttpsServer>(std::move(config), std::move(handler));
    Status s = server->Start();
    EXPECT_TRUE(s.ok()) << s.error().code << ": " << s.error().message;
    return server;
  }

  static HttpsClientConfig ClientConfig() {
    HttpsClientConfig c;
    c.ca_file = Path("ca.pem");
    c.timeout = 20s;
    return c;
  }

  static std::string Url(const HttpsServer& server, const std::string& target) {
    return "https://127.0.0.1:" + std::to_string(server.port()) + target;
  }

  static fs::path* dir_;
};

fs::path* HttpsTest::dir_ = nullptr;

TEST_F(HttpsTest, GetAndPostRoundTrip) {
  auto server = StartServer(Config());
  HttpsClient client(ClientConfig());

  auto get = client.Request("GET", Url(*server, "/echo/a%20b?x=1&y=hello+world&z=%2F"), {},
                            {{"X-Test", "hi"}});
  ASSERT_TRUE(get.ok()) << get.error().code << ": " << get.error().message;
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->content_type, "application/json");
  EXPECT_EQ(HeaderOf(*get, "cache-control"), "no-store");
  EXPECT_EQ(HeaderOf(*get, "content-length"), std::to_string(get->body.size()));
  Json j = Json::parse(get->body);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/echo/a b");
  EXPECT_EQ(j["target"], "/echo/a%20b?x=1&y=hello+world&z=%2F");
  EXPECT_EQ(j["query"]["x"], "1");
  EXPECT_EQ(j["query"]["y"], "hello world");
  EXPECT_EQ(j["query"]["z"], "/");
  EXPECT_EQ(j["x_test"], "hi");  // header names arrive lowercased
  EXPECT_EQ(j["peer"], "127.0.0.1");
  EXPECT_EQ(j["cert"], "");  // no client certificate presented

  std::string body = "{\"hello\": \"world\"}";
  auto post =
      client.Request("POST", Url(*server, "/submit"), body, {{"content-type", "application/json"}});
  ASSERT_TRUE(post.ok()) << post.error().message;
  EXPECT_EQ(post->status, 200);
  j = Json::parse(post->body);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["body"], body);
}

TEST_F(HttpsTest, KeepAliveReusesOneConnection) {
  HttpsServerConfig config = Config();
  config.max_requests_per_connection = 3;
  auto server = StartServer(config);
  HttpsClient client(ClientConfig());
  // If each request opened its own connection, none would reach the per-connection
  // limit; "Connection: close" on exactly the third proves all three shared one.
  for (int i = 1; i <= 3; ++i) {
    auto r = client.Request("GET", Url(*server, "/n"));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(HeaderOf(*r, "connection"), i == 3 ? "close" : "") << "request " << i;
  }
  auto fourth = client.Request("GET", Url(*server, "/n"));  // on a new connection
  ASSERT_TRUE(fourth.ok()) << fourth.error().message;
  EXPECT_EQ(HeaderOf(*fourth, "connection"), "");
}

TEST_F(HttpsTest, HeadGetsHeadersOnly) {
  auto server = StartServer(Config());
  HttpsClient client(ClientConfig());
  auto head = client.Request("HEAD", Url(*server, "/echo"));
  ASSERT_TRUE(head.ok()) << head.error().message;
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_NE(HeaderOf(*head, "content-length"), "0");
  // The connection is still in step: the next response is read correctly.
  auto get = client.Request("GET", Url(*server, "/echo"));
  ASSERT_TRUE(get.ok()) << get.error().message;
  EXPECT_EQ(Json::parse(get->body)["method"], "GET");
}

TEST_F(HttpsTest, HandlerSeesClientCertificate) {
  auto server = StartServer(Config());
  HttpsClientConfig cc = ClientConfig();
  cc.client_cert_file = Path("client.pem");
  cc.client_key_file = Path("client.key");
  HttpsClient client(cc);
  auto r = client.Request("GET", Url(*server, "/whoami"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Json::parse(r->body)["cert"], PemCertFingerprint(Path("client.pem")));

  HttpsClient anonymous(ClientConfig());
  r = anonymous.Request("GET", Url(*server, "/whoami"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Json::parse(r->body)["cert"], "");
}

TEST_F(HttpsTest, RefusesTls12) {
  auto server = StartServer(Config());
  const std::string base = "openssl s_client -connect 127.0.0.1:" + std::to_string(server->port()) +
                           " </dev/null >" + Path("s_client.log").string() + " 2>&1 ";
  // Control: the same command with TLS 1.3 succeeds, so the failure below is the version.
  EXPECT_EQ(std::system((base + "-tls1_3").c_str()), 0) << ReadFile(Path("s_client.log"));
  EXPECT_NE(std::system((base + "-tls1_2").c_str()), 0) << ReadFile(Path("s_client.log"));
}

TEST_F(HttpsTest, BodyTooLargeGets413) {
  HttpsServerConfig config = Config();
  config.max_body_bytes = 1024;
  auto server = StartServer(config);
  HttpsClient client(ClientConfig());
  auto r = client.Request("POST", Url(*server, "/submit"), std::string(4096, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(Json::parse(r->body)["error"], "body-too-large");
  EXPECT_FALSE(Json::parse(r->body)["message"].get<std::string>().empty());
  // The server is fine, and a body at the limit passes.
  auto ok = client.Request("POST", Url(*server, "/submit"), std::string(1024, 'y'));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpsTest, LargeBodyOverLimitStillGets413) {
  // Megabytes the server never reads: it must keep draining them after its answer
  // so that closing does not reset the connection before the client reads the 413.
  HttpsServerConfig config = Config();
  config.max_body_bytes = 1024;
  auto server = StartServer(config);
  HttpsClient client(ClientConfig());
  auto r = client.Request("POST", Url(*server, "/submit"), std::string(4 * 1024 * 1024, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 413);
}

TEST_F(HttpsTest, UpdateLimitsAppliesToNewRequests) {
  auto server = StartServer(Config());
  HttpsClient client(ClientConfig());
  auto r = client.Request("POST", Url(*server, "/submit"), std::string(2048, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  HttpsServerConfig limits = Config();
  limits.max_body_bytes = 1024;
  server->UpdateLimits(limits);
  r = client.Request("POST", Url(*server, "/submit"), std::string(2048, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 413);
}

// The path is decoded segment by segment: an encoded "/", a control byte or bytes that are not
// UTF-8 in a segment make a bad target (it could otherwise become two segments, or reach a
// handler); other escapes ("@", "+") decode as before, and empty segments reach the router as sent
// (it refuses them).
TEST_F(HttpsTest, PathSegmentsDecodeOneByOne) {
  auto server = StartServer(Config());
  HttpsClient client(ClientConfig());
  for (const char* target :
       {"/echo/a%2Fb", "/echo/a%2fb/c", "/echo/a%01b", "/echo/%7F", "/echo/a%0Ab", "/echo/a%00b",
        // Not UTF-8: a stray byte, an overlong "/", a surrogate, a sequence cut short, > U+10FFFF.
        "/echo/%ff%fe@example.org", "/echo/%C0%AF", "/echo/%ED%A0%80", "/echo/a%E2%82",
        "/echo/%F4%90%80%80"}) {
    auto r = client.Request("GET", Url(*server, target));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 400) << target;
    EXPECT_EQ(Json::parse(r->body)["error"], "bad-target") << target;
  }
  const std::pair<const char*, const char*> routed[] = {
      {"/echo/l%40x.org/a%2Bb%40x.org", "/echo/l@x.org/a+b@x.org"},
      {"/echo/a+b", "/echo/a+b"},  // '+' is a space only in a query
      {"/echo/%C3%A9t%C3%A9%F0%9F%98%80", "/echo/\u00e9t\u00e9\U0001F600"},  // UTF-8 text
      {"/echo//x/", "/echo//x/"},
      {"/echo/x?z=%2F", "/echo/x"},  // the query may hold a "/"
  };
  for (const auto& [target, path] : routed) {
    auto r = client.Request("GET", Url(*server, target));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200) << target;
    EXPECT_EQ(Json::parse(r->body)["path"], path) << target;
  }
}

TEST_F(HttpsTest, MalformedRequestsGet400) {
  auto server = StartServer(Config());
  HttpsClient client(ClientConfig());
  auto r = client.Request("GET", Url(*server, "/a%zz"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(Json::parse(r->body)["error"], "bad-target");

  // A raw TLS client sends what HttpsClient never would.
  const std::string out = Path("raw.log").string();
  const std::string cmd =
      "printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: abc\\r\\n\\r\\n' | "
      "timeout 20 openssl s_client -quiet -connect 127.0.0.1:" +
      std::to_string(server->port()) + " >" + out + " 2>/dev/null";
  [[maybe_unused]] int rc = std::system(cmd.c_str());  // the output is what counts
  EXPECT_NE(ReadFile(out).find("HTTP/1.1 400"), std::string::npos) << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("bad-request"), std::string::npos) << ReadFile(out);
}

TEST_F(HttpsTest, RefusalObserverSeesEveryRefusalTheServerMakesItself) {
  // A daemon counts what the server refuses before its handler runs: a body too
  // large and a target that does not decode alike.
  HttpsServerConfig config = Config();
  config.max_body_bytes = 1024;
  auto server = std::make_unique<HttpsServer>(config, Echo);
  std::mutex mu;
  std::vector<std::string> seen;  // "STATUS error target"
  server->SetRefusalObserver([&](const HttpRequest& req, const HttpResponse& resp) {
    std::lock_guard lock(mu);
    seen.push_back(std::to_string(resp.status) + " " +
                   Json::parse(resp.body)["error"].get<std::string>() + " " + req.target);
    EXPECT_FALSE(req.peer_address.empty());
  });
  ASSERT_TRUE(server->Start().ok());
  HttpsClient client(ClientConfig());
  auto r = client.Request("GET", Url(*server, "/a%zz"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 400);
  r = client.Request("POST", Url(*server, "/submit"), std::string(4096, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 413);
  r = client.Request("GET", Url(*server, "/fine"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"400 bad-target /a%zz", "413 body-too-large /submit"}));
}

TEST_F(HttpsTest, HeadersTooLargeGetErrorStatus) {
  HttpsServerConfig config = Config();
  config.max_header_bytes = 2048;
  auto server = StartServer(config);
  HttpsClient client(ClientConfig());
  auto r = client.Request("GET", Url(*server, "/"), {}, {{"x-big", std::string(4096, 'h')}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(Json::parse(r->body)["error"], "headers-too-large");
}

TEST_F(HttpsTest, SilentClientIsDisconnectedAfterReadTimeout) {
  HttpsServerConfig config = Config();
  config.read_timeout = 300ms;
  auto server = StartServer(config);
  int fd = RawConnect(server->port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(WaitClosed(fd, 15s));
  ::close(fd);
  HttpsClient client(ClientConfig());  // and the server still serves
  auto r = client.Request("GET", Url(*server, "/"));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST_F(HttpsTest, ClientReconnectsWhenServerClosedIdleConnection) {
  HttpsServerConfig config = Config();
  config.read_timeout = 200ms;
  auto server = StartServer(config);
  HttpsClient client(ClientConfig());
  ASSERT_TRUE(client.Request("GET", Url(*server, "/1")).ok());
  // Long enough for the server to drop the kept-alive connection; the request
  // below succeeds either way (fresh connection or retry), never on timing.
  std::this_thread::sleep_for(1s);
  auto r = client.Request("POST", Url(*server, "/2"), "payload");
  ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
  EXPECT_EQ(Json::parse(r->body)["body"], "payload");
}

TEST_F(HttpsTest, HandlerExceptionGives500AndServerKeepsServing) {
  auto server = StartServer(Config(), [](const HttpRequest& req) {
    if (req.path == "/throw") throw std::runtime_error("boom");
    return HttpResponse::Json(200, "{}");
  });
  HttpsClient client(ClientConfig());
  auto r = client.Request("GET", Url(*server, "/throw"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(Json::parse(r->body)["error"], "internal");
  r = client.Request("GET", Url(*server, "/fine"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpsTest, StopLetsInFlightRequestFinish) {
  std::atomic<bool> entered{false};
  std::atomic<bool> finished{false};
  HttpsServerConfig config = Config();
  config.drain_timeout = 60s;  // Stop must not need it: the idle connection goes at once
  auto server = StartServer(config, [&](const HttpRequest& req) {
    if (req.path == "/slow") {
      entered = true;
      std::this_thread::sleep_for(500ms);
      finished = true;
    }
    return HttpResponse::Json(200, "{\"done\":true}");
  });
  // An idle kept-alive connection that Stop() must not wait for.
  HttpsClient idle(ClientConfig());
  ASSERT_TRUE(idle.Request("GET", Url(*server, "/")).ok());

  std::optional<Result<ClientResponse>> slow;
  std::thread t([&] {
    HttpsClient client(ClientConfig());
    slow = client.Request("GET", Url(*server, "/slow"));
  });
  ASSERT_TRUE(Eventually([&] { return entered.load(); }));
  const auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_TRUE(finished);
  t.join();
  ASSERT_TRUE(slow.has_value());
  ASSERT_TRUE(slow->ok()) << slow->error().message;
  EXPECT_EQ((*slow)->status, 200);
  EXPECT_EQ(HeaderOf(**slow, "connection"), "close");

  server->Wait();  // returns at once: Stop() completed
  HttpsClient late(ClientConfig());
  auto refused = late.Request("GET", Url(*server, "/"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "connect-failed");
}

// An asynchronous handler answers from another thread, later; meanwhile its
// server thread serves other requests. With one server thread, a second request
// is answered while the first still waits for its answer.
TEST_F(HttpsTest, AsyncHandlerAnswersLaterWithoutHoldingAThread) {
  std::mutex mu;
  std::vector<HttpResponder> parked;
  HttpsServerConfig config = Config();
  config.threads = 1;
  HttpsServer server(config, AsyncHttpHandler([&](const HttpRequest& req, HttpResponder respond) {
                       if (req.path == "/later") {
                         std::lock_guard lock(mu);
                         parked.push_back(std::move(respond));
                         return;
                       }
                       respond(HttpResponse::Json(200, "{\"now\":true}"));
                     }));
  ASSERT_TRUE(server.Start().ok());
  std::optional<Result<ClientResponse>> later;
  std::thread t([&] {
    HttpsClient client(ClientConfig());
    later = client.Request("POST", Url(server, "/later"), "{}");
  });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return parked.size() == 1;
  }));
  HttpsClient other(ClientConfig());
  auto now = other.Request("GET", Url(server, "/now"));
  ASSERT_TRUE(now.ok()) << now.error().message;
  EXPECT_EQ(now->status, 200);
  EXPECT_FALSE(later.has_value());

  // Answered from a thread the server does not know; a second answer is ignored.
  std::thread answer([&] {
    std::lock_guard lock(mu);
    parked[0](HttpResponse::Json(201, "{\"later\":true}"));
    parked[0](HttpResponse::Json(500, "{}"));
  });
  answer.join();
  t.join();
  ASSERT_TRUE(later.has_value());
  ASSERT_TRUE(later->ok()) << later->error().message;
  EXPECT_EQ((*later)->status, 201);
  EXPECT_EQ(Json::parse((*later)->body)["later"], true);
}

TEST_F(HttpsTest, AsyncHandlerThatThrowsBeforeAnsweringGets500) {
  HttpsServer server(Config(), AsyncHttpHandler([](const HttpRequest& req, HttpResponder respond) {
                       if (req.path == "/throw") throw std::runtime_error("boom");
                       respond(HttpResponse::Json(200, "{}"));
                     }));
  ASSERT_TRUE(server.Start().ok());
  HttpsClient client(ClientConfig());
  auto r = client.Request("GET", Url(server, "/throw"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(Json::parse(r->body)["error"], "internal");
  r = client.Request("GET", Url(server, "/fine"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

// A handler that never answers within the drain deadline cannot hold Stop()
// forever, and answering after the server is gone does nothing.
TEST_F(HttpsTest, StopDoesNotWaitForeverForAnUnansweredRequest) {
  std::mutex mu;
  std::vector<HttpResponder> parked;
  HttpsServerConfig config = Config();
  config.drain_timeout = 300ms;
  auto server = std::make_unique<HttpsServer>(
      config, AsyncHttpHandler([&](const HttpRequest&, HttpResponder respond) {
        std::lock_guard lock(mu);
        parked.push_back(std::move(respond));
      }));
  ASSERT_TRUE(server->Start().ok());
  HttpsClientConfig cc = ClientConfig();
  cc.timeout = 5s;
  std::optional<Result<ClientResponse>> r;
  std::thread t([&] {
    HttpsClient client(cc);
    r = client.Request("GET", Url(*server, "/never"));
  });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return parked.size() == 1;
  }));
  const auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  server.reset();  // closes the connection still waiting
  t.join();
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->ok());  // closed without an answer
  std::lock_guard lock(mu);
  parked[0](HttpResponse::Json(200, "{}"));  // the server is gone: nothing happens
}

TEST_F(HttpsTest, PerPeerConnectionLimit) {
  HttpsServerConfig config = Config();
  config.max_connections_per_peer = 1;
  auto server = std::make_unique<HttpsServer>(config, Echo);
  // A refused connection is reported to the refusal observer (counted and audited
  // by the daemons), as the 503 it amounts to.
  std::mutex mu;
  std::vector<std::pair<std::string, int>> observed;
  server->SetRefusalObserver([&](const HttpRequest& req, const HttpResponse& resp) {
    std::lock_guard lock(mu);
    observed.emplace_back(req.peer_address, resp.status);
  });
  ASSERT_TRUE(server->Start().ok());
  int fd = RawConnect(server->port());  // takes the one slot (it is accepted first)
  ASSERT_GE(fd, 0);
  HttpsClient client(ClientConfig());
  auto refused = client.Request("GET", Url(*server, "/"));
  EXPECT_FALSE(refused.ok());
  {
    std::lock_guard lock(mu);
    ASSERT_FALSE(observed.empty());
    EXPECT_EQ(observed[0], std::make_pair(std::string("127.0.0.1"), 503));
  }
  ::close(fd);
  // The slot frees once the server notices the close.
  EXPECT_TRUE(Eventually([&] { return client.Request("GET", Url(*server, "/")).ok(); }));
}

TEST_F(HttpsTest, ReloadCertificatesKeepsOldOnError) {
  fs::copy_file(Path("server.pem"), Path("reload.pem"), fs::copy_options::overwrite_existing);
  HttpsServerConfig config = Config();
  config.cert_file = Path("reload.pem");
  auto server = StartServer(config);
  std::ofstream(Path("reload.pem"), std::ios::trunc) << "not a certificate\n";
  Status bad = server->ReloadCertificates();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("reload.pem"), std::string::npos);
  HttpsClient client(ClientConfig());
  auto r = client.Request("GET", Url(*server, "/"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  fs::copy_file(Path("server.pem"), Path("reload.pem"), fs::copy_options::overwrite_existing);
  EXPECT_TRUE(server->ReloadCertificates().ok());
  HttpsClient fresh(ClientConfig());
  r = fresh.Request("GET", Url(*server, "/"));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST_F(HttpsTest, StartNamesTheMissingFile) {
  HttpsServerConfig config = Config();
  config.cert_file = Path("missing.pem");
  HttpsServer server(config, Echo);
  Status s = server.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("missing.pem"), std::string::npos);
}

TEST_F(HttpsTest, WrongCaIsTlsFailure) {
  auto server = StartServer(Config());
  HttpsClientConfig cc = ClientConfig();
  cc.ca_file = Path("other_ca.pem");
  HttpsClient client(cc);
  auto r = client.Request("GET", Url(*server, "/"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "tls-failed") << r.error().message;
}

TEST_F(HttpsTest, HostnameMismatchIsTlsFailure) {
  auto server = StartServer(Config());
  HttpsClient client(ClientConfig());
  // The certificate names IP 127.0.0.1 only, not the DNS name localhost.
  auto r = client.Request("GET", "https://localhost:" + std::to_string(server->port()) + "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "tls-failed") << r.error().message;
  EXPECT_NE(r.error().message.find("mismatch"), std::string::npos) << r.error().message;
}

TEST_F(HttpsTest, BadUrls) {
  HttpsClient client(ClientConfig());
  for (const char* url : {"http://127.0.0.1:1/", "ftp://127.0.0.1/", "https://", "https:///path",
                          "127.0.0.1:443/", "https://127.0.0.1:0/", "https://127.0.0.1:99999/",
                          "https://127.0.0.1:/", "https://user@127.0.0.1/", "https://127.0.0.1/a b",
                          "https://[::1/", "https://ho$t/", "https://127.0.0.1/\r\nx: y"}) {
    auto r = client.Request("GET", url);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.error().code, "bad-url") << url;
  }
}

TEST_F(HttpsTest, PlainHttpServesWithoutTls) {
  HttpsServerConfig config;
  config.plain_http = true;  // no certificate files at all
  auto server = StartServer(config);
  int fd = RawConnect(server->port());
  ASSERT_GE(fd, 0);
  const std::string request =
      "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    response.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
  const std::string body = response.substr(response.find("\r\n\r\n") + 4);
  Json j = Json::parse(body);
  EXPECT_EQ(j["path"], "/metrics");
  EXPECT_EQ(j["query"]["x"], "1");
  // And an HTTPS client gets no TLS handshake from it.
  HttpsClient client(ClientConfig());
  EXPECT_FALSE(client.Request("GET", Url(*server, "/metrics")).ok());
}

TEST(MetricsTest, RendersPrometheusText) {
  Metrics m;
  m.Increment("groupd_requests_total", {{"result", "ok"}, {"operation", "unwrap"}});
  m.Increment("groupd_requests_total", {{"operation", "unwrap"}, {"result", "ok"}}, 2);
  m.Increment("groupd_requests_total", {{"operation", "a\"b\\c\nd"}, {"result", "error"}});
  m.SetGauge("groupd_up", 1);
  m.Observe("groupd_latency_seconds", {{"operation", "unwrap"}}, 0.00390625);
  m.Observe("groupd_latency_seconds", {{"operation", "unwrap"}}, 0.25);  // le is inclusive
  const std::string expected =
      "# HELP groupd_requests_total groupd requests total\n"
      "# TYPE groupd_requests_total counter\n"
      "groupd_requests_total{operation=\"a\\\"b\\\\c\\nd\",result=\"error\"} 1\n"
      "groupd_requests_total{operation=\"unwrap\",result=\"ok\"} 3\n"
      "# HELP groupd_up groupd up\n"
      "# TYPE groupd_up gauge\n"
      "groupd_up 1\n"
      "# HELP groupd_latency_seconds groupd latency seconds\n"
      "# TYPE groupd_latency_seconds histogram\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.0005\"} 0\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.001\"} 0\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.0025\"} 0\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.005\"} 1\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.01\"} 1\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.025\"} 1\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.05\"} 1\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.1\"} 1\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.25\"} 2\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"0.5\"} 2\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"1\"} 2\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"2.5\"} 2\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"5\"} 2\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"10\"} 2\n"
      "groupd_latency_seconds_bucket{operation=\"unwrap\",le=\"+Inf\"} 2\n"
      "groupd_latency_seconds_sum{operation=\"unwrap\"} 0.25390625\n"
      "groupd_latency_seconds_count{operation=\"unwrap\"} 2\n";
  EXPECT_EQ(m.Render(), expected);
}

TEST(LogTest, WritesOneJsonObjectPerLine) {
  char tmpl[] = "/tmp/blindlist-log-test-XXXXXX";
  int capture = ::mkstemp(tmpl);
  ASSERT_GE(capture, 0);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(capture, STDERR_FILENO);
  SetLogDaemonName("groupd");
  Log(LogLevel::kDebug, "suppressed at the default level");
  Log(LogLevel::kWarning, "quote \" newline \n done",
      {{"peer", "10.0.0.1"}, {"msg", "cannot overwrite"}, {"odd", std::string("\x01\xff", 2)}});
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(capture);
  std::string text = ReadFile(tmpl);
  ::unlink(tmpl);
  SetLogDaemonName("blindlist");

  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::istringstream lines(text);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    ++count;
    Json j = Json::parse(line);  // throws (fails the test) if not JSON
    EXPECT_EQ(j["level"], "warning");
    EXPECT_EQ(j["daemon"], "groupd");
    EXPECT_EQ(j["msg"], "quote \" newline \n done");
    EXPECT_EQ(j["peer"], "10.0.0.1");
    EXPECT_EQ(j["field_msg"], "cannot overwrite");
    EXPECT_TRUE(j.contains("odd"));
    EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << j["time"];
  }
  EXPECT_EQ(count, 1);
}

}  // namespace
}  // namespace blindlist::net
