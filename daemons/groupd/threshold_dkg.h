// Creation of a threshold group without a dealer (docs/threshold.md, "Creation without a
// dealer: distributed key generation"): Pedersen's DKG with Feldman VSS in four rounds, each a
// route of this node relayed by the admin command, which reads no piece and no share:
//   start   this node's random polynomial f_i, its commitments and a fresh round key, signed with
//           this node's TLS server key; the pieces and the round scalar go back sealed as `state`
//           (under this node's master key, with an expiry). The node records its answer (one
//           round per group at a time, until it finishes, is cancelled or expires): a repeated
//           start gets the same answer;
//   deal    every node's start checked (certificate chain to [threshold] node_ca_certificate, its
//           name against the URL the request gives, the signature), then f_i(j) sealed to node j
//           on the digest of that view, which the node signs and records: it deals on one view;
//   check   the view checked against the one this node dealt on, every dealer's signature over
//           it, the pieces for this node opened and checked against their dealers' commitments,
//           summed into d_i (sealed in the round record); the node signs an accept of the view
//           and the summed commitments. A bad piece fails the round here for good;
//   finish  every node's accept of that view and those commitments (n signatures): only then is
//           the group stored, as a dealer's creation stores it. Nobody stores before every node
//           has checked;
//   cancel  the round's record forgotten (the command cancels a round it fails).
// Refusals name the node at fault: `400 bad-signature` (its start or deal does not verify), `400
// bad-piece` (its piece does not open), `400 bad-share` (its piece is not on its commitments).
// Thread-safety: as GroupService::Handle (its round records are in the store).
#pragma once

#include "net/https_server.h"
#include "service.h"

namespace blindlist::groupd {

struct GroupService::DkgHandlers {
  static net::HttpResponse Start(GroupService& s, const net::HttpRequest& req, Call& call,
                                 const Target& t);
  static net::HttpResponse Deal(GroupService& s, const net::HttpRequest& req, Call& call,
                                const Target& t);
  static net::HttpResponse Check(GroupService& s, const net::HttpRequest& req, Call& call,
                                 const Target& t);
  static net::HttpResponse Finish(GroupService& s, const net::HttpRequest& req, Call& call,
                                  const Target& t);
  static net::HttpResponse Cancel(GroupService& s, const net::HttpRequest& req, Call& call,
                                  const Target& t);
};

}  // namespace blindlist::groupd
