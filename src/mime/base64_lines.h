// Base64 as MIME bodies and PEM blocks carry it: text in lines. Decoding accepts line white
// space anywhere and '=' padding only at the end, and refuses every other character (a corrupted
// body is an error, not data); encoding writes fixed-length lines. One pass, no intermediate
// copy: a 24 MB post is decoded and encoded at memory speed.
// Thread-safety: free functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::mime {

// Errors: "bad-base64", saying what and where.
Result<Bytes> DecodeBase64Lines(std::string_view text);
// The same, writing the bytes to `out`, which may be text.data() itself (decoding in place:
// each byte is written behind the characters it came from). Returns their count.
Result<std::size_t> DecodeBase64LinesInPlace(std::string_view text, std::uint8_t* out);

// `line_length` characters a line (a multiple of 4), each line ended by `eol`, appended to `out`.
void AppendBase64Lines(ByteView data, std::size_t line_length, std::string_view eol,
                       std::string& out);
// The size AppendBase64Lines adds.
std::size_t Base64LinesSize(std::size_t data_size, std::size_t line_length, std::size_t eol_size);

// AppendBase64Lines in pieces: the bytes of a group and the column carry over between calls,
// so the lines are the same however the data is cut.
class Base64LineEncoder {
 public:
  Base64LineEncoder(std::size_t line_length, std::string_view eol);
  void Append(ByteView data, std::string& out);
  // The last group with its padding, and the last line ending.
  void Finish(std::string& out);

 private:
  void Emit(const std::uint8_t* group, std::size_t size, char*& p);
  std::size_t line_length_;
  std::string eol_;
  std::size_t column_ = 0;
  std::uint8_t pending_[3] = {0, 0, 0};
  std::size_t pending_size_ = 0;
};

}  // namespace blindlist::mime
