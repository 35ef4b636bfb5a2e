#include "api/config_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace blindlist::api {
namespace {

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/config_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { (void)std::system(("rm -rf " + dir_).c_str()); }

  std::string Write(const std::string& text) {
    std::string path = dir_ + "/daemon.toml";
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

TEST_F(ConfigFileTest, KnownKeysPass) {
  auto f = ConfigFile::Load(Write("[keys]\nmaster_key_file = \"/k\"\n[admin]\nnames = [\"a\"]\n"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(*f->String("keys", "master_key_file", ""), "/k");
  EXPECT_EQ(f->Strings("admin", "names")->size(), 1U);
  // Asked for but absent: a known key left at its default.
  EXPECT_EQ(*f->Int("keys", "days", 7), 7);
  EXPECT_TRUE(f->CheckKnownKeys().ok());
}

TEST_F(ConfigFileTest, UnknownKeyNamesFileSectionAndKey) {
  std::string path = Write("[keys]\nmaster_key_file = \"/k\"\nmaster_kye_file = \"/typo\"\n");
  auto f = ConfigFile::Load(path);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->String("keys", "master_key_file", "").ok());
  Status st = f->CheckKnownKeys();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "bad-config");
  EXPECT_NE(st.error().message.find(path), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("[keys]"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("master_kye_file"), std::string::npos) << st.error().message;
}

TEST_F(ConfigFileTest, UnknownSectionIsAnError) {
  auto f = ConfigFile::Load(Write("[keys]\na = 1\n[kyes]\na = 1\n"));
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->Int("keys", "a", 0).ok());
  Status st = f->CheckKnownKeys();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("unknown section [kyes]"), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("\"a\""), std::string::npos) << st.error().message;
}

TEST_F(ConfigFileTest, EmptyUnknownSectionAndTopLevelKeys) {
  auto f = ConfigFile::Load(Write("[nothing]\n"));
  ASSERT_TRUE(f.ok());
  Status st = f->CheckKnownKeys();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("[nothing]"), std::string::npos) << st.error().message;

  f = ConfigFile::Load(Write("listen = \"127.0.0.1:1\"\n[server]\n"));
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->String("server", "listen", "").ok());
  st = f->CheckKnownKeys();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("\"listen\" outside any section"), std::string::npos)
      << st.error().message;
}

TEST_F(ConfigFileTest, NestedTableInASectionIsUnknown) {
  auto f = ConfigFile::Load(Write("[server]\nlisten = \"127.0.0.1:1\"\n[server.tls]\nx = 1\n"));
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->String("server", "listen", "").ok());
  Status st = f->CheckKnownKeys();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("\"tls\" in section [server]"), std::string::npos)
      << st.error().message;
}

TEST_F(ConfigFileTest, CommonSectionsAreKnown) {
  auto f = ConfigFile::Load(
      Write("[server]\nlisten = \"127.0.0.1:8443\"\nthreads = 2\n[limits]\nrate_burst = 10.0\n"
            "[store]\nurl = \"sqlite:/x\"\n[log]\nlevel = \"info\"\n"));
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->Common("127.0.0.1:1", "sqlite:/y").ok());
  EXPECT_TRUE(f->CheckKnownKeys().ok());
}

}  // namespace
}  // namespace blindlist::api
