#include "crypto/mac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <memory>

#include "crypto/ossl.h"

namespace blindlist::crypto {
namespace {

using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OsslDeleter<EVP_MAC_CTX_free>>;
constexpr std::size_t kSha256Len = 32;

EVP_MAC* Hmac() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

}  // namespace

Result<SecretBytes> HmacSha256Secret(ByteView key, std::initializer_list<ByteView> parts) {
  EVP_MAC* mac = Hmac();
  MacCtxPtr ctx(mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1)
    return OsslError("crypto", "HMAC setup failed");
  for (ByteView part : parts) {
    if (!part.empty() && EVP_MAC_update(ctx.get(), part.data(), part.size()) != 1)
      return OsslError("crypto", "HMAC failed");
  }
  SecretBytes out(kSha256Len);
  std::size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != kSha256Len)
    return OsslError("crypto", "HMAC failed");
  return out;
}

Result<Bytes> HmacSha256(const SecretBytes& key, std::initializer_list<ByteView> parts) {
  BL_TRY_ASSIGN(SecretBytes tag, HmacSha256Secret(key.view(), parts));
  return Bytes(tag.data(), tag.data() + tag.size());
}

bool TokenEqualIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // ASCII upper case to lower case without a branch: 0x20 is added exactly when the byte is in
  // 'A'..'Z'.
  const auto fold = [](unsigned char c) -> unsigned {
    const unsigned upper = static_cast<unsigned>(static_cast<unsigned>(c - 'A') < 26U);
    return c | (upper << 5U);
  };
  unsigned diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= fold(static_cast<unsigned char>(a[i])) ^ fold(static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

}  // namespace blindlist::crypto
