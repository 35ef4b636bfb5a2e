#include "api/metrics_access.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace blindlist::api {
namespace {

constexpr const char* kToken = "0123456789abcdef0123456789abcdef-metrics";

class MetricsAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/metrics-access-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/token";
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  void Write(const std::string& text, mode_t mode) {
    ::unlink(path_.c_str());
    std::ofstream(path_) << text;
    ASSERT_EQ(::chmod(path_.c_str(), mode), 0);
  }
  static net::HttpRequest With(const std::string& authorization) {
    net::HttpRequest r;
    r.method = "GET";
    r.path = "/metrics";
    if (!authorization.empty()) r.headers.emplace_back("authorization", authorization);
    return r;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(MetricsAccessTest, WithoutAFileEveryoneReads) {
  MetricsAccess access;
  ASSERT_TRUE(access.Load("").ok());
  EXPECT_FALSE(access.required());
  EXPECT_FALSE(access.Refusal(With("")).has_value());
}

TEST_F(MetricsAccessTest, OnlyTheRightTokenReads) {
  Write(std::string(kToken) + "\r\n", 0640);
  MetricsAccess access;
  ASSERT_TRUE(access.Load(path_).ok());
  EXPECT_TRUE(access.required());
  EXPECT_FALSE(access.Refusal(With(std::string("Bearer ") + kToken)).has_value());

  auto missing = access.Refusal(With(""));
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 401);
  ASSERT_EQ(missing->headers.size(), 1U);
  EXPECT_EQ(missing->headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(missing->headers[0].second, R"(Bearer realm="metrics")");
  // Wrong tokens of every length, a prefix and an extension of the right one: one answer,
  // the same body as for no token; only the challenge says a token was sent (RFC 6750).
  for (const std::string& wrong :
       {std::string("x"), std::string(kToken).substr(0, 39), std::string(kToken) + "x",
        std::string(31, 'A'), std::string(64, 'B'), std::string(2000, 'C')}) {
    auto r = access.Refusal(With("Bearer " + wrong));
    ASSERT_TRUE(r.has_value()) << wrong;
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->body, missing->body);
    ASSERT_EQ(r->headers.size(), 1U);
    EXPECT_EQ(r->headers[0].second, R"(Bearer realm="metrics", error="invalid_token")");
  }
  // Another scheme is no bearer token.
  auto basic = access.Refusal(With(std::string("Basic ") + kToken));
  ASSERT_TRUE(basic.has_value());
  EXPECT_EQ(basic->headers, missing->headers);
}

TEST_F(MetricsAccessTest, RefusesFilesOthersCouldReadAndWeakTokens) {
  MetricsAccess access;
  for (mode_t mode : {0644, 0660, 0604, 0700}) {
    Write(kToken, mode);
    Status st = access.Load(path_);
    ASSERT_FALSE(st.ok()) << std::oct << mode;
    EXPECT_NE(st.error().message.find(path_), std::string::npos);
    EXPECT_NE(st.error().message.find("0600 or 0640"), std::string::npos);
  }
  Write(std::string(31, 'a'), 0600);
  EXPECT_FALSE(access.Load(path_).ok());
  Write(std::string(40, 'a') + " b", 0600);
  EXPECT_FALSE(access.Load(path_).ok());
  EXPECT_FALSE(access.Load(dir_ + "/missing").ok());
  EXPECT_FALSE(access.Load(dir_).ok());  // a directory
  EXPECT_FALSE(access.required());
}

TEST_F(MetricsAccessTest, AFailedReloadKeepsTheTokenInForce) {
  Write(kToken, 0600);
  MetricsAccess access;
  ASSERT_TRUE(access.Load(path_).ok());
  Write(kToken, 0644);
  access.Reload(path_);
  EXPECT_TRUE(access.required());
  EXPECT_FALSE(access.Refusal(With(std::string("Bearer ") + kToken)).has_value());
  const std::string fresh = std::string(kToken) + "-new";
  Write(fresh + "\n", 0600);
  access.Reload(path_);
  EXPECT_TRUE(access.Refusal(With(std::string("Bearer ") + kToken)).has_value());
  EXPECT_FALSE(access.Refusal(With("Bearer " + fresh)).has_value());
}

}  // namespace
}  // namespace blindlist::api
