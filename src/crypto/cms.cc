#include "crypto/cms.h"

#include <openssl/rsa.h>

#include "blindlist/error_codes.h"
#include "crypto/cms_stream.h"
#include "crypto/der.h"
#include "crypto/primitives.h"

namespace blindlist::crypto {

namespace {

Error Malformed(std::string_view why) {
  return MakeError("malformed-der", "malformed CMS: " + std::string(why));
}

struct CipherInfo {
  ContentCipher cipher;
  std::string_view oid;
  std::string_view name;
};
constexpr CipherInfo kCiphers[] = {
    {ContentCipher::kAes128Cbc, "2.16.840.1.101.3.4.1.2", "aes-128-cbc"},
    {ContentCipher::kAes192Cbc, "2.16.840.1.101.3.4.1.22", "aes-192-cbc"},
    {ContentCipher::kAes256Cbc, "2.16.840.1.101.3.4.1.42", "aes-256-cbc"},
    {ContentCipher::kAes128Gcm, "2.16.840.1.101.3.4.1.6", "aes-128-gcm"},
    {ContentCipher::kAes192Gcm, "2.16.840.1.101.3.4.1.26", "aes-192-gcm"},
    {ContentCipher::kAes256Gcm, "2.16.840.1.101.3.4.1.46", "aes-256-gcm"},
};

const CipherInfo& InfoFor(ContentCipher c) {
  for (const auto& info : kCiphers) {
    if (info.cipher == c) return info;
  }
  return kCiphers[2];
}

const EVP_CIPHER* EvpCipher(ContentCipher c) {
  switch (c) {
    case ContentCipher::kAes128Cbc:
      return EVP_aes_128_cbc();
    case ContentCipher::kAes192Cbc:
      return EVP_aes_192_cbc();
    case ContentCipher::kAes256Cbc:
      return EVP_aes_256_cbc();
    case ContentCipher::kAes128Gcm:
      return EVP_aes_128_gcm();
    case ContentCipher::kAes192Gcm:
      return EVP_aes_192_gcm();
    case ContentCipher::kAes256Gcm:
      return EVP_aes_256_gcm();
  }
  return nullptr;
}

// Every SEQUENCE parsed here has a fixed ASN.1 definition without an extension point: an
// element after its last field is smuggled data, and the reader refuses it.
Status ExpectEnd(const der::DerReader& r, std::string_view structure) {
  if (!r.empty()) return Malformed("trailing elements in " + std::string(structure));
  return Status::Ok();
}

// IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber CertificateSerialNumber }
Result<RecipientId> ParseIssuerSerial(const der::Tlv& tlv) {
  RecipientId rid;
  der::DerReader r(tlv);
  BL_TRY_ASSIGN(der::Tlv issuer, r.Expect(der::kSequence, "issuer"));
  BL_TRY_ASSIGN(der::Tlv serial, r.Expect(der::kInteger, "serial number"));
  BL_TRY(ExpectEnd(r, "IssuerAndSerialNumber"));
  rid.kind = RecipientId::Kind::kIssuerSerial;
  rid.issuer.assign(issuer.raw.begin(), issuer.raw.end());
  rid.serial.assign(serial.content.begin(), serial.content.end());
  return rid;
}

// RecipientIdentifier (KTRI: [0] is an implicit SubjectKeyIdentifier OCTET STRING, either form)
// or KeyAgreeRecipientIdentifier (KARI: [0] is an implicit RecipientKeyIdentifier SEQUENCE).
Result<RecipientId> ParseRid(const der::Tlv& tlv, bool key_agree) {
  if (tlv.tag == der::kSequence) return ParseIssuerSerial(tlv);
  RecipientId rid;
  rid.kind = RecipientId::Kind::kSubjectKeyId;
  if (!key_agree && tlv.Is(der::ContextPrimitive(0))) {
    BL_TRY_ASSIGN(rid.key_id, der::OctetStringValue(tlv, "subjectKeyIdentifier"));
    return rid;
  }
  if (key_agree && tlv.tag == der::ContextConstructed(0)) {
    // RecipientKeyIdentifier ::= SEQUENCE { subjectKeyIdentifier, date GeneralizedTime OPTIONAL,
    //                                       other OtherKeyAttribute OPTIONAL }
    der::DerReader r(tlv);
    BL_TRY_ASSIGN(der::Tlv ski, r.Next("subjectKeyIdentifier"));
    if (!ski.Is(der::kOctetString)) return Malformed("subjectKeyIdentifier");
    BL_TRY_ASSIGN(rid.key_id, der::OctetStringValue(ski, "subjectKeyIdentifier"));
    if (r.PeekTag() == der::kGeneralizedTime) BL_TRY(r.Next("RecipientKeyIdentifier date"));
    if (r.PeekTag() == der::kSequence) BL_TRY(r.Next("RecipientKeyIdentifier other"));
    BL_TRY(ExpectEnd(r, "RecipientKeyIdentifier"));
    return rid;
  }
  return Malformed("unknown recipient identifier");
}

Bytes EncodeIssuerSerialRid(const Certificate& cert) { return cert.IssuerAndSerialDer(); }

// KeyTransRecipientInfo ::= SEQUENCE { version, rid, keyEncryptionAlgorithm, encryptedKey }
Result<RecipientInfo> ParseKtri(const der::Tlv& seq, RecipientInfo ri) {
  der::DerReader r(seq);
  BL_TRY_ASSIGN(der::Tlv version, r.Next("KeyTransRecipientInfo version"));
  BL_TRY(der::SmallIntegerValue(version, "KeyTransRecipientInfo version"));
  BL_TRY_ASSIGN(der::Tlv rid, r.Next("KeyTransRecipientInfo rid"));
  BL_TRY_ASSIGN(ri.rid, ParseRid(rid, /*key_agree=*/false));
  BL_TRY_ASSIGN(der::Tlv alg_tlv, r.Expect(der::kSequence, "keyEncryptionAlgorithm"));
  BL_TRY_ASSIGN(AlgorithmId alg, ParseAlgorithmId(alg_tlv.raw, "keyEncryptionAlgorithm"));
  ri.key_alg_oid = alg.oid;
  ri.key_alg_params = alg.params;
  if (alg.oid == oid::kRsaesOaep) {
    // Malformed parameters are malformed here; an unsupported hash is the unwrap's concern.
    auto params = ParseOaepParams(alg.params);
    if (!params.ok() && params.error().code == errc::kMalformedDer) return params.error();
  }
  BL_TRY_ASSIGN(der::Tlv ek, r.Next("encryptedKey"));
  if (!ek.Is(der::kOctetString)) return Malformed("encryptedKey");
  BL_TRY_ASSIGN(ri.encrypted_key, der::OctetStringValue(ek, "encryptedKey"));
  BL_TRY(ExpectEnd(r, "KeyTransRecipientInfo"));
  return ri;
}

// originator [0] EXPLICIT OriginatorIdentifierOrKey ::= CHOICE { issuerAndSerialNumber,
//   subjectKeyIdentifier [0], originatorKey [1] OriginatorPublicKey }
Status ParseOriginator(const der::Tlv& originator, RecipientInfo& ri) {
  der::DerReader o(originator);
  BL_TRY_ASSIGN(der::Tlv choice, o.Next("originator"));
  BL_TRY(ExpectEnd(o, "originator"));
  if (choice.tag == der::ContextConstructed(1)) {
    // OriginatorPublicKey ::= SEQUENCE { algorithm AlgorithmIdentifier, publicKey BIT STRING }
    der::DerReader k(choice);
    BL_TRY_ASSIGN(der::Tlv alg, k.Expect(der::kSequence, "originator key algorithm"));
    BL_TRY(ParseAlgorithmId(alg.raw, "originator key algorithm"));
    BL_TRY_ASSIGN(der::Tlv bits, k.Next("originator public key"));
    if (!bits.Is(der::kBitString)) return Malformed("originator public key");
    BL_TRY(ExpectEnd(k, "OriginatorPublicKey"));
    BL_TRY_ASSIGN(Bytes value, der::OctetStringValue(bits, "originator public key"));
    if (value.empty() || value[0] != 0) return Malformed("originator public key bit string");
    ri.originator_key.assign(value.begin() + 1, value.end());
    return Status::Ok();
  }
  // An originator named by certificate (static-static ECDH) is kept as is; we
  // cannot unwrap it without the originator's certificate, which CMS omits.
  if (choice.tag == der::kSequence) {
    BL_TRY(ParseIssuerSerial(choice));
    return Status::Ok();
  }
  if (choice.Is(der::ContextPrimitive(0))) return Status::Ok();
  return Malformed("unknown originator choice");
}

// KeyAgreeRecipientInfo ::= SEQUENCE { version, originator [0], ukm [1] OPTIONAL,
//   keyEncryptionAlgorithm, recipientEncryptedKeys SEQUENCE OF RecipientEncryptedKey }
Result<RecipientInfo> ParseKari(const der::Tlv& tlv, RecipientInfo ri) {
  der::DerReader r(tlv);
  BL_TRY_ASSIGN(der::Tlv version, r.Next("KeyAgreeRecipientInfo version"));
  BL_TRY(der::SmallIntegerValue(version, "KeyAgreeRecipientInfo version"));
  BL_TRY_ASSIGN(der::Tlv originator, r.Expect(der::ContextConstructed(0), "originator"));
  BL_TRY(ParseOriginator(originator, ri));
  if (r.PeekTag() == der::ContextConstructed(1)) {
    BL_TRY_ASSIGN(der::Tlv ukm_tlv, r.Next("ukm"));
    der::DerReader u(ukm_tlv);
    BL_TRY_ASSIGN(der::Tlv ukm, u.Next("ukm"));
    if (!ukm.Is(der::kOctetString)) return Malformed("ukm");
    BL_TRY(ExpectEnd(u, "ukm"));
    BL_TRY_ASSIGN(Bytes value, der::OctetStringValue(ukm, "ukm"));
    ri.ukm = std::move(value);
  }
  BL_TRY_ASSIGN(der::Tlv alg_tlv, r.Expect(der::kSequence, "keyEncryptionAlgorithm"));
  BL_TRY_ASSIGN(AlgorithmId alg, ParseAlgorithmId(alg_tlv.raw, "keyEncryptionAlgorithm"));
  ri.key_alg_oid = alg.oid;
  ri.key_alg_params = alg.params;
  if (!alg.params.empty()) {
    // RFC 5753: the parameters are the KeyWrapAlgorithm identifier.
    BL_TRY_ASSIGN(AlgorithmId wrap, ParseAlgorithmId(alg.params, "key wrap algorithm"));
    ri.wrap_alg_oid = wrap.oid;
  }
  BL_TRY_ASSIGN(der::Tlv reks, r.Expect(der::kSequence, "recipientEncryptedKeys"));
  BL_TRY(ExpectEnd(r, "KeyAgreeRecipientInfo"));
  der::DerReader k(reks);
  while (!k.empty()) {
    // RecipientEncryptedKey ::= SEQUENCE { rid KeyAgreeRecipientIdentifier, encryptedKey }
    BL_TRY_ASSIGN(der::Tlv rek, k.Expect(der::kSequence, "RecipientEncryptedKey"));
    der::DerReader e(rek);
    BL_TRY_ASSIGN(der::Tlv rid, e.Next("RecipientEncryptedKey rid"));
    RecipientEncryptedKey out;
    BL_TRY_ASSIGN(out.rid, ParseRid(rid, /*key_agree=*/true));
    BL_TRY_ASSIGN(der::Tlv ek, e.Next("encryptedKey"));
    if (!ek.Is(der::kOctetString)) return Malformed("encryptedKey");
    BL_TRY_ASSIGN(out.encrypted_key, der::OctetStringValue(ek, "encryptedKey"));
    BL_TRY(ExpectEnd(e, "RecipientEncryptedKey"));
    ri.recipient_keys.push_back(std::move(out));
  }
  if (ri.recipient_keys.empty()) return Malformed("KeyAgreeRecipientInfo without recipients");
  return ri;
}

// KEKRecipientInfo ::= SEQUENCE { version, kekid KEKIdentifier, keyEncryptionAlgorithm,
//   encryptedKey }
Result<RecipientInfo> ParseKekri(const der::Tlv& tlv, RecipientInfo ri) {
  der::DerReader r(tlv);
  BL_TRY_ASSIGN(der::Tlv version, r.Next("KEKRecipientInfo version"));
  BL_TRY(der::SmallIntegerValue(version, "KEKRecipientInfo version"));
  BL_TRY_ASSIGN(der::Tlv kekid, r.Expect(der::kSequence, "KEKIdentifier"));
  // KEKIdentifier ::= SEQUENCE { keyIdentifier OCTET STRING, date GeneralizedTime OPTIONAL,
  //                              other OtherKeyAttribute OPTIONAL }
  der::DerReader k(kekid);
  BL_TRY_ASSIGN(der::Tlv id, k.Next("keyIdentifier"));
  if (!id.Is(der::kOctetString)) return Malformed("keyIdentifier");
  if (k.PeekTag() == der::kGeneralizedTime) BL_TRY(k.Next("KEKIdentifier date"));
  if (k.PeekTag() == der::kSequence) BL_TRY(k.Next("KEKIdentifier other"));
  BL_TRY(ExpectEnd(k, "KEKIdentifier"));
  ri.rid.kind = RecipientId::Kind::kKekId;
  BL_TRY_ASSIGN(ri.rid.key_id, der::OctetStringValue(id, "keyIdentifier"));
  BL_TRY_ASSIGN(der::Tlv alg_tlv, r.Expect(der::kSequence, "keyEncryptionAlgorithm"));
  BL_TRY_ASSIGN(AlgorithmId alg, ParseAlgorithmId(alg_tlv.raw, "keyEncryptionAlgorithm"));
  ri.key_alg_oid = alg.oid;
  ri.key_alg_params = alg.params;
  BL_TRY_ASSIGN(der::Tlv ek, r.Next("encryptedKey"));
  if (!ek.Is(der::kOctetString)) return Malformed("encryptedKey");
  BL_TRY_ASSIGN(ri.encrypted_key, der::OctetStringValue(ek, "encryptedKey"));
  BL_TRY(ExpectEnd(r, "KEKRecipientInfo"));
  return ri;
}

// PasswordRecipientInfo ::= SEQUENCE { version, keyDerivationAlgorithm [0] OPTIONAL,
//   keyEncryptionAlgorithm, encryptedKey }. Not supported, so only its shape is checked.
Status CheckPwri(const der::Tlv& tlv) {
  der::DerReader r(tlv);
  BL_TRY_ASSIGN(der::Tlv version, r.Next("PasswordRecipientInfo version"));
  BL_TRY(der::SmallIntegerValue(version, "PasswordRecipientInfo version"));
  if (r.PeekTag() == der::ContextConstructed(0)) BL_TRY(r.Next("keyDerivationAlgorithm"));
  BL_TRY_ASSIGN(der::Tlv alg_tlv, r.Expect(der::kSequence, "keyEncryptionAlgorithm"));
  BL_TRY(ParseAlgorithmId(alg_tlv.raw, "keyEncryptionAlgorithm"));
  BL_TRY_ASSIGN(der::Tlv ek, r.Next("encryptedKey"));
  if (!ek.Is(der::kOctetString)) return Malformed("encryptedKey");
  return ExpectEnd(r, "PasswordRecipientInfo");
}

// OtherRecipientInfo ::= SEQUENCE { oriType OBJECT IDENTIFIER, oriValue ANY DEFINED BY oriType }
Status CheckOri(const der::Tlv& tlv) {
  der::DerReader r(tlv);
  BL_TRY(r.Expect(der::kOid, "oriType"));
  BL_TRY(r.Next("oriValue"));
  return ExpectEnd(r, "OtherRecipientInfo");
}

// OriginatorInfo ::= SEQUENCE { certs [0] IMPLICIT CertificateSet OPTIONAL,
//   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL }, kept verbatim.
Status CheckOriginatorInfo(const der::Tlv& tlv) {
  der::DerReader r(tlv);
  if (r.PeekTag() == der::ContextConstructed(0)) BL_TRY(r.Next("originatorInfo certs"));
  if (r.PeekTag() == der::ContextConstructed(1)) BL_TRY(r.Next("originatorInfo crls"));
  return ExpectEnd(r, "OriginatorInfo");
}

// Parses EncryptedContentInfo into `env`. With `location`, a primitive encryptedContent is not
// copied but located (offset from `base`), and the TLV is not kept verbatim.
Status ParseEncryptedContentInfo(const der::Tlv& eci, Envelope& env, ByteView base = {},
                                 ContentLocation* location = nullptr) {
  if (location == nullptr) env.encrypted_content_info.assign(eci.raw.begin(), eci.raw.end());
  der::DerReader r(eci);
  BL_TRY_ASSIGN(der::Tlv ct, r.Expect(der::kOid, "contentType"));
  env.content_type_oid = der::OidToString(ct.content);
  BL_TRY_ASSIGN(der::Tlv alg_tlv, r.Expect(der::kSequence, "contentEncryptionAlgorithm"));
  BL_TRY_ASSIGN(AlgorithmId alg, ParseAlgorithmId(alg_tlv.raw, "contentEncryptionAlgorithm"));
  env.cipher_oid = alg.oid;
  for (const auto& info : kCiphers) {
    if (info.oid == alg.oid) env.cipher = info.cipher;
  }
  if (env.cipher) {
    if (alg.params.empty()) return Malformed("content cipher without parameters");
    BL_TRY_ASSIGN(der::Tlv params, der::ParseSingle(alg.params, "cipher parameters"));
    if (IsGcm(*env.cipher)) {
      // GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen INTEGER DEFAULT 12 }
      if (params.tag != der::kSequence) return Malformed("GCM parameters");
      der::DerReader p(params);
      BL_TRY_ASSIGN(der::Tlv nonce, p.Next("GCM nonce"));
      if (!nonce.Is(der::kOctetString)) return Malformed("GCM nonce");
      BL_TRY_ASSIGN(env.iv, der::OctetStringValue(nonce, "GCM nonce"));
      env.tag_len = 12;
      if (!p.empty()) {
        BL_TRY_ASSIGN(der::Tlv icv, p.Next("GCM ICV length"));
        BL_TRY_ASSIGN(std::uint32_t icv_len, der::SmallIntegerValue(icv, "GCM ICV length"));
        env.tag_len = icv_len;
      }
      BL_TRY(ExpectEnd(p, "GCMParameters"));
      if (env.iv.empty() || env.iv.size() > 64) return Malformed("GCM nonce length");
      if (env.tag_len < 12 || env.tag_len > 16) return Malformed("GCM ICV length");
    } else {
      if (!params.Is(der::kOctetString)) return Malformed("CBC IV");
      BL_TRY_ASSIGN(env.iv, der::OctetStringValue(params, "CBC IV"));
      if (env.iv.size() != 16) return Malformed("CBC IV must be 16 bytes");
    }
  }
  if (!r.empty()) {
    BL_TRY_ASSIGN(der::Tlv content, r.Next("encryptedContent"));
    if (content.tag != der::ContextPrimitive(0) && content.tag != der::ContextConstructed(0)) {
      return Malformed("encryptedContent");
    }
    if (location != nullptr && !content.constructed()) {
      location->offset = static_cast<std::size_t>(content.content.data() - base.data());
      location->size = content.content.size();
      location->in_place = true;
    } else {
      BL_TRY_ASSIGN(env.ciphertext, der::OctetStringValue(content, "encryptedContent"));
    }
    BL_TRY(ExpectEnd(r, "EncryptedContentInfo"));
  } else {
    return MakeError("unsupported", "detached encrypted content is not supported");
  }
  return Status::Ok();
}

std::uint32_t EnvelopedDataVersion(const Envelope& env) {
  // RFC 5652 section 6.1.
  bool all_v0 = true;
  for (const auto& ri : env.recipients) {
    if (ri.kind == RecipientKind::kPassword || ri.kind == RecipientKind::kOther) return 3;
    if (ri.kind != RecipientKind::kKeyTrans || ri.rid.kind != RecipientId::Kind::kIssuerSerial) {
      all_v0 = false;
    }
  }
  if (env.originator_info.empty() && env.trailing_attrs.empty() && all_v0) return 0;
  return 2;
}

}  // namespace

std::string_view ContentCipherName(ContentCipher c) { return InfoFor(c).name; }
bool IsGcm(ContentCipher c) {
  return c == ContentCipher::kAes128Gcm || c == ContentCipher::kAes192Gcm ||
         c == ContentCipher::kAes256Gcm;
}
std::size_t CekLength(ContentCipher c) {
  switch (c) {
    case ContentCipher::kAes128Cbc:
    case ContentCipher::kAes128Gcm:
      return 16;
    case ContentCipher::kAes192Cbc:
    case ContentCipher::kAes192Gcm:
      return 24;
    default:
      return 32;
  }
}

std::string_view RecipientKindName(RecipientKind k) {
  switch (k) {
    case RecipientKind::kKeyTrans:
      return "ktri";
    case RecipientKind::kKeyAgree:
      return "kari";
    case RecipientKind::kKek:
      return "kekri";
    case RecipientKind::kPassword:
      return "pwri";
    case RecipientKind::kOther:
      break;
  }
  return "ori";
}

bool RecipientId::Matches(const Certificate& cert) const {
  switch (kind) {
    case Kind::kIssuerSerial: {
      Bytes cert_serial = cert.SerialContent();
      return issuer == cert.IssuerDer() && serial == cert_serial;
    }
    case Kind::kSubjectKeyId: {
      auto ski = cert.SubjectKeyId();
      return ski && *ski == key_id;
    }
    case Kind::kKekId:
      return false;
  }
  return false;
}

std::string RecipientId::Describe() const {
  switch (kind) {
    case Kind::kIssuerSerial:
      return "issuer-serial:" + ToHex(serial);
    case Kind::kSubjectKeyId:
      return "ski:" + ToHex(key_id);
    case Kind::kKekId:
      return "kek-id:" + ToHex(key_id);
  }
  return "";
}

Result<RecipientInfo> RecipientInfo::Parse(ByteView der_bytes) {
  BL_TRY_ASSIGN(der::Tlv tlv, der::ParseSingle(der_bytes, "RecipientInfo"));
  RecipientInfo ri;
  ri.der.assign(tlv.raw.begin(), tlv.raw.end());
  if (tlv.tag == der::kSequence) {
    ri.kind = RecipientKind::kKeyTrans;
    return ParseKtri(tlv, std::move(ri));
  }
  if (tlv.tag == der::ContextConstructed(1)) {
    ri.kind = RecipientKind::kKeyAgree;
    return ParseKari(tlv, std::move(ri));
  }
  if (tlv.tag == der::ContextConstructed(2)) {
    ri.kind = RecipientKind::kKek;
    return ParseKekri(tlv, std::move(ri));
  }
  if (tlv.tag == der::ContextConstructed(3)) {
    ri.kind = RecipientKind::kPassword;
    BL_TRY(CheckPwri(tlv));
    return ri;
  }
  if (tlv.tag == der::ContextConstructed(4)) {
    ri.kind = RecipientKind::kOther;
    BL_TRY(CheckOri(tlv));
    return ri;
  }
  return Malformed("unknown RecipientInfo type");
}

std::string RecipientInfo::AlgorithmName() const {
  switch (kind) {
    case RecipientKind::kKeyTrans: {
      if (key_alg_oid == oid::kRsaEncryption) return "RSA PKCS#1 v1.5";
      if (key_alg_oid == oid::kRsaesOaep) {
        auto p = ParseOaepParams(key_alg_params);
        if (!p.ok()) return "RSA-OAEP (bad parameters)";
        return std::string("RSA-OAEP (") + EVP_MD_get0_name(p->hash) + ")";
      }
      return "unsupported key transport " + key_alg_oid;
    }
    case RecipientKind::kKeyAgree: {
      const EVP_MD* md = KdfDigestForScheme(key_alg_oid);
      std::string kdf = md ? EVP_MD_get0_name(md) : ("unsupported scheme " + key_alg_oid);
      std::size_t wrap = WrapKeyLength(wrap_alg_oid);
      return "ECDH X9.63 " + kdf + " + " +
             (wrap ? "AES-" + std::to_string(wrap * 8) + " wrap" : "wrap " + wrap_alg_oid);
    }
    case RecipientKind::kKek: {
      std::size_t wrap = WrapKeyLength(key_alg_oid);
      return wrap ? "AES-" + std::to_string(wrap * 8) + " key wrap" : "unsupported " + key_alg_oid;
    }
    case RecipientKind::kPassword:
      return "password (unsupported)";
    case RecipientKind::kOther:
      break;
  }
  return "other (unsupported)";
}

namespace {

// One identifier-and-length header at `pos`: its size and, unless indefinite, the content length.
struct Header {
  std::uint8_t tag = 0;
  std::size_t size = 0;
  std::optional<std::size_t> length;
};

Result<Header> ReadHeader(ByteView data, std::size_t pos, std::string_view what) {
  if (pos + 2 > data.size()) return MakeError("truncated", std::string(what) + ": truncated");
  Header h;
  h.tag = data[pos];
  const std::uint8_t first = data[pos + 1];
  h.size = 2;
  if (first < 0x80) {
    h.length = first;
  } else if (first != 0x80) {
    const std::size_t octets = first & 0x7f;
    if (octets > 4) return Malformed(std::string(what) + ": length too large");
    if (pos + 2 + octets > data.size())
      return MakeError("truncated", std::string(what) + ": truncated");
    std::size_t length = 0;
    for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | data[pos + 2 + i];
    h.length = length;
    h.size += octets;
  }
  return h;
}

}  // namespace

Result<std::vector<RecipientInfo>> PeekRecipientInfos(ByteView prefix) {
  std::size_t pos = 0;
  BL_TRY_ASSIGN(Header ci, ReadHeader(prefix, pos, "ContentInfo"));
  if (ci.tag != der::kSequence) return MakeError("not-cms", "input is not a CMS ContentInfo");
  pos += ci.size;
  BL_TRY_ASSIGN(Header type, ReadHeader(prefix, pos, "contentType"));
  if (type.tag != der::kOid || !type.length || pos + type.size + *type.length > prefix.size())
    return Malformed("bad contentType");
  const std::string type_oid = der::OidToString(prefix.subspan(pos + type.size, *type.length));
  if (type_oid != oid::kAuthEnvelopedData && type_oid != oid::kEnvelopedData) {
    return MakeError(std::string(errc::kNotEnveloped),
                     "CMS content type " + type_oid + " is not EnvelopedData or AuthEnvelopedData");
  }
  pos += type.size + *type.length;
  BL_TRY_ASSIGN(Header wrapper, ReadHeader(prefix, pos, "content"));
  if (wrapper.tag != der::ContextConstructed(0)) return Malformed("missing content");
  pos += wrapper.size;
  BL_TRY_ASSIGN(Header body, ReadHeader(prefix, pos, "EnvelopedData"));
  if (body.tag != der::kSequence) return Malformed("EnvelopedData is not a SEQUENCE");
  pos += body.size;
  // version, then an optional originatorInfo: both whole inside the prefix.
  for (int i = 0; i < 2; ++i) {
    BL_TRY_ASSIGN(Header h, ReadHeader(prefix, pos, "EnvelopedData"));
    if (i == 1 && h.tag != der::ContextConstructed(0)) break;
    if (i == 0 && h.tag != der::kInteger) return Malformed("bad version");
    if (!h.length) return MakeError("truncated", "indefinite originatorInfo");
    if (pos + h.size + *h.length > prefix.size())
      return MakeError("truncated", "EnvelopedData: truncated");
    pos += h.size + *h.length;
  }
  BL_TRY_ASSIGN(Header set, ReadHeader(prefix, pos, "recipientInfos"));
  if (set.tag != der::kSet) return Malformed("recipientInfos is not a SET");
  if (!set.length) return MakeError("truncated", "recipientInfos: indefinite length");
  if (pos + set.size + *set.length > prefix.size())
    return MakeError("truncated", "recipientInfos: truncated");
  der::DerReader reader(prefix.subspan(pos + set.size, *set.length), 3);
  std::vector<RecipientInfo> out;
  while (!reader.empty()) {
    BL_TRY_ASSIGN(der::Tlv one, reader.Next("RecipientInfo"));
    BL_TRY_ASSIGN(RecipientInfo ri, RecipientInfo::Parse(one.raw));
    out.push_back(std::move(ri));
  }
  if (out.empty()) return Malformed("no RecipientInfo");
  return out;
}

namespace {

Result<Envelope> ParseEnvelope(ByteView content_info, ContentLocation* location) {
  BL_TRY_ASSIGN(der::Tlv ci, der::ParseSingle(content_info, "ContentInfo"));
  if (ci.tag != der::kSequence) return MakeError("not-cms", "input is not a CMS ContentInfo");
  der::DerReader r(ci);
  BL_TRY_ASSIGN(der::Tlv type, r.Expect(der::kOid, "contentType"));
  std::string type_oid = der::OidToString(type.content);
  Envelope env;
  if (type_oid == oid::kAuthEnvelopedData) {
    env.auth_enveloped = true;
  } else if (type_oid == oid::kEnvelopedData) {
    env.auth_enveloped = false;
  } else {
    return MakeError(std::string(errc::kNotEnveloped),
                     "CMS content type " + type_oid + " is not EnvelopedData or AuthEnvelopedData");
  }
  BL_TRY_ASSIGN(der::Tlv wrapper, r.Expect(der::ContextConstructed(0), "content"));
  BL_TRY(ExpectEnd(r, "ContentInfo"));
  const std::string_view body_name = env.auth_enveloped ? "AuthEnvelopedData" : "EnvelopedData";
  der::DerReader w(wrapper);
  BL_TRY_ASSIGN(der::Tlv body, w.Expect(der::kSequence, body_name));
  BL_TRY(ExpectEnd(w, "ContentInfo content"));
  der::DerReader b(body);
  BL_TRY_ASSIGN(der::Tlv version, b.Next("version"));
  BL_TRY(der::SmallIntegerValue(version, "version"));
  if (b.PeekTag() == der::ContextConstructed(0)) {
    BL_TRY_ASSIGN(der::Tlv orig, b.Next("originatorInfo"));
    BL_TRY(CheckOriginatorInfo(orig));
    env.originator_info.assign(orig.raw.begin(), orig.raw.end());
  }
  BL_TRY_ASSIGN(der::Tlv ris, b.Expect(der::kSet, "recipientInfos"));
  der::DerReader ri_reader(ris);
  while (!ri_reader.empty()) {
    BL_TRY_ASSIGN(der::Tlv one, ri_reader.Next("RecipientInfo"));
    BL_TRY_ASSIGN(RecipientInfo ri, RecipientInfo::Parse(one.raw));
    env.recipients.push_back(std::move(ri));
  }
  if (env.recipients.empty()) return Malformed("no RecipientInfo");
  BL_TRY_ASSIGN(der::Tlv eci, b.Expect(der::kSequence, "EncryptedContentInfo"));
  BL_TRY(ParseEncryptedContentInfo(eci, env, content_info, location));
  if (env.auth_enveloped) {
    if (b.PeekTag() == der::ContextConstructed(1)) {
      BL_TRY_ASSIGN(der::Tlv attrs, b.Next("authAttrs"));
      env.auth_attrs.assign(attrs.raw.begin(), attrs.raw.end());
    }
    BL_TRY_ASSIGN(der::Tlv mac, b.Next("mac"));
    if (!mac.Is(der::kOctetString)) return Malformed("mac");
    BL_TRY_ASSIGN(env.mac, der::OctetStringValue(mac, "mac"));
    if (b.PeekTag() == der::ContextConstructed(2)) {
      BL_TRY_ASSIGN(der::Tlv attrs, b.Next("unauthAttrs"));
      env.trailing_attrs.assign(attrs.raw.begin(), attrs.raw.end());
    }
    if (env.cipher && !IsGcm(*env.cipher)) {
      return MakeError("unsupported", "AuthEnvelopedData with a non-AEAD cipher");
    }
  } else {
    if (b.PeekTag() == der::ContextConstructed(1)) {
      BL_TRY_ASSIGN(der::Tlv attrs, b.Next("unprotectedAttrs"));
      env.trailing_attrs.assign(attrs.raw.begin(), attrs.raw.end());
    }
    if (env.cipher && IsGcm(*env.cipher)) {
      return MakeError("unsupported", "EnvelopedData with GCM has no place for the tag");
    }
  }
  BL_TRY(ExpectEnd(b, body_name));
  return env;
}

}  // namespace

Result<Envelope> Envelope::Parse(ByteView content_info) {
  return ParseEnvelope(content_info, nullptr);
}

Result<Envelope> ParseEnvelopeForDecryption(ByteView content_info, ContentLocation* content) {
  *content = ContentLocation{};
  return ParseEnvelope(content_info, content);
}

Bytes Envelope::Serialize() const {
  Bytes ris;
  for (const auto& ri : recipients) ris.insert(ris.end(), ri.der.begin(), ri.der.end());
  Bytes version = der::EncodeInteger(auth_enveloped ? 0 : EnvelopedDataVersion(*this));
  Bytes mac_tlv;
  if (auth_enveloped) mac_tlv = der::Encode(der::kOctetString, mac);
  Bytes body =
      der::Encode(der::kSequence, {version, originator_info, der::Encode(der::kSet, ris),
                                   encrypted_content_info, auth_attrs, mac_tlv, trailing_attrs});
  return der::Encode(der::kSequence, {der::EncodeOid(auth_enveloped ? oid::kAuthEnvelopedData
                                                                    : oid::kEnvelopedData),
                                      der::Encode(der::ContextConstructed(0), body)});
}

namespace {

// The identifier and length octets of a DER TLV of `length` content octets.
Bytes TlvHeader(std::uint8_t tag, std::size_t length) {
  Bytes h{tag};
  if (length < 0x80) {
    h.push_back(static_cast<std::uint8_t>(length));
    return h;
  }
  Bytes len;
  for (std::size_t l = length; l != 0; l >>= 8)
    len.insert(len.begin(), static_cast<std::uint8_t>(l));
  h.push_back(static_cast<std::uint8_t>(0x80 | len.size()));
  h.insert(h.end(), len.begin(), len.end());
  return h;
}

}  // namespace

Bytes Envelope::SerializeTail() const {
  Bytes tail = encrypted_content_info;
  tail.insert(tail.end(), auth_attrs.begin(), auth_attrs.end());
  if (auth_enveloped) {
    const Bytes mac_tlv = der::Encode(der::kOctetString, mac);
    tail.insert(tail.end(), mac_tlv.begin(), mac_tlv.end());
  }
  tail.insert(tail.end(), trailing_attrs.begin(), trailing_attrs.end());
  return tail;
}

Bytes Envelope::SerializeHead(std::size_t tail_size) const {
  Bytes ris;
  for (const auto& ri : recipients) ris.insert(ris.end(), ri.der.begin(), ri.der.end());
  const Bytes version = der::EncodeInteger(auth_enveloped ? 0 : EnvelopedDataVersion(*this));
  const Bytes set = der::Encode(der::kSet, ris);
  const Bytes oid = der::EncodeOid(auth_enveloped ? oid::kAuthEnvelopedData : oid::kEnvelopedData);
  const std::size_t body_len = version.size() + originator_info.size() + set.size() + tail_size;
  const Bytes body_header = TlvHeader(der::kSequence, body_len);
  const Bytes explicit_header =
      TlvHeader(der::ContextConstructed(0), body_header.size() + body_len);
  const Bytes outer_header = TlvHeader(
      der::kSequence, oid.size() + explicit_header.size() + body_header.size() + body_len);
  Bytes head;
  for (const Bytes* part :
       {&outer_header, &oid, &explicit_header, &body_header, &version, &originator_info, &set}) {
    head.insert(head.end(), part->begin(), part->end());
  }
  return head;
}

Status Envelope::ReencodeContentDer() {
  BL_TRY_ASSIGN(der::Tlv eci, der::ParseSingle(encrypted_content_info, "EncryptedContentInfo"));
  der::DerReader r(eci);
  BL_TRY_ASSIGN(der::Tlv ct, r.Expect(der::kOid, "contentType"));
  BL_TRY_ASSIGN(der::Tlv alg, r.Expect(der::kSequence, "contentEncryptionAlgorithm"));
  if (alg.indefinite) return Malformed("contentEncryptionAlgorithm of indefinite length");
  Bytes reencoded = der::Encode(
      der::kSequence, {Bytes(ct.raw.begin(), ct.raw.end()), Bytes(alg.raw.begin(), alg.raw.end()),
                       der::Encode(der::ContextPrimitive(0), ciphertext)});
  encrypted_content_info = std::move(reencoded);
  return Status::Ok();
}

Status Envelope::AddRecipient(ByteView recipient_info_der) {
  BL_TRY_ASSIGN(RecipientInfo ri, RecipientInfo::Parse(recipient_info_der));
  recipients.push_back(std::move(ri));
  return Status::Ok();
}

Status Envelope::ReplaceRecipient(std::size_t index, ByteView recipient_info_der) {
  if (index >= recipients.size()) return MakeError("bad-index", "no RecipientInfo at that index");
  BL_TRY_ASSIGN(RecipientInfo ri, RecipientInfo::Parse(recipient_info_der));
  recipients[index] = std::move(ri);
  return Status::Ok();
}

Status Envelope::RemoveRecipient(std::size_t index) {
  if (index >= recipients.size()) return MakeError("bad-index", "no RecipientInfo at that index");
  if (recipients.size() == 1) {
    return MakeError("last-recipient",
                     "removing the last RecipientInfo would make the message unreadable");
  }
  recipients.erase(recipients.begin() + static_cast<std::ptrdiff_t>(index));
  return Status::Ok();
}

Status CheckWrapTarget(const Certificate& cert) {
  KeyType type = cert.key_type();
  if (type == KeyType::kRsa) {
    // Reading old mail to short keys still works; wrapping new keys to them does not.
    if (int bits = EVP_PKEY_get_bits(X509_get0_pubkey(cert.impl().x509.get())); bits < 2048) {
      return MakeError("weak-key", "the recipient's RSA key has " + std::to_string(bits) +
                                       " bits; at least 2048 are required");
    }
    return Status::Ok();
  }
  if (type == KeyType::kEcP256 || type == KeyType::kEcP384) return Status::Ok();
  return MakeError("unsupported-key", "unsupported recipient key type");
}

Status CheckWrapTarget(const GroupSecret& secret) {
  if (WrapOidForKeyLength(secret.key.size()).empty())
    return MakeError("bad-key", "a group secret must be 16, 24 or 32 bytes");
  if (secret.id.empty()) return MakeError("bad-key", "a group secret needs a key identifier");
  return Status::Ok();
}

namespace {

Result<Bytes> WrapCekRsa(const SecretBytes& cek, const Certificate& cert, RsaPadding padding) {
  EVP_PKEY* pub = X509_get0_pubkey(cert.impl().x509.get());
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pub, nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1) return OsslError("crypto", "RSA setup failed");
  Bytes alg;
  if (padding == RsaPadding::kOaepSha256) {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1) {
      return OsslError("crypto", "RSA-OAEP setup failed");
    }
    static const Bytes kOaep = OaepSha256AlgorithmId();  // the same for every recipient
    alg = kOaep;
  } else {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
      return OsslError("crypto", "RSA setup failed");
    }
    static const Bytes kPkcs1 = EncodeAlgorithmId(oid::kRsaEncryption, der::EncodeNull());
    alg = kPkcs1;
  }
  std::size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, cek.data(), cek.size()) != 1) {
    return OsslError("crypto", "RSA encryption failed");
  }
  Bytes ek(len);
  if (EVP_PKEY_encrypt(ctx.get(), ek.data(), &len, cek.data(), cek.size()) != 1) {
    return OsslError("crypto", "RSA encryption failed");
  }
  ek.resize(len);
  return der::Encode(der::kSequence, {der::EncodeInteger(0), EncodeIssuerSerialRid(cert), alg,
                                      der::Encode(der::kOctetString, ek)});
}

}  // namespace

Result<Bytes> WrapCek(const SecretBytes& cek, const Certificate& cert, RsaPadding padding) {
  if (cert.key_type() == KeyType::kRsa) {
    BL_TRY(CheckWrapTarget(cert));
    return WrapCekRsa(cek, cert, padding);
  }
  // A wrapper of its own: a fresh ephemeral key for this one recipient.
  CekWrapper wrapper(cek, padding);
  return wrapper.Wrap(cert);
}

Result<Bytes> WrapCek(const SecretBytes& cek, const GroupSecret& secret) {
  BL_TRY(CheckWrapTarget(secret));
  std::string_view wrap_oid = WrapOidForKeyLength(secret.key.size());
  BL_TRY_ASSIGN(Bytes wrapped, AesWrap(secret.key, cek));
  Bytes kekid = der::Encode(der::kSequence, der::Encode(der::kOctetString, secret.id));
  return der::Encode(der::ContextConstructed(2),
                     {der::EncodeInteger(4), kekid, EncodeAlgorithmId(wrap_oid),
                      der::Encode(der::kOctetString, wrapped)});
}

Result<SecretBytes> UnwrapCek(const RecipientInfo& ri, const PrivateKey& key,
                              std::size_t rek_index) {
  EVP_PKEY* pkey = key.impl().pkey.get();
  if (ri.kind == RecipientKind::kKeyTrans) {
    if (key.type() != KeyType::kRsa)
      return MakeError("wrong-key", "this RecipientInfo needs an RSA key");
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
    if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1)
      return OsslError("crypto", "RSA setup failed");
    if (ri.key_alg_oid == oid::kRsaesOaep) {
      BL_TRY_ASSIGN(OaepParams p, ParseOaepParams(ri.key_alg_params));
      if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
          EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), p.hash) != 1 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), p.mgf1_hash) != 1) {
        return OsslError("crypto", "RSA-OAEP setup failed");
      }
      if (!p.label.empty()) {
        auto* label = static_cast<unsigned char*>(OPENSSL_memdup(p.label.data(), p.label.size()));
        if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, static_cast<int>(p.label.size())) !=
            1) {
          OPENSSL_free(label);
          return OsslError("crypto", "RSA-OAEP label setup failed");
        }
      }
    } else if (ri.key_alg_oid == oid::kRsaEncryption) {
      if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
        return OsslError("crypto", "RSA setup failed");
      }
    } else {
      return MakeError("unsupported", "unsupported key transport algorithm " + ri.key_alg_oid);
    }
    std::size_t len = 0;
    if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ri.encrypted_key.data(),
                         ri.encrypted_key.size()) != 1) {
      ERR_clear_error();
      return MakeError(std::string(errc::kUnwrapFailed),
                       "cannot unwrap the message key: wrong key");
    }
    SecretBytes cek(len);
    if (EVP_PKEY_decrypt(ctx.get(), cek.data(), &len, ri.encrypted_key.data(),
                         ri.encrypted_key.size()) != 1) {
      ERR_clear_error();
      return MakeError(std::string(errc::kUnwrapFailed),
                       "cannot unwrap the message key: wrong key");
    }
    cek.resize(len);
    return cek;
  }
  if (ri.kind == RecipientKind::kKeyAgree) {
    if (key.type() != KeyType::kEcP256 && key.type() != KeyType::kEcP384) {
      return MakeError("wrong-key", "this RecipientInfo needs an EC key");
    }
    if (rek_index >= ri.recipient_keys.size())
      return MakeError("bad-index", "no such recipient key");
    const EVP_MD* kdf = KdfDigestForScheme(ri.key_alg_oid);
    if (kdf == nullptr)
      return MakeError("unsupported", "unsupported key agreement scheme " + ri.key_alg_oid);
    if (ri.originator_key.empty()) {
      return MakeError("unsupported",
                       "key agreement with a static originator key is not supported");
    }
    BL_TRY_ASSIGN(SecretBytes z, EcdhWithKey(key, ri.originator_key));
    BL_TRY_ASSIGN(SecretBytes kek,
                  KariKek(kdf, z.view(), ri.wrap_alg_oid, ri.ukm ? &*ri.ukm : nullptr));
    return AesUnwrap(kek, ri.recipient_keys[rek_index].encrypted_key);
  }
  return MakeError("wrong-key", "this RecipientInfo is not for a private key");
}

Result<SecretBytes> UnwrapCek(const RecipientInfo& ri, const GroupSecret& secret) {
  if (ri.kind != RecipientKind::kKek) return MakeError("wrong-key", "not a KEKRecipientInfo");
  std::size_t need = WrapKeyLength(ri.key_alg_oid);
  if (need == 0)
    return MakeError("unsupported", "unsupported key wrap algorithm " + ri.key_alg_oid);
  if (need != secret.key.size()) {
    return MakeError("wrong-key", "the group secret is " + std::to_string(secret.key.size() * 8) +
                                      " bits but the message uses AES-" + std::to_string(need * 8) +
                                      " key wrap");
  }
  return AesUnwrap(secret.key, ri.encrypted_key);
}

Result<SecretBytes> FindAndUnwrapCek(const Envelope& env, const PrivateKey& key,
                                     const Certificate* cert) {
  bool any_candidate = false;
  bool is_rsa = key.type() == KeyType::kRsa;
  for (const auto& ri : env.recipients) {
    if (is_rsa && ri.kind == RecipientKind::kKeyTrans) {
      if (cert != nullptr && !ri.rid.Matches(*cert)) continue;
      any_candidate = true;
      auto cek = UnwrapCek(ri, key);
      // PKCS#1 v1.5 under the wrong key can pass its padding check (by chance, or
      // always with OpenSSL 3.2+ implicit rejection): a CEK of the wrong length for
      // the content cipher is such a failure, so keep looking.
      if (cek.ok() && env.cipher && cek->size() != CekLength(*env.cipher)) {
        cek =
            MakeError(std::string(errc::kUnwrapFailed), "cannot unwrap the message key: wrong key");
      }
      if (cek.ok() || cert != nullptr) return cek;
    } else if (!is_rsa && ri.kind == RecipientKind::kKeyAgree) {
      for (std::size_t i = 0; i < ri.recipient_keys.size(); ++i) {
        if (cert != nullptr && !ri.recipient_keys[i].rid.Matches(*cert)) continue;
        any_candidate = true;
        auto cek = UnwrapCek(ri, key, i);
        if (cek.ok() || cert != nullptr) return cek;
      }
    }
  }
  if (!any_candidate) {
    return MakeError(std::string(errc::kNoRecipient),
                     cert != nullptr ? "no RecipientInfo for this certificate"
                                     : "no RecipientInfo for this kind of key");
  }
  return MakeError(std::string(errc::kUnwrapFailed), "cannot unwrap the message key: wrong key");
}

Result<SecretBytes> FindAndUnwrapCek(const Envelope& env, const GroupSecret& secret) {
  for (const auto& ri : env.recipients) {
    if (ri.kind == RecipientKind::kKek && ConstantTimeEqual(ri.rid.key_id, secret.id)) {
      return UnwrapCek(ri, secret);
    }
  }
  return MakeError(std::string(errc::kNoRecipient),
                   "no KEKRecipientInfo for secret key id " + ToHex(secret.id));
}

namespace {

// Decrypts `ciphertext` into `out` (room for its size plus a block; `out` may be the ciphertext
// itself). Nothing in `out` is valid unless this succeeds; on failure it is cleansed.
Result<std::size_t> DecryptInto(const Envelope& env, const SecretBytes& cek, ByteView ciphertext,
                                std::uint8_t* out) {
  if (!env.cipher) return MakeError("unsupported", "unsupported content cipher " + env.cipher_oid);
  ContentCipher c = *env.cipher;
  if (cek.size() != CekLength(c)) {
    return MakeError(std::string(errc::kUnwrapFailed), "cannot unwrap the message key: wrong key");
  }
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EvpCipher(c), nullptr, nullptr, nullptr) != 1) {
    return OsslError("crypto", "cipher setup failed");
  }
  if (IsGcm(c) && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN,
                                      static_cast<int>(env.iv.size()), nullptr) != 1) {
    return OsslError("crypto", "GCM setup failed");
  }
  if (EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, cek.data(), env.iv.data()) != 1) {
    return OsslError("crypto", "cipher setup failed");
  }
  int len = 0;
  if (IsGcm(c)) {
    if (env.mac.size() != env.tag_len)
      return MakeError(std::string(errc::kTampered), "authentication tag has the wrong length");
    if (!env.auth_attrs.empty()) {
      // RFC 5083: the AAD is the DER of authAttrs with the SET OF tag, not [1].
      Bytes aad = env.auth_attrs;
      aad[0] = der::kSet;
      if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) !=
          1) {
        return OsslError("crypto", "GCM AAD failed");
      }
    }
  }
  std::size_t out_len = 0;
  constexpr std::size_t kMaxPiece = std::size_t{1} << 30;  // EVP lengths are int
  for (std::size_t pos = 0; pos < ciphertext.size();) {
    const std::size_t n = std::min(kMaxPiece, ciphertext.size() - pos);
    if (EVP_DecryptUpdate(ctx.get(), out + out_len, &len, ciphertext.data() + pos,
                          static_cast<int>(n)) != 1) {
      OPENSSL_cleanse(out, out_len);
      return OsslError("crypto", "decryption failed");
    }
    out_len += static_cast<std::size_t>(len);
    pos += n;
  }
  if (IsGcm(c) &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(env.mac.size()),
                          const_cast<std::uint8_t*>(env.mac.data())) != 1) {
    OPENSSL_cleanse(out, out_len);
    return OsslError("crypto", "GCM setup failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out + out_len, &len) != 1) {
    ERR_clear_error();
    OPENSSL_cleanse(out, out_len);
    if (IsGcm(c))
      return MakeError(std::string(errc::kTampered),
                       "authentication failed: the message was tampered with or the key is wrong");
    return MakeError(std::string(errc::kTampered),
                     "bad CBC padding: the message was tampered with or the key is wrong");
  }
  return out_len + static_cast<std::size_t>(len);
}

}  // namespace

Result<SecretBytes> DecryptContent(const Envelope& env, const SecretBytes& cek) {
  SecretBytes plain(env.ciphertext.size() + 16);
  BL_TRY_ASSIGN(std::size_t size, DecryptInto(env, cek, env.ciphertext, plain.data()));
  plain.resize(size);
  return plain;
}

Result<std::span<std::uint8_t>> DecryptContentInPlace(const Envelope& env,
                                                      std::span<std::uint8_t> content_info,
                                                      const ContentLocation& content,
                                                      const SecretBytes& cek) {
  if (!content.in_place) {
    return MakeError("usage", "the encrypted content is not one piece; decrypt it with a copy");
  }
  if (content.offset > content_info.size() || content.size > content_info.size() - content.offset) {
    return MakeError("usage", "the content location is outside the ContentInfo");
  }
  const std::span<std::uint8_t> ciphertext = content_info.subspan(content.offset, content.size);
  // EVP decrypts in place; CBC's final block never writes past the ciphertext it came from.
  BL_TRY_ASSIGN(std::size_t size, DecryptInto(env, cek, ciphertext, ciphertext.data()));
  return ciphertext.first(size);
}

// ---- streaming encryption (cms_stream.h) ----

namespace {

// A DER tag and definite length for `length` content octets.
void AppendTlvHeader(Bytes& out, std::uint8_t tag, std::uint64_t length) {
  out.push_back(tag);
  if (length < 0x80) {
    out.push_back(static_cast<std::uint8_t>(length));
    return;
  }
  std::uint8_t octets[8];
  int count = 0;
  for (std::uint64_t v = length; v != 0; v >>= 8) octets[count++] = static_cast<std::uint8_t>(v);
  out.push_back(static_cast<std::uint8_t>(0x80 | count));
  for (int i = count - 1; i >= 0; --i) out.push_back(octets[i]);
}

std::uint64_t TlvHeaderSize(std::uint64_t length) {
  Bytes header;
  AppendTlvHeader(header, 0, length);
  return header.size();
}

constexpr int kGcmTagLength = 16;

}  // namespace

struct StreamEncryptor::State {
  ContentCipher cipher = ContentCipher::kAes256Gcm;
  EvpCipherCtxPtr ctx;
  std::uint64_t content_size = 0;
  std::uint64_t fed = 0;
  Bytes prefix;
};

StreamEncryptor::StreamEncryptor(std::unique_ptr<State> state) : state_(std::move(state)) {}
StreamEncryptor::StreamEncryptor(StreamEncryptor&&) noexcept = default;
StreamEncryptor& StreamEncryptor::operator=(StreamEncryptor&&) noexcept = default;
StreamEncryptor::~StreamEncryptor() = default;

ByteView StreamEncryptor::prefix() const { return state_->prefix; }

Result<StreamEncryptor> StreamEncryptor::Start(std::uint64_t content_size,
                                               const std::vector<Certificate>& certs,
                                               const std::vector<GroupSecret>& secrets,
                                               const EncryptOptions& options) {
  if (certs.empty() && secrets.empty()) return MakeError("usage", "no recipients");
  auto state = std::make_unique<State>();
  const ContentCipher c = options.cipher;
  state->cipher = c;
  state->content_size = content_size;
  SecretBytes cek = RandomSecret(CekLength(c));
  const bool gcm = IsGcm(c);
  Bytes iv(gcm ? 12 : 16);
  BL_TRY(RandomBytes(iv.data(), iv.size()));

  Envelope env;
  env.auth_enveloped = gcm;
  for (const auto& cert : certs) {
    BL_TRY_ASSIGN(Bytes ri, WrapCek(cek, cert, options.rsa_padding));
    BL_TRY(env.AddRecipient(ri));
  }
  for (const auto& secret : secrets) {
    BL_TRY_ASSIGN(Bytes ri, WrapCek(cek, secret));
    BL_TRY(env.AddRecipient(ri));
  }
  state->ctx.reset(EVP_CIPHER_CTX_new());
  if (!state->ctx ||
      EVP_EncryptInit_ex(state->ctx.get(), EvpCipher(c), nullptr, cek.data(), iv.data()) != 1) {
    return OsslError("crypto", "cipher setup failed");
  }

  // The ContentInfo as Envelope::Serialize writes it, with the encrypted content left out: DER,
  // so every enclosing length follows from the content length (CBC pads to the next block).
  const std::uint64_t ciphertext_size = gcm ? content_size : (content_size / 16 + 1) * 16;
  const Bytes params = gcm ? der::Encode(der::kSequence, {der::Encode(der::kOctetString, iv),
                                                          der::EncodeInteger(kGcmTagLength)})
                           : der::Encode(der::kOctetString, iv);
  Bytes eci_fields =
      der::Concat({der::EncodeOid(oid::kData), EncodeAlgorithmId(InfoFor(c).oid, params)});
  AppendTlvHeader(eci_fields, der::ContextPrimitive(0), ciphertext_size);
  const std::uint64_t eci_content = eci_fields.size() + ciphertext_size;
  Bytes ris;
  for (const auto& ri : env.recipients) ris.insert(ris.end(), ri.der.begin(), ri.der.end());
  const Bytes head = der::Concat(
      {der::EncodeInteger(gcm ? 0 : EnvelopedDataVersion(env)), der::Encode(der::kSet, ris)});
  const std::uint64_t mac_tlv = gcm ? 2 + kGcmTagLength : 0;
  const std::uint64_t body_content =
      head.size() + TlvHeaderSize(eci_content) + eci_content + mac_tlv;
  const std::uint64_t body = TlvHeaderSize(body_content) + body_content;
  const Bytes type_oid = der::EncodeOid(gcm ? oid::kAuthEnvelopedData : oid::kEnvelopedData);
  const std::uint64_t wrapper = TlvHeaderSize(body) + body;

  Bytes& out = state->prefix;
  AppendTlvHeader(out, der::kSequence, type_oid.size() + wrapper);
  out.insert(out.end(), type_oid.begin(), type_oid.end());
  AppendTlvHeader(out, der::ContextConstructed(0), body);
  AppendTlvHeader(out, der::kSequence, body_content);
  out.insert(out.end(), head.begin(), head.end());
  AppendTlvHeader(out, der::kSequence, eci_content);
  out.insert(out.end(), eci_fields.begin(), eci_fields.end());
  return StreamEncryptor(std::move(state));
}

Status StreamEncryptor::Update(ByteView plain, Bytes& out) {
  State& s = *state_;
  if (plain.size() > s.content_size - s.fed) {
    return MakeError("usage", "more content than the envelope was started for");
  }
  const std::size_t start = out.size();
  out.resize(start + plain.size() + 16);  // CBC may release a held-back block
  std::size_t produced = 0;
  constexpr std::size_t kMaxPiece = std::size_t{1} << 30;  // EVP lengths are int
  for (std::size_t pos = 0; pos < plain.size();) {
    const std::size_t n = std::min(kMaxPiece, plain.size() - pos);
    int len = 0;
    if (EVP_EncryptUpdate(s.ctx.get(), out.data() + start + produced, &len, plain.data() + pos,
                          static_cast<int>(n)) != 1) {
      return OsslError("crypto", "encryption failed");
    }
    produced += static_cast<std::size_t>(len);
    pos += n;
  }
  s.fed += plain.size();
  out.resize(start + produced);
  return Status::Ok();
}

Status StreamEncryptor::Finish(Bytes& out) {
  State& s = *state_;
  if (s.fed != s.content_size) {
    return MakeError("usage", "less content than the envelope was started for");
  }
  const std::size_t start = out.size();
  out.resize(start + 16);
  int len = 0;
  if (EVP_EncryptFinal_ex(s.ctx.get(), out.data() + start, &len) != 1) {
    return OsslError("crypto", "encryption failed");
  }
  out.resize(start + static_cast<std::size_t>(len));
  if (IsGcm(s.cipher)) {
    std::uint8_t tag[kGcmTagLength];
    if (EVP_CIPHER_CTX_ctrl(s.ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagLength, tag) != 1) {
      return OsslError("crypto", "GCM tag failed");
    }
    der::AppendTlv(out, der::kOctetString, ByteView(tag, sizeof tag));
  }
  return Status::Ok();
}

Result<Bytes> Encrypt(ByteView content, const std::vector<Certificate>& certs,
                      const std::vector<GroupSecret>& secrets, const EncryptOptions& options) {
  BL_TRY_ASSIGN(StreamEncryptor encryptor,
                StreamEncryptor::Start(content.size(), certs, secrets, options));
  Bytes out;
  out.reserve(encryptor.prefix().size() + content.size() + 64);
  out.insert(out.end(), encryptor.prefix().begin(), encryptor.prefix().end());
  BL_TRY(encryptor.Update(content, out));
  BL_TRY(encryptor.Finish(out));
  return out;
}

}  // namespace blindlist::crypto
