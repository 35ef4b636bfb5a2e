// SMTP command and reply syntax (RFC 5321 4.1), parameters (RFC 1870 SIZE, RFC 6152
// 8BITMIME), enhanced status codes (RFC 3463, RFC 2034) and the DATA transparency rule
// (RFC 5321 4.5.2). Deliberately strict where leniency would let a peer smuggle something
// past us, lenient about case and spacing where real clients differ.

#include "net/smtp_protocol.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

namespace blindlist::net {
namespace {

Error SyntaxError(std::string_view reply) { return MakeError("smtp-syntax", std::string(reply)); }

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

bool IStartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool IsDigits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
bool IsKeyword(std::string_view s) {
  if (s.empty() || std::isalnum(static_cast<unsigned char>(s.front())) == 0) return false;
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isalnum(c) != 0 || c == '-'; });
}

// esmtp-value = 1*(%d33-60 / %d62-126): printable, no "=" and no space.
bool IsParameterValue(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](unsigned char c) { return c >= 33 && c <= 126 && c != '='; });
}

// The mailbox inside the brackets: local-part "@" domain, the local part possibly quoted.
// Checked only as far as matters for us: printable ASCII, no unquoted specials that could
// confuse a next hop, one "@" outside quotes, a non-empty domain.
bool IsMailbox(std::string_view s, bool allow_bare_postmaster) {
  if (allow_bare_postmaster && IEquals(s, "postmaster")) return true;
  bool quoted = false;
  std::size_t at = std::string_view::npos;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 33 || c > 126) {
      if (!(quoted && c == ' ')) return false;
    }
    if (quoted) {
      if (c == '\\') {
        if (++i >= s.size()) return false;
      } else if (c == '"') {
        quoted = false;
      }
      continue;
    }
    if (c == '"') {
      if (at != std::string_view::npos) return false;
      quoted = true;
    } else if (c == '@') {
      if (at != std::string_view::npos) return false;
      at = i;
    } else if (c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';' || c == ':' ||
               c == '\\') {
      // ':' only inside an address literal's IPv6 form, which we do not need to accept.
      if (!(c == ':' && at != std::string_view::npos && s.find('[', at) != std::string_view::npos))
        return false;
    }
  }
  if (quoted) return false;
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size()) return false;
  return true;
}

// Parses `rest` = "<path> params..." after "FROM:" or "TO:".
Result<SmtpCommand> ParsePathAndParameters(SmtpCommand cmd, std::string_view rest, bool is_mail) {
  const std::string_view usage =
      is_mail ? "501 5.5.2 Syntax: MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME]"
              : "501 5.5.2 Syntax: RCPT TO:<address>";
  const std::string_view bad_address =
      is_mail ? "501 5.1.7 Bad sender address syntax" : "501 5.1.3 Bad recipient address syntax";
  rest = TrimSpaces(rest);
  if (rest.empty() || rest.front() != '<') return SyntaxError(usage);
  const std::size_t close = rest.find('>');
  if (close == std::string_view::npos) return SyntaxError(usage);
  if (close + 1 > kMaxSmtpPathBytes)
    return SyntaxError(is_mail ? "501 5.1.7 Sender address too long"
                               : "501 5.1.3 Recipient address too long");
  std::string_view path = rest.substr(1, close - 1);
  // A quoted local part may contain '>': find the real closing bracket outside quotes.
  if (path.find('"') != std::string_view::npos) {
    bool quoted = false;
    std::size_t i = 1;
    for (; i < rest.size(); ++i) {
      if (quoted && rest[i] == '\\') {
        ++i;
      } else if (rest[i] == '"') {
        quoted = !quoted;
      } else if (!quoted && rest[i] == '>') {
        break;
      }
    }
    if (i >= rest.size()) return SyntaxError(usage);
    if (i + 1 > kMaxSmtpPathBytes) return SyntaxError(bad_address);
    path = rest.substr(1, i - 1);
    rest = rest.substr(i + 1);
  } else {
    rest = rest.substr(close + 1);
  }
  // An obsolete source route "@a,@b:mailbox" is accepted and ignored (RFC 5321 4.1.2).
  if (!path.empty() && path.front() == '@') {
    const std::size_t colon = path.find(':');
    if (colon == std::string_view::npos) return SyntaxError(bad_address);
    path = path.substr(colon + 1);
  }
  if (path.empty()) {
    if (!is_mail) return SyntaxError("501 5.1.3 The null address is not a recipient");
  } else if (!IsMailbox(path, !is_mail)) {
    return SyntaxError(bad_address);
  }
  cmd.address = std::string(path);

  if (!rest.empty() && rest.front() != ' ') return SyntaxError(usage);
  rest = TrimSpaces(rest);
  while (!rest.empty()) {
    const std::size_t space = rest.find(' ');
    const std::string_view item = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : TrimSpaces(rest.substr(space));
    const std::size_t eq = item.find('=');
    const std::string key = Upper(item.substr(0, eq));
    std::string value =
        eq == std::string_view::npos ? std::string() : std::string(item.substr(eq + 1));
    // Postfix's XVERP takes its delimiters as the value ("XVERP=+="), '=' included.
    const bool value_ok =
        key == "XVERP"
            ? value.size() <= 2 && std::all_of(value.begin(), value.end(),
                                               [](unsigned char c) { return c >= 33 && c <= 126; })
            : IsParameterValue(value);
    if (!IsKeyword(key) || (eq != std::string_view::npos && !value_ok)) {
      return SyntaxError("501 5.5.4 Malformed parameter");
    }
    for (const auto& [k, v] : cmd.parameters) {
      if (k == key) return SyntaxError("501 5.5.4 Duplicate parameter " + key);
    }
    if (!is_mail) return SyntaxError("555 5.5.4 Unsupported RCPT TO parameter " + key);
    if (key == "SIZE") {
      if (!IsDigits(value) || value.size() > 19) return SyntaxError("501 5.5.4 Bad SIZE value");
    } else if (key == "XVERP") {
      // Accepted by the parser; the session refuses it unless it offers XVERP.
    } else if (key == "BODY") {
      value = Upper(value);
      if (value != "7BIT" && value != "8BITMIME") {
        return SyntaxError("501 5.5.4 BODY must be 7BIT or 8BITMIME");
      }
    } else {
      return SyntaxError("555 5.5.4 Unsupported MAIL FROM parameter " + key);
    }
    cmd.parameters.emplace_back(key, std::move(value));
  }
  return cmd;
}

struct VerbName {
  std::string_view name;
  SmtpCommand::Verb verb;
};
constexpr std::array<VerbName, 12> kVerbs{{{"HELO", SmtpCommand::Verb::kHelo},
                                           {"EHLO", SmtpCommand::Verb::kEhlo},
                                           {"LHLO", SmtpCommand::Verb::kLhlo},
                                           {"MAIL", SmtpCommand::Verb::kMail},
                                           {"RCPT", SmtpCommand::Verb::kRcpt},
                                           {"DATA", SmtpCommand::Verb::kData},
                                           {"RSET", SmtpCommand::Verb::kRset},
                                           {"NOOP", SmtpCommand::Verb::kNoop},
                                           {"QUIT", SmtpCommand::Verb::kQuit},
                                           {"VRFY", SmtpCommand::Verb::kVrfy},
                                           {"HELP", SmtpCommand::Verb::kHelp},
                                           {"STARTTLS", SmtpCommand::Verb::kStartTls}}};

bool IsEnhancedCode(std::string_view s, int code) {
  // class "." subject(1-3 digits) "." detail(1-3 digits), class matching the reply's.
  if (s.size() < 5 || s[1] != '.' || s[0] != static_cast<char>('0' + code / 100)) return false;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    const std::size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) != 0) ++i;
    if (i == start || i - start > 3) return false;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size();
}

}  // namespace

Result<SmtpCommand> ParseCommand(std::string_view line) {
  for (unsigned char c : line) {
    // No SMTPUTF8: commands are ASCII. Tabs are tolerated as spaces by nobody we need.
    if (c < 32 || c > 126) return SyntaxError("500 5.5.2 Invalid character in command");
  }
  const std::size_t space = line.find(' ');
  const std::string_view verb = line.substr(0, space);
  std::string_view argument =
      space == std::string_view::npos ? std::string_view() : line.substr(space + 1);

  SmtpCommand cmd;
  cmd.argument = std::string(argument);
  for (const auto& v : kVerbs) {
    if (IEquals(verb, v.name)) cmd.verb = v.verb;
  }
  const std::string_view trimmed = TrimSpaces(argument);
  switch (cmd.verb) {
    case SmtpCommand::Verb::kHelo:
    case SmtpCommand::Verb::kEhlo:
    case SmtpCommand::Verb::kLhlo:
      if (trimmed.empty() || trimmed.find(' ') != std::string_view::npos) {
        return SyntaxError("501 5.5.2 Syntax: " + Upper(verb) + " hostname");
      }
      cmd.argument = std::string(trimmed);
      return cmd;
    case SmtpCommand::Verb::kMail:
      if (!IStartsWith(trimmed, "FROM:")) {
        return SyntaxError("501 5.5.2 Syntax: MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME]");
      }
      return ParsePathAndParameters(std::move(cmd), trimmed.substr(5), true);
    case SmtpCommand::Verb::kRcpt:
      if (!IStartsWith(trimmed, "TO:")) return SyntaxError("501 5.5.2 Syntax: RCPT TO:<address>");
      return ParsePathAndParameters(std::move(cmd), trimmed.substr(3), false);
    case SmtpCommand::Verb::kData:
    case SmtpCommand::Verb::kRset:
    case SmtpCommand::Verb::kQuit:
    case SmtpCommand::Verb::kStartTls:
      if (!trimmed.empty()) {
        return SyntaxError("501 5.5.4 " + Upper(verb) + " takes no arguments");
      }
      cmd.argument.clear();
      return cmd;
    case SmtpCommand::Verb::kVrfy:
      if (trimmed.empty()) return SyntaxError("501 5.5.2 Syntax: VRFY address");
      return cmd;
    case SmtpCommand::Verb::kNoop:
    case SmtpCommand::Verb::kHelp:
      return cmd;
    case SmtpCommand::Verb::kUnknown:
      if (verb.empty()) return SyntaxError("500 5.5.2 Empty command");
      cmd.argument = std::string(line);
      return cmd;
  }
  return cmd;
}

SmtpReply ReplyForError(const Error& error) {
  auto line = ParseReplyLine(error.message);
  if (!line.ok() || line->code < 400) return SmtpReply{500, "5.5.2", "Syntax error"};
  return SmtpReply{line->code, line->enhanced, line->text};
}

void AppendReply(const SmtpReply& reply, std::string& out) {
  SmtpReply r = reply;
  if (r.code < 200 || r.code > 599) r = SmtpReply{451, "4.3.0", "Internal error"};
  if (!r.enhanced.empty() && !IsEnhancedCode(r.enhanced, r.code)) r.enhanced.clear();
  const std::string code = std::to_string(r.code);
  std::string_view text = r.text;
  for (;;) {
    const std::size_t nl = text.find('\n');
    std::string_view piece = text.substr(0, nl);
    if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
    const bool last = nl == std::string_view::npos;
    out += code;
    out += last ? ' ' : '-';
    if (!r.enhanced.empty()) {
      out += r.enhanced;
      if (!piece.empty()) out += ' ';
    }
    for (char c : piece) {
      const auto u = static_cast<unsigned char>(c);
      out += (u < 32 || u == 127) ? ' ' : c;
    }
    out += "\r\n";
    if (last) break;
    text.remove_prefix(nl + 1);
  }
}

std::string FormatReply(const SmtpReply& reply) {
  std::string out;
  AppendReply(reply, out);
  return out;
}

Result<SmtpReplyLine> ParseReplyLine(std::string_view line) {
  if (line.size() < 3 || !IsDigits(line.substr(0, 3)) || line[0] < '2' || line[0] > '5') {
    return MakeError("smtp-protocol", "malformed reply line from the server");
  }
  SmtpReplyLine out;
  out.code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (line.size() > 3) {
    if (line[3] != ' ' && line[3] != '-') {
      return MakeError("smtp-protocol", "malformed reply line from the server");
    }
    out.last = line[3] == ' ';
    std::string_view text = line.substr(4);
    const std::size_t space = text.find(' ');
    if (IsEnhancedCode(text.substr(0, space), out.code)) {
      out.enhanced = std::string(text.substr(0, space));
      text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    }
    out.text = std::string(text);
  }
  return out;
}

DotUnstuffer::DotUnstuffer(std::size_t max_message_bytes, std::size_t max_line_bytes)
    : max_message_bytes_(max_message_bytes), max_line_bytes_(max_line_bytes) {}

void DotUnstuffer::Emit(std::string_view bytes) {
  size_ += bytes.size();
  line_bytes_ += bytes.size();
  if (line_bytes_ > max_line_bytes_ + 2) line_too_long_ = true;  // +2: the CRLF
  if (size_ > max_message_bytes_) {
    // Stop storing: the caller answers 552 once the end marker arrives.
    if (!message_.empty()) std::string().swap(message_);
    return;
  }
  message_.append(bytes);
}

std::size_t DotUnstuffer::Feed(std::string_view in) {
  std::size_t i = 0;
  while (i < in.size() && !done_) {
    const char c = in[i];
    switch (state_) {
      case State::kLineStart:
        line_bytes_ = 0;
        if (c == '.') {
          state_ = State::kDot;  // the stuffed (or terminating) dot is dropped
          ++i;
        } else {
          state_ = State::kText;
        }
        break;
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
          ++i;
        } else {
          state_ = State::kText;
        }
        break;
      case State::kDotCr:
        if (c == '\n' && crlf_line_start_) {
          done_ = true;
          ++i;
        } else {
          // "." CR then something else, or a dot line after a bare LF: content.
          Emit("\r");
          state_ = State::kCr;
        }
        break;
      case State::kText: {
        // The common case: copy the run up to the next CR or LF in one go.
        std::size_t end = i;
        while (end < in.size() && in[end] != '\r' && in[end] != '\n') ++end;
        if (end > i) Emit(in.substr(i, end - i));
        i = end;
        if (i < in.size()) {
          Emit(in.substr(i, 1));
          if (in[i] == '\r') {
            state_ = State::kCr;
          } else {
            state_ = State::kLineStart;  // a bare LF: unstuffed like any line, never an end
            crlf_line_start_ = false;
          }
          ++i;
        }
        break;
      }
      case State::kCr:
        if (c == '\n') {
          Emit("\n");
          state_ = State::kLineStart;
          crlf_line_start_ = true;
          ++i;
        } else if (c == '\r') {
          Emit("\r");
          ++i;
        } else {
          state_ = State::kText;
        }
        break;
    }
  }
  return i;
}

void DotStuffer::Stuff(std::string_view in, std::string& out) {
  std::size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    if (pending_cr_) {  // a CR ends the line whether or not an LF follows it
      pending_cr_ = false;
      out += "\r\n";
      at_line_start_ = true;
      if (c == '\n') {
        ++i;
        continue;
      }
    }
    if (c == '\r') {
      pending_cr_ = true;
      ++i;
      continue;
    }
    if (c == '\n') {  // a bare LF
      out += "\r\n";
      at_line_start_ = true;
      ++i;
      continue;
    }
    if (at_line_start_ && c == '.') out += '.';
    std::size_t end = i;
    while (end < in.size() && in[end] != '\r' && in[end] != '\n') ++end;
    out.append(in.data() + i, end - i);
    at_line_start_ = false;
    i = end;
  }
}

void DotStuffer::Finish(std::string& out) {
  // The end marker must follow a CRLF, or a strict server never sees it.
  if (pending_cr_ || !at_line_start_) out += "\r\n";
  out += ".\r\n";
  *this = DotStuffer();
}

bool IsSmtpMailbox(std::string_view address) { return IsMailbox(address, false); }

}  // namespace blindlist::net
