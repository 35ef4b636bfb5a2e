// SMTP syntax: command forms, the reply each bad form gets, reply formatting and parsing, and
// both directions of the DATA transparency rule.

#include "net/smtp_protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace blindlist::net {
namespace {

using Verb = SmtpCommand::Verb;

SmtpCommand Ok(std::string_view line) {
  auto r = ParseCommand(line);
  EXPECT_TRUE(r.ok()) << line << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : SmtpCommand{};
}

// The reply line a bad command gets, e.g. "501 5.5.2 ...".
std::string Refusal(std::string_view line) {
  auto r = ParseCommand(line);
  if (r.ok()) return "accepted";
  EXPECT_EQ(r.error().code, "smtp-syntax");
  return r.error().message;
}

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

TEST(SmtpParseCommand, Greetings) {
  EXPECT_EQ(Ok("EHLO client.example").verb, Verb::kEhlo);
  EXPECT_EQ(Ok("ehlo client.example").argument, "client.example");
  EXPECT_EQ(Ok("HELO [192.0.2.1]").verb, Verb::kHelo);
  EXPECT_EQ(Ok("LHLO mx").verb, Verb::kLhlo);
  EXPECT_TRUE(StartsWith(Refusal("EHLO"), "501 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("HELO   "), "501 5.5.2"));
}

TEST(SmtpParseCommand, MailFrom) {
  SmtpCommand c = Ok("MAIL FROM:<alice@example.org>");
  EXPECT_EQ(c.verb, Verb::kMail);
  EXPECT_EQ(c.address, "alice@example.org");
  EXPECT_TRUE(c.parameters.empty());
  EXPECT_EQ(Ok("mail from:<>").address, "");
  EXPECT_EQ(Ok("MAIL FROM: <bob@example.org>").address, "bob@example.org");  // common, lenient
  EXPECT_EQ(Ok("MAIL FROM:<@relay.example:carol@example.org>").address, "carol@example.org");
  EXPECT_EQ(Ok("MAIL FROM:<\"odd > name\"@example.org>").address, "\"odd > name\"@example.org");

  c = Ok("MAIL FROM:<a@b.example> size=12345 body=8bitmime");
  ASSERT_EQ(c.parameters.size(), 2u);
  EXPECT_EQ(c.parameters[0], (std::pair<std::string, std::string>("SIZE", "12345")));
  EXPECT_EQ(c.parameters[1], (std::pair<std::string, std::string>("BODY", "8BITMIME")));
  EXPECT_EQ(Ok("MAIL FROM:<a@b.example> BODY=7BIT").parameters[0].second, "7BIT");
}

TEST(SmtpParseCommand, MailFromErrors) {
  EXPECT_TRUE(StartsWith(Refusal("MAIL"), "501 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL TO:<a@b.example>"), "501 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:a@b.example"), "501 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a@b.example"), "501 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<no-at-sign>"), "501 5.1.7"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a b@c.example>"), "501 5.1.7"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a@b.example>x"), "501 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a@b.example> SIZE=12x"), "501 5.5.4"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a@b.example> SIZE="), "501 5.5.4"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a@b.example> BODY=BINARYMIME"), "501 5.5.4"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a@b.example> SIZE=1 SIZE=2"), "501 5.5.4"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a@b.example> SMTPUTF8"), "555 5.5.4"));
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<a@b.example> AUTH=<>"), "555 5.5.4"));
  const std::string long_local(300, 'x');
  EXPECT_TRUE(StartsWith(Refusal("MAIL FROM:<" + long_local + "@b.example>"), "501 5.1.7"));
}

TEST(SmtpParseCommand, RcptTo) {
  SmtpCommand c = Ok("RCPT TO:<list@lists.example>");
  EXPECT_EQ(c.verb, Verb::kRcpt);
  EXPECT_EQ(c.address, "list@lists.example");
  EXPECT_EQ(Ok("rcpt to:<Postmaster>").address, "Postmaster");
  EXPECT_TRUE(StartsWith(Refusal("RCPT TO:<>"), "501 5.1.3"));
  EXPECT_TRUE(StartsWith(Refusal("RCPT TO:<bad>"), "501 5.1.3"));
  EXPECT_TRUE(StartsWith(Refusal("RCPT FROM:<a@b.example>"), "501 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("RCPT TO:<a@b.example> NOTIFY=NEVER"), "555 5.5.4"));
}

TEST(SmtpParseCommand, SimpleVerbs) {
  EXPECT_EQ(Ok("DATA").verb, Verb::kData);
  EXPECT_EQ(Ok("rset").verb, Verb::kRset);
  EXPECT_EQ(Ok("QUIT").verb, Verb::kQuit);
  EXPECT_EQ(Ok("STARTTLS").verb, Verb::kStartTls);
  EXPECT_EQ(Ok("NOOP").verb, Verb::kNoop);
  EXPECT_EQ(Ok("NOOP anything goes").verb, Verb::kNoop);
  EXPECT_EQ(Ok("HELP").verb, Verb::kHelp);
  EXPECT_EQ(Ok("VRFY someone").verb, Verb::kVrfy);
  EXPECT_TRUE(StartsWith(Refusal("VRFY"), "501 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("DATA now"), "501 5.5.4"));
  EXPECT_TRUE(StartsWith(Refusal("STARTTLS please"), "501 5.5.4"));
  EXPECT_TRUE(StartsWith(Refusal("QUIT x"), "501 5.5.4"));
}

TEST(SmtpParseCommand, UnknownAndInvalid) {
  SmtpCommand c = Ok("XYZZY plugh");
  EXPECT_EQ(c.verb, Verb::kUnknown);
  EXPECT_EQ(c.argument, "XYZZY plugh");
  EXPECT_EQ(Ok("GET / HTTP/1.1").verb, Verb::kUnknown);
  EXPECT_TRUE(StartsWith(Refusal(""), "500 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal(std::string("NOOP \0", 6)), "500 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("NOOP \x80"), "500 5.5.2"));
  EXPECT_TRUE(StartsWith(Refusal("RCPT TO:<a@b.example>\rDATA"), "500 5.5.2"));
  EXPECT_EQ(ReplyForError(ParseCommand("MAIL").error()).code, 501);
  EXPECT_EQ(ReplyForError(ParseCommand("MAIL").error()).enhanced, "5.5.2");
  EXPECT_EQ(ReplyForError(MakeError("x", "garbage")).code, 500);
}

TEST(SmtpReplyFormat, SingleAndMultiLine) {
  EXPECT_EQ(FormatReply(SmtpReply{250, "2.0.0", "OK"}), "250 2.0.0 OK\r\n");
  EXPECT_EQ(FormatReply(SmtpReply{354, "", "go ahead"}), "354 go ahead\r\n");
  EXPECT_EQ(FormatReply(SmtpReply{250, "", "mx.example\nPIPELINING\nSIZE 10"}),
            "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
  // A handler cannot split the reply or inject a line with its own code.
  EXPECT_EQ(FormatReply(SmtpReply{550, "5.1.1", "no\r\n250 fake"}),
            "550-5.1.1 no\r\n550 5.1.1 250 fake\r\n");
  EXPECT_EQ(FormatReply(SmtpReply{550, "5.1.1", "tab\there"}), "550 5.1.1 tab here\r\n");
  // A nonsense code or a mismatched enhanced code is not passed on.
  EXPECT_EQ(FormatReply(SmtpReply{99, "", "x"}), "451 4.3.0 Internal error\r\n");
  EXPECT_EQ(FormatReply(SmtpReply{250, "5.0.0", "x"}), "250 x\r\n");
}

TEST(SmtpReplyParse, Lines) {
  auto r = ParseReplyLine("250-2.1.5 Recipient ok");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->code, 250);
  EXPECT_FALSE(r->last);
  EXPECT_EQ(r->enhanced, "2.1.5");
  EXPECT_EQ(r->text, "Recipient ok");
  r = ParseReplyLine("220 mx.example ESMTP");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->last);
  EXPECT_EQ(r->enhanced, "");
  EXPECT_EQ(r->text, "mx.example ESMTP");
  r = ParseReplyLine("250");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->last);
  r = ParseReplyLine("550 4.1.1 class mismatch stays text");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->enhanced, "");
  EXPECT_FALSE(ParseReplyLine("25").ok());
  EXPECT_FALSE(ParseReplyLine("abc def").ok());
  EXPECT_FALSE(ParseReplyLine("250x").ok());
  EXPECT_FALSE(ParseReplyLine("650 nope").ok());
}

TEST(DotUnstuffer, UnstuffsAndStopsAtEndMarker) {
  DotUnstuffer u(1000, 100);
  const std::string wire = "Subject: x\r\n\r\n..leading dot\r\n.\r\nNEXT";
  const std::size_t used = u.Feed(wire);
  EXPECT_TRUE(u.done());
  EXPECT_EQ(wire.substr(used), "NEXT");
  EXPECT_EQ(u.message(), "Subject: x\r\n\r\n.leading dot\r\n");
}

TEST(DotUnstuffer, ByteAtATime) {
  const std::string wire = "a\r\n..b\r\n.c\r\n\r\n.\r\n";
  DotUnstuffer u(1000, 100);
  for (char c : wire) {
    ASSERT_FALSE(u.done());
    EXPECT_EQ(u.Feed(std::string_view(&c, 1)), 1u);
  }
  EXPECT_TRUE(u.done());
  EXPECT_EQ(u.message(), "a\r\n.b\r\nc\r\n\r\n");
}

TEST(DotUnstuffer, EmptyMessageAndBareLf) {
  DotUnstuffer empty(1000, 100);
  EXPECT_EQ(empty.Feed(".\r\n"), 3u);
  EXPECT_TRUE(empty.done());
  EXPECT_EQ(empty.message(), "");

  // "\n.\r\n" is not the end: only CRLF "." CRLF is (no smuggling past a lenient next hop).
  // Its dot is still unstuffed, as DotStuffer doubles a dot after any LF.
  DotUnstuffer u(1000, 100);
  u.Feed("a\n.\r\nMAIL FROM:<x@y.example>\r\n");
  EXPECT_FALSE(u.done());
  u.Feed("\r\n.\r\n");
  EXPECT_TRUE(u.done());
  EXPECT_EQ(u.message(), "a\n\r\nMAIL FROM:<x@y.example>\r\n\r\n");
  // ". CR x" is content: only the dot is removed.
  DotUnstuffer v(1000, 100);
  v.Feed(".\rx\r\n.\r\n");
  EXPECT_TRUE(v.done());
  EXPECT_EQ(v.message(), "\rx\r\n");
}

TEST(DotUnstuffer, Limits) {
  DotUnstuffer big(10, 100);
  big.Feed("0123456789abcdef\r\n");
  EXPECT_TRUE(big.too_large());
  EXPECT_EQ(big.message(), "");
  big.Feed("more\r\n.\r\n");
  EXPECT_TRUE(big.done());
  EXPECT_EQ(big.size(), 24u);

  DotUnstuffer line(1000, 5);
  line.Feed("12345\r\n");
  EXPECT_FALSE(line.line_too_long());
  line.Feed("123456\r\n.\r\n");
  EXPECT_TRUE(line.line_too_long());
  EXPECT_TRUE(line.done());
}

TEST(DotStuffer, StuffsEveryLineStartAndEnds) {
  DotStuffer s;
  std::string out;
  s.Stuff(".first\r\nmid.dle\r\n.", out);
  s.Stuff("split\r\n", out);
  s.Stuff("bare\n.lf", out);
  s.Finish(out);
  EXPECT_EQ(out, "..first\r\nmid.dle\r\n..split\r\nbare\r\n..lf\r\n.\r\n");

  std::string empty;
  DotStuffer e;
  e.Finish(empty);
  EXPECT_EQ(empty, ".\r\n");

  std::string crlf;
  DotStuffer c;
  c.Stuff("x\r", crlf);
  c.Stuff("\n", crlf);
  c.Finish(crlf);
  EXPECT_EQ(crlf, "x\r\n.\r\n");
}

// pipe(8) hands listd LF lines; what goes out over SMTP has CRLF everywhere, whatever the
// chunking, and a bare CR ends its line too: no bare CR or LF ever reaches the next hop.
TEST(DotStuffer, NormalizesBareLineEnds) {
  const std::string in = "a\nb\r\nc\rd\r\r\n.e\n\n.\n";
  const std::string want = "a\r\nb\r\nc\r\nd\r\n\r\n..e\r\n\r\n..\r\n.\r\n";
  for (std::size_t chunk : {1u, 2u, 3u, 5u, 100u}) {
    DotStuffer s;
    std::string out;
    for (std::size_t i = 0; i < in.size(); i += chunk) s.Stuff(in.substr(i, chunk), out);
    s.Finish(out);
    EXPECT_EQ(out, want) << "chunk " << chunk;
  }
  DotStuffer cr;
  std::string ends_in_cr;
  cr.Stuff("x\r", ends_in_cr);
  cr.Finish(ends_in_cr);
  EXPECT_EQ(ends_in_cr, "x\r\n.\r\n");
}

TEST(DotStuffing, RoundTrip) {
  const std::string message = ".\r\n..\r\n.x\r\nplain\n.bare\n.\r\n\r\n.\r\n";
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 100u}) {
    DotStuffer s;
    std::string wire;
    for (std::size_t i = 0; i < message.size(); i += chunk) {
      s.Stuff(std::string_view(message).substr(i, chunk), wire);
    }
    s.Finish(wire);
    DotUnstuffer u(1000, 100);
    EXPECT_EQ(u.Feed(wire), wire.size());
    EXPECT_TRUE(u.done());
    // The same message, its bare LFs now CRLF.
    EXPECT_EQ(u.message(), ".\r\n..\r\n.x\r\nplain\r\n.bare\r\n.\r\n\r\n.\r\n")
        << "chunk " << chunk;
  }
}

}  // namespace
}  // namespace blindlist::net
