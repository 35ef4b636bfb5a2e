// The OAEP and PKCS#1 v1.5 padding checks that run after unblinding are only
// exposed, in constant time, by the RSA_padding_check_* functions, which
// OpenSSL 3.0 marks deprecated; this file is their one user.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "crypto/blind.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include "blindlist/error_codes.h"
#include "crypto/der.h"
#include "crypto/primitives.h"

namespace blindlist::crypto {

struct BlindRequest::State {
  BlindKind kind = BlindKind::kEc;
  Bytes blinded;
  // EC
  int curve_nid = 0;
  BnSecretPtr r_inverse;  // r⁻¹ mod the group order
  const EVP_MD* kdf = nullptr;
  std::string wrap_oid;
  std::optional<Bytes> ukm;
  Bytes wrapped_key;
  // RSA
  BnPtr modulus;
  BnSecretPtr s_inverse;  // s⁻¹ mod n
  bool oaep = false;
  OaepParams oaep_params;
};

namespace {

Result<BnPtr> BnParam(const EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
    return OsslError("crypto", "cannot read the RSA key");
  return BnPtr(bn);
}

Bytes BnToFixed(const BIGNUM* bn, std::size_t len) {
  Bytes out(len);
  BN_bn2binpad(bn, out.data(), static_cast<int>(len));
  return out;
}

Result<std::shared_ptr<BlindRequest::State>> CreateRsa(const RecipientInfo& ri,
                                                       const EVP_PKEY* pub) {
  auto st = std::make_shared<BlindRequest::State>();
  st->kind = BlindKind::kRsa;
  if (ri.key_alg_oid == oid::kRsaesOaep) {
    st->oaep = true;
    BL_TRY_ASSIGN(st->oaep_params, ParseOaepParams(ri.key_alg_params));
  } else if (ri.key_alg_oid != oid::kRsaEncryption) {
    return MakeError("unsupported", "unsupported key transport algorithm " + ri.key_alg_oid);
  }
  BL_TRY_ASSIGN(st->modulus, BnParam(pub, OSSL_PKEY_PARAM_RSA_N));
  BL_TRY_ASSIGN(BnPtr e, BnParam(pub, OSSL_PKEY_PARAM_RSA_E));
  std::size_t k = static_cast<std::size_t>(BN_num_bytes(st->modulus.get()));
  if (ri.encrypted_key.size() != k)
    return MakeError("malformed-der", "encrypted key length does not match the modulus");
  BnCtxPtr ctx(BN_CTX_secure_new());
  BnPtr c(BN_bin2bn(ri.encrypted_key.data(), static_cast<int>(k), nullptr));
  BnSecretPtr s(BN_secure_new());
  st->s_inverse.reset(BN_secure_new());
  BnPtr blinded(BN_new());
  if (!ctx || !c || !s || !st->s_inverse || !blinded) return OsslError("crypto", "out of memory");
  if (BN_cmp(c.get(), st->modulus.get()) >= 0)
    return MakeError("malformed-der", "encrypted key out of range");
  // A random unit s: gcd(s, n) = 1 holds unless s reveals a factor of n.
  do {
    if (BN_priv_rand_range(s.get(), st->modulus.get()) != 1)
      return OsslError("crypto", "random failed");
  } while (BN_is_zero(s.get()) ||
           BN_mod_inverse(st->s_inverse.get(), s.get(), st->modulus.get(), ctx.get()) == nullptr);
  BnSecretPtr se(BN_secure_new());
  if (!se || BN_mod_exp(se.get(), s.get(), e.get(), st->modulus.get(), ctx.get()) != 1 ||
      BN_mod_mul(blinded.get(), c.get(), se.get(), st->modulus.get(), ctx.get()) != 1) {
    return OsslError("crypto", "RSA blinding failed");
  }
  st->blinded = BnToFixed(blinded.get(), k);
  return st;
}

Result<std::shared_ptr<BlindRequest::State>> CreateEc(const RecipientInfo& ri, const EVP_PKEY* pub,
                                                      std::size_t rek_index) {
  auto st = std::make_shared<BlindRequest::State>();
  st->kind = BlindKind::kEc;
  if (rek_index >= ri.recipient_keys.size()) return MakeError("bad-index", "no such recipient key");
  st->kdf = KdfDigestForScheme(ri.key_alg_oid);
  if (st->kdf == nullptr)
    return MakeError("unsupported", "unsupported key agreement scheme " + ri.key_alg_oid);
  if (WrapKeyLength(ri.wrap_alg_oid) == 0)
    return MakeError("unsupported", "unsupported key wrap " + ri.wrap_alg_oid);
  if (ri.originator_key.empty())
    return MakeError("unsupported", "static originator keys are not supported");
  st->wrap_oid = ri.wrap_alg_oid;
  st->ukm = ri.ukm;
  st->wrapped_key = ri.recipient_keys[rek_index].encrypted_key;
  st->curve_nid = CurveNid(KeyTypeOf(pub));
  EcGroupPtr group(EC_GROUP_new_by_curve_name(st->curve_nid));
  BnCtxPtr ctx(BN_CTX_secure_new());
  if (!group || !ctx) return OsslError("crypto", "unsupported curve");
  // E must be a valid point; the key holder checks r·E again.
  BL_TRY(EcPeerKey(pub, ri.originator_key));
  EcPointPtr e_point(EC_POINT_new(group.get()));
  EcPointPtr blinded(EC_POINT_new(group.get()));
  BnSecretPtr r(BN_secure_new());
  st->r_inverse.reset(BN_secure_new());
  if (!e_point || !blinded || !r || !st->r_inverse ||
      EC_POINT_oct2point(group.get(), e_point.get(), ri.originator_key.data(),
                         ri.originator_key.size(), ctx.get()) != 1) {
    return OsslError(std::string(errc::kBadPoint), "invalid originator point");
  }
  const BIGNUM* order = EC_GROUP_get0_order(group.get());
  do {
    if (BN_priv_rand_range(r.get(), order) != 1) return OsslError("crypto", "random failed");
  } while (BN_is_zero(r.get()));
  if (BN_mod_inverse(st->r_inverse.get(), r.get(), order, ctx.get()) == nullptr ||
      EC_POINT_mul(group.get(), blinded.get(), nullptr, e_point.get(), r.get(), ctx.get()) != 1) {
    return OsslError("crypto", "EC blinding failed");
  }
  std::size_t len = EC_POINT_point2oct(group.get(), blinded.get(), POINT_CONVERSION_UNCOMPRESSED,
                                       nullptr, 0, ctx.get());
  st->blinded.resize(len);
  EC_POINT_point2oct(group.get(), blinded.get(), POINT_CONVERSION_UNCOMPRESSED, st->blinded.data(),
                     len, ctx.get());
  return st;
}

Result<SecretBytes> FinishEc(const BlindRequest::State& st, ByteView response) {
  EcGroupPtr group(EC_GROUP_new_by_curve_name(st.curve_nid));
  BnCtxPtr ctx(BN_CTX_secure_new());
  std::size_t field_len = (static_cast<std::size_t>(EC_GROUP_get_degree(group.get())) + 7) / 8;
  if (response.size() != field_len)
    return MakeError("bad-response", "blind response has the wrong length");
  // Rebuild a point from x alone: either root works, since x(-Q) = x(Q).
  BnPtr x(BN_bin2bn(response.data(), static_cast<int>(response.size()), nullptr));
  EcPointPtr p(EC_POINT_new(group.get()));
  EcPointPtr q(EC_POINT_new(group.get()));
  if (!x || !p || !q ||
      EC_POINT_set_compressed_coordinates(group.get(), p.get(), x.get(), 0, ctx.get()) != 1) {
    ERR_clear_error();
    return MakeError("bad-response", "blind response is not a point on the curve");
  }
  if (EC_POINT_mul(group.get(), q.get(), nullptr, p.get(), st.r_inverse.get(), ctx.get()) != 1) {
    return OsslError("crypto", "EC unblinding failed");
  }
  BnSecretPtr zx(BN_secure_new());
  if (!zx ||
      EC_POINT_get_affine_coordinates(group.get(), q.get(), zx.get(), nullptr, ctx.get()) != 1) {
    return OsslError("crypto", "EC unblinding failed");
  }
  SecretBytes z(field_len);
  BN_bn2binpad(zx.get(), z.data(), static_cast<int>(field_len));
  BL_TRY_ASSIGN(SecretBytes kek,
                KariKek(st.kdf, z.view(), st.wrap_oid, st.ukm ? &*st.ukm : nullptr));
  return AesUnwrap(kek, st.wrapped_key);
}

Result<SecretBytes> FinishRsa(const BlindRequest::State& st, ByteView response) {
  std::size_t k = static_cast<std::size_t>(BN_num_bytes(st.modulus.get()));
  if (response.size() != k) return MakeError("bad-response", "blind response has the wrong length");
  BnCtxPtr ctx(BN_CTX_secure_new());
  BnSecretPtr m_blinded(BN_secure_new());
  BnSecretPtr m(BN_secure_new());
  if (!ctx || !m_blinded || !m ||
      !BN_bin2bn(response.data(), static_cast<int>(k), m_blinded.get())) {
    return OsslError("crypto", "out of memory");
  }
  if (BN_mod_mul(m.get(), m_blinded.get(), st.s_inverse.get(), st.modulus.get(), ctx.get()) != 1) {
    return OsslError("crypto", "RSA unblinding failed");
  }
  SecretBytes em(k);
  BN_bn2binpad(m.get(), em.data(), static_cast<int>(k));
  SecretBytes cek(k);
  int len = -1;
  if (st.oaep) {
    // Given the whole encoded message, leading zero octet included, as rsa_ossl.c does.
    len = RSA_padding_check_PKCS1_OAEP_mgf1(
        cek.data(), static_cast<int>(k), em.data(), static_cast<int>(k), static_cast<int>(k),
        st.oaep_params.label.data(), static_cast<int>(st.oaep_params.label.size()),
        st.oaep_params.hash, st.oaep_params.mgf1_hash);
  } else {
    len = RSA_padding_check_PKCS1_type_2(cek.data(), static_cast<int>(k), em.data(),
                                         static_cast<int>(k), static_cast<int>(k));
  }
  ERR_clear_error();
  if (len <= 0)
    return MakeError(std::string(errc::kUnwrapFailed), "cannot unwrap the message key: wrong key");
  cek.resize(static_cast<std::size_t>(len));
  return cek;
}

}  // namespace

Result<BlindRequest> BlindRequest::Create(const RecipientInfo& ri, const Certificate& group_cert,
                                          std::size_t rek_index) {
  const EVP_PKEY* pub = X509_get0_pubkey(group_cert.impl().x509.get());
  BlindRequest req;
  if (ri.kind == RecipientKind::kKeyTrans && group_cert.key_type() == KeyType::kRsa) {
    BL_TRY_ASSIGN(auto st, CreateRsa(ri, pub));
    req.state_ = std::move(st);
    return req;
  }
  if (ri.kind == RecipientKind::kKeyAgree &&
      (group_cert.key_type() == KeyType::kEcP256 || group_cert.key_type() == KeyType::kEcP384)) {
    BL_TRY_ASSIGN(auto st, CreateEc(ri, pub, rek_index));
    req.state_ = std::move(st);
    return req;
  }
  return MakeError("wrong-key",
                   "this RecipientInfo does not match the group certificate's key type");
}

BlindKind BlindRequest::kind() const { return state_->kind; }
const Bytes& BlindRequest::blinded() const { return state_->blinded; }

Result<SecretBytes> BlindRequest::Finish(ByteView response) const {
  return state_->kind == BlindKind::kEc ? FinishEc(*state_, response)
                                        : FinishRsa(*state_, response);
}

Result<Bytes> ApplyBlind(const PrivateKey& key, ByteView blinded) {
  EVP_PKEY* pkey = key.impl().pkey.get();
  if (key.type() == KeyType::kRsa) {
    std::size_t k = static_cast<std::size_t>(EVP_PKEY_get_size(pkey));
    if (blinded.size() != k)
      return MakeError("out-of-range", "blinded value must be the modulus length");
    BL_TRY_ASSIGN(BnPtr n, BnParam(pkey, OSSL_PKEY_PARAM_RSA_N));
    BnPtr v(BN_bin2bn(blinded.data(), static_cast<int>(k), nullptr));
    if (!v || BN_is_zero(v.get()) || BN_is_one(v.get()) || BN_cmp(v.get(), n.get()) >= 0) {
      return MakeError("out-of-range", "blinded value is out of range (must be in 2..n-1)");
    }
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
    std::size_t len = k;
    Bytes out(k);
    if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) != 1 ||
        EVP_PKEY_decrypt(ctx.get(), out.data(), &len, blinded.data(), blinded.size()) != 1) {
      return OsslError("crypto", "RSA private operation failed");
    }
    out.resize(len);
    return out;
  }
  if (key.type() == KeyType::kEcP256 || key.type() == KeyType::kEcP384) {
    BL_TRY_ASSIGN(SecretBytes z, EcdhWithKey(key, blinded));
    // x(d·r·E) reveals nothing about the CEK without r, so it leaves as plain bytes.
    return Bytes(z.data(), z.data() + z.size());
  }
  return MakeError("unsupported-key", "unsupported key type");
}

}  // namespace blindlist::crypto
