#include "list_headers.h"

#include <algorithm>
#include <vector>

#include "mime/smime_common.h"

namespace blindlist::listd {
namespace {

using mime::EqualsIgnoreCase;
using mime::HeaderEnd;
using mime::HeaderField;
using mime::SplitHeaderFields;

bool IsListField(std::string_view name) {
  for (std::string_view n : {"List-Id", "List-Post", "List-Help", "List-Unsubscribe",
                             "List-Subscribe", "List-Owner", "List-Archive", "Precedence"}) {
    if (EqualsIgnoreCase(name, n)) return true;
  }
  return false;
}

// The value of a field without its name, unfolded, trimmed and lowercased.
std::string LowerValue(const HeaderField& f) { return mime::Lowercase(mime::FieldValue(f)); }

// The part of a List-Id value between its angle brackets ("phrase" <id>), or the value.
std::string AngleContent(const std::string& value) {
  const std::size_t open = value.rfind('<');
  if (open == std::string::npos) return value;
  const std::size_t close = value.find('>', open);
  if (close == std::string::npos) return value;
  return value.substr(open + 1, close - open - 1);
}

// A trace field naming `address` (lowercase).
bool IsTraceOf(const HeaderField& f, const std::string& address) {
  if (!EqualsIgnoreCase(f.name, kTraceField)) return false;
  const std::string v = LowerValue(f);
  return v == address || MailboxOf(v) == address;
}

std::string LowerAddress(std::string_view address) { return mime::Lowercase(address); }

}  // namespace

bool AlreadyExploded(std::string_view message, const ListIdentity& list) {
  const std::string list_id = ListIdOf(list.address);
  const std::string address = LowerAddress(list.address);
  for (const HeaderField& f : SplitHeaderFields(message.substr(0, HeaderEnd(message)))) {
    if (EqualsIgnoreCase(f.name, "List-Id") && AngleContent(LowerValue(f)) == list_id) return true;
    if (IsTraceOf(f, address)) return true;
  }
  return false;
}

std::string ListIdOf(std::string_view address) {
  std::string id(address);
  std::size_t at = id.rfind('@');
  if (at != std::string::npos) id[at] = '.';
  std::transform(id.begin(), id.end(), id.begin(), mime::AsciiLower);
  return id;
}

std::string AddListHeaders(std::string_view message, const ListIdentity& list) {
  ListHeaderEdit edit = EditListHeaders(message, list);
  edit.header.append(message.substr(edit.body_from));
  return std::move(edit.header);
}

ListHeaderEdit EditListHeaders(std::string_view message, const ListIdentity& list) {
  const std::size_t end = HeaderEnd(message);
  std::string_view header = message.substr(0, end);
  const bool crlf = message.find("\r\n") != std::string_view::npos;
  const std::string nl = crlf ? "\r\n" : "\n";

  std::string local = list.address.substr(0, list.address.rfind('@'));
  std::string domain = list.address.substr(list.address.rfind('@') + 1);
  std::string out;
  out.reserve(end + 512);
  std::string phrase;
  for (char c : list.description) {
    if (c != '\r' && c != '\n' && c != '<' && c != '>' && c != '"') phrase += c;
  }
  out += "List-Id: ";
  if (!phrase.empty()) out += "\"" + phrase + "\" ";
  out += "<" + ListIdOf(list.address) + ">" + nl;
  out += "List-Post: <mailto:" + list.address + ">" + nl;
  out += "List-Help: <mailto:" + local + "-request@" + domain + "?subject=help>" + nl;
  out += "List-Unsubscribe: <mailto:" + local + "-request@" + domain + "?subject=unsubscribe>" + nl;
  out += "Precedence: list" + nl;
  out += std::string(kTraceField) + ": " + list.address + nl;
  const std::string address = LowerAddress(list.address);
  for (const HeaderField& f : SplitHeaderFields(header)) {
    // Our own trace field is written once, above; other lists' stay.
    if (!IsListField(f.name) && !IsTraceOf(f, address)) out += f.raw;
  }
  return ListHeaderEdit{std::move(out), end};
}

}  // namespace blindlist::listd
