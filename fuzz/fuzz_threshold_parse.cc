// The threshold parsers over arbitrary bytes: shares, proofs, commitments, and a proof check on
// points taken from the input. The first octet picks the parser; the rest is its input.
// Invariants: a share that parses encodes back to the same octets; a proof or commitment list
// that is accepted has exactly the fixed length; verification never accepts a proof for points
// that the input chose without the share (it cannot: the check is only that it does not crash,
// and that an accepted proof has a well-formed encoding).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/threshold.h"
#include "fuzz_check.h"

namespace th = blindlist::crypto::threshold;
using blindlist::Bytes;
using blindlist::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  ByteView in(data + 1, size - 1);
  switch (selector % 4) {
    case 0: {
      auto share = th::ParseShare(in);
      if (share.ok()) {
        const blindlist::SecretBytes back = th::EncodeShare(*share);
        FUZZ_CHECK(back.size() == th::kShareLen, "a parsed share has the fixed length");
        FUZZ_CHECK(back.size() == in.size() &&
                       std::equal(back.data(), back.data() + back.size(), in.begin()),
                   "a parsed share encodes back to its octets");
        FUZZ_CHECK(share->index >= 1 && share->index <= share->n && share->k >= 2 &&
                       share->k <= share->n && share->n <= th::kMaxNodes,
                   "share parameters in range");
      }
      break;
    }
    case 1: {
      const auto status = th::CheckProofEncoding(in);
      FUZZ_CHECK(!status.ok() || in.size() == th::kProofLen, "a proof has the fixed length");
      break;
    }
    case 2: {
      const int k = 2 + (selector >> 2) % 15;
      auto commitments = th::ParseCommitments(in, k);
      if (commitments.ok()) {
        FUZZ_CHECK(commitments->size() == static_cast<std::size_t>(k), "k commitments");
        FUZZ_CHECK(th::EncodeCommitments(*commitments) == Bytes(in.begin(), in.end()),
                   "commitments encode back to their octets");
      }
      break;
    }
    default: {
      // D, B, Z as compressed points, then the proof.
      if (in.size() < 3 * th::kPointLen) return 0;
      const ByteView d = in.first(th::kPointLen);
      const ByteView b = in.subspan(th::kPointLen, th::kPointLen);
      const ByteView z = in.subspan(2 * th::kPointLen, th::kPointLen);
      const ByteView proof = in.subspan(3 * th::kPointLen);
      const auto status = th::VerifyEvaluation(d, b, z, proof);
      FUZZ_CHECK(!status.ok() || proof.size() == th::kProofLen, "an accepted proof is 64 octets");
      (void)th::NormalizePoint(b);
      // The same octets as a batch of one, and (selector bit 2) the proof's first 64 octets as
      // a share signature over the rest.
      const Bytes bb(b.begin(), b.end());
      const Bytes zz(z.begin(), z.end());
      const auto batch =
          th::VerifyBatch(d, std::span<const Bytes>(&bb, 1), std::span<const Bytes>(&zz, 1), proof);
      FUZZ_CHECK(!batch.ok() || proof.size() == th::kProofLen, "an accepted batch proof is 64");
      if ((selector & 4U) != 0 && proof.size() >= th::kProofLen) {
        (void)th::VerifyShareSignature(d, proof.subspan(th::kProofLen), proof.first(th::kProofLen));
      }
      break;
    }
  }
  return 0;
}
