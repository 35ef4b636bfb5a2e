// The on-disk format of listd's queue files (docs/queue-format.md): what a post looks like when it
// is received (incoming) and when it is expanded for fan-out (active), the pure parsers, and the
// writers' framing. No I/O here: the Spool (spool.h) does that through an Env.
// Thread-safety: plain value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/result.h"

namespace blindlist::spool {

enum class RecipientState : char {
  kPending = 'P',
  kDelivered = 'D',
  kBounced = 'B',
  kExpired = 'X',
};

// True for the states a recipient never leaves (delivered, bounced, expired).
bool IsFinal(RecipientState state);

struct RecipientEntry {
  std::string address;
  RecipientState state = RecipientState::kPending;
  int attempts = 0;
  std::int64_t next_attempt_at = 0;  // unix seconds
};

struct IncomingPost {  // as received, before fan-out
  std::string id;
  std::string list;    // list address it was sent to
  std::string sender;  // envelope sender (may be empty: null sender)
  std::int64_t received_at = 0;
  std::string message;  // raw RFC 5322 bytes as received
};

struct ActivePost {  // expanded for fan-out
  std::string id;    // same id as its IncomingPost
  std::string list;
  std::string envelope_sender;  // the list's bounce address
  std::int64_t received_at = 0;
  std::vector<RecipientEntry> recipients;
  // Per-member reading: empty, or one entry per recipient: the base64 DER of the RecipientInfo
  // that replaces the group's in that recipient's copy, or "" for the message as it is.
  std::vector<std::string> recipient_infos;
  std::string message;  // final bytes to deliver (per member: with the group's RecipientInfo)
};

// Limits the parsers enforce (and the writers refuse to exceed).
inline constexpr std::size_t kMaxAddressBytes = 512;
inline constexpr std::size_t kMaxIdBytes = 64;
inline constexpr std::size_t kMaxRecipients = 1'000'000;
inline constexpr std::uint64_t kMaxMessageBytes = std::uint64_t{1} << 30;

// The pure parsers, for the fuzz target and the reader: never crash on any bytes. Every
// failure is "spool-corrupt" (damaged, or incomplete: no end marker).
Result<ActivePost> ParseActiveFile(std::string_view bytes);
Result<IncomingPost> ParseIncomingFile(std::string_view bytes);

// The same, taking the file's buffer and turning it into the message in place, so a 25 MB post
// is held once, not twice.
Result<ActivePost> ParseActiveFileInPlace(std::string&& bytes);
Result<IncomingPost> ParseIncomingFileInPlace(std::string&& bytes);

// An id is safe as a file name: 1..64 of [A-Za-z0-9._-], not starting with '.'.
bool IsValidId(std::string_view id);

// A queue file is head + message + tail; the message is written from the caller's buffer.
struct QueueFileFrame {
  std::string head;
  std::string tail;
};
// Errors "spool-invalid" name the field (CR, LF or NUL in an address, a bad id, a negative
// count, too many recipients, ...). `post.message` of an IncomingPost is ignored: `message` is
// used.
Result<QueueFileFrame> FrameIncoming(const IncomingPost& post, std::string_view message);
Result<QueueFileFrame> FrameActive(const ActivePost& post);
// The same for a message given in pieces (post.message is ignored): the file
// holds their concatenation, so a caller need not build it in memory.
Result<QueueFileFrame> FrameActive(const ActivePost& post,
                                   const std::vector<std::string_view>& message_parts);

// Where the fixed-width recipient records of an active file are, from its first bytes
// (kActiveHeadProbeBytes are always enough), so UpdateRecipients touches only the records.
inline constexpr std::size_t kActiveHeadProbeBytes = 4096;
struct RecipientTable {
  std::uint64_t offset = 0;  // of record 0
  std::size_t count = 0;
  std::size_t width = 0;  // bytes per record
};
Result<RecipientTable> ParseRecipientTable(std::string_view file_prefix);

// The mutable prefix of record `index` (state, attempts, next try, check): overwritten in place.
inline constexpr std::size_t kRecordMutableBytes = 41;
Result<std::string> EncodeRecordState(std::size_t index, const RecipientEntry& entry);
// One whole record. A record whose state check fails (a torn in-place write) reads as pending.
Result<RecipientEntry> ParseRecord(std::string_view record, std::size_t index);

}  // namespace blindlist::spool
