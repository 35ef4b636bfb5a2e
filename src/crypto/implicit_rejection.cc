// Implicit rejection: the key holder's unwrap for a server that answers others (groupd).
//
// A server that says whether a PKCS#1 v1.5 ciphertext had valid padding is a Bleichenbacher
// oracle; one that says whether an OAEP decoding or an AES key-unwrap check failed is a weaker
// one. So no failure that depends on the private key is ever reported: on any such failure the
// answer is a synthetic key, derived deterministically from a per-key secret and the ciphertext,
// and the same work is done whichever key comes out. The structure is that of
// draft-irtf-cfrg-rsa-guidance and OpenSSL 3.2 (which Debian 12's OpenSSL 3.0 lacks):
//   KDK       = HMAC-SHA256(key = SHA-256(d as a modulus-length octet string), C)
//   PRF(l, b) = HMAC-SHA256(KDK, I2OSP(i, 2) || l || I2OSP(b, 2)) for i = 0, 1, ..., b bits
// built here on the raw RSA operation and a padding check without branches on secret data.
// A real key counts only if it is 16, 24 or 32 bytes long; the synthetic key's length is one of
// those, chosen by the PRF, so the answer's length does not mark a rejection either.
//
// RSA_padding_check_PKCS1_OAEP_mgf1 (constant time in OpenSSL 3.0) is deprecated in 3.0.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <array>
#include <cstring>

#include "blindlist/error_codes.h"
#include "crypto/cms.h"
#include "crypto/constant_time.h"
#include "crypto/mac.h"
#include "crypto/primitives.h"

namespace blindlist::crypto {

namespace {

constexpr std::size_t kHashLen = 32;  // SHA-256
constexpr std::size_t kMaxCek = 32;

std::array<std::uint8_t, 2> Be16(std::size_t v) {
  return {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

// The PRF of the draft: `bytes` octets for `label` under the key-derivation key.
Result<SecretBytes> Prf(const SecretBytes& kdk, std::string_view label, std::size_t bytes) {
  SecretBytes out(bytes);
  const auto bits = Be16(bytes * 8);
  for (std::size_t i = 0, done = 0; done < bytes; ++i) {
    const auto counter = Be16(i);
    BL_TRY_ASSIGN(SecretBytes block, HmacSha256Secret(kdk.view(), {counter, AsBytes(label), bits}));
    const std::size_t take = std::min(kHashLen, bytes - done);
    std::memcpy(out.data() + done, block.data(), take);
    done += take;
  }
  return out;
}

// A synthetic content-encryption key: 32 PRF octets and a length of 16, 24 or 32 chosen by the
// PRF, computed for every ciphertext whether or not it is needed.
struct SyntheticKey {
  SecretBytes key;  // kMaxCek octets; the key is the first or last `length` of them
  std::uint32_t length = 0;
};

Result<SyntheticKey> MakeSyntheticKey(const SecretBytes& kdk, std::string_view message_label,
                                      std::string_view length_label) {
  SyntheticKey s;
  BL_TRY_ASSIGN(s.key, Prf(kdk, message_label, kMaxCek));
  BL_TRY_ASSIGN(SecretBytes r, Prf(kdk, length_label, 4));
  const std::uint64_t v = (std::uint64_t{r[0]} << 24) | (std::uint64_t{r[1]} << 16) |
                          (std::uint64_t{r[2]} << 8) | std::uint64_t{r[3]};
  // Uniform over {0, 1, 2} up to 2^-32, by a multiplication rather than a division (whose
  // time may depend on its operands).
  const auto index = static_cast<std::uint32_t>((v * 3) >> 32);
  s.length = 16 + 8 * index;
  return s;
}

// The key that leaves: real where `good` is all ones, else synthetic, then `length` octets from
// the front or the back of the 32. The selection is branch-free; only the length that is
// handed out anyway decides what is copied.
SecretBytes SelectKey(std::uint32_t good, const std::uint8_t* real32, const SyntheticKey& synthetic,
                      std::uint32_t real_length, bool from_end) {
  SecretBytes mixed(kMaxCek);
  for (std::size_t i = 0; i < kMaxCek; ++i)
    mixed[i] = ct::Select8(good, real32[i], synthetic.key[i]);
  const std::size_t length = ct::Select(good, real_length, synthetic.length);
  return SecretBytes(ByteView(mixed.data() + (from_end ? kMaxCek - length : 0), length));
}

std::uint32_t ValidCekLength(std::uint32_t len) {
  return ct::Eq(len, 16) | ct::Eq(len, 24) | ct::Eq(len, 32);
}

// The PKCS#1 v1.5 type 2 check of an encoded message (RFC 8017 section 7.2.2 step 3), over every
// octet and without a branch on any: the mask "valid", and in `mlen` the message length (which
// means nothing when not valid).
std::uint32_t Pkcs1Type2(const SecretBytes& em, std::uint32_t& mlen) {
  const auto k = static_cast<std::uint32_t>(em.size());
  std::uint32_t good = ct::IsZero(em[0]) & ct::Eq(em[1], 2);
  std::uint32_t found = 0;
  std::uint32_t zero_index = 0;
  for (std::uint32_t i = 2; i < k; ++i) {
    const std::uint32_t is_zero = ct::IsZero(em[i]);
    zero_index = ct::Select(~found & is_zero, i, zero_index);
    found |= is_zero;
  }
  // At least 8 octets of nonzero padding string between 00 02 and the separating 00.
  good &= found & ct::Ge(zero_index, 2 + 8);
  mlen = k - zero_index - 1;
  return good;
}

// m = c^d mod n with no padding (OpenSSL blinds it and runs in constant time).
Status RawRsaPrivate(EVP_PKEY* pkey, ByteView c, SecretBytes& m) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  std::size_t len = m.size();
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) != 1 ||
      EVP_PKEY_decrypt(ctx.get(), m.data(), &len, c.data(), c.size()) != 1 || len != m.size()) {
    return OsslError("crypto", "RSA private operation failed");
  }
  return Status::Ok();
}

Result<SecretBytes> UnwrapKtri(const RecipientInfo& ri, const PrivateKey& key) {
  const PrivateKey::Impl& impl = key.impl();
  if (key.type() != KeyType::kRsa)
    return MakeError("wrong-key", "this RecipientInfo needs an RSA key");
  const bool oaep = ri.key_alg_oid == oid::kRsaesOaep;
  if (!oaep && ri.key_alg_oid != oid::kRsaEncryption)
    return MakeError("unsupported", "unsupported key transport algorithm " + ri.key_alg_oid);
  OaepParams params;
  if (oaep) {
    BL_TRY_ASSIGN(params, ParseOaepParams(ri.key_alg_params));  // public: may refuse
  }
  if (impl.rejection_key.empty() || impl.rsa_modulus.empty())
    return MakeError("crypto", "this key cannot be used for implicit rejection");

  const Bytes& n = impl.rsa_modulus;
  const std::size_t k = n.size();
  const ByteView c = ri.encrypted_key;
  // Public properties of the request: a ciphertext that is not the modulus length or not below n
  // takes the same path on a stand-in value and is then rejected like any other.
  const bool in_range = c.size() == k && std::memcmp(c.data(), n.data(), k) < 0;
  Bytes stand_in(k, 0);
  stand_in[k - 1] = 2;
  SecretBytes em(k);
  BL_TRY(RawRsaPrivate(impl.pkey.get(), in_range ? c : ByteView(stand_in), em));

  BL_TRY_ASSIGN(SecretBytes kdk, HmacSha256Secret(impl.rejection_key.view(), {c}));
  BL_TRY_ASSIGN(SyntheticKey synthetic, MakeSyntheticKey(kdk, oaep ? "oaep message" : "message",
                                                         oaep ? "oaep length" : "length"));
  std::uint32_t good = in_range ? ~0U : 0U;
  std::uint32_t mlen = 0;
  if (oaep) {
    // The message lands at the front of `decoded`; -1 (any failure) is no valid length.
    SecretBytes decoded(k);
    const int len = RSA_padding_check_PKCS1_OAEP_mgf1(
        decoded.data(), static_cast<int>(k), em.data(), static_cast<int>(k), static_cast<int>(k),
        params.label.data(), static_cast<int>(params.label.size()), params.hash, params.mgf1_hash);
    ERR_clear_error();
    mlen = static_cast<std::uint32_t>(len);
    good &= ValidCekLength(mlen);
    return SelectKey(good, decoded.data(), synthetic, mlen, /*from_end=*/false);
  }
  // The message is the last mlen octets of em; keys of 16..32 octets are within its last 32.
  good &= Pkcs1Type2(em, mlen);
  good &= ValidCekLength(mlen);
  return SelectKey(good, em.data() + k - kMaxCek, synthetic, mlen, /*from_end=*/true);
}

Result<SecretBytes> UnwrapKari(const RecipientInfo& ri, const PrivateKey& key,
                               std::size_t rek_index) {
  const PrivateKey::Impl& impl = key.impl();
  if (key.type() != KeyType::kEcP256 && key.type() != KeyType::kEcP384)
    return MakeError("wrong-key", "this RecipientInfo needs an EC key");
  if (rek_index >= ri.recipient_keys.size()) return MakeError("bad-index", "no such recipient key");
  const EVP_MD* kdf = KdfDigestForScheme(ri.key_alg_oid);
  if (kdf == nullptr)
    return MakeError("unsupported", "unsupported key agreement scheme " + ri.key_alg_oid);
  if (WrapKeyLength(ri.wrap_alg_oid) == 0)
    return MakeError("unsupported", "unsupported key wrap algorithm " + ri.wrap_alg_oid);
  if (ri.originator_key.empty())
    return MakeError("unsupported", "key agreement with a static originator key is not supported");
  const Bytes& wrapped = ri.recipient_keys[rek_index].encrypted_key;
  if (wrapped.size() < 24 || wrapped.size() % 8 != 0 || wrapped.size() > 72)
    return MakeError(std::string(errc::kUnwrapFailed),
                     "cannot unwrap the message key: bad wrapped key length");
  if (impl.rejection_key.empty())
    return MakeError("crypto", "this key cannot be used for implicit rejection");

  // A point off the curve or at infinity is the caller's input: "bad-point", said openly.
  BL_TRY_ASSIGN(SecretBytes z, EcdhWithKey(key, ri.originator_key));
  BL_TRY_ASSIGN(SecretBytes kek,
                KariKek(kdf, z.view(), ri.wrap_alg_oid, ri.ukm ? &*ri.ukm : nullptr));
  SecretBytes real;
  BL_TRY_ASSIGN(const std::uint32_t intact, AesUnwrapMasked(kek, wrapped, real));

  // Everything the unwrap depended on, each part with its length.
  const Bytes& ukm = ri.ukm ? *ri.ukm : Bytes{};
  const auto point_len = Be16(ri.originator_key.size());
  const auto ukm_len = Be16(ri.ukm ? ukm.size() + 1 : 0);
  const auto scheme_len = Be16(ri.key_alg_oid.size());
  const auto wrap_len = Be16(ri.wrap_alg_oid.size());
  BL_TRY_ASSIGN(SecretBytes kdk, HmacSha256Secret(impl.rejection_key.view(),
                                                  {point_len, ri.originator_key, ukm_len, ukm,
                                                   scheme_len, AsBytes(ri.key_alg_oid), wrap_len,
                                                   AsBytes(ri.wrap_alg_oid), wrapped}));
  BL_TRY_ASSIGN(SecretBytes synthetic, Prf(kdk, "kari message", real.size()));
  SecretBytes out(real.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = ct::Select8(intact, real[i], synthetic[i]);
  return out;
}

Result<BnSecretPtr> SecretParam(const EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) return OsslError("crypto", name);
  return BnSecretPtr(bn);
}

}  // namespace

void DeriveRejectionKey(PrivateKey::Impl& impl) {
  const EVP_PKEY* pkey = impl.pkey.get();
  const bool rsa = impl.type == KeyType::kRsa;
  if (!rsa && impl.type != KeyType::kEcP256 && impl.type != KeyType::kEcP384) return;
  const auto width =
      static_cast<std::size_t>(rsa ? EVP_PKEY_get_size(pkey) : (EVP_PKEY_get_bits(pkey) + 7) / 8);
  auto secret = SecretParam(pkey, rsa ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY);
  if (!secret.ok()) return;  // e.g. a key held elsewhere: implicit unwraps then refuse
  SecretBytes octets(width);
  SecretBytes digest(kHashLen);
  unsigned int len = 0;
  if (BN_bn2binpad(secret->get(), octets.data(), static_cast<int>(width)) < 0 ||
      EVP_Digest(octets.data(), octets.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1) {
    ERR_clear_error();
    return;
  }
  if (rsa) {
    auto n = SecretParam(pkey, OSSL_PKEY_PARAM_RSA_N);  // public, but the same call
    if (!n.ok()) return;
    impl.rsa_modulus.resize(width);
    BN_bn2binpad(n->get(), impl.rsa_modulus.data(), static_cast<int>(width));
  }
  impl.rejection_key = std::move(digest);
}

Result<SecretBytes> UnwrapCekImplicit(const RecipientInfo& ri, const PrivateKey& key,
                                      std::size_t rek_index) {
  if (ri.kind == RecipientKind::kKeyTrans) return UnwrapKtri(ri, key);
  if (ri.kind == RecipientKind::kKeyAgree) return UnwrapKari(ri, key, rek_index);
  return MakeError("wrong-key", "this RecipientInfo is not for a private key");
}

}  // namespace blindlist::crypto
