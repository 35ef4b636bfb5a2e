// Creation of a threshold group without a dealer (docs/threshold.md, "Creation without a
// dealer: distributed key generation"): Pedersen's DKG with Feldman VSS in three rounds, each a
// route of this node relayed by the admin command, which reads no piece and no share:
//   start   this node's random polynomial f_i, its commitments and a fresh round key, signed with
//           this node's TLS server key; the pieces and the round scalar go back sealed as `state`
//           (under this node's master key, with an expiry): the node keeps nothing between rounds;
//   deal    every node's start checked (certificate chain to [threshold] node_ca_certificate, its
//           name against the URL the request gives, the signature), then f_i(j) sealed to node j;
//   finish  the pieces for this node opened and checked against their dealers' commitments,
//           summed into d_i; the group stored as a dealer's creation stores it.
// Refusals name the node at fault: `400 bad-signature` (its start does not verify), `400
// bad-piece` (its piece does not open), `400 bad-share` (its piece is not on its commitments).
// Thread-safety: as GroupService::Handle (no state of its own).
#pragma once

#include "net/https_server.h"
#include "service.h"

namespace blindlist::groupd {

struct GroupService::DkgHandlers {
  static net::HttpResponse Start(GroupService& s, const net::HttpRequest& req, Call& call,
                                 const Target& t);
  static net::HttpResponse Deal(GroupService& s, const net::HttpRequest& req, Call& call,
                                const Target& t);
  static net::HttpResponse Finish(GroupService& s, const net::HttpRequest& req, Call& call,
                                  const Target& t);
};

}  // namespace blindlist::groupd
