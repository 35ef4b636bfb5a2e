// The helpers src/mime shares internally (smime_common.h).

#include "mime/smime_common.h"

#include "mime/media_type.h"

namespace blindlist::mime {

// ---------------------------------------------------------------------------------------------
// Small text helpers

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

std::string Lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsLineSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsLineSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool IsFieldNameChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 33 && u <= 126 && c != ':';
}

std::string_view FirstLine(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

bool LooksLikeHeaderField(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && IsFieldNameChar(line[i])) ++i;
  if (i == 0) return false;
  while (i < line.size() && IsWsp(line[i])) ++i;
  return i < line.size() && line[i] == ':';
}

std::string_view LineEndingOf(std::string_view text) {
  const std::size_t newline = text.find('\n');
  return (newline != std::string_view::npos && newline > 0 && text[newline - 1] == '\r') ? kCrlf
                                                                                         : kLf;
}

// ---------------------------------------------------------------------------------------------
// Raw header sections: every field keeps its exact bytes.

Result<RawHeaderSection> ParseHeaderSection(std::string_view text, const std::string& error_code) {
  if (text.empty()) return MakeError(error_code, "input is empty");
  struct Offsets {
    std::size_t begin, name_end, value_begin, end, eol_size;
  };
  std::vector<Offsets> offsets;
  RawHeaderSection section;
  std::size_t pos = 0;
  int line_number = 0;
  bool found_separator = false;
  while (pos < text.size()) {
    ++line_number;
    const std::size_t newline = text.find('\n', pos);
    if (newline == std::string_view::npos) {
      return MakeError(error_code, "header line " + std::to_string(line_number) +
                                       " has no line ending (the header section is cut short)");
    }
    const std::string_view line = text.substr(pos, newline + 1 - pos);
    const std::size_t eol_size = line.ends_with(kCrlf) ? 2 : 1;
    const std::string_view content = line.substr(0, line.size() - eol_size);
    if (section.eol.empty()) section.eol = eol_size == 2 ? kCrlf : kLf;
    if (content.empty()) {
      if (offsets.empty()) {
        return MakeError(error_code, "no header section: the input starts with a blank line");
      }
      section.fields_end = pos;
      found_separator = true;
      break;
    }
    if (content.find('\0') != std::string_view::npos) {
      return MakeError(error_code,
                       "header line " + std::to_string(line_number) + " contains a NUL byte");
    }
    if (IsWsp(content.front())) {
      if (offsets.empty()) {
        return MakeError(error_code, "the header section starts with a continuation line");
      }
      offsets.back().end = newline + 1;
      offsets.back().eol_size = eol_size;
    } else {
      std::size_t i = 0;
      while (i < content.size() && IsFieldNameChar(content[i])) ++i;
      const std::size_t name_end = i;
      while (i < content.size() && IsWsp(content[i])) ++i;
      if (name_end == 0 || i >= content.size() || content[i] != ':') {
        return MakeError(error_code, "header line " + std::to_string(line_number) +
                                         " is not a field (no name followed by a colon)");
      }
      offsets.push_back({pos, pos + name_end, pos + i + 1, newline + 1, eol_size});
    }
    pos = newline + 1;
  }
  if (!found_separator) section.fields_end = text.size();
  section.has_separator = found_separator;
  section.fields.reserve(offsets.size());
  for (const Offsets& o : offsets) {
    section.fields.push_back(RawField{
        .name = text.substr(o.begin, o.name_end - o.begin),
        .value = text.substr(o.value_begin, o.end - o.eol_size - o.value_begin),
        .bytes = text.substr(o.begin, o.end - o.begin),
        .eol = o.eol_size == 2 ? kCrlf : kLf,
    });
  }
  return section;
}

std::string_view WithoutLineEnding(const RawField& field) {
  return field.bytes.substr(0, field.bytes.size() - field.eol.size());
}

std::string Unfold(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  return std::string(Trim(out));
}

bool IsStructuralField(std::string_view name) {
  return StartsWithIgnoreCase(name, "Content-") || EqualsIgnoreCase(name, "MIME-Version");
}

bool IsBase64Alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// ---------------------------------------------------------------------------------------------
// CMS ContentInfo: just enough DER to name the content type in an error.

namespace {
constexpr std::string_view kPkcs7 = "\x2a\x86\x48\x86\xf7\x0d\x01\x07";
constexpr std::string_view kSmimeCt = "\x2a\x86\x48\x86\xf7\x0d\x01\x09\x10\x01";
}  // namespace

const CmsContentType* KnownContentType(std::string_view oid) {
  static const std::string kData = std::string(kPkcs7) + '\x01';
  static const std::string kSigned = std::string(kPkcs7) + '\x02';
  static const std::string kEnveloped = std::string(kPkcs7) + '\x03';
  static const std::string kSignedAndEnveloped = std::string(kPkcs7) + '\x04';
  static const std::string kDigested = std::string(kPkcs7) + '\x05';
  static const std::string kEncrypted = std::string(kPkcs7) + '\x06';
  static const std::string kCompressed = std::string(kSmimeCt) + '\x09';
  static const std::string kAuthEnveloped = std::string(kSmimeCt) + '\x17';
  static const CmsContentType kTypes[] = {
      {kData, "data", false},
      {kSigned, "signedData", false},
      {kEnveloped, "envelopedData", true},
      {kSignedAndEnveloped, "signedAndEnvelopedData", false},
      {kDigested, "digestedData", false},
      {kEncrypted, "encryptedData", false},
      {kCompressed, "compressedData", false},
      {kAuthEnveloped, "authEnvelopedData", true},
  };
  for (const CmsContentType& type : kTypes) {
    if (type.der == oid) return &type;
  }
  return nullptr;
}

MediaType ParseMediaType(std::string_view value) {
  const ParsedContentType parsed = ParseContentTypeValue(Unfold(value));
  MediaType media;
  media.type = Lowercase(parsed.type + "/" + parsed.subtype);
  if (const MediaParameter* p = FindMediaParameter(parsed.parameters, "smime-type")) {
    media.smime_type = p->value;
  }
  if (const MediaParameter* p = FindMediaParameter(parsed.parameters, "name")) {
    media.name = p->value;
  }
  return media;
}
}  // namespace blindlist::mime
