// What a unit test does when a peer it talks to (swaks, the openssl command, python3's
// cryptography package) is missing. With BLINDLIST_REQUIRE_PEERS=1 (scripts/test and so CI set
// it) a missing peer is a failure; otherwise, as on a developer's machine, the test is skipped.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace blindlist::testing {

inline bool PeersRequired() {
  const char* v = std::getenv("BLINDLIST_REQUIRE_PEERS");
  return v != nullptr && std::string_view(v) == "1";
}

}  // namespace blindlist::testing

// Ends the current test: a failure when peers are required, a skip otherwise.
#define BL_PEER_MISSING(why)                                                       \
  do {                                                                             \
    if (::blindlist::testing::PeersRequired()) {                                   \
      FAIL() << "a required peer is missing (BLINDLIST_REQUIRE_PEERS=1): " << why; \
    }                                                                              \
    GTEST_SKIP() << why;                                                           \
  } while (0)
