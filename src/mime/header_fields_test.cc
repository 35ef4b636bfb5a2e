#include "mime/header_fields.h"

#include <gtest/gtest.h>

namespace blindlist::mime {
namespace {

TEST(LineEndings, ReadLikePostfixStoredAsCrlf) {
  EXPECT_TRUE(HasCanonicalLineEndings("a\r\nb\r\n"));
  EXPECT_TRUE(HasCanonicalLineEndings(""));
  EXPECT_FALSE(HasCanonicalLineEndings("a\nb\r\n"));
  EXPECT_FALSE(HasCanonicalLineEndings("a\rb\r\n"));
  EXPECT_FALSE(HasCanonicalLineEndings("a\r\nb"));
  EXPECT_FALSE(HasCanonicalLineEndings("a\r\n\r"));
  // LF and CRLF end lines; a stray CR is a space (it cannot start a header field or end DATA).
  EXPECT_EQ(CanonicalLineEndings("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
  EXPECT_EQ(CanonicalLineEndings("Subject: x\rBcc: y\r\n\r\nz"), "Subject: x Bcc: y\r\n\r\nz\r\n");
  EXPECT_EQ(CanonicalLineEndings("a\r\r\nb\n\r.\r\n"), "a \r\nb\r\n .\r\n");
  EXPECT_EQ(CanonicalLineEndings("\n.\n"), "\r\n.\r\n");
  EXPECT_EQ(CanonicalLineEndings(""), "");
  for (const char* s : {"a\nb", "x\r\r\ry", "\n\r\n\r", "ok\r\n"}) {
    EXPECT_TRUE(HasCanonicalLineEndings(CanonicalLineEndings(s))) << s;
  }
}

TEST(HeaderFields, FindsTheBodyAndReadsFoldedFields) {
  const std::string msg =
      "Subject: x\r\nFrom: \"Alice A.\"\r\n <Alice@Example.ORG>\r\nX-A:\tone\r\n\ttwo \r\n\r\n"
      "From: b@c\r\n";
  EXPECT_EQ(BodyOffset(msg), msg.find("From: b@c"));
  EXPECT_EQ(HeaderEnd(msg) + 2, BodyOffset(msg));
  EXPECT_EQ(HeaderValue(msg, "from"), "\"Alice A.\" <Alice@Example.ORG>");
  EXPECT_EQ(MailboxOf(HeaderValue(msg, "FROM")), "Alice@Example.ORG");
  EXPECT_EQ(HeaderValue(msg, "x-a"), "one two");
  EXPECT_EQ(HeaderValue(msg, "To"), "");  // the body's "From:" is not a field
  const auto fields = SplitHeaderFields(std::string_view(msg).substr(0, HeaderEnd(msg)));
  ASSERT_EQ(fields.size(), 3U);
  EXPECT_EQ(fields[1].name, "From");
  EXPECT_EQ(fields[1].raw, "From: \"Alice A.\"\r\n <Alice@Example.ORG>\r\n");
  // No blank line: all header; LF-only messages too.
  EXPECT_EQ(BodyOffset("A: b\nC: d"), 9U);
  EXPECT_EQ(BodyOffset("A: b\n\nbody"), 6U);
  EXPECT_EQ(HeaderValue("no colon\nA : v\n\n", "a"), "v");
}

TEST(HeaderFields, ReadsAddresses) {
  EXPECT_EQ(NormaliseAddress("Alice@Example.ORG"), "Alice@example.org");
  EXPECT_EQ(NormaliseAddress("no-at"), "no-at");
  EXPECT_EQ(MailboxOf("bob@example.org (Bob)"), "bob@example.org");
  EXPECT_EQ(MailboxOf("x, bob@example.org; y"), "bob@example.org");
  EXPECT_EQ(MailboxOf("<>"), "");
  EXPECT_EQ(MailboxOf("no address"), "");
}

}  // namespace
}  // namespace blindlist::mime
