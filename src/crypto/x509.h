// X.509 for the daemons: group certificates for list addresses, membership
// certificates from CSRs, CSRs for an outside CA, CRLs, PKCS#12 export, and
// chain checks. No OpenSSL types here (see keys.h).
// Thread-safety: free functions over immutable inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/keys.h"

namespace blindlist::crypto {

// What goes into a certificate we issue. Key usage follows the subject key:
// keyEncipherment for RSA, keyAgreement for EC; extendedKeyUsage emailProtection.
struct CertificateProfile {
  std::string common_name;
  std::string email;              // SAN rfc822Name, if not empty
  std::vector<std::string> uris;  // SAN uniformResourceIdentifier entries
  std::int64_t validity_seconds = 365LL * 24 * 3600;
  std::int64_t backdate_seconds = 300;  // notBefore = now - this, for clock skew
  std::string crl_url;                  // CRL distribution point, if not empty
};

// Issues a certificate for `subject_public_key_der` (DER SubjectPublicKeyInfo),
// signed by `ca_key` as `ca_cert`, with a random 128-bit serial.
// Errors: "bad-key" (unreadable SPKI), "unsupported-key" (not RSA >= 2048, P-256 or P-384),
// "bad-profile", "not-a-ca", "key-mismatch" (ca_key is not ca_cert's key).
Result<Certificate> IssueCertificate(ByteView subject_public_key_der,
                                     const CertificateProfile& profile, const Certificate& ca_cert,
                                     const PrivateKey& ca_key);

// A self-signed CA certificate (tests, demo, and a fresh deployment).
Result<Certificate> MakeCaCertificate(const PrivateKey& key, const std::string& common_name,
                                      std::int64_t validity_seconds);

// A PKCS#10 CSR for `key` with the profile's CN and SANs, DER.
Result<Bytes> MakeCsr(const PrivateKey& key, const CertificateProfile& profile);

struct CsrInfo {
  Bytes public_key_der;  // SubjectPublicKeyInfo
  KeyType key_type = KeyType::kOther;
  std::string common_name;
  std::vector<std::string> emails;
  std::vector<std::string> uris;
};
// Parses a CSR (PEM or DER) and verifies its self-signature. The DER (given, or the body of the
// first PEM block labelled CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST) must be exactly one
// CSR: bytes after it are refused. PEM follows Certificate::Load (keys.h): text before the first
// BEGIN line is ignored, after an END line only whitespace or further PEM blocks, no headers.
// Errors: "bad-csr" (unparsable, trailing bytes or text), "bad-signature", "unsupported-key".
// Supported keys are those IssueCertificate certifies: RSA >= 2048 bits, P-256, P-384.
Result<CsrInfo> ParseCsr(ByteView pem_or_der);

// Checks that `cert` was signed by `ca_cert` and is within its validity at `now`
// (seconds since the epoch). Errors: "bad-signature", "expired", "not-yet-valid".
Status VerifyIssuedBy(const Certificate& cert, const Certificate& ca_cert, std::int64_t now);

// Checks that `cert` is a TLS server certificate for `host` issued by `ca_cert`: VerifyIssuedBy,
// a key usage and extended key usage that allow a TLS server (absent counts as allowed), and a
// subjectAltName dNSName (wildcards as RFC 6125) or iPAddress matching `host` (an IPv4 or IPv6
// literal, without brackets, is matched as an address). The subject's common name is never used.
// Errors: those of VerifyIssuedBy, "wrong-purpose", "wrong-host".
Status VerifyServerCertificate(const Certificate& cert, const Certificate& ca_cert,
                               std::string_view host, std::int64_t now);

struct CertificateInfo {
  std::string serial_hex;  // lowercase, no leading zeros beyond one byte
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::vector<std::string> emails;
  std::vector<std::string> uris;
  std::string fingerprint_sha256;  // lowercase hex over the DER
};
CertificateInfo DescribeCertificate(const Certificate& cert);

// A CRL signed by the CA listing (serial_hex, revoked_at) pairs, valid for next_update_seconds.
// DER. The CRL number is the issue time in microseconds, so it grows without stored state.
// Errors: "bad-serial" (not 1 to 40 hex digits), "bad-profile", "not-a-ca", "key-mismatch".
Result<Bytes> MakeCrl(const Certificate& ca_cert, const PrivateKey& ca_key,
                      const std::vector<std::pair<std::string, std::int64_t>>& revoked,
                      std::int64_t next_update_seconds);

// PKCS#12 of key + certificate under `passphrase` (AES-256-CBC, PBKDF2, SHA-256 MAC),
// which `openssl pkcs12` and NSS `pk12util` import.
Result<Bytes> ExportPkcs12(const PrivateKey& key, const Certificate& cert,
                           const std::string& friendly_name, const std::string& passphrase);
// PBKDF2-HMAC-SHA256 iterations of the 4-argument ExportPkcs12 (OWASP 2023); the
// same count is used for the SHA-256 MAC's key derivation.
inline constexpr int kPkcs12DefaultIterations = 600000;
// As above with an explicit iteration count (tests use fewer; production keeps the default).
// Errors: "bad-passphrase" (empty passphrase, iterations < 1), "key-mismatch".
Result<Bytes> ExportPkcs12(const PrivateKey& key, const Certificate& cert,
                           const std::string& friendly_name, const std::string& passphrase,
                           int iterations);

// Reads a PKCS#12 (as ExportPkcs12 or certd writes it) under `passphrase`.
// Errors: "bad-pkcs12" (unparsable, wrong passphrase or no key and certificate).
struct KeyAndCertificate {
  PrivateKey key;
  Certificate certificate;
};
Result<KeyAndCertificate> ImportPkcs12(ByteView der, const std::string& passphrase);

// PEM armour helpers.
std::string ToPem(std::string_view label, ByteView der);  // label: "CERTIFICATE", ...
Result<Bytes> FromPem(std::string_view pem, std::string_view label);
// DER PKCS#8 of the private key (for sealing at rest) and back.
Result<SecretBytes> PrivateKeyToDer(const PrivateKey& key);

// SHA-256 over bytes.
Bytes Sha256(ByteView data);

// Sealing at rest under a 256-bit master key: AES-256-GCM with a random nonce;
// `context` (e.g. "group-key:list@example.org:3") is bound as associated data,
// so a sealed blob cannot be moved to another row.
// Format: version(1) || nonce(12) || ct || tag(16).
Result<Bytes> Seal(const SecretBytes& master_key, std::string_view context, ByteView plaintext);
// Errors: "unseal-failed" (wrong master key, wrong context, or tampered).
// Both: "bad-key" when the master key is not 32 bytes.
Result<SecretBytes> Unseal(const SecretBytes& master_key, std::string_view context,
                           ByteView sealed);

}  // namespace blindlist::crypto
