#include "api/route_table.h"

#include <gtest/gtest.h>

namespace blindlist::api {
namespace {

using Table = RouteTable<int>;

Table Sample() {
  return Table({
      {"GET", "/healthz", "healthz", Access::kInfrastructure, 1},
      {"GET", "/v1/groups", "group-list", Access::kAdmin, 2},
      {"POST", "/v1/groups", "group-create", Access::kAdmin, 3},
      {"GET", "/v1/groups/{group}", "group-show", Access::kAdmin, 4},
      {"POST", "/v1/groups/{group}/rewrap", "rewrap", Access::kMember, 5},
      {"POST", "/v1/groups/{group}/rewrap/certificate", "rewrap-certificate", Access::kCertificate,
       6},
      {"DELETE", "/v1/groups/{group}/members/{member}", "member-remove", Access::kAdmin, 7},
      {"PUT", "/v1/groups/{group}/members/{member}/certificate", "member-set-cert", Access::kAdmin,
       8},
  });
}

TEST(SplitPath, KeepsEmptySegments) {
  EXPECT_EQ(SplitPath("/a/b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(SplitPath("/a//b/"), (std::vector<std::string>{"a", "", "b", ""}));
  EXPECT_EQ(SplitPath("//a"), (std::vector<std::string>{"", "a"}));
  EXPECT_TRUE(SplitPath("/").empty());
  EXPECT_TRUE(SplitPath("").empty());
}

TEST(MatchPattern, LiteralsAndCaptures) {
  std::vector<std::string> params;
  EXPECT_TRUE(MatchPattern("/v1/groups/{g}/members/{m}",
                           SplitPath("/v1/groups/l@x.org/members/a@x.org"), params));
  EXPECT_EQ(params, (std::vector<std::string>{"l@x.org", "a@x.org"}));
  EXPECT_FALSE(MatchPattern("/v1/groups/{g}", SplitPath("/v1/groups"), params));
  EXPECT_FALSE(MatchPattern("/v1/groups/{g}", SplitPath("/v1/groups/a/b"), params));
  EXPECT_FALSE(MatchPattern("/v1/groups/{g}", SplitPath("/v2/groups/a"), params));
  EXPECT_TRUE(params.empty());  // no stale captures from a failed match
}

TEST(RouteTable, FindsByMethodAndPath) {
  Table t = Sample();
  auto m = t.Find("GET", "/v1/groups");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->handler, 2);
  m = t.Find("POST", "/v1/groups/g@x.org/rewrap/certificate");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->operation, "rewrap-certificate");
  EXPECT_EQ(m.route->access, Access::kCertificate);
  EXPECT_EQ(m.params, (std::vector<std::string>{"g@x.org"}));
  m = t.Find("PUT", "/v1/groups/g/members/a@x.org/certificate");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->handler, 8);
  EXPECT_EQ(m.params, (std::vector<std::string>{"g", "a@x.org"}));
}

TEST(RouteTable, WrongMethodNamesTheAllowedOnes) {
  Table t = Sample();
  auto m = t.Find("DELETE", "/v1/groups");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allowed, "GET, POST");
  ASSERT_NE(m.same_path, nullptr);
  EXPECT_EQ(m.same_path->operation, "group-list");
  m = t.Find("GET", "/v1/groups/g/rewrap");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allowed, "POST");
  EXPECT_EQ(m.params, (std::vector<std::string>{"g"}));
}

TEST(RouteTable, UnknownPathHasNoMethods) {
  Table t = Sample();
  for (const char* path : {"/", "/v1", "/v1/groups/g/nothing", "/v1/groups/g/members",
                           "/v1/groups/g/rewrap/other", "/healthz/x"}) {
    auto m = t.Find("GET", path);
    EXPECT_EQ(m.route, nullptr) << path;
    EXPECT_TRUE(m.allowed.empty()) << path;
    EXPECT_EQ(m.same_path, nullptr) << path;
  }
}

// A trailing or doubled slash is no other spelling of a route: nothing matches, no method is
// offered, as for any unknown path (the daemons answer 404).
TEST(RouteTable, PathsWithEmptySegmentsMatchNothing) {
  Table t = Sample();
  for (const char* path :
       {"/v1/groups/", "//v1/groups", "/v1//groups", "/v1/groups//", "/healthz/", "//healthz",
        "/v1/groups/x/members/", "/v1/groups//members/a@x.org", "/v1/groups/g/members/a@x.org/",
        "/v1/groups/g//members/a@x.org/certificate", "//"}) {
    for (const char* method : {"GET", "POST", "PUT", "DELETE"}) {
      auto m = t.Find(method, path);
      EXPECT_EQ(m.route, nullptr) << method << " " << path;
      EXPECT_TRUE(m.allowed.empty()) << path;
      EXPECT_EQ(m.same_path, nullptr) << path;
      EXPECT_TRUE(m.params.empty()) << path;
    }
  }
  // The same paths without the empty segment do route.
  EXPECT_NE(t.Find("GET", "/v1/groups").route, nullptr);
  EXPECT_NE(t.Find("GET", "/healthz").route, nullptr);
  EXPECT_NE(t.Find("DELETE", "/v1/groups/g/members/a@x.org").route, nullptr);
}

TEST(RouteTable, PatternsAreUnambiguous) {
  // Every route of the sample is found by its own pattern with placeholders filled in, and by
  // no other: the table order never decides.
  Table t = Sample();
  for (const auto& route : t.routes()) {
    std::string path;
    for (const auto& seg : SplitPath(route.pattern))
      path += "/" + (seg.front() == '{' ? std::string("x") : seg);
    auto m = t.Find(route.method, path);
    ASSERT_NE(m.route, nullptr) << route.pattern;
    EXPECT_EQ(m.route, &route) << route.pattern;
  }
}

}  // namespace
}  // namespace blindlist::api
