// groupd's work per member of a per-member re-wrap (bench/per_member.sh, docs/benchmarks.md
// section 8) against the raw primitive, in one process: one CekWrapper::Wrap to a P-256 member
// (one ECDH derive with the request's shared ephemeral key, the KDF, the AES key wrap and the
// DER) against one ECDH derive with loaded keys (what `openssl speed ecdhp256` times), and
// against WrapCek (a fresh ephemeral key per member, as before); the same for RSA-2048 members
// (padding, raw public-key operation, DER) against the raw public-key operation. The Prepared
// cases wrap as groupd does, to a crypto::WrapTarget kept across requests. Every wrap is checked
// to unwrap (both paddings) before anything is timed.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <cstdlib>
#include <vector>

#include "crypto/cms.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/primitives.h"
#include "crypto/x509.h"

namespace crypto = blindlist::crypto;
using blindlist::Bytes;
using blindlist::SecretBytes;
using crypto::Certificate;
using crypto::KeyType;
using crypto::PrivateKey;
using crypto::RsaPadding;

namespace {

struct Member {
  PrivateKey key;
  Certificate cert;
};

Member MakeMember(KeyType type, const PrivateKey& ca_key, const Certificate& ca) {
  auto key = type == KeyType::kRsa ? PrivateKey::Generate(type, 2048) : PrivateKey::Generate(type);
  if (!key.ok()) std::abort();
  crypto::CertificateProfile profile;
  profile.common_name = "member";
  profile.email = "member@example.org";
  auto cert = crypto::IssueCertificate(key->PublicKeyDer(), profile, ca, ca_key);
  if (!cert.ok()) std::abort();
  return Member{std::move(*key), std::move(*cert)};
}

struct Fixture {
  PrivateKey ca_key = *PrivateKey::Generate(KeyType::kEcP256);
  Certificate ca = *crypto::MakeCaCertificate(ca_key, "bench CA", 3600);
  Member p256 = MakeMember(KeyType::kEcP256, ca_key, ca);
  Member rsa = MakeMember(KeyType::kRsa, ca_key, ca);
  PrivateKey other = *PrivateKey::Generate(KeyType::kEcP256);
  SecretBytes cek = crypto::RandomSecret(32);
  Fixture() {
    for (const Member* m : {&p256, &rsa}) {
      for (RsaPadding padding : {RsaPadding::kPkcs1v15, RsaPadding::kOaepSha256}) {
        crypto::CekWrapper w(cek, padding);
        auto der = w.Wrap(m->cert);
        if (!der.ok()) std::abort();
        auto ri = crypto::RecipientInfo::Parse(*der);
        if (!ri.ok()) std::abort();
        auto back = crypto::UnwrapCek(*ri, m->key);
        if (!back.ok() || !(*back == cek)) std::abort();
      }
    }
  }
};

const Fixture& F() {
  static const Fixture f;
  return f;
}

// The primitive of a P-256 member as `openssl speed ecdhp256` times it: EVP_PKEY_derive with
// the context set up beforehand.
void BM_RawEcdhP256(benchmark::State& state) {
  const Fixture& f = F();
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, f.other.impl().pkey.get(), nullptr);
  std::size_t len = 0;
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx, f.p256.key.impl().pkey.get(), 0) != 1 ||
      EVP_PKEY_derive(ctx, nullptr, &len) != 1) {
    std::abort();
  }
  std::vector<unsigned char> z(len);
  for (auto _ : state) {
    std::size_t out = len;
    if (EVP_PKEY_derive(ctx, z.data(), &out) != 1) std::abort();
    benchmark::DoNotOptimize(z.data());
  }
  EVP_PKEY_CTX_free(ctx);
}
BENCHMARK(BM_RawEcdhP256);

// The primitive of an RSA member: the raw public-key operation (m^e mod n, no padding) with the
// context set up beforehand; `openssl speed rsa2048` (3.0: the verify column) times the same
// operation plus a padding check.
void BM_RawRsa2048Public(benchmark::State& state) {
  const Fixture& f = F();
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, f.rsa.key.impl().pkey.get(), nullptr);
  if (ctx == nullptr || EVP_PKEY_encrypt_init(ctx) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) != 1) {
    std::abort();
  }
  std::vector<unsigned char> in(256, 0x5a);
  in[0] = 0x00;  // below n
  std::vector<unsigned char> out(256);
  for (auto _ : state) {
    std::size_t len = out.size();
    if (EVP_PKEY_encrypt(ctx, out.data(), &len, in.data(), in.size()) != 1) std::abort();
    benchmark::DoNotOptimize(out.data());
  }
  EVP_PKEY_CTX_free(ctx);
}
BENCHMARK(BM_RawRsa2048Public);

// OpenSSL's own PKCS#1 v1.5 encryption of the key, context set up beforehand: the raw operation
// plus OpenSSL 3.0's padding (a DRBG call per call and per zero octet drawn).
void BM_OpensslRsa2048Pkcs1Encrypt(benchmark::State& state) {
  const Fixture& f = F();
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, f.rsa.key.impl().pkey.get(), nullptr);
  if (ctx == nullptr || EVP_PKEY_encrypt_init(ctx) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
    std::abort();
  }
  std::vector<unsigned char> out(256);
  for (auto _ : state) {
    std::size_t len = out.size();
    if (EVP_PKEY_encrypt(ctx, out.data(), &len, f.cek.data(), f.cek.size()) != 1) std::abort();
    benchmark::DoNotOptimize(out.data());
  }
  EVP_PKEY_CTX_free(ctx);
}
BENCHMARK(BM_OpensslRsa2048Pkcs1Encrypt);

// A request's members: one wrapper, many members (its ephemeral key is made on the first).
void BM_PerMemberWrapP256(benchmark::State& state) {
  const Fixture& f = F();
  crypto::CekWrapper w(f.cek, RsaPadding::kPkcs1v15);
  for (auto _ : state) benchmark::DoNotOptimize(w.Wrap(f.p256.cert));
}
BENCHMARK(BM_PerMemberWrapP256);

// As before: a fresh ephemeral key per member.
void BM_WrapCekP256(benchmark::State& state) {
  const Fixture& f = F();
  for (auto _ : state) {
    benchmark::DoNotOptimize(crypto::WrapCek(f.cek, f.p256.cert, RsaPadding::kPkcs1v15));
  }
}
BENCHMARK(BM_WrapCekP256);

// As groupd wraps: to a certificate prepared once (crypto::WrapTarget, kept in groupd's cache
// of member certificates across requests).
void BM_PreparedWrapP256(benchmark::State& state) {
  const Fixture& f = F();
  const auto target = crypto::WrapTarget::Prepare(f.p256.cert);
  if (!target.ok()) std::abort();
  crypto::CekWrapper w(f.cek, RsaPadding::kPkcs1v15);
  for (auto _ : state) benchmark::DoNotOptimize(w.Wrap(*target));
}
BENCHMARK(BM_PreparedWrapP256);

void BM_PreparedWrapRsa2048Pkcs1(benchmark::State& state) {
  const Fixture& f = F();
  const auto target = crypto::WrapTarget::Prepare(f.rsa.cert);
  if (!target.ok()) std::abort();
  crypto::CekWrapper w(f.cek, RsaPadding::kPkcs1v15);
  for (auto _ : state) benchmark::DoNotOptimize(w.Wrap(*target));
}
BENCHMARK(BM_PreparedWrapRsa2048Pkcs1);

void BM_PreparedWrapRsa2048Oaep(benchmark::State& state) {
  const Fixture& f = F();
  const auto target = crypto::WrapTarget::Prepare(f.rsa.cert);
  if (!target.ok()) std::abort();
  crypto::CekWrapper w(f.cek, RsaPadding::kOaepSha256);
  for (auto _ : state) benchmark::DoNotOptimize(w.Wrap(*target));
}
BENCHMARK(BM_PreparedWrapRsa2048Oaep);

// RSA-2048 members, PKCS#1 v1.5 (NSS) and OAEP: one public-key operation each.
void BM_PerMemberWrapRsa2048Pkcs1(benchmark::State& state) {
  const Fixture& f = F();
  crypto::CekWrapper w(f.cek, RsaPadding::kPkcs1v15);
  for (auto _ : state) benchmark::DoNotOptimize(w.Wrap(f.rsa.cert));
}
BENCHMARK(BM_PerMemberWrapRsa2048Pkcs1);

void BM_PerMemberWrapRsa2048Oaep(benchmark::State& state) {
  const Fixture& f = F();
  crypto::CekWrapper w(f.cek, RsaPadding::kOaepSha256);
  for (auto _ : state) benchmark::DoNotOptimize(w.Wrap(f.rsa.cert));
}
BENCHMARK(BM_PerMemberWrapRsa2048Oaep);

}  // namespace

BENCHMARK_MAIN();
