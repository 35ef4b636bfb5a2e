// The messages of a distributed key generation round (docs/threshold.md, "Creation without a
// dealer"), parsed strictly: what the admin command relays between the nodes, and the state a node
// seals for itself between rounds. No I/O and no keys here: the handlers (threshold_dkg.h) check
// signatures and open what is sealed. fuzz/fuzz_dkg_parse.cc drives every parser.
// Thread-safety: free functions over values; no shared state.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::groupd::dkg {

// A round as every request of it names it: the round id (32 lowercase hex digits, chosen by the
// command), k, the n node URLs as the operator gave them (index = position + 1), and the index of
// the node asked.
struct Round {
  std::string round;
  int k = 0;
  int n = 0;
  std::uint8_t index = 0;
  std::vector<std::string> nodes;

  const std::string& OwnUrl() const { return nodes[index - 1U]; }
  // The context of this node's sealed state: the group and every field above, so a state opens
  // only for the round, the index and the node list it was made for.
  std::string StateContext(std::string_view group) const;
  // The context of this node's summed share, sealed in its round record between check and finish.
  std::string ShareContext(std::string_view group) const;
  // For the audit: the round id (whole: an operator cancels a stuck round by it; never a secret),
  // the index, k and n.
  std::string Reason() const;
};

// "" if `body` holds a well-formed round ("round", "threshold", "nodes", "index"), else what is
// wrong. A node URL is https://HOST[:PORT] (no path, not even "/"), at most 255 characters, no
// whitespace, commas or controls, and no two URLs name one host (compared as HostKey).
std::string ParseRound(const nlohmann::json& body, Round& out);

// The host of an https://HOST[:PORT] URL, brackets removed from an IPv6 literal; nullopt if there
// is none, or if the URL has anything after the port (a path, "/", a query).
std::optional<std::string> UrlHost(std::string_view url);
// A host as two node URLs are compared: lowercase, without trailing dots ("node.example." is
// "node.example"), an IPv4-mapped IPv6 address as the IPv4 address ("::ffff:127.0.0.1" is
// "127.0.0.1"), any other IP address in its canonical text.
std::string HostKey(std::string_view host);

// Whether `pem` holds exactly one PEM block ("-----BEGIN" once): a second block would be read by
// no check and relayed, or served, by all.
bool SinglePemBlock(std::string_view pem);

// The dkg-cancel command that ends the round kept under `state_context` (a Round::StateContext)
// for `group`, with the round's own threshold and node list: what a 409 tells the operator to run.
std::string CancelCommand(std::string_view group, std::string_view round,
                          std::string_view state_context);

// One node's answer to the start round, as relayed: its round key, its commitments (k points), its
// signature over DkgStartMessage and its TLS server certificate (PEM: exactly one block).
struct StartAnswer {
  std::uint8_t index = 0;
  Bytes key;  // compressed point
  std::vector<Bytes> commitments;
  Bytes signature;
  std::string certificate_pem;
};
// "starts": exactly one answer for each index 1..n. "" or what is wrong (the shape only: the
// signatures are the caller's to check).
std::string ParseStarts(const nlohmann::json& body, const Round& r,
                        std::map<std::uint8_t, StartAnswer>& out);

// "deals": [{"index": i, "signature": base64}], exactly one for each index 1..n: node i's
// signature over DkgDealMessage (the view it dealt on). "" or what is wrong.
std::string ParseDeals(const nlohmann::json& body, const Round& r,
                       std::map<std::uint8_t, Bytes>& out);

// "accepts": [{"index": j, "signature": base64}], exactly one for each index 1..n: node j's
// signature over DkgAcceptMessage (it checked every piece dealt to it). "" or what is wrong.
std::string ParseAccepts(const nlohmann::json& body, const Round& r,
                         std::map<std::uint8_t, Bytes>& out);

// "pieces": [{"from": i, "piece": base64}], exactly one from every other node. "" or what is wrong.
std::string ParsePieces(const nlohmann::json& body, const Round& r,
                        std::map<std::uint8_t, Bytes>& out);

// What a node seals under its master key between rounds: an expiry (Unix seconds), its round key
// scalar and its pieces f_i(1..n). Plaintext: version 1 (one octet), expiry (8 octets,
// big-endian), the round scalar (32), then n scalars (32 each).
struct State {
  std::int64_t expires = 0;
  SecretBytes round_scalar;
  std::vector<SecretBytes> pieces;  // pieces[j - 1] = f_i(j)
};
SecretBytes EncodeState(const State& state);
// Errors: "bad-state" (wrong length or version, n pieces expected).
Result<State> ParseState(ByteView plaintext, int n);

}  // namespace blindlist::groupd::dkg
