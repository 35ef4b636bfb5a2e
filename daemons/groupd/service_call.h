// One request in flight as the handlers see it (service.cc, threshold_dkg.cc): who, what, for the
// audit; and what its route found in its path.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "service.h"

namespace blindlist::groupd {

// A list (group) address as `POST /v1/groups` takes it: one @, neither part empty, at most 254
// octets, no controls, spaces, '/', '"', '<' or '>'.
bool ValidAddress(std::string_view a);
// Whether a group's address is ASCII: its certificate names it as an rfc822Name, which is.
bool AsciiAddress(std::string_view a);

struct GroupService::Call {
  std::string operation = "unknown";
  std::string caller = "anonymous";
  std::string group;
  int key_version = 0;
  std::string reason;
  std::string result = "ok";
  bool audit = true;
  // Rate limits: the peer's address bucket, and the caller's bucket ("ip:" + that
  // address until a credential is verified, then the member, exploder or administrator).
  std::string address;
  std::string rate_key;
  std::string limited_by;  // for a 429: "address", "failures" or "caller"
  bool tally = false;      // audited in aggregate (api::AuditTally), not one record each
  // A per-member re-wrap (RewrapMembers): the addresses by status, as JSON, for the request's
  // one audit record (store::AuditRecord::members).
  std::string audit_members;
};

// What a route found in its path: the group (looked up before the handler runs, for every
// route with one but the key generation's, which makes it: null there, its name in params[0]) and
// the path parameters after it, in order.
struct GroupService::Target {
  const store::Group* group = nullptr;
  std::vector<std::string> params;
};

}  // namespace blindlist::groupd
