// The OpenSSL error queue as one line, for the errors of the TLS code in this
// module (internal to src/net: the public headers name no OpenSSL type).
// Thread-safety: reads and empties the calling thread's error queue.
#pragma once

#include <string>

namespace blindlist::net {

// Every queued error's reason string, "; "-separated, or "unknown OpenSSL error".
std::string OpenSslError();

}  // namespace blindlist::net
