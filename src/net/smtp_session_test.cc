// The SMTP/LMTP server session as a state machine, driven without any socket: greeting,
// pipelining, transaction order, limits, DATA, STARTTLS and the closing replies.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/smtp_protocol.h"

namespace blindlist::net {
namespace {

using Action = SmtpSession::Action;

SmtpSessionConfig Config() {
  SmtpSessionConfig c;
  c.hostname = "mx.test";
  c.max_message_bytes = 1000;
  c.max_line_bytes = 100;
  c.max_recipients = 3;
  c.max_commands = 50;
  c.max_errors = 3;
  return c;
}

// Plays the I/O loop: feeds `input`, answers the handler calls as configured, and returns
// what was sent. Stops at the first read with nothing left to feed, or at kClose.
struct Driver {
  explicit Driver(SmtpSessionConfig config = Config()) : session(std::move(config), "192.0.2.1") {}

  std::string Run(std::string_view input) {
    session.Receive(input);
    for (;;) {
      const Action a = session.Next();
      actions.push_back(a);
      switch (a) {
        case Action::kRead:
        case Action::kReadData:
          return Take();
        case Action::kMailFrom:
          session.MailFromDone(mail_reply);
          break;
        case Action::kRcptTo:
          rcpts.push_back(session.recipient());
          session.RcptToDone(session.recipient().find("unknown") == 0
                                 ? SmtpReply{550, "5.1.1", "No such list"}
                                 : SmtpReply{250, "2.1.5", "OK"});
          break;
        case Action::kData:
          messages.push_back(session.TakeMessage());
          session.DataDone(data_replies);
          break;
        case Action::kStartTls:
          session.TlsStarted();
          break;
        case Action::kClose:
          closed = true;
          return Take();
      }
    }
  }
  std::string Take() {
    std::string out = session.Output();
    session.Output().clear();
    return out;
  }

  SmtpSession session;
  SmtpReply mail_reply{250, "2.1.0", "OK"};
  std::vector<SmtpReply> data_replies{SmtpReply{250, "2.0.0", "Queued"}};
  std::vector<Action> actions;
  std::vector<std::string> rcpts;
  std::vector<std::string> messages;
  bool closed = false;
};

TEST(SmtpSession, GreetsAndAnswersEhlo) {
  Driver d;
  EXPECT_EQ(d.Run(""), "220 mx.test ESMTP blindlist ready\r\n");
  EXPECT_EQ(d.Run("EHLO c.example\r\n"),
            "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
            "250 ENHANCEDSTATUSCODES\r\n");
  EXPECT_EQ(d.session.envelope().helo, "c.example");
  EXPECT_TRUE(d.session.idle());
}

TEST(SmtpSession, PipelinedTransactionIsAnsweredInOneWrite) {
  Driver d;
  d.Run("");
  const std::string out = d.Run(
      "EHLO c\r\nMAIL FROM:<a@c.example> SIZE=10\r\nRCPT TO:<list@x.example>\r\n"
      "RCPT TO:<unknown@x.example>\r\nDATA\r\n");
  EXPECT_NE(out.find("250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 No such list\r\n354 "),
            std::string::npos)
      << out;
  EXPECT_EQ(d.actions.back(), Action::kReadData);
  EXPECT_FALSE(d.session.idle());
  EXPECT_EQ(d.session.envelope().declared_size, 10U);
  EXPECT_EQ(d.Run("Subject: x\r\n\r\n..body\r\n.\r\nQUIT\r\n"),
            "250 2.0.0 Queued\r\n221 2.0.0 Bye\r\n");
  ASSERT_EQ(d.messages.size(), 1U);
  EXPECT_EQ(d.messages[0], "Subject: x\r\n\r\n.body\r\n");
  EXPECT_TRUE(d.closed);
  EXPECT_EQ(d.session.close_reason(), SmtpSession::CloseReason::kQuit);
}

TEST(SmtpSession, DataArrivesInPieces) {
  Driver d;
  d.Run("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<l@x>\r\nDATA\r\n");
  EXPECT_EQ(d.Run("a\r"), "");
  EXPECT_EQ(d.Run("\nb\r\n."), "");
  EXPECT_EQ(d.Run("\r\n"), "250 2.0.0 Queued\r\n");
  EXPECT_EQ(d.messages.at(0), "a\r\nb\r\n");
  EXPECT_TRUE(d.session.idle());
}

TEST(SmtpSession, OrderIsEnforced) {
  Driver d;
  d.Run("");
  EXPECT_EQ(d.Run("MAIL FROM:<a@b>\r\n"), "503 5.5.1 Send EHLO/HELO first\r\n");
  EXPECT_EQ(d.Run("HELO c\r\nRCPT TO:<l@x>\r\n"),
            "250 mx.test\r\n503 5.5.1 Need MAIL before RCPT\r\n");
  EXPECT_EQ(d.Run("DATA\r\n"), "503 5.5.1 Need MAIL command\r\n");
  EXPECT_TRUE(d.closed == false);
  EXPECT_EQ(d.Run("MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\n"),
            "250 2.1.0 OK\r\n421 4.7.0 mx.test Too many errors, closing connection\r\n");
  EXPECT_TRUE(d.closed);
  EXPECT_EQ(d.session.close_reason(), SmtpSession::CloseReason::kTooManyErrors);
}

TEST(SmtpSession, DataWithoutRecipientsAndRefusedSender) {
  Driver d;
  d.mail_reply = SmtpReply{550, "5.7.1", "Not you"};
  d.Run("EHLO c\r\n");
  EXPECT_EQ(d.Run("MAIL FROM:<a@b>\r\nRCPT TO:<l@x>\r\n"),
            "550 5.7.1 Not you\r\n503 5.5.1 Need MAIL before RCPT\r\n");
  EXPECT_EQ(d.session.envelope().mail_from, "");
  d.mail_reply = SmtpReply{250, "2.1.0", "OK"};
  EXPECT_EQ(d.Run("MAIL FROM:<a@b>\r\nRCPT TO:<unknown@x>\r\nDATA\r\n"),
            "250 2.1.0 OK\r\n550 5.1.1 No such list\r\n554 5.5.1 No valid recipients\r\n");
}

TEST(SmtpSession, Limits) {
  Driver d;
  d.Run("EHLO c\r\n");
  EXPECT_EQ(d.Run("MAIL FROM:<a@b> SIZE=1001\r\n"),
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  EXPECT_FALSE(d.session.envelope().declared_size.has_value());
  d.Run("MAIL FROM:<a@b>\r\nRCPT TO:<1@x>\r\nRCPT TO:<2@x>\r\nRCPT TO:<3@x>\r\n");
  EXPECT_EQ(d.Run("RCPT TO:<4@x>\r\n"), "452 4.5.3 Too many recipients\r\n");
  EXPECT_EQ(d.session.envelope().recipients.size(), 3U);
  d.Run("DATA\r\n");
  EXPECT_EQ(d.Run(std::string(1100, 'x') + "\r\n.\r\n"),
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  EXPECT_TRUE(d.messages.empty());
  EXPECT_EQ(d.Run(std::string(103, 'y')), "500 5.5.2 Line too long\r\n");
  EXPECT_EQ(d.session.close_reason(), SmtpSession::CloseReason::kLineTooLong);
}

TEST(SmtpSession, TooManyCommands) {
  SmtpSessionConfig c = Config();
  c.max_commands = 2;
  Driver d(c);
  d.Run("");
  EXPECT_EQ(d.Run("NOOP\r\nNOOP\r\nNOOP\r\n"),
            "250 2.0.0 OK\r\n250 2.0.0 OK\r\n421 4.7.0 mx.test Too many commands, closing "
            "connection\r\n");
  EXPECT_EQ(d.session.Next(), Action::kClose);
}

TEST(SmtpSession, LmtpAnswersDataPerRecipient) {
  SmtpSessionConfig c = Config();
  c.lmtp = true;
  Driver d(c);
  EXPECT_EQ(d.Run(""), "220 mx.test LMTP blindlist ready\r\n");
  EXPECT_EQ(d.Run("EHLO c\r\n"), "500 5.5.1 Command unrecognized\r\n");
  d.Run("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n");
  EXPECT_EQ(d.session.data_replies_wanted(), 2U);
  // One reply short: the missing one becomes a 451.
  EXPECT_EQ(d.Run("m\r\n.\r\n"),
            "250 2.0.0 Queued\r\n451 4.3.0 Internal error, try again later\r\n");
}

TEST(SmtpSession, StartTlsDropsPlaintextAndForgetsTheHello) {
  SmtpSessionConfig c = Config();
  c.starttls_available = true;
  Driver d(c);
  d.Run("");
  EXPECT_NE(d.Run("EHLO c\r\n").find("250 STARTTLS\r\n"), std::string::npos);
  // The MAIL after STARTTLS came in plaintext: it is dropped, not run inside TLS.
  EXPECT_EQ(d.Run("STARTTLS\r\nMAIL FROM:<inject@evil>\r\n"), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_TRUE(d.session.tls_active());
  EXPECT_TRUE(d.session.envelope().helo.empty());
  EXPECT_EQ(d.Run("MAIL FROM:<a@b>\r\n"), "503 5.5.1 Send EHLO/HELO first\r\n");
  EXPECT_EQ(d.Run("EHLO c\r\n").find("STARTTLS"), std::string::npos);
  EXPECT_EQ(d.Run("STARTTLS\r\n"), "503 5.5.1 TLS already active\r\n");
}

TEST(SmtpSession, NoStartTlsWithoutACertificate) {
  Driver d;
  d.Run("EHLO c\r\n");
  EXPECT_EQ(d.Run("STARTTLS\r\n"), "502 5.5.1 STARTTLS not available\r\n");
}

TEST(SmtpSession, TimeoutAndShutdownClose) {
  Driver d;
  d.Run("");
  d.session.TimedOut();
  EXPECT_EQ(d.session.Next(), Action::kClose);
  EXPECT_EQ(d.Take(), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  Driver e;
  e.Run("EHLO c\r\n");
  e.session.ShuttingDown();
  EXPECT_EQ(e.session.Next(), Action::kClose);
  EXPECT_EQ(e.Take(), "421 4.3.2 mx.test Service shutting down, try again later\r\n");
  EXPECT_EQ(e.session.close_reason(), SmtpSession::CloseReason::kShutdown);
}

TEST(SmtpSession, AnActionIsAskedAgainUntilAnswered) {
  SmtpSession s(Config(), "peer");
  s.Receive("HELO c\r\nMAIL FROM:<a@b>\r\n");
  EXPECT_EQ(s.Next(), Action::kMailFrom);
  EXPECT_EQ(s.Next(), Action::kMailFrom);
  s.RcptToDone(SmtpReply{});  // not what was asked: ignored
  EXPECT_EQ(s.Next(), Action::kMailFrom);
  s.MailFromDone(SmtpReply{250, "2.1.0", "OK"});
  EXPECT_EQ(s.Next(), Action::kRead);
  EXPECT_FALSE(s.idle());
}

}  // namespace
}  // namespace blindlist::net
