// Envelope::Parse on untrusted bytes (every post listd and groupd receive goes through it).
// Invariant: a parsed envelope serialises to one that parses again with the same recipients
// and a byte-identical EncryptedContentInfo, since splices must never touch the ciphertext.

#include <cstddef>
#include <cstdint>
#include <string>

#include "crypto/cms.h"
#include "fuzz_check.h"

using blindlist::Bytes;
using blindlist::ByteView;
using blindlist::crypto::Envelope;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parsed = Envelope::Parse(ByteView(data, size));
  if (!parsed.ok()) return 0;
  const Envelope& env = *parsed;
  for (const auto& ri : env.recipients) {
    std::string name = ri.AlgorithmName();
    FUZZ_CHECK(!name.empty(), "AlgorithmName is empty");
  }

  const Bytes out = env.Serialize();
  auto again = Envelope::Parse(out);
  FUZZ_CHECK(again.ok(), "a serialised envelope does not parse again");
  FUZZ_CHECK(again->recipients.size() == env.recipients.size(), "recipient count changed");
  FUZZ_CHECK(again->encrypted_content_info == env.encrypted_content_info,
             "EncryptedContentInfo changed");
  for (std::size_t i = 0; i < env.recipients.size(); ++i) {
    FUZZ_CHECK(again->recipients[i].der == env.recipients[i].der, "a RecipientInfo changed");
  }
  FUZZ_CHECK(again->auth_enveloped == env.auth_enveloped, "content type changed");
  FUZZ_CHECK(again->ciphertext == env.ciphertext, "ciphertext changed");
  FUZZ_CHECK(again->mac == env.mac, "MAC changed");
  // Our own output is DER, so it is a fixed point.
  FUZZ_CHECK(again->Serialize() == out, "serialising twice gives different bytes");
  return 0;
}
