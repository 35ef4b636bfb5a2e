// Internal to src/mime: the text helpers, raw header sections, media types and CMS content-type
// names that the S/MIME parser (smime.cc) and the whole-message check (smime_shape.cc) share.
// Thread-safety: free functions over caller-owned text; no shared state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/result.h"

namespace blindlist::mime {

inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kLf = "\n";

char AsciiLower(char c);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix);
std::string Lowercase(std::string_view text);
inline bool IsWsp(char c) { return c == ' ' || c == '\t'; }
inline bool IsLineSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
std::string_view Trim(std::string_view text);
// RFC 5322 ftext: printable US-ASCII except the colon.
bool IsFieldNameChar(char c);
// The first line of `text` without its line ending.
std::string_view FirstLine(std::string_view text);
// A field name (with the obsolete optional white space) followed by a colon.
bool LooksLikeHeaderField(std::string_view line);
// The line ending a header section uses: CRLF if its first line ends in CRLF.
std::string_view LineEndingOf(std::string_view text);

// Raw header sections: every field keeps its exact bytes.
struct RawField {
  std::string_view name;   // as spelled, without the obsolete white space before the colon
  std::string_view value;  // after the colon up to the final line ending; folds kept
  std::string_view bytes;  // the whole field, folds and final line ending included
  std::string_view eol;    // the final line ending: "\r\n" or "\n"
};

struct RawHeaderSection {
  std::vector<RawField> fields;
  std::string_view eol;        // line ending of the first line, for lines we add
  std::size_t fields_end = 0;  // offset just past the last field
  bool has_separator = false;  // a blank line follows the fields
};

// Splits `text` into header fields up to the first blank line (or the end of the text).
// Errors carry `error_code` so each caller reports in its own vocabulary.
Result<RawHeaderSection> ParseHeaderSection(std::string_view text, const std::string& error_code);
// The field's bytes without the final line ending.
std::string_view WithoutLineEnding(const RawField& field);
// A header value as one line: folds removed (RFC 5322 unfolding), outer white space trimmed.
std::string Unfold(std::string_view value);
// Content-* and MIME-Version.
bool IsStructuralField(std::string_view name);

// The base64 alphabet of RFC 4648 section 4, without the pad character.
bool IsBase64Alphabet(char c);

// CMS content types by their OID contents octets: just enough to name one in an error.
struct CmsContentType {
  std::string_view der;  // the OID's content octets
  std::string_view name;
  bool encrypted;
};
const CmsContentType* KnownContentType(std::string_view oid);

// A Content-Type value, parsed as GMime parses it (quoting, comments and RFC 2231 forms;
// media_type.h).
struct MediaType {
  std::string type;  // "application/pkcs7-mime", lowercased
  std::string smime_type;
  std::string name;
};
// An unparseable value gives an empty type.
MediaType ParseMediaType(std::string_view value);

}  // namespace blindlist::mime
