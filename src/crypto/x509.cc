#include "crypto/x509.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <climits>
#include <ctime>
#include <memory>

#include "blindlist/error_codes.h"
#include "crypto/ossl.h"

namespace blindlist::crypto {

namespace {

void FreeExtensionStack(STACK_OF(X509_EXTENSION) * s) {
  sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}

using X509ReqPtr = std::unique_ptr<X509_REQ, OsslDeleter<X509_REQ_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, OsslDeleter<X509_CRL_free>>;
using X509RevokedPtr = std::unique_ptr<X509_REVOKED, OsslDeleter<X509_REVOKED_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OsslDeleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OsslDeleter<X509_EXTENSION_free>>;
using ExtensionStackPtr =
    std::unique_ptr<STACK_OF(X509_EXTENSION), OsslDeleter<FreeExtensionStack>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OsslDeleter<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OsslDeleter<GENERAL_NAMES_free>>;
using DistPointPtr = std::unique_ptr<DIST_POINT, OsslDeleter<DIST_POINT_free>>;
using CrlDistPointsPtr = std::unique_ptr<CRL_DIST_POINTS, OsslDeleter<CRL_DIST_POINTS_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OsslDeleter<ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, OsslDeleter<ASN1_TIME_free>>;
using Asn1Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, OsslDeleter<ASN1_IA5STRING_free>>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, OsslDeleter<PKCS12_free>>;

// Validity spans beyond this are configuration mistakes, and keep the time arithmetic in range.
constexpr std::int64_t kMaxSpanSeconds = 200LL * 366 * 24 * 3600;

// Seal format: version(1) || nonce(12) || ciphertext || tag(16).
constexpr std::uint8_t kSealVersion = 1;
constexpr std::size_t kSealNonceSize = 12;
constexpr std::size_t kSealTagSize = 16;
constexpr std::size_t kSealKeySize = 32;

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

BioPtr MemBio(ByteView data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

bool LooksLikePem(ByteView data) {
  return AsChars(data).find("-----BEGIN ") != std::string_view::npos;
}

template <typename T, int (*I2d)(const T*, unsigned char**)>
Result<Bytes> ToDer(const T* obj, std::string_view what) {
  unsigned char* out = nullptr;
  int len = I2d(obj, &out);
  if (len <= 0) return OsslError("crypto", "cannot encode the " + std::string(what));
  Bytes der(out, out + len);
  OPENSSL_free(out);
  return der;
}

Result<Asn1TimePtr> TimeAt(std::int64_t unix_seconds) {
  Asn1TimePtr t(ASN1_TIME_set(nullptr, static_cast<time_t>(unix_seconds)));
  if (!t) return OsslError("crypto", "time out of range");
  return t;
}

// Seconds since the epoch; nullopt for an unparsable time.
std::optional<std::int64_t> UnixTime(const ASN1_TIME* t) {
  if (t == nullptr) return std::nullopt;
  Asn1TimePtr epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0;
  int seconds = 0;
  if (!epoch || ASN1_TIME_diff(&days, &seconds, epoch.get(), t) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  return static_cast<std::int64_t>(days) * 86400 + seconds;
}

// rfc822Name and URI SAN entries are IA5String: printable ASCII, no spaces.
bool IsIa5Token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

std::string Asn1StringText(const ASN1_STRING* s) {
  if (s == nullptr) return {};
  const unsigned char* data = ASN1_STRING_get0_data(s);
  return std::string(reinterpret_cast<const char*>(data),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}

// The serial number as lowercase hex of its magnitude ("00" for zero).
std::string SerialHex(const ASN1_INTEGER* serial) {
  BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) {
    ERR_clear_error();
    return {};
  }
  Bytes mag(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), mag.data());
  if (mag.empty()) return "00";
  return ToHex(mag);
}

Result<Asn1IntegerPtr> SerialFromHex(std::string_view hex) {
  if (hex.empty() || hex.size() > 40) {
    return MakeError("bad-serial", "serial must be 1 to 40 hex digits");
  }
  for (char c : hex) {
    bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!digit) return MakeError("bad-serial", "serial is not hex: " + std::string(hex));
  }
  std::string text(hex);
  BIGNUM* raw = nullptr;
  if (BN_hex2bn(&raw, text.c_str()) == 0) return OsslError("bad-serial", "cannot read the serial");
  BnPtr bn(raw);
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return OsslError("crypto", "cannot encode the serial");
  return serial;
}

// A positive serial of exactly 128 bits (top bit set), 17 DER content octets.
Result<Asn1IntegerPtr> RandomSerial() {
  BnPtr bn(BN_new());
  if (!bn || BN_rand(bn.get(), 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1) {
    return OsslError("crypto", "cannot draw a serial number");
  }
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return OsslError("crypto", "cannot encode the serial");
  return serial;
}

Result<X509NamePtr> CommonNameOnly(const std::string& common_name) {
  X509NamePtr name(X509_NAME_new());
  if (!name) return OsslError("crypto", "cannot allocate a name");
  if (!common_name.empty() &&
      X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1) {
    return OsslError("bad-profile", "unusable common name (UTF-8, 1 to 64 characters)");
  }
  return name;
}

// Keys we certify: RSA of at least 2048 bits, P-256, P-384.
Status CheckSubjectKey(const EVP_PKEY* pkey) {
  KeyType type = KeyTypeOf(pkey);
  if (type == KeyType::kOther) {
    return MakeError("unsupported-key", "unsupported key type (need RSA, P-256 or P-384)");
  }
  if (type == KeyType::kRsa && EVP_PKEY_get_bits(pkey) < 2048) {
    return MakeError("unsupported-key", "RSA key of " + std::to_string(EVP_PKEY_get_bits(pkey)) +
                                            " bits is too small (need 2048 or more)");
  }
  return Status::Ok();
}

Status CheckProfile(const CertificateProfile& profile) {
  if (profile.validity_seconds <= 0 || profile.validity_seconds > kMaxSpanSeconds) {
    return MakeError("bad-profile", "validity must be positive and under 200 years");
  }
  if (profile.backdate_seconds < 0 || profile.backdate_seconds > kMaxSpanSeconds) {
    return MakeError("bad-profile", "backdate must be non-negative and under 200 years");
  }
  if (profile.common_name.empty() && profile.email.empty() && profile.uris.empty()) {
    return MakeError("bad-profile", "a certificate needs a common name or a subjectAltName");
  }
  if (!profile.email.empty() &&
      (!IsIa5Token(profile.email) || profile.email.find('@') == std::string::npos)) {
    return MakeError("bad-profile", "email must be an ASCII addr-spec: " + profile.email);
  }
  for (const auto& uri : profile.uris) {
    if (!IsIa5Token(uri) || uri.find(':') == std::string::npos) {
      return MakeError("bad-profile", "URI must be absolute ASCII: " + uri);
    }
  }
  if (!profile.crl_url.empty() &&
      (!IsIa5Token(profile.crl_url) || profile.crl_url.find(':') == std::string::npos)) {
    return MakeError("bad-profile", "CRL URL must be absolute ASCII: " + profile.crl_url);
  }
  return Status::Ok();
}

// The CA must be one (basicConstraints CA:TRUE or an equivalent) and `key` its private half.
Status CheckSigningCa(X509* ca, EVP_PKEY* key) {
  if (X509_check_ca(ca) == 0) {
    return MakeError("not-a-ca", "the issuing certificate is not a CA certificate");
  }
  if (X509_check_private_key(ca, key) != 1) {
    ERR_clear_error();
    return MakeError("key-mismatch", "the CA key does not belong to the CA certificate");
  }
  return Status::Ok();
}

Status PushIa5Name(GENERAL_NAMES* names, int type, const std::string& value) {
  Asn1Ia5StringPtr ia5(ASN1_IA5STRING_new());
  GeneralNamePtr name(GENERAL_NAME_new());
  if (!ia5 || !name ||
      ASN1_STRING_set(ia5.get(), value.data(), static_cast<int>(value.size())) != 1) {
    return OsslError("crypto", "cannot build a general name");
  }
  GENERAL_NAME_set0_value(name.get(), type, ia5.release());
  if (sk_GENERAL_NAME_push(names, name.get()) <= 0) {
    return OsslError("crypto", "cannot build a general name");
  }
  (void)name.release();  // ownership passed to OpenSSL above
  return Status::Ok();
}

// The SAN entries of the profile; an empty stack if it has none. Built as
// structures rather than config strings, so commas in a value stay data.
Result<GeneralNamesPtr> SubjectAltNames(const CertificateProfile& profile) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) return OsslError("crypto", "cannot allocate names");
  if (!profile.email.empty()) BL_TRY(PushIa5Name(names.get(), GEN_EMAIL, profile.email));
  for (const auto& uri : profile.uris) BL_TRY(PushIa5Name(names.get(), GEN_URI, uri));
  return names;
}

Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OsslError("crypto", std::string("cannot add the ") + OBJ_nid2ln(nid) + " extension");
  }
  return Status::Ok();
}

Status AddCrlDistributionPoint(X509* cert, const std::string& url) {
  GeneralNamesPtr full_name(GENERAL_NAMES_new());
  if (!full_name) return OsslError("crypto", "cannot allocate names");
  BL_TRY(PushIa5Name(full_name.get(), GEN_URI, url));
  DistPointPtr point(DIST_POINT_new());
  CrlDistPointsPtr points(CRL_DIST_POINTS_new());
  if (!point || !points) return OsslError("crypto", "cannot allocate a distribution point");
  point->distpoint = DIST_POINT_NAME_new();
  if (point->distpoint == nullptr) return OsslError("crypto", "cannot allocate a point name");
  point->distpoint->type = 0;  // fullName
  point->distpoint->name.fullname = full_name.release();
  if (sk_DIST_POINT_push(points.get(), point.get()) <= 0) {
    return OsslError("crypto", "cannot build the distribution points");
  }
  (void)point.release();  // ownership passed to OpenSSL above
  if (X509_add1_ext_i2d(cert, NID_crl_distribution_points, points.get(), 0, X509V3_ADD_DEFAULT) !=
      1) {
    return OsslError("crypto", "cannot add the CRL distribution point");
  }
  return Status::Ok();
}

Result<X509Ptr> NewCertificate(const X509_NAME* subject, const X509_NAME* issuer,
                               EVP_PKEY* subject_key, std::int64_t not_before,
                               std::int64_t not_after) {
  X509Ptr cert(X509_new());
  if (!cert) return OsslError("crypto", "cannot allocate a certificate");
  BL_TRY_ASSIGN(Asn1IntegerPtr serial, RandomSerial());
  BL_TRY_ASSIGN(Asn1TimePtr before, TimeAt(not_before));
  BL_TRY_ASSIGN(Asn1TimePtr after, TimeAt(not_after));
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
      X509_set_subject_name(cert.get(), subject) != 1 ||
      X509_set_issuer_name(cert.get(), issuer) != 1 ||
      X509_set1_notBefore(cert.get(), before.get()) != 1 ||
      X509_set1_notAfter(cert.get(), after.get()) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return OsslError("crypto", "cannot fill in the certificate");
  }
  return cert;
}

// Signs with SHA-256 (ECDSA or RSA PKCS#1 v1.5, per the key) and hands back a loaded Certificate.
Result<Certificate> SignCertificate(X509* cert, EVP_PKEY* signer) {
  if (X509_sign(cert, signer, EVP_sha256()) <= 0) {
    return OsslError("crypto", "cannot sign the certificate");
  }
  BL_TRY_ASSIGN(Bytes der, (ToDer<X509, i2d_X509>(cert, "certificate")));
  return Certificate::Load(der);
}

void AppendSanEntries(const GENERAL_NAMES* names, std::vector<std::string>& emails,
                      std::vector<std::string>& uris) {
  if (names == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    const void* value = GENERAL_NAME_get0_value(name, &type);
    if (type == GEN_EMAIL) emails.push_back(Asn1StringText(static_cast<const ASN1_STRING*>(value)));
    if (type == GEN_URI) uris.push_back(Asn1StringText(static_cast<const ASN1_STRING*>(value)));
  }
}

std::string CommonNameOf(const X509_NAME* name) {
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

Result<Certificate> IssueCertificate(ByteView subject_public_key_der,
                                     const CertificateProfile& profile, const Certificate& ca_cert,
                                     const PrivateKey& ca_key) {
  const unsigned char* p = subject_public_key_der.data();
  EvpPkeyPtr subject_key(
      d2i_PUBKEY(nullptr, &p, static_cast<long>(subject_public_key_der.size())));  // NOLINT
  if (!subject_key) return OsslError("bad-key", "cannot read the subject public key");
  if (p != subject_public_key_der.data() + subject_public_key_der.size()) {
    return MakeError("bad-key", "trailing bytes after the subject public key");
  }
  BL_TRY(CheckSubjectKey(subject_key.get()));
  BL_TRY(CheckProfile(profile));
  X509* ca = ca_cert.impl().x509.get();
  EVP_PKEY* signer = ca_key.impl().pkey.get();
  BL_TRY(CheckSigningCa(ca, signer));

  std::int64_t now = UnixNow();
  BL_TRY_ASSIGN(X509NamePtr subject, CommonNameOnly(profile.common_name));
  BL_TRY_ASSIGN(X509Ptr cert,
                NewCertificate(subject.get(), X509_get_subject_name(ca), subject_key.get(),
                               now - profile.backdate_seconds, now + profile.validity_seconds));

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca, cert.get(), nullptr, nullptr, 0);
  // RFC 5480 / RFC 8813: an EC key agrees keys, it never enciphers them.
  const char* key_usage = KeyTypeOf(subject_key.get()) == KeyType::kRsa ? "critical,keyEncipherment"
                                                                        : "critical,keyAgreement";
  BL_TRY(AddConfExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  BL_TRY(AddConfExtension(cert.get(), &ctx, NID_key_usage, key_usage));
  BL_TRY(AddConfExtension(cert.get(), &ctx, NID_ext_key_usage, "emailProtection"));
  BL_TRY(AddConfExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  // keyid from the CA's SKI; issuer name and serial only when the CA has no SKI.
  BL_TRY(AddConfExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid,issuer"));
  BL_TRY_ASSIGN(GeneralNamesPtr names, SubjectAltNames(profile));
  if (sk_GENERAL_NAME_num(names.get()) > 0) {
    // RFC 5280 4.2.1.6: the SAN is critical when the subject is empty.
    int critical = profile.common_name.empty() ? 1 : 0;
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), critical,
                          X509V3_ADD_DEFAULT) != 1) {
      return OsslError("crypto", "cannot add the subjectAltName");
    }
  }
  if (!profile.crl_url.empty()) BL_TRY(AddCrlDistributionPoint(cert.get(), profile.crl_url));
  return SignCertificate(cert.get(), signer);
}

Result<Certificate> MakeCaCertificate(const PrivateKey& key, const std::string& common_name,
                                      std::int64_t validity_seconds) {
  if (common_name.empty()) return MakeError("bad-profile", "a CA needs a common name");
  if (validity_seconds <= 0 || validity_seconds > kMaxSpanSeconds) {
    return MakeError("bad-profile", "validity must be positive and under 200 years");
  }
  EVP_PKEY* pkey = key.impl().pkey.get();
  std::int64_t now = UnixNow();
  CertificateProfile defaults;
  BL_TRY_ASSIGN(X509NamePtr name, CommonNameOnly(common_name));
  BL_TRY_ASSIGN(X509Ptr cert,
                NewCertificate(name.get(), name.get(), pkey, now - defaults.backdate_seconds,
                               now + validity_seconds));
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  BL_TRY(AddConfExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  BL_TRY(AddConfExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  BL_TRY(AddConfExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  return SignCertificate(cert.get(), pkey);
}

Result<Bytes> MakeCsr(const PrivateKey& key, const CertificateProfile& profile) {
  BL_TRY(CheckProfile(profile));
  EVP_PKEY* pkey = key.impl().pkey.get();
  X509ReqPtr req(X509_REQ_new());
  if (!req) return OsslError("crypto", "cannot allocate a CSR");
  BL_TRY_ASSIGN(X509NamePtr subject, CommonNameOnly(profile.common_name));
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), pkey) != 1) {
    return OsslError("crypto", "cannot fill in the CSR");
  }
  BL_TRY_ASSIGN(GeneralNamesPtr names, SubjectAltNames(profile));
  if (sk_GENERAL_NAME_num(names.get()) > 0) {
    ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
    X509ExtensionPtr san(
        X509V3_EXT_i2d(NID_subject_alt_name, profile.common_name.empty() ? 1 : 0, names.get()));
    if (!exts || !san || sk_X509_EXTENSION_push(exts.get(), san.get()) <= 0) {
      return OsslError("crypto", "cannot build the extension request");
    }
    (void)san.release();  // ownership passed to OpenSSL above
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
      return OsslError("crypto", "cannot add the extension request");
    }
  }
  if (X509_REQ_sign(req.get(), pkey, EVP_sha256()) <= 0) {
    return OsslError("crypto", "cannot sign the CSR");
  }
  return ToDer<X509_REQ, i2d_X509_REQ>(req.get(), "CSR");
}

Result<CsrInfo> ParseCsr(ByteView pem_or_der) {
  if (pem_or_der.empty()) return MakeError("bad-csr", "empty CSR");
  // Exactly one CSR: a PEM body (or the DER given) with bytes after the CSR is refused, so what
  // is signed and checked is all there is.
  Bytes from_pem;
  ByteView der = pem_or_der;
  if (LooksLikePem(pem_or_der)) {
    BL_TRY_ASSIGN(from_pem,
                  PemObjectDer(pem_or_der, {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"},
                               "bad-csr", "CSR"));
    der = from_pem;
  }
  const unsigned char* p = der.data();
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));  // NOLINT
  if (!req) return OsslError("bad-csr", "cannot read the CSR");
  if (p != der.data() + der.size()) return MakeError("bad-csr", "trailing bytes after the CSR");

  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req.get());
  if (pkey == nullptr) return OsslError("unsupported-key", "cannot use the CSR's public key");
  BL_TRY(CheckSubjectKey(pkey));
  if (X509_REQ_verify(req.get(), pkey) != 1) {
    return OsslError("bad-signature", "the CSR's self-signature does not verify");
  }

  CsrInfo info;
  info.key_type = KeyTypeOf(pkey);
  unsigned char* spki = nullptr;
  int spki_len = i2d_PUBKEY(pkey, &spki);
  if (spki_len <= 0) return OsslError("crypto", "cannot encode the CSR's public key");
  info.public_key_der.assign(spki, spki + spki_len);
  OPENSSL_free(spki);
  info.common_name = CommonNameOf(X509_REQ_get_subject_name(req.get()));

  ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  if (!exts) return OsslError("bad-csr", "unreadable extension request");
  int critical = -1;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509V3_get_d2i(exts.get(), NID_subject_alt_name, &critical, nullptr)));
  if (!names && critical != -1) {
    return OsslError("bad-csr", "unreadable or repeated subjectAltName in the CSR");
  }
  AppendSanEntries(names.get(), info.emails, info.uris);
  return info;
}

Status VerifyIssuedBy(const Certificate& cert, const Certificate& ca_cert, std::int64_t now) {
  X509* x = cert.impl().x509.get();
  X509* ca = ca_cert.impl().x509.get();
  if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)) != 0) {
    return MakeError("bad-signature", "the certificate was not issued by " + ca_cert.SubjectText());
  }
  EVP_PKEY* ca_key = X509_get0_pubkey(ca);
  if (ca_key == nullptr || X509_verify(x, ca_key) != 1) {
    return OsslError("bad-signature", "the certificate's signature does not verify under the CA");
  }
  auto not_before = UnixTime(X509_get0_notBefore(x));
  auto not_after = UnixTime(X509_get0_notAfter(x));
  if (!not_before || !not_after) return MakeError("bad-certificate", "unreadable validity");
  if (now < *not_before)
    return MakeError(std::string(errc::kNotYetValid), "the certificate is not valid yet");
  if (now > *not_after)
    return MakeError(std::string(errc::kExpired), "the certificate has expired");
  return Status::Ok();
}

Status VerifyServerCertificate(const Certificate& cert, const Certificate& ca_cert,
                               std::string_view host, std::int64_t now) {
  BL_TRY(VerifyIssuedBy(cert, ca_cert, now));
  X509* x = cert.impl().x509.get();
  if (X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0) != 1)
    return MakeError("wrong-purpose", "the certificate is not a TLS server certificate");
  const std::string name(host);
  if (name.empty() || name.find('\0') != std::string::npos)
    return MakeError("wrong-host", "no host name to check the certificate against");
  // An address literal matches an iPAddress entry only; anything else a dNSName entry only.
  const std::unique_ptr<ASN1_OCTET_STRING, OsslDeleter<ASN1_OCTET_STRING_free>> address(
      a2i_IPADDRESS(name.c_str()));
  ERR_clear_error();  // a name that is not an address leaves an error queued
  if (address) {
    if (X509_check_ip_asc(x, name.c_str(), 0) == 1) return Status::Ok();
    return MakeError("wrong-host", "the certificate does not name " + name);
  }
  if (X509_check_host(x, name.data(), name.size(), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) ==
      1) {
    return Status::Ok();
  }
  return MakeError("wrong-host", "the certificate does not name " + name);
}

CertificateInfo DescribeCertificate(const Certificate& cert) {
  X509* x = cert.impl().x509.get();
  CertificateInfo info;
  info.serial_hex = SerialHex(X509_get0_serialNumber(x));
  info.not_before = UnixTime(X509_get0_notBefore(x)).value_or(0);
  info.not_after = UnixTime(X509_get0_notAfter(x)).value_or(0);
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  AppendSanEntries(names.get(), info.emails, info.uris);
  ERR_clear_error();
  info.fingerprint_sha256 = ToHex(Sha256(cert.Der()));
  return info;
}

Result<Bytes> MakeCrl(const Certificate& ca_cert, const PrivateKey& ca_key,
                      const std::vector<std::pair<std::string, std::int64_t>>& revoked,
                      std::int64_t next_update_seconds) {
  if (next_update_seconds <= 0 || next_update_seconds > kMaxSpanSeconds) {
    return MakeError("bad-profile", "nextUpdate must be positive and under 200 years");
  }
  X509* ca = ca_cert.impl().x509.get();
  EVP_PKEY* signer = ca_key.impl().pkey.get();
  BL_TRY(CheckSigningCa(ca, signer));
  X509CrlPtr crl(X509_CRL_new());
  if (!crl) return OsslError("crypto", "cannot allocate a CRL");
  auto now_point = std::chrono::system_clock::now();
  std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(now_point.time_since_epoch()).count();
  BL_TRY_ASSIGN(Asn1TimePtr last_update, TimeAt(now));
  BL_TRY_ASSIGN(Asn1TimePtr next_update, TimeAt(now + next_update_seconds));
  if (X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca)) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return OsslError("crypto", "cannot fill in the CRL");
  }
  for (const auto& [serial_hex, revoked_at] : revoked) {
    BL_TRY_ASSIGN(Asn1IntegerPtr serial, SerialFromHex(serial_hex));
    BL_TRY_ASSIGN(Asn1TimePtr when, TimeAt(revoked_at));
    X509RevokedPtr entry(X509_REVOKED_new());
    if (!entry || X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), when.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return OsslError("crypto", "cannot add a revoked entry");
    }
    (void)entry.release();  // ownership passed to OpenSSL above
  }
  // The CRL number must grow with every CRL (RFC 5280 5.2.3); the issue time in
  // microseconds does that without keeping state.
  std::int64_t crl_number =
      std::chrono::duration_cast<std::chrono::microseconds>(now_point.time_since_epoch()).count();
  Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_int64(number.get(), crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OsslError("crypto", "cannot add the CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca, nullptr, nullptr, crl.get(), 0);
  X509ExtensionPtr aki(
      X509V3_EXT_nconf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid,issuer"));
  if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1) {
    return OsslError("crypto", "cannot add the authorityKeyIdentifier");
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), signer, EVP_sha256()) <= 0) {
    return OsslError("crypto", "cannot sign the CRL");
  }
  return ToDer<X509_CRL, i2d_X509_CRL>(crl.get(), "CRL");
}

Result<KeyAndCertificate> ImportPkcs12(ByteView der, const std::string& passphrase) {
  const unsigned char* p = der.data();
  std::unique_ptr<PKCS12, OsslDeleter<PKCS12_free>> p12(
      d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));  // NOLINT(google-runtime-int)
  if (!p12) return OsslError("bad-pkcs12", "cannot read the PKCS#12");
  EVP_PKEY* pkey = nullptr;
  X509* cert = nullptr;
  if (PKCS12_parse(p12.get(), passphrase.c_str(), &pkey, &cert, nullptr) != 1) {
    return OsslError("bad-pkcs12", "cannot open the PKCS#12 (wrong passphrase?)");
  }
  EvpPkeyPtr key_owner(pkey);
  X509Ptr cert_owner(cert);
  if (!key_owner || !cert_owner)
    return MakeError("bad-pkcs12", "the PKCS#12 lacks a key or a certificate");
  // Round-trip through the public loaders so the usual type checks apply.
  unsigned char* key_der = nullptr;
  int key_len = i2d_PrivateKey(key_owner.get(), &key_der);
  if (key_len <= 0) return OsslError("bad-pkcs12", "cannot encode the PKCS#12 key");
  SecretBytes key_bytes(ByteView(key_der, static_cast<std::size_t>(key_len)));
  OPENSSL_clear_free(key_der, static_cast<std::size_t>(key_len));
  unsigned char* cert_der = nullptr;
  int cert_len = i2d_X509(cert_owner.get(), &cert_der);
  if (cert_len <= 0) return OsslError("bad-pkcs12", "cannot encode the PKCS#12 certificate");
  Bytes cert_bytes(cert_der, cert_der + cert_len);
  OPENSSL_free(cert_der);
  BL_TRY_ASSIGN(PrivateKey key, PrivateKey::Load(key_bytes.view()));
  BL_TRY_ASSIGN(Certificate certificate, Certificate::Load(cert_bytes));
  return KeyAndCertificate{std::move(key), std::move(certificate)};
}

Result<Bytes> ExportPkcs12(const PrivateKey& key, const Certificate& cert,
                           const std::string& friendly_name, const std::string& passphrase) {
  return ExportPkcs12(key, cert, friendly_name, passphrase, kPkcs12DefaultIterations);
}

Result<Bytes> ExportPkcs12(const PrivateKey& key, const Certificate& cert,
                           const std::string& friendly_name, const std::string& passphrase,
                           int iterations) {
  if (passphrase.empty()) return MakeError("bad-passphrase", "a PKCS#12 export needs a passphrase");
  if (iterations < 1) return MakeError("bad-passphrase", "PBKDF2 iterations must be positive");
  EVP_PKEY* pkey = key.impl().pkey.get();
  X509* x = cert.impl().x509.get();
  if (X509_check_private_key(x, pkey) != 1) {
    ERR_clear_error();
    return MakeError("key-mismatch", "the key does not belong to the certificate");
  }
  // mac_iter -1: no MAC yet; PKCS12_create_ex would make a SHA-1 one.
  Pkcs12Ptr p12(PKCS12_create_ex(
      passphrase.c_str(), friendly_name.empty() ? nullptr : friendly_name.c_str(), pkey, x, nullptr,
      NID_aes_256_cbc, NID_aes_256_cbc, iterations, -1, 0, nullptr, nullptr));
  if (!p12) return OsslError("crypto", "cannot build the PKCS#12");
  if (PKCS12_set_mac(p12.get(), passphrase.c_str(), -1, nullptr, 0, iterations, EVP_sha256()) !=
      1) {
    return OsslError("crypto", "cannot MAC the PKCS#12");
  }
  return ToDer<PKCS12, i2d_PKCS12>(p12.get(), "PKCS#12");
}

std::string ToPem(std::string_view label, ByteView der) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  std::string name(label);
  if (!bio || PEM_write_bio(bio.get(), name.c_str(), "", der.data(),
                            static_cast<long>(der.size())) <= 0) {  // NOLINT(google-runtime-int)
    ERR_clear_error();
    return {};
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(google-runtime-int)
  return std::string(data, static_cast<std::size_t>(len));
}

Result<Bytes> FromPem(std::string_view pem, std::string_view label) {
  if (pem.empty()) return MakeError("bad-pem", "empty PEM input");
  BioPtr bio = MemBio(AsBytes(pem));
  if (!bio) return OsslError("crypto", "cannot allocate a BIO");
  // The first block with the wanted label; others (e.g. a chain's) are skipped.
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;  // NOLINT(google-runtime-int)
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      ERR_clear_error();
      return MakeError("bad-pem", "no readable PEM block labelled " + std::string(label));
    }
    bool match = label == name && header[0] == '\0';  // encrypted PEM carries headers
    Bytes der;
    if (match) der.assign(data, data + len);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, static_cast<std::size_t>(len));
    if (match) return der;
  }
}

Result<SecretBytes> PrivateKeyToDer(const PrivateKey& key) {
  // Secure-heap BIO: its buffer is cleansed when freed, like PrivateKey::ToPem.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || i2d_PKCS8PrivateKey_bio(bio.get(), key.impl().pkey.get(), nullptr, nullptr, 0,
                                      nullptr, nullptr) != 1) {
    return OsslError("crypto", "cannot write the private key");
  }
  char* ptr = nullptr;
  long len = BIO_get_mem_data(bio.get(), &ptr);  // NOLINT(google-runtime-int)
  return SecretBytes(
      ByteView(reinterpret_cast<const std::uint8_t*>(ptr), static_cast<std::size_t>(len)));
}

Bytes Sha256(ByteView data) {
  Bytes out(32);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    std::abort();  // SHA-256 cannot fail short of a broken library
  }
  return out;
}

Result<Bytes> Seal(const SecretBytes& master_key, std::string_view context, ByteView plaintext) {
  if (master_key.size() != kSealKeySize) {
    return MakeError("bad-key", "the master key must be 32 bytes");
  }
  if (plaintext.size() > static_cast<std::size_t>(INT_MAX) - 64 ||
      context.size() > static_cast<std::size_t>(INT_MAX)) {
    return MakeError("too-large", "too much to seal at once");
  }
  Bytes out(1 + kSealNonceSize + plaintext.size() + kSealTagSize);
  out[0] = kSealVersion;
  std::uint8_t* nonce = out.data() + 1;
  std::uint8_t* ct = nonce + kSealNonceSize;
  BL_TRY(RandomBytes(nonce, kSealNonceSize));
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), master_key.data(), nonce, nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kSealTagSize),
                          ct + plaintext.size()) != 1) {
    return OsslError("crypto", "sealing failed");
  }
  return out;
}

Result<SecretBytes> Unseal(const SecretBytes& master_key, std::string_view context,
                           ByteView sealed) {
  if (master_key.size() != kSealKeySize) {
    return MakeError("bad-key", "the master key must be 32 bytes");
  }
  // One error for every failure below, so the caller learns nothing about which check failed.
  auto failed = [] {
    ERR_clear_error();
    return MakeError("unseal-failed", "cannot unseal: wrong key, wrong context, or tampered");
  };
  if (sealed.size() < 1 + kSealNonceSize + kSealTagSize || sealed[0] != kSealVersion ||
      sealed.size() > static_cast<std::size_t>(INT_MAX) ||
      context.size() > static_cast<std::size_t>(INT_MAX)) {
    return failed();
  }
  const std::uint8_t* nonce = sealed.data() + 1;
  const std::uint8_t* ct = nonce + kSealNonceSize;
  std::size_t ct_len = sealed.size() - 1 - kSealNonceSize - kSealTagSize;
  Bytes tag(ct + ct_len, ct + ct_len + kSealTagSize);
  SecretBytes plaintext(ct_len);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), master_key.data(), nonce, nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plaintext.data(), &len, ct, static_cast<int>(ct_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kSealTagSize),
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plaintext.data() + len, &len) != 1) {
    plaintext.clear();  // no partial plaintext on failure
    return failed();
  }
  return plaintext;
}

}  // namespace blindlist::crypto
