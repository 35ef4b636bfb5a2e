// Certificates and private keys, loaded from PEM or DER. No OpenSSL types here:
// the handles live behind Impl (src/crypto/ossl.h) so only src/crypto sees OpenSSL.
// Thread-safety: loaded objects are immutable and may be shared across threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::crypto {

enum class KeyType { kRsa, kEcP256, kEcP384, kOther };
std::string_view KeyTypeName(KeyType type);

class PrivateKey {
 public:
  // PEM (PKCS#8, traditional RSA/EC) or DER PKCS#8. An encrypted PEM needs `passphrase`.
  static Result<PrivateKey> Load(ByteView data, std::string_view passphrase = {});
  static Result<PrivateKey> LoadFile(const std::string& path, std::string_view passphrase = {});
  // A fresh key: RSA with `rsa_bits`, or an EC key on P-256 / P-384.
  static Result<PrivateKey> Generate(KeyType type, int rsa_bits = 3072);

  KeyType type() const;
  int bits() const;
  // Unencrypted PKCS#8 PEM. Only for tests and the explicit exports that need it.
  Result<SecretBytes> ToPem() const;
  // PKCS#8 PEM encrypted under `passphrase` (PBES2: scrypt N=2^14 r=8 p=5, AES-256-CBC),
  // for keys at rest. About 0.2 s of CPU to write and to load.
  Result<SecretBytes> ToEncryptedPem(std::string_view passphrase) const;
  // DER SubjectPublicKeyInfo of the public half.
  Bytes PublicKeyDer() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

class Certificate {
 public:
  // DER: exactly one certificate, no bytes after it. PEM (RFC 7468): the first block labelled
  // CERTIFICATE (or X509 CERTIFICATE), whose body is exactly one certificate and which has no
  // headers. Text before the first BEGIN line is explanatory and ignored; after an END line only
  // whitespace or further PEM blocks may follow (a chain file loads as its first certificate),
  // and those blocks must be readable PEM. Errors: "bad-certificate", "unsupported-key".
  static Result<Certificate> Load(ByteView pem_or_der);
  static Result<Certificate> LoadFile(const std::string& path);

  KeyType key_type() const;
  // DER of the issuer Name and the serial number INTEGER contents, as a CMS
  // IssuerAndSerialNumber names them.
  Bytes IssuerDer() const;
  Bytes SerialContent() const;
  // DER IssuerAndSerialNumber SEQUENCE.
  Bytes IssuerAndSerialDer() const;
  std::optional<Bytes> SubjectKeyId() const;
  std::string SubjectText() const;
  Bytes Der() const;
  // Whether `key` is the private half of this certificate's public key.
  bool Matches(const PrivateKey& key) const;
  // Whether `other` certifies the same public key (compared as keys, not as encodings: a
  // compressed and an uncompressed EC point of one key are the same key).
  bool SameKey(const Certificate& other) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

// Fills `out` with cryptographically secure random bytes.
Status RandomBytes(std::uint8_t* out, std::size_t n);
SecretBytes RandomSecret(std::size_t n);

}  // namespace blindlist::crypto
