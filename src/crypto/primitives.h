// Internal to src/crypto: the key-management primitives CMS needs, shared by
// the envelope code (cms.cc) and the blind operations (blind.cc).
#pragma once

#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/ossl.h"

namespace blindlist::crypto {

namespace oid {
inline constexpr std::string_view kData = "1.2.840.113549.1.7.1";
inline constexpr std::string_view kEnvelopedData = "1.2.840.113549.1.7.3";
inline constexpr std::string_view kAuthEnvelopedData = "1.2.840.113549.1.9.16.1.23";
inline constexpr std::string_view kRsaEncryption = "1.2.840.113549.1.1.1";
inline constexpr std::string_view kRsaesOaep = "1.2.840.113549.1.1.7";
inline constexpr std::string_view kMgf1 = "1.2.840.113549.1.1.8";
inline constexpr std::string_view kPSpecified = "1.2.840.113549.1.1.9";
inline constexpr std::string_view kSha1 = "1.3.14.3.2.26";
inline constexpr std::string_view kSha224 = "2.16.840.1.101.3.4.2.4";
inline constexpr std::string_view kSha256 = "2.16.840.1.101.3.4.2.1";
inline constexpr std::string_view kSha384 = "2.16.840.1.101.3.4.2.2";
inline constexpr std::string_view kSha512 = "2.16.840.1.101.3.4.2.3";
inline constexpr std::string_view kEcPublicKey = "1.2.840.10045.2.1";
inline constexpr std::string_view kStdDhSha256Kdf = "1.3.132.1.11.1";
inline constexpr std::string_view kAes128Wrap = "2.16.840.1.101.3.4.1.5";
inline constexpr std::string_view kAes192Wrap = "2.16.840.1.101.3.4.1.25";
inline constexpr std::string_view kAes256Wrap = "2.16.840.1.101.3.4.1.45";
}  // namespace oid

// The digest a hash OID names (nullptr if unsupported).
const EVP_MD* DigestForOid(std::string_view oid);
// The digest used by the X9.63 KDF of a KARI key agreement scheme OID, or
// nullptr if the scheme is not one of the (single-pass, standard or cofactor) ECDH ones.
const EVP_MD* KdfDigestForScheme(std::string_view scheme_oid);
// The key length of an AES key wrap OID (0 if unsupported).
std::size_t WrapKeyLength(std::string_view wrap_oid);
std::string_view WrapOidForKeyLength(std::size_t len);

// RFC 3394 AES key wrap, computed over AES-ECB (AES-NI where the CPU has it:
// OpenSSL 3.0's own wrap cipher uses the portable AES). The integrity check of
// the unwrap is constant time.
Result<Bytes> AesWrap(const SecretBytes& kek, const SecretBytes& key);
Result<SecretBytes> AesUnwrap(const SecretBytes& kek, ByteView wrapped);
// The same unwrap without a verdict that branches: `out` gets R[1..n] whatever the integrity
// check says, and the result is that check as a mask (all ones: intact). Errors only for a KEK
// or wrapped length that is not allowed ("bad-key", "unwrap-failed") and for OpenSSL ("crypto").
Result<std::uint32_t> AesUnwrapMasked(const SecretBytes& kek, ByteView wrapped, SecretBytes& out);

// ANSI X9.63 KDF as RFC 5753 uses it for ECDH in CMS: the KEK for the wrap
// algorithm `wrap_oid` from the shared secret Z.
Result<SecretBytes> KariKek(const EVP_MD* kdf_md, ByteView z, std::string_view wrap_oid,
                            const Bytes* ukm);

// A public EC key on the same curve as `like` from SEC1 point octets. Refuses the
// point at infinity and points not on the curve.
Result<EvpPkeyPtr> EcPeerKey(const EVP_PKEY* like, ByteView point);
// ECDH: the x-coordinate of priv·peer.
Result<SecretBytes> EcdhDerive(const EVP_PKEY* priv, const EVP_PKEY* peer);
// ECDH with a loaded EC private key and a peer point given as SEC1 octets: the
// x-coordinate of key·point. Refuses what EcPeerKey refuses ("bad-point"). The
// point is decoded on the key's own curve and no EVP_PKEY is built per call
// (the key holder's hot path: unwrap and blind).
Result<SecretBytes> EcdhWithKey(const PrivateKey& key, ByteView point);

// RSA-OAEP parameters from an RSAES-OAEP-params TLV (empty: all defaults, SHA-1).
struct OaepParams {
  const EVP_MD* hash = nullptr;
  const EVP_MD* mgf1_hash = nullptr;
  Bytes label;
};
Result<OaepParams> ParseOaepParams(ByteView params_tlv);
// The AlgorithmIdentifier for RSA-OAEP with SHA-256 and MGF1-SHA-256.
Bytes OaepSha256AlgorithmId();

// An AlgorithmIdentifier: its OID (dotted) and its parameters TLV (empty if absent).
struct AlgorithmId {
  std::string oid;
  Bytes params;
};
Result<AlgorithmId> ParseAlgorithmId(ByteView tlv, std::string_view what);
Bytes EncodeAlgorithmId(std::string_view oid, ByteView params_tlv = {});

}  // namespace blindlist::crypto
