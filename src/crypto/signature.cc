#include "crypto/signature.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/ossl.h"

namespace blindlist::crypto {
namespace {

constexpr int kPssSaltBytes = 32;

// RSA keys sign with PSS; EC keys need nothing beyond the digest.
bool SetPadding(EVP_PKEY_CTX* ctx, const EVP_PKEY* pkey) {
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) return true;
  return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, kPssSaltBytes) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1;
}

}  // namespace

Result<Bytes> SignMessage(const PrivateKey& key, ByteView message) {
  EVP_PKEY* pkey = key.impl().pkey.get();
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by md
  if (!md || EVP_DigestSignInit(md.get(), &pctx, EVP_sha256(), nullptr, pkey) != 1 ||
      !SetPadding(pctx, pkey)) {
    return OsslError("crypto", "cannot set up the signature");
  }
  std::size_t len = 0;
  if (EVP_DigestSign(md.get(), nullptr, &len, message.data(), message.size()) != 1)
    return OsslError("crypto", "cannot sign");
  Bytes sig(len);
  if (EVP_DigestSign(md.get(), sig.data(), &len, message.data(), message.size()) != 1)
    return OsslError("crypto", "cannot sign");
  sig.resize(len);
  return sig;
}

bool VerifyMessage(const Certificate& cert, ByteView message, ByteView signature) {
  EVP_PKEY* pkey = X509_get0_pubkey(cert.impl().x509.get());
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by md
  bool ok = pkey != nullptr && md &&
            EVP_DigestVerifyInit(md.get(), &pctx, EVP_sha256(), nullptr, pkey) == 1 &&
            SetPadding(pctx, pkey) &&
            EVP_DigestVerify(md.get(), signature.data(), signature.size(), message.data(),
                             message.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace blindlist::crypto
