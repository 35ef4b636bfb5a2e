// The tree's base64 (RFC 4648 section 4) for JSON fields, tokens and credentials (MIME bodies
// in lines: mime/base64_lines.h, a table encoder for 24 MB at memory speed; public data only):
// strict decoding (no whitespace, correct padding), so malformed input is an error, not a guess.
// Constant time in the bytes (keys and tokens pass through it): no table lookup or
// branch depends on a character's value, only on the whole text's validity.
// Thread-safety: free functions.
#pragma once

#include <string>
#include <string_view>

#include "blindlist/bytes.h"

namespace blindlist {

std::string Base64Encode(ByteView data);
// Base64Encode appended to `out`. With the room reserved beforehand nothing is reallocated, so
// the encoding of a secret leaves no copy in freed memory (the caller cleanses `out`).
void AppendBase64(std::string& out, ByteView data);
// False (and `out` cleared) on any character outside the alphabet or bad padding.
bool Base64Decode(std::string_view text, Bytes& out);
bool Base64Decode(std::string_view text, SecretBytes& out);

}  // namespace blindlist
