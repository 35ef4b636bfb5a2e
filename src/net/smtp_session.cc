// SmtpSession: the server side of SMTP and LMTP as a state machine (see smtp_protocol.h).
// Everything a client can make the server do goes through here, so this is what the unit
// tests and the fuzzer drive; SmtpServer only moves bytes and calls handlers.

#include <string>
#include <utility>

#include "net/smtp_protocol.h"

namespace blindlist::net {

SmtpSession::SmtpSession(SmtpSessionConfig config, std::string peer_address)
    : config_(std::move(config)) {
  env_.peer_address = std::move(peer_address);
  Reply(220, "", config_.hostname + (config_.lmtp ? " LMTP" : " ESMTP") + " blindlist ready");
}

SmtpSession::~SmtpSession() = default;
SmtpSession::SmtpSession(SmtpSession&&) noexcept = default;
SmtpSession& SmtpSession::operator=(SmtpSession&&) noexcept = default;

void SmtpSession::Receive(std::string_view bytes) {
  // Nothing read while the handshake is pending counts (it is not sent before it), and
  // nothing read after the end matters.
  if (state_ == State::kAwaitTls || state_ == State::kClosed) return;
  in_.append(bytes);
}

void SmtpSession::Reply(int code, std::string_view enhanced, std::string text) {
  AppendReply(SmtpReply{code, std::string(enhanced), std::move(text)}, out_);
}

void SmtpSession::ResetTransaction() {
  in_transaction_ = false;
  env_.mail_from.clear();
  env_.declared_size.reset();
  env_.recipients.clear();
}

void SmtpSession::Compact() {
  if (in_pos_ == 0) return;
  in_.erase(0, in_pos_);
  in_pos_ = 0;
}

SmtpSession::Action SmtpSession::Close(int code, std::string_view enhanced, std::string text,
                                       CloseReason reason) {
  Reply(code, enhanced, std::move(text));
  state_ = State::kClosed;
  close_reason_ = reason;
  in_.clear();
  in_pos_ = 0;
  data_.reset();
  return Action::kClose;
}

void SmtpSession::TimedOut() {
  if (state_ == State::kClosed) return;
  Close(421, "4.4.2", config_.hostname + " Error: timeout exceeded", CloseReason::kTimeout);
}

void SmtpSession::ShuttingDown() {
  if (state_ == State::kClosed) return;
  Close(421, "4.3.2", config_.hostname + " Service shutting down, try again later",
        CloseReason::kShutdown);
}

bool SmtpSession::idle() const { return state_ == State::kCommand && !in_transaction_; }

std::size_t SmtpSession::data_replies_wanted() const {
  return config_.lmtp ? env_.recipients.size() : 1;
}

std::string SmtpSession::TakeMessage() {
  if (!data_) return {};
  return std::move(data_->message());
}

SmtpSession::Action SmtpSession::Next() {
  for (;;) {
    std::optional<Action> action;
    switch (state_) {
      case State::kClosed:
        return Action::kClose;
      case State::kAwaitMail:
        return Action::kMailFrom;
      case State::kAwaitRcpt:
        return Action::kRcptTo;
      case State::kAwaitData:
        return Action::kData;
      case State::kAwaitTls:
        return Action::kStartTls;
      case State::kData:
        action = FeedData();
        break;
      case State::kCommand:
        action = NextCommand();
        break;
    }
    if (action) return *action;
  }
}

std::optional<SmtpSession::Action> SmtpSession::NextCommand() {
  const std::size_t nl = in_.find('\n', in_pos_);
  if (nl == std::string::npos) {
    if (in_.size() - in_pos_ > config_.max_line_bytes + 2) {
      return Close(500, "5.5.2", "Line too long", CloseReason::kLineTooLong);
    }
    Compact();
    return Action::kRead;
  }
  std::string_view line(in_.data() + in_pos_, nl - in_pos_);
  in_pos_ = nl + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

  if (++commands_ > config_.max_commands) {
    return Close(421, "4.7.0", config_.hostname + " Too many commands, closing connection",
                 CloseReason::kTooManyCommands);
  }
  auto parsed = line.size() > config_.max_line_bytes
                    ? Result<SmtpCommand>(MakeError("smtp-syntax", "500 5.5.2 Line too long"))
                    : ParseCommand(line);
  if (!parsed.ok()) return BadCommand(ReplyForError(parsed.error()));
  return Execute(*parsed);
}

std::optional<SmtpSession::Action> SmtpSession::BadCommand(const SmtpReply& reply) {
  if (++errors_ > config_.max_errors) {
    return Close(421, "4.7.0", config_.hostname + " Too many errors, closing connection",
                 CloseReason::kTooManyErrors);
  }
  AppendReply(reply, out_);
  return std::nullopt;
}

std::optional<SmtpSession::Action> SmtpSession::Execute(SmtpCommand& cmd) {
  using Verb = SmtpCommand::Verb;
  const bool lmtp = config_.lmtp;
  const bool wrong_hello = (lmtp && (cmd.verb == Verb::kHelo || cmd.verb == Verb::kEhlo)) ||
                           (!lmtp && cmd.verb == Verb::kLhlo);
  if (cmd.verb == Verb::kUnknown || wrong_hello) {
    return BadCommand(SmtpReply{500, "5.5.1", "Command unrecognized"});
  }
  const bool needs_hello = cmd.verb == Verb::kMail || cmd.verb == Verb::kRcpt ||
                           cmd.verb == Verb::kData || cmd.verb == Verb::kStartTls;
  if (needs_hello && !greeted_) {
    return BadCommand(SmtpReply{503, "5.5.1", lmtp ? "Send LHLO first" : "Send EHLO/HELO first"});
  }
  switch (cmd.verb) {
    case Verb::kHelo:
    case Verb::kEhlo:
    case Verb::kLhlo:
      return Hello(cmd);
    case Verb::kMail:
      return Mail(cmd);
    case Verb::kRcpt:
      return Rcpt(cmd);
    case Verb::kData:
      return Data();
    case Verb::kRset:
      ResetTransaction();
      Reply(250, "2.0.0", "OK");
      return std::nullopt;
    case Verb::kNoop:
      Reply(250, "2.0.0", "OK");
      return std::nullopt;
    case Verb::kVrfy:
      Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
      return std::nullopt;
    case Verb::kHelp:
      Reply(214, "2.0.0", "See RFC 5321");
      return std::nullopt;
    case Verb::kQuit:
      return Close(221, "2.0.0", "Bye", CloseReason::kQuit);
    case Verb::kStartTls:
      return StartTls();
    case Verb::kUnknown:
      break;
  }
  return std::nullopt;
}

std::optional<SmtpSession::Action> SmtpSession::Hello(const SmtpCommand& cmd) {
  ResetTransaction();
  env_.helo = cmd.argument;
  greeted_ = true;
  if (cmd.verb == SmtpCommand::Verb::kHelo) {
    Reply(250, "", config_.hostname);
    return std::nullopt;
  }
  std::string text = config_.hostname + "\nPIPELINING\nSIZE " +
                     std::to_string(config_.max_message_bytes) + "\n8BITMIME\nENHANCEDSTATUSCODES";
  if (config_.starttls_available && !env_.tls) text += "\nSTARTTLS";
  // No enhanced code on EHLO lines: clients parse the keywords.
  Reply(250, "", std::move(text));
  return std::nullopt;
}

std::optional<SmtpSession::Action> SmtpSession::Mail(const SmtpCommand& cmd) {
  if (in_transaction_) return BadCommand(SmtpReply{503, "5.5.1", "Nested MAIL command"});
  env_.declared_size.reset();
  for (const auto& [key, value] : cmd.parameters) {
    // ParseCommand allows at most 19 digits: the value fits.
    if (key == "SIZE") env_.declared_size = std::stoull(value);
  }
  if (env_.declared_size && *env_.declared_size > config_.max_message_bytes) {
    Reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    env_.declared_size.reset();
    return std::nullopt;
  }
  env_.mail_from = cmd.address;
  state_ = State::kAwaitMail;
  return Action::kMailFrom;
}

void SmtpSession::MailFromDone(const SmtpReply& reply) {
  if (state_ != State::kAwaitMail) return;
  state_ = State::kCommand;
  if (reply.code >= 200 && reply.code < 300) {
    in_transaction_ = true;
  } else {
    env_.mail_from.clear();
    env_.declared_size.reset();
  }
  AppendReply(reply, out_);
}

std::optional<SmtpSession::Action> SmtpSession::Rcpt(const SmtpCommand& cmd) {
  if (!in_transaction_) return BadCommand(SmtpReply{503, "5.5.1", "Need MAIL before RCPT"});
  if (static_cast<int>(env_.recipients.size()) >= config_.max_recipients) {
    Reply(452, "4.5.3", "Too many recipients");
    return std::nullopt;
  }
  recipient_ = cmd.address;
  state_ = State::kAwaitRcpt;
  return Action::kRcptTo;
}

void SmtpSession::RcptToDone(const SmtpReply& reply) {
  if (state_ != State::kAwaitRcpt) return;
  state_ = State::kCommand;
  if (reply.code >= 200 && reply.code < 300) env_.recipients.push_back(recipient_);
  recipient_.clear();
  AppendReply(reply, out_);
}

std::optional<SmtpSession::Action> SmtpSession::Data() {
  if (!in_transaction_) return BadCommand(SmtpReply{503, "5.5.1", "Need MAIL command"});
  if (env_.recipients.empty()) {
    Reply(554, "5.5.1", "No valid recipients");
    return std::nullopt;
  }
  Reply(354, "", "End data with <CR><LF>.<CR><LF>");
  data_ = std::make_unique<DotUnstuffer>(config_.max_message_bytes, config_.max_line_bytes);
  state_ = State::kData;
  return std::nullopt;
}

std::optional<SmtpSession::Action> SmtpSession::FeedData() {
  in_pos_ += data_->Feed(std::string_view(in_).substr(in_pos_));
  if (!data_->done()) {
    Compact();
    return Action::kReadData;
  }
  if (!data_->too_large() && !data_->line_too_long()) {
    state_ = State::kAwaitData;
    return Action::kData;
  }
  const SmtpReply reply =
      data_->too_large()
          ? SmtpReply{552, "5.3.4", "Message size exceeds fixed maximum message size"}
          : SmtpReply{500, "5.5.2", "Line too long in message"};
  for (std::size_t i = 0; i < data_replies_wanted(); ++i) AppendReply(reply, out_);
  data_.reset();
  ResetTransaction();
  state_ = State::kCommand;
  return std::nullopt;
}

void SmtpSession::DataDone(std::vector<SmtpReply> replies) {
  if (state_ != State::kAwaitData) return;
  replies.resize(data_replies_wanted(), SmtpReply{451, "4.3.0", "Internal error, try again later"});
  for (const auto& r : replies) AppendReply(r, out_);
  data_.reset();
  ResetTransaction();
  state_ = State::kCommand;
}

std::optional<SmtpSession::Action> SmtpSession::StartTls() {
  if (!config_.starttls_available || env_.tls) {
    return BadCommand(SmtpReply{env_.tls ? 503 : 502, "5.5.1",
                                env_.tls ? "TLS already active" : "STARTTLS not available"});
  }
  // Whatever the client sent after STARTTLS was sent in plaintext: drop it, or a man
  // in the middle could inject commands that run inside the TLS session.
  in_.clear();
  in_pos_ = 0;
  Reply(220, "2.0.0", "Ready to start TLS");
  state_ = State::kAwaitTls;
  return Action::kStartTls;
}

void SmtpSession::TlsStarted() {
  if (state_ != State::kAwaitTls) return;
  state_ = State::kCommand;
  // RFC 3207: forget everything learnt before TLS.
  ResetTransaction();
  greeted_ = false;
  env_.helo.clear();
  env_.tls = true;
}

}  // namespace blindlist::net
