// Base64 as MIME bodies and PEM blocks carry it: text in lines. Decoding accepts line white
// space anywhere and '=' padding only at the end, and refuses every other character (a corrupted
// body is an error, not data); encoding writes fixed-length lines. One pass, no intermediate
// copy: a 24 MB post is decoded and encoded at memory speed.
// Thread-safety: free functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::mime {

// Errors: "bad-base64", saying what and where.
Result<Bytes> DecodeBase64Lines(std::string_view text);

// `line_length` characters a line (a multiple of 4), each line ended by `eol`, appended to `out`.
void AppendBase64Lines(ByteView data, std::size_t line_length, std::string_view eol,
                       std::string& out);
// The size AppendBase64Lines adds.
std::size_t Base64LinesSize(std::size_t data_size, std::size_t line_length, std::size_t eol_size);

}  // namespace blindlist::mime
