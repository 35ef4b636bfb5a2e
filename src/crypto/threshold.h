// Threshold P-256 (docs/threshold.md): Shamir shares of a group scalar d over the group order q,
// Feldman commitments, Lagrange combination at 0, and Chaum-Pedersen DLEQ proofs made
// non-interactive with Fiat-Shamir over SHA-256 (the shape of RFC 9497 section 2.2).
//
//   Split:     f(x) = d + a_1·x + ... + a_{k-1}·x^{k-1} mod q; node i holds d_i = f(i),
//              everyone may see C_j = a_j·G (C_0 = d·G, the group public key) and D_i = d_i·G.
//   Evaluate:  node i answers Z_i = d_i·B for a blinded point B, with a proof that
//              log_G(D_i) = log_B(Z_i).
//   Combine:   d·B = sum over a set S of k indices of lambda_i·Z_i, lambda_i = prod_{j in S, j !=
//   i}
//              j / (j - i) mod q.
//
// Every point in our own encodings is compressed SEC1 (33 octets); B, from the member, may be
// compressed or uncompressed. Encodings are fixed-length and parsed strictly: a scalar must lie
// in [1, q-1] (a proof's c and s in [0, q-1]), an index in [1, n], 2 <= k <= n <= 16.
// Thread-safety: free functions over values; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/keys.h"

namespace blindlist::crypto::threshold {

inline constexpr std::size_t kScalarLen = 32;
inline constexpr std::size_t kPointLen = 33;  // compressed SEC1
inline constexpr std::size_t kProofLen = 2 * kScalarLen;
inline constexpr std::size_t kShareLen = 4 + kScalarLen;  // version, index, k, n, scalar
inline constexpr int kMaxNodes = 16;

// One node's share: d_i = f(i) for i = index.
struct Share {
  std::uint8_t index = 0;
  std::uint8_t k = 0;
  std::uint8_t n = 0;
  SecretBytes scalar;  // kScalarLen octets, big-endian
};

// The dealer's output. commitments[j] = a_j·G; public_shares[i-1] = D_i.
struct Dealing {
  std::vector<Share> shares;
  std::vector<Bytes> commitments;
  std::vector<Bytes> public_shares;
};

// One node's answer to a blinded point, with the node's index.
struct Partial {
  std::uint8_t index = 0;
  Bytes point;  // Z_i, compressed
};

// The scalar of a P-256 private key (kScalarLen octets), and a P-256 key made from one.
Result<SecretBytes> ScalarOf(const PrivateKey& key);
Result<PrivateKey> KeyFromScalar(const SecretBytes& scalar);
// The public point of a P-256 key or certificate, compressed.
Result<Bytes> PublicPointOf(const Certificate& cert);

// The DER SubjectPublicKeyInfo of a P-256 public point (what a group certificate carries).
Result<Bytes> SpkiOfPoint(ByteView point);

// Splits `secret` (a scalar in [1, q-1]) into n shares, any k of which recover it.
Result<Dealing> Split(const SecretBytes& secret, int k, int n);
// A refresh (proactive resharing): n shares of 0, any k of which sum to nothing, and their
// commitments for j >= 1 (commitments[0] is left empty: it would be the point at infinity).
Result<Dealing> SplitZero(int k, int n);
// The commitments after a refresh: C'_0 = C_0, C'_j = C_j + B_j.
Result<std::vector<Bytes>> AddCommitments(std::span<const Bytes> old_commitments,
                                          std::span<const Bytes> zero_commitments);
// d_i + delta_i mod q, for the same index, k and n ("bad-share", also if the sum is 0).
Result<Share> AddShare(const Share& share, const Share& delta);
// -delta_i mod q (undoing a refresh: the refresh by the negated shares, back to the old
// commitments). Errors: "bad-share".
Result<Share> NegateShare(const Share& delta);

// D_index computed from the commitments: sum_j C_j·index^j.
Result<Bytes> ExpectedPublicShare(std::span<const Bytes> commitments, std::uint8_t index);
// Whether `share` matches the commitments (d_i·G == sum_j C_j·i^j). Errors: "bad-share".
Status VerifyShare(const Share& share, std::span<const Bytes> commitments);
// d_i·G, compressed.
Result<Bytes> PublicShareOf(const Share& share);
// lambda_index for the index set `indices` (distinct, in 1..kMaxNodes), as a scalar.
Result<Bytes> LagrangeAtZero(std::span<const std::uint8_t> indices, std::uint8_t index);
// sum lambda_i·Z_i over the partials (distinct indices). With fewer than k partials the result
// is a point, but not d·B. Errors: "bad-share", "bad-point".
Result<Bytes> CombinePartials(std::span<const Partial> partials);
// The secret interpolated at 0 from `shares` (tests and share refresh only).
Result<SecretBytes> InterpolateSecret(std::span<const Share> shares);

// Node side: Z_i = d_i·B and the proof that log_G(D_i) = log_B(Z_i). `blinded` must be a point
// on P-256, not infinity ("bad-point").
struct Evaluation {
  Bytes point;  // Z_i, compressed
  Bytes proof;  // kProofLen: c || s
};
Result<Evaluation> Evaluate(const Share& share, ByteView blinded);
// The same with D_i = d_i·G given (compressed, as PublicShareOf makes it), which a node computes
// once per share rather than per request. A wrong D_i gives a proof no member accepts.
Result<Evaluation> Evaluate(const Share& share, ByteView public_share, ByteView blinded);
// Member side: checks the proof for (D_i, B, Z_i). Errors: "bad-proof", "bad-point".
Status VerifyEvaluation(ByteView public_share, ByteView blinded, ByteView point, ByteView proof);

// Bulk: Z_m = d_i·B_m for every point, with ONE proof for all of them (the composites of RFC
// 9497 section 2.2.1: weights e_m from a hash of D_i and every (B_m, Z_m), M = sum e_m·B_m, and a
// DLEQ proof that log_G(D_i) = log_M(d_i·M)). Per point it costs one scalar multiplication and
// a share of one multi-scalar multiplication, instead of three. Every point must be on P-256
// ("bad-point"): the caller answers bad points on their own first.
struct BatchEvaluation {
  std::vector<Bytes> points;  // Z_m, compressed, in order
  Bytes proof;                // kProofLen
};
Result<BatchEvaluation> EvaluateBatch(const Share& share, ByteView public_share,
                                      std::span<const Bytes> blinded);
// Member side: "bad-proof" unless every Z_m is d_i·B_m (a wrong one passes with probability
// 2^-128); it does not say which one is wrong.
Status VerifyBatch(ByteView public_share, std::span<const Bytes> blinded,
                   std::span<const Bytes> points, ByteView proof);

// A point's compressed form after checking it is on P-256 and not infinity ("bad-point").
Result<Bytes> NormalizePoint(ByteView point);
// The same point uncompressed (65 octets).
Result<Bytes> UncompressedPoint(ByteView point);
// x-coordinate of a point (kScalarLen octets), what BlindRequest::Finish takes.
Result<Bytes> XCoordinate(ByteView point);

SecretBytes EncodeShare(const Share& share);
Result<Share> ParseShare(ByteView data);  // errors: "bad-share"
// A proof must be kProofLen octets with c and s below q ("bad-proof").
Status CheckProofEncoding(ByteView proof);
// k compressed points, concatenated, each on the curve ("bad-commitments").
Bytes EncodeCommitments(std::span<const Bytes> commitments);
Result<std::vector<Bytes>> ParseCommitments(ByteView data, int k);

// ---- share repair: a new node gets f(j) from k helpers (docs/threshold.md, "Node replacement")
//
// Each party of a repair round has a fresh round key (a P-256 key pair). A helper's round key is
// signed with its share (Schnorr, checkable against D_i from the commitments), so a relay cannot
// put its own key in a helper's place. Messages between two parties are sealed under a key both
// derive from their round keys (static-static ECDH, HKDF-SHA256, AES-256-GCM; the context,
// which names the group, the round, the index repaired, the helpers and both ends, is the HKDF
// info and the AAD): only the two ends read a message, and only they can have made it.
struct RoundKey {
  SecretBytes scalar;  // kScalarLen
  Bytes point;         // compressed
};
Result<RoundKey> NewRoundKey();
// scalar·G, compressed ("bad-key" for a scalar out of range).
Result<Bytes> PointOfScalar(const SecretBytes& scalar);
// A Schnorr signature (c || s, kProofLen octets) over `message` (at most 65535 octets) by the
// holder of `share`, whose D_i is `public_share`.
Result<Bytes> SignWithShare(const Share& share, ByteView public_share, ByteView message);
// Errors: "bad-signature", "bad-point".
Status VerifyShareSignature(ByteView public_share, ByteView message, ByteView signature);
// lambda_i(target)·d_i, with lambda over the index set `helpers` (which holds share.index),
// split into helpers.size() uniformly random pieces that sum to it mod q. Errors: "bad-index"
// (target 0, which would be the key, or above n), "bad-helpers" (fewer than k, the target among
// them, an index out of range or repeated).
Result<std::vector<SecretBytes>> RepairPieces(const Share& share,
                                              std::span<const std::uint8_t> helpers,
                                              std::uint8_t target);
// The sum mod q of scalars in [0, q-1] ("bad-piece" for one out of range).
Result<SecretBytes> AddScalars(std::span<const SecretBytes> scalars);
// Seals `plaintext` from the holder of `own_scalar` to the holder of `peer_point`'s scalar, and
// opens it at the other end ("bad-piece": not made for this context by the other end).
Result<Bytes> SealBetween(const SecretBytes& own_scalar, ByteView peer_point,
                          std::string_view context, ByteView plaintext);
Result<SecretBytes> OpenBetween(const SecretBytes& own_scalar, ByteView peer_point,
                                std::string_view context, ByteView sealed);

// ---- key creation without a dealer (docs/threshold.md, "Distributed key generation") ----
//
// Pedersen's DKG with Feldman VSS: node i draws its own f_i of degree k-1 (DealRandom), sends
// f_i(j) to node j sealed between round keys (SealBetween, context DkgContext), and publishes
// C_i,0..C_i,k-1. Node j checks each piece against its dealer's commitments (VerifyShare), sums
// them (SumShares) into d_j = sum_i f_i(j) and the commitments into C_m = sum_i C_i,m
// (SumCommitments); C_0 is the group key, which no party ever holds as a scalar.

// One node's contribution: a fresh random f_i (f_i(0) uniform in [1, q-1]), its pieces f_i(1..n)
// and its commitments C_i,0..C_i,k-1 (all k of them, C_i,0 included).
Result<Dealing> DealRandom(int k, int n);
// C_m = sum_i C_i,m over every node's commitments (each k points). Errors: "bad-commitments"
// (lengths differ, fewer than 2 nodes, a point off the curve, a sum at infinity).
Result<std::vector<Bytes>> SumCommitments(std::span<const std::vector<Bytes>> per_node);
// d_j = sum_i f_i(j) over the pieces node j received (all for the same index, k and n; at least
// 2). Errors: "bad-share" (mixed index, k or n, a scalar out of range, a sum of 0).
Result<Share> SumShares(std::span<const Share> pieces);
// What node `index` signs in round 1 with its TLS server key: the group, the round, k, n, its
// index and URL, its round key and its commitments (one line per field, each value length-prefixed,
// binary values in hex).
std::string DkgStartMessage(std::string_view group, std::string_view round, int k, int n,
                            std::uint8_t index, std::string_view node_url, ByteView round_key,
                            std::span<const Bytes> commitments);
// The digest of one view of a round: SHA-256 over a tag, the group, the round, k, n, the node URLs
// and every node's start message (DkgStartMessage) in index order, each value length-prefixed.
// Two nodes with the same digest sum the same commitments, so reach the same group key.
Bytes DkgViewDigest(std::string_view group, std::string_view round, int k,
                    std::span<const std::string> node_urls,
                    std::span<const std::string> start_messages);
// What node `index` signs in round 2 with its TLS server key: the group, the round, its index and
// the digest of the one view it dealt on (each value length-prefixed).
std::string DkgDealMessage(std::string_view group, std::string_view round, std::uint8_t index,
                           ByteView view_digest);
// What node `index` signs in round 3 with its TLS server key once it has checked every piece dealt
// to it against its dealer's commitments: the group, the round, its index, the digest of the view
// and of the summed commitments (SHA-256 of EncodeCommitments), each value length-prefixed. No
// node stores the group before it holds this message signed by every node of the view.
std::string DkgAcceptMessage(std::string_view group, std::string_view round, std::uint8_t index,
                             ByteView view_digest, std::span<const Bytes> summed_commitments);
// The sealing context (HKDF info and AAD) of the piece f_from(to), dealt on the view
// `view_digest`: a piece opens only at a node that recomputes the same view.
std::string DkgPieceContext(std::string_view group, std::string_view round, std::uint8_t from,
                            std::uint8_t to, ByteView view_digest);

// Overwrites a string that held secret text (OPENSSL_cleanse: not optimised away); its length
// stays.
void WipeText(std::string& text);

}  // namespace blindlist::crypto::threshold
