// Queue file format, version 1 (docs/queue-format.md). The parser is strict and bounded: every
// length is checked against the bytes left before it is used, so no input can make it read out
// of bounds or allocate more than the input's size.

#include "spool/queue_file.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blindlist/hex.h"

namespace blindlist::spool {
namespace {

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, as zlib): detects damage, not tampering.

constexpr std::array<std::uint32_t, 256> MakeCrcTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = MakeCrcTable();

class Crc32 {
 public:
  void Update(std::string_view data) {
    std::uint32_t c = state_;
    for (const char ch : data) {
      c = kCrcTable[(c ^ static_cast<unsigned char>(ch)) & 0xFFU] ^ (c >> 8);
    }
    state_ = c;
  }
  std::uint32_t Value() const { return state_ ^ 0xFFFFFFFFU; }

 private:
  std::uint32_t state_ = 0xFFFFFFFFU;
};

// ---------------------------------------------------------------------------------------------
// Layout constants

constexpr std::string_view kIncomingMagic = "blindlist-queue 1 incoming";
constexpr std::string_view kActiveMagic = "blindlist-queue 1 active";
// Records start on a 512-byte boundary and are a power of two wide, so the mutable prefix of a
// record never straddles a disk sector and an in-place update is not torn across two.
constexpr std::size_t kTableAlignment = 512;
constexpr std::size_t kMinRecordWidth = 64;
constexpr std::size_t kMaxRecordWidth = 1024;
constexpr std::size_t kMaxLineBytes = 2048;
constexpr std::string_view kRecipientInfosKey = "recipient-infos ";
constexpr std::string_view kBase64Chars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
// Record fields: "S AAAAAAAAAA NNNNNNNNNNNNNNNNNNN CCCCCCCC LLL address<spaces>\n"
constexpr std::size_t kAttemptsAt = 2;
constexpr std::size_t kAttemptsDigits = 10;
constexpr std::size_t kNextAt = 13;
constexpr std::size_t kNextDigits = 19;
constexpr std::size_t kCheckAt = 33;
constexpr std::size_t kLengthAt = 42;
constexpr std::size_t kAddressAt = 46;
constexpr int kMaxAttempts = 2147483647;

Error Corrupt(std::string message) { return MakeError("spool-corrupt", std::move(message)); }
Error Invalid(std::string message) { return MakeError("spool-invalid", std::move(message)); }

std::string ZeroPadded(std::uint64_t v, std::size_t width) {
  std::string digits = std::to_string(v);
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return digits;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Decimal digits only (no sign, no spaces), fitting in `max`.
bool ParseUnsigned(std::string_view s, std::uint64_t max, std::uint64_t& out) {
  if (!AllDigits(s) || s.size() > 19) return false;
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v > max) return false;
  out = v;
  return true;
}

bool ParseSigned(std::string_view s, std::int64_t& out) {
  const bool negative = !s.empty() && s.front() == '-';
  if (!AllDigits(negative ? s.substr(1) : s) || s.size() > 20) return false;
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  out = v;
  return true;
}

bool IsStateByte(char c) { return c == 'P' || c == 'D' || c == 'B' || c == 'X'; }

Status CheckFieldValue(std::string_view field, std::string_view value, bool may_be_empty) {
  if (value.empty() && !may_be_empty) return Invalid(std::string(field) + " is empty");
  if (value.size() > kMaxAddressBytes) {
    return Invalid(std::string(field) + " is longer than " + std::to_string(kMaxAddressBytes) +
                   " bytes");
  }
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return Invalid(std::string(field) + " contains CR, LF or NUL");
  }
  return Status::Ok();
}

// The check of a record's mutable prefix, bound to its index so a record copied elsewhere fails.
std::uint32_t RecordCheck(std::string_view state_fields, std::size_t index) {
  Crc32 crc;
  crc.Update(state_fields);
  crc.Update(" ");
  crc.Update(std::to_string(index));
  return crc.Value();
}

// Reads one "\n"-terminated line starting at `pos`, at most kMaxLineBytes long.
class LineReader {
 public:
  explicit LineReader(std::string_view bytes) : bytes_(bytes) {}

  Result<std::string_view> Line(std::string_view what) {
    const std::string_view rest = bytes_.substr(pos_);
    const std::size_t nl = rest.substr(0, kMaxLineBytes).find('\n');
    if (nl == std::string_view::npos) {
      if (rest.size() < kMaxLineBytes)
        return Corrupt("incomplete: the file ends in the " + std::string(what) + " line");
      return Corrupt("the " + std::string(what) + " line is too long");
    }
    pos_ += nl + 1;
    return rest.substr(0, nl);
  }

  // The value of a "key value" line.
  Result<std::string_view> Field(std::string_view key) {
    BL_TRY_ASSIGN(const std::string_view line, Line(key));
    if (line.size() < key.size() + 1 || line.substr(0, key.size()) != key ||
        line[key.size()] != ' ') {
      return Corrupt("expected the " + std::string(key) + " line");
    }
    return line.substr(key.size() + 1);
  }

  std::size_t pos() const { return pos_; }
  void Skip(std::size_t n) { pos_ += n; }
  std::size_t left() const { return bytes_.size() - pos_; }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

Result<std::string_view> AddressField(LineReader& in, std::string_view key, bool may_be_empty) {
  BL_TRY_ASSIGN(const std::string_view value, in.Field(key));
  if (Status s = CheckFieldValue(key, value, may_be_empty); !s.ok()) {
    return Corrupt(s.error().message);
  }
  return value;
}

Result<std::int64_t> TimeField(LineReader& in, std::string_view key) {
  BL_TRY_ASSIGN(const std::string_view value, in.Field(key));
  std::int64_t t = 0;
  if (!ParseSigned(value, t)) return Corrupt("bad " + std::string(key) + " value");
  return t;
}

Result<std::string_view> IdField(LineReader& in) {
  BL_TRY_ASSIGN(const std::string_view value, in.Field("id"));
  if (!IsValidId(value)) return Corrupt("bad id");
  return value;
}

// Where the message lies in the file; checked against the end marker and the checksum.
struct BodySpan {
  std::size_t offset = 0;
  std::size_t size = 0;
};

// Reads "message <n>\n<n bytes>\n" and "end <crc>\n", which must end the file. `crc` has seen
// everything before the message line.
Result<BodySpan> ParseBodyAndEnd(std::string_view bytes, LineReader& in, Crc32& crc) {
  const std::size_t message_line_at = in.pos();
  BL_TRY_ASSIGN(const std::string_view length_text, in.Field("message"));
  std::uint64_t length = 0;
  if (!ParseUnsigned(length_text, kMaxMessageBytes, length)) {
    return Corrupt("bad message length");
  }
  if (length + 1 > in.left()) return Corrupt("incomplete: the message is truncated");
  const BodySpan body{in.pos(), static_cast<std::size_t>(length)};
  in.Skip(body.size);
  if (bytes[in.pos()] != '\n') return Corrupt("no line end after the message");
  in.Skip(1);
  crc.Update(bytes.substr(message_line_at, in.pos() - message_line_at));

  if (in.left() == 0) return Corrupt("incomplete: no end marker");
  BL_TRY_ASSIGN(const std::string_view check_text, in.Field("end"));
  std::uint32_t check = 0;
  if (!hex::ParseWord32(check_text, check)) return Corrupt("bad end marker");
  if (in.left() != 0) return Corrupt("bytes after the end marker");
  if (check != crc.Value()) return Corrupt("checksum mismatch: the file is damaged");
  return body;
}

struct ParsedIncoming {
  IncomingPost post;  // without the message
  BodySpan body;
};

Result<ParsedIncoming> ParseIncomingLayout(std::string_view bytes) {
  LineReader in(bytes);
  BL_TRY_ASSIGN(const std::string_view magic, in.Line("version"));
  if (magic != kIncomingMagic) return Corrupt("not an incoming queue file (version line)");
  ParsedIncoming out;
  BL_TRY_ASSIGN(out.post.id, IdField(in));
  BL_TRY_ASSIGN(out.post.list, AddressField(in, "list", false));
  BL_TRY_ASSIGN(out.post.sender, AddressField(in, "sender", true));
  BL_TRY_ASSIGN(out.post.received_at, TimeField(in, "received-at"));
  Crc32 crc;
  crc.Update(bytes.substr(0, in.pos()));
  BL_TRY_ASSIGN(out.body, ParseBodyAndEnd(bytes, in, crc));
  return out;
}

// The header of an active file up to its first record; works on a prefix of the file.
struct ActiveHead {
  ActivePost post;  // without recipients or message
  RecipientTable table;
};

Result<ActiveHead> ParseActiveHead(std::string_view bytes) {
  LineReader in(bytes);
  BL_TRY_ASSIGN(const std::string_view magic, in.Line("version"));
  if (magic != kActiveMagic) return Corrupt("not an active queue file (version line)");
  ActiveHead out;
  BL_TRY_ASSIGN(out.post.id, IdField(in));
  BL_TRY_ASSIGN(out.post.list, AddressField(in, "list", false));
  BL_TRY_ASSIGN(out.post.envelope_sender, AddressField(in, "envelope-sender", true));
  BL_TRY_ASSIGN(out.post.received_at, TimeField(in, "received-at"));
  BL_TRY_ASSIGN(const std::string_view table_text, in.Field("recipients"));
  const std::size_t space = table_text.find(' ');
  std::uint64_t count = 0;
  std::uint64_t width = 0;
  if (space == std::string_view::npos ||
      !ParseUnsigned(table_text.substr(0, space), kMaxRecipients, count) ||
      !ParseUnsigned(table_text.substr(space + 1), kMaxRecordWidth, width) ||
      width < kMinRecordWidth || (width & (width - 1)) != 0) {
    return Corrupt("bad recipients line");
  }
  BL_TRY_ASSIGN(const std::string_view pad, in.Field("pad"));
  if (pad.find_first_not_of(' ') != std::string_view::npos) return Corrupt("bad pad line");
  if (in.pos() % kTableAlignment != 0) return Corrupt("the recipient table is not aligned");
  out.table =
      RecipientTable{in.pos(), static_cast<std::size_t>(count), static_cast<std::size_t>(width)};
  return out;
}

struct ParsedActive {
  ActivePost post;  // without the message
  BodySpan body;
};

Result<ParsedActive> ParseActiveLayout(std::string_view bytes) {
  BL_TRY_ASSIGN(ActiveHead head, ParseActiveHead(bytes));
  const RecipientTable table = head.table;
  // count <= 1e6 and width <= 1024, so the product cannot overflow.
  const std::uint64_t table_bytes = std::uint64_t{table.count} * table.width;
  if (table.offset + table_bytes > bytes.size()) {
    return Corrupt("incomplete: the recipient table is truncated");
  }
  ParsedActive out{std::move(head.post), {}};
  Crc32 crc;
  crc.Update(bytes.substr(0, table.offset));
  out.post.recipients.reserve(table.count);
  for (std::size_t i = 0; i < table.count; ++i) {
    const std::string_view record = bytes.substr(table.offset + i * table.width, table.width);
    crc.Update(record.substr(kRecordMutableBytes));
    BL_TRY_ASSIGN(RecipientEntry entry, ParseRecord(record, i));
    out.post.recipients.push_back(std::move(entry));
  }
  LineReader in(bytes);
  in.Skip(static_cast<std::size_t>(table.offset + table_bytes));
  // Per-member posts: one RecipientInfo line per recipient ("-" for none).
  if (bytes.substr(in.pos()).starts_with(kRecipientInfosKey)) {
    const std::size_t section_at = in.pos();
    BL_TRY_ASSIGN(const std::string_view count_text, in.Field("recipient-infos"));
    std::uint64_t count = 0;
    if (!ParseUnsigned(count_text, kMaxRecipients, count) || count != table.count)
      return Corrupt("bad recipient-infos line");
    out.post.recipient_infos.reserve(table.count);
    for (std::size_t i = 0; i < table.count; ++i) {
      BL_TRY_ASSIGN(const std::string_view ri, in.Line("recipient-info"));
      if (ri.empty() || (ri != "-" && ri.find_first_not_of(kBase64Chars) != std::string_view::npos))
        return Corrupt("bad recipient-info line");
      out.post.recipient_infos.emplace_back(ri == "-" ? std::string_view() : ri);
    }
    crc.Update(bytes.substr(section_at, in.pos() - section_at));
  }
  BL_TRY_ASSIGN(out.body, ParseBodyAndEnd(bytes, in, crc));
  return out;
}

// Keeps only [body.offset, body.offset + body.size) of `bytes`, without a second buffer.
std::string TakeBody(std::string&& bytes, BodySpan body) {
  bytes.erase(0, body.offset);
  bytes.resize(body.size);
  return std::move(bytes);
}

void AppendLine(std::string& out, std::string_view key, std::string_view value) {
  out.append(key);
  out.push_back(' ');
  out.append(value);
  out.push_back('\n');
}

// "message <n>\n" ... "\n" "end <crc>\n" around the message, finishing `crc`.
QueueFileFrame FinishFrame(std::string head, Crc32& crc,
                           const std::vector<std::string_view>& message_parts) {
  std::size_t size = 0;
  for (const std::string_view part : message_parts) size += part.size();
  std::string message_line = "message " + std::to_string(size) + "\n";
  crc.Update(message_line);
  for (const std::string_view part : message_parts) crc.Update(part);
  crc.Update("\n");
  head.append(message_line);
  std::string tail = "\nend " + hex::Word32(crc.Value()) + "\n";
  return QueueFileFrame{std::move(head), std::move(tail)};
}

}  // namespace

bool IsFinal(RecipientState state) { return state != RecipientState::kPending; }

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes || id.front() == '.') return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> EncodeRecordState(std::size_t index, const RecipientEntry& entry) {
  if (!IsStateByte(static_cast<char>(entry.state))) return Invalid("unknown recipient state");
  if (entry.attempts < 0) return Invalid("negative attempt count");
  if (entry.next_attempt_at < 0) return Invalid("negative next attempt time");
  std::string out;
  out.reserve(kRecordMutableBytes);
  out.push_back(static_cast<char>(entry.state));
  out.push_back(' ');
  out.append(ZeroPadded(static_cast<std::uint64_t>(entry.attempts), kAttemptsDigits));
  out.push_back(' ');
  out.append(ZeroPadded(static_cast<std::uint64_t>(entry.next_attempt_at), kNextDigits));
  out.push_back(' ');
  out.append(hex::Word32(RecordCheck(out.substr(0, kCheckAt - 1), index)));
  return out;
}

Result<RecipientEntry> ParseRecord(std::string_view record, std::size_t index) {
  if (record.size() < kMinRecordWidth || record.back() != '\n' || record[1] != ' ' ||
      record[kNextAt - 1] != ' ' || record[kCheckAt - 1] != ' ' ||
      record[kRecordMutableBytes] != ' ' || record[kAddressAt - 1] != ' ') {
    return Corrupt("malformed recipient record " + std::to_string(index));
  }
  std::uint64_t length = 0;
  if (!ParseUnsigned(record.substr(kLengthAt, 3), kMaxAddressBytes, length) || length == 0 ||
      kAddressAt + length + 1 > record.size()) {
    return Corrupt("bad address length in recipient record " + std::to_string(index));
  }
  RecipientEntry entry;
  entry.address = std::string(record.substr(kAddressAt, static_cast<std::size_t>(length)));
  if (Status s = CheckFieldValue("recipient", entry.address, false); !s.ok()) {
    return Corrupt(s.error().message);
  }
  const std::string_view padding =
      record.substr(kAddressAt + static_cast<std::size_t>(length),
                    record.size() - 1 - kAddressAt - static_cast<std::size_t>(length));
  if (padding.find_first_not_of(' ') != std::string_view::npos) {
    return Corrupt("bad padding in recipient record " + std::to_string(index));
  }

  // The mutable prefix: a failed check means an in-place update was torn by a crash. The
  // recipient was pending before (final states are never rewritten), so pending is safe: at
  // most a duplicate delivery, never a loss.
  std::uint32_t check = 0;
  std::uint64_t attempts = 0;
  std::uint64_t next = 0;
  const bool intact =
      IsStateByte(record[0]) && hex::ParseWord32(record.substr(kCheckAt, 8), check) &&
      check == RecordCheck(record.substr(0, kCheckAt - 1), index) &&
      ParseUnsigned(record.substr(kAttemptsAt, kAttemptsDigits), kMaxAttempts, attempts) &&
      ParseUnsigned(record.substr(kNextAt, kNextDigits), INT64_MAX, next);
  if (intact) {
    entry.state = static_cast<RecipientState>(record[0]);
    entry.attempts = static_cast<int>(attempts);
    entry.next_attempt_at = static_cast<std::int64_t>(next);
  }
  return entry;
}

Result<QueueFileFrame> FrameIncoming(const IncomingPost& post, std::string_view message) {
  if (!IsValidId(post.id)) return Invalid("bad id '" + post.id + "'");
  BL_TRY(CheckFieldValue("list", post.list, false));
  BL_TRY(CheckFieldValue("sender", post.sender, true));
  if (message.size() > kMaxMessageBytes) return Invalid("the message is too large");
  std::string head;
  head.append(kIncomingMagic);
  head.push_back('\n');
  AppendLine(head, "id", post.id);
  AppendLine(head, "list", post.list);
  AppendLine(head, "sender", post.sender);
  AppendLine(head, "received-at", std::to_string(post.received_at));
  Crc32 crc;
  crc.Update(head);
  return FinishFrame(std::move(head), crc, {message});
}

Result<QueueFileFrame> FrameActive(const ActivePost& post) {
  return FrameActive(post, {post.message});
}

Result<QueueFileFrame> FrameActive(const ActivePost& post,
                                   const std::vector<std::string_view>& message_parts) {
  if (!IsValidId(post.id)) return Invalid("bad id '" + post.id + "'");
  BL_TRY(CheckFieldValue("list", post.list, false));
  BL_TRY(CheckFieldValue("envelope sender", post.envelope_sender, true));
  std::size_t message_size = 0;
  for (const std::string_view part : message_parts) message_size += part.size();
  if (message_size > kMaxMessageBytes) return Invalid("the message is too large");
  if (post.recipients.size() > kMaxRecipients) return Invalid("too many recipients");
  std::size_t longest = 0;
  for (const RecipientEntry& r : post.recipients) {
    BL_TRY(CheckFieldValue("recipient address", r.address, false));
    longest = std::max(longest, r.address.size());
  }
  std::size_t width = kMinRecordWidth;
  while (width < kAddressAt + longest + 1) width *= 2;

  std::string head;
  head.append(kActiveMagic);
  head.push_back('\n');
  AppendLine(head, "id", post.id);
  AppendLine(head, "list", post.list);
  AppendLine(head, "envelope-sender", post.envelope_sender);
  AppendLine(head, "received-at", std::to_string(post.received_at));
  AppendLine(head, "recipients",
             std::to_string(post.recipients.size()) + " " + std::to_string(width));
  // "pad" + spaces + "\n" so the first record starts on a kTableAlignment boundary.
  const std::size_t used = head.size() + 5;
  const std::size_t spaces = (kTableAlignment - used % kTableAlignment) % kTableAlignment;
  AppendLine(head, "pad", std::string(spaces, ' '));

  Crc32 crc;
  crc.Update(head);
  head.reserve(head.size() + post.recipients.size() * width + 32);
  for (std::size_t i = 0; i < post.recipients.size(); ++i) {
    const RecipientEntry& r = post.recipients[i];
    BL_TRY_ASSIGN(std::string record, EncodeRecordState(i, r));
    record.push_back(' ');
    record.append(ZeroPadded(r.address.size(), 3));
    record.push_back(' ');
    record.append(r.address);
    record.resize(width - 1, ' ');
    record.push_back('\n');
    crc.Update(std::string_view(record).substr(kRecordMutableBytes));
    head.append(record);
  }
  if (!post.recipient_infos.empty()) {
    if (post.recipient_infos.size() != post.recipients.size())
      return Invalid("recipient_infos must have one entry per recipient");
    const std::size_t section_at = head.size();
    AppendLine(head, "recipient-infos", std::to_string(post.recipient_infos.size()));
    for (const std::string& ri : post.recipient_infos) {
      if (ri.size() + 1 > kMaxLineBytes ||
          ri.find_first_not_of(kBase64Chars) != std::string_view::npos)
        return Invalid("a recipient info is not base64 of at most one line");
      head.append(ri.empty() ? "-" : ri);
      head.push_back('\n');
    }
    crc.Update(std::string_view(head).substr(section_at));
  }
  return FinishFrame(std::move(head), crc, message_parts);
}

Result<RecipientTable> ParseRecipientTable(std::string_view file_prefix) {
  BL_TRY_ASSIGN(const ActiveHead head, ParseActiveHead(file_prefix));
  return head.table;
}

Result<IncomingPost> ParseIncomingFile(std::string_view bytes) {
  BL_TRY_ASSIGN(ParsedIncoming parsed, ParseIncomingLayout(bytes));
  parsed.post.message = std::string(bytes.substr(parsed.body.offset, parsed.body.size));
  return std::move(parsed.post);
}

Result<ActivePost> ParseActiveFile(std::string_view bytes) {
  BL_TRY_ASSIGN(ParsedActive parsed, ParseActiveLayout(bytes));
  parsed.post.message = std::string(bytes.substr(parsed.body.offset, parsed.body.size));
  return std::move(parsed.post);
}

Result<IncomingPost> ParseIncomingFileInPlace(std::string&& bytes) {
  BL_TRY_ASSIGN(ParsedIncoming parsed, ParseIncomingLayout(bytes));
  parsed.post.message = TakeBody(std::move(bytes), parsed.body);
  return std::move(parsed.post);
}

Result<ActivePost> ParseActiveFileInPlace(std::string&& bytes) {
  BL_TRY_ASSIGN(ParsedActive parsed, ParseActiveLayout(bytes));
  parsed.post.message = TakeBody(std::move(bytes), parsed.body);
  return std::move(parsed.post);
}

}  // namespace blindlist::spool
