// EVP_PKEY_get0_EC_KEY is deprecated in OpenSSL 3.0; the EC_KEY it gives lets ECDH skip
// building a peer EVP_PKEY and a derive context per call (see EcdhWithKey).
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "crypto/keys.h"

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "crypto/der.h"
#include "crypto/ossl.h"

namespace blindlist::crypto {

Error OsslError(std::string code, std::string_view what) {
  std::string message(what);
  unsigned long err = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  if (err != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    message += " (";
    message += buf;
    message += ")";
  }
  ERR_clear_error();
  return MakeError(std::move(code), std::move(message));
}

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kEcP256:
      return "EC P-256";
    case KeyType::kEcP384:
      return "EC P-384";
    case KeyType::kOther:
      break;
  }
  return "unsupported";
}

KeyType KeyTypeOf(const EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "RSA")) return KeyType::kRsa;
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char name[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                       &len) != 1) {
      return KeyType::kOther;
    }
    std::string_view group(name, len);
    if (group == "prime256v1" || group == "P-256") return KeyType::kEcP256;
    if (group == "secp384r1" || group == "P-384") return KeyType::kEcP384;
  }
  return KeyType::kOther;
}

int CurveNid(KeyType type) {
  switch (type) {
    case KeyType::kEcP256:
      return NID_X9_62_prime256v1;
    case KeyType::kEcP384:
      return NID_secp384r1;
    default:
      return NID_undef;
  }
}

namespace {
// Caches what every operation would otherwise look up by name: the key type and,
// for EC keys, the EC_KEY that ECDH runs on (EcdhWithKey in primitives.cc).
std::shared_ptr<PrivateKey::Impl> MakeKeyImpl(EVP_PKEY* raw) {
  auto impl = std::make_shared<PrivateKey::Impl>();
  impl->pkey.reset(raw);
  impl->type = KeyTypeOf(raw);
  if (impl->type == KeyType::kEcP256 || impl->type == KeyType::kEcP384) {
    // Made here, before the key is shared: OpenSSL caches the legacy copy inside pkey.
    impl->ec = EVP_PKEY_get0_EC_KEY(raw);
  }
  DeriveRejectionKey(*impl);  // once per loaded key, not per unwrap
  return impl;
}

Result<Bytes> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError("io", "cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ToBytes(ss.str());
}

BioPtr MemBio(ByteView data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

bool LooksLikePem(ByteView data) {
  return AsChars(data).find("-----BEGIN ") != std::string_view::npos;
}

bool IsPemSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// What a read-only memory BIO has not read yet.
std::string_view Unread(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int): OpenSSL's type
  return len <= 0 ? std::string_view() : std::string_view(data, static_cast<std::size_t>(len));
}

int PassphraseCallback(char* buf, int size, int /*rwflag*/, void* u) {
  auto* pass = static_cast<std::string_view*>(u);
  if (pass == nullptr || pass->empty() || static_cast<int>(pass->size()) > size) return -1;
  std::copy(pass->begin(), pass->end(), buf);
  return static_cast<int>(pass->size());
}
}  // namespace

Result<Bytes> PemObjectDer(ByteView pem, std::initializer_list<std::string_view> labels,
                           std::string_view code, std::string_view what) {
  const std::string code_s(code);
  const std::string what_s(what);
  BioPtr bio = MemBio(pem);
  if (!bio) return OsslError("crypto", "cannot allocate a BIO");
  std::optional<Bytes> der;
  bool headers = false;
  for (bool first = true;; first = false) {
    if (!first) {
      // Between and after blocks: whitespace, then the next BEGIN line or the end.
      std::string_view rest = Unread(bio.get());
      std::size_t i = 0;
      while (i < rest.size() && IsPemSpace(rest[i])) ++i;
      if (i == rest.size()) break;
      if (rest.substr(i).rfind("-----BEGIN ", 0) != 0) {
        return MakeError(code_s, "text after the END line of a PEM block in the " + what_s);
      }
    }
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;  // NOLINT(google-runtime-int): OpenSSL's type
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      return OsslError(code_s, first ? "no readable PEM block in the " + what_s
                                     : "an unreadable PEM block in the " + what_s);
    }
    bool wanted = false;
    for (std::string_view label : labels) wanted = wanted || label == name;
    if (wanted && !der) {
      der.emplace(data, data + len);
      headers = header[0] != '\0';
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, static_cast<std::size_t>(len));
  }
  if (!der) return MakeError(code_s, "no PEM block labelled " + std::string(*labels.begin()));
  if (headers) return MakeError(code_s, "PEM headers in the " + what_s);
  return std::move(*der);
}

Result<PrivateKey> PrivateKey::Load(ByteView data, std::string_view passphrase) {
  EVP_PKEY* raw = nullptr;
  if (LooksLikePem(data)) {
    BioPtr bio = MemBio(data);
    raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, PassphraseCallback, &passphrase);
  } else {
    const unsigned char* p = data.data();
    raw = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(data.size()));  // NOLINT
  }
  if (raw == nullptr) return OsslError("bad-key", "cannot read the private key");
  PrivateKey key;
  key.impl_ = MakeKeyImpl(raw);
  if (key.type() == KeyType::kOther) {
    return MakeError("unsupported-key", "unsupported private key type (need RSA, P-256 or P-384)");
  }
  return key;
}

Result<PrivateKey> PrivateKey::LoadFile(const std::string& path, std::string_view passphrase) {
  BL_TRY_ASSIGN(Bytes data, ReadWholeFile(path));
  auto key = Load(data, passphrase);
  OPENSSL_cleanse(data.data(), data.size());
  if (!key.ok()) return MakeError(key.error().code, path + ": " + key.error().message);
  return key;
}

Result<PrivateKey> PrivateKey::Generate(KeyType type, int rsa_bits) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::kRsa:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits));
      break;
    case KeyType::kEcP256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kEcP384:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
      break;
    case KeyType::kOther:
      return MakeError("unsupported-key", "cannot generate this key type");
  }
  if (raw == nullptr) return OsslError("crypto", "key generation failed");
  PrivateKey key;
  key.impl_ = MakeKeyImpl(raw);
  return key;
}

KeyType PrivateKey::type() const { return impl_->type; }
int PrivateKey::bits() const { return EVP_PKEY_get_bits(impl_->pkey.get()); }

Result<SecretBytes> PrivateKey::ToPem() const {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0,
                                            nullptr, nullptr) != 1) {
    return OsslError("crypto", "cannot write the private key");
  }
  char* ptr = nullptr;
  long len = BIO_get_mem_data(bio.get(), &ptr);  // NOLINT(google-runtime-int)
  return SecretBytes(
      ByteView(reinterpret_cast<const std::uint8_t*>(ptr), static_cast<size_t>(len)));
}

namespace {
// scrypt for the key at rest: N = 2^14, r = 8, p = 5 is one of OWASP's equivalents of
// N = 2^17, r = 8, p = 1 whose 16 MiB stays under OpenSSL's default scrypt memory cap
// (32 MiB), so `openssl pkey` reads the file without extra options. About 0.2 s per use.
constexpr std::uint64_t kScryptN = std::uint64_t{1} << 14;
constexpr std::uint64_t kScryptR = 8;
constexpr std::uint64_t kScryptP = 5;
constexpr int kSaltBytes = 16;
using AlgorPtr = std::unique_ptr<X509_ALGOR, OsslDeleter<X509_ALGOR_free>>;
using Pkcs8InfoPtr = std::unique_ptr<PKCS8_PRIV_KEY_INFO, OsslDeleter<PKCS8_PRIV_KEY_INFO_free>>;
using X509SigPtr = std::unique_ptr<X509_SIG, OsslDeleter<X509_SIG_free>>;
}  // namespace

Result<SecretBytes> PrivateKey::ToEncryptedPem(std::string_view passphrase) const {
  if (passphrase.size() < 8)
    return MakeError("weak-passphrase", "the passphrase needs at least 8 characters");
  // PBES2 with scrypt and AES-256-CBC (RFC 7914 section 7), not PEM_write_bio_PKCS8PrivateKey's
  // PBKDF2 with 2048 iterations. Files written before stay readable: Load takes either.
  AlgorPtr pbe(PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), nullptr, kSaltBytes, nullptr, kScryptN,
                                     kScryptR, kScryptP));
  Pkcs8InfoPtr info(EVP_PKEY2PKCS8(impl_->pkey.get()));
  if (!pbe || !info) return OsslError("crypto", "cannot prepare the encrypted private key");
  std::string pass(passphrase);
  X509SigPtr encrypted(
      PKCS8_set0_pbe(pass.data(), static_cast<int>(pass.size()), info.get(), pbe.get()));
  OPENSSL_cleanse(pass.data(), pass.size());
  if (!encrypted) return OsslError("crypto", "cannot encrypt the private key");
  (void)pbe.release();  // owned by `encrypted` now
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PKCS8(bio.get(), encrypted.get()) != 1)
    return OsslError("crypto", "cannot write the encrypted private key");
  char* ptr = nullptr;
  long len = BIO_get_mem_data(bio.get(), &ptr);  // NOLINT(google-runtime-int)
  return SecretBytes(
      ByteView(reinterpret_cast<const std::uint8_t*>(ptr), static_cast<size_t>(len)));
}

Bytes PrivateKey::PublicKeyDer() const {
  unsigned char* out = nullptr;
  int len = i2d_PUBKEY(impl_->pkey.get(), &out);
  if (len <= 0) return {};
  Bytes der(out, out + len);
  OPENSSL_free(out);
  return der;
}

Result<Certificate> Certificate::Load(ByteView data) {
  Bytes from_pem;
  if (LooksLikePem(data)) {
    BL_TRY_ASSIGN(from_pem, PemObjectDer(data, {"CERTIFICATE", "X509 CERTIFICATE"},
                                         "bad-certificate", "certificate"));
    data = from_pem;
  }
  const unsigned char* p = data.data();
  X509* raw = d2i_X509(nullptr, &p, static_cast<long>(data.size()));  // NOLINT(google-runtime-int)
  if (raw == nullptr) return OsslError("bad-certificate", "cannot read the certificate");
  X509Ptr owned(raw);
  if (p != data.data() + data.size()) {
    return MakeError("bad-certificate", "trailing bytes after the certificate");
  }
  Certificate cert;
  const KeyType type = KeyTypeOf(X509_get0_pubkey(owned.get()));
  cert.impl_ = std::make_shared<Impl>(Impl{std::move(owned), type});
  if (cert.key_type() == KeyType::kOther) {
    return MakeError("unsupported-key",
                     "unsupported certificate key type (need RSA, P-256 or P-384)");
  }
  return cert;
}

Result<Certificate> Certificate::LoadFile(const std::string& path) {
  BL_TRY_ASSIGN(Bytes data, ReadWholeFile(path));
  auto cert = Load(data);
  if (!cert.ok()) return MakeError(cert.error().code, path + ": " + cert.error().message);
  return cert;
}

KeyType Certificate::key_type() const { return impl_->type; }

Bytes Certificate::IssuerDer() const {
  const unsigned char* der = nullptr;
  size_t len = 0;
  X509_NAME_get0_der(X509_get_issuer_name(impl_->x509.get()), &der, &len);
  return Bytes(der, der + len);
}

Bytes Certificate::SerialContent() const {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(impl_->x509.get());
  unsigned char* out = nullptr;
  int len = i2d_ASN1_INTEGER(serial, &out);
  Bytes tlv(out, out + std::max(len, 0));
  OPENSSL_free(out);
  auto parsed = der::ParseSingle(tlv, "serial");
  if (!parsed.ok()) return {};
  return Bytes(parsed->content.begin(), parsed->content.end());
}

Bytes Certificate::IssuerAndSerialDer() const {
  Bytes issuer = IssuerDer();
  Bytes serial = der::Encode(der::kInteger, SerialContent());
  return der::Encode(der::kSequence, {issuer, serial});
}

std::optional<Bytes> Certificate::SubjectKeyId() const {
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(impl_->x509.get());
  if (ski == nullptr) return std::nullopt;
  const unsigned char* p = ASN1_STRING_get0_data(ski);
  return Bytes(p, p + ASN1_STRING_length(ski));
}

std::string Certificate::SubjectText() const {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(impl_->x509.get()), buf, sizeof(buf));
  return buf;
}

Bytes Certificate::Der() const {
  unsigned char* out = nullptr;
  int len = i2d_X509(impl_->x509.get(), &out);
  Bytes der(out, out + std::max(len, 0));
  OPENSSL_free(out);
  return der;
}

bool Certificate::Matches(const PrivateKey& key) const {
  return EVP_PKEY_eq(X509_get0_pubkey(impl_->x509.get()), key.impl().pkey.get()) == 1;
}

bool Certificate::SameKey(const Certificate& other) const {
  const EVP_PKEY* a = X509_get0_pubkey(impl_->x509.get());
  const EVP_PKEY* b = X509_get0_pubkey(other.impl_->x509.get());
  return a != nullptr && b != nullptr && EVP_PKEY_eq(a, b) == 1;
}

Status RandomBytes(std::uint8_t* out, std::size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1)
    return OsslError("crypto", "random generator failed");
  return Status::Ok();
}

SecretBytes RandomSecret(std::size_t n) {
  SecretBytes s(n);
  if (!RandomBytes(s.data(), n).ok()) std::abort();  // no entropy: nothing safe to do
  return s;
}

}  // namespace blindlist::crypto
