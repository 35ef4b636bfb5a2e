// Message authentication for tokens a daemon hands out and later checks (listd's VERP
// addresses): HMAC-SHA256 under a key the daemon alone holds; and HMAC-SHA256 as a key
// derivation step (implicit rejection's KDF).
// Thread-safety: pure functions.
#pragma once

#include <initializer_list>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::crypto {

// HMAC-SHA256 keyed by `key` over the concatenation of `parts` (32 bytes). Each caller
// frames its parts so that two different inputs never concatenate to the same bytes.
Result<Bytes> HmacSha256(const SecretBytes& key, std::initializer_list<ByteView> parts);

// The same, for a result that is itself a secret (a derived key): it is returned in
// SecretBytes, cleansed when dropped.
Result<SecretBytes> HmacSha256Secret(ByteView key, std::initializer_list<ByteView> parts);

// Whether two tokens are equal with ASCII letters compared without case (an MTA may change the
// case of an address's local part), in time that depends only on the lengths: no branch or
// early exit on the bytes. Tokens of different lengths are unequal.
bool TokenEqualIgnoringCase(std::string_view a, std::string_view b);

}  // namespace blindlist::crypto
