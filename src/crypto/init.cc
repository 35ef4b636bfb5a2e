#include "crypto/init.h"

#include <openssl/crypto.h>

#include <cstdlib>

namespace blindlist::crypto {

void InitForCommandLine() {
  const char* conf = std::getenv("OPENSSL_CONF");  // NOLINT(concurrency-mt-unsafe): main only
  const bool configured = conf != nullptr && *conf != '\0';
  // No exit handler: freeing every table and provider at exit is work the kernel does anyway
  // when it takes the pages back; the secrets this process holds are cleansed by their owners.
  OPENSSL_init_crypto((configured ? OPENSSL_INIT_LOAD_CONFIG : OPENSSL_INIT_NO_LOAD_CONFIG) |
                          OPENSSL_INIT_NO_ATEXIT,
                      nullptr);
}

}  // namespace blindlist::crypto
