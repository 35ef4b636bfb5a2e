// The key generation's message parsers (daemons/groupd/dkg_messages.h) over arbitrary bytes:
// the round, the relayed start answers, deal and accept signatures and pieces (JSON), a node URL's
// host and its comparison key, and the sealed state's plaintext. The first octet picks the parser;
// the rest is its input. Invariants: an accepted round names 2..16 distinct https:// URLs, each
// with a host and no path, no two with one host key, and k and its index within them; accepted
// starts are one per index 1..n with k commitments and one PEM block each; accepted deals and
// accepts are one signature per index 1..n; accepted pieces come one from every other node; a host
// key is its own host key; a state that parses encodes back to its octets.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "dkg_messages.h"
#include "fuzz_check.h"

namespace dkg = blindlist::groupd::dkg;
using blindlist::ByteView;
using json = nlohmann::json;

namespace {

void Rounds(const json& body) {
  dkg::Round r;
  if (!dkg::ParseRound(body, r).empty()) return;
  FUZZ_CHECK(r.n >= 2 && r.n <= 16 && r.nodes.size() == static_cast<std::size_t>(r.n),
             "2..16 nodes");
  FUZZ_CHECK(r.k >= 2 && r.k <= r.n && r.index >= 1 && r.index <= r.n, "k and index in range");
  for (const auto& url : r.nodes) {
    FUZZ_CHECK(url.starts_with("https://") && dkg::UrlHost(url).has_value(), "a URL with a host");
    FUZZ_CHECK(url.find('/', 8) == std::string::npos, "no path, no trailing /");
    FUZZ_CHECK(std::count(r.nodes.begin(), r.nodes.end(), url) == 1, "distinct URLs");
    const std::string key = dkg::HostKey(*dkg::UrlHost(url));
    FUZZ_CHECK(std::count_if(r.nodes.begin(), r.nodes.end(),
                             [&](const std::string& other) {
                               return dkg::HostKey(*dkg::UrlHost(other)) == key;
                             }) == 1,
               "one node per host");
  }
  FUZZ_CHECK(r.round.size() == 32, "a 32-digit round");
  FUZZ_CHECK(r.ShareContext("list@example.org") != r.StateContext("list@example.org"),
             "a share and a state never open for one another");
  FUZZ_CHECK(r.Reason().find(r.round) != std::string::npos, "the audit names the whole round");
  std::map<std::uint8_t, dkg::StartAnswer> starts;
  if (dkg::ParseStarts(body, r, starts).empty()) {
    FUZZ_CHECK(starts.size() == static_cast<std::size_t>(r.n), "one start per node");
    for (const auto& [index, answer] : starts) {
      FUZZ_CHECK(index == answer.index && index >= 1 && index <= r.n, "start index in range");
      FUZZ_CHECK(answer.commitments.size() == static_cast<std::size_t>(r.k), "k commitments");
      const auto begin = answer.certificate_pem.find("-----BEGIN");
      FUZZ_CHECK(begin != std::string::npos &&
                     answer.certificate_pem.find("-----BEGIN", begin + 1) == std::string::npos,
                 "one PEM block");
    }
  }
  std::map<std::uint8_t, blindlist::Bytes> deals;
  if (dkg::ParseDeals(body, r, deals).empty()) {
    FUZZ_CHECK(deals.size() == static_cast<std::size_t>(r.n), "a deal signature from every node");
    for (const auto& [index, signature] : deals)
      FUZZ_CHECK(index >= 1 && index <= r.n && !signature.empty(), "deal index in range");
  }
  std::map<std::uint8_t, blindlist::Bytes> accepts;
  if (dkg::ParseAccepts(body, r, accepts).empty()) {
    FUZZ_CHECK(accepts.size() == static_cast<std::size_t>(r.n), "an accept from every node");
    for (const auto& [index, signature] : accepts)
      FUZZ_CHECK(index >= 1 && index <= r.n && !signature.empty(), "accept index in range");
  }
  std::map<std::uint8_t, blindlist::Bytes> pieces;
  if (dkg::ParsePieces(body, r, pieces).empty()) {
    FUZZ_CHECK(pieces.size() == static_cast<std::size_t>(r.n - 1), "a piece from every other node");
    FUZZ_CHECK(!pieces.contains(r.index), "no piece from this node itself");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  ByteView in(data + 1, size - 1);
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  switch (selector % 3) {
    case 0: {
      const json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!body.is_discarded() && body.is_object()) Rounds(body);
      break;
    }
    case 1: {
      const auto host = dkg::UrlHost(text);
      FUZZ_CHECK(!host || (!host->empty() && text.starts_with("https://")), "a host is not empty");
      const std::string key = dkg::HostKey(text);
      FUZZ_CHECK(dkg::HostKey(key) == key, "a host key is its own host key");
      break;
    }
    case 2: {
      const int n = 2 + (selector >> 2) % 15;
      auto state = dkg::ParseState(in, n);
      if (state.ok()) {
        FUZZ_CHECK(state->pieces.size() == static_cast<std::size_t>(n), "n pieces");
        const blindlist::SecretBytes back = dkg::EncodeState(*state);
        // The expiry's top bit is cleared on parsing; everything else comes back.
        FUZZ_CHECK(back.size() == in.size() &&
                       std::equal(back.data() + 2, back.data() + back.size(), in.begin() + 2),
                   "a parsed state encodes back to its octets");
      }
      break;
    }
  }
  return 0;
}
