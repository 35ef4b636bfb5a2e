// EC_POINTs_mul (a batch proof's multi-scalar multiplication, a third of the cost of as many
// single ones) is deprecated in OpenSSL 3.0 without a replacement.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "crypto/threshold.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "blindlist/error_codes.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"

namespace blindlist::crypto::threshold {
namespace {

constexpr std::uint8_t kShareVersion = 1;
// Domain separation for the DLEQ challenge (the contextString of RFC 9497, our own name).
constexpr std::string_view kDleqTag = "blindlist-threshold-v1-P256-SHA256-DLEQ";
// The same for a repair round key's Schnorr signature by a share (another tag: a signature is
// never a DLEQ proof, nor one the other).
// A batch proof's composite weights and its DLEQ challenge (never a single point's proof).
constexpr std::string_view kBatchTag = "blindlist-threshold-v1-P256-SHA256-BATCH";
constexpr std::string_view kBatchProofTag = "blindlist-threshold-v1-P256-SHA256-DLEQ-BATCH";
constexpr std::string_view kSignatureTag = "blindlist-threshold-v1-P256-SHA256-REPAIR-SIG";

Error BadPoint(std::string_view what) {
  return MakeError(std::string(errc::kBadPoint), std::string(what));
}

// P-256, made once and shared read-only (every EC call here takes it const), and a context per
// call: the group is a third of an evaluation's cost when made per call.
const EC_GROUP* P256() {
  static const EcGroupPtr group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  return group.get();
}

struct Curve {
  struct Group {
    const EC_GROUP* p;
    const EC_GROUP* get() const { return p; }
    explicit operator bool() const { return p != nullptr; }
  } group{P256()};
  BnCtxPtr ctx{BN_CTX_secure_new()};
  const BIGNUM* order() const { return EC_GROUP_get0_order(group.get()); }
  bool ok() const { return group && ctx; }
};

Result<Curve> MakeCurve() {
  Curve c;
  if (!c.ok()) return OsslError(std::string(errc::kCrypto), "cannot set up P-256");
  return c;
}

BnSecretPtr NewSecretBn() {
  BnSecretPtr bn(BN_secure_new());
  if (bn) BN_set_flags(bn.get(), BN_FLG_CONSTTIME);
  return bn;
}

// A scalar from kScalarLen octets; `nonzero` also refuses 0. Always below q.
Result<BnSecretPtr> ScalarBn(const Curve& c, ByteView bytes, bool nonzero, std::string_view code) {
  BnSecretPtr bn = NewSecretBn();
  if (!bn) return OsslError(std::string(errc::kCrypto), "out of memory");
  if (bytes.size() != kScalarLen ||
      BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), bn.get()) == nullptr ||
      BN_cmp(bn.get(), c.order()) >= 0 || (nonzero && BN_is_zero(bn.get()))) {
    return MakeError(std::string(code), "scalar out of range");
  }
  return bn;
}

SecretBytes ScalarBytes(const BIGNUM* bn) {
  SecretBytes out(kScalarLen);
  BN_bn2binpad(bn, out.data(), static_cast<int>(kScalarLen));
  return out;
}

Bytes PublicScalarBytes(const BIGNUM* bn) {
  Bytes out(kScalarLen);
  BN_bn2binpad(bn, out.data(), static_cast<int>(kScalarLen));
  return out;
}

Result<EcPointPtr> ParsePoint(const Curve& c, ByteView bytes) {
  // A lone 00 would decode to the point at infinity; only 02/03/04 forms are points here.
  if (bytes.empty() || (bytes[0] != 0x02 && bytes[0] != 0x03 && bytes[0] != 0x04))
    return BadPoint("not a P-256 point encoding (or the point at infinity)");
  EcPointPtr p(EC_POINT_new(c.group.get()));
  if (!p) return OsslError(std::string(errc::kCrypto), "out of memory");
  // oct2point checks that the point lies on the curve.
  if (EC_POINT_oct2point(c.group.get(), p.get(), bytes.data(), bytes.size(), c.ctx.get()) != 1) {
    ERR_clear_error();
    return BadPoint("not a point on P-256");
  }
  if (EC_POINT_is_at_infinity(c.group.get(), p.get()) == 1) return BadPoint("point at infinity");
  return p;
}

Result<Bytes> PointBytes(const Curve& c, const EC_POINT* p) {
  if (EC_POINT_is_at_infinity(c.group.get(), p) == 1) return BadPoint("point at infinity");
  Bytes out(kPointLen);
  if (EC_POINT_point2oct(c.group.get(), p, POINT_CONVERSION_COMPRESSED, out.data(), out.size(),
                         c.ctx.get()) != kPointLen) {
    return OsslError(std::string(errc::kCrypto), "cannot encode a point");
  }
  return out;
}

Result<BnSecretPtr> RandomNonzeroScalar(const Curve& c) {
  BnSecretPtr r = NewSecretBn();
  if (!r) return OsslError(std::string(errc::kCrypto), "out of memory");
  do {
    if (BN_priv_rand_range(r.get(), c.order()) != 1)
      return OsslError(std::string(errc::kCrypto), "random failed");
  } while (BN_is_zero(r.get()));
  return r;
}

// k·P (P null: k·G).
Result<EcPointPtr> Mul(const Curve& c, const BIGNUM* k, const EC_POINT* p) {
  EcPointPtr out(EC_POINT_new(c.group.get()));
  const int rc = p == nullptr
                     ? EC_POINT_mul(c.group.get(), out.get(), k, nullptr, nullptr, c.ctx.get())
                     : EC_POINT_mul(c.group.get(), out.get(), nullptr, p, k, c.ctx.get());
  if (!out || rc != 1) return OsslError(std::string(errc::kCrypto), "scalar multiplication failed");
  return out;
}

Status AddInto(const Curve& c, EC_POINT* acc, const EC_POINT* p) {
  if (EC_POINT_add(c.group.get(), acc, acc, p, c.ctx.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "point addition failed");
  return Status::Ok();
}

// Fiat-Shamir challenge: 64 octets of SHA-256 output (two counter-prefixed blocks) over the
// length-prefixed tag and points, reduced mod q (bias below 2^-256).
Result<BnPtr> Challenge(const Curve& c, std::span<const Bytes* const> points,
                        std::string_view tag = kDleqTag) {
  Bytes transcript;
  auto append = [&transcript](ByteView v) {
    transcript.push_back(static_cast<std::uint8_t>(v.size() >> 8));
    transcript.push_back(static_cast<std::uint8_t>(v.size() & 0xff));
    transcript.insert(transcript.end(), v.begin(), v.end());
  };
  append(AsBytes(tag));
  for (const Bytes* p : points) append(*p);
  constexpr std::size_t kDigest = SHA256_DIGEST_LENGTH;
  std::array<std::uint8_t, 2 * kDigest> wide{};
  // Fetched once: an implicit fetch per digest costs more than hashing the transcript.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  for (std::size_t block = 0; block < 2; ++block) {
    const auto counter = static_cast<std::uint8_t>(block + 1);
    if (sha256 == nullptr || !md || EVP_DigestInit_ex(md.get(), sha256, nullptr) != 1 ||
        EVP_DigestUpdate(md.get(), &counter, 1) != 1 ||
        EVP_DigestUpdate(md.get(), transcript.data(), transcript.size()) != 1 ||
        EVP_DigestFinal_ex(md.get(), wide.data() + (block * kDigest), nullptr) != 1) {
      return OsslError(std::string(errc::kCrypto), "SHA-256 failed");
    }
  }
  BnPtr wide_bn(BN_bin2bn(wide.data(), static_cast<int>(wide.size()), nullptr));
  BnPtr out(BN_new());
  if (!wide_bn || !out || BN_nnmod(out.get(), wide_bn.get(), c.order(), c.ctx.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "challenge reduction failed");
  return out;
}

Result<Bytes> GeneratorBytes(const Curve& c) {
  return PointBytes(c, EC_GROUP_get0_generator(c.group.get()));
}

// G compressed, made once (empty if that failed).
const Bytes& GeneratorCompressed() {
  static const Bytes g = [] {
    auto c = MakeCurve();
    if (!c.ok()) return Bytes{};
    auto bytes = GeneratorBytes(*c);
    return bytes.ok() ? *bytes : Bytes{};
  }();
  return g;
}

bool ValidParameters(int k, int n) { return k >= 2 && k <= n && n <= kMaxNodes; }

// f(x) = sum coeffs[j]·x^j mod q, by Horner.
Result<BnSecretPtr> EvaluatePolynomial(const Curve& c, const std::vector<BnSecretPtr>& coeffs,
                                       std::uint8_t x) {
  BnSecretPtr acc = NewSecretBn();
  BnPtr xb(BN_new());
  if (!acc || !xb || BN_set_word(xb.get(), x) != 1) return OsslError("crypto", "out of memory");
  BN_zero(acc.get());
  for (auto it = coeffs.rbegin(); it != coeffs.rend(); ++it) {
    if (BN_mod_mul(acc.get(), acc.get(), xb.get(), c.order(), c.ctx.get()) != 1 ||
        BN_mod_add(acc.get(), acc.get(), it->get(), c.order(), c.ctx.get()) != 1) {
      return OsslError(std::string(errc::kCrypto), "polynomial evaluation failed");
    }
  }
  return acc;
}

// lambda_index(x) = prod_{j != index} (j - x) / (j - index) mod q: at x = 0 the coefficient that
// recovers f(0), at another x the one that gives f(x) (a share repair).
Result<BnPtr> LagrangeBn(const Curve& c, std::span<const std::uint8_t> indices, std::uint8_t index,
                         std::uint8_t x = 0) {
  if (index == 0 || index > kMaxNodes) return MakeError("bad-share", "share index out of range");
  if (std::find(indices.begin(), indices.end(), index) == indices.end())
    return MakeError("bad-share", "the index is not in the set");
  BnPtr num(BN_new());
  BnPtr den(BN_new());
  BnPtr term(BN_new());
  if (!num || !den || !term || BN_one(num.get()) != 1 || BN_one(den.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "out of memory");
  for (std::size_t a = 0; a < indices.size(); ++a) {
    const std::uint8_t j = indices[a];
    if (j == 0 || j > kMaxNodes || std::count(indices.begin(), indices.end(), j) != 1)
      return MakeError("bad-share", "share indices must be distinct and in 1..16");
    if (j == index) continue;
    // (j - x) and (j - i) mod q, computed from small non-negative words.
    BnPtr jb(BN_new());
    BnPtr ib(BN_new());
    BnPtr xb(BN_new());
    if (!jb || !ib || !xb || BN_set_word(jb.get(), j) != 1 || BN_set_word(ib.get(), index) != 1 ||
        BN_set_word(xb.get(), x) != 1 ||
        BN_mod_sub(term.get(), jb.get(), xb.get(), c.order(), c.ctx.get()) != 1 ||
        BN_mod_mul(num.get(), num.get(), term.get(), c.order(), c.ctx.get()) != 1 ||
        BN_mod_sub(term.get(), jb.get(), ib.get(), c.order(), c.ctx.get()) != 1 ||
        BN_mod_mul(den.get(), den.get(), term.get(), c.order(), c.ctx.get()) != 1) {
      return OsslError(std::string(errc::kCrypto), "Lagrange coefficient failed");
    }
  }
  BnPtr out(BN_new());
  if (!out || BN_mod_inverse(den.get(), den.get(), c.order(), c.ctx.get()) == nullptr ||
      BN_mod_mul(out.get(), num.get(), den.get(), c.order(), c.ctx.get()) != 1) {
    return OsslError(std::string(errc::kCrypto), "Lagrange coefficient failed");
  }
  return out;
}

}  // namespace

Result<SecretBytes> ScalarOf(const PrivateKey& key) {
  if (key.type() != KeyType::kEcP256) return MakeError("wrong-key", "a threshold key is P-256");
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key.impl().pkey.get(), OSSL_PKEY_PARAM_PRIV_KEY, &raw) != 1)
    return OsslError(std::string(errc::kCrypto), "cannot read the private scalar");
  BnSecretPtr bn(raw);
  return ScalarBytes(bn.get());
}

Result<PrivateKey> KeyFromScalar(const SecretBytes& scalar) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, scalar.view(), true, "bad-share"));
  BL_TRY_ASSIGN(EcPointPtr pub, Mul(c, d.get(), nullptr));
  // Through a PKCS#8 PEM in secure memory: PrivateKey is built only by Load and Generate.
  Bytes pub_bytes(65);
  if (EC_POINT_point2oct(c.group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, pub_bytes.data(),
                         pub_bytes.size(), c.ctx.get()) != pub_bytes.size()) {
    return OsslError(std::string(errc::kCrypto), "cannot encode the public point");
  }
  std::array<char, 16> curve_name{"prime256v1"};
  std::array<OSSL_PARAM, 4> params{
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, curve_name.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub_bytes.data(),
                                        pub_bytes.size()),
      OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, nullptr, 0), OSSL_PARAM_construct_end()};
  // OSSL_PARAM_construct_BN wants native-endian bytes; OSSL_PARAM_set_BN fills them.
  SecretBytes d_native(kScalarLen);
  params[2] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, d_native.data(), d_native.size());
  if (OSSL_PARAM_set_BN(&params[2], d.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "cannot pass the scalar");
  EvpPkeyCtxPtr pctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!pctx || EVP_PKEY_fromdata_init(pctx.get()) != 1 ||
      EVP_PKEY_fromdata(pctx.get(), &raw, EVP_PKEY_KEYPAIR, params.data()) != 1) {
    return OsslError(std::string(errc::kCrypto), "cannot build the P-256 key");
  }
  EvpPkeyPtr pkey(raw);
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) return OsslError(std::string(errc::kCrypto), "out of memory");
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
      1) {
    return OsslError(std::string(errc::kCrypto), "cannot encode the P-256 key");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  SecretBytes pem(
      ByteView(reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(len)));
  return PrivateKey::Load(pem.view());
}

Result<Bytes> PublicPointOf(const Certificate& cert) {
  if (cert.key_type() != KeyType::kEcP256)
    return MakeError("wrong-key", "a threshold key is P-256");
  const EVP_PKEY* pub = X509_get0_pubkey(cert.impl().x509.get());
  std::array<std::uint8_t, 65> buf{};
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf.data(),
                                      buf.size(), &len) != 1) {
    return OsslError(std::string(errc::kCrypto), "cannot read the public point");
  }
  return NormalizePoint(ByteView(buf.data(), len));
}

Result<Bytes> SpkiOfPoint(ByteView point) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(EcPointPtr p, ParsePoint(c, point));
  Bytes uncompressed(65);
  if (EC_POINT_point2oct(c.group.get(), p.get(), POINT_CONVERSION_UNCOMPRESSED, uncompressed.data(),
                         uncompressed.size(), c.ctx.get()) != 65) {
    return OsslError(std::string(errc::kCrypto), "cannot encode the public point");
  }
  std::array<char, 16> curve_name{"prime256v1"};
  std::array<OSSL_PARAM, 3> params{
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, curve_name.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, uncompressed.data(),
                                        uncompressed.size()),
      OSSL_PARAM_construct_end()};
  EvpPkeyCtxPtr pctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!pctx || EVP_PKEY_fromdata_init(pctx.get()) != 1 ||
      EVP_PKEY_fromdata(pctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.data()) != 1) {
    return OsslError(std::string(errc::kCrypto), "cannot build the P-256 public key");
  }
  EvpPkeyPtr pkey(raw);
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey.get(), &der);
  if (len <= 0) return OsslError(std::string(errc::kCrypto), "cannot encode the public key");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

namespace {

// f(x) = a_0 + a_1·x + ... with a_0 = `secret`, or 0 for a refresh (`secret` null).
Result<Dealing> SplitPolynomial(const SecretBytes* secret, int k, int n) {
  if (!ValidParameters(k, n)) return MakeError("bad-threshold", "need 2 <= k <= n <= 16");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  for (;;) {
    std::vector<BnSecretPtr> coeffs;
    if (secret != nullptr) {
      BL_TRY_ASSIGN(BnSecretPtr a0, ScalarBn(c, secret->view(), true, "bad-share"));
      coeffs.push_back(std::move(a0));
    } else {
      BnSecretPtr zero = NewSecretBn();
      if (!zero) return OsslError(std::string(errc::kCrypto), "out of memory");
      BN_zero(zero.get());
      coeffs.push_back(std::move(zero));
    }
    for (int j = 1; j < k; ++j) {
      BL_TRY_ASSIGN(BnSecretPtr aj, RandomNonzeroScalar(c));
      coeffs.push_back(std::move(aj));
    }
    Dealing out;
    bool zero_share = false;
    for (int i = 1; i <= n && !zero_share; ++i) {
      BL_TRY_ASSIGN(BnSecretPtr fi, EvaluatePolynomial(c, coeffs, static_cast<std::uint8_t>(i)));
      zero_share = BN_is_zero(fi.get()) == 1;
      if (zero_share) break;
      BL_TRY_ASSIGN(EcPointPtr di, Mul(c, fi.get(), nullptr));
      BL_TRY_ASSIGN(Bytes di_bytes, PointBytes(c, di.get()));
      out.public_shares.push_back(std::move(di_bytes));
      out.shares.push_back(Share{static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(k),
                                 static_cast<std::uint8_t>(n), ScalarBytes(fi.get())});
    }
    if (zero_share) continue;  // a share of 0 cannot be encoded; probability 2^-256
    for (std::size_t j = 0; j < coeffs.size(); ++j) {
      if (j == 0 && secret == nullptr) {
        out.commitments.emplace_back();
        continue;
      }
      BL_TRY_ASSIGN(EcPointPtr cj, Mul(c, coeffs[j].get(), nullptr));
      BL_TRY_ASSIGN(Bytes cj_bytes, PointBytes(c, cj.get()));
      out.commitments.push_back(std::move(cj_bytes));
    }
    return out;
  }
}

}  // namespace

Result<Dealing> Split(const SecretBytes& secret, int k, int n) {
  return SplitPolynomial(&secret, k, n);
}

Result<Dealing> SplitZero(int k, int n) { return SplitPolynomial(nullptr, k, n); }

Result<std::vector<Bytes>> AddCommitments(std::span<const Bytes> old_commitments,
                                          std::span<const Bytes> zero_commitments) {
  if (old_commitments.size() != zero_commitments.size() || old_commitments.size() < 2)
    return MakeError("bad-commitments", "the refresh is for another k");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  std::vector<Bytes> out{old_commitments[0]};
  for (std::size_t j = 1; j < old_commitments.size(); ++j) {
    BL_TRY_ASSIGN(EcPointPtr a, ParsePoint(c, old_commitments[j]));
    BL_TRY_ASSIGN(EcPointPtr b, ParsePoint(c, zero_commitments[j]));
    BL_TRY(AddInto(c, a.get(), b.get()));
    auto sum = PointBytes(c, a.get());
    if (!sum.ok()) return MakeError("bad-commitments", "a refreshed commitment is infinity");
    out.push_back(std::move(*sum));
  }
  return out;
}

Result<Share> AddShare(const Share& share, const Share& delta) {
  if (share.index != delta.index || share.k != delta.k || share.n != delta.n)
    return MakeError("bad-share", "the refresh share is for another index, k or n");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, share.scalar.view(), true, "bad-share"));
  BL_TRY_ASSIGN(BnSecretPtr e, ScalarBn(c, delta.scalar.view(), true, "bad-share"));
  if (BN_mod_add(d.get(), d.get(), e.get(), c.order(), c.ctx.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "share addition failed");
  if (BN_is_zero(d.get())) return MakeError("bad-share", "the refreshed share is 0");
  return Share{share.index, share.k, share.n, ScalarBytes(d.get())};
}

Result<Share> NegateShare(const Share& delta) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, delta.scalar.view(), true, "bad-share"));
  if (BN_sub(d.get(), c.order(), d.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "share negation failed");
  return Share{delta.index, delta.k, delta.n, ScalarBytes(d.get())};
}

Result<Bytes> ExpectedPublicShare(std::span<const Bytes> commitments, std::uint8_t index) {
  if (commitments.size() < 2 || commitments.size() > kMaxNodes || index == 0 || index > kMaxNodes)
    return MakeError("bad-commitments", "commitments or index out of range");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  EcPointPtr acc(EC_POINT_new(c.group.get()));
  BnPtr power(BN_new());
  BnPtr ib(BN_new());
  if (!acc || !power || !ib || EC_POINT_set_to_infinity(c.group.get(), acc.get()) != 1 ||
      BN_one(power.get()) != 1 || BN_set_word(ib.get(), index) != 1) {
    return OsslError(std::string(errc::kCrypto), "out of memory");
  }
  for (const Bytes& cj : commitments) {
    BL_TRY_ASSIGN(EcPointPtr p, ParsePoint(c, cj));
    BL_TRY_ASSIGN(EcPointPtr term, Mul(c, power.get(), p.get()));
    BL_TRY(AddInto(c, acc.get(), term.get()));
    if (BN_mod_mul(power.get(), power.get(), ib.get(), c.order(), c.ctx.get()) != 1)
      return OsslError(std::string(errc::kCrypto), "power failed");
  }
  return PointBytes(c, acc.get());
}

Result<Bytes> PublicShareOf(const Share& share) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, share.scalar.view(), true, "bad-share"));
  BL_TRY_ASSIGN(EcPointPtr p, Mul(c, d.get(), nullptr));
  return PointBytes(c, p.get());
}

Status VerifyShare(const Share& share, std::span<const Bytes> commitments) {
  if (commitments.size() != share.k)
    return MakeError("bad-share", "the number of commitments is not k");
  BL_TRY_ASSIGN(Bytes expected, ExpectedPublicShare(commitments, share.index));
  BL_TRY_ASSIGN(Bytes actual, PublicShareOf(share));
  if (!ConstantTimeEqual(expected, actual))
    return MakeError("bad-share", "the share does not match the commitments");
  return Status::Ok();
}

Result<Bytes> LagrangeAtZero(std::span<const std::uint8_t> indices, std::uint8_t index) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnPtr l, LagrangeBn(c, indices, index));
  return PublicScalarBytes(l.get());
}

Result<Bytes> CombinePartials(std::span<const Partial> partials) {
  if (partials.empty() || partials.size() > kMaxNodes)
    return MakeError("bad-share", "between 1 and 16 partial results are needed");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  std::vector<std::uint8_t> indices;
  for (const Partial& p : partials) indices.push_back(p.index);
  EcPointPtr acc(EC_POINT_new(c.group.get()));
  if (!acc || EC_POINT_set_to_infinity(c.group.get(), acc.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "out of memory");
  for (const Partial& p : partials) {
    BL_TRY_ASSIGN(BnPtr l, LagrangeBn(c, indices, p.index));
    BL_TRY_ASSIGN(EcPointPtr z, ParsePoint(c, p.point));
    BL_TRY_ASSIGN(EcPointPtr term, Mul(c, l.get(), z.get()));
    BL_TRY(AddInto(c, acc.get(), term.get()));
  }
  return PointBytes(c, acc.get());
}

Result<SecretBytes> InterpolateSecret(std::span<const Share> shares) {
  if (shares.empty() || shares.size() > kMaxNodes)
    return MakeError("bad-share", "between 1 and 16 shares are needed");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  std::vector<std::uint8_t> indices;
  for (const Share& s : shares) indices.push_back(s.index);
  BnSecretPtr acc = NewSecretBn();
  BnSecretPtr term = NewSecretBn();
  if (!acc || !term) return OsslError(std::string(errc::kCrypto), "out of memory");
  BN_zero(acc.get());
  for (const Share& s : shares) {
    BL_TRY_ASSIGN(BnPtr l, LagrangeBn(c, indices, s.index));
    BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, s.scalar.view(), true, "bad-share"));
    if (BN_mod_mul(term.get(), l.get(), d.get(), c.order(), c.ctx.get()) != 1 ||
        BN_mod_add(acc.get(), acc.get(), term.get(), c.order(), c.ctx.get()) != 1) {
      return OsslError(std::string(errc::kCrypto), "interpolation failed");
    }
  }
  return ScalarBytes(acc.get());
}

Result<Evaluation> Evaluate(const Share& share, ByteView blinded) {
  BL_TRY_ASSIGN(Bytes public_share, PublicShareOf(share));
  return Evaluate(share, public_share, blinded);
}

// Four costs dominate (bench/threshold.sh): the two variable-base multiplications d_i·B and t·B,
// the fixed-base t·G (OpenSSL's precomputed generator table), and the encodings. D_i comes
// from the caller (the key ring computes it once per share), G's encoding is made once, and B
// is encoded once (its own octets when it came compressed).
Result<Evaluation> Evaluate(const Share& share, ByteView public_share, ByteView blinded) {
  if (public_share.size() != kPointLen) return BadPoint("the public share is not compressed");
  const Bytes& g_bytes = GeneratorCompressed();
  if (g_bytes.empty()) return OsslError(std::string(errc::kCrypto), "cannot set up P-256");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, share.scalar.view(), true, "bad-share"));
  BL_TRY_ASSIGN(EcPointPtr b, ParsePoint(c, blinded));
  BL_TRY_ASSIGN(EcPointPtr z, Mul(c, d.get(), b.get()));
  BL_TRY_ASSIGN(BnSecretPtr r, RandomNonzeroScalar(c));
  BL_TRY_ASSIGN(EcPointPtr t2, Mul(c, r.get(), nullptr));
  BL_TRY_ASSIGN(EcPointPtr t3, Mul(c, r.get(), b.get()));
  const Bytes d_bytes(public_share.begin(), public_share.end());
  Bytes b_bytes;
  if (blinded.size() == kPointLen) {
    b_bytes.assign(blinded.begin(), blinded.end());  // checked on the curve by ParsePoint
  } else {
    BL_TRY_ASSIGN(b_bytes, PointBytes(c, b.get()));
  }
  BL_TRY_ASSIGN(Bytes z_bytes, PointBytes(c, z.get()));
  BL_TRY_ASSIGN(Bytes t2_bytes, PointBytes(c, t2.get()));
  BL_TRY_ASSIGN(Bytes t3_bytes, PointBytes(c, t3.get()));
  const std::array<const Bytes*, 6> transcript{&g_bytes, &d_bytes,  &b_bytes,
                                               &z_bytes, &t2_bytes, &t3_bytes};
  BL_TRY_ASSIGN(BnPtr ch, Challenge(c, transcript));
  // s = r - c·d mod q
  BnSecretPtr s = NewSecretBn();
  if (!s || BN_mod_mul(s.get(), ch.get(), d.get(), c.order(), c.ctx.get()) != 1 ||
      BN_mod_sub(s.get(), r.get(), s.get(), c.order(), c.ctx.get()) != 1) {
    return OsslError(std::string(errc::kCrypto), "proof response failed");
  }
  Evaluation out;
  out.point = std::move(z_bytes);
  out.proof = PublicScalarBytes(ch.get());
  const Bytes s_bytes = PublicScalarBytes(s.get());
  out.proof.insert(out.proof.end(), s_bytes.begin(), s_bytes.end());
  return out;
}

// The commitments a Chaum–Pedersen proof (c, s) over D = d·G and Z = d·B stands for:
// t2 = s·G + c·D and t3 = s·B + c·Z, encoded. The proof is refused (`refusal`) if either is
// the point at infinity. The caller hashes them into the challenge and compares it with c.
struct ProofCommitments {
  Bytes t2;
  Bytes t3;
};

Result<ProofCommitments> CommitmentsOf(const Curve& c, ByteView proof, const EC_POINT* dpub,
                                       const EC_POINT* base, const EC_POINT* answer,
                                       const char* refusal) {
  BnPtr ch(BN_bin2bn(proof.data(), static_cast<int>(kScalarLen), nullptr));
  BnPtr s(BN_bin2bn(proof.data() + kScalarLen, static_cast<int>(kScalarLen), nullptr));
  EcPointPtr t2(EC_POINT_new(c.group.get()));
  EcPointPtr t3(EC_POINT_new(c.group.get()));
  EcPointPtr cz(EC_POINT_new(c.group.get()));
  if (!ch || !s || !t2 || !t3 || !cz ||
      EC_POINT_mul(c.group.get(), t2.get(), s.get(), dpub, ch.get(), c.ctx.get()) != 1 ||
      EC_POINT_mul(c.group.get(), t3.get(), nullptr, base, s.get(), c.ctx.get()) != 1 ||
      EC_POINT_mul(c.group.get(), cz.get(), nullptr, answer, ch.get(), c.ctx.get()) != 1 ||
      EC_POINT_add(c.group.get(), t3.get(), t3.get(), cz.get(), c.ctx.get()) != 1) {
    return OsslError(std::string(errc::kCrypto), "proof verification failed");
  }
  if (EC_POINT_is_at_infinity(c.group.get(), t2.get()) == 1 ||
      EC_POINT_is_at_infinity(c.group.get(), t3.get()) == 1) {
    return MakeError("bad-proof", refusal);
  }
  ProofCommitments out;
  BL_TRY_ASSIGN(out.t2, PointBytes(c, t2.get()));
  BL_TRY_ASSIGN(out.t3, PointBytes(c, t3.get()));
  return out;
}

Status VerifyEvaluation(ByteView public_share, ByteView blinded, ByteView point, ByteView proof) {
  BL_TRY(CheckProofEncoding(proof));
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(EcPointPtr dpub, ParsePoint(c, public_share));
  BL_TRY_ASSIGN(EcPointPtr b, ParsePoint(c, blinded));
  BL_TRY_ASSIGN(EcPointPtr z, ParsePoint(c, point));
  BL_TRY_ASSIGN(ProofCommitments t,
                CommitmentsOf(c, proof, dpub.get(), b.get(), z.get(), "the proof does not verify"));
  BL_TRY_ASSIGN(Bytes g_bytes, GeneratorBytes(c));
  BL_TRY_ASSIGN(Bytes d_bytes, PointBytes(c, dpub.get()));
  BL_TRY_ASSIGN(Bytes b_bytes, PointBytes(c, b.get()));
  BL_TRY_ASSIGN(Bytes z_bytes, PointBytes(c, z.get()));
  const std::array<const Bytes*, 6> transcript{&g_bytes, &d_bytes, &b_bytes,
                                               &z_bytes, &t.t2,    &t.t3};
  BL_TRY_ASSIGN(BnPtr expected, Challenge(c, transcript));
  const Bytes expected_bytes = PublicScalarBytes(expected.get());
  if (!ConstantTimeEqual(expected_bytes, proof.first(kScalarLen)))
    return MakeError("bad-proof", "the proof does not verify");
  return Status::Ok();
}

// ---- batch proofs (bulk): one DLEQ proof for many points ----

namespace {

// The composite weights of a batch: e_m = the first 16 octets of SHA-256(seed || I2OSP(m, 4)),
// seed = SHA-256 over the tag, D_i and every (B_m, Z_m) (length-prefixed, compressed), so no
// weight is known before every answer is fixed. 128-bit weights: a wrong Z_m passes with
// probability 2^-128.
Result<std::vector<BnPtr>> CompositeWeights(const Bytes& d_bytes, std::span<const Bytes> b_bytes,
                                            std::span<const Bytes> z_bytes) {
  Bytes transcript;
  auto append = [&transcript](ByteView v) {
    transcript.push_back(static_cast<std::uint8_t>(v.size() >> 8));
    transcript.push_back(static_cast<std::uint8_t>(v.size() & 0xff));
    transcript.insert(transcript.end(), v.begin(), v.end());
  };
  append(AsBytes(kBatchTag));
  append(d_bytes);
  for (std::size_t m = 0; m < b_bytes.size(); ++m) {
    append(b_bytes[m]);
    append(z_bytes[m]);
  }
  const Bytes seed = Sha256(transcript);
  std::vector<BnPtr> out;
  out.reserve(b_bytes.size());
  for (std::size_t m = 0; m < b_bytes.size(); ++m) {
    Bytes input = seed;
    for (int shift = 24; shift >= 0; shift -= 8)
      input.push_back(static_cast<std::uint8_t>((m >> static_cast<unsigned>(shift)) & 0xffU));
    const Bytes digest = Sha256(input);
    BnPtr e(BN_bin2bn(digest.data(), 16, nullptr));
    if (!e) return OsslError(std::string(errc::kCrypto), "out of memory");
    out.push_back(std::move(e));
  }
  return out;
}

// sum_m weights[m]·points[m] (points affine or not; one multi-scalar multiplication).
Result<EcPointPtr> Composite(const Curve& c, const std::vector<EcPointPtr>& points,
                             const std::vector<BnPtr>& weights) {
  std::vector<const EC_POINT*> p;
  std::vector<const BIGNUM*> w;
  for (std::size_t m = 0; m < points.size(); ++m) {
    p.push_back(points[m].get());
    w.push_back(weights[m].get());
  }
  EcPointPtr out(EC_POINT_new(c.group.get()));
  if (!out || EC_POINTs_mul(c.group.get(), out.get(), nullptr, p.size(), p.data(), w.data(),
                            c.ctx.get()) != 1) {
    return OsslError(std::string(errc::kCrypto), "multi-scalar multiplication failed");
  }
  return out;
}

// The proof c || s that log_G(D) = log_M(Zc), under `tag`.
Result<Bytes> ProveDleq(const Curve& c, const BIGNUM* d, const Bytes& d_bytes, const EC_POINT* m,
                        const Bytes& m_bytes, const Bytes& z_bytes, std::string_view tag) {
  const Bytes& g_bytes = GeneratorCompressed();
  if (g_bytes.empty()) return OsslError(std::string(errc::kCrypto), "cannot set up P-256");
  BL_TRY_ASSIGN(BnSecretPtr r, RandomNonzeroScalar(c));
  BL_TRY_ASSIGN(EcPointPtr t2, Mul(c, r.get(), nullptr));
  BL_TRY_ASSIGN(EcPointPtr t3, Mul(c, r.get(), m));
  BL_TRY_ASSIGN(Bytes t2_bytes, PointBytes(c, t2.get()));
  BL_TRY_ASSIGN(Bytes t3_bytes, PointBytes(c, t3.get()));
  const std::array<const Bytes*, 6> transcript{&g_bytes, &d_bytes,  &m_bytes,
                                               &z_bytes, &t2_bytes, &t3_bytes};
  BL_TRY_ASSIGN(BnPtr ch, Challenge(c, transcript, tag));
  BnSecretPtr s = NewSecretBn();
  if (!s || BN_mod_mul(s.get(), ch.get(), d, c.order(), c.ctx.get()) != 1 ||
      BN_mod_sub(s.get(), r.get(), s.get(), c.order(), c.ctx.get()) != 1) {
    return OsslError(std::string(errc::kCrypto), "proof response failed");
  }
  Bytes out = PublicScalarBytes(ch.get());
  const Bytes s_bytes = PublicScalarBytes(s.get());
  out.insert(out.end(), s_bytes.begin(), s_bytes.end());
  return out;
}

}  // namespace

Result<BatchEvaluation> EvaluateBatch(const Share& share, ByteView public_share,
                                      std::span<const Bytes> blinded) {
  if (public_share.size() != kPointLen) return BadPoint("the public share is not compressed");
  if (blinded.empty()) return BadPoint("no point to evaluate");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, share.scalar.view(), true, "bad-share"));
  std::vector<EcPointPtr> b;
  std::vector<Bytes> b_bytes;
  BatchEvaluation out;
  for (const Bytes& one : blinded) {
    BL_TRY_ASSIGN(EcPointPtr p, ParsePoint(c, one));
    BL_TRY_ASSIGN(EcPointPtr z, Mul(c, d.get(), p.get()));
    BL_TRY_ASSIGN(Bytes z_bytes, PointBytes(c, z.get()));
    if (one.size() == kPointLen) {
      b_bytes.push_back(one);  // checked on the curve by ParsePoint
    } else {
      BL_TRY_ASSIGN(Bytes compressed, PointBytes(c, p.get()));
      b_bytes.push_back(std::move(compressed));
    }
    b.push_back(std::move(p));
    out.points.push_back(std::move(z_bytes));
  }
  const Bytes d_bytes(public_share.begin(), public_share.end());
  BL_TRY_ASSIGN(std::vector<BnPtr> weights, CompositeWeights(d_bytes, b_bytes, out.points));
  // The prover's shortcut (RFC 9497's ComputeCompositesFast): Zc = d·M, not sum e_m·Z_m.
  BL_TRY_ASSIGN(EcPointPtr m, Composite(c, b, weights));
  BL_TRY_ASSIGN(EcPointPtr zc, Mul(c, d.get(), m.get()));
  BL_TRY_ASSIGN(Bytes m_bytes, PointBytes(c, m.get()));
  BL_TRY_ASSIGN(Bytes zc_bytes, PointBytes(c, zc.get()));
  BL_TRY_ASSIGN(out.proof,
                ProveDleq(c, d.get(), d_bytes, m.get(), m_bytes, zc_bytes, kBatchProofTag));
  return out;
}

Status VerifyBatch(ByteView public_share, std::span<const Bytes> blinded,
                   std::span<const Bytes> points, ByteView proof) {
  if (blinded.empty() || blinded.size() != points.size())
    return MakeError("bad-proof", "a batch needs one answer per point");
  BL_TRY(CheckProofEncoding(proof));
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(EcPointPtr dpub, ParsePoint(c, public_share));
  BL_TRY_ASSIGN(Bytes d_bytes, PointBytes(c, dpub.get()));
  std::vector<EcPointPtr> b;
  std::vector<EcPointPtr> z;
  std::vector<Bytes> b_bytes;
  std::vector<Bytes> z_bytes;
  for (std::size_t m = 0; m < blinded.size(); ++m) {
    BL_TRY_ASSIGN(EcPointPtr bp, ParsePoint(c, blinded[m]));
    BL_TRY_ASSIGN(EcPointPtr zp, ParsePoint(c, points[m]));
    BL_TRY_ASSIGN(Bytes bb, PointBytes(c, bp.get()));
    BL_TRY_ASSIGN(Bytes zb, PointBytes(c, zp.get()));
    b.push_back(std::move(bp));
    z.push_back(std::move(zp));
    b_bytes.push_back(std::move(bb));
    z_bytes.push_back(std::move(zb));
  }
  BL_TRY_ASSIGN(std::vector<BnPtr> weights, CompositeWeights(d_bytes, b_bytes, z_bytes));
  BL_TRY_ASSIGN(EcPointPtr m, Composite(c, b, weights));
  BL_TRY_ASSIGN(EcPointPtr zc, Composite(c, z, weights));
  BL_TRY_ASSIGN(Bytes m_bytes, PointBytes(c, m.get()));
  BL_TRY_ASSIGN(Bytes zc_bytes, PointBytes(c, zc.get()));
  BL_TRY_ASSIGN(ProofCommitments t, CommitmentsOf(c, proof, dpub.get(), m.get(), zc.get(),
                                                  "the batch proof does not verify"));
  const Bytes& g_bytes = GeneratorCompressed();
  const std::array<const Bytes*, 6> transcript{&g_bytes,  &d_bytes, &m_bytes,
                                               &zc_bytes, &t.t2,    &t.t3};
  BL_TRY_ASSIGN(BnPtr expected, Challenge(c, transcript, kBatchProofTag));
  if (!ConstantTimeEqual(PublicScalarBytes(expected.get()), proof.first(kScalarLen)))
    return MakeError("bad-proof", "the batch proof does not verify");
  return Status::Ok();
}

Result<Bytes> NormalizePoint(ByteView point) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(EcPointPtr p, ParsePoint(c, point));
  return PointBytes(c, p.get());
}

Result<Bytes> UncompressedPoint(ByteView point) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(EcPointPtr p, ParsePoint(c, point));
  Bytes out(65);
  if (EC_POINT_point2oct(c.group.get(), p.get(), POINT_CONVERSION_UNCOMPRESSED, out.data(),
                         out.size(), c.ctx.get()) != out.size()) {
    return OsslError(std::string(errc::kCrypto), "cannot encode a point");
  }
  return out;
}

Result<Bytes> XCoordinate(ByteView point) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(EcPointPtr p, ParsePoint(c, point));
  BnPtr x(BN_new());
  if (!x ||
      EC_POINT_get_affine_coordinates(c.group.get(), p.get(), x.get(), nullptr, c.ctx.get()) != 1) {
    return OsslError(std::string(errc::kCrypto), "cannot read the x-coordinate");
  }
  return PublicScalarBytes(x.get());
}

SecretBytes EncodeShare(const Share& share) {
  SecretBytes out(4 + share.scalar.size());
  out[0] = kShareVersion;
  out[1] = share.index;
  out[2] = share.k;
  out[3] = share.n;
  std::copy(share.scalar.data(), share.scalar.data() + share.scalar.size(), out.data() + 4);
  return out;
}

Result<Share> ParseShare(ByteView data) {
  if (data.size() != kShareLen || data[0] != kShareVersion)
    return MakeError("bad-share", "a share is 36 octets of version 1");
  Share s;
  s.index = data[1];
  s.k = data[2];
  s.n = data[3];
  if (!ValidParameters(s.k, s.n) || s.index == 0 || s.index > s.n)
    return MakeError("bad-share", "share parameters out of range");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY(ScalarBn(c, data.subspan(4), true, "bad-share"));
  s.scalar = SecretBytes(data.subspan(4));
  return s;
}

Status CheckProofEncoding(ByteView proof) {
  if (proof.size() != kProofLen) return MakeError("bad-proof", "a proof is 64 octets");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY(ScalarBn(c, proof.first(kScalarLen), false, "bad-proof"));
  BL_TRY(ScalarBn(c, proof.subspan(kScalarLen), false, "bad-proof"));
  return Status::Ok();
}

Bytes EncodeCommitments(std::span<const Bytes> commitments) {
  Bytes out;
  for (const Bytes& p : commitments) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Result<std::vector<Bytes>> ParseCommitments(ByteView data, int k) {
  if (k < 2 || k > kMaxNodes || data.size() != kPointLen * static_cast<std::size_t>(k))
    return MakeError("bad-commitments", "commitments must be k compressed points");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  std::vector<Bytes> out;
  for (int j = 0; j < k; ++j) {
    ByteView one = data.subspan(kPointLen * static_cast<std::size_t>(j), kPointLen);
    if (one[0] != 0x02 && one[0] != 0x03)
      return MakeError("bad-commitments", "commitments must be compressed points");
    auto p = ParsePoint(c, one);
    if (!p.ok()) return MakeError("bad-commitments", "a commitment is not a point on P-256");
    out.emplace_back(one.begin(), one.end());
  }
  return out;
}

// ---- share repair (docs/threshold.md, "Node replacement") ----

Result<RoundKey> NewRoundKey() {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr a, RandomNonzeroScalar(c));
  BL_TRY_ASSIGN(EcPointPtr p, Mul(c, a.get(), nullptr));
  RoundKey out;
  out.scalar = ScalarBytes(a.get());
  BL_TRY_ASSIGN(out.point, PointBytes(c, p.get()));
  return out;
}

Result<Bytes> PointOfScalar(const SecretBytes& scalar) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr a, ScalarBn(c, scalar.view(), true, "bad-key"));
  BL_TRY_ASSIGN(EcPointPtr p, Mul(c, a.get(), nullptr));
  return PointBytes(c, p.get());
}

// Schnorr over P-256: t random, R = t·G, c = H(G, D_i, R, message), s = t - c·d_i.
Result<Bytes> SignWithShare(const Share& share, ByteView public_share, ByteView message) {
  if (public_share.size() != kPointLen) return BadPoint("the public share is not compressed");
  if (message.size() > 0xffff) return MakeError("bad-signature", "the message is too long");
  const Bytes& g_bytes = GeneratorCompressed();
  if (g_bytes.empty()) return OsslError(std::string(errc::kCrypto), "cannot set up P-256");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, share.scalar.view(), true, "bad-share"));
  BL_TRY_ASSIGN(BnSecretPtr t, RandomNonzeroScalar(c));
  BL_TRY_ASSIGN(EcPointPtr r, Mul(c, t.get(), nullptr));
  BL_TRY_ASSIGN(Bytes r_bytes, PointBytes(c, r.get()));
  const Bytes d_bytes(public_share.begin(), public_share.end());
  const Bytes m_bytes(message.begin(), message.end());
  const std::array<const Bytes*, 4> transcript{&g_bytes, &d_bytes, &r_bytes, &m_bytes};
  BL_TRY_ASSIGN(BnPtr ch, Challenge(c, transcript, kSignatureTag));
  BnSecretPtr s = NewSecretBn();
  if (!s || BN_mod_mul(s.get(), ch.get(), d.get(), c.order(), c.ctx.get()) != 1 ||
      BN_mod_sub(s.get(), t.get(), s.get(), c.order(), c.ctx.get()) != 1) {
    return OsslError(std::string(errc::kCrypto), "signature failed");
  }
  Bytes out = PublicScalarBytes(ch.get());
  const Bytes s_bytes = PublicScalarBytes(s.get());
  out.insert(out.end(), s_bytes.begin(), s_bytes.end());
  return out;
}

Status VerifyShareSignature(ByteView public_share, ByteView message, ByteView signature) {
  if (signature.size() != kProofLen || message.size() > 0xffff)
    return MakeError("bad-signature", "a signature is 64 octets");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  auto ch = ScalarBn(c, signature.first(kScalarLen), false, "bad-signature");
  auto s = ScalarBn(c, signature.subspan(kScalarLen), false, "bad-signature");
  if (!ch.ok() || !s.ok()) return MakeError("bad-signature", "the signature is out of range");
  BL_TRY_ASSIGN(EcPointPtr dpub, ParsePoint(c, public_share));
  EcPointPtr r(EC_POINT_new(c.group.get()));
  // R = s·G + c·D_i
  if (!r || EC_POINT_mul(c.group.get(), r.get(), s->get(), dpub.get(), ch->get(), c.ctx.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "signature check failed");
  if (EC_POINT_is_at_infinity(c.group.get(), r.get()) == 1)
    return MakeError("bad-signature", "the signature does not verify");
  const Bytes& g_bytes = GeneratorCompressed();
  BL_TRY_ASSIGN(Bytes d_bytes, PointBytes(c, dpub.get()));
  BL_TRY_ASSIGN(Bytes r_bytes, PointBytes(c, r.get()));
  const Bytes m_bytes(message.begin(), message.end());
  const std::array<const Bytes*, 4> transcript{&g_bytes, &d_bytes, &r_bytes, &m_bytes};
  BL_TRY_ASSIGN(BnPtr expected, Challenge(c, transcript, kSignatureTag));
  if (!ConstantTimeEqual(PublicScalarBytes(expected.get()), signature.first(kScalarLen)))
    return MakeError("bad-signature", "the signature does not verify");
  return Status::Ok();
}

Result<std::vector<SecretBytes>> RepairPieces(const Share& share,
                                              std::span<const std::uint8_t> helpers,
                                              std::uint8_t target) {
  if (target == 0 || target > share.n)
    return MakeError("bad-index", "the index to repair must be in 1..n (never 0: that is the key)");
  if (helpers.size() < share.k || helpers.size() > kMaxNodes)
    return MakeError("bad-helpers", "a repair needs at least k helpers");
  for (std::uint8_t h : helpers) {
    if (h == target) return MakeError("bad-helpers", "a helper cannot hold the index repaired");
    if (h == 0 || h > share.n) return MakeError("bad-helpers", "a helper index is out of range");
  }
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnPtr lambda, LagrangeBn(c, helpers, share.index, target));
  BL_TRY_ASSIGN(BnSecretPtr d, ScalarBn(c, share.scalar.view(), true, "bad-share"));
  BnSecretPtr last = NewSecretBn();
  BnSecretPtr piece = NewSecretBn();
  if (!last || !piece || BN_mod_mul(last.get(), lambda.get(), d.get(), c.order(), c.ctx.get()) != 1)
    return OsslError(std::string(errc::kCrypto), "repair term failed");
  std::vector<SecretBytes> out;
  for (std::size_t i = 0; i + 1 < helpers.size(); ++i) {
    if (BN_priv_rand_range(piece.get(), c.order()) != 1 ||
        BN_mod_sub(last.get(), last.get(), piece.get(), c.order(), c.ctx.get()) != 1) {
      return OsslError(std::string(errc::kCrypto), "random failed");
    }
    out.push_back(ScalarBytes(piece.get()));
  }
  out.push_back(ScalarBytes(last.get()));
  return out;
}

Result<SecretBytes> AddScalars(std::span<const SecretBytes> scalars) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BnSecretPtr acc = NewSecretBn();
  if (!acc) return OsslError(std::string(errc::kCrypto), "out of memory");
  BN_zero(acc.get());
  for (const SecretBytes& s : scalars) {
    BL_TRY_ASSIGN(BnSecretPtr v, ScalarBn(c, s.view(), false, "bad-piece"));
    if (BN_mod_add(acc.get(), acc.get(), v.get(), c.order(), c.ctx.get()) != 1)
      return OsslError(std::string(errc::kCrypto), "sum failed");
  }
  return ScalarBytes(acc.get());
}

namespace {

// The AES-256-GCM key between two round keys: HKDF-SHA256 over x(own·peer), salt empty, info
// the message's context (which names both ends), so each direction and message has its own key.
Result<SecretBytes> PairKey(const SecretBytes& own_scalar, ByteView peer_point,
                            std::string_view context) {
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  BL_TRY_ASSIGN(BnSecretPtr a, ScalarBn(c, own_scalar.view(), true, "bad-key"));
  BL_TRY_ASSIGN(EcPointPtr peer, ParsePoint(c, peer_point));
  BL_TRY_ASSIGN(EcPointPtr shared, Mul(c, a.get(), peer.get()));
  BnSecretPtr x = NewSecretBn();
  if (!x || EC_POINT_get_affine_coordinates(c.group.get(), shared.get(), x.get(), nullptr,
                                            c.ctx.get()) != 1) {
    return OsslError(std::string(errc::kCrypto), "ECDH failed");
  }
  SecretBytes z = ScalarBytes(x.get());
  SecretBytes key(32);
  using KdfPtr = std::unique_ptr<EVP_KDF, OsslDeleter<EVP_KDF_free>>;
  using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, OsslDeleter<EVP_KDF_CTX_free>>;
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  KdfCtxPtr kctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
  std::array<char, 8> digest{"SHA256"};
  std::string info(context);
  std::array<OSSL_PARAM, 4> params{
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z.data(), z.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  if (!kctx || EVP_KDF_derive(kctx.get(), key.data(), key.size(), params.data()) != 1)
    return OsslError(std::string(errc::kCrypto), "HKDF failed");
  return key;
}

}  // namespace

Result<Bytes> SealBetween(const SecretBytes& own_scalar, ByteView peer_point,
                          std::string_view context, ByteView plaintext) {
  BL_TRY_ASSIGN(SecretBytes key, PairKey(own_scalar, peer_point, context));
  return Seal(key, context, plaintext);
}

Result<SecretBytes> OpenBetween(const SecretBytes& own_scalar, ByteView peer_point,
                                std::string_view context, ByteView sealed) {
  BL_TRY_ASSIGN(SecretBytes key, PairKey(own_scalar, peer_point, context));
  auto plain = Unseal(key, context, sealed);
  if (!plain.ok()) return MakeError("bad-piece", "the piece does not decrypt for this round");
  return std::move(*plain);
}

// ---- distributed key generation (docs/threshold.md, "Distributed key generation") ----

Result<Dealing> DealRandom(int k, int n) {
  if (!ValidParameters(k, n)) return MakeError("bad-threshold", "need 2 <= k <= n <= 16");
  BL_TRY_ASSIGN(RoundKey a0, NewRoundKey());  // a uniform scalar in [1, q-1]
  return Split(a0.scalar, k, n);
}

Result<std::vector<Bytes>> SumCommitments(std::span<const std::vector<Bytes>> per_node) {
  if (per_node.size() < 2) return MakeError("bad-commitments", "need commitments from 2 nodes");
  const std::size_t k = per_node[0].size();
  if (k < 2 || k > kMaxNodes) return MakeError("bad-commitments", "commitments out of range");
  BL_TRY_ASSIGN(Curve c, MakeCurve());
  std::vector<Bytes> out;
  for (std::size_t m = 0; m < k; ++m) {
    EcPointPtr acc;
    for (const auto& node : per_node) {
      if (node.size() != k) return MakeError("bad-commitments", "the nodes' k differ");
      BL_TRY_ASSIGN(EcPointPtr p, ParsePoint(c, node[m]));
      if (!acc) {
        acc = std::move(p);
      } else {
        BL_TRY(AddInto(c, acc.get(), p.get()));
      }
    }
    auto sum = PointBytes(c, acc.get());
    if (!sum.ok()) return MakeError("bad-commitments", "a summed commitment is infinity");
    out.push_back(std::move(*sum));
  }
  return out;
}

Result<Share> SumShares(std::span<const Share> pieces) {
  if (pieces.size() < 2) return MakeError("bad-share", "need pieces from 2 nodes");
  Share sum{pieces[0].index, pieces[0].k, pieces[0].n, SecretBytes(pieces[0].scalar.view())};
  for (std::size_t i = 1; i < pieces.size(); ++i) {
    BL_TRY_ASSIGN(sum, AddShare(sum, pieces[i]));
  }
  return sum;
}

namespace {
// A field whose text comes from outside, with its length: no value can end one field and start
// another.
std::string Field(std::string_view name, std::string_view value) {
  return std::string(name) + "=" + std::to_string(value.size()) + ":" + std::string(value) + "\n";
}
}  // namespace

std::string DkgStartMessage(std::string_view group, std::string_view round, int k, int n,
                            std::uint8_t index, std::string_view node_url, ByteView round_key,
                            std::span<const Bytes> commitments) {
  return "blindlist threshold-dkg-start v1\n" + Field("group", group) + Field("round", round) +
         Field("k", std::to_string(k)) + Field("n", std::to_string(n)) +
         Field("index", std::to_string(index)) + Field("node", node_url) +
         Field("round-key", ToHex(round_key)) +
         Field("commitments", ToHex(EncodeCommitments(commitments)));
}

Bytes DkgViewDigest(std::string_view group, std::string_view round, int k,
                    std::span<const std::string> node_urls,
                    std::span<const std::string> start_messages) {
  std::string text = "blindlist threshold-dkg-view v1\n" + Field("group", group) +
                     Field("round", round) + Field("k", std::to_string(k)) +
                     Field("n", std::to_string(node_urls.size()));
  for (const auto& url : node_urls) text += Field("node", url);
  for (const auto& message : start_messages) text += Field("start", message);
  return Sha256(AsBytes(text));
}

std::string DkgDealMessage(std::string_view group, std::string_view round, std::uint8_t index,
                           ByteView view_digest) {
  return "blindlist threshold-dkg-deal v1\n" + Field("group", group) + Field("round", round) +
         Field("index", std::to_string(index)) + Field("view", ToHex(view_digest));
}

std::string DkgAcceptMessage(std::string_view group, std::string_view round, std::uint8_t index,
                             ByteView view_digest, std::span<const Bytes> summed_commitments) {
  return "blindlist threshold-dkg-accept v1\n" + Field("group", group) + Field("round", round) +
         Field("index", std::to_string(index)) + Field("view", ToHex(view_digest)) +
         Field("commitments", ToHex(Sha256(EncodeCommitments(summed_commitments))));
}

std::string DkgPieceContext(std::string_view group, std::string_view round, std::uint8_t from,
                            std::uint8_t to, ByteView view_digest) {
  return "blindlist threshold-dkg-piece v2\n" + Field("group", group) + Field("round", round) +
         Field("from", std::to_string(from)) + Field("to", std::to_string(to)) +
         Field("view", ToHex(view_digest));
}

void WipeText(std::string& text) { OPENSSL_cleanse(text.data(), text.size()); }

}  // namespace blindlist::crypto::threshold
