// Content-Type and Content-Disposition values read the way GMime 3 reads them (RFC 2045
// tokens and quoted strings, comments, RFC 2231 continuations and %-encoding, RFC 2047 words in
// a value, GMime's loose token rule), without linking GMime: the commands that only encrypt,
// decrypt, rewrap or inspect must not load GMime's library stack. media_type_test.cc compares
// this parser with GMime itself on a generated corpus.
// Thread-safety: free functions over caller-owned text; no shared state.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blindlist::mime {

// One parameter, in order of appearance; RFC 2231 parts are joined into one value.
struct MediaParameter {
  std::string name;   // as spelled
  std::string value;  // unquoted, decoded
};
using MediaParameters = std::vector<MediaParameter>;

// The first parameter named `name` (case-insensitive), or nullptr.
const MediaParameter* FindMediaParameter(const MediaParameters& params, std::string_view name);

struct ParsedContentType {
  std::string type;     // as spelled; "application" when the value is unreadable
  std::string subtype;  // as spelled; "octet-stream" when the value is unreadable
  MediaParameters parameters;
};
// `value` is one line (unfolded); parsing stops at a NUL, as GMime's C strings do.
ParsedContentType ParseContentTypeValue(std::string_view value);

struct ParsedDisposition {
  std::string disposition;
  MediaParameters parameters;
};
ParsedDisposition ParseDispositionValue(std::string_view value);

}  // namespace blindlist::mime
