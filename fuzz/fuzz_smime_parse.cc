// mime::ParseSmime on untrusted messages (listd's input), and header protection on untrusted
// entities. Invariant: an envelope written back in its own form reads back the same.
//
// UnprotectHeaders takes two inputs: the bytes before the first NUL are the decrypted entity,
// the bytes after it the outer header section (no NUL: the whole input, no outer headers).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "mime/smime.h"

using blindlist::mime::ParseSmime;
using blindlist::mime::SerializeSmime;
using blindlist::mime::SmimeEnvelope;

namespace {

void CheckRoundTrip(const SmimeEnvelope& envelope, bool auth_enveloped) {
  const std::string out = SerializeSmime(envelope, auth_enveloped);
  auto again = ParseSmime(out);
  FUZZ_CHECK(again.ok(), "a serialised S/MIME envelope does not parse again");
  FUZZ_CHECK(again->cms == envelope.cms, "the CMS bytes changed");
  FUZZ_CHECK(again->form == envelope.form, "the form changed");
  FUZZ_CHECK(again->outer_headers == envelope.outer_headers, "the outer headers changed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto parsed = ParseSmime(input); parsed.ok()) {
    // smime-type is chosen by the caller from the CMS content type; both must survive.
    CheckRoundTrip(*parsed, true);
    CheckRoundTrip(*parsed, false);
  }

  const std::size_t nul = input.find('\0');
  const std::string_view inner = input.substr(0, nul);
  const std::string_view outer =
      nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  (void)blindlist::mime::UnprotectHeaders(inner, outer);

  // The sender side: protecting an arbitrary message must not crash either.
  if (auto prot = blindlist::mime::ProtectHeaders(inner); prot.ok()) {
    (void)blindlist::mime::UnprotectHeaders(prot->inner, prot->outer_headers);
  }
  return 0;
}
