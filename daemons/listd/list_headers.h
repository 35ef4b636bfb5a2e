// The header edits listd makes to a post on its way out, and the header reads
// its posting policy needs. The body is never touched: new fields go on top of
// the header section, in the message's own line ending.
// Thread-safety: free functions.
#pragma once

#include <string>
#include <string_view>

namespace blindlist::listd {

struct ListIdentity {
  std::string address;         // list@example.org
  std::string description;     // optional, the List-Id phrase
  std::string bounce_address;  // list-bounces@example.org
};

// listd's trace field, added to every post it forwards: "X-Loop: LIST-ADDRESS", the
// convention of Sympa and procmail. A post that comes back with it is a mail loop.
inline constexpr std::string_view kTraceField = "X-Loop";

// The message with List-Id (RFC 2919), List-Post, List-Help, List-Unsubscribe
// (RFC 2369), Precedence: list and the trace field on top. Fields of the List-* and
// Precedence names already in the header section are dropped, so a sender cannot forge
// them; other lists' X-Loop fields are kept (they need them to see their own loops).
std::string AddListHeaders(std::string_view message, const ListIdentity& list);

// AddListHeaders in two pieces, so a large post is not copied: the result is
// `header` followed by message.substr(body_from).
struct ListHeaderEdit {
  std::string header;
  std::size_t body_from = 0;
};
ListHeaderEdit EditListHeaders(std::string_view message, const ListIdentity& list);

// True when the header section shows the post has already been exploded by this list:
// a List-Id field naming its list-id, or a trace field naming its address (any
// occurrence, case-insensitive). Such a post is refused at intake (a mail loop).
bool AlreadyExploded(std::string_view message, const ListIdentity& list);

// Line ends the way Postfix reads them (docs/queue-format.md, "Line endings"): LF and
// CRLF both end a line (smtpd_forbid_bare_newline = normalize, sendmail_fix_line_endings =
// always) and each line is stored ending in CRLF; a CR that is not part of a CRLF pair is
// a stray one and becomes a space (cleanup_replace_stray_cr_lf = yes), so it can neither
// end a line nor be read as one by a later hop. True when `message` is in that form
// already (then CanonicalLineEndings would return it unchanged).
bool HasCanonicalLineEndings(std::string_view message);
std::string CanonicalLineEndings(std::string_view message);

// The list-id of an address: "list.example.org" for list@example.org.
std::string ListIdOf(std::string_view address);

// The unfolded value of the first header field `name` (case-insensitive), or "".
std::string HeaderValue(std::string_view message, std::string_view name);

// The addr-spec in a From-style value: "A <a@b>" -> "a@b", "a@b (x)" -> "a@b".
std::string MailboxOf(std::string_view value);

// Where the body starts: the size of the header section with its blank line.
std::size_t BodyOffset(std::string_view message);

// Lowercases the domain part only (the local part is case-sensitive in principle).
std::string NormaliseAddress(std::string_view address);

}  // namespace blindlist::listd
