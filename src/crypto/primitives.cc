// ECDH_compute_key and EC_KEY_get0_group are deprecated in OpenSSL 3.0. They are the
// same constant-time code that EVP_PKEY_derive reaches, without a peer EVP_PKEY and a
// derive context per call (EcdhWithKey).
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "crypto/primitives.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdh.h>
#include <openssl/kdf.h>

#include <array>
#include <cstring>

#include "blindlist/error_codes.h"
#include "crypto/constant_time.h"
#include "crypto/der.h"

namespace blindlist::crypto {

const EVP_MD* DigestForOid(std::string_view o) {
  if (o == oid::kSha1) return EVP_sha1();
  if (o == oid::kSha224) return EVP_sha224();
  if (o == oid::kSha256) return EVP_sha256();
  if (o == oid::kSha384) return EVP_sha384();
  if (o == oid::kSha512) return EVP_sha512();
  return nullptr;
}

const EVP_MD* KdfDigestForScheme(std::string_view o) {
  // RFC 5753 / SEC 1: dhSinglePass-stdDH-* and dhSinglePass-cofactorDH-*. The
  // curves we accept have cofactor 1, so both families compute the same Z.
  if (o == "1.3.133.16.840.63.0.2" || o == "1.3.133.16.840.63.0.3") return EVP_sha1();
  if (o == "1.3.132.1.11.0" || o == "1.3.132.1.14.0") return EVP_sha224();
  if (o == "1.3.132.1.11.1" || o == "1.3.132.1.14.1") return EVP_sha256();
  if (o == "1.3.132.1.11.2" || o == "1.3.132.1.14.2") return EVP_sha384();
  if (o == "1.3.132.1.11.3" || o == "1.3.132.1.14.3") return EVP_sha512();
  return nullptr;
}

std::size_t WrapKeyLength(std::string_view o) {
  if (o == oid::kAes128Wrap) return 16;
  if (o == oid::kAes192Wrap) return 24;
  if (o == oid::kAes256Wrap) return 32;
  return 0;
}

std::string_view WrapOidForKeyLength(std::size_t len) {
  switch (len) {
    case 16:
      return oid::kAes128Wrap;
    case 24:
      return oid::kAes192Wrap;
    case 32:
      return oid::kAes256Wrap;
    default:
      return {};
  }
}

namespace {
// AES-ECB for the KEK's length, fetched once (fetching by name per call walks the provider's maps).
const EVP_CIPHER* EcbCipher(std::size_t key_len) {
  static const std::array<EVP_CIPHER*, 3> kCiphers = {
      EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr),
      EVP_CIPHER_fetch(nullptr, "AES-192-ECB", nullptr),
      EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr)};
  switch (key_len) {
    case 16:
      return kCiphers[0];
    case 24:
      return kCiphers[1];
    case 32:
      return kCiphers[2];
    default:
      return nullptr;
  }
}

constexpr std::array<std::uint8_t, 8> kWrapIv = {0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6};

// A ^= t, t as a 64-bit big-endian integer (RFC 3394 section 2.2.1).
void XorCounter(std::uint8_t* a, std::uint64_t t) {
  for (int i = 7; i >= 0; --i) {
    a[i] ^= static_cast<std::uint8_t>(t & 0xFF);
    t >>= 8;
  }
}

EvpCipherCtxPtr EcbContext(const SecretBytes& kek, bool encrypt) {
  const EVP_CIPHER* cipher = EcbCipher(kek.size());
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (cipher == nullptr || !ctx ||
      EVP_CipherInit_ex2(ctx.get(), cipher, kek.data(), nullptr, encrypt ? 1 : 0, nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
    return nullptr;
  }
  return ctx;
}

// One AES block in place.
bool EcbBlock(EVP_CIPHER_CTX* ctx, std::uint8_t* block) {
  int len = 0;
  return EVP_CipherUpdate(ctx, block, &len, block, 16) == 1 && len == 16;
}
}  // namespace

Result<Bytes> AesWrap(const SecretBytes& kek, const SecretBytes& key) {
  if (EcbCipher(kek.size()) == nullptr)
    return MakeError("bad-key", "key-encryption key must be 16, 24 or 32 bytes");
  if (key.size() < 16 || key.size() % 8 != 0) return MakeError("bad-key", "cannot wrap this key");
  EvpCipherCtxPtr ctx = EcbContext(kek, /*encrypt=*/true);
  if (!ctx) return OsslError("crypto", "AES key wrap failed");
  const std::size_t n = key.size() / 8;
  // out = A || R[1] || ... || R[n]; each step encrypts A || R[i] in `block`.
  Bytes out(key.size() + 8);
  std::memcpy(out.data(), kWrapIv.data(), 8);
  std::memcpy(out.data() + 8, key.data(), key.size());
  std::uint8_t block[16];
  for (std::uint64_t j = 0; j < 6; ++j) {
    for (std::size_t i = 1; i <= n; ++i) {
      std::memcpy(block, out.data(), 8);
      std::memcpy(block + 8, out.data() + 8 * i, 8);
      if (!EcbBlock(ctx.get(), block)) return OsslError("crypto", "AES key wrap failed");
      XorCounter(block, n * j + i);
      std::memcpy(out.data(), block, 8);
      std::memcpy(out.data() + 8 * i, block + 8, 8);
    }
  }
  OPENSSL_cleanse(block, sizeof(block));
  return out;
}

Result<std::uint32_t> AesUnwrapMasked(const SecretBytes& kek, ByteView wrapped, SecretBytes& out) {
  if (EcbCipher(kek.size()) == nullptr)
    return MakeError("bad-key", "key-encryption key must be 16, 24 or 32 bytes");
  if (wrapped.size() < 24 || wrapped.size() % 8 != 0 || wrapped.size() > 72) {
    return MakeError(std::string(errc::kUnwrapFailed),
                     "cannot unwrap the message key: bad wrapped key length");
  }
  EvpCipherCtxPtr ctx = EcbContext(kek, /*encrypt=*/false);
  if (!ctx) return OsslError("crypto", "AES key unwrap failed");
  const std::size_t n = wrapped.size() / 8 - 1;
  // The working buffer holds A || R[1] || ... || R[n]; the key is R[1..n] at the end.
  SecretBytes work(wrapped);
  std::uint8_t block[16];
  bool ok = true;
  for (std::uint64_t j = 6; j-- > 0;) {
    for (std::size_t i = n; i >= 1; --i) {
      std::memcpy(block, work.data(), 8);
      XorCounter(block, n * j + i);
      std::memcpy(block + 8, work.data() + 8 * i, 8);
      ok = EcbBlock(ctx.get(), block) && ok;
      std::memcpy(work.data(), block, 8);
      std::memcpy(work.data() + 8 * i, block + 8, 8);
    }
  }
  OPENSSL_cleanse(block, sizeof(block));
  if (!ok) return OsslError("crypto", "AES key unwrap failed");  // OpenSSL itself, not the data
  // Constant time: a wrong KEK and a tampered key must look the same to a timer.
  const auto diff = static_cast<std::uint32_t>(CRYPTO_memcmp(work.data(), kWrapIv.data(), 8));
  out = SecretBytes(ByteView(work.data() + 8, n * 8));
  return ct::IsZero(diff);
}

Result<SecretBytes> AesUnwrap(const SecretBytes& kek, ByteView wrapped) {
  SecretBytes key;
  auto intact = AesUnwrapMasked(kek, wrapped, key);
  if (!intact.ok() && intact.error().code != errc::kCrypto) return intact.error();
  if (!intact.ok() || *intact == 0) {
    ERR_clear_error();
    return MakeError(std::string(errc::kUnwrapFailed), "cannot unwrap the message key: wrong key");
  }
  return key;
}

Result<SecretBytes> KariKek(const EVP_MD* kdf_md, ByteView z, std::string_view wrap_oid,
                            const Bytes* ukm) {
  std::size_t kek_len = WrapKeyLength(wrap_oid);
  if (kek_len == 0)
    return MakeError("unsupported", "unsupported key wrap algorithm " + std::string(wrap_oid));
  // ECC-CMS-SharedInfo (RFC 5753 section 7.2): AES wrap parameters are absent.
  Bytes key_info = EncodeAlgorithmId(wrap_oid);
  std::uint32_t bits = static_cast<std::uint32_t>(kek_len * 8);
  std::uint8_t supp[4] = {static_cast<std::uint8_t>(bits >> 24),
                          static_cast<std::uint8_t>(bits >> 16),
                          static_cast<std::uint8_t>(bits >> 8), static_cast<std::uint8_t>(bits)};
  Bytes entity;
  if (ukm != nullptr) {
    entity = der::Encode(der::ContextConstructed(0), der::Encode(der::kOctetString, *ukm));
  }
  Bytes supp_pub =
      der::Encode(der::ContextConstructed(2), der::Encode(der::kOctetString, ByteView(supp, 4)));
  Bytes shared_info = der::Encode(der::kSequence, {key_info, entity, supp_pub});

  // X9.63: K = H(Z || counter || SharedInfo), counter from 1, concatenated and truncated.
  SecretBytes kek(kek_len);
  std::size_t md_len = static_cast<std::size_t>(EVP_MD_get_size(kdf_md));
  SecretBytes block(md_len);
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  std::size_t filled = 0;
  for (std::uint32_t counter = 1; filled < kek_len; ++counter) {
    std::uint8_t c[4] = {
        static_cast<std::uint8_t>(counter >> 24), static_cast<std::uint8_t>(counter >> 16),
        static_cast<std::uint8_t>(counter >> 8), static_cast<std::uint8_t>(counter)};
    unsigned int out_len = 0;
    if (!md || EVP_DigestInit_ex(md.get(), kdf_md, nullptr) != 1 ||
        EVP_DigestUpdate(md.get(), z.data(), z.size()) != 1 ||
        EVP_DigestUpdate(md.get(), c, 4) != 1 ||
        EVP_DigestUpdate(md.get(), shared_info.data(), shared_info.size()) != 1 ||
        EVP_DigestFinal_ex(md.get(), block.data(), &out_len) != 1) {
      return OsslError("crypto", "X9.63 KDF failed");
    }
    std::size_t take = std::min(md_len, kek_len - filled);
    std::copy(block.data(), block.data() + take, kek.data() + filled);
    filled += take;
  }
  return kek;
}

Result<EvpPkeyPtr> EcPeerKey(const EVP_PKEY* like, ByteView point) {
  // Only the uncompressed (04) and compressed (02/03) forms; a lone 00 is the
  // point at infinity, which OpenSSL would otherwise accept as an encoding.
  if (point.empty() || (point[0] != 0x04 && point[0] != 0x02 && point[0] != 0x03)) {
    return MakeError(std::string(errc::kBadPoint),
                     "EC point is not a valid encoding (or is the point at infinity)");
  }
  EvpPkeyPtr peer(EVP_PKEY_new());
  if (!peer || EVP_PKEY_copy_parameters(peer.get(), const_cast<EVP_PKEY*>(like)) != 1) {
    return OsslError("crypto", "cannot set up the EC peer key");
  }
  // Decoding checks that the point lies on the curve.
  if (EVP_PKEY_set1_encoded_public_key(peer.get(), point.data(), point.size()) != 1) {
    ERR_clear_error();
    return MakeError(std::string(errc::kBadPoint), "EC point is not on the curve");
  }
  return peer;
}

Result<SecretBytes> EcdhDerive(const EVP_PKEY* priv, const EVP_PKEY* peer) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(priv), nullptr));
  std::size_t len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), const_cast<EVP_PKEY*>(peer), 0) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) {
    return OsslError(std::string(errc::kUnwrapFailed), "ECDH failed");
  }
  SecretBytes z(len);
  if (EVP_PKEY_derive(ctx.get(), z.data(), &len) != 1)
    return OsslError(std::string(errc::kUnwrapFailed), "ECDH failed");
  z.resize(len);
  return z;
}

Result<SecretBytes> EcdhWithKey(const PrivateKey& key, ByteView point) {
  if (point.empty() || (point[0] != 0x04 && point[0] != 0x02 && point[0] != 0x03)) {
    return MakeError(std::string(errc::kBadPoint),
                     "EC point is not a valid encoding (or is the point at infinity)");
  }
  const EC_KEY* ec = key.impl().ec;
  if (ec == nullptr) return MakeError("wrong-key", "ECDH needs an EC private key");
  const EC_GROUP* group = EC_KEY_get0_group(ec);
  EcPointPtr peer(EC_POINT_new(group));
  // oct2point checks that the point lies on the curve.
  if (!peer || EC_POINT_oct2point(group, peer.get(), point.data(), point.size(), nullptr) != 1) {
    ERR_clear_error();
    return MakeError(std::string(errc::kBadPoint), "EC point is not on the curve");
  }
  const int field_bytes = (EC_GROUP_get_degree(group) + 7) / 8;
  SecretBytes z(static_cast<std::size_t>(field_bytes));
  const int len = ECDH_compute_key(z.data(), z.size(), peer.get(), ec, nullptr);
  if (len != field_bytes) return OsslError(std::string(errc::kUnwrapFailed), "ECDH failed");
  return z;
}

Result<AlgorithmId> ParseAlgorithmId(ByteView tlv_bytes, std::string_view what) {
  BL_TRY_ASSIGN(der::Tlv seq, der::ParseSingle(tlv_bytes, what));
  if (seq.tag != der::kSequence)
    return MakeError("malformed-der", "malformed CMS: " + std::string(what));
  der::DerReader r(seq);
  BL_TRY_ASSIGN(der::Tlv o, r.Expect(der::kOid, what));
  AlgorithmId alg;
  alg.oid = der::OidToString(o.content);
  if (!r.empty()) {
    BL_TRY_ASSIGN(der::Tlv params, r.Next(what));
    alg.params.assign(params.raw.begin(), params.raw.end());
  }
  // AlgorithmIdentifier ::= SEQUENCE { algorithm, parameters ANY OPTIONAL }: nothing after.
  if (!r.empty()) {
    return MakeError("malformed-der", "malformed CMS: trailing elements in AlgorithmIdentifier " +
                                          std::string(what));
  }
  return alg;
}

Bytes EncodeAlgorithmId(std::string_view o, ByteView params_tlv) {
  return der::Encode(der::kSequence, {der::EncodeOid(o), params_tlv});
}

Result<OaepParams> ParseOaepParams(ByteView params_tlv) {
  OaepParams p;
  p.hash = EVP_sha1();
  p.mgf1_hash = EVP_sha1();
  if (params_tlv.empty()) return p;
  BL_TRY_ASSIGN(der::Tlv seq, der::ParseSingle(params_tlv, "RSAES-OAEP-params"));
  if (seq.tag == der::kNull) return p;
  if (seq.tag != der::kSequence) return MakeError("malformed-der", "malformed RSAES-OAEP-params");
  der::DerReader r(seq);
  int last_field = -1;
  while (!r.empty()) {
    BL_TRY_ASSIGN(der::Tlv field, r.Next("RSAES-OAEP-params"));
    // Each of [0] [1] [2] at most once and in order; each holds exactly one AlgorithmIdentifier.
    const int number = field.tag - der::ContextConstructed(0);
    if (number <= last_field || number > 2) {
      return MakeError("malformed-der",
                       "malformed CMS: RSAES-OAEP-params: unknown, repeated or unordered field");
    }
    last_field = number;
    der::DerReader inner(field);
    BL_TRY_ASSIGN(der::Tlv alg_tlv, inner.Next("RSAES-OAEP-params"));
    if (!inner.empty()) {
      return MakeError("malformed-der", "malformed CMS: trailing elements in RSAES-OAEP-params");
    }
    BL_TRY_ASSIGN(AlgorithmId alg, ParseAlgorithmId(alg_tlv.raw, "RSAES-OAEP-params"));
    if (field.tag == der::ContextConstructed(0)) {
      p.hash = DigestForOid(alg.oid);
      if (p.hash == nullptr) return MakeError("unsupported", "unsupported OAEP hash " + alg.oid);
    } else if (field.tag == der::ContextConstructed(1)) {
      if (alg.oid != oid::kMgf1)
        return MakeError("unsupported", "unsupported OAEP mask function " + alg.oid);
      BL_TRY_ASSIGN(AlgorithmId mgf_hash, ParseAlgorithmId(alg.params, "MGF1 hash"));
      p.mgf1_hash = DigestForOid(mgf_hash.oid);
      if (p.mgf1_hash == nullptr)
        return MakeError("unsupported", "unsupported MGF1 hash " + mgf_hash.oid);
    } else if (field.tag == der::ContextConstructed(2)) {
      if (alg.oid != oid::kPSpecified)
        return MakeError("unsupported", "unsupported OAEP label source");
      BL_TRY_ASSIGN(der::Tlv label, der::ParseSingle(alg.params, "OAEP label"));
      BL_TRY_ASSIGN(p.label, der::OctetStringValue(label, "OAEP label"));
    } else {
      return MakeError("malformed-der", "malformed RSAES-OAEP-params");
    }
  }
  return p;
}

Bytes OaepSha256AlgorithmId() {
  // RFC 4055: SHA-2 parameters absent; MGF1 parameterised with SHA-256.
  Bytes sha256 = EncodeAlgorithmId(oid::kSha256);
  Bytes mgf = EncodeAlgorithmId(oid::kMgf1, sha256);
  Bytes params = der::Encode(der::kSequence, {der::Encode(der::ContextConstructed(0), sha256),
                                              der::Encode(der::ContextConstructed(1), mgf)});
  return EncodeAlgorithmId(oid::kRsaesOaep, params);
}

}  // namespace blindlist::crypto
