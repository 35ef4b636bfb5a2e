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

TEST(ListHeaders, AddsOneTraceFieldAndKeepsOtherListsOnes) {
  const std::string msg =
      "X-Loop: other@example.net\r\nX-Loop: TEAM@example.org\r\nFrom: a@example.org\r\n\r\nb\r\n";
  std::string out = AddListHeaders(msg, kList);
  EXPECT_NE(out.find("X-Loop: team@example.org\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Loop: other@example.net\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("TEAM@"), std::string::npos) << "our own trace field is written once";
  EXPECT_TRUE(AlreadyExploded(out, kList));
}

TEST(ListHeaders, SeesALoopByListIdOrTraceFieldAnywhereInTheHeader) {
  EXPECT_TRUE(AlreadyExploded("From: a\r\nList-Id: \"x\" <Team.Example.ORG>\r\n\r\nb\r\n", kList));
  EXPECT_TRUE(AlreadyExploded("List-Id: <team.example.org>\n\nb\n", kList));
  EXPECT_TRUE(AlreadyExploded("From: a\r\nX-Loop:\r\n team@Example.org\r\n\r\n", kList));
  EXPECT_TRUE(AlreadyExploded("x-loop: <team@example.org>\r\n\r\n", kList));
  // Another list's marks, or ours in the body only, are not a loop.
  EXPECT_FALSE(
      AlreadyExploded("List-Id: <other.example.org>\r\nX-Loop: other@example.org\r\n\r\n"
                      "List-Id: <team.example.org>\r\nX-Loop: team@example.org\r\n",
                      kList));
  EXPECT_FALSE(AlreadyExploded("List-Id: <team.example.org.evil>\r\n\r\n", kList));
  EXPECT_FALSE(AlreadyExploded("X-Loop: steam@example.org\r\n\r\n", kList));
}

TEST(ListHeaders, ReadsFromAddresses) {
  const std::string msg =
      "Subject: x\r\nFrom: \"Alice A.\"\r\n <Alice@Example.ORG>\r\n\r\nFrom: b@c\r\n";
  EXPECT_EQ(MailboxOf(HeaderValue(msg, "from")), "Alice@Example.ORG");
  EXPECT_EQ(ListIdOf("Team@Example.org"), "team.example.org");
}

}  // namespace
}  // namespace blindlist::listd
