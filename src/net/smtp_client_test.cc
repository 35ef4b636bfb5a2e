// SmtpClient against our own SmtpServer (and a scripted fake server where the server's
// behaviour must be pinned down): pipelining, per-recipient results, STARTTLS, failures,
// dot-stuffing, and that a large message is streamed rather than copied.

#include "net/smtp_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "net/smtp_server.h"

// GCC inlines the replaced operators below and then mistakes their free() for a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Largest single allocation made by a thread while it has tracking on: how the large-message
// test sees that the client never holds a second copy of the message.
namespace {
thread_local bool g_track_allocations = false;
std::atomic<std::size_t> g_largest_allocation{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_track_allocations) {
    std::size_t seen = g_largest_allocation.load();
    while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n)) {
    }
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t /*n*/) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t /*n*/) noexcept { std::free(p); }

namespace blindlist::net {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Delivery {
  SmtpEnvelope envelope;
  std::string message;
};

// Refuses "unknown@" (550 5.1.1), "busy@" (451 4.2.1) at RCPT and the sender
// "spammer@bad.example" (550 5.7.1); LMTP: "full@" gets 452 4.2.2 at DATA.
class Handler : public SmtpHandler {
 public:
  SmtpReply OnMailFrom(const SmtpEnvelope& envelope) override {
    if (envelope.mail_from == "spammer@bad.example") return {550, "5.7.1", "Go away"};
    return {250, "2.1.0", "Sender ok"};
  }
  SmtpReply OnRcptTo(const SmtpEnvelope& /*envelope*/, const std::string& recipient) override {
    if (recipient.rfind("unknown@", 0) == 0) return {550, "5.1.1", "No such user"};
    if (recipient.rfind("busy@", 0) == 0) return {451, "4.2.1", "Try later"};
    return {250, "2.1.5", "Recipient ok"};
  }
  std::vector<SmtpReply> OnData(const SmtpEnvelope& envelope, std::string message) override {
    std::vector<SmtpReply> replies;
    for (const auto& r : envelope.recipients) {
      replies.push_back(r.rfind("full@", 0) == 0 ? SmtpReply{452, "4.2.2", "Mailbox full"}
                                                 : SmtpReply{250, "2.0.0", "Queued"});
    }
    if (!lmtp) replies.resize(1);
    std::lock_guard lock(mu);
    sizes.push_back(message.size());
    deliveries.push_back(Delivery{envelope, keep_messages ? std::move(message) : std::string()});
    return replies;
  }
  std::vector<Delivery> Deliveries() {
    std::lock_guard lock(mu);
    return deliveries;
  }

  bool lmtp = false;
  bool keep_messages = true;
  std::vector<std::size_t> sizes;

 private:
  std::mutex mu;
  std::vector<Delivery> deliveries;
};

class SmtpClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/blindlist-smtpc-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new fs::path(tmpl);
    const std::string req =
        " openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
        " -addext subjectAltName=IP:127.0.0.1";
    const std::string script = "cd '" + dir_->string() + "' && (" + req +
                               " -keyout server.key -out server.pem -subj '/CN=127.0.0.1' &&" +
                               req + " -keyout other.key -out other.pem -subj '/CN=other'" +
                               ") >openssl.log 2>&1";
    ASSERT_EQ(std::system(script.c_str()), 0);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static std::string Path(const char* name) { return (*dir_ / name).string(); }

  std::unique_ptr<SmtpServer> Start(SmtpServerConfig config = {}) {
    if (config.hostname == "localhost") config.hostname = "mx.test";
    handler_->lmtp = config.protocol == SmtpServerConfig::Protocol::kLmtp;
    auto server = std::make_unique<SmtpServer>(std::move(config), handler_);
    Status s = server->Start();
    EXPECT_TRUE(s.ok()) << s.error().message;
    return server;
  }
  static SmtpClientConfig ClientConfig(const SmtpServer& server) {
    SmtpClientConfig c;
    c.port = server.port();
    c.helo_name = "client.test";
    c.timeout = 20s;
    return c;
  }
  static std::unique_ptr<SmtpClient> Connect(const SmtpClientConfig& config) {
    auto client = SmtpClient::Connect(config);
    EXPECT_TRUE(client.ok()) << client.error().code << ": " << client.error().message;
    return client.ok() ? std::move(client).value() : nullptr;
  }

  std::shared_ptr<Handler> handler_ = std::make_shared<Handler>();
  static fs::path* dir_;
};

fs::path* SmtpClientTest::dir_ = nullptr;

TEST_F(SmtpClientTest, ManyRecipientsInOnePipelinedTransaction) {
  SmtpServerConfig config;
  config.max_recipients = 20000;
  config.max_commands = 20010;  // every RCPT counts as a command
  auto server = Start(config);
  auto client = Connect(ClientConfig(*server));
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->pipelining());
  EXPECT_FALSE(client->tls());  // no certificate: nothing offered

  // Enough RCPTs that their replies overflow the socket buffers unless the client reads
  // them while it is still writing.
  std::vector<std::string> to;
  to.reserve(10000);
  for (int i = 0; i < 10000; ++i) to.push_back("member" + std::to_string(i) + "@example.org");
  auto sent = client->Send("list-bounces@lists.test", to, "Subject: hi\r\n\r\nbody\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  ASSERT_EQ(sent->recipients.size(), to.size());
  for (std::size_t i = 0; i < to.size(); ++i) {
    EXPECT_EQ(sent->recipients[i].address, to[i]);
    ASSERT_EQ(sent->recipients[i].code, 250) << i;
  }
  auto got = handler_->Deliveries();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].envelope.recipients, to);
  EXPECT_EQ(got[0].envelope.mail_from, "list-bounces@lists.test");
  EXPECT_EQ(got[0].message, "Subject: hi\r\n\r\nbody\r\n");
  client->Quit();
}

// A scripted server that answers nothing until it has read the whole batch up to DATA: a
// client that waited for the MAIL reply before sending RCPTs would time out here.
TEST_F(SmtpClientTest, PipelinesMailRcptAndDataInOneBatch) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string batch;
  std::thread fake([&] {
    int fd = ::accept(listener, nullptr, nullptr);
    auto say = [fd](std::string_view s) { (void)::send(fd, s.data(), s.size(), MSG_NOSIGNAL); };
    std::string in;
    auto read_until = [&](std::string_view marker) {
      char buf[4096];
      while (in.find(marker) == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return false;
        in.append(buf, static_cast<std::size_t>(n));
      }
      return true;
    };
    say("220 fake ESMTP\r\n");
    read_until("\r\n");
    in.clear();
    say("250-fake\r\n250 PIPELINING\r\n");
    if (read_until("DATA\r\n")) {
      batch = in;
      in.clear();
      say("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n");
      read_until("\r\n.\r\n");
      say("250 2.0.0 queued\r\n");
      read_until("QUIT\r\n");
      say("221 bye\r\n");
    }
    ::close(fd);
  });
  SmtpClientConfig config;
  config.port = ntohs(addr.sin_port);
  config.timeout = 3s;
  auto client = Connect(config);
  ASSERT_NE(client, nullptr);
  auto sent = client->Send("a@b.test", {"x@y.test", "unknown@y.test"}, "m\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->recipients[0].code, 250);
  EXPECT_EQ(sent->recipients[0].enhanced, "2.0.0");
  EXPECT_EQ(sent->recipients[1].code, 550);
  client->Quit();
  fake.join();
  ::close(listener);
  EXPECT_EQ(batch,
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nRCPT TO:<unknown@y.test>\r\nDATA\r\n");
}

TEST_F(SmtpClientTest, PerRecipientResults) {
  auto server = Start();
  auto client = Connect(ClientConfig(*server));
  ASSERT_NE(client, nullptr);
  auto sent = client->Send("a@b.test", {"ok@x.test", "unknown@x.test", "busy@x.test", "two@x.test"},
                           "hello\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  const auto& r = sent->recipients;
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].code, 250);
  EXPECT_EQ(r[0].text, "Queued");  // the DATA reply, not the RCPT one
  EXPECT_EQ(r[1].code, 550);       // 5xx: a bounce
  EXPECT_EQ(r[1].enhanced, "5.1.1");
  EXPECT_EQ(r[1].text, "No such user");
  EXPECT_EQ(r[2].code, 451);  // 4xx: retried later
  EXPECT_EQ(r[2].enhanced, "4.2.1");
  EXPECT_EQ(r[3].code, 250);
  auto got = handler_->Deliveries();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].envelope.recipients, (std::vector<std::string>{"ok@x.test", "two@x.test"}));
}

TEST_F(SmtpClientTest, LmtpRepliesPerRecipient) {
  SmtpServerConfig config;
  config.protocol = SmtpServerConfig::Protocol::kLmtp;
  auto server = Start(config);
  SmtpClientConfig cc = ClientConfig(*server);
  cc.lmtp = true;
  auto client = Connect(cc);
  ASSERT_NE(client, nullptr);
  auto sent = client->Send(
      "a@b.test", {"one@x.test", "unknown@x.test", "full@x.test", "two@x.test"}, "hello\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  const auto& r = sent->recipients;
  EXPECT_EQ(r[0].code, 250);
  EXPECT_EQ(r[1].code, 550);
  EXPECT_EQ(r[2].code, 452);
  EXPECT_EQ(r[2].text, "Mailbox full");
  EXPECT_EQ(r[3].code, 250);
  // The connection is still in step for a second transaction.
  sent = client->Send("a@b.test", {"three@x.test"}, "again\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->recipients[0].code, 250);
}

TEST_F(SmtpClientTest, MailRefusedAppliesToEveryone) {
  auto server = Start();
  auto client = Connect(ClientConfig(*server));
  ASSERT_NE(client, nullptr);
  auto sent = client->Send("spammer@bad.example", {"a@x.test", "b@x.test"}, "x\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  for (const auto& r : sent->recipients) {
    EXPECT_EQ(r.code, 550);
    EXPECT_EQ(r.enhanced, "5.7.1");
    EXPECT_EQ(r.text, "Go away");
  }
  EXPECT_TRUE(handler_->Deliveries().empty());
  // Nobody accepted: RSET, no DATA; the next transaction works.
  sent = client->Send("a@b.test", {"unknown@x.test"}, "x\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->recipients[0].code, 550);
  EXPECT_TRUE(handler_->Deliveries().empty());
  sent = client->Send("a@b.test", {"ok@x.test"}, "x\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->recipients[0].code, 250);
  EXPECT_EQ(handler_->Deliveries().size(), 1u);
}

// RFC 6531: our own server does not offer SMTPUTF8, so a UTF-8 sender or recipient never
// reaches it: 553 5.6.7 from the client itself, the ASCII recipients sent as usual.
TEST_F(SmtpClientTest, Utf8AddressWithoutSmtputf8IsRefusedByTheClient) {
  auto server = Start();
  auto client = Connect(ClientConfig(*server));
  ASSERT_NE(client, nullptr);
  auto sent = client->Send("j\xc3\xb6rg@b.test", {"a@x.test", "b@x.test"}, "x\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  for (const auto& r : sent->recipients) {
    EXPECT_EQ(r.code, 553);
    EXPECT_EQ(r.enhanced, "5.6.7");
    EXPECT_NE(r.text.find("does not offer SMTPUTF8"), std::string::npos) << r.text;
  }
  EXPECT_TRUE(handler_->Deliveries().empty());
  sent = client->Send("a@b.test", {"ok@x.test", "j\xc3\xb6rg@x.test", "two@x.test"}, "x\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->recipients[0].code, 250);
  EXPECT_EQ(sent->recipients[1].code, 553);
  EXPECT_EQ(sent->recipients[1].address, "j\xc3\xb6rg@x.test");
  EXPECT_EQ(sent->recipients[2].code, 250);
  auto got = handler_->Deliveries();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].envelope.recipients, (std::vector<std::string>{"ok@x.test", "two@x.test"}));
}

TEST_F(SmtpClientTest, ServerGoneIsUnavailable) {
  std::uint16_t port = 0;
  {
    auto server = Start();
    port = server->port();
  }
  SmtpClientConfig cc;
  cc.port = port;
  cc.timeout = 5s;
  auto refused = SmtpClient::Connect(cc);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "smtp-unavailable");
  EXPECT_NE(refused.error().message.find(std::to_string(port)), std::string::npos);

  // A server that drains while we are connected says 421: the whole batch is to be retried.
  auto server = Start();
  auto client = Connect(ClientConfig(*server));
  ASSERT_NE(client, nullptr);
  server->Stop();
  auto sent = client->Send("a@b.test", {"ok@x.test"}, "x\r\n");
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, "smtp-unavailable");
  EXPECT_NE(sent.error().message.find("421"), std::string::npos) << sent.error().message;
  EXPECT_FALSE(client->Send("a@b.test", {"ok@x.test"}, "x\r\n").ok());
}

TEST_F(SmtpClientTest, StartTlsTakenWhenOffered) {
  SmtpServerConfig config;
  config.cert_file = Path("server.pem");
  config.key_file = Path("server.key");
  auto server = Start(config);

  SmtpClientConfig verified = ClientConfig(*server);
  verified.ca_file = Path("server.pem");  // self-signed: its own anchor
  verified.starttls = SmtpClientConfig::StartTls::kRequired;
  auto client = Connect(verified);
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->tls());
  EXPECT_TRUE(client->pipelining());  // learnt again from the EHLO after STARTTLS
  auto sent = client->Send("a@b.test", {"ok@x.test"}, "secret\r\n");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->recipients[0].code, 250);
  ASSERT_EQ(handler_->Deliveries().size(), 1u);
  EXPECT_TRUE(handler_->Deliveries()[0].envelope.tls);
  EXPECT_EQ(handler_->Deliveries()[0].envelope.helo, "client.test");

  // Opportunistic: no CA, still encrypted.
  auto opportunistic = Connect(ClientConfig(*server));
  ASSERT_NE(opportunistic, nullptr);
  EXPECT_TRUE(opportunistic->tls());

  SmtpClientConfig never = ClientConfig(*server);
  never.starttls = SmtpClientConfig::StartTls::kNever;
  auto plain = Connect(never);
  ASSERT_NE(plain, nullptr);
  EXPECT_FALSE(plain->tls());

  SmtpClientConfig wrong_ca = verified;
  wrong_ca.ca_file = Path("other.pem");
  auto bad = SmtpClient::Connect(wrong_ca);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "smtp-unavailable");
  EXPECT_NE(bad.error().message.find("TLS"), std::string::npos) << bad.error().message;
}

TEST_F(SmtpClientTest, StartTlsRequiredButMissing) {
  auto server = Start();  // no certificate: no STARTTLS
  SmtpClientConfig cc = ClientConfig(*server);
  cc.starttls = SmtpClientConfig::StartTls::kRequired;
  auto no_ca = SmtpClient::Connect(cc);
  ASSERT_FALSE(no_ca.ok());
  EXPECT_EQ(no_ca.error().code, "bad-config");
  cc.ca_file = Path("server.pem");
  auto not_offered = SmtpClient::Connect(cc);
  ASSERT_FALSE(not_offered.ok());
  EXPECT_EQ(not_offered.error().code, "smtp-unavailable");
  EXPECT_NE(not_offered.error().message.find("STARTTLS"), std::string::npos);
}

TEST_F(SmtpClientTest, DotStuffingRoundTrip) {
  auto server = Start();
  auto client = Connect(ClientConfig(*server));
  ASSERT_NE(client, nullptr);
  const std::string message =
      ".\r\n..\r\n.leading\r\nmiddle . dot\r\n.\r\n\r\n.\r\nbare\n.lf\r\nend\r\n";
  auto sent = client->Send("a@b.test", {"ok@x.test"}, message);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->recipients[0].code, 250);
  // Without a final CRLF, one is added so that the end marker stands on its own line.
  sent = client->Send("a@b.test", {"ok@x.test"}, "no newline at the end");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  auto got = handler_->Deliveries();
  ASSERT_EQ(got.size(), 2u);
  // The bare LF went out as CRLF: a strict next hop refuses bare line ends.
  EXPECT_EQ(got[0].message,
            ".\r\n..\r\n.leading\r\nmiddle . dot\r\n.\r\n\r\n.\r\nbare\r\n.lf\r\nend\r\n");
  EXPECT_EQ(got[1].message, "no newline at the end\r\n");
}

TEST_F(SmtpClientTest, LargeMessageIsStreamedNotCopied) {
  SmtpServerConfig config;
  config.max_message_bytes = std::size_t{26} << 20;
  auto server = Start(config);
  handler_->keep_messages = false;
  auto client = Connect(ClientConfig(*server));
  ASSERT_NE(client, nullptr);
  // 25 MB of 76-column lines, every tenth one starting with a dot.
  std::string message;
  message.reserve(std::size_t{25} << 20);
  for (int i = 0; message.size() < (std::size_t{25} << 20) - 100; ++i) {
    message += (i % 10 == 0 ? "." : "a");
    message += std::string(75, 'b');
    message += "\r\n";
  }
  std::vector<std::string> to;
  to.reserve(100);
  for (int i = 0; i < 100; ++i) to.push_back("m" + std::to_string(i) + "@x.test");

  g_largest_allocation = 0;
  g_track_allocations = true;
  auto sent = client->Send("a@b.test", to, message);
  g_track_allocations = false;
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->recipients.back().code, 250);
  // The server saw every byte (dots unstuffed again)...
  ASSERT_EQ(handler_->sizes.size(), 1u);
  EXPECT_EQ(handler_->sizes[0], message.size());
  // ...while the client never allocated more than a few stream chunks at once.
  EXPECT_LT(g_largest_allocation.load(), 4 * SmtpClient::kStreamChunkBytes);
}

}  // namespace
}  // namespace blindlist::net
