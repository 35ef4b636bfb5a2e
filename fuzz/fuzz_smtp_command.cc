// The SMTP command parser (listd's first contact with untrusted input), reply formatting,
// and the DATA dot-stuffing in both directions.
// Invariants: a refusal carries a well-formed 4xx/5xx reply; a formatted reply is only whole
// CRLF lines that parse back with the same code; stuffing then unstuffing gives the message
// back exactly (plus the CRLF that Finish adds to an unterminated last line); the unstuffer
// never consumes past the end marker.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "net/smtp_protocol.h"

using blindlist::net::DotStuffer;
using blindlist::net::DotUnstuffer;
using blindlist::net::FormatReply;
using blindlist::net::ParseCommand;
using blindlist::net::ParseReplyLine;
using blindlist::net::ReplyForError;
using blindlist::net::SmtpCommand;
using blindlist::net::SmtpReply;

namespace {

void CheckReplyLines(const std::string& out, int code) {
  FUZZ_CHECK(out.size() >= 5 && out.substr(out.size() - 2) == "\r\n", "reply not CRLF-terminated");
  std::size_t pos = 0;
  while (pos < out.size()) {
    const std::size_t crlf = out.find("\r\n", pos);
    FUZZ_CHECK(crlf != std::string::npos, "reply line without CRLF");
    const std::string_view line(out.data() + pos, crlf - pos);
    FUZZ_CHECK(line.find('\r') == std::string_view::npos, "bare CR in a reply");
    FUZZ_CHECK(line.find('\n') == std::string_view::npos, "bare LF in a reply");
    auto parsed = ParseReplyLine(line);
    FUZZ_CHECK(parsed.ok(), "a formatted reply line does not parse");
    FUZZ_CHECK(parsed->code == code, "the reply code changed");
    FUZZ_CHECK(parsed->last == (crlf + 2 == out.size()), "continuation marks are wrong");
    pos = crlf + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // A command line: whatever comes before the first LF, as the server would cut it.
  std::string_view line = input.substr(0, input.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (auto cmd = ParseCommand(line); cmd.ok()) {
    if (cmd->verb == SmtpCommand::Verb::kMail || cmd->verb == SmtpCommand::Verb::kRcpt) {
      FUZZ_CHECK(cmd->address.size() < blindlist::net::kMaxSmtpPathBytes, "path too long");
      FUZZ_CHECK(cmd->address.find_first_of("\r\n") == std::string::npos, "CR/LF in a path");
    }
    for (const auto& [key, value] : cmd->parameters) {
      FUZZ_CHECK(key.find_first_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos,
                 "a parameter key is not uppercase");
      FUZZ_CHECK(value.find(' ') == std::string::npos, "a space in a parameter value");
    }
  } else {
    FUZZ_CHECK(cmd.error().code == "smtp-syntax", "unexpected error code");
    const SmtpReply reply = ReplyForError(cmd.error());
    FUZZ_CHECK(reply.code >= 500 && reply.code < 600, "a syntax refusal is not 5xx");
    CheckReplyLines(FormatReply(reply), reply.code);
  }

  // Any text in a reply stays inside it.
  CheckReplyLines(FormatReply(SmtpReply{550, "5.1.1", std::string(input)}), 550);

  // Stuff in pieces whose size the first byte picks, then unstuff in other pieces.
  const std::size_t piece = size == 0 ? 1 : 1 + data[0] % 17;
  DotStuffer stuffer;
  std::string wire;
  for (std::size_t i = 0; i < size; i += piece) stuffer.Stuff(input.substr(i, piece), wire);
  stuffer.Finish(wire);
  for (std::size_t i = 0; i < wire.size(); ++i) {
    if (wire[i] == '\r') FUZZ_CHECK(i + 1 < wire.size() && wire[i + 1] == '\n', "bare CR sent");
    if (wire[i] == '\n') FUZZ_CHECK(i > 0 && wire[i - 1] == '\r', "bare LF sent");
  }
  DotUnstuffer unstuffer(2 * size + 16, 2 * size + 16);
  std::size_t used = 0;
  for (std::size_t i = 0; i < wire.size() && !unstuffer.done(); i += piece + 1) {
    const std::string_view chunk = std::string_view(wire).substr(i, piece + 1);
    const std::size_t took = unstuffer.Feed(chunk);
    FUZZ_CHECK(took <= chunk.size(), "consumed more than was given");
    used += took;
    if (!unstuffer.done()) FUZZ_CHECK(took == chunk.size(), "stopped early without the end");
  }
  FUZZ_CHECK(unstuffer.done(), "the stuffed message has no end the unstuffer sees");
  FUZZ_CHECK(used == wire.size(), "the end was seen before the real end marker");
  // The input with every line end (CRLF, bare CR, bare LF) as CRLF, and a last one added.
  std::string expected;
  for (std::size_t i = 0; i < size; ++i) {
    if (input[i] == '\r' && i + 1 < size && input[i + 1] == '\n') continue;
    expected +=
        input[i] == '\r' || input[i] == '\n' ? std::string("\r\n") : std::string(1, input[i]);
  }
  if (!expected.empty() && expected.back() != '\n') expected += "\r\n";
  FUZZ_CHECK(unstuffer.message() == expected, "the message changed on the round trip");

  // Raw input as a DATA section: never past the end marker, never more out than in.
  DotUnstuffer raw(1 << 20, 1000);
  const std::size_t took = raw.Feed(input);
  FUZZ_CHECK(took <= size, "consumed more than was given");
  if (raw.done()) {
    FUZZ_CHECK(input.substr(0, took).size() >= 3 && input.substr(took - 3, 3) == ".\r\n",
               "done without an end marker");
  } else {
    FUZZ_CHECK(took == size, "stopped early without the end");
  }
  FUZZ_CHECK(raw.message().size() <= took, "unstuffing made the message longer");
  return 0;
}
