#include "request_reply.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace blindlist::listd {
namespace {

TEST(RequestReply, FindsTheListOfARequestAddress) {
  EXPECT_EQ(RequestListOf("team-request@example.org"), "team@example.org");
  EXPECT_EQ(RequestListOf("Team-REQUEST@example.org"), "Team@example.org");
  EXPECT_EQ(RequestListOf("team@example.org"), std::nullopt);
  EXPECT_EQ(RequestListOf("-request@example.org"), std::nullopt);
  EXPECT_EQ(RequestListOf("team-request"), std::nullopt);
}

TEST(RequestReply, NeverAnswersAutomaticMail) {
  const std::string plain = "From: a@example.org\r\nSubject: unsubscribe\r\n\r\nhi\r\n";
  EXPECT_EQ(NoAutoReplyReason("a@example.org", plain), "");
  EXPECT_NE(NoAutoReplyReason("", plain), "");
  EXPECT_NE(NoAutoReplyReason("MAILER-DAEMON@example.org", plain), "");
  EXPECT_NE(NoAutoReplyReason("other-request@example.org", plain), "");
  EXPECT_NE(NoAutoReplyReason("other-bounces+x=y@example.org", plain), "");
  EXPECT_NE(NoAutoReplyReason("owner-x@example.org", plain), "");
  EXPECT_NE(NoAutoReplyReason("a@example.org", "Auto-Submitted: auto-replied\r\n" + plain), "");
  EXPECT_NE(NoAutoReplyReason("a@example.org", "Auto-Submitted: auto-generated\r\n" + plain), "");
  EXPECT_EQ(NoAutoReplyReason("a@example.org", "Auto-Submitted: no\r\n" + plain), "");
  EXPECT_NE(NoAutoReplyReason("a@example.org", "Precedence: bulk\r\n" + plain), "");
  EXPECT_NE(NoAutoReplyReason("a@example.org", "List-Id: <x.example.org>\r\n" + plain), "");
}

TEST(RequestReply, TheAnswerIsAnAutoReplyThatCannotBeSteered) {
  RequestReply r{"team@example.org", "owner@example.org", "a@example.org", "lists.example.org"};
  const std::string request =
      "From: a@example.org\r\nSubject: unsubscribe\r\n\tBcc: victim@example.net\r\n"
      "Message-ID: <abc@example.org>\r\n\r\nhi\r\n";
  const std::string m = BuildRequestReply(r, request, 1700000000);
  EXPECT_NE(m.find("From: team-request@example.org\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("To: a@example.org\r\n"), std::string::npos);
  EXPECT_NE(m.find("Auto-Submitted: auto-replied\r\n"), std::string::npos);
  EXPECT_NE(m.find("In-Reply-To: <abc@example.org>\r\n"), std::string::npos);
  EXPECT_NE(m.find("Subject: Auto: unsubscribe Bcc: victim@example.net\r\n"), std::string::npos)
      << m;
  EXPECT_EQ(m.find("\r\nBcc:"), std::string::npos);
  EXPECT_NE(m.find("    owner@example.org\r\n"), std::string::npos);
  EXPECT_EQ(m.find("hi\r\n"), std::string::npos) << "the request is not quoted";
}

TEST(RequestReply, AtMostOneAnswerPerSenderAndInterval) {
  char tmpl[] = "/tmp/request-limiter-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = std::string(tmpl) + "/replies";
  RequestReplyLimiter limiter(dir, std::chrono::seconds(3600), 3);
  const std::int64_t t = 1700000000;
  EXPECT_TRUE(*limiter.TryReserve("team@example.org", "a@example.org", t));
  EXPECT_FALSE(*limiter.TryReserve("team@example.org", "A@EXAMPLE.ORG", t + 10));
  EXPECT_TRUE(*limiter.TryReserve("other@example.org", "a@example.org", t + 10));
  EXPECT_TRUE(*limiter.TryReserve("team@example.org", "b@example.org", t + 10));
  // Full (3 entries, none stale): a flood of new senders gets no answer.
  EXPECT_FALSE(*limiter.TryReserve("team@example.org", "c@example.org", t + 20));
  // After the interval, the old entries are pruned and answers go again.
  EXPECT_TRUE(*limiter.TryReserve("team@example.org", "a@example.org", t + 3600));
  EXPECT_TRUE(*limiter.TryReserve("team@example.org", "c@example.org", t + 3610));
  std::filesystem::remove_all(tmpl);
}

// Pipe mode's answers reach the daemon's counter through the spool, each counted once.
TEST(RequestReply, PipeModeAnswersAreCountedOnceByTheDaemon) {
  char tmpl[] = "/tmp/request-pipe-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string spool = tmpl;
  PipeReplyCounts none = CollectPipeRequestReplies(spool);  // no directory yet
  EXPECT_EQ(none.sent + none.failed, 0);
  ASSERT_TRUE(NotePipeRequestReply(spool, true).ok());
  ASSERT_TRUE(NotePipeRequestReply(spool, true).ok());
  ASSERT_TRUE(NotePipeRequestReply(spool, false).ok());
  PipeReplyCounts n = CollectPipeRequestReplies(spool);
  EXPECT_EQ(n.sent, 2);
  EXPECT_EQ(n.failed, 1);
  n = CollectPipeRequestReplies(spool);
  EXPECT_EQ(n.sent + n.failed, 0) << "each answer is counted once";
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace blindlist::listd
