// bench_oracle_timing: does the time of groupd's unwrap depend on the PKCS#1 v1.5 padding?
// (the Marvin attack class: a timing difference is as good an oracle as a different answer).
//
// For RSA-3072 and RSA-2048 keys made in-process, RecipientInfos of five classes, built with the
// raw RSA public operation:
//   a  valid PKCS#1 v1.5 with a 32-byte key          (the real key comes out)
//   b  valid v1.5 padding around a 5- or 47-byte message (no CEK length: synthetic key)
//   c  invalid padding: block type 03                 (synthetic key)
//   d  a random integer below n                       (synthetic key)
//   e  a random integer labelled RSA-OAEP              (synthetic key)
//   oa valid RSA-OAEP with a 32-byte key               (the real key: e's reference, since the
//      scheme is named in the RecipientInfo and so public)
// each timed through crypto::UnwrapCekImplicit, with, in the same run, the raw RSA private-key
// operation (crypto::ApplyBlind: the same EVP call with no padding) and, for reference, the
// explicit crypto::UnwrapCek of local reads on classes a and c. The measurement is interleaved:
// every round runs one call of every class in a fresh random order, so load and frequency
// changes spread over all classes alike. Each class cycles through its own pool of distinct
// ciphertexts. Per class: median, p10, p90 and mean of the wall time (and of the thread's CPU
// time), and Welch's t of each class against its reference (a valid key of the same scheme:
// a for v1.5, oa for OAEP, xa for the explicit pair), on all samples and with the pooled top
// 5% dropped. |t| well below ~4-5 over many thousands of samples shows no difference this
// measurement can see; the explicit pair shows what a visible difference would look like.
//
// Usage: bench_oracle_timing [--rounds N] [--pool P] [--bits 3072,2048] [--seed S]
// Every answer is checked before timing: class a gives its real key, the others a key of 16, 24
// or 32 bytes that is the same on a second call.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "crypto/blind.h"
#include "crypto/cms.h"
#include "crypto/keys.h"

namespace blindlist::bench {
namespace {

using crypto::PrivateKey;
using crypto::RecipientInfo;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_oracle_timing: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.error().code + ": " + r.error().message);
  return std::move(r).value();
}

Bytes Random(std::size_t n) {
  Bytes out(n);
  if (!crypto::RandomBytes(out.data(), n).ok()) Die("random");
  return out;
}

Bytes NonzeroRandom(std::size_t n) {
  Bytes out = Random(n);
  for (auto& b : out) {
    while (b == 0) b = Random(1)[0];
  }
  return out;
}

// 00 BT PS 00 M of the modulus length.
Bytes Type2(std::size_t k, std::size_t message_len, std::uint8_t block_type = 2) {
  Bytes em = {0x00, block_type};
  Bytes ps = NonzeroRandom(k - 3 - message_len);
  em.insert(em.end(), ps.begin(), ps.end());
  em.push_back(0x00);
  Bytes m = Random(message_len);
  em.insert(em.end(), m.begin(), m.end());
  return em;
}

// The public half for the raw RSA operation the attacker performs.
class RawPublicKey {
 public:
  explicit RawPublicKey(const PrivateKey& key) {
    Bytes spki = key.PublicKeyDer();
    const unsigned char* p = spki.data();
    pkey_ = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));  // NOLINT(google-runtime-int)
    if (pkey_ == nullptr) Die("cannot read the public key");
    k_ = static_cast<std::size_t>(EVP_PKEY_get_size(pkey_));
  }
  ~RawPublicKey() { EVP_PKEY_free(pkey_); }
  RawPublicKey(const RawPublicKey&) = delete;
  RawPublicKey& operator=(const RawPublicKey&) = delete;

  std::size_t k() const { return k_; }

  // m^e mod n; nullopt-like empty result when m >= n.
  Bytes Encrypt(const Bytes& em, int padding = RSA_NO_PADDING) const {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_, nullptr);
    std::size_t len = k_;
    Bytes c(k_);
    bool ok = ctx != nullptr && EVP_PKEY_encrypt_init(ctx) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(ctx, padding) == 1 &&
              EVP_PKEY_encrypt(ctx, c.data(), &len, em.data(), em.size()) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) return {};
    c.resize(len);
    return c;
  }

  Bytes RandomBelowN() const {
    for (;;) {
      Bytes v = Random(k_);
      v[0] &= 0x7f;  // n has its top bit set: this is below n, and a valid input
      if (!Encrypt(v).empty()) return v;
    }
  }

 private:
  EVP_PKEY* pkey_ = nullptr;
  std::size_t k_ = 0;
};

RecipientInfo Ktri(std::string_view alg_oid, Bytes encrypted_key) {
  RecipientInfo ri;
  ri.kind = crypto::RecipientKind::kKeyTrans;
  ri.key_alg_oid = std::string(alg_oid);
  ri.encrypted_key = std::move(encrypted_key);
  return ri;
}

constexpr std::string_view kRsaEncryption = "1.2.840.113549.1.1.1";
constexpr std::string_view kRsaesOaep = "1.2.840.113549.1.1.7";  // no parameters: SHA-1

struct Class {
  std::string name;
  std::string what;
  std::size_t ref = 0;              // the class it is compared with
  std::vector<RecipientInfo> pool;  // for the unwrap classes
  std::vector<Bytes> blinded;       // for the raw operation
  bool explicit_unwrap = false;     // crypto::UnwrapCek instead of the implicit one
  std::vector<double> wall_ns;
  std::vector<double> cpu_ns;
};

std::vector<Class> MakeClasses(const PrivateKey& key, std::size_t pool) {
  RawPublicKey pub(key);
  const std::size_t k = pub.k();
  std::vector<Class> classes(9);
  classes[0] = {"a", "valid v1.5, 32-byte key", 0, {}, {}, false, {}, {}};
  classes[1] = {"b", "valid v1.5 padding, 5- or 47-byte message", 0, {}, {}, false, {}, {}};
  classes[2] = {"c", "invalid padding (block type 03)", 0, {}, {}, false, {}, {}};
  classes[3] = {"d", "random integer below n", 0, {}, {}, false, {}, {}};
  classes[4] = {"oa", "valid RSA-OAEP (SHA-1), 32-byte key", 4, {}, {}, false, {}, {}};
  classes[5] = {"e", "random integer as RSA-OAEP", 4, {}, {}, false, {}, {}};
  classes[6] = {"raw", "raw RSA private operation (ApplyBlind)", 0, {}, {}, false, {}, {}};
  classes[7] = {"xa", "explicit UnwrapCek, class a (local reads)", 7, {}, {}, true, {}, {}};
  classes[8] = {"xc", "explicit UnwrapCek, class c (local reads)", 7, {}, {}, true, {}, {}};
  for (std::size_t i = 0; i < pool; ++i) {
    Bytes a = pub.Encrypt(Type2(k, 32));
    classes[0].pool.push_back(Ktri(kRsaEncryption, a));
    classes[1].pool.push_back(Ktri(kRsaEncryption, pub.Encrypt(Type2(k, i % 2 == 0 ? 5 : 47))));
    Bytes c = pub.Encrypt(Type2(k, 32, 0x03));
    classes[2].pool.push_back(Ktri(kRsaEncryption, c));
    classes[3].pool.push_back(Ktri(kRsaEncryption, pub.RandomBelowN()));
    classes[4].pool.push_back(Ktri(kRsaesOaep, pub.Encrypt(Random(32), RSA_PKCS1_OAEP_PADDING)));
    classes[5].pool.push_back(Ktri(kRsaesOaep, pub.RandomBelowN()));
    classes[6].blinded.push_back(pub.RandomBelowN());
    classes[7].pool.push_back(Ktri(kRsaEncryption, a));
    classes[8].pool.push_back(Ktri(kRsaEncryption, c));
  }
  return classes;
}

// Every answer checked once before anything is timed.
void Check(const std::vector<Class>& classes, const PrivateKey& key) {
  for (const Class& c : classes) {
    for (const RecipientInfo& ri : c.pool) {
      if (c.explicit_unwrap) {
        auto got = crypto::UnwrapCek(ri, key);
        if (c.name == "xa" && (!got.ok() || got->size() != 32)) Die("explicit a failed");
        if (c.name == "xc" && got.ok()) Die("explicit c succeeded");
        continue;
      }
      SecretBytes got = Must(crypto::UnwrapCekImplicit(ri, key), "class " + c.name);
      SecretBytes again = Must(crypto::UnwrapCekImplicit(ri, key), "class " + c.name);
      if (got != again) Die("class " + c.name + ": not deterministic");
      if (got.size() != 16 && got.size() != 24 && got.size() != 32)
        Die("class " + c.name + ": key length " + std::to_string(got.size()));
      if ((c.name == "a" || c.name == "oa") &&
          got != Must(crypto::UnwrapCek(ri, key), "explicit " + c.name))
        Die("class " + c.name + ": not the real key");
    }
    for (const Bytes& v : c.blinded) Must(crypto::ApplyBlind(key, v), "raw");
  }
}

double CpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

void RunOne(Class& c, std::size_t round, const PrivateKey& key) {
  const std::size_t n = c.pool.empty() ? c.blinded.size() : c.pool.size();
  const std::size_t i = round % n;
  const double cpu0 = CpuNow();
  const auto t0 = std::chrono::steady_clock::now();
  bool ok = false;
  if (!c.blinded.empty()) {
    ok = crypto::ApplyBlind(key, c.blinded[i]).ok();
  } else if (c.explicit_unwrap) {
    auto r = crypto::UnwrapCek(c.pool[i], key);
    ok = r.ok() == (c.name == "xa");
  } else {
    ok = crypto::UnwrapCekImplicit(c.pool[i], key).ok();
  }
  const auto t1 = std::chrono::steady_clock::now();
  const double cpu1 = CpuNow();
  if (!ok) Die("class " + c.name + " failed while timed");
  c.wall_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  c.cpu_ns.push_back(cpu1 - cpu0);
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

struct Moments {
  double mean = 0;
  double var = 0;
  double n = 0;
};

Moments MomentsOf(const std::vector<double>& v, double cut) {
  Moments m;
  for (double x : v) {
    if (x > cut) continue;
    m.mean += x;
    m.n += 1;
  }
  m.mean /= m.n;
  for (double x : v) {
    if (x <= cut) m.var += (x - m.mean) * (x - m.mean);
  }
  m.var /= (m.n - 1);
  return m;
}

// Welch's t of x against y; with trim, both without the values above the pooled 95th percentile.
double WelchT(const std::vector<double>& x, const std::vector<double>& y, bool trim) {
  double cut = INFINITY;
  if (trim) {
    std::vector<double> pooled = x;
    pooled.insert(pooled.end(), y.begin(), y.end());
    cut = Quantile(pooled, 0.95);
  }
  Moments a = MomentsOf(x, cut);
  Moments b = MomentsOf(y, cut);
  return (a.mean - b.mean) / std::sqrt(a.var / a.n + b.var / b.n);
}

const std::vector<double>& Samples(const Class& c, bool cpu) { return cpu ? c.cpu_ns : c.wall_ns; }

void Report(const std::string& title, const std::vector<Class>& classes, bool cpu) {
  std::printf("\n%s, %s time per call (microseconds)\n", title.c_str(),
              cpu ? "thread CPU" : "wall");
  std::printf("%-4s %-44s %6s %8s %8s %8s %8s %4s %7s %7s\n", "cls", "what", "n", "median", "p10",
              "p90", "mean", "ref", "t", "t trim");
  for (const Class& c : classes) {
    const auto& v = Samples(c, cpu);
    const auto& ref = Samples(classes[c.ref], cpu);
    Moments m = MomentsOf(v, INFINITY);
    std::printf("%-4s %-44s %6zu %8.1f %8.1f %8.1f %8.1f %4s %7.2f %7.2f\n", c.name.c_str(),
                c.what.c_str(), v.size(), Quantile(v, 0.5) / 1e3, Quantile(v, 0.1) / 1e3,
                Quantile(v, 0.9) / 1e3, m.mean / 1e3, classes[c.ref].name.c_str(),
                WelchT(v, ref, false), WelchT(v, ref, true));
  }
  // The implicit classes pairwise (v1.5 and OAEP differ in public, in the RecipientInfo).
  constexpr std::size_t kImplicit = 6;
  std::printf("pairwise Welch t (trimmed), implicit unwrap classes:\n     ");
  for (std::size_t j = 0; j < kImplicit; ++j) std::printf("%8s", classes[j].name.c_str());
  std::printf("\n");
  for (std::size_t i = 0; i < kImplicit; ++i) {
    std::printf("%-5s", classes[i].name.c_str());
    for (std::size_t j = 0; j < kImplicit; ++j) {
      std::printf("%8.2f",
                  i == j ? 0.0 : WelchT(Samples(classes[i], cpu), Samples(classes[j], cpu), true));
    }
    std::printf("\n");
  }
}

void Measure(int bits, std::size_t rounds, std::size_t pool, std::mt19937_64& rng) {
  PrivateKey key = Must(PrivateKey::Generate(crypto::KeyType::kRsa, bits), "keygen");
  std::vector<Class> classes = MakeClasses(key, pool);
  Check(classes, key);
  std::vector<std::size_t> order(classes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Warm-up: caches, the EVP fetches, the CPU's frequency.
  for (std::size_t r = 0; r < 20; ++r) {
    for (std::size_t i : order) RunOne(classes[i], r, key);
  }
  for (Class& c : classes) {
    c.wall_ns.clear();
    c.cpu_ns.clear();
  }
  for (std::size_t r = 0; r < rounds; ++r) {
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t i : order) RunOne(classes[i], r, key);
  }
  std::string title = "RSA-" + std::to_string(bits) + ", " + std::to_string(rounds) +
                      " interleaved rounds, pool " + std::to_string(pool);
  Report(title, classes, /*cpu=*/false);
  Report(title, classes, /*cpu=*/true);
  std::fflush(stdout);
}

}  // namespace
}  // namespace blindlist::bench

int main(int argc, char** argv) {
  std::size_t rounds = 2000;
  std::size_t pool = 64;
  std::vector<int> bits = {3072, 2048};
  std::uint64_t seed = std::random_device{}();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) blindlist::bench::Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--rounds") {
      rounds = std::stoul(next());
    } else if (a == "--pool") {
      pool = std::stoul(next());
    } else if (a == "--seed") {
      seed = std::stoull(next());
    } else if (a == "--bits") {
      bits.clear();
      std::string list = next();
      for (std::size_t p = 0; p < list.size();) {
        std::size_t comma = list.find(',', p);
        bits.push_back(std::stoi(list.substr(p, comma - p)));
        p = comma == std::string::npos ? list.size() : comma + 1;
      }
    } else {
      blindlist::bench::Die("unknown argument " + a +
                            " (use --rounds N --pool P --bits 3072,2048 --seed S)");
    }
  }
  std::printf("bench_oracle_timing: %s, seed %llu\n", OpenSSL_version(OPENSSL_VERSION),
              static_cast<unsigned long long>(seed));  // NOLINT(google-runtime-int)
  std::mt19937_64 rng(seed);
  for (int b : bits) blindlist::bench::Measure(b, rounds, pool, rng);
  return 0;
}
