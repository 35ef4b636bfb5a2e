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

// The message with List-Id (RFC 2919), List-Post, List-Help, List-Unsubscribe
// (RFC 2369) and Precedence: list on top. Fields of those names already in the
// header section are dropped, so a sender cannot forge them.
std::string AddListHeaders(std::string_view message, const ListIdentity& list);

// AddListHeaders in two pieces, so a large post is not copied: the result is
// `header` followed by message.substr(body_from).
struct ListHeaderEdit {
  std::string header;
  std::size_t body_from = 0;
};
ListHeaderEdit EditListHeaders(std::string_view message, const ListIdentity& list);

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
