#include "list_headers.h"

#include <gtest/gtest.h>

namespace blindlist::listd {
namespace {

const ListIdentity kList{"team@example.org", "The team", "team-bounces@example.org"};

TEST(ListHeaders, AddsFieldsOnTopAndKeepsTheBodyByteForByte) {
  const std::string body = "MIIBxyz\r\n.line\r\n\r\nend\r\n";
  const std::string msg = "From: a@example.org\r\nSubject: [...]\r\n\r\n" + body;
  std::string out = AddListHeaders(msg, kList);
  EXPECT_EQ(out.rfind("List-Id: \"The team\" <team.example.org>\r\n", 0), 0U) << out;
  EXPECT_NE(out.find("List-Post: <mailto:team@example.org>\r\n"), std::string::npos);
  EXPECT_NE(out.find("List-Help: <mailto:team-request@example.org?subject=help>\r\n"),
            std::string::npos);
  EXPECT_NE(out.find("List-Unsubscribe: <mailto:team-request@example.org?subject=unsubscribe>\r\n"),
            std::string::npos);
  EXPECT_NE(out.find("Precedence: list\r\n"), std::string::npos);
  EXPECT_NE(out.find("From: a@example.org\r\nSubject: [...]\r\n\r\n"), std::string::npos);
  ASSERT_GE(out.size(), body.size());
  EXPECT_EQ(out.substr(out.size() - body.size()), body);
}

TEST(ListHeaders, DropsForgedListFieldsIncludingFoldedOnes) {
  const std::string msg =
      "List-Id: <evil.example.net>\nFrom: a@example.org\nList-Unsubscribe:\n <mailto:x@evil>\n"
      "precedence: bulk\n\nbody\n";
  std::string out = AddListHeaders(msg, kList);
  EXPECT_EQ(out.find("evil"), std::string::npos) << out;
  EXPECT_EQ(out.find("bulk"), std::string::npos);
  EXPECT_NE(out.find("List-Id: \"The team\" <team.example.org>\n"), std::string::npos);
  EXPECT_EQ(out.find('\r'), std::string::npos) << "LF messages stay LF";
  EXPECT_NE(out.find("\n\nbody\n"), std::string::npos);
}

TEST(ListHeaders, ReadsFromAddresses) {
  const std::string msg =
      "Subject: x\r\nFrom: \"Alice A.\"\r\n <Alice@Example.ORG>\r\n\r\nFrom: b@c\r\n";
  EXPECT_EQ(MailboxOf(HeaderValue(msg, "from")), "Alice@Example.ORG");
  EXPECT_EQ(NormaliseAddress("Alice@Example.ORG"), "Alice@example.org");
  EXPECT_EQ(MailboxOf("bob@example.org (Bob)"), "bob@example.org");
  EXPECT_EQ(MailboxOf("no address"), "");
  EXPECT_EQ(HeaderValue(msg, "To"), "");
  EXPECT_EQ(ListIdOf("Team@Example.org"), "team.example.org");
}

}  // namespace
}  // namespace blindlist::listd
