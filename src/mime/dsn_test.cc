#include "mime/dsn.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace blindlist::mime {
namespace {

namespace fs = std::filesystem;

std::string Vector(std::string_view name) {
  const char* source_dir = std::getenv("BLINDLIST_SOURCE_DIR");
#ifdef BLINDLIST_SOURCE_DIR_DEFAULT
  if (source_dir == nullptr) source_dir = BLINDLIST_SOURCE_DIR_DEFAULT;
#endif
  if (source_dir == nullptr) source_dir = ".";
  const fs::path path = fs::path(source_dir) / "tests" / "vectors" / "dsn" / name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Vectors are stored with LF; mail on the wire has CRLF.
std::string ToCrlf(std::string_view lf_text) {
  std::string out;
  for (char c : lf_text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

std::string ErrorCode(std::string_view message) {
  auto parsed = ParseDsn(message);
  return parsed.ok() ? "ok" : parsed.error().code;
}

TEST(DsnTest, PostfixBounceWithAFailedAndADelayedRecipient) {
  for (const std::string& message : {Vector("postfix.eml"), ToCrlf(Vector("postfix.eml"))}) {
    auto dsn = ParseDsn(message);
    ASSERT_TRUE(dsn.ok()) << dsn.error().message;
    ASSERT_EQ(dsn->size(), 2U);
    EXPECT_EQ((*dsn)[0].final_recipient, "bob@example.net");
    EXPECT_EQ((*dsn)[0].action, "failed");
    EXPECT_EQ((*dsn)[0].status, "5.1.1");
    EXPECT_EQ((*dsn)[0].diagnostic,
              "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual "
              "mailbox table");
    EXPECT_EQ((*dsn)[1].final_recipient, "dave@slow.example");
    EXPECT_EQ((*dsn)[1].action, "delayed");
    EXPECT_EQ((*dsn)[1].status, "4.4.1");
    EXPECT_EQ((*dsn)[1].diagnostic,
              "connect to mx.slow.example[198.51.100.7]:25: Connection timed out");
  }
}

TEST(DsnTest, SendmailBounceWithCapitalsAndAngleBrackets) {
  auto dsn = ParseDsn(ToCrlf(Vector("sendmail.eml")));
  ASSERT_TRUE(dsn.ok()) << dsn.error().message;
  ASSERT_EQ(dsn->size(), 1U);
  EXPECT_EQ((*dsn)[0].final_recipient, "carol@example.com");
  EXPECT_EQ((*dsn)[0].action, "failed");
  EXPECT_EQ((*dsn)[0].status, "5.2.2");
  EXPECT_EQ((*dsn)[0].diagnostic, "552 5.2.2 Mailbox full");
}

TEST(DsnTest, Base64EncodedStatusPartIsDecoded) {
  // "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; eve@example.org\n
  //  Action: expanded\nStatus: 2.0.0\n"
  const std::string message =
      "From: postmaster@mx.example\nTo: team-bounces@lists.example\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\n\n"
      "--x\nContent-Type: text/plain\n\nExpanded.\n\n"
      "--x\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
      "UmVwb3J0aW5nLU1UQTogZG5zOyBteC5leGFtcGxlCgpGaW5hbC1SZWNpcGllbnQ6IHJmYzgyMjsg\n"
      "ZXZlQGV4YW1wbGUub3JnCkFjdGlvbjogZXhwYW5kZWQKU3RhdHVzOiAyLjAuMAo=\n"
      "--x--\n";
  auto dsn = ParseDsn(message);
  ASSERT_TRUE(dsn.ok()) << dsn.error().message;
  ASSERT_EQ(dsn->size(), 1U);
  EXPECT_EQ((*dsn)[0].final_recipient, "eve@example.org");
  EXPECT_EQ((*dsn)[0].action, "expanded");
  EXPECT_EQ((*dsn)[0].status, "2.0.0");
  EXPECT_EQ((*dsn)[0].diagnostic, "");
}

TEST(DsnTest, OtherMailIsNotADsn) {
  EXPECT_EQ(ErrorCode(Vector("read-receipt.eml")), "not-a-dsn");  // a report, but an MDN
  EXPECT_EQ(ErrorCode("From: a@b\nTo: c@d\nSubject: hi\n\nJust a post.\n"), "not-a-dsn");
  EXPECT_EQ(ErrorCode("From: a@b\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
                      "boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n"
                      "Final-Recipient: rfc822; x@y\nAction: failed\n\n--b--\n"),
            "not-a-dsn");
  EXPECT_EQ(ErrorCode(""), "not-a-dsn");
  EXPECT_EQ(ErrorCode(std::string("\0\xff\x01garbage", 10)), "not-a-dsn");
}

TEST(DsnTest, ReportsThatSayTheyAreDsnsButAreNotWellFormedAreMalformed) {
  EXPECT_EQ(ErrorCode(Vector("no-status-part.eml")), "malformed-dsn");
  EXPECT_EQ(ErrorCode(Vector("no-action.eml")), "malformed-dsn");
  const std::string head =
      "From: m@x\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
      "--b\nContent-Type: message/delivery-status\n\n";
  EXPECT_EQ(ErrorCode(head + "Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b\n"
                             "Action: exploded\n\n--b--\n"),
            "malformed-dsn");
  EXPECT_EQ(ErrorCode(head + "Reporting-MTA: dns; x\n\n--b--\n"), "malformed-dsn");
  EXPECT_EQ(ErrorCode(head + "Reporting-MTA: dns; x\n\nno colon here\n\n--b--\n"), "malformed-dsn");
  EXPECT_EQ(ErrorCode(head + "Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822;\n"
                             "Action: failed\n\n--b--\n"),
            "malformed-dsn");
}

TEST(DsnTest, AGroupWithoutTheMessageFieldsIsStillRead) {
  const std::string message =
      "From: m@x\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
      "--b\nContent-Type: message/delivery-status\n\n"
      "Final-Recipient: rfc822; a@b\nAction: DELIVERED\nStatus: 2.0.0 (ok)\n\n--b--\n";
  auto dsn = ParseDsn(message);
  ASSERT_TRUE(dsn.ok()) << dsn.error().message;
  ASSERT_EQ(dsn->size(), 1U);
  EXPECT_EQ((*dsn)[0].action, "delivered");
  EXPECT_EQ((*dsn)[0].status, "2.0.0");
}

}  // namespace
}  // namespace blindlist::mime

namespace blindlist::mime {
namespace {

TEST(MakeDsnTest, AFailureReportThatParsesBackAndReturnsOnlyTheHeaders) {
  DsnFailure f;
  f.reporting_mta = "lists.example.org";
  f.from = "MAILER-DAEMON@lists.example.org";
  f.to = "alice@example.org";
  f.final_recipient = "team@example.org";
  f.status = "5.6.0";
  f.remote_mta = "127.0.0.1";
  f.diagnostic = "554 5.6.0 bare LF\r\nRCPT TO:<injected@example.org>";
  f.explanation = "The smarthost refused the post.";
  f.original_message = "From: alice@example.org\r\nSubject: x\r\n\r\nSECRET-BODY\r\n";
  f.date = 1'700'000'000;
  const std::string dsn = MakeDsn(f);
  EXPECT_EQ(dsn.find("SECRET-BODY"), std::string::npos);
  EXPECT_NE(dsn.find("Subject: x\r\n"), std::string::npos);
  EXPECT_EQ(dsn.find("\r\nRCPT TO:"), std::string::npos);  // one line per field
  for (std::size_t i = 0; i < dsn.size(); ++i) {
    if (dsn[i] == '\n') {
      ASSERT_GT(i, 0u);
      EXPECT_EQ(dsn[i - 1], '\r');
    }
  }
  auto parsed = ParseDsn(dsn);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].final_recipient, "team@example.org");
  EXPECT_EQ((*parsed)[0].action, "failed");
  EXPECT_EQ((*parsed)[0].status, "5.6.0");
  f.status = "bogus";
  parsed = ParseDsn(MakeDsn(f));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)[0].status, "5.0.0");
}

}  // namespace
}  // namespace blindlist::mime
