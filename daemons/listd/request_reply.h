// LIST-request@DOMAIN: listd takes no commands by mail (subscriptions are the administrator's,
// on groupd and listd), so a message to a list's -request address gets one short answer saying
// whom to ask. It is an automatic reply (RFC 3834): never to the null sender, a mailer daemon,
// another list's or robot's address, or a message that is itself automatic or list mail; from
// the null sender with Auto-Submitted: auto-replied; at most one per sender and list per
// interval, so it cannot be turned into a mail cannon.
// Thread-safety: free functions; RequestReplyLimiter may be used from many threads and
// processes (its state is one file per sender and list).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "blindlist/result.h"
#include "config.h"

namespace blindlist::listd {

// "team@example.org" for "team-request@example.org" (any case of "-request"), else nothing.
std::optional<std::string> RequestListOf(std::string_view recipient);

// Why no automatic reply may go to this sender for this message ("" when one may):
// RFC 3834 section 2 and the usual robot addresses.
std::string NoAutoReplyReason(std::string_view sender, std::string_view message);

struct RequestReply {
  std::string list;    // team@example.org
  std::string owner;   // where to ask
  std::string sender;  // who wrote to team-request@
  std::string hostname;
};
// The reply (RFC 5322, CRLF): From LIST-request@, To the sender, Subject "Auto: ...",
// In-Reply-To/References of the request, Auto-Submitted: auto-replied.
std::string BuildRequestReply(const RequestReply& r, std::string_view request, std::int64_t now);

// Sends an automatic reply from the null sender (RFC 3834 section 3.3): through the smarthost
// (a short timeout: the request's own SMTP transaction waits for it), or into the sender's
// Maildir under maildir_root in the embedded delivery mode. Best effort: never retried.
Status SendAutoReply(const Config& config, const std::string& to, std::string_view message);

// One reply per (list, sender) per interval, recorded as files DIR/<hash> whose mtime is the
// last reply. When DIR holds more than `max_entries`, stale entries are pruned; if it is still
// full (a flood of forged senders), no reply is sent until entries age out.
// Pipe mode runs in a process of its own whose counters nobody scrapes. It leaves one empty file
// per answer in SPOOL/pipe-counts/ (`request-reply.sent.*` or `request-reply.failed.*`); the
// daemon's queue runner collects them into listd_request_replies_total and removes them.
Status NotePipeRequestReply(const std::string& spool_dir, bool sent);
struct PipeReplyCounts {
  std::int64_t sent = 0;
  std::int64_t failed = 0;
};
// Counts and removes the files NotePipeRequestReply left (none, when the directory is missing).
PipeReplyCounts CollectPipeRequestReplies(const std::string& spool_dir);

class RequestReplyLimiter {
 public:
  RequestReplyLimiter(std::string dir, std::chrono::seconds interval,
                      std::size_t max_entries = 10000);
  // True (and recorded) when a reply may go now.
  Result<bool> TryReserve(std::string_view list, std::string_view sender, std::int64_t now);

 private:
  std::size_t Prune(std::int64_t now);
  std::string dir_;
  std::chrono::seconds interval_;
  std::size_t max_entries_;
};

}  // namespace blindlist::listd
