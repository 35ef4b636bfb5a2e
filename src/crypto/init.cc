#include "crypto/init.h"

#include <openssl/crypto.h>

#include <cstdlib>

namespace blindlist::crypto {

void InitForCommandLine() {
  const char* conf = std::getenv("OPENSSL_CONF");  // NOLINT(concurrency-mt-unsafe): main only
  if (conf != nullptr && *conf != '\0') return;    // the default initialisation reads it
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr);
}

}  // namespace blindlist::crypto
