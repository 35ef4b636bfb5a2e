// How a membership certificate names its group, shared by certd (which issues
// it) and groupd (which checks it for path G): a SAN URI "urn:blindlist:group:" + list address.
// And the proof of possession of its key that path G requires, shared by groupd
// (which verifies it) and the blindlist command (which makes it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/bytes.h"

namespace blindlist::api {

inline constexpr std::string_view kGroupUriPrefix = "urn:blindlist:group:";

inline std::string GroupUri(std::string_view group) {
  return std::string(kGroupUriPrefix) + std::string(group);
}

// A path G request carries "proof": {"time": T, "signature": base64}, the membership
// certificate's key's signature (crypto::SignMessage) over PossessionMessage(group, T, the
// request's "recipient_info" strings as sent, in order; "" for an item without one). groupd
// accepts T within kPossessionWindowSeconds of its clock, either way.
inline constexpr std::string_view kPossessionLabel = "blindlist path-G proof of possession v1";
inline constexpr std::int64_t kPossessionWindowSeconds = 300;

// label, 0x00, then uint32 big-endian lengths before each string: group, time as a 64-bit
// big-endian two's complement integer, the number of RecipientInfos, each RecipientInfo.
inline Bytes PossessionMessage(std::string_view group, std::int64_t time,
                               const std::vector<std::string>& recipient_infos) {
  Bytes out(kPossessionLabel.begin(), kPossessionLabel.end());
  out.push_back(0);
  const auto put = [&out](std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  const auto put_string = [&](std::string_view s) {
    put(s.size(), 4);
    out.insert(out.end(), s.begin(), s.end());
  };
  put_string(group);
  put(static_cast<std::uint64_t>(time), 8);
  put(recipient_infos.size(), 4);
  for (const auto& ri : recipient_infos) put_string(ri);
  return out;
}

}  // namespace blindlist::api
