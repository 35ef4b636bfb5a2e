// WrapTarget and CekWrapper (cms.h): one message key wrapped to many recipients, as groupd's
// per-member re-wrap does for every member of a list. What does not change between wraps to
// one certificate is made once (WrapTarget); what does not change within one message is made
// once per wrapper (the EC originator key, a block of random bytes). The RSA paddings are
// built here (RFC 8017, 7.1.1 and 7.2.1) and applied with the raw public-key operation:
// OpenSSL 3.0 draws its padding randomness with one DRBG call (and a getpid) per call, plus
// one per zero byte for PKCS#1 v1.5, which cost a quarter of an RSA-2048 member's wrap.
// The public-key operation is square-and-multiply with Montgomery products (the modulus's
// context made once per certificate) that never converts the message into the Montgomery
// domain or out of it: the result is scaled back by one product with R^e mod n, also made once
// per certificate. For e = 65537 that is 18 products, where BN_mod_exp_mont (what
// RSA_public_encrypt uses) makes 19 and a reduction.
//
// ECDH_compute_key and EVP_PKEY_get0_EC_KEY are deprecated in OpenSSL 3.0. They reach the same
// constant-time code as EVP_PKEY_derive without setting a peer per member (which compares the
// curves and takes a key reference each time), as primitives.cc's EcdhWithKey does.
// SHA256_Init, _Update and _Final (for OAEP's MGF1 and the X9.63 KDF, 8 digests of a block or
// a few for each RSA member) are deprecated too: they are the same block function as the EVP
// digest without its dispatch, which cost about as much again for one block.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdh.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "crypto/cms.h"
#include "crypto/der.h"
#include "crypto/ossl.h"
#include "crypto/primitives.h"

namespace blindlist::crypto {

struct WrapTarget::Impl {
  Certificate cert;
  KeyType type = KeyType::kOther;
  EVP_PKEY* pub = nullptr;      // owned by cert
  Bytes rid;                    // the IssuerAndSerialNumber DER naming the certificate
  std::size_t modulus_len = 0;  // RSA
  BnPtr rsa_n;                  // RSA: the modulus,
  BnPtr rsa_e;                  // the public exponent,
  BnMontCtxPtr rsa_mont;        // the modulus's Montgomery context (read-only once made),
  BnPtr rsa_r_to_e;             // and R^e mod n, R the Montgomery radix (see RsaPublic)
  // RSA: the KeyTransRecipientInfo's DER up to its encryptedKey's octets (whose length is the
  // modulus's), for OAEP and for PKCS#1 v1.5: all of it but the modulus_len octets of the key.
  Bytes rsa_head_oaep;
  Bytes rsa_head_pkcs1;
  const EC_GROUP* curve = nullptr;  // EC: the key's curve (owned by the key)
  EcPointPtr point;                 // EC: the public point, decoded once
};

namespace {

// KeyTransRecipientInfo ::= SEQUENCE { version 0, rid, keyEncryptionAlgorithm,
// encryptedKey OCTET STRING } (RFC 5652, 6.2.1), up to the encryptedKey's `key_len` octets.
Bytes KeyTransHead(ByteView rid, ByteView alg, std::size_t key_len) {
  Bytes whole = der::Encode(der::kSequence, {der::EncodeInteger(0), rid, alg,
                                             der::Encode(der::kOctetString, Bytes(key_len))});
  whole.resize(whole.size() - key_len);
  return whole;
}

}  // namespace

Result<WrapTarget> WrapTarget::Prepare(const Certificate& cert) {
  BL_TRY(CheckWrapTarget(cert));
  auto impl = std::make_shared<Impl>();
  impl->cert = cert;
  impl->type = cert.key_type();
  impl->pub = X509_get0_pubkey(cert.impl().x509.get());
  impl->rid = cert.IssuerAndSerialDer();
  if (impl->pub == nullptr || impl->rid.empty())
    return OsslError("crypto", "the certificate has no usable key or issuer");
  if (impl->type == KeyType::kRsa) {
    impl->modulus_len = static_cast<std::size_t>(EVP_PKEY_get_size(impl->pub));
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    const bool got = EVP_PKEY_get_bn_param(impl->pub, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
                     EVP_PKEY_get_bn_param(impl->pub, OSSL_PKEY_PARAM_RSA_E, &e) == 1;
    impl->rsa_n.reset(n);
    impl->rsa_e.reset(e);
    impl->rsa_mont.reset(BN_MONT_CTX_new());
    impl->rsa_head_oaep = KeyTransHead(impl->rid, OaepSha256AlgorithmId(), impl->modulus_len);
    impl->rsa_head_pkcs1 = KeyTransHead(
        impl->rid, EncodeAlgorithmId(oid::kRsaEncryption, der::EncodeNull()), impl->modulus_len);
    impl->rsa_r_to_e.reset(BN_new());
    BnCtxPtr bn_ctx(BN_CTX_new());
    BnPtr r(BN_new());
    // R mod n is 1 in the Montgomery domain; R^e mod n is its e-th power.
    if (!got || !impl->rsa_mont || !impl->rsa_r_to_e || !bn_ctx || !r ||
        BN_MONT_CTX_set(impl->rsa_mont.get(), impl->rsa_n.get(), bn_ctx.get()) != 1 ||
        BN_to_montgomery(r.get(), BN_value_one(), impl->rsa_mont.get(), bn_ctx.get()) != 1 ||
        BN_mod_exp_mont(impl->rsa_r_to_e.get(), r.get(), impl->rsa_e.get(), impl->rsa_n.get(),
                        bn_ctx.get(), impl->rsa_mont.get()) != 1) {
      return OsslError("crypto", "RSA setup failed");
    }
  }
  if (impl->type == KeyType::kEcP256 || impl->type == KeyType::kEcP384) {
    const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(impl->pub);
    const EC_POINT* point = ec != nullptr ? EC_KEY_get0_public_key(ec) : nullptr;
    impl->curve = ec != nullptr ? EC_KEY_get0_group(ec) : nullptr;
    if (point == nullptr || impl->curve == nullptr) return OsslError("crypto", "EC setup failed");
    impl->point.reset(EC_POINT_dup(point, impl->curve));
    if (!impl->point) return OsslError("crypto", "EC setup failed");
  }
  WrapTarget target;
  target.impl_ = std::move(impl);
  return target;
}

const Certificate& WrapTarget::certificate() const { return impl_->cert; }

namespace {

constexpr std::size_t kSha256Len = 32;
constexpr std::size_t kRandomBlock = 4096;  // one DRBG call serves about 18 RSA-2048 members

// out = m^e mod n for m < n, `work` a temporary (secret: it holds powers of m). With
// M(a, b) = a b R^-1 mod n, the Montgomery product: y = m is m^j R^-(j-1) for j = 1; squaring
// gives m^2j R^-(2j-1) and a product with m gives m^(j+1) R^-j, so at j = e one more product,
// with R^e mod n, gives m^e. Each product is OpenSSL's bn_mul_mont, as in BN_mod_exp_mont; the
// exponent is public, so branching on its bits leaks nothing.
bool RsaPublic(BIGNUM* out, BIGNUM* work, const BIGNUM* m, const WrapTarget::Impl& t, BN_CTX* ctx) {
  const BIGNUM* e = t.rsa_e.get();
  BN_MONT_CTX* mont = t.rsa_mont.get();  // read only: OpenSSL 3.0 takes it non-const
  if (BN_copy(work, m) == nullptr) return false;
  for (int bit = BN_num_bits(e) - 2; bit >= 0; --bit) {
    if (BN_mod_mul_montgomery(work, work, work, mont, ctx) != 1) return false;
    if (BN_is_bit_set(e, bit) != 0 && BN_mod_mul_montgomery(work, work, m, mont, ctx) != 1)
      return false;
  }
  return BN_mod_mul_montgomery(out, work, t.rsa_r_to_e.get(), mont, ctx) == 1;
}

}  // namespace

// Per message: random bytes drawn from the DRBG a block at a time (secret until used, wiped with
// the wrapper), and the encoded message of the RSA operation.
struct CekWrapper::Scratch {
  SecretBytes random = SecretBytes(kRandomBlock);
  std::size_t used = kRandomBlock;  // nothing drawn yet
  SecretBytes em;
  // The RSA operation's numbers: the encoded message (secret, cleared after each use) and the
  // temporaries of the exponentiation (cleared when the wrapper goes).
  BnCtxPtr bn_ctx{BN_CTX_new()};
  BnSecretPtr bn_message{BN_new()};
  BnSecretPtr bn_power{BN_new()};  // m^j R^-(j-1) mod n on the way to m^e
  BnPtr bn_result{BN_new()};
  std::array<std::uint8_t, kSha256Len> empty_label_hash{};
  bool have_label_hash = false;

  Status Refill() {
    BL_TRY(RandomBytes(random.data(), random.size()));
    used = 0;
    return Status::Ok();
  }
  Status Draw(std::uint8_t* out, std::size_t n) {
    while (n > 0) {
      if (used == random.size()) BL_TRY(Refill());
      const std::size_t take = std::min(n, random.size() - used);
      std::memcpy(out, random.data() + used, take);
      OPENSSL_cleanse(random.data() + used, take);
      used += take;
      out += take;
      n -= take;
    }
    return Status::Ok();
  }
  // Nonzero random octets (PKCS#1 v1.5's PS): each zero drawn is drawn again until it is not,
  // so each octet is uniform over 1..255. How often depends on the random bytes only.
  Status DrawNonZero(std::uint8_t* out, std::size_t n) {
    BL_TRY(Draw(out, n));
    for (std::size_t i = 0; i < n; ++i) {
      while (out[i] == 0) BL_TRY(Draw(out + i, 1));
    }
    return Status::Ok();
  }
  // SHA-256 over the concatenation of `parts` into `out`.
  // The state is wiped after (it has seen secrets: OAEP's seed, ECDH's shared value).
  static Status Digest(std::initializer_list<ByteView> parts, std::uint8_t* out) {
    SHA256_CTX ctx;
    bool ok = SHA256_Init(&ctx) == 1;
    for (ByteView p : parts) ok = ok && SHA256_Update(&ctx, p.data(), p.size()) == 1;
    ok = ok && SHA256_Final(out, &ctx) == 1;
    OPENSSL_cleanse(&ctx, sizeof(ctx));
    if (!ok) return OsslError("crypto", "SHA-256 failed");
    return Status::Ok();
  }
  // target ^= MGF1-SHA-256(seed, target's length) (RFC 8017, B.2.1).
  Status XorMgf1(ByteView seed, std::uint8_t* target, std::size_t len) {
    std::array<std::uint8_t, kSha256Len> block{};
    for (std::uint32_t counter = 0; len > 0; ++counter) {
      const std::array<std::uint8_t, 4> c = {
          static_cast<std::uint8_t>(counter >> 24), static_cast<std::uint8_t>(counter >> 16),
          static_cast<std::uint8_t>(counter >> 8), static_cast<std::uint8_t>(counter)};
      BL_TRY(Digest({seed, ByteView(c.data(), c.size())}, block.data()));
      const std::size_t n = std::min(len, block.size());
      for (std::size_t i = 0; i < n; ++i) target[i] ^= block[i];
      target += n;
      len -= n;
    }
    OPENSSL_cleanse(block.data(), block.size());
    return Status::Ok();
  }
  // The encoded message, k octets of zeros (wiped after each use, reused across recipients).
  void SizeMessage(std::size_t k) {
    if (em.size() != k) em = SecretBytes(k);
    OPENSSL_cleanse(em.data(), em.size());
  }
  // EM = 0x00 || 0x02 || PS || 0x00 || M (RFC 8017, 7.2.1), k octets.
  Status EncodePkcs1(ByteView m, std::size_t k) {
    if (k < m.size() + 11) return MakeError("crypto", "the RSA key is too small for the CEK");
    SizeMessage(k);
    em[0] = 0x00;
    em[1] = 0x02;
    const std::size_t ps = k - 3 - m.size();
    BL_TRY(DrawNonZero(em.data() + 2, ps));
    em[2 + ps] = 0x00;
    std::memcpy(em.data() + 3 + ps, m.data(), m.size());
    return Status::Ok();
  }
  // EM = 0x00 || maskedSeed || maskedDB (RFC 8017, 7.1.1), SHA-256 and MGF1-SHA-256, empty
  // label, k octets.
  Status EncodeOaep(ByteView m, std::size_t k) {
    if (k < m.size() + 2 * kSha256Len + 2)
      return MakeError("crypto", "the RSA key is too small for the CEK");
    if (!have_label_hash) {
      BL_TRY(Digest({}, empty_label_hash.data()));
      have_label_hash = true;
    }
    SizeMessage(k);  // zeros: EM[0] and PS
    std::uint8_t* seed = em.data() + 1;
    std::uint8_t* db = seed + kSha256Len;
    const std::size_t db_len = k - kSha256Len - 1;
    std::memcpy(db, empty_label_hash.data(), kSha256Len);
    db[db_len - m.size() - 1] = 0x01;
    std::memcpy(db + db_len - m.size(), m.data(), m.size());
    BL_TRY(Draw(seed, kSha256Len));
    BL_TRY(XorMgf1(ByteView(seed, kSha256Len), db, db_len));
    return XorMgf1(ByteView(db, db_len), seed, kSha256Len);
  }
};

// One originator key: the ephemeral pair, a derive context set up once for it, and the DER of
// its KARI originator field and key encryption algorithm, both the same for every recipient.
struct CekWrapper::Ephemeral {
  KeyType curve;
  EvpPkeyPtr key;
  const EC_KEY* ec = nullptr;  // the legacy view of key (owned by it), for ECDH_compute_key
  std::size_t field_bytes = 0;
  Bytes originator;
  Bytes alg;
  Bytes shared_info;  // ECC-CMS-SharedInfo for AES-256 wrap (RFC 5753 7.2), no ukm
};

CekWrapper::CekWrapper(const SecretBytes& cek, RsaPadding padding)
    : cek_(cek), padding_(padding), scratch_(std::make_unique<Scratch>()) {}

CekWrapper::~CekWrapper() = default;  // EVP_PKEY_free clears the private scalar

Result<CekWrapper::Ephemeral*> CekWrapper::EphemeralFor(const WrapTarget& target) {
  const WrapTarget::Impl& t = target.impl();
  for (auto& e : ephemerals_) {
    if (e->curve == t.type) return e.get();
  }
  auto e = std::make_unique<Ephemeral>();
  e->curve = t.type;
  EvpPkeyCtxPtr gen(EVP_PKEY_CTX_new_from_pkey(nullptr, t.pub, nullptr));
  EVP_PKEY* eph_raw = nullptr;
  if (!gen || EVP_PKEY_keygen_init(gen.get()) != 1 || EVP_PKEY_keygen(gen.get(), &eph_raw) != 1) {
    return OsslError("crypto", "ephemeral EC key generation failed");
  }
  e->key.reset(eph_raw);
  e->ec = EVP_PKEY_get0_EC_KEY(e->key.get());
  if (e->ec == nullptr) return OsslError("crypto", "ECDH setup failed");
  e->field_bytes =
      static_cast<std::size_t>((EC_GROUP_get_degree(EC_KEY_get0_group(e->ec)) + 7) / 8);
  unsigned char* point = nullptr;
  const std::size_t point_len = EVP_PKEY_get1_encoded_public_key(e->key.get(), &point);
  if (point_len == 0) return OsslError("crypto", "cannot encode the ephemeral key");
  Bytes bits{0x00};
  bits.insert(bits.end(), point, point + point_len);
  OPENSSL_free(point);
  e->originator = der::Encode(
      der::ContextConstructed(0),
      der::Encode(der::ContextConstructed(1),
                  {EncodeAlgorithmId(oid::kEcPublicKey), der::Encode(der::kBitString, bits)}));
  e->alg = EncodeAlgorithmId(oid::kStdDhSha256Kdf, EncodeAlgorithmId(oid::kAes256Wrap));
  const std::uint8_t kek_bits[4] = {0, 0, 1, 0};  // 256, big-endian
  e->shared_info = der::Encode(
      der::kSequence, {EncodeAlgorithmId(oid::kAes256Wrap),
                       der::Encode(der::ContextConstructed(2),
                                   der::Encode(der::kOctetString, ByteView(kek_bits, 4)))});
  ephemerals_.push_back(std::move(e));
  return ephemerals_.back().get();
}

Result<Bytes> CekWrapper::WrapRsa(const WrapTarget& target) {
  const WrapTarget::Impl& t = target.impl();
  Scratch& s = *scratch_;
  if (padding_ == RsaPadding::kOaepSha256) {
    BL_TRY(s.EncodeOaep(cek_.view(), t.modulus_len));
  } else {
    BL_TRY(s.EncodePkcs1(cek_.view(), t.modulus_len));
  }
  // c = m^e mod n; m < n, as EM starts with a zero octet and is the modulus's length. It is
  // written in place after the RecipientInfo's head.
  const Bytes& head = padding_ == RsaPadding::kOaepSha256 ? t.rsa_head_oaep : t.rsa_head_pkcs1;
  Bytes ri(head.size() + t.modulus_len);
  std::memcpy(ri.data(), head.data(), head.size());
  std::uint8_t* ek = ri.data() + head.size();
  const bool done =
      s.bn_ctx && s.bn_message && s.bn_power && s.bn_result &&
      BN_bin2bn(s.em.data(), static_cast<int>(s.em.size()), s.bn_message.get()) != nullptr &&
      RsaPublic(s.bn_result.get(), s.bn_power.get(), s.bn_message.get(), t, s.bn_ctx.get()) &&
      BN_bn2binpad(s.bn_result.get(), ek, static_cast<int>(t.modulus_len)) ==
          static_cast<int>(t.modulus_len);
  OPENSSL_cleanse(s.em.data(), s.em.size());
  if (s.bn_message) BN_clear(s.bn_message.get());
  if (s.bn_power) BN_clear(s.bn_power.get());
  if (!done) return OsslError("crypto", "RSA encryption failed");
  return ri;
}

Result<Bytes> CekWrapper::WrapEc(const WrapTarget& target) {
  const WrapTarget::Impl& t = target.impl();
  BL_TRY_ASSIGN(Ephemeral * e, EphemeralFor(target));
  // The peer is a registered certificate's key, decoded (so on the curve) when it was parsed.
  SecretBytes z(e->field_bytes);
  if (ECDH_compute_key(z.data(), z.size(), t.point.get(), e->ec, nullptr) !=
      static_cast<int>(z.size())) {
    return OsslError("crypto", "ECDH failed");
  }
  // X9.63 with SHA-256: one block is the AES-256 KEK, H(Z || 00000001 || SharedInfo).
  static constexpr std::uint8_t kFirstCounter[4] = {0, 0, 0, 1};
  SecretBytes kek(kSha256Len);
  BL_TRY(scratch_->Digest({z.view(), ByteView(kFirstCounter, 4), e->shared_info}, kek.data()));
  BL_TRY_ASSIGN(Bytes wrapped, AesWrap(kek, cek_));
  Bytes rek = der::Encode(der::kSequence, {t.rid, der::Encode(der::kOctetString, wrapped)});
  return der::Encode(der::ContextConstructed(1), {der::EncodeInteger(3), e->originator, e->alg,
                                                  der::Encode(der::kSequence, rek)});
}

Result<Bytes> CekWrapper::Wrap(const WrapTarget& target) {
  switch (target.impl().type) {
    case KeyType::kRsa:
      return WrapRsa(target);
    case KeyType::kEcP256:
    case KeyType::kEcP384:
      return WrapEc(target);
    default:
      return MakeError("unsupported-key", "unsupported recipient key type");
  }
}

Result<Bytes> CekWrapper::Wrap(const Certificate& cert) {
  BL_TRY_ASSIGN(WrapTarget target, WrapTarget::Prepare(cert));
  return Wrap(target);
}

}  // namespace blindlist::crypto
