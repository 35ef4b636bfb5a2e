// A threshold node's work against the raw primitive (bench/threshold.sh): one evaluation
// (d_i·B plus a DLEQ proof) against one ECDH with a loaded P-256 key (what a single-node blind
// costs the node), and the member's side: verifying one proof and combining k answers.
// Every answer is checked before it is timed.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "crypto/keys.h"
#include "crypto/primitives.h"
#include "crypto/threshold.h"

namespace th = blindlist::crypto::threshold;
using blindlist::Bytes;
using blindlist::crypto::KeyType;
using blindlist::crypto::PrivateKey;

namespace {

struct Fixture {
  PrivateKey key = *PrivateKey::Generate(KeyType::kEcP256);
  th::Dealing dealing = *th::Split(*th::ScalarOf(key), 3, 5);
  // Any point, uncompressed as a member's BlindRequest sends it.
  Bytes b = Uncompressed(dealing.public_shares[4]);
  th::Evaluation e = *th::Evaluate(dealing.shares[0], b);
  Fixture() {
    if (!th::VerifyEvaluation(dealing.public_shares[0], b, e.point, e.proof).ok()) std::abort();
    auto cached = th::Evaluate(dealing.shares[0], dealing.public_shares[0], b);
    if (!cached.ok() ||
        !th::VerifyEvaluation(dealing.public_shares[0], b, cached->point, cached->proof).ok()) {
      std::abort();
    }
  }
  static Bytes Uncompressed(const Bytes& compressed) {
    auto out = th::UncompressedPoint(compressed);
    if (!out.ok() || out->size() != 65) std::abort();
    return *out;
  }
};

const Fixture& F() {
  static const Fixture f;
  return f;
}

void BM_NodeEvaluateWithProof(benchmark::State& state) {
  const Fixture& f = F();
  for (auto _ : state) benchmark::DoNotOptimize(th::Evaluate(f.dealing.shares[0], f.b));
}
BENCHMARK(BM_NodeEvaluateWithProof);

// What a node does per request: D_i comes from its key ring, computed once per share.
void BM_NodeEvaluateCachedPublicShare(benchmark::State& state) {
  const Fixture& f = F();
  for (auto _ : state) {
    benchmark::DoNotOptimize(th::Evaluate(f.dealing.shares[0], f.dealing.public_shares[0], f.b));
  }
}
BENCHMARK(BM_NodeEvaluateCachedPublicShare);

// Bulk: per point, one d_i·B and a share of one batch proof (EvaluateBatch), checked first.
void BM_NodeEvaluateBatchPerPoint(benchmark::State& state) {
  const Fixture& f = F();
  std::vector<Bytes> points;
  for (int i = 0; i < state.range(0); ++i) points.push_back(f.b);
  auto checked = th::EvaluateBatch(f.dealing.shares[0], f.dealing.public_shares[0], points);
  if (!checked.ok() ||
      !th::VerifyBatch(f.dealing.public_shares[0], points, checked->points, checked->proof).ok()) {
    std::abort();
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        th::EvaluateBatch(f.dealing.shares[0], f.dealing.public_shares[0], points));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_NodeEvaluateBatchPerPoint)->Arg(100);

void BM_SingleNodeBlindEcdh(benchmark::State& state) {
  const Fixture& f = F();
  if (!blindlist::crypto::EcdhWithKey(f.key, f.b).ok()) std::abort();
  for (auto _ : state) benchmark::DoNotOptimize(blindlist::crypto::EcdhWithKey(f.key, f.b));
}
BENCHMARK(BM_SingleNodeBlindEcdh);

void BM_MemberVerifyProof(benchmark::State& state) {
  const Fixture& f = F();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        th::VerifyEvaluation(f.dealing.public_shares[0], f.b, f.e.point, f.e.proof));
  }
}
BENCHMARK(BM_MemberVerifyProof);

void BM_MemberCombine(benchmark::State& state) {
  const Fixture& f = F();
  std::vector<th::Partial> partials;
  partials.reserve(static_cast<std::size_t>(state.range(0)));
  for (int i = 0; i < state.range(0); ++i) {
    partials.push_back(
        th::Partial{static_cast<std::uint8_t>(i + 1),
                    th::Evaluate(f.dealing.shares[static_cast<std::size_t>(i)], f.b)->point});
  }
  for (auto _ : state) benchmark::DoNotOptimize(th::CombinePartials(partials));
}
BENCHMARK(BM_MemberCombine)->Arg(2)->Arg(3);

}  // namespace

BENCHMARK_MAIN();
