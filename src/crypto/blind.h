// Blind unwrapping: the key holder applies the group private key to a blinded
// value and never sees the message key (CEK) or the unblinded value.
//
//   EC (KARI): the member sends r·E for the ephemeral point E and a random
//   scalar r; the key holder returns x(d·r·E); the member recovers d·E = r⁻¹·(d·r·E)
//   (either square root of the returned x gives the same x after the
//   multiplication), then finishes the X9.63 KDF and the AES key unwrap.
//   RSA (KTRI): the member sends c·s^e mod n; the key holder returns
//   (c·s^e)^d = m·s mod n; the member multiplies by s⁻¹ and removes the OAEP or
//   PKCS#1 v1.5 padding.
//
// Thread-safety: value types; no shared state.
#pragma once

#include <memory>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/cms.h"
#include "crypto/keys.h"

namespace blindlist::crypto {

enum class BlindKind { kEc, kRsa };

// The member's side of one blind unwrap: holds the blinding factor, which is
// secret, and what is needed to finish.
class BlindRequest {
 public:
  // Blinds the group's wrapped key in `ri` (a KTRI, or a KARI with `rek_index`)
  // for the group certificate `group_cert` (which gives n and e, or the curve).
  static Result<BlindRequest> Create(const RecipientInfo& ri, const Certificate& group_cert,
                                     std::size_t rek_index = 0);

  BlindKind kind() const;
  // What to send to the key holder: the blinded SEC1 point, or the blinded
  // integer as a big-endian octet string of the modulus length.
  const Bytes& blinded() const;
  // Unblinds the key holder's answer and finishes the unwrap.
  Result<SecretBytes> Finish(ByteView response) const;

  struct State;

 private:
  std::shared_ptr<const State> state_;
};

// The key holder's side. EC: `blinded` must be a point on the key's curve and
// not the point at infinity; returns the x-coordinate of d·P. RSA: `blinded`
// must be an integer in [2, n-1] of the modulus length; returns the raw
// private-key operation on it. Errors name the problem ("bad-point", "out-of-range").
Result<Bytes> ApplyBlind(const PrivateKey& key, ByteView blinded);

}  // namespace blindlist::crypto
