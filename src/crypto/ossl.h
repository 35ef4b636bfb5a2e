// OpenSSL handles for src/crypto only: every handle in a unique_ptr with its
// own deleter, every failure turned into an Error carrying OpenSSL's reason.
#pragma once

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "blindlist/result.h"
#include "crypto/keys.h"

namespace blindlist::crypto {

template <auto Fn>
struct OsslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<EVP_PKEY_CTX_free>>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, OsslDeleter<EVP_CIPHER_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter<EVP_MD_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using BnPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;
using BnSecretPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_clear_free>>;
using BnCtxPtr = std::unique_ptr<BN_CTX, OsslDeleter<BN_CTX_free>>;
using BnMontCtxPtr = std::unique_ptr<BN_MONT_CTX, OsslDeleter<BN_MONT_CTX_free>>;
using EcGroupPtr = std::unique_ptr<EC_GROUP, OsslDeleter<EC_GROUP_free>>;
using EcPointPtr = std::unique_ptr<EC_POINT, OsslDeleter<EC_POINT_clear_free>>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;

// An Error whose message ends with OpenSSL's queued reason; clears the queue.
Error OsslError(std::string code, std::string_view what);

struct PrivateKey::Impl {
  EvpPkeyPtr pkey;
  KeyType type = KeyType::kOther;  // computed once at load: the name lookups cost per call
  const EC_KEY* ec = nullptr;      // EC keys: the legacy view of pkey (owned by it), for ECDH
  // Implicit rejection (implicit_rejection.cc): SHA-256 of the private exponent (RSA) or scalar
  // (EC), derived once at load; empty if the key would not give it up. RSA: n, big-endian.
  SecretBytes rejection_key;
  Bytes rsa_modulus;
};

// Fills impl.rejection_key and impl.rsa_modulus from impl.pkey (implicit_rejection.cc).
void DeriveRejectionKey(PrivateKey::Impl& impl);

struct Certificate::Impl {
  X509Ptr x509;
  KeyType type = KeyType::kOther;  // of the subject key, found once when loaded
};

// The DER of the one object labelled one of `labels` in a PEM text (RFC 7468), for public
// objects (certificates, CSRs). Text before the first BEGIN line is explanatory and ignored; from
// there on the text is PEM blocks and whitespace only, so nothing can ride along after an END
// line. Blocks with other labels, before or after, are read and skipped; the object is the first
// block with a wanted label and carries no PEM headers. Errors: `code` ("bad-certificate", ...).
Result<Bytes> PemObjectDer(ByteView pem, std::initializer_list<std::string_view> labels,
                           std::string_view code, std::string_view what);

KeyType KeyTypeOf(const EVP_PKEY* pkey);
// The curve NID for an EC key type (NID_undef otherwise).
int CurveNid(KeyType type);

}  // namespace blindlist::crypto
