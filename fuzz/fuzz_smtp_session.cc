// The SMTP/LMTP server session (net::SmtpSession) driven by arbitrary client bytes, as
// listd's SMTP and LMTP listeners run it.
// Input: byte 0 picks the configuration (SMTP or LMTP, STARTTLS offered or not) and how the
// fake handler answers; byte 1 the size of the pieces the rest arrives in.
// Invariants: everything sent is whole CRLF reply lines that parse, with valid continuation
// marks; every Next() either asks for input or makes progress (no loop without input); a
// closed session stays closed and sends nothing more; recipients never exceed the limit, a
// message handed over never exceeds the size limit, and the handler is asked only for what
// the state allows (RCPT inside a transaction, DATA with a recipient).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "net/smtp_protocol.h"

using blindlist::net::ParseReplyLine;
using blindlist::net::SmtpReply;
using blindlist::net::SmtpSession;
using blindlist::net::SmtpSessionConfig;

namespace {

void CheckOutput(const std::string& out) {
  std::size_t pos = 0;
  while (pos < out.size()) {
    const std::size_t crlf = out.find("\r\n", pos);
    FUZZ_CHECK(crlf != std::string::npos, "output ends inside a line");
    const std::string_view line(out.data() + pos, crlf - pos);
    FUZZ_CHECK(line.find_first_of("\r\n") == std::string_view::npos, "bare CR or LF sent");
    FUZZ_CHECK(ParseReplyLine(line).ok(), "a sent line is not a reply");
    pos = crlf + 2;
  }
}

constexpr int kMaxStepsPerPiece = 100000;

// Runs the session until it wants input or closes. False once closed.
bool Drive(SmtpSession& s, const SmtpSessionConfig& config, std::uint8_t mode, std::string& sent) {
  using Action = SmtpSession::Action;
  for (int steps = 0; steps < kMaxStepsPerPiece; ++steps) {
    const Action a = s.Next();
    switch (a) {
      case Action::kRead:
      case Action::kReadData:
        sent += s.Output();
        s.Output().clear();
        return true;
      case Action::kMailFrom:
        s.MailFromDone((mode & 4) != 0 ? SmtpReply{550, "5.7.1", "no"}
                                       : SmtpReply{250, "2.1.0", "OK"});
        break;
      case Action::kRcptTo:
        FUZZ_CHECK(s.envelope().recipients.size() < static_cast<std::size_t>(config.max_recipients),
                   "RCPT asked past the recipient limit");
        s.RcptToDone(s.recipient().size() % 2 == 0 ? SmtpReply{250, "2.1.5", "OK"}
                                                   : SmtpReply{550, "5.1.1", "unknown"});
        break;
      case Action::kData: {
        FUZZ_CHECK(!s.envelope().recipients.empty(), "DATA handed over without a recipient");
        const std::string message = s.TakeMessage();
        FUZZ_CHECK(message.size() <= config.max_message_bytes, "an oversized message passed");
        // Sometimes too few or too many replies: the session must fix the count.
        std::vector<SmtpReply> replies(s.data_replies_wanted() + (mode >> 6) - 1,
                                       SmtpReply{250, "2.0.0", "queued"});
        s.DataDone(std::move(replies));
        break;
      }
      case Action::kStartTls:
        FUZZ_CHECK(config.starttls_available, "STARTTLS without TLS");
        sent += s.Output();
        s.Output().clear();
        if ((mode & 8) != 0) {
          s.TlsStarted();
          FUZZ_CHECK(s.envelope().helo.empty(), "the hello survived STARTTLS");
        } else {
          return false;  // a failed handshake ends the connection
        }
        break;
      case Action::kClose:
        sent += s.Output();
        s.Output().clear();
        FUZZ_CHECK(s.Next() == Action::kClose, "a closed session reopened");
        FUZZ_CHECK(s.Output().empty(), "a closed session said more");
        return false;
    }
  }
  FUZZ_CHECK(false, "the session loops without asking for input");
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0];
  const std::size_t piece = 1 + data[1] % 64;
  SmtpSessionConfig config;
  config.lmtp = (mode & 1) != 0;
  config.starttls_available = (mode & 2) != 0;
  config.hostname = "mx.fuzz";
  config.max_message_bytes = 512;
  config.max_line_bytes = 128;
  config.max_recipients = 4;
  config.max_commands = 200;
  config.max_errors = 5;
  SmtpSession session(config, "192.0.2.7");
  std::string sent;
  bool open = Drive(session, config, mode, sent);
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  for (std::size_t i = 0; open && i < input.size(); i += piece) {
    session.Receive(input.substr(i, piece));
    open = Drive(session, config, mode, sent);
  }
  if (open && (mode & 16) != 0) {
    session.TimedOut();
    open = Drive(session, config, mode, sent);
    FUZZ_CHECK(!open, "a timed-out session stayed open");
  }
  CheckOutput(sent);
  FUZZ_CHECK(sent.rfind("220 mx.fuzz ", 0) == 0, "no greeting first");
  return 0;
}
