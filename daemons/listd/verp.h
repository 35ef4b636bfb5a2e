// listd's VERP envelope senders (docs/operations.md, "Bounces"): every delivery goes out from
// the list's bounce address with a tag, so a report that comes back names what it is about,
// and only listd, holding its own key, can make a tag that checks:
//   BOUNCE-LOCAL+KIND.ID.MAC+MEMBERLOCAL=MEMBERDOMAIN@BOUNCE-DOMAIN
//   m  one transaction per member: MAC over (list, post id, member)
//   x  Postfix XVERP: listd sends BOUNCE-LOCAL+x.ID.MAC@..., Postfix appends +member=domain;
//      MAC over (list, post id) only, so the member part is checked against the list instead
//   p  a probe: MAC over (list, probe time, member)
// MAC: HMAC-SHA256 under the key, first 10 bytes, base32 lower case (16 characters).
// Thread-safety: a VerpSigner is immutable after construction; safe from many threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::listd {

inline constexpr std::size_t kVerpSecretBytes = 32;

// The key file: read it (refused when group or others may read it, or not 32 bytes), or
// create it (0600, O_EXCL through a temporary name and link(2), so two starting processes
// agree on one key) when it does not exist and `create` is set.
Result<SecretBytes> LoadVerpSecret(const std::string& path, bool create);

struct VerpTag {
  char kind = 0;       // 'm', 'x' or 'p'
  std::string id;      // post id, or the probe time in decimal
  std::string mac;     // as written
  std::string member;  // local@domain, from the appended local=domain
};

class VerpSigner {
 public:
  explicit VerpSigner(SecretBytes key) : key_(std::move(key)) {}

  // The envelope sender for one member (kind 'm' or 'p').
  Result<std::string> MemberSender(std::string_view bounce_address, char kind,
                                   std::string_view list, std::string_view id,
                                   std::string_view member) const;
  // The MAIL FROM of an XVERP batch (kind 'x'); Postfix appends each member.
  Result<std::string> BatchSender(std::string_view bounce_address, std::string_view list,
                                  std::string_view post_id) const;
  // Whether the tag's MAC is right, compared in constant time.
  bool Verify(std::string_view list, const VerpTag& tag) const;

 private:
  Result<std::string> Mac(char kind, std::string_view list, std::string_view id,
                          std::string_view member) const;
  SecretBytes key_;
};

// Splits "LOCAL+TAG@DOMAIN" into "LOCAL@DOMAIN" and TAG (nullopt when there is no '+').
struct TaggedAddress {
  std::string base;
  std::string tag;
};
std::optional<TaggedAddress> SplitTag(std::string_view address);
// KIND.ID.MAC+LOCAL=DOMAIN. nullopt when the form is wrong.
std::optional<VerpTag> ParseTag(std::string_view tag);

}  // namespace blindlist::listd
