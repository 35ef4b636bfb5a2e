// Content-Type and Content-Disposition parameters (media_type.h). The grammar follows GMime
// 3.2 step by step (skip_cfws, decode_param_list, decode_rfc2184_param, the loose value rule),
// so the S/MIME reader accepts and refuses exactly what it did when it called GMime.
// Not followed: GMime converts a value from its declared charset (or the locale) to UTF-8. The
// callers compare values with ASCII words and quote them in errors; a value that is ASCII is the
// same in every ASCII-compatible charset, and other bytes never equal an ASCII word.

#include "mime/media_type.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/hex.h"
#include "mime/smime_common.h"

namespace blindlist::mime {
namespace {

constexpr std::string_view kTspecials = "()<>@,;:\\\"/[]?=";

bool IsCtrl(unsigned char c) { return c < 32 || c == 127; }
bool IsTtoken(char c) {
  const auto u = static_cast<unsigned char>(c);
  return !IsCtrl(u) && c != ' ' && kTspecials.find(c) == std::string_view::npos;
}

// A cursor over the value; the end of the view plays the part of GMime's NUL.
struct Cursor {
  std::string_view text;
  std::size_t pos = 0;
  [[nodiscard]] char peek(std::size_t ahead = 0) const {
    return pos + ahead < text.size() ? text[pos + ahead] : '\0';
  }
  [[nodiscard]] bool at_end() const { return pos >= text.size(); }
};

void SkipLwsp(Cursor& in) {
  while (!in.at_end() && IsLineSpace(in.peek())) ++in.pos;
}

// A comment, nested, with backslash escapes. An unclosed one is not skipped (false).
bool SkipComment(Cursor& in) {
  std::size_t pos = in.pos + 1;  // past the '('
  int depth = 1;
  while (pos < in.text.size() && depth > 0) {
    const char c = in.text[pos];
    if (c == '\\' && pos + 1 < in.text.size()) {
      ++pos;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    }
    ++pos;
  }
  if (depth != 0) return false;
  in.pos = pos;
  return true;
}

void SkipCfws(Cursor& in) {
  SkipLwsp(in);
  while (in.peek() == '(') {
    if (!SkipComment(in)) return;
    SkipLwsp(in);
  }
}

std::string ReadTokenChars(Cursor& in, bool allow_star) {
  const std::size_t start = in.pos;
  while (!in.at_end() && IsTtoken(in.peek()) && (allow_star || in.peek() != '*')) ++in.pos;
  return std::string(in.text.substr(start, in.pos - start));
}

// GMime's default (loose) token: everything up to ';', trailing white space dropped.
std::string ReadLooseToken(Cursor& in) {
  SkipCfws(in);
  const std::size_t start = in.pos;
  std::size_t end = in.text.find(';', start);
  if (end == std::string_view::npos) end = in.text.size();
  in.pos = end;
  while (end > start && IsLineSpace(in.text[end - 1])) --end;
  if (end == start) in.pos = start;
  return std::string(in.text.substr(start, end - start));
}

// A quoted string; an unterminated one keeps its opening quote, as GMime does.
std::string ReadQuotedString(Cursor& in) {
  const std::size_t start = in.pos;  // at '"'
  ++in.pos;
  bool unescape = false;
  while (!in.at_end() && in.peek() != '"') {
    if (in.peek() == '\\') {
      unescape = true;
      ++in.pos;
    }
    if (!in.at_end()) ++in.pos;
  }
  std::string out;
  if (in.peek() == '"') {
    out = std::string(in.text.substr(start + 1, in.pos - start - 1));
    ++in.pos;
  } else {
    out = std::string(in.text.substr(start, in.pos - start));
  }
  if (!unescape) return out;
  std::string plain;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\\') ++i;
    if (i < out.size()) plain.push_back(out[i]);
  }
  return plain;
}

// RFC 2231 %XX; a '%' not followed by two hex digits stays.
std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex::PairValue(text[i + 1], text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex::PairValue(text[i + 1], text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Strips RFC 2231 charset'language' from the front of an encoded value.
std::string_view WithoutCharsetPrefix(std::string_view value) {
  const std::size_t first = value.find('\'');
  if (first == std::string_view::npos) return value;
  const std::size_t second = value.find('\'', first + 1);
  // Without the second quote GMime takes the rest as the language: the value is empty.
  return second == std::string_view::npos ? std::string_view() : value.substr(second + 1);
}

// ---- RFC 2047 encoded words inside a parameter value (Outlook and Mozilla send them) ----

std::string DecodeQ(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_') {
      out.push_back(' ');
    } else if (text[i] == '=' && i + 2 < text.size() &&
               hex::PairValue(text[i + 1], text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex::PairValue(text[i + 1], text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string DecodeB(std::string_view text) {
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    const int v = Base64Value(c);
    if (v < 0) continue;
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

// One encoded word at `pos` ("=?charset?B|Q?text?="): its decoded bytes and its length. When
// it is not one, `*resume` is where the search for the next word goes on.
bool DecodeEncodedWord(std::string_view text, std::size_t pos, std::string* decoded,
                       std::size_t* length, std::size_t* resume) {
  *resume = pos + 2;
  const std::size_t q1 = text.find('?', pos + 2);
  if (q1 == std::string_view::npos) return false;
  *resume = q1 + 1;
  if (q1 == pos + 2 || q1 + 2 >= text.size()) return false;
  const char encoding = AsciiLower(text[q1 + 1]);
  if ((encoding != 'b' && encoding != 'q') || text[q1 + 2] != '?') return false;
  const std::size_t end = text.find("?=", q1 + 3);
  if (end == std::string_view::npos) return false;
  const std::string_view payload = text.substr(q1 + 3, end - q1 - 3);
  if (std::any_of(payload.begin(), payload.end(), IsLineSpace)) return false;
  *decoded = encoding == 'b' ? DecodeB(payload) : DecodeQ(payload);
  *length = end + 2 - pos;
  return true;
}

// Encoded words are decoded wherever they start (GMime's loose rule); white space between two
// of them is dropped (RFC 2047 section 6.2).
std::string DecodeEncodedWords(std::string_view text) {
  std::string out;
  std::size_t copied = 0;    // text before this offset is in `out`
  std::size_t last_end = 0;  // end of the last decoded word, npos before the first
  bool any = false;
  std::size_t i = text.find("=?");
  while (i != std::string_view::npos) {
    std::string decoded;
    std::size_t length = 0;
    std::size_t resume = 0;
    if (DecodeEncodedWord(text, i, &decoded, &length, &resume)) {
      const std::string_view between = text.substr(copied, i - copied);
      const bool only_space = std::all_of(between.begin(), between.end(), IsLineSpace);
      if (!(any && copied == last_end && only_space)) out += between;
      out += decoded;
      copied = last_end = i + length;
      any = true;
      resume = i + length;
    }
    i = text.find("=?", resume);
  }
  out += text.substr(copied);
  return out;
}

// ---- the parameter list (GMime's decode_param_list) ----

struct RawParameter {
  std::string name;
  std::string value;
  int part = -1;  // RFC 2231 section number, -1 when none
  bool encoded = false;
  bool rfc2231 = false;
};

int ReadSectionNumber(Cursor& in) {
  SkipCfws(in);
  long long n = 0;
  bool overflow = false;
  while (in.peek() >= '0' && in.peek() <= '9') {
    if (!overflow) {
      n = n * 10 + (in.peek() - '0');
      if (n > 0x7fffffff) {
        overflow = true;
        n /= 10;
      }
    }
    ++in.pos;
  }
  return static_cast<int>(n);
}

bool ReadParameter(Cursor& in, RawParameter* out) {
  Cursor at = in;
  SkipCfws(at);
  out->name = ReadTokenChars(at, /*allow_star=*/false);
  SkipCfws(at);
  if (out->name.empty()) at = in;  // GMime leaves its cursor alone without a name
  if (!out->name.empty() && at.peek() == '*') {
    out->rfc2231 = true;
    ++at.pos;
    SkipCfws(at);
    if (at.peek() == '=') {
      out->encoded = true;
    } else {
      out->part = ReadSectionNumber(at);
      SkipCfws(at);
      if (at.peek() == '*') {
        ++at.pos;
        out->encoded = true;
        SkipCfws(at);
      }
    }
  }
  if (at.peek() != '=') return false;
  ++at.pos;
  SkipCfws(at);
  bool have_value = true;
  if (at.peek() == '"') {
    out->value = ReadQuotedString(at);
  } else {
    out->value = ReadLooseToken(at);
    have_value = !out->value.empty();
  }
  if (!have_value || out->name.empty()) return false;
  if (!out->rfc2231 && out->value.find("=?") != std::string::npos) {
    out->value = DecodeEncodedWords(out->value);
  }
  in = at;
  return true;
}

struct Continued {
  std::size_t index;  // into the result
  std::vector<std::pair<int, std::string>> parts;
};

MediaParameters ParseParameterList(std::string_view text) {
  MediaParameters params;
  std::vector<Continued> continued;
  Cursor in{text, 0};
  SkipCfws(in);
  while (true) {
    RawParameter raw;
    if (ReadParameter(in, &raw)) {
      if (raw.part != -1) {
        auto it = std::find_if(continued.begin(), continued.end(), [&](const Continued& c) {
          return EqualsIgnoreCase(params[c.index].name, raw.name);
        });
        std::string value = raw.value;
        if (it == continued.end()) {
          if (raw.encoded) value = std::string(WithoutCharsetPrefix(value));
          params.push_back({raw.name, {}});
          continued.push_back({params.size() - 1, {}});
          it = continued.end() - 1;
        }
        it->parts.emplace_back(raw.part, raw.encoded ? PercentDecode(value) : value);
      } else if (raw.encoded) {
        params.push_back({raw.name, PercentDecode(WithoutCharsetPrefix(raw.value))});
      } else {
        params.push_back({raw.name, raw.value});
      }
      SkipCfws(in);
    } else {
      SkipCfws(in);
      if (in.peek() != ';') break;
    }
    if (in.peek() != ';') break;
    ++in.pos;
  }
  for (Continued& c : continued) {
    std::stable_sort(c.parts.begin(), c.parts.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& part : c.parts) params[c.index].value += part.second;
  }
  return params;
}

std::string_view UpToNul(std::string_view value) {
  const std::size_t nul = value.find('\0');
  return nul == std::string_view::npos ? value : value.substr(0, nul);
}

}  // namespace

const MediaParameter* FindMediaParameter(const MediaParameters& params, std::string_view name) {
  for (const MediaParameter& p : params) {
    if (EqualsIgnoreCase(p.name, name)) return &p;
  }
  return nullptr;
}

ParsedContentType ParseContentTypeValue(std::string_view value) {
  Cursor in{UpToNul(value), 0};
  SkipCfws(in);
  std::string type = ReadTokenChars(in, /*allow_star=*/true);
  SkipCfws(in);
  bool ok = in.peek() == '/';
  std::string subtype;
  if (ok) {
    ++in.pos;
    SkipCfws(in);
    subtype = ReadTokenChars(in, /*allow_star=*/true);
    ok = !subtype.empty();
  }
  if (!ok) return {.type = "application", .subtype = "octet-stream", .parameters = {}};
  ParsedContentType out{.type = std::move(type), .subtype = std::move(subtype), .parameters = {}};
  // Junk before the first ';' is skipped, as GMime does.
  SkipCfws(in);
  const std::size_t semicolon = in.text.find(';', in.pos);
  if (semicolon != std::string_view::npos && semicolon + 1 < in.text.size()) {
    out.parameters = ParseParameterList(in.text.substr(semicolon + 1));
  }
  return out;
}

ParsedDisposition ParseDispositionValue(std::string_view value) {
  const std::string_view text = UpToNul(value);
  const std::size_t semicolon = text.find(';');
  ParsedDisposition out;
  out.disposition = std::string(Trim(text.substr(0, semicolon)));
  if (semicolon != std::string_view::npos && semicolon + 1 < text.size()) {
    out.parameters = ParseParameterList(text.substr(semicolon + 1));
  }
  return out;
}

}  // namespace blindlist::mime
