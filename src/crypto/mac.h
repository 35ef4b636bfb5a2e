// Message authentication for tokens a daemon hands out and later checks (listd's VERP
// addresses): HMAC-SHA256 under a key the daemon alone holds.
// Thread-safety: pure functions.
#pragma once

#include <initializer_list>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::crypto {

// HMAC-SHA256 keyed by `key` over the concatenation of `parts` (32 bytes). Each caller
// frames its parts so that two different inputs never concatenate to the same bytes.
Result<Bytes> HmacSha256(const SecretBytes& key, std::initializer_list<ByteView> parts);

}  // namespace blindlist::crypto
