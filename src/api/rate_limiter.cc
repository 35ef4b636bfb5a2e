#include "api/rate_limiter.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>

namespace blindlist::api {

std::string AddressBucket(const std::string& peer_address) {
  std::array<unsigned char, 16> v6{};
  if (peer_address.find(':') == std::string::npos ||
      inet_pton(AF_INET6, peer_address.c_str(), v6.data()) != 1) {
    return peer_address;
  }
  std::memset(v6.data() + 8, 0, 8);
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (inet_ntop(AF_INET6, v6.data(), text.data(), text.size()) == nullptr) return peer_address;
  return std::string(text.data()) + "/64";
}

}  // namespace blindlist::api
