// Signatures over short protocol messages (proof of possession of a membership
// certificate's key on path G): ECDSA with SHA-256 (a DER Ecdsa-Sig-Value) for EC
// keys, RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt for RSA keys.
// The caller domain-separates the message; nothing here knows what it means.
// Thread-safety: free functions on immutable keys; safe from any thread.
#pragma once

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/keys.h"

namespace blindlist::crypto {

Result<Bytes> SignMessage(const PrivateKey& key, ByteView message);

// Whether `signature` is SignMessage's signature over `message` by `cert`'s key. Any
// failure (a malformed signature, an unsupported key) is false.
bool VerifyMessage(const Certificate& cert, ByteView message, ByteView signature);

}  // namespace blindlist::crypto
