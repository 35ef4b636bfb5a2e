// spool::ParseActiveFile and ParseIncomingFile on arbitrary bytes (a damaged queue file must be
// refused, never crash listd). Invariants: a parsed file written again by the framers parses
// to the same post, and the in-place parsers agree with the copying ones.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "spool/queue_file.h"

using blindlist::spool::ActivePost;

namespace {

bool SamePost(const ActivePost& a, const ActivePost& b) {
  if (a.id != b.id || a.list != b.list || a.envelope_sender != b.envelope_sender ||
      a.received_at != b.received_at || a.message != b.message ||
      a.recipients.size() != b.recipients.size() || a.recipient_infos != b.recipient_infos) {
    return false;
  }
  for (std::size_t i = 0; i < a.recipients.size(); ++i) {
    const auto& x = a.recipients[i];
    const auto& y = b.recipients[i];
    if (x.address != y.address || x.state != y.state || x.attempts != y.attempts ||
        x.next_attempt_at != y.next_attempt_at) {
      return false;
    }
  }
  return true;
}

void CheckActive(std::string_view input) {
  auto table = blindlist::spool::ParseRecipientTable(input);
  auto parsed = blindlist::spool::ParseActiveFile(input);
  auto in_place = blindlist::spool::ParseActiveFileInPlace(std::string(input));
  FUZZ_CHECK(parsed.ok() == in_place.ok(), "the in-place parser disagrees");
  if (!parsed.ok()) return;
  FUZZ_CHECK(table.ok(), "a parsed active file has no recipient table");
  FUZZ_CHECK(SamePost(*parsed, *in_place), "the in-place parser gives another post");
  auto frame = blindlist::spool::FrameActive(*parsed);
  FUZZ_CHECK(frame.ok(), "a parsed active post cannot be written again");
  auto again = blindlist::spool::ParseActiveFile(frame->head + parsed->message + frame->tail);
  FUZZ_CHECK(again.ok(), "a rewritten active file does not parse");
  FUZZ_CHECK(SamePost(*parsed, *again), "a rewritten active file parses to another post");
}

void CheckIncoming(std::string_view input) {
  auto parsed = blindlist::spool::ParseIncomingFile(input);
  auto in_place = blindlist::spool::ParseIncomingFileInPlace(std::string(input));
  FUZZ_CHECK(parsed.ok() == in_place.ok(), "the in-place parser disagrees");
  if (!parsed.ok()) return;
  FUZZ_CHECK(parsed->message == in_place->message && parsed->id == in_place->id,
             "the in-place parser gives another post");
  auto frame = blindlist::spool::FrameIncoming(*parsed, parsed->message);
  FUZZ_CHECK(frame.ok(), "a parsed incoming post cannot be written again");
  auto again = blindlist::spool::ParseIncomingFile(frame->head + parsed->message + frame->tail);
  FUZZ_CHECK(again.ok(), "a rewritten incoming file does not parse");
  FUZZ_CHECK(again->id == parsed->id && again->list == parsed->list &&
                 again->sender == parsed->sender && again->received_at == parsed->received_at &&
                 again->message == parsed->message,
             "a rewritten incoming file parses to another post");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckActive(input);
  CheckIncoming(input);
  return 0;
}
