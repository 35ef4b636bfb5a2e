// The forgiving header reader every relayed post goes through (mime/header_fields.h): where the
// header ends, its fields, values, the From address, and Postfix's line-ending normalisation.
// Invariants: offsets stay inside the message and the body offset is past the header end; the
// fields' raw texts put back together are the header section exactly; a value holds no line
// end; a mailbox is a substring of its value; normalised line endings are canonical, and
// normalising again changes nothing; a canonical message is left as it is.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "mime/header_fields.h"

namespace mime = blindlist::mime;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view message(reinterpret_cast<const char*>(data), size);
  const std::size_t end = mime::HeaderEnd(message);
  const std::size_t body = mime::BodyOffset(message);
  FUZZ_CHECK(end <= body && body <= message.size(), "header end or body offset out of range");

  const std::string_view header = message.substr(0, end);
  std::string joined;
  for (const mime::HeaderField& f : mime::SplitHeaderFields(header)) {
    joined.append(f.raw);
    FUZZ_CHECK(f.name.size() <= f.raw.size(), "a field name longer than its field");
    const std::string value = mime::FieldValue(f);
    FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos, "a line end in a value");
    const std::string mailbox = mime::MailboxOf(value);
    FUZZ_CHECK(value.find(mailbox) != std::string::npos, "a mailbox not in its value");
  }
  FUZZ_CHECK(joined == header, "the fields do not make up the header section");
  (void)mime::HeaderValue(message, "From");
  FUZZ_CHECK(mime::NormaliseAddress(message).size() == message.size(), "an address changed size");

  const std::string canonical = mime::CanonicalLineEndings(message);
  FUZZ_CHECK(mime::HasCanonicalLineEndings(canonical), "normalised text is not canonical");
  FUZZ_CHECK(mime::CanonicalLineEndings(canonical) == canonical, "normalising is not idempotent");
  if (mime::HasCanonicalLineEndings(message)) {
    FUZZ_CHECK(canonical == message, "a canonical message was changed");
  }
  return 0;
}
