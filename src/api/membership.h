// How a membership certificate names its group, shared by certd (which issues
// it) and groupd (which checks it for path G): a SAN URI "urn:blindlist:group:" + list address.
#pragma once

#include <string>
#include <string_view>

namespace blindlist::api {

inline constexpr std::string_view kGroupUriPrefix = "urn:blindlist:group:";

inline std::string GroupUri(std::string_view group) {
  return std::string(kGroupUriPrefix) + std::string(group);
}

}  // namespace blindlist::api
