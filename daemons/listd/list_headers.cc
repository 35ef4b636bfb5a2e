#include "list_headers.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace blindlist::listd {
namespace {

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

// Length of the header section including its blank line terminator (the whole
// message when there is no body separator).
std::size_t HeaderEnd(std::string_view m) {
  std::size_t pos = 0;
  while (pos < m.size()) {
    std::size_t eol = m.find('\n', pos);
    if (eol == std::string_view::npos) return m.size();
    std::string_view line = m.substr(pos, eol - pos);
    if (line.empty() || line == "\r") return pos;
    pos = eol + 1;
  }
  return m.size();
}

struct Field {
  std::string_view name;
  std::string_view raw;  // with continuation lines and line endings
};

std::vector<Field> Fields(std::string_view header) {
  std::vector<Field> out;
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t start = pos;
    do {
      std::size_t eol = header.find('\n', pos);
      pos = eol == std::string_view::npos ? header.size() : eol + 1;
    } while (pos < header.size() && (header[pos] == ' ' || header[pos] == '\t'));
    std::string_view raw = header.substr(start, pos - start);
    std::size_t colon = raw.find(':');
    std::string_view name =
        colon == std::string_view::npos ? std::string_view{} : raw.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    out.push_back({name, raw});
  }
  return out;
}

bool IsListField(std::string_view name) {
  for (std::string_view n : {"List-Id", "List-Post", "List-Help", "List-Unsubscribe",
                             "List-Subscribe", "List-Owner", "List-Archive", "Precedence"}) {
    if (IEquals(name, n)) return true;
  }
  return false;
}

// The value of a field without its name, unfolded, trimmed and lowercased.
std::string LowerValue(const Field& f) {
  std::string out;
  for (char c : f.raw.substr(f.raw.find(':') + 1)) {
    if (c == '\r' || c == '\n') continue;
    out += c == '\t' ? ' ' : Lower(c);
  }
  const std::size_t b = out.find_first_not_of(' ');
  const std::size_t e = out.find_last_not_of(' ');
  return b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
}

// The part of a List-Id value between its angle brackets ("phrase" <id>), or the value.
std::string AngleContent(const std::string& value) {
  const std::size_t open = value.rfind('<');
  if (open == std::string::npos) return value;
  const std::size_t close = value.find('>', open);
  if (close == std::string::npos) return value;
  return value.substr(open + 1, close - open - 1);
}

// A trace field naming `address` (lowercase).
bool IsTraceOf(const Field& f, const std::string& address) {
  if (!IEquals(f.name, kTraceField)) return false;
  const std::string v = LowerValue(f);
  return v == address || MailboxOf(v) == address;
}

std::string LowerAddress(std::string_view address) {
  std::string a(address);
  std::transform(a.begin(), a.end(), a.begin(), Lower);
  return a;
}

}  // namespace

bool AlreadyExploded(std::string_view message, const ListIdentity& list) {
  const std::string list_id = ListIdOf(list.address);
  const std::string address = LowerAddress(list.address);
  for (const Field& f : Fields(message.substr(0, HeaderEnd(message)))) {
    if (IEquals(f.name, "List-Id") && AngleContent(LowerValue(f)) == list_id) return true;
    if (IsTraceOf(f, address)) return true;
  }
  return false;
}

bool HasCanonicalLineEndings(std::string_view message) {
  std::size_t pos = 0;
  while ((pos = message.find_first_of("\r\n", pos)) != std::string_view::npos) {
    if (message[pos] == '\n' || pos + 1 == message.size() || message[pos + 1] != '\n') {
      return false;
    }
    pos += 2;
  }
  return message.empty() || message.ends_with("\r\n");
}

std::string CanonicalLineEndings(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 32 + 2);
  for (std::size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if (c == '\n') {
      out += "\r\n";
    } else if (c == '\r') {
      if (i + 1 < message.size() && message[i + 1] == '\n') {
        out += "\r\n";
        ++i;
      } else {
        out += ' ';  // a stray CR
      }
    } else {
      out += c;
    }
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

std::size_t BodyOffset(std::string_view message) {
  std::size_t end = HeaderEnd(message);
  if (end < message.size()) end = message.find('\n', end) + 1;  // past the blank line
  return end;
}

std::string ListIdOf(std::string_view address) {
  std::string id(address);
  std::size_t at = id.rfind('@');
  if (at != std::string::npos) id[at] = '.';
  std::transform(id.begin(), id.end(), id.begin(), Lower);
  return id;
}

std::string NormaliseAddress(std::string_view address) {
  std::string a(address);
  std::size_t at = a.rfind('@');
  if (at != std::string::npos)
    std::transform(a.begin() + static_cast<long>(at), a.end(), a.begin() + static_cast<long>(at),
                   Lower);
  return a;
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
  for (const Field& f : Fields(header)) {
    // Our own trace field is written once, above; other lists' stay.
    if (!IsListField(f.name) && !IsTraceOf(f, address)) out += f.raw;
  }
  return ListHeaderEdit{std::move(out), end};
}

std::string HeaderValue(std::string_view message, std::string_view name) {
  for (const Field& f : Fields(message.substr(0, HeaderEnd(message)))) {
    if (!IEquals(f.name, name)) continue;
    std::string_view v = f.raw.substr(f.raw.find(':') + 1);
    std::string out;
    for (char c : v) {
      if (c == '\r' || c == '\n') continue;
      out += c == '\t' ? ' ' : c;
    }
    std::size_t b = out.find_first_not_of(' ');
    std::size_t e = out.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
  }
  return {};
}

std::string MailboxOf(std::string_view value) {
  std::size_t open = value.rfind('<');
  if (open != std::string_view::npos) {
    std::size_t close = value.find('>', open);
    if (close != std::string_view::npos)
      return std::string(value.substr(open + 1, close - open - 1));
  }
  // No angle brackets: the token holding '@'.
  std::size_t at = value.find('@');
  if (at == std::string_view::npos) return {};
  std::size_t b = value.find_last_of(" \t,;(", at);
  b = b == std::string_view::npos ? 0 : b + 1;
  std::size_t e = value.find_first_of(" \t,;(", at);
  if (e == std::string_view::npos) e = value.size();
  return std::string(value.substr(b, e - b));
}

}  // namespace blindlist::listd
