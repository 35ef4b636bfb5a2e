// certd's configuration: a CRL URL that no relying party can fetch (loopback) and a
// missing [store] url stop the daemon at start-up, with the file and key named.
#include "config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace blindlist::certd {
namespace {

TEST(UrlPointsAtLoopback, LoopbackHostsInEverySpelling) {
  for (const char* url :
       {"https://127.0.0.1:8444/v1/crl", "https://127.0.0.1/v1/crl", "http://127.5.6.7/crl",
        "https://localhost:8444/v1/crl", "https://LOCALHOST./crl", "https://certd.localhost/crl",
        "https://[::1]:8444/v1/crl", "https://[0:0:0:0:0:0:0:1]/crl",
        "https://[::ffff:127.0.0.1]/crl", "https://user@127.0.0.1/crl", "https://127.1/crl"}) {
    EXPECT_TRUE(UrlPointsAtLoopback(url)) << url;
  }
}

TEST(UrlPointsAtLoopback, RealHostsPass) {
  for (const char* url : {"https://certd.example.org:8444/v1/crl", "http://192.0.2.7/crl",
                          "https://[2001:db8::1]/crl", "https://localhost.example.org/crl",
                          "https://1270.example.org/crl", "https://[::ffff:192.0.2.1]/crl",
                          "https://certd.blindlist.test/v1/crl"}) {
    EXPECT_FALSE(UrlPointsAtLoopback(url)) << url;
  }
}

class CertdConfigFile : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_ =
      ::testing::TempDir() + "certd-config-test-" + std::to_string(getpid()) + ".toml";
};

constexpr const char* kBase =
    "[ca]\ncertificate = \"/etc/blindlist/membership-ca.crt\"\n"
    "private_key = \"/etc/blindlist/membership-ca.key\"\n";

TEST_F(CertdConfigFile, LoopbackCrlUrlIsRefusedAtStartUp) {
  auto c = LoadConfig(Write(std::string(kBase) +
                            "[store]\nurl = \"sqlite:/var/lib/blindlist-groupd/groupd.db\"\n"
                            "[certificates]\ncrl_url = \"https://127.0.0.1:8444/v1/crl\"\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(path_), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("[certificates] crl_url"), std::string::npos);
  EXPECT_NE(c.error().message.find("points at loopback"), std::string::npos);
}

TEST_F(CertdConfigFile, LoopbackCrlUrlWithTheSwitchAndRealUrlPass) {
  auto c = LoadConfig(Write(std::string(kBase) +
                            "[store]\nurl = \"sqlite:/tmp/x.db\"\n"
                            "[certificates]\ncrl_url = \"https://localhost/v1/crl\"\n"
                            "allow_loopback_crl_url = true\n"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->allow_loopback_crl_url);
  auto real =
      LoadConfig(Write(std::string(kBase) +
                       "[store]\nurl = \"sqlite:/tmp/x.db\"\n"
                       "[certificates]\ncrl_url = \"https://certd.example.org:8444/v1/crl\"\n"));
  ASSERT_TRUE(real.ok()) << real.error().message;
  EXPECT_EQ(real->crl_url, "https://certd.example.org:8444/v1/crl");
}

TEST_F(CertdConfigFile, MissingStoreUrlIsAnError) {
  auto c = LoadConfig(Write(kBase));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("[store] url is required"), std::string::npos)
      << c.error().message;
}

}  // namespace
}  // namespace blindlist::certd
