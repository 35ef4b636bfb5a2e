#include "crypto/threshold.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "crypto/blind.h"
#include "crypto/cms.h"
#include "crypto/test_support.h"

namespace blindlist::crypto::threshold {
namespace {

using testkit::ErrorCode;
using testkit::Hex;
using testkit::Unwrap;

// q, the order of P-256, big-endian.
const Bytes& Order() {
  static const Bytes q = Hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
  return q;
}

SecretBytes FreshScalar() {
  PrivateKey key = Unwrap(PrivateKey::Generate(KeyType::kEcP256), "keygen");
  return Unwrap(ScalarOf(key), "scalar");
}

// A random point: the public share of a throwaway share.
Bytes RandomPoint() {
  Share s{1, 2, 2, FreshScalar()};
  return Unwrap(PublicShareOf(s), "point");
}

// d·B, computed as a one-share evaluation (the scalar itself as the share).
Bytes Times(const SecretBytes& d, const Bytes& b) {
  Share whole{1, 2, 2, d};
  return Unwrap(Evaluate(whole, b), "d·B").point;
}

std::vector<Partial> PartialsFor(const Dealing& dealing, const std::vector<int>& nodes,
                                 const Bytes& b) {
  std::vector<Partial> out;
  out.reserve(nodes.size());
  for (int i : nodes) {
    const Share& s = dealing.shares[static_cast<std::size_t>(i - 1)];
    Evaluation e = Unwrap(Evaluate(s, b), "evaluate");
    EXPECT_TRUE(VerifyEvaluation(dealing.public_shares[static_cast<std::size_t>(i - 1)], b, e.point,
                                 e.proof)
                    .ok());
    out.push_back(Partial{s.index, e.point});
  }
  return out;
}

TEST(Threshold, AnyKSharesRecoverAndKMinusOneDoNot) {
  std::mt19937 rng(14);
  const std::vector<std::pair<int, int>> params{{2, 2}, {2, 3},  {3, 5},  {4, 7},
                                                {5, 5}, {5, 16}, {2, 16}, {3, 3}};
  for (auto [k, n] : params) {
    SCOPED_TRACE("k=" + std::to_string(k) + " n=" + std::to_string(n));
    const SecretBytes d = FreshScalar();
    Dealing dealing = Unwrap(Split(d, k, n), "split");
    ASSERT_EQ(dealing.shares.size(), static_cast<std::size_t>(n));
    ASSERT_EQ(dealing.commitments.size(), static_cast<std::size_t>(k));
    Share whole{1, 2, 2, d};
    EXPECT_EQ(dealing.commitments[0], Unwrap(PublicShareOf(whole), "C_0 = d·G"));
    for (std::size_t i = 0; i < dealing.shares.size(); ++i) {
      EXPECT_TRUE(VerifyShare(dealing.shares[i], dealing.commitments).ok());
      EXPECT_EQ(dealing.public_shares[i],
                Unwrap(ExpectedPublicShare(dealing.commitments, dealing.shares[i].index), "D_i"));
    }
    const Bytes b = RandomPoint();
    const Bytes want = Times(d, b);
    std::vector<int> all(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i + 1;
    for (int trial = 0; trial < 6; ++trial) {
      std::shuffle(all.begin(), all.end(), rng);
      std::vector<int> pick(all.begin(), all.begin() + k);
      std::vector<Partial> partials = PartialsFor(dealing, pick, b);
      EXPECT_EQ(Unwrap(CombinePartials(partials), "combine"), want);
      std::vector<Share> shares;
      shares.reserve(pick.size());
      for (int i : pick) shares.push_back(dealing.shares[static_cast<std::size_t>(i - 1)]);
      EXPECT_EQ(Unwrap(InterpolateSecret(shares), "interpolate"), d);
      // k - 1 of them: a point, and the wrong one; the scalar is wrong too.
      partials.pop_back();
      shares.pop_back();
      EXPECT_NE(Unwrap(CombinePartials(partials), "combine k-1"), want);
      EXPECT_NE(Unwrap(InterpolateSecret(shares), "interpolate k-1"), d);
    }
    // More than k shares recover too.
    EXPECT_EQ(Unwrap(CombinePartials(PartialsFor(dealing, all, b)), "combine n"), want);
  }
}

TEST(Threshold, RefusesBadParameters) {
  const SecretBytes d = FreshScalar();
  EXPECT_EQ(ErrorCode(Split(d, 1, 3)), "bad-threshold");
  EXPECT_EQ(ErrorCode(Split(d, 4, 3)), "bad-threshold");
  EXPECT_EQ(ErrorCode(Split(d, 2, 17)), "bad-threshold");
  EXPECT_EQ(ErrorCode(Split(SecretBytes(kScalarLen), 2, 3)), "bad-share");  // d = 0
  Dealing dealing = Unwrap(Split(d, 2, 3), "split");
  const Bytes b = RandomPoint();
  std::vector<Partial> same_index = PartialsFor(dealing, {1, 1}, b);
  EXPECT_EQ(ErrorCode(CombinePartials(same_index)), "bad-share");
  std::vector<std::uint8_t> set{1, 2};
  EXPECT_EQ(ErrorCode(LagrangeAtZero(set, 3)), "bad-share");
}

TEST(Threshold, ShareVerificationCatchesWrongShares) {
  Dealing dealing = Unwrap(Split(FreshScalar(), 3, 5), "split");
  Share bad = dealing.shares[1];
  bad.scalar[kScalarLen - 1] ^= 0x01;
  EXPECT_EQ(ErrorCode(VerifyShare(bad, dealing.commitments)), "bad-share");
  Share moved = dealing.shares[1];
  moved.index = 3;
  EXPECT_EQ(ErrorCode(VerifyShare(moved, dealing.commitments)), "bad-share");
  Dealing other = Unwrap(Split(FreshScalar(), 3, 5), "split");
  EXPECT_EQ(ErrorCode(VerifyShare(dealing.shares[0], other.commitments)), "bad-share");
}

TEST(Threshold, ProofsBindEveryPoint) {
  Dealing dealing = Unwrap(Split(FreshScalar(), 2, 3), "split");
  const Share& s = dealing.shares[0];
  const Bytes& di = dealing.public_shares[0];
  const Bytes b = RandomPoint();
  Evaluation e = Unwrap(Evaluate(s, b), "evaluate");
  ASSERT_EQ(e.proof.size(), kProofLen);
  EXPECT_TRUE(VerifyEvaluation(di, b, e.point, e.proof).ok());
  // Fresh randomness each time, and both proofs hold.
  Evaluation e2 = Unwrap(Evaluate(s, b), "evaluate again");
  EXPECT_EQ(e.point, e2.point);
  EXPECT_NE(e.proof, e2.proof);
  for (std::size_t i = 0; i < kProofLen; i += 7) {
    Bytes tampered = e.proof;
    tampered[i] ^= 0x20;
    EXPECT_FALSE(VerifyEvaluation(di, b, e.point, tampered).ok()) << "octet " << i;
  }
  // The proof for another B, for another node's D, and a wrong Z all fail.
  const Bytes other_b = RandomPoint();
  EXPECT_EQ(ErrorCode(VerifyEvaluation(di, other_b, e.point, e.proof)), "bad-proof");
  EXPECT_EQ(ErrorCode(VerifyEvaluation(dealing.public_shares[1], b, e.point, e.proof)),
            "bad-proof");
  Evaluation other_node = Unwrap(Evaluate(dealing.shares[1], b), "evaluate node 2");
  EXPECT_EQ(ErrorCode(VerifyEvaluation(di, b, other_node.point, e.proof)), "bad-proof");
  // A lying node that answers a random point with its own proof attempt cannot verify.
  Evaluation liar = Unwrap(Evaluate(Share{1, 2, 2, FreshScalar()}, b), "liar");
  EXPECT_EQ(ErrorCode(VerifyEvaluation(di, b, liar.point, liar.proof)), "bad-proof");
  // Uncompressed and compressed B are the same B.
  Bytes b_uncompressed;
  {
    PrivateKey key = Unwrap(PrivateKey::Generate(KeyType::kEcP256), "keygen");
    const Bytes spki = key.PublicKeyDer();
    b_uncompressed.assign(spki.end() - 65, spki.end());
  }
  Evaluation eu = Unwrap(Evaluate(s, b_uncompressed), "evaluate uncompressed");
  EXPECT_TRUE(
      VerifyEvaluation(di, Unwrap(NormalizePoint(b_uncompressed), "norm"), eu.point, eu.proof)
          .ok());
}

TEST(Threshold, EvaluateWithGivenPublicShare) {
  Dealing dealing = Unwrap(Split(FreshScalar(), 2, 3), "split");
  const Share& s = dealing.shares[0];
  const Bytes& di = dealing.public_shares[0];
  const Bytes b = RandomPoint();
  const Bytes b_uncompressed = Unwrap(UncompressedPoint(b), "uncompressed");
  ASSERT_EQ(b_uncompressed.size(), 65U);
  for (const Bytes& given : {b, b_uncompressed}) {
    Evaluation e = Unwrap(Evaluate(s, di, given), "evaluate with D_i");
    EXPECT_EQ(e.point, Unwrap(Evaluate(s, given), "evaluate").point);
    EXPECT_TRUE(VerifyEvaluation(di, b, e.point, e.proof).ok());
  }
  // A node given another D_i (a corrupt cache) answers with a proof no member accepts.
  Evaluation wrong = Unwrap(Evaluate(s, dealing.public_shares[1], b), "evaluate wrong D_i");
  EXPECT_EQ(ErrorCode(VerifyEvaluation(di, b, wrong.point, wrong.proof)), "bad-proof");
  EXPECT_EQ(ErrorCode(Evaluate(s, Bytes(65, 0x04), b)), "bad-point");
  EXPECT_EQ(ErrorCode(Evaluate(s, di, Bytes{0x00})), "bad-point");
}

TEST(Threshold, EvaluateRefusesBadPoints) {
  Dealing dealing = Unwrap(Split(FreshScalar(), 2, 3), "split");
  const Share& s = dealing.shares[0];
  EXPECT_EQ(ErrorCode(Evaluate(s, Bytes{0x00})), "bad-point");
  EXPECT_EQ(ErrorCode(Evaluate(s, Bytes{})), "bad-point");
  Bytes off_curve(65, 0);
  off_curve[0] = 0x04;
  off_curve[32] = 1;
  off_curve[64] = 1;
  EXPECT_EQ(ErrorCode(Evaluate(s, off_curve)), "bad-point");
  Bytes bad_x(33, 0xff);
  bad_x[0] = 0x02;
  EXPECT_EQ(ErrorCode(Evaluate(s, bad_x)), "bad-point");
}

TEST(Threshold, EncodingsAreStrict) {
  Dealing dealing = Unwrap(Split(FreshScalar(), 3, 4), "split");
  const SecretBytes secret_enc = EncodeShare(dealing.shares[2]);
  const Bytes enc(secret_enc.data(), secret_enc.data() + secret_enc.size());
  ASSERT_EQ(enc.size(), kShareLen);
  Share back = Unwrap(ParseShare(enc), "parse");
  EXPECT_EQ(back.index, 3);
  EXPECT_EQ(back.k, 3);
  EXPECT_EQ(back.n, 4);
  EXPECT_EQ(back.scalar, dealing.shares[2].scalar);
  auto with = [&](std::size_t at, std::uint8_t v) {
    Bytes b = enc;
    b[at] = v;
    return b;
  };
  EXPECT_EQ(ErrorCode(ParseShare(with(0, 2))), "bad-share");   // version
  EXPECT_EQ(ErrorCode(ParseShare(with(1, 0))), "bad-share");   // index 0
  EXPECT_EQ(ErrorCode(ParseShare(with(1, 5))), "bad-share");   // index > n
  EXPECT_EQ(ErrorCode(ParseShare(with(2, 1))), "bad-share");   // k = 1
  EXPECT_EQ(ErrorCode(ParseShare(with(2, 5))), "bad-share");   // k > n
  EXPECT_EQ(ErrorCode(ParseShare(with(3, 17))), "bad-share");  // n > 16
  EXPECT_EQ(ErrorCode(ParseShare(Bytes(enc.begin(), enc.end() - 1))), "bad-share");
  Bytes longer = enc;
  longer.push_back(0);
  EXPECT_EQ(ErrorCode(ParseShare(longer)), "bad-share");
  Bytes zero = enc;
  std::fill(zero.begin() + 4, zero.end(), 0);
  EXPECT_EQ(ErrorCode(ParseShare(zero)), "bad-share");
  Bytes q = enc;
  std::copy(Order().begin(), Order().end(), q.begin() + 4);
  EXPECT_EQ(ErrorCode(ParseShare(q)), "bad-share");

  // Proofs: 64 octets, c and s below q.
  Evaluation e = Unwrap(Evaluate(dealing.shares[0], RandomPoint()), "evaluate");
  EXPECT_TRUE(CheckProofEncoding(e.proof).ok());
  EXPECT_EQ(ErrorCode(CheckProofEncoding(Bytes(63, 0))), "bad-proof");
  Bytes big_s = e.proof;
  std::copy(Order().begin(), Order().end(), big_s.begin() + kScalarLen);
  EXPECT_EQ(ErrorCode(CheckProofEncoding(big_s)), "bad-proof");

  // Commitments: k compressed points exactly.
  const Bytes commitments = EncodeCommitments(dealing.commitments);
  EXPECT_EQ(Unwrap(ParseCommitments(commitments, 3), "commitments"), dealing.commitments);
  EXPECT_EQ(ErrorCode(ParseCommitments(commitments, 2)), "bad-commitments");
  Bytes broken = commitments;
  broken[kPointLen] = 0x04;
  EXPECT_EQ(ErrorCode(ParseCommitments(broken, 3)), "bad-commitments");
}

TEST(Threshold, RefreshKeepsTheKeyAndRetiresOldShares) {
  const SecretBytes d = FreshScalar();
  Dealing old = Unwrap(Split(d, 2, 3), "split");
  Dealing zero = Unwrap(SplitZero(2, 3), "split zero");
  EXPECT_TRUE(zero.commitments[0].empty());
  Dealing fresh;
  fresh.commitments = Unwrap(AddCommitments(old.commitments, zero.commitments), "commitments");
  EXPECT_EQ(fresh.commitments[0], old.commitments[0]);
  EXPECT_NE(fresh.commitments[1], old.commitments[1]);
  for (std::size_t i = 0; i < 3; ++i) {
    fresh.shares.push_back(Unwrap(AddShare(old.shares[i], zero.shares[i]), "add"));
    EXPECT_TRUE(VerifyShare(fresh.shares[i], fresh.commitments).ok());
    EXPECT_FALSE(VerifyShare(old.shares[i], fresh.commitments).ok());
    fresh.public_shares.push_back(Unwrap(PublicShareOf(fresh.shares[i]), "D_i"));
  }
  const Bytes b = RandomPoint();
  const Bytes want = Times(d, b);
  EXPECT_EQ(Unwrap(CombinePartials(PartialsFor(fresh, {1, 3}, b)), "new"), want);
  // One old share and one new one: no longer the key.
  std::vector<Partial> mixed = PartialsFor(old, {1}, b);
  mixed.push_back(PartialsFor(fresh, {3}, b)[0]);
  EXPECT_NE(Unwrap(CombinePartials(mixed), "mixed"), want);
  EXPECT_EQ(ErrorCode(AddShare(old.shares[0], zero.shares[1])), "bad-share");
}

TEST(Threshold, NegatedRefreshUndoesIt) {
  Dealing dealing = Unwrap(Split(FreshScalar(), 2, 3), "split");
  Dealing zero = Unwrap(SplitZero(2, 3), "split zero");
  const auto fresh = Unwrap(AddCommitments(dealing.commitments, zero.commitments), "add");
  for (std::size_t i = 0; i < 3; ++i) {
    Share moved = Unwrap(AddShare(dealing.shares[i], zero.shares[i]), "refresh");
    EXPECT_TRUE(VerifyShare(moved, fresh).ok());
    Share back = Unwrap(AddShare(moved, Unwrap(NegateShare(zero.shares[i]), "negate")), "undo");
    EXPECT_EQ(back.scalar.view().size(), kScalarLen);
    EXPECT_TRUE(ConstantTimeEqual(back.scalar.view(), dealing.shares[i].scalar.view()));
    EXPECT_TRUE(VerifyShare(back, dealing.commitments).ok());
  }
}

// A repair (Laing-Stinson): helpers {1, 3} of k = 2, n = 3 give index 2 its share f(2); each
// helper's pieces sum to lambda_i(2)·d_i, and all pieces together to f(2), never to d.
TEST(Threshold, RepairGivesTheMissingShare) {
  for (const std::vector<std::uint8_t>& helpers :
       {std::vector<std::uint8_t>{1, 3}, std::vector<std::uint8_t>{3, 1}}) {
    const SecretBytes d = FreshScalar();
    Dealing dealing = Unwrap(Split(d, 2, 3), "split");
    std::vector<SecretBytes> all;
    for (std::uint8_t h : helpers) {
      auto pieces = Unwrap(RepairPieces(dealing.shares[h - 1], helpers, 2), "pieces");
      ASSERT_EQ(pieces.size(), helpers.size());
      for (auto& p : pieces) all.push_back(std::move(p));
    }
    const SecretBytes sum = Unwrap(AddScalars(all), "sum");
    EXPECT_TRUE(sum == dealing.shares[1].scalar);
    Share repaired{2, 2, 3, sum};
    EXPECT_TRUE(VerifyShare(repaired, dealing.commitments).ok());
    // A piece set short of one helper's does not give it.
    auto one = Unwrap(RepairPieces(dealing.shares[helpers[0] - 1], helpers, 2), "pieces");
    EXPECT_FALSE(Unwrap(AddScalars(one), "sum") == dealing.shares[1].scalar);
  }
  const Dealing dealing = Unwrap(Split(FreshScalar(), 2, 3), "split");
  const std::vector<std::uint8_t> helpers{1, 2};
  EXPECT_EQ(ErrorCode(RepairPieces(dealing.shares[0], helpers, 0)), "bad-index");
  EXPECT_EQ(ErrorCode(RepairPieces(dealing.shares[0], helpers, 4)), "bad-index");
  EXPECT_EQ(ErrorCode(RepairPieces(dealing.shares[0], helpers, 2)), "bad-helpers");
  EXPECT_EQ(ErrorCode(RepairPieces(dealing.shares[0], std::vector<std::uint8_t>{1}, 3)),
            "bad-helpers");
}

TEST(Threshold, ShareSignaturesBindKeyAndMessage) {
  const Dealing dealing = Unwrap(Split(FreshScalar(), 2, 3), "split");
  const Bytes message = ToBytes("round key of index 1");
  const Bytes sig =
      Unwrap(SignWithShare(dealing.shares[0], dealing.public_shares[0], message), "sign");
  EXPECT_TRUE(VerifyShareSignature(dealing.public_shares[0], message, sig).ok());
  EXPECT_EQ(ErrorCode(VerifyShareSignature(dealing.public_shares[1], message, sig)),
            "bad-signature");
  EXPECT_EQ(ErrorCode(VerifyShareSignature(dealing.public_shares[0], ToBytes("another"), sig)),
            "bad-signature");
  Bytes flipped = sig;
  flipped[40] ^= 1;
  EXPECT_EQ(ErrorCode(VerifyShareSignature(dealing.public_shares[0], message, flipped)),
            "bad-signature");
  EXPECT_EQ(ErrorCode(VerifyShareSignature(dealing.public_shares[0], message, Order())),
            "bad-signature");
}

TEST(Threshold, SealBetweenRoundKeys) {
  const RoundKey a = Unwrap(NewRoundKey(), "a");
  const RoundKey b = Unwrap(NewRoundKey(), "b");
  const RoundKey m = Unwrap(NewRoundKey(), "mallory");
  EXPECT_EQ(Unwrap(PointOfScalar(a.scalar), "point"), a.point);
  const SecretBytes piece = FreshScalar();
  const Bytes sealed = Unwrap(SealBetween(a.scalar, b.point, "ctx 1->2", piece.view()), "seal");
  EXPECT_TRUE(Unwrap(OpenBetween(b.scalar, a.point, "ctx 1->2", sealed), "open") == piece);
  EXPECT_EQ(ErrorCode(OpenBetween(b.scalar, a.point, "ctx 2->1", sealed)), "bad-piece");
  EXPECT_EQ(ErrorCode(OpenBetween(m.scalar, a.point, "ctx 1->2", sealed)), "bad-piece");
  // Anyone may seal to b, but not as a: b opens with a's point only what a made.
  const Bytes forged = Unwrap(SealBetween(m.scalar, b.point, "ctx 1->2", piece.view()), "forge");
  EXPECT_EQ(ErrorCode(OpenBetween(b.scalar, a.point, "ctx 1->2", forged)), "bad-piece");
  std::string text = "secret text";
  WipeText(text);
  EXPECT_EQ(text, std::string(11, '\0'));
}

// A batch proof covers every point at once, and any one wrong answer, or any change, breaks it.
TEST(Threshold, BatchProofsCoverEveryPoint) {
  const Dealing dealing = Unwrap(Split(FreshScalar(), 2, 3), "split");
  const Share& share = dealing.shares[1];
  const Bytes& d = dealing.public_shares[1];
  std::vector<Bytes> points;
  points.reserve(5);
  for (int i = 0; i < 5; ++i) points.push_back(RandomPoint());
  points[2] = Unwrap(UncompressedPoint(points[2]), "uncompressed");  // members send these
  const BatchEvaluation batch = Unwrap(EvaluateBatch(share, d, points), "batch");
  ASSERT_EQ(batch.points.size(), points.size());
  EXPECT_TRUE(VerifyBatch(d, points, batch.points, batch.proof).ok());
  for (std::size_t m = 0; m < points.size(); ++m)
    EXPECT_EQ(batch.points[m], Unwrap(Evaluate(share, d, points[m]), "single").point);
  std::vector<Bytes> wrong = batch.points;
  wrong[3] = Unwrap(Evaluate(dealing.shares[0], points[3]), "other node").point;
  EXPECT_EQ(ErrorCode(VerifyBatch(d, points, wrong, batch.proof)), "bad-proof");
  std::vector<Bytes> swapped = batch.points;
  std::swap(swapped[0], swapped[1]);
  EXPECT_EQ(ErrorCode(VerifyBatch(d, points, swapped, batch.proof)), "bad-proof");
  EXPECT_EQ(ErrorCode(VerifyBatch(dealing.public_shares[0], points, batch.points, batch.proof)),
            "bad-proof");
  const std::span<const Bytes> fewer(points.data(), 4);
  EXPECT_EQ(
      ErrorCode(VerifyBatch(d, fewer, std::span<const Bytes>(batch.points.data(), 4), batch.proof)),
      "bad-proof");
  // A single point's proof is not a batch proof of one point, nor the other way round.
  const Evaluation one = Unwrap(Evaluate(share, d, points[0]), "single");
  EXPECT_FALSE(
      VerifyBatch(d, fewer.first(1), std::span<const Bytes>(&one.point, 1), one.proof).ok());
  const BatchEvaluation solo = Unwrap(EvaluateBatch(share, d, fewer.first(1)), "solo");
  EXPECT_TRUE(VerifyBatch(d, fewer.first(1), solo.points, solo.proof).ok());
  EXPECT_FALSE(VerifyEvaluation(d, points[0], solo.points[0], solo.proof).ok());
  const std::vector<Bytes> bad{points[0], Bytes{0x02, 0xff}};
  EXPECT_EQ(ErrorCode(EvaluateBatch(share, d, bad)), "bad-point");
}

TEST(Threshold, KeyScalarRoundTrip) {
  PrivateKey key = Unwrap(PrivateKey::Generate(KeyType::kEcP256), "keygen");
  const SecretBytes d = Unwrap(ScalarOf(key), "scalar");
  PrivateKey back = Unwrap(KeyFromScalar(d), "from scalar");
  EXPECT_EQ(back.PublicKeyDer(), key.PublicKeyDer());
  Share whole{1, 2, 2, d};
  EXPECT_EQ(Unwrap(SpkiOfPoint(Unwrap(PublicShareOf(whole), "point")), "spki"), key.PublicKeyDer());
  EXPECT_EQ(ErrorCode(KeyFromScalar(SecretBytes(kScalarLen))), "bad-share");
}

// The whole read: a post to an ordinary P-256 certificate, opened by 2 of 3 shares of its key.
TEST(Threshold, OpensAKariPostWithTwoOfThree) {
  const auto& id = testkit::TestPki::Get().p256();
  const Bytes content = ToBytes("Content-Type: text/plain\r\n\r\nthreshold\r\n");
  const Bytes message = Unwrap(Encrypt(content, {id.cert}, {}, EncryptOptions{}), "encrypt");
  const Envelope env = Unwrap(Envelope::Parse(message), "parse");
  const SecretBytes want = Unwrap(UnwrapCek(env.recipients[0], id.key), "direct unwrap");
  Dealing dealing = Unwrap(Split(Unwrap(ScalarOf(id.key), "scalar"), 2, 3), "split");
  EXPECT_EQ(dealing.commitments[0], Unwrap(PublicPointOf(id.cert), "public point"));
  for (const std::vector<int>& pick : std::vector<std::vector<int>>{{1, 2}, {1, 3}, {3, 2}}) {
    BlindRequest req = Unwrap(BlindRequest::Create(env.recipients[0], id.cert), "blind");
    const Bytes b = Unwrap(NormalizePoint(req.blinded()), "B");
    const Bytes combined = Unwrap(CombinePartials(PartialsFor(dealing, pick, b)), "combine");
    EXPECT_EQ(Unwrap(req.Finish(Unwrap(XCoordinate(combined), "x")), "finish"), want);
  }
  BlindRequest req = Unwrap(BlindRequest::Create(env.recipients[0], id.cert), "blind");
  const Bytes b = Unwrap(NormalizePoint(req.blinded()), "B");
  const Bytes one = Unwrap(CombinePartials(PartialsFor(dealing, {2}, b)), "one share");
  EXPECT_FALSE(req.Finish(Unwrap(XCoordinate(one), "x")).ok());
}

// Distributed key generation: three nodes each deal a random polynomial; the summed shares
// recover the sum of the constant terms, whose point is the summed C_0.
TEST(ThresholdDkg, SharesOfTheSummedPolynomialMatchTheSummedCommitments) {
  constexpr int kK = 2;
  constexpr int kN = 3;
  std::vector<Dealing> dealings;
  std::vector<std::vector<Bytes>> commitments;
  for (int i = 0; i < kN; ++i) {
    dealings.push_back(Unwrap(DealRandom(kK, kN), "deal"));
    ASSERT_EQ(dealings.back().commitments.size(), static_cast<std::size_t>(kK));
    commitments.push_back(dealings.back().commitments);
  }
  const auto group = Unwrap(SumCommitments(commitments), "sum commitments");
  std::vector<Share> shares;
  for (int j = 1; j <= kN; ++j) {
    std::vector<Share> pieces;
    for (const auto& d : dealings) {
      const Share& piece = d.shares[static_cast<std::size_t>(j - 1)];
      ASSERT_TRUE(VerifyShare(piece, d.commitments).ok());
      pieces.push_back(Share{piece.index, piece.k, piece.n, SecretBytes(piece.scalar.view())});
    }
    shares.push_back(Unwrap(SumShares(pieces), "sum shares"));
    EXPECT_TRUE(VerifyShare(shares.back(), group).ok());
  }
  std::vector<Share> two;
  two.push_back(Share{shares[0].index, kK, kN, SecretBytes(shares[0].scalar.view())});
  two.push_back(Share{shares[2].index, kK, kN, SecretBytes(shares[2].scalar.view())});
  const SecretBytes d = Unwrap(InterpolateSecret(two), "interpolate");
  EXPECT_EQ(Unwrap(PointOfScalar(d), "point"), group[0]);
}

TEST(ThresholdDkg, APieceFromAnotherPolynomialIsRefused) {
  const Dealing a = Unwrap(DealRandom(2, 3), "deal a");
  const Dealing b = Unwrap(DealRandom(2, 3), "deal b");
  EXPECT_EQ(ErrorCode(VerifyShare(a.shares[1], b.commitments)), "bad-share");
}

TEST(ThresholdDkg, SumsRefuseMixedInputs) {
  const Dealing a = Unwrap(DealRandom(2, 3), "deal a");
  const Dealing b = Unwrap(DealRandom(3, 3), "deal b");
  std::vector<std::vector<Bytes>> mixed{a.commitments, b.commitments};
  EXPECT_EQ(ErrorCode(SumCommitments(mixed)), "bad-commitments");
  std::vector<std::vector<Bytes>> one{a.commitments};
  EXPECT_EQ(ErrorCode(SumCommitments(one)), "bad-commitments");
  std::vector<Share> pieces;
  pieces.push_back(Share{a.shares[0].index, 2, 3, SecretBytes(a.shares[0].scalar.view())});
  pieces.push_back(Share{a.shares[1].index, 2, 3, SecretBytes(a.shares[1].scalar.view())});
  EXPECT_EQ(ErrorCode(SumShares(pieces)), "bad-share");  // pieces for two different indices
  // A commitment and its negation sum to infinity.
  Dealing c = Unwrap(DealRandom(2, 3), "deal c");
  std::vector<Bytes> negated = c.commitments;
  for (auto& p : negated) p[0] ^= 1;  // 02 <-> 03: the same x, the other y
  std::vector<std::vector<Bytes>> cancel{c.commitments, negated};
  EXPECT_EQ(ErrorCode(SumCommitments(cancel)), "bad-commitments");
  EXPECT_EQ(ErrorCode(DealRandom(1, 3)), "bad-threshold");
}

TEST(ThresholdDkg, SignedMessagesNameEveryField) {
  const Dealing a = Unwrap(DealRandom(2, 3), "deal");
  const Bytes key = RandomPoint();
  const std::string m = DkgStartMessage("g", "r", 2, 3, 1, "https://a", key, a.commitments);
  EXPECT_NE(m, DkgStartMessage("g", "r", 2, 3, 2, "https://a", key, a.commitments));
  EXPECT_NE(m, DkgStartMessage("g", "r", 2, 3, 1, "https://b", key, a.commitments));
  EXPECT_NE(m, DkgStartMessage("g", "r2", 2, 3, 1, "https://a", key, a.commitments));
  EXPECT_NE(m, DkgStartMessage("g", "r", 2, 3, 1, "https://a", RandomPoint(), a.commitments));
  // A value cannot carry the next field: lengths are part of the message.
  EXPECT_NE(DkgStartMessage("g\nround=1:r", "r", 2, 3, 1, "u", key, a.commitments),
            DkgStartMessage("g", "r", 2, 3, 1, "u", key, a.commitments));
  const Bytes view(32, 7);
  EXPECT_NE(DkgPieceContext("g", "r", 1, 2, view), DkgPieceContext("g", "r", 2, 1, view));
  EXPECT_NE(DkgPieceContext("g", "r", 1, 2, view), DkgPieceContext("g", "r", 1, 2, Bytes(32, 8)));
  EXPECT_NE(DkgDealMessage("g", "r", 1, view), DkgDealMessage("g", "r", 2, view));
  EXPECT_NE(DkgDealMessage("g", "r", 1, view), DkgDealMessage("g", "r", 1, Bytes(32, 8)));
}

// The view digest changes with any node's start, the node list, the round or k: two nodes with
// the same digest dealt on the same starts.
TEST(ThresholdDkg, TheViewDigestNamesEveryStartAndTheRound) {
  const std::vector<std::string> urls = {"https://a", "https://b", "https://c"};
  const std::vector<std::string> starts = {"s1", "s2", "s3"};
  const Bytes d = DkgViewDigest("g", "r", 2, urls, starts);
  EXPECT_EQ(d.size(), 32u);
  EXPECT_EQ(d, DkgViewDigest("g", "r", 2, urls, starts));
  EXPECT_NE(d, DkgViewDigest("g", "r", 2, urls, std::vector<std::string>{"s1", "s2", "s4"}));
  EXPECT_NE(
      d, DkgViewDigest("g", "r", 2, std::vector<std::string>{"https://a", "https://b", "https://d"},
                       starts));
  EXPECT_NE(d, DkgViewDigest("g", "r2", 2, urls, starts));
  EXPECT_NE(d, DkgViewDigest("g2", "r", 2, urls, starts));
  EXPECT_NE(d, DkgViewDigest("g", "r", 3, urls, starts));
  // Lengths are part of the digest: a start cannot run into the next one.
  EXPECT_NE(d, DkgViewDigest("g", "r", 2, urls, std::vector<std::string>{"s1s", "2", "s3"}));
}

}  // namespace
}  // namespace blindlist::crypto::threshold
