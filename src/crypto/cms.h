// CMS envelopes (RFC 5652 EnvelopedData, RFC 5083 AuthEnvelopedData): parse
// whatever stock S/MIME clients send, build our own, unwrap and wrap the
// content-encryption key (CEK), and edit RecipientInfos at the DER level
// without the CEK, leaving the encrypted content byte-identical.
// Thread-safety: value types; functions share no state.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/keys.h"

namespace blindlist::crypto {

enum class ContentCipher { kAes128Cbc, kAes192Cbc, kAes256Cbc, kAes128Gcm, kAes192Gcm, kAes256Gcm };
std::string_view ContentCipherName(ContentCipher c);
bool IsGcm(ContentCipher c);
std::size_t CekLength(ContentCipher c);

enum class RsaPadding { kOaepSha256, kPkcs1v15 };

enum class RecipientKind { kKeyTrans, kKeyAgree, kKek, kPassword, kOther };
std::string_view RecipientKindName(RecipientKind k);

struct RecipientId {
  enum class Kind { kIssuerSerial, kSubjectKeyId, kKekId };
  Kind kind = Kind::kIssuerSerial;
  Bytes issuer;  // DER Name (kIssuerSerial)
  Bytes serial;  // INTEGER contents (kIssuerSerial)
  Bytes key_id;  // SubjectKeyIdentifier or KEK keyIdentifier
  bool Matches(const Certificate& cert) const;
  std::string Describe() const;  // one line for `inspect`
};

// One recipient of a KeyAgreeRecipientInfo.
struct RecipientEncryptedKey {
  RecipientId rid;
  Bytes encrypted_key;
};

// A parsed RecipientInfo. `der` is its encoding exactly as received (or built).
struct RecipientInfo {
  RecipientKind kind = RecipientKind::kOther;
  Bytes der;
  std::string key_alg_oid;  // KTRI: key transport; KARI: key agreement scheme; KEKRI: key wrap
  Bytes key_alg_params;     // the parameters TLV, empty when absent
  // KTRI and KEKRI
  RecipientId rid;
  Bytes encrypted_key;
  // KARI
  std::string wrap_alg_oid;
  Bytes originator_key;  // the ephemeral public point (SEC1 octets)
  std::optional<Bytes> ukm;
  std::vector<RecipientEncryptedKey> recipient_keys;

  static Result<RecipientInfo> Parse(ByteView der);
  // A human name for the key algorithm ("RSA-OAEP (SHA-256)", "ECDH P-256 X9.63 SHA-256 + AES-256
  // wrap").
  std::string AlgorithmName() const;
};

struct Envelope {
  bool auth_enveloped = true;  // AuthEnvelopedData (GCM) or EnvelopedData
  Bytes originator_info;       // [0] TLV verbatim, empty when absent
  std::vector<RecipientInfo> recipients;
  Bytes encrypted_content_info;  // the EncryptedContentInfo TLV verbatim
  std::string content_type_oid;
  std::optional<ContentCipher> cipher;  // nullopt: an algorithm we do not support
  std::string cipher_oid;
  Bytes iv;                 // CBC IV or GCM nonce
  std::size_t tag_len = 0;  // GCM ICV length
  Bytes ciphertext;         // the encrypted content, segments joined
  Bytes auth_attrs;         // [1] TLV verbatim (AuthEnvelopedData)
  Bytes mac;                // the GCM tag (AuthEnvelopedData)
  Bytes trailing_attrs;     // unprotectedAttrs / unauthAttrs TLV verbatim

  // Parses a ContentInfo holding EnvelopedData or AuthEnvelopedData (BER or DER).
  static Result<Envelope> Parse(ByteView content_info);
  // Writes the ContentInfo. The outer structure is re-encoded in DER; the
  // EncryptedContentInfo and attributes are copied byte for byte.
  Bytes Serialize() const;
  // Serialize() in two parts, for writing many copies that differ only in their RecipientInfos:
  // the tail (the EncryptedContentInfo and everything after it) does not depend on them; the
  // head (every byte before it) is written for a tail of `tail_size` bytes, so that
  // SerializeHead(SerializeTail().size()) + SerializeTail() == Serialize(). The head does not
  // read encrypted_content_info, auth_attrs, mac or trailing_attrs' contents, only
  // trailing_attrs' presence, so it may be called on a copy without the ciphertext.
  Bytes SerializeHead(std::size_t tail_size) const;
  Bytes SerializeTail() const;

  // DER-level edits; none needs the CEK and none touches the encrypted content.
  Status AddRecipient(ByteView recipient_info_der);
  Status ReplaceRecipient(std::size_t index, ByteView recipient_info_der);
  Status RemoveRecipient(std::size_t index);
  // Re-encodes the EncryptedContentInfo in DER (definite lengths, the ciphertext as one
  // primitive [0]) without touching the ciphertext, so that a copy whose outer structure is
  // re-encoded in DER is DER throughout: NSS refuses an indefinite-length BER
  // EncryptedContentInfo (what streaming encoders, openssl cms among them, write) inside it.
  Status ReencodeContentDer();
};

// The RecipientInfos of a ContentInfo from the first bytes of its encoding only:
// they come before the encrypted content, so an exploder can see whom a 25 MB
// post is encrypted to without holding it decoded. The enclosing elements may
// run past `prefix`; the RecipientInfos themselves must be inside it and use
// definite lengths. Errors as Envelope::Parse, plus "truncated" when the
// prefix is too short.
Result<std::vector<RecipientInfo>> PeekRecipientInfos(ByteView prefix);

// A group secret for KEKRecipientInfo: AES key wrap key and its identifier.
struct GroupSecret {
  Bytes id;
  SecretBytes key;  // 16, 24 or 32 bytes
};

struct EncryptOptions {
  ContentCipher cipher = ContentCipher::kAes256Gcm;
  RsaPadding rsa_padding = RsaPadding::kOaepSha256;
};

// Encrypts `content` (the MIME entity) to each certificate and secret.
Result<Bytes> Encrypt(ByteView content, const std::vector<Certificate>& certs,
                      const std::vector<GroupSecret>& secrets, const EncryptOptions& options);

// A RecipientInfo for `cert` (KTRI for RSA, KARI for EC) or `secret` (KEKRI) carrying `cek`.
Result<Bytes> WrapCek(const SecretBytes& cek, const Certificate& cert, RsaPadding padding);
Result<Bytes> WrapCek(const SecretBytes& cek, const GroupSecret& secret);
// A recipient certificate prepared once for many wraps (CekWrapper): its key type, the DER of
// its RecipientIdentifier and, for RSA, a public-key context set up once. What a wrap to it
// needs and never changes, so a server that keeps these with its parsed certificates pays only
// the wrap itself on every later message (cek_wrapper.cc).
// Thread-safety: immutable once made; may be shared across threads.
class WrapTarget {
 public:
  // CheckWrapTarget's refusals, and "crypto".
  static Result<WrapTarget> Prepare(const Certificate& cert);

  const Certificate& certificate() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// WrapCek for many recipients of one message: every EC recipient on one curve shares one
// ephemeral key (the originator key of its KeyAgreeRecipientInfo), made on first use and freed,
// private scalar wiped, with the wrapper. RFC 5652 section 6.2.2 lets one originator key serve
// several recipients (one KARI, several RecipientEncryptedKeys); here each recipient gets its
// own copy of the message with a KARI of its own, all carrying the same originator public key.
// Each KEK comes from a different Z (ephemeral times that recipient's static key), so sharing
// the ephemeral across one message's recipients is what a multi-recipient KARI does anyway.
// It halves the scalar multiplications: one derive per EC recipient, no key generation.
// RSA recipients: one public-key operation each, its padding (PKCS#1 v1.5 or OAEP) made here
// from random bytes drawn in blocks, never shared between recipients (cek_wrapper.cc).
// Use one wrapper for one CEK only, never across messages.
// Thread-safety: one thread at a time.
class CekWrapper {
 public:
  // `cek` must outlive the wrapper.
  CekWrapper(const SecretBytes& cek, RsaPadding padding);
  ~CekWrapper();
  CekWrapper(const CekWrapper&) = delete;
  CekWrapper& operator=(const CekWrapper&) = delete;

  // As WrapCek(cek, cert, padding).
  Result<Bytes> Wrap(const Certificate& cert);
  Result<Bytes> Wrap(const WrapTarget& target);

 private:
  struct Ephemeral;
  struct Scratch;
  Result<Ephemeral*> EphemeralFor(const WrapTarget& target);
  Result<Bytes> WrapRsa(const WrapTarget& target);
  Result<Bytes> WrapEc(const WrapTarget& target);
  const SecretBytes& cek_;
  RsaPadding padding_;
  std::vector<std::unique_ptr<Ephemeral>> ephemerals_;  // one per curve met
  std::unique_ptr<Scratch> scratch_;                    // random bytes, digest context
};

// Whether WrapCek can wrap a key of 16 to 64 octets (a multiple of 8) to this target: the
// same refusals ("weak-key", "unsupported-key", "bad-key"), decided by the target alone, so a
// server can check its target before it unwraps anything.
Status CheckWrapTarget(const Certificate& cert);
Status CheckWrapTarget(const GroupSecret& secret);

// Unwraps the CEK from one RecipientInfo. For KARI, `rek_index` picks the
// RecipientEncryptedKey. Every failure of the key itself is "unwrap-failed".
Result<SecretBytes> UnwrapCek(const RecipientInfo& ri, const PrivateKey& key,
                              std::size_t rek_index = 0);
Result<SecretBytes> UnwrapCek(const RecipientInfo& ri, const GroupSecret& secret);

// The key holder's unwrap for a server that answers others (groupd; implicit_rejection.cc):
// no failure that depends on the private key is ever reported. RSA PKCS#1 v1.5 and OAEP use
// implicit rejection: bad padding, or a key that is not 16, 24 or 32 octets, or a ciphertext
// that is not the modulus length or not below n, gives a synthetic key (16, 24 or 32 octets)
// derived from a per-key secret and the ciphertext, the same each time for the same both; EC: a
// failed AES key-unwrap check gives a synthetic key of the wrapped key's length. The work done
// does not depend on which key comes out. Errors only for public properties of the request:
// "unsupported" (algorithm, OAEP parameters, KDF, wrap, static originator), "wrong-key" (the
// kind of RecipientInfo does not fit the key), "bad-index", "bad-point" (an EC point off the
// curve, or the point at infinity), "unwrap-failed" (a wrapped EC key of an impossible
// length), and "crypto" (OpenSSL itself failed, or the key does not give up its secret).
// Local reads, which may say why they failed, keep UnwrapCek.
Result<SecretBytes> UnwrapCekImplicit(const RecipientInfo& ri, const PrivateKey& key,
                                      std::size_t rek_index = 0);

// Finds the RecipientInfo for `cert` (by identifier), or when cert is null
// tries every RecipientInfo of the key's kind. Returns the CEK.
Result<SecretBytes> FindAndUnwrapCek(const Envelope& env, const PrivateKey& key,
                                     const Certificate* cert);
Result<SecretBytes> FindAndUnwrapCek(const Envelope& env, const GroupSecret& secret);

// Decrypts the content; nothing is returned unless the GCM tag or the CBC
// padding checks out. The plaintext is the MIME entity, not a key, but it is
// still the secret the whole system protects, so it comes back as SecretBytes.
Result<SecretBytes> DecryptContent(const Envelope& env, const SecretBytes& cek);

}  // namespace blindlist::crypto
