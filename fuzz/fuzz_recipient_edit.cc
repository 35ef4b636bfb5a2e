// RecipientInfo edits (add, replace, remove) as the exploder and the member's splice do them.
// Invariant: an accepted edit leaves the EncryptedContentInfo byte-identical and the result
// parses again with the edited recipient list.
//
// Input layout (fuzz/make-seeds writes seeds in it):
//   byte 0      operation: 0 add, 1 replace, 2 remove (taken modulo 3)
//   byte 1      recipient index (replace, remove)
//   bytes 2..3  length of the envelope, big-endian (clamped to what is left)
//   then        the envelope (a ContentInfo), then the RecipientInfo (the rest)

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "crypto/cms.h"
#include "fuzz_check.h"

using blindlist::Bytes;
using blindlist::ByteView;
using blindlist::Status;
using blindlist::crypto::Envelope;

namespace {
enum class Operation { kAdd, kReplace, kRemove };
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const auto op = static_cast<Operation>(data[0] % 3);
  const std::size_t index = data[1];
  std::size_t envelope_len = (std::size_t{data[2]} << 8) | data[3];
  ByteView rest(data + 4, size - 4);
  envelope_len = std::min(envelope_len, rest.size());
  const ByteView envelope_der = rest.first(envelope_len);
  const ByteView ri_der = rest.subspan(envelope_len);

  auto parsed = Envelope::Parse(envelope_der);
  if (!parsed.ok()) return 0;
  Envelope env = std::move(*parsed);
  const Envelope before = env;

  Status status;
  std::vector<Bytes> expected;
  for (const auto& ri : before.recipients) expected.push_back(ri.der);
  switch (op) {
    case Operation::kAdd:
      status = env.AddRecipient(ri_der);
      expected.emplace_back(ri_der.begin(), ri_der.end());
      break;
    case Operation::kReplace:
      status = env.ReplaceRecipient(index, ri_der);
      if (index < expected.size()) expected[index].assign(ri_der.begin(), ri_der.end());
      break;
    case Operation::kRemove:
      status = env.RemoveRecipient(index);
      if (index < expected.size()) expected.erase(expected.begin() + static_cast<long>(index));
      break;
  }
  if (!status.ok()) {
    // A refused edit changes nothing.
    FUZZ_CHECK(env.Serialize() == before.Serialize(), "a refused edit changed the envelope");
    return 0;
  }
  FUZZ_CHECK(op != Operation::kRemove || before.recipients.size() > 1,
             "removed the last RecipientInfo");
  FUZZ_CHECK(env.encrypted_content_info == before.encrypted_content_info,
             "the edit touched the EncryptedContentInfo");

  const Bytes out = env.Serialize();
  auto again = Envelope::Parse(out);
  FUZZ_CHECK(again.ok(), "the edited envelope does not parse again");
  FUZZ_CHECK(again->encrypted_content_info == before.encrypted_content_info,
             "EncryptedContentInfo changed after the edit and a re-parse");
  FUZZ_CHECK(again->ciphertext == before.ciphertext, "ciphertext changed");
  FUZZ_CHECK(again->mac == before.mac, "MAC changed");
  FUZZ_CHECK(again->auth_attrs == before.auth_attrs, "authAttrs changed");
  FUZZ_CHECK(again->recipients.size() == expected.size(), "wrong recipient count after the edit");
  for (std::size_t i = 0; i < expected.size(); ++i) {
    FUZZ_CHECK(again->recipients[i].der == expected[i], "a RecipientInfo is not what was edited");
  }
  return 0;
}
