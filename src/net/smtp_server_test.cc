// SmtpServer over real loopback sockets: a raw line-level client for exact replies, swaks
// for STARTTLS (certificate made by the openssl CLI), and drain on Stop().
// Timing: only generous upper bounds, never tight ones.

#include "net/smtp_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "peer.h"

namespace blindlist::net {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A line-level SMTP client over a blocking socket.
class RawSession {
 public:
  explicit RawSession(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawSession() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;
  bool ok() const { return fd_ >= 0; }

  void Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // One whole reply, all its lines joined with "\n" (CRLF removed); "" on EOF or timeout.
  std::string Reply(std::chrono::milliseconds bound = 10s) {
    std::string out;
    for (;;) {
      std::string line = Line(bound);
      if (line.empty()) return out;
      if (!out.empty()) out += "\n";
      out += line;
      if (line.size() < 4 || line[3] == ' ') return out;
    }
  }
  // The 3-digit code of the next reply, 0 on EOF.
  int Code(std::chrono::milliseconds bound = 10s) {
    std::string r = Reply(bound);
    return r.size() >= 3 ? std::stoi(r.substr(0, 3)) : 0;
  }
  // True once the server has closed (EOF or reset) within `bound`.
  bool Closed(std::chrono::milliseconds bound = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      if (::recv(fd_, buf, sizeof buf, 0) <= 0) return true;
    }
    return false;
  }

 private:
  std::string Line(std::chrono::milliseconds bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    for (;;) {
      const std::size_t nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return {};
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  int fd_ = -1;
  std::string buf_;
};

struct Delivery {
  SmtpEnvelope envelope;
  std::string message;
};

// Refuses "unknown@..." (550 5.1.1) and "busy@..." (451 4.2.1) at RCPT; in LMTP, says
// 452 4.2.2 at DATA for "full@...". Can be made to wait in OnData (to test draining).
class RecordingHandler : public SmtpHandler {
 public:
  SmtpReply OnMailFrom(const SmtpEnvelope& envelope) override {
    if (envelope.mail_from == "spammer@bad.example") return {550, "5.7.1", "Go away"};
    return {250, "2.1.0", "Sender ok"};
  }
  SmtpReply OnRcptTo(const SmtpEnvelope& /*envelope*/, const std::string& recipient) override {
    if (recipient.rfind("unknown@", 0) == 0) return {550, "5.1.1", "No such list"};
    if (recipient.rfind("busy@", 0) == 0) return {451, "4.2.1", "Try later"};
    return {250, "2.1.5", "Recipient ok"};
  }
  std::vector<SmtpReply> OnData(const SmtpEnvelope& envelope, std::string message) override {
    if (hold_data) {
      entered_data = true;
      while (hold_data) std::this_thread::sleep_for(10ms);
    }
    std::vector<SmtpReply> replies;
    for (const auto& r : envelope.recipients) {
      if (r.rfind("full@", 0) == 0) {
        replies.push_back({452, "4.2.2", "Mailbox full"});
      } else {
        replies.push_back({250, "2.0.0", "Queued"});
      }
    }
    if (!lmtp) replies.resize(1);
    std::lock_guard lock(mu);
    deliveries.push_back(Delivery{envelope, std::move(message)});
    return replies;
  }
  std::vector<Delivery> Deliveries() {
    std::lock_guard lock(mu);
    return deliveries;
  }

  bool lmtp = false;
  std::atomic<bool> hold_data{false};
  std::atomic<bool> entered_data{false};

 private:
  std::mutex mu;
  std::vector<Delivery> deliveries;
};

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds bound = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class SmtpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/blindlist-smtp-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new fs::path(tmpl);
    const std::string script =
        "cd '" + dir_->string() +
        "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        " -keyout server.key -out server.pem -days 2 -subj '/CN=127.0.0.1'"
        " -addext subjectAltName=IP:127.0.0.1 >openssl.log 2>&1";
    ASSERT_EQ(std::system(script.c_str()), 0);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static std::string Path(const char* name) { return (*dir_ / name).string(); }

  static SmtpServerConfig Config() {
    SmtpServerConfig c;
    c.hostname = "mx.test";
    c.max_message_bytes = 100000;
    return c;
  }

  std::unique_ptr<SmtpServer> Start(SmtpServerConfig config) {
    handler_->lmtp = config.protocol == SmtpServerConfig::Protocol::kLmtp;
    auto server = std::make_unique<SmtpServer>(std::move(config), handler_);
    Status s = server->Start();
    EXPECT_TRUE(s.ok()) << s.error().code << ": " << s.error().message;
    return server;
  }

  std::shared_ptr<RecordingHandler> handler_ = std::make_shared<RecordingHandler>();
  static fs::path* dir_;
};

fs::path* SmtpServerTest::dir_ = nullptr;

TEST_F(SmtpServerTest, EhloAdvertisesExtensions) {
  auto server = Start(Config());
  RawSession s(server->port());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.Reply().substr(0, 12), "220 mx.test ");
  s.Send("EHLO client.test\r\n");
  const std::string ehlo = s.Reply();
  EXPECT_EQ(ehlo.substr(0, 12), "250-mx.test\n");
  EXPECT_TRUE(Contains(ehlo, "250-PIPELINING")) << ehlo;
  EXPECT_TRUE(Contains(ehlo, "SIZE 100000")) << ehlo;
  EXPECT_TRUE(Contains(ehlo, "8BITMIME")) << ehlo;
  EXPECT_TRUE(Contains(ehlo, "ENHANCEDSTATUSCODES")) << ehlo;
  EXPECT_FALSE(Contains(ehlo, "STARTTLS")) << "no certificate configured";
  s.Send("HELO client.test\r\n");
  EXPECT_EQ(s.Reply(), "250 mx.test");
  s.Send("QUIT\r\n");
  EXPECT_EQ(s.Reply(), "221 2.0.0 Bye");
  EXPECT_TRUE(s.Closed());

  SmtpServerConfig tls = Config();
  tls.cert_file = Path("server.pem");
  tls.key_file = Path("server.key");
  auto tls_server = Start(tls);
  RawSession t(tls_server->port());
  t.Reply();
  t.Send("EHLO client.test\r\n");
  EXPECT_TRUE(Contains(t.Reply(), "STARTTLS"));
}

TEST_F(SmtpServerTest, PipelinedTransactionWithDotUnstuffing) {
  auto server = Start(Config());
  RawSession s(server->port());
  s.Reply();
  // Everything up to DATA in one write, as a PIPELINING client does.
  s.Send(
      "EHLO client.test\r\nMAIL FROM:<alice@example.org> BODY=8BITMIME\r\n"
      "RCPT TO:<list@lists.test>\r\nRCPT TO:<unknown@lists.test>\r\n"
      "RCPT TO:<busy@lists.test>\r\nDATA\r\n");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Reply(), "250 2.1.0 Sender ok");
  EXPECT_EQ(s.Reply(), "250 2.1.5 Recipient ok");
  EXPECT_EQ(s.Reply(), "550 5.1.1 No such list");
  EXPECT_EQ(s.Reply(), "451 4.2.1 Try later");
  EXPECT_EQ(s.Code(), 354);
  // The end marker and the next commands in one write too.
  s.Send("Subject: dots\r\n\r\n..leading\r\n...two\r\nmid.dle\r\n.\r\nNOOP\r\nQUIT\r\n");
  EXPECT_EQ(s.Reply(), "250 2.0.0 Queued");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 221);

  auto got = handler_->Deliveries();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message, "Subject: dots\r\n\r\n.leading\r\n..two\r\nmid.dle\r\n");
  EXPECT_EQ(got[0].envelope.mail_from, "alice@example.org");
  EXPECT_EQ(got[0].envelope.recipients, std::vector<std::string>{"list@lists.test"});
  EXPECT_EQ(got[0].envelope.helo, "client.test");
  EXPECT_EQ(got[0].envelope.peer_address, "127.0.0.1");
  EXPECT_FALSE(got[0].envelope.tls);
}

TEST_F(SmtpServerTest, SequenceErrors) {
  auto server = Start(Config());
  RawSession s(server->port());
  s.Reply();
  s.Send("MAIL FROM:<a@b.test>\r\n");
  EXPECT_EQ(s.Reply().substr(0, 9), "503 5.5.1");  // no EHLO yet
  s.Send("EHLO c\r\nRCPT TO:<list@lists.test>\r\nDATA\r\n");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Reply().substr(0, 9), "503 5.5.1");
  EXPECT_EQ(s.Reply().substr(0, 9), "503 5.5.1");
  s.Send("MAIL FROM:<spammer@bad.example>\r\nRCPT TO:<list@lists.test>\r\n");
  EXPECT_EQ(s.Reply(), "550 5.7.1 Go away");
  EXPECT_EQ(s.Reply().substr(0, 9), "503 5.5.1");
  s.Send("MAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<unknown@x.test>\r\nDATA\r\n");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Reply().substr(0, 9), "503 5.5.1");  // nested MAIL
  EXPECT_EQ(s.Code(), 550);
  EXPECT_EQ(s.Reply().substr(0, 9), "554 5.5.1");  // DATA without a valid recipient
  s.Send("RSET\r\nVRFY x\r\nSTARTTLS\r\nLHLO x\r\n");
  EXPECT_EQ(s.Reply(), "250 2.0.0 OK");
  EXPECT_EQ(s.Code(), 252);
  EXPECT_EQ(s.Reply().substr(0, 9), "502 5.5.1");  // no certificate, no STARTTLS
  EXPECT_EQ(s.Reply().substr(0, 9), "500 5.5.1");  // LHLO is LMTP only
  EXPECT_TRUE(handler_->Deliveries().empty());
}

TEST_F(SmtpServerTest, MessageTooLarge) {
  SmtpServerConfig config = Config();
  config.max_message_bytes = 1000;
  auto server = Start(config);
  RawSession s(server->port());
  s.Reply();
  s.Send("EHLO c\r\nMAIL FROM:<a@b.test> SIZE=1001\r\n");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Reply().substr(0, 9), "552 5.3.4");
  // No SIZE= (or a wrong one): the body itself is measured, read to its end and dropped.
  s.Send("MAIL FROM:<a@b.test> SIZE=10\r\nRCPT TO:<list@lists.test>\r\nDATA\r\n");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 354);
  const std::string line(98, 'x');
  for (int i = 0; i < 30; ++i) s.Send(line + "\r\n");
  s.Send(".\r\nNOOP\r\n");
  EXPECT_EQ(s.Reply().substr(0, 9), "552 5.3.4");
  EXPECT_EQ(s.Code(), 250);  // the session stays in step
  EXPECT_TRUE(handler_->Deliveries().empty());
  // A message of exactly the limit passes.
  s.Send("MAIL FROM:<a@b.test>\r\nRCPT TO:<list@lists.test>\r\nDATA\r\n");
  s.Reply();
  s.Reply();
  EXPECT_EQ(s.Code(), 354);
  for (int i = 0; i < 10; ++i) s.Send(line + "\r\n");
  s.Send(".\r\n");
  EXPECT_EQ(s.Code(), 250);
  ASSERT_EQ(handler_->Deliveries().size(), 1u);
  EXPECT_EQ(handler_->Deliveries()[0].message.size(), 1000u);
}

TEST_F(SmtpServerTest, LongLines) {
  SmtpServerConfig config = Config();
  config.max_line_bytes = 100;
  auto server = Start(config);
  RawSession s(server->port());
  s.Reply();
  s.Send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<list@lists.test>\r\nDATA\r\n");
  for (int i = 0; i < 3; ++i) s.Reply();
  EXPECT_EQ(s.Code(), 354);
  s.Send(std::string(101, 'y') + "\r\n.\r\n");
  EXPECT_EQ(s.Reply().substr(0, 9), "500 5.5.2");
  EXPECT_TRUE(handler_->Deliveries().empty());
  // A complete over-long command is refused; one that never ends closes the connection.
  s.Send("NOOP " + std::string(200, 'z') + "\r\n");
  EXPECT_EQ(s.Reply().substr(0, 9), "500 5.5.2");
  s.Send(std::string(5000, 'z'));
  EXPECT_EQ(s.Reply().substr(0, 9), "500 5.5.2");
  EXPECT_TRUE(s.Closed());
}

TEST_F(SmtpServerTest, TooManyRecipients) {
  SmtpServerConfig config = Config();
  config.max_recipients = 2;
  auto server = Start(config);
  RawSession s(server->port());
  s.Reply();
  s.Send(
      "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<l1@x.test>\r\nRCPT TO:<l2@x.test>\r\n"
      "RCPT TO:<l3@x.test>\r\nDATA\r\n");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Reply().substr(0, 9), "452 4.5.3");
  EXPECT_EQ(s.Code(), 354);
  s.Send("x\r\n.\r\n");
  EXPECT_EQ(s.Code(), 250);
  ASSERT_EQ(handler_->Deliveries().size(), 1u);
  EXPECT_EQ(handler_->Deliveries()[0].envelope.recipients.size(), 2u);
}

TEST_F(SmtpServerTest, BadCommandsThen421) {
  SmtpServerConfig config = Config();
  config.max_errors = 3;
  auto server = Start(config);
  RawSession s(server->port());
  s.Reply();
  s.Send("EHLO c\r\nFOO\r\nMAIL FROM:nobrackets\r\nRCPT TO:<x@y.test>\r\nBAR\r\nNOOP\r\n");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Reply().substr(0, 9), "500 5.5.1");
  EXPECT_EQ(s.Reply().substr(0, 9), "501 5.5.2");
  EXPECT_EQ(s.Reply().substr(0, 9), "503 5.5.1");
  EXPECT_EQ(s.Reply().substr(0, 9), "421 4.7.0");
  EXPECT_TRUE(s.Closed());
}

TEST_F(SmtpServerTest, CommandLimitThen421) {
  SmtpServerConfig config = Config();
  config.max_commands = 3;
  auto server = Start(config);
  RawSession s(server->port());
  s.Reply();
  s.Send("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n");
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Reply().substr(0, 9), "421 4.7.0");
  EXPECT_TRUE(s.Closed());
}

TEST_F(SmtpServerTest, CommandTimeoutGets421) {
  SmtpServerConfig config = Config();
  config.command_timeout = 300ms;
  auto server = Start(config);
  RawSession s(server->port());
  s.Reply();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(s.Reply().substr(0, 9), "421 4.4.2");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(s.Closed());
}

TEST_F(SmtpServerTest, ConnectionsPerPeerAreLimited) {
  SmtpServerConfig config = Config();
  config.max_connections_per_peer = 1;
  auto server = Start(config);
  RawSession first(server->port());
  EXPECT_EQ(first.Code(), 220);
  RawSession second(server->port());
  EXPECT_EQ(second.Reply().substr(0, 9), "421 4.7.0");
  EXPECT_TRUE(second.Closed());
  first.Send("QUIT\r\n");
  EXPECT_EQ(first.Code(), 221);
  EXPECT_TRUE(Eventually([&] {
    RawSession third(server->port());
    return third.Code() == 220;
  }));
}

TEST_F(SmtpServerTest, LmtpGivesOneReplyPerRecipient) {
  SmtpServerConfig config = Config();
  config.protocol = SmtpServerConfig::Protocol::kLmtp;
  auto server = Start(config);
  RawSession s(server->port());
  EXPECT_TRUE(Contains(s.Reply(), "LMTP"));
  s.Send("EHLO c\r\n");
  EXPECT_EQ(s.Reply().substr(0, 9), "500 5.5.1");  // LMTP knows LHLO only
  s.Send(
      "LHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<one@x.test>\r\nRCPT TO:<unknown@x.test>\r\n"
      "RCPT TO:<full@x.test>\r\nRCPT TO:<two@x.test>\r\nDATA\r\n");
  EXPECT_TRUE(Contains(s.Reply(), "PIPELINING"));
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 550);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 250);
  EXPECT_EQ(s.Code(), 354);
  s.Send("hello\r\n.\r\n");
  // One per accepted recipient, in RCPT order: one, full, two.
  EXPECT_EQ(s.Reply(), "250 2.0.0 Queued");
  EXPECT_EQ(s.Reply(), "452 4.2.2 Mailbox full");
  EXPECT_EQ(s.Reply(), "250 2.0.0 Queued");
  s.Send("NOOP\r\n");
  EXPECT_EQ(s.Reply(), "250 2.0.0 OK");  // nothing extra was sent before it
}

TEST_F(SmtpServerTest, StartTlsWithSwaks) {
  if (std::system("command -v swaks >/dev/null 2>&1") != 0) BL_PEER_MISSING("swaks not installed");
  if (std::system("perl -MNet::SSLeay -e1 >/dev/null 2>&1") != 0) {
    BL_PEER_MISSING("swaks cannot do TLS here: install libnet-ssleay-perl");
  }
  SmtpServerConfig config = Config();
  config.cert_file = Path("server.pem");
  config.key_file = Path("server.key");
  auto server = Start(config);
  const std::string cmd = "swaks --server 127.0.0.1:" + std::to_string(server->port()) +
                          " --tls --pipeline --from alice@example.org --to list@lists.test"
                          " --helo swaks.test --body 'over TLS' >" +
                          Path("swaks.log") + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << std::ifstream(Path("swaks.log")).rdbuf();
  auto got = handler_->Deliveries();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].envelope.tls);
  EXPECT_EQ(got[0].envelope.helo, "swaks.test");  // the EHLO after STARTTLS
  EXPECT_TRUE(Contains(got[0].message, "over TLS"));

  // Commands pipelined behind STARTTLS were sent in plaintext: they must not run.
  RawSession s(server->port());
  s.Reply();
  s.Send("EHLO c\r\n");
  s.Reply();
  s.Send("STARTTLS\r\nMAIL FROM:<a@b.test>\r\n");
  EXPECT_EQ(s.Reply(), "220 2.0.0 Ready to start TLS");
  EXPECT_EQ(s.Reply(1s), "") << "the injected MAIL got a plaintext answer";
}

TEST_F(SmtpServerTest, StopDrainsTransactionsThenSays421) {
  SmtpServerConfig config = Config();
  config.drain_timeout = 10s;
  auto server = Start(config);
  RawSession idle(server->port());
  RawSession busy(server->port());
  ASSERT_EQ(idle.Code(), 220);
  ASSERT_EQ(busy.Code(), 220);
  busy.Send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<list@x.test>\r\n");
  EXPECT_EQ(busy.Code(), 250);
  EXPECT_EQ(busy.Code(), 250);
  EXPECT_EQ(busy.Code(), 250);

  auto stopped = std::async(std::launch::async, [&] { server->Stop(); });
  // The idle session goes at once, with a 421 rather than a bare close.
  EXPECT_EQ(idle.Reply().substr(0, 9), "421 4.3.2");
  EXPECT_TRUE(idle.Closed());
  // New connections are refused.
  EXPECT_TRUE(Eventually([&] {
    RawSession late(server->port());
    return !late.ok() || late.Code() != 220;
  }));
  // The transaction in flight finishes, then gets its 421.
  busy.Send("DATA\r\n");
  EXPECT_EQ(busy.Code(), 354);
  busy.Send("drained\r\n.\r\n");
  EXPECT_EQ(busy.Reply(), "250 2.0.0 Queued");
  EXPECT_EQ(busy.Reply().substr(0, 9), "421 4.3.2");
  EXPECT_TRUE(busy.Closed());
  EXPECT_EQ(stopped.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(handler_->Deliveries().size(), 1u);
  EXPECT_EQ(handler_->Deliveries()[0].message, "drained\r\n");
}

TEST_F(SmtpServerTest, DrainTimeoutCutsOffSlowTransactions) {
  SmtpServerConfig config = Config();
  config.drain_timeout = 300ms;
  auto server = Start(config);
  RawSession busy(server->port());
  busy.Reply();
  busy.Send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<list@x.test>\r\nDATA\r\n");
  for (int i = 0; i < 3; ++i) busy.Reply();
  EXPECT_EQ(busy.Code(), 354);
  busy.Send("half a message\r\n");
  const auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(busy.Reply().substr(0, 9), "421 4.3.2");
  EXPECT_TRUE(busy.Closed());
  EXPECT_TRUE(handler_->Deliveries().empty());
}

TEST_F(SmtpServerTest, StartNamesTheProblem) {
  SmtpServerConfig config = Config();
  config.cert_file = Path("missing.pem");
  config.key_file = Path("server.key");
  SmtpServer missing(config, handler_);
  Status s = missing.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error().message, "missing.pem")) << s.error().message;

  auto running = Start(Config());
  SmtpServerConfig clash = Config();
  clash.port = running->port();
  SmtpServer second(clash, handler_);
  s = second.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error().message, std::to_string(running->port()))) << s.error().message;
}

}  // namespace
}  // namespace blindlist::net
