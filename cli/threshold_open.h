// The member's side of a threshold read (docs/threshold.md): blind the post's KARI ephemeral
// point, ask every node, verify each node's DLEQ proof against the public share the dealer's
// commitments give it, combine k valid answers, unblind and finish the unwrap locally.
// Thread-safety: free function; no shared state.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "api/groupd_client.h"
#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/cms.h"

namespace blindlist::cli {

struct ThresholdRead {
  std::vector<std::string> servers;  // the nodes, any order
  api::ApiCredentials creds;         // the member's credentials (server ignored), the same at all
  std::string group;
  std::string reason;
  bool filter = false;  // a failure that may pass with time becomes errc::kTempFail
};

// The CEK of `env` for a threshold group. `notes` gets one line per node that failed or was
// excluded (and why), also when the read succeeds. The error, when fewer than k nodes gave a
// valid answer, names every node and its reason ("threshold-not-met"), or is the nodes' common
// refusal (e.g. not-a-member) when they all refused alike.
Result<SecretBytes> ThresholdUnwrap(const ThresholdRead& t, const crypto::Envelope& env,
                                    const std::vector<std::size_t>& candidates,
                                    std::vector<std::string>& notes);

// One post of several to open at once, and the RecipientInfos that may be the group's.
struct ThresholdPost {
  const crypto::Envelope* env = nullptr;
  std::vector<std::size_t> candidates;
};
// The CEKs of many posts, asking each node once (`POST .../threshold/bulk`, in chunks): one
// result per post, in order. The error is for what fails them all (no node gives the group
// certificate); a note names the post ("post N: node URL excluded: ...").
Result<std::vector<Result<SecretBytes>>> ThresholdUnwrapMany(const ThresholdRead& t,
                                                             std::span<const ThresholdPost> posts,
                                                             std::vector<std::string>& notes);

}  // namespace blindlist::cli
