// A message's header section read the forgiving way a mail server reads what it relays (the
// strict reading of an S/MIME entity is smime_common.h's ParseHeaderSection): where the header
// ends, its fields with their continuation lines, a field's unfolded value, the address in a
// From-style value, and line endings as Postfix normalises them. Bounded and allocation-light:
// nothing here copies the body. Thread-safety: free functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace blindlist::mime {

// The length of the header section without its blank line (the whole message when there is
// no blank line).
std::size_t HeaderEnd(std::string_view message);

// Where the body starts: the size of the header section with its blank line.
std::size_t BodyOffset(std::string_view message);

// One field of a header section: its name (trailing blanks removed; empty for a line
// without a colon) and its raw text with continuation lines and line endings.
struct HeaderField {
  std::string_view name;
  std::string_view raw;
};
std::vector<HeaderField> SplitHeaderFields(std::string_view header);

// The value of a field without its name: unfolded (line ends dropped, tabs as spaces) and
// trimmed of spaces.
std::string FieldValue(const HeaderField& field);

// The FieldValue of the first header field `name` (case-insensitive) of `message`, or "".
std::string HeaderValue(std::string_view message, std::string_view name);

// The addr-spec in a From-style value: "A <a@b>" -> "a@b", "a@b (x)" -> "a@b", "" if none.
std::string MailboxOf(std::string_view value);

// Lowercases the domain part only (the local part is case-sensitive in principle).
std::string NormaliseAddress(std::string_view address);

// Line ends the way Postfix reads them (docs/queue-format.md, "Line endings"): LF and
// CRLF both end a line (smtpd_forbid_bare_newline = normalize, sendmail_fix_line_endings =
// always) and each line is stored ending in CRLF; a CR that is not part of a CRLF pair is
// a stray one and becomes a space (cleanup_replace_stray_cr_lf = yes), so it can neither
// end a line nor be read as one by a later hop. True when `message` is in that form
// already (then CanonicalLineEndings would return it unchanged).
bool HasCanonicalLineEndings(std::string_view message);
std::string CanonicalLineEndings(std::string_view message);

}  // namespace blindlist::mime
