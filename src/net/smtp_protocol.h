// SMTP/LMTP without any I/O (RFC 5321, RFC 2033, RFC 2920, RFC 1870, RFC 2034, RFC 3207):
// command parsing, reply formatting and parsing, the DATA dot-stuffing in both directions,
// and the server session as a state machine (SmtpSession). Shared by SmtpServer, SmtpClient
// and the fuzz targets; needs no Boost.
// Thread-safety: free functions are pure; DotUnstuffer, DotStuffer and SmtpSession are plain
// values, one per stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blindlist/result.h"

namespace blindlist::net {

struct SmtpReply {
  int code = 250;
  std::string enhanced;  // "2.0.0"; empty: none
  std::string text;      // may hold several lines separated by '\n'
};

struct SmtpCommand {
  enum class Verb {
    kHelo,
    kEhlo,
    kLhlo,
    kMail,
    kRcpt,
    kData,
    kRset,
    kNoop,
    kQuit,
    kVrfy,
    kHelp,
    kStartTls,
    kUnknown
  } verb = Verb::kUnknown;
  std::string argument;  // everything after the verb and one space, as sent
  std::string address;   // MAIL/RCPT path, angle brackets and source route removed, "" for <>
  std::vector<std::pair<std::string, std::string>> parameters;  // SIZE=, BODY= ...; keys uppercase
};

// The longest forward or reverse path RFC 5321 4.5.3.1.3 allows, brackets included.
inline constexpr std::size_t kMaxSmtpPathBytes = 256;

// Parses one command line (without its CRLF). An unrecognised verb is not an error: it
// comes back as kUnknown so the caller can count it. Errors have code "smtp-syntax" and
// carry in `message` the whole reply line to send, e.g. "501 5.5.2 Syntax: MAIL FROM:<address>";
// ReplyForError turns one into an SmtpReply. MAIL takes only SIZE= (digits) and
// BODY=7BIT|8BITMIME (value uppercased), RCPT no parameter at all: other parameters
// are 555 5.5.4 since we advertise no extension that defines them.
Result<SmtpCommand> ParseCommand(std::string_view line);

// Whether `address` is a mailbox as an RFC 5321 path carries it (local part possibly quoted,
// printable ASCII, no unquoted specials, one "@" outside quotes, a domain): what ParseCommand
// accepts inside MAIL FROM:<...>.
bool IsSmtpMailbox(std::string_view address);

// The reply carried by a ParseCommand error (500 5.5.2 if it carries none).
SmtpReply ReplyForError(const Error& error);

// "250-first\r\n250-second\r\n250 last\r\n", each line prefixed with the enhanced code when
// there is one. CR, LF and other control characters in the text cannot split the reply: the
// text is cut into lines at '\n' and other control characters become spaces. A code outside
// 200..599 becomes 451 4.3.0 (it would confuse the client).
std::string FormatReply(const SmtpReply& reply);
void AppendReply(const SmtpReply& reply, std::string& out);

// One line of a server reply, without its CRLF.
struct SmtpReplyLine {
  int code = 0;
  bool last = true;      // "250 " rather than "250-"
  std::string enhanced;  // when the text starts with one whose class matches the code
  std::string text;      // the rest
};
// Errors: code "smtp-protocol" naming the line's problem.
Result<SmtpReplyLine> ParseReplyLine(std::string_view line);

// The DATA section as it arrives after 354: removes the leading dot of each line and stops
// after the end marker CRLF "." CRLF. Only that ends the message: "." CRLF after a bare LF
// is content (no SMTP smuggling through a lenient next hop), though its dot is unstuffed
// like any other, mirroring DotStuffer, which doubles a dot at every line start (and sends
// every line end as CRLF). The message keeps its line endings as received,
// without the end marker's "." CRLF. Past max_message_bytes nothing more is stored, but the
// input is still consumed to the end marker so the session stays in step.
class DotUnstuffer {
 public:
  DotUnstuffer(std::size_t max_message_bytes, std::size_t max_line_bytes);

  // Consumes from `in` up to and including the end marker; returns how many bytes it took.
  std::size_t Feed(std::string_view in);
  bool done() const { return done_; }
  // The unstuffed size, counted even past the limit.
  std::uint64_t size() const { return size_; }
  bool too_large() const { return size_ > max_message_bytes_; }
  bool line_too_long() const { return line_too_long_; }
  // The message so far (empty once too_large()).
  std::string& message() { return message_; }

 private:
  enum class State { kLineStart, kDot, kDotCr, kText, kCr };
  void Emit(std::string_view bytes);

  std::size_t max_message_bytes_;
  std::size_t max_line_bytes_;
  State state_ = State::kLineStart;
  bool crlf_line_start_ = true;  // the current line followed CRLF (or began the message)
  std::size_t line_bytes_ = 0;
  std::uint64_t size_ = 0;
  bool line_too_long_ = false;
  bool done_ = false;
  std::string message_;
};

// The other direction, streaming: appends `in` to `out` as valid SMTP DATA, so a message of
// any size goes out in chunks without a second full copy. Every line ends in CRLF: a bare LF
// (pipe(8) hands over LF lines) or a bare CR becomes CRLF (RFC 5321 section 2.3.8; strict
// receivers refuse bare line ends against SMTP smuggling), and a dot is doubled at the start
// of every line. Finish() appends the CRLF the message may lack and "." CRLF.
class DotStuffer {
 public:
  void Stuff(std::string_view in, std::string& out);
  void Finish(std::string& out);

 private:
  bool at_line_start_ = true;  // the last line end was written (or nothing yet)
  bool pending_cr_ = false;    // the last byte was a CR: the line ends, CRLF or not
};

// What a client has said in the current transaction, as the session's handler sees it.
struct SmtpEnvelope {
  std::string peer_address;
  std::string helo;
  bool tls = false;
  std::string mail_from;                       // "" for the null sender <>
  std::optional<std::uint64_t> declared_size;  // MAIL FROM SIZE=
  bool xverp = false;                          // MAIL FROM XVERP (offer_xverp only)
  std::vector<std::string> recipients;         // accepted so far
};

struct SmtpSessionConfig {
  bool lmtp = false;
  std::string hostname = "localhost";  // greeting and EHLO name
  std::size_t max_message_bytes = std::size_t{25} << 20;
  std::size_t max_line_bytes = 4096;
  int max_recipients = 1000;
  int max_commands = 1000;
  int max_errors = 10;
  bool starttls_available = false;  // a TLS context exists: STARTTLS is offered
  // Offer Postfix's XVERP in EHLO and take MAIL FROM's XVERP parameter (recorded in the
  // envelope, nothing else done with it): for test and benchmark sinks standing in for Postfix.
  bool offer_xverp = false;
};

// One server session of SMTP or LMTP as a state machine: bytes in, replies and actions out.
// It parses commands (pipelined ones from one buffer, RFC 2920), keeps the transaction
// state, enforces every per-session limit, unstuffs DATA and says when the I/O loop must
// read, ask the application (MAIL, RCPT, DATA), start TLS or close. It does no I/O, keeps no
// clock and calls nothing: the loop around it reads, writes, times out and calls handlers.
//
// Use: after construction Output() holds the greeting. Loop on Next(); for each action do
// what it says, then call Next() again. Replies accumulate in Output() until the loop sends
// them (before every read, as PIPELINING wants, and before TLS starts or the connection
// closes); the loop clears it once sent.
class SmtpSession {
 public:
  enum class Action {
    kRead,      // send Output(), read with the command timeout, Receive() the bytes
    kReadData,  // the same inside DATA, with the DATA timeout
    kMailFrom,  // ask about envelope().mail_from; answer with MailFromDone
    kRcptTo,    // ask about recipient(); answer with RcptToDone
    kData,      // hand over TakeMessage(); answer with DataDone (data_replies_wanted() replies)
    kStartTls,  // send Output(), run the TLS handshake; TlsStarted() on success, else close
    kClose,     // send Output() and close the connection; close_reason() says why
  };
  enum class CloseReason {
    kNone,
    kQuit,
    kLineTooLong,
    kTooManyCommands,
    kTooManyErrors,
    kTimeout,
    kShutdown,
  };

  SmtpSession(SmtpSessionConfig config, std::string peer_address);
  ~SmtpSession();
  SmtpSession(SmtpSession&&) noexcept;
  SmtpSession& operator=(SmtpSession&&) noexcept;

  // Bytes as read from the connection, in any pieces.
  void Receive(std::string_view bytes);
  // What to do now. Until the action asked for is answered, Next() asks for it again.
  Action Next();

  // The handler's answers.
  void MailFromDone(const SmtpReply& reply);
  void RcptToDone(const SmtpReply& reply);
  // One reply for SMTP, one per accepted recipient for LMTP: missing ones become 451 4.3.0,
  // extra ones are dropped.
  void DataDone(std::vector<SmtpReply> replies);
  // The handshake succeeded: everything learnt before TLS is forgotten (RFC 3207).
  void TlsStarted();

  // Events from the I/O loop: each queues its 421 and makes Next() return kClose.
  void TimedOut();
  void ShuttingDown();

  std::string& Output() { return out_; }
  const SmtpEnvelope& envelope() const { return env_; }
  const std::string& recipient() const { return recipient_; }
  // The unstuffed message for kData (moved out).
  std::string TakeMessage();
  std::size_t data_replies_wanted() const;
  // Waiting for a command outside a transaction: the only state a drain may cut short.
  bool idle() const;
  bool tls_active() const { return env_.tls; }
  CloseReason close_reason() const { return close_reason_; }

 private:
  enum class State { kCommand, kData, kAwaitMail, kAwaitRcpt, kAwaitData, kAwaitTls, kClosed };

  std::optional<Action> NextCommand();
  std::optional<Action> Execute(SmtpCommand& cmd);
  std::optional<Action> Hello(const SmtpCommand& cmd);
  std::optional<Action> Mail(const SmtpCommand& cmd);
  std::optional<Action> Rcpt(const SmtpCommand& cmd);
  std::optional<Action> Data();
  std::optional<Action> StartTls();
  std::optional<Action> FeedData();
  // Answers a bad command, or closes with 421 once there were too many.
  std::optional<Action> BadCommand(const SmtpReply& reply);
  Action Close(int code, std::string_view enhanced, std::string text, CloseReason reason);
  void Reply(int code, std::string_view enhanced, std::string text);
  void ResetTransaction();
  void Compact();

  SmtpSessionConfig config_;
  State state_ = State::kCommand;
  CloseReason close_reason_ = CloseReason::kNone;
  std::string in_;  // received, not yet consumed from in_pos_ on
  std::size_t in_pos_ = 0;
  std::string out_;
  SmtpEnvelope env_;
  std::string recipient_;
  bool greeted_ = false;
  bool in_transaction_ = false;
  int commands_ = 0;
  int errors_ = 0;
  std::unique_ptr<DotUnstuffer> data_;
};

}  // namespace blindlist::net
