// The header edits listd makes to a post on its way out, and the header reads
// its posting policy needs. The body is never touched: new fields go on top of
// the header section, in the message's own line ending.
// Thread-safety: free functions.
#pragma once

#include <string>
#include <string_view>

#include "mime/header_fields.h"

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

// The list-id of an address: "list.example.org" for list@example.org.
std::string ListIdOf(std::string_view address);

// The header reading and line endings listd shares with the rest of the tree (src/mime).
using mime::BodyOffset;
using mime::CanonicalLineEndings;
using mime::HasCanonicalLineEndings;
using mime::HeaderValue;
using mime::MailboxOf;
using mime::NormaliseAddress;

}  // namespace blindlist::listd
