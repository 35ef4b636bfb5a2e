// bench_unwrap: message-key (CEK) unwraps per second through the library, for
// each group key kind the group server holds, plus the key holder's and the
// member's side of the blind unwrap. bench/unwrap_rate.sh compares the rates
// with `openssl speed` for the raw private-key primitive.
//
// The group keys and certificates come from the openssl CLI (the library makes
// keys but not certificates, and only src/crypto may include OpenSSL headers).
// Flags, before the Google Benchmark ones:
//   --key-dir=DIR   reuse or create rsa3072.{key,crt} and p256.{key,crt} in DIR
//                   (default: a fresh directory under $TMPDIR, removed at exit)
//   --iterations=N  run each benchmark exactly N times (for instruction counts
//                   under callgrind; the timing figures then mean little)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/blind.h"
#include "crypto/cms.h"
#include "crypto/keys.h"

namespace blindlist::bench {
namespace {

namespace fs = std::filesystem;
using crypto::Certificate;
using crypto::PrivateKey;
using crypto::RecipientInfo;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_unwrap: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.error().code + ": " + r.error().message);
  return std::move(r).value();
}

// One group key pair with its certificate, made once by the openssl CLI.
struct GroupKey {
  PrivateKey key;
  Certificate cert;
};

GroupKey LoadOrMakeGroupKey(const fs::path& dir, const std::string& name,
                            const std::string& newkey) {
  fs::path key = dir / (name + ".key");
  fs::path crt = dir / (name + ".crt");
  if (!fs::exists(key) || !fs::exists(crt)) {
    std::string cmd = "openssl req -x509 -newkey " + newkey + " -nodes -keyout '" + key.string() +
                      "' -out '" + crt.string() +
                      "' -days 30 -subj /CN=list@example.org"
                      " -addext subjectAltName=email:list@example.org"
                      " -addext extendedKeyUsage=emailProtection 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) Die("openssl req failed: " + cmd);
  }
  return GroupKey{Must(PrivateKey::LoadFile(key.string()), "load " + key.string()),
                  Must(Certificate::LoadFile(crt.string()), "load " + crt.string())};
}

// What every benchmark needs: the keys, one CEK, and a parsed RecipientInfo
// carrying it for each variant.
struct Fixture {
  GroupKey rsa;
  GroupKey p256;
  SecretBytes cek;
  RecipientInfo rsa_oaep;
  RecipientInfo rsa_pkcs1;
  RecipientInfo p256_kari;
};

Fixture* g_fixture = nullptr;

RecipientInfo WrapAndParse(const Fixture& f, const GroupKey& gk, crypto::RsaPadding padding) {
  Bytes der = Must(crypto::WrapCek(f.cek, gk.cert, padding), "WrapCek");
  return Must(RecipientInfo::Parse(der), "RecipientInfo::Parse");
}

void CheckCek(const Fixture& f, Result<SecretBytes> got, const std::string& what) {
  if (Must(std::move(got), what) != f.cek) Die(what + " returned the wrong CEK");
}

// Every path is checked once before it is timed: a fast wrong answer is no result.
void CheckAll(const Fixture& f) {
  CheckCek(f, crypto::UnwrapCek(f.rsa_oaep, f.rsa.key), "UnwrapCek RSA-OAEP");
  CheckCek(f, crypto::UnwrapCek(f.rsa_pkcs1, f.rsa.key), "UnwrapCek RSA PKCS#1 v1.5");
  CheckCek(f, crypto::UnwrapCek(f.p256_kari, f.p256.key), "UnwrapCek P-256");
  for (const auto& [ri, gk] : {std::pair{&f.rsa_oaep, &f.rsa}, std::pair{&f.p256_kari, &f.p256}}) {
    auto req = Must(crypto::BlindRequest::Create(*ri, gk->cert), "BlindRequest::Create");
    auto resp = Must(crypto::ApplyBlind(gk->key, req.blinded()), "ApplyBlind");
    CheckCek(f, req.Finish(resp), "BlindRequest::Finish");
  }
}

// Sets the rate counter the script reads: completed unwraps per second.
void CountOps(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void UnwrapLoop(benchmark::State& state, const RecipientInfo& ri, const PrivateKey& key) {
  for (auto _ : state) {
    auto cek = crypto::UnwrapCek(ri, key);
    if (!cek.ok()) state.SkipWithError(cek.error().message.c_str());
    benchmark::DoNotOptimize(cek);
  }
  CountOps(state);
}

// The second half of a rewrap: the CEK wrapped to a member's RSA-3072 certificate
// (one RSA public-key operation; compare with `openssl speed`'s verify/s).
void WrapLoop(benchmark::State& state, const Certificate& cert, crypto::RsaPadding padding) {
  for (auto _ : state) {
    auto ri = crypto::WrapCek(g_fixture->cek, cert, padding);
    if (!ri.ok()) state.SkipWithError(ri.error().message.c_str());
    benchmark::DoNotOptimize(ri);
  }
  CountOps(state);
}

void BM_WrapRsa3072Oaep(benchmark::State& state) {
  WrapLoop(state, g_fixture->rsa.cert, crypto::RsaPadding::kOaepSha256);
}
void BM_WrapRsa3072Pkcs1(benchmark::State& state) {
  WrapLoop(state, g_fixture->rsa.cert, crypto::RsaPadding::kPkcs1v15);
}

void BM_UnwrapRsa3072Oaep(benchmark::State& state) {
  UnwrapLoop(state, g_fixture->rsa_oaep, g_fixture->rsa.key);
}
void BM_UnwrapRsa3072Pkcs1(benchmark::State& state) {
  UnwrapLoop(state, g_fixture->rsa_pkcs1, g_fixture->rsa.key);
}
void BM_UnwrapP256Kari(benchmark::State& state) {
  UnwrapLoop(state, g_fixture->p256_kari, g_fixture->p256.key);
}

// The key holder's side: one private-key operation on a blinded value.
void ApplyBlindLoop(benchmark::State& state, const RecipientInfo& ri, const GroupKey& gk) {
  auto req = Must(crypto::BlindRequest::Create(ri, gk.cert), "BlindRequest::Create");
  for (auto _ : state) {
    auto resp = crypto::ApplyBlind(gk.key, req.blinded());
    if (!resp.ok()) state.SkipWithError(resp.error().message.c_str());
    benchmark::DoNotOptimize(resp);
  }
  CountOps(state);
}

void BM_ApplyBlindRsa3072(benchmark::State& state) {
  ApplyBlindLoop(state, g_fixture->rsa_oaep, g_fixture->rsa);
}
void BM_ApplyBlindP256(benchmark::State& state) {
  ApplyBlindLoop(state, g_fixture->p256_kari, g_fixture->p256);
}

// The member's side, for information: blinding (Create) and unblinding plus
// the local end of the unwrap (Finish), timed separately since Finish needs
// the key holder's answer to its own request.
void BlindCreateLoop(benchmark::State& state, const RecipientInfo& ri, const GroupKey& gk) {
  for (auto _ : state) {
    auto req = crypto::BlindRequest::Create(ri, gk.cert);
    if (!req.ok()) state.SkipWithError(req.error().message.c_str());
    benchmark::DoNotOptimize(req);
  }
  CountOps(state);
}

void BlindFinishLoop(benchmark::State& state, const RecipientInfo& ri, const GroupKey& gk) {
  auto req = Must(crypto::BlindRequest::Create(ri, gk.cert), "BlindRequest::Create");
  auto resp = Must(crypto::ApplyBlind(gk.key, req.blinded()), "ApplyBlind");
  for (auto _ : state) {
    auto cek = req.Finish(resp);
    if (!cek.ok()) state.SkipWithError(cek.error().message.c_str());
    benchmark::DoNotOptimize(cek);
  }
  CountOps(state);
}

void BM_BlindCreateRsa3072(benchmark::State& state) {
  BlindCreateLoop(state, g_fixture->rsa_oaep, g_fixture->rsa);
}
void BM_BlindFinishRsa3072(benchmark::State& state) {
  BlindFinishLoop(state, g_fixture->rsa_oaep, g_fixture->rsa);
}
void BM_BlindCreateP256(benchmark::State& state) {
  BlindCreateLoop(state, g_fixture->p256_kari, g_fixture->p256);
}
void BM_BlindFinishP256(benchmark::State& state) {
  BlindFinishLoop(state, g_fixture->p256_kari, g_fixture->p256);
}

struct BenchmarkCase {
  const char* name;
  void (*run)(benchmark::State&);
};
constexpr BenchmarkCase kCases[] = {
    {"BM_UnwrapRsa3072Oaep", BM_UnwrapRsa3072Oaep},
    {"BM_UnwrapRsa3072Pkcs1", BM_UnwrapRsa3072Pkcs1},
    {"BM_UnwrapP256Kari", BM_UnwrapP256Kari},
    {"BM_WrapRsa3072Oaep", BM_WrapRsa3072Oaep},
    {"BM_WrapRsa3072Pkcs1", BM_WrapRsa3072Pkcs1},
    {"BM_ApplyBlindRsa3072", BM_ApplyBlindRsa3072},
    {"BM_ApplyBlindP256", BM_ApplyBlindP256},
    {"BM_BlindCreateRsa3072", BM_BlindCreateRsa3072},
    {"BM_BlindFinishRsa3072", BM_BlindFinishRsa3072},
    {"BM_BlindCreateP256", BM_BlindCreateP256},
    {"BM_BlindFinishP256", BM_BlindFinishP256},
};

int Main(int argc, char** argv) {
  // Take our flags out of argv before Google Benchmark sees them.
  std::optional<fs::path> key_dir;
  benchmark::IterationCount iterations = 0;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--key-dir=")) {
      key_dir = fs::path(arg.substr(std::string_view("--key-dir=").size()));
    } else if (arg.starts_with("--iterations=")) {
      iterations = std::atoll(argv[i] + std::string_view("--iterations=").size());
      if (iterations <= 0) Die("--iterations needs a positive count");
    } else {
      rest.push_back(argv[i]);
    }
  }
  for (const auto& c : kCases) {
    auto* b = benchmark::RegisterBenchmark(c.name, c.run);
    if (iterations > 0) b->Iterations(iterations);
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;

  bool remove_dir = false;
  if (!key_dir) {
    std::string tmpl = (fs::temp_directory_path() / "bench_unwrap.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp failed");
    key_dir = tmpl;
    remove_dir = true;
  }
  fs::create_directories(*key_dir);

  Fixture fixture;
  fixture.rsa = LoadOrMakeGroupKey(*key_dir, "rsa3072", "rsa:3072");
  fixture.p256 = LoadOrMakeGroupKey(*key_dir, "p256", "ec -pkeyopt ec_paramgen_curve:P-256");
  fixture.cek = crypto::RandomSecret(32);
  fixture.rsa_oaep = WrapAndParse(fixture, fixture.rsa, crypto::RsaPadding::kOaepSha256);
  fixture.rsa_pkcs1 = WrapAndParse(fixture, fixture.rsa, crypto::RsaPadding::kPkcs1v15);
  // The padding argument is ignored for an EC certificate (KARI).
  fixture.p256_kari = WrapAndParse(fixture, fixture.p256, crypto::RsaPadding::kOaepSha256);
  CheckAll(fixture);
  g_fixture = &fixture;

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (remove_dir) fs::remove_all(*key_dir);
  return 0;
}

}  // namespace
}  // namespace blindlist::bench

int main(int argc, char** argv) { return blindlist::bench::Main(argc, argv); }
