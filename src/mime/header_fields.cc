#include "mime/header_fields.h"

#include <algorithm>

#include "mime/smime_common.h"

namespace blindlist::mime {

std::size_t HeaderEnd(std::string_view message) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    const std::size_t eol = message.find('\n', pos);
    if (eol == std::string_view::npos) return message.size();
    const std::string_view line = message.substr(pos, eol - pos);
    if (line.empty() || line == "\r") return pos;
    pos = eol + 1;
  }
  return message.size();
}

std::size_t BodyOffset(std::string_view message) {
  std::size_t end = HeaderEnd(message);
  if (end < message.size()) end = message.find('\n', end) + 1;  // past the blank line
  return end;
}

std::vector<HeaderField> SplitHeaderFields(std::string_view header) {
  std::vector<HeaderField> out;
  std::size_t pos = 0;
  while (pos < header.size()) {
    const std::size_t start = pos;
    do {
      const std::size_t eol = header.find('\n', pos);
      pos = eol == std::string_view::npos ? header.size() : eol + 1;
    } while (pos < header.size() && IsWsp(header[pos]));
    const std::string_view raw = header.substr(start, pos - start);
    const std::size_t colon = raw.find(':');
    std::string_view name =
        colon == std::string_view::npos ? std::string_view{} : raw.substr(0, colon);
    while (!name.empty() && IsWsp(name.back())) name.remove_suffix(1);
    out.push_back({name, raw});
  }
  return out;
}

std::string FieldValue(const HeaderField& field) {
  const std::size_t colon = field.raw.find(':');
  if (colon == std::string_view::npos) return {};
  std::string out;
  out.reserve(field.raw.size() - colon);
  for (const char c : field.raw.substr(colon + 1)) {
    if (c == '\r' || c == '\n') continue;
    out += c == '\t' ? ' ' : c;
  }
  const std::size_t b = out.find_first_not_of(' ');
  const std::size_t e = out.find_last_not_of(' ');
  return b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
}

std::string HeaderValue(std::string_view message, std::string_view name) {
  for (const HeaderField& f : SplitHeaderFields(message.substr(0, HeaderEnd(message)))) {
    if (EqualsIgnoreCase(f.name, name)) return FieldValue(f);
  }
  return {};
}

std::string MailboxOf(std::string_view value) {
  const std::size_t open = value.rfind('<');
  if (open != std::string_view::npos) {
    const std::size_t close = value.find('>', open);
    if (close != std::string_view::npos)
      return std::string(value.substr(open + 1, close - open - 1));
  }
  // No angle brackets: the token holding '@'.
  const std::size_t at = value.find('@');
  if (at == std::string_view::npos) return {};
  std::size_t b = value.find_last_of(" \t,;(", at);
  b = b == std::string_view::npos ? 0 : b + 1;
  std::size_t e = value.find_first_of(" \t,;(", at);
  if (e == std::string_view::npos) e = value.size();
  return std::string(value.substr(b, e - b));
}

std::string NormaliseAddress(std::string_view address) {
  std::string a(address);
  const std::size_t at = a.rfind('@');
  if (at != std::string::npos) {
    std::transform(a.begin() + static_cast<std::ptrdiff_t>(at), a.end(),
                   a.begin() + static_cast<std::ptrdiff_t>(at), AsciiLower);
  }
  return a;
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

}  // namespace blindlist::mime
