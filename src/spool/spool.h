// listd's durable queue (docs/queue-format.md). A post is durable when Accept returns: written to
// tmp/ with an end marker, fsynced, renamed into incoming/, and the directory fsynced. Expanded
// for fan-out it moves to active/, where each recipient is crossed off in place as it is
// delivered, so a crash causes at most a duplicate delivery, never a loss. Damaged or incomplete
// files are moved to corrupt/, never deleted. A post a members-only list took from a non-member
// waits in held/ for its owner: released (back to incoming/, delivered as from a member),
// discarded, or deleted when it is too old.
// Thread-safety: a Spool is safe to use from many threads (many may Accept while one processes).
// One process per spool directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blindlist/result.h"
#include "spool/env.h"
#include "spool/queue_file.h"

namespace blindlist::spool {

// For /metrics.
struct SpoolCounts {
  std::size_t incoming = 0;
  std::size_t active = 0;
  std::size_t corrupt = 0;  // queue files moved aside (their .reason files not counted)
  std::size_t held = 0;     // posts from non-members waiting for the owner
};

// A held post as `held list` shows it: read from the head of its queue file.
struct HeldPost {
  std::string id;
  std::string list;
  std::string sender;
  std::int64_t received_at = 0;
  std::uint64_t size = 0;  // bytes of the queue file
};

class Spool {
 public:
  // Creates dir and its tmp/ incoming/ active/ corrupt/ held/ released/ as needed (mode 0700);
  // deletes what is left in tmp/ (never acknowledged); drops an incoming post that already has an
  // active file (activation finished before a crash), a held post that is queued again (a release
  // finished before a crash) and a release mark whose post is gone. A guest (listd's pipe mode,
  // which only adds posts while the daemon runs) leaves tmp/ alone: the files there may be another
  // process's writes in progress.
  enum class Role { kOwner, kGuest };
  static Result<std::unique_ptr<Spool>> Open(const std::string& dir, Env* env = Env::Default(),
                                             Role role = Role::kOwner);

  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  ~Spool() = default;

  // True for an id a guest wrote (pipe mode): its instance part starts with 'p'
  // (docs/queue-format.md), so the daemon can count pipe-mode posts when it picks them up.
  static bool WrittenByGuest(std::string_view id);

  // Durable on return (the caller may then answer 250); returns the new id: unique, sortable by
  // time, safe as a file name. On error nothing is visible in the queue (answer 451).
  Result<std::string> Accept(const std::string& list, const std::string& sender,
                             std::string_view message);

  // Ids, oldest first. A file without its end marker is moved to corrupt/ and not listed.
  Result<std::vector<std::string>> ListIncoming();
  Result<std::vector<std::string>> ListActive();

  // Damaged or incomplete -> moved to corrupt/ and error "spool-corrupt".
  Result<IncomingPost> ReadIncoming(const std::string& id);
  Result<ActivePost> ReadActive(const std::string& id);

  // Writes the active file durably (tmp, fsync, rename, fsync dir), then removes the incoming
  // one. Error "spool-already-active" if the id already has an active file (it is not replaced:
  // that would forget who was delivered).
  Status Activate(const ActivePost& post);
  // The same with the message in pieces (post.message is ignored), written one after the other.
  Status Activate(const ActivePost& post, const std::vector<std::string_view>& message_parts);

  // Updates several recipients in place (only their fixed-width state fields: no whole-file
  // rewrite), then one fsync unless `sync` is false. `updates` index ActivePost::recipients; the
  // address must not change, and a recipient in a final state (delivered, bounced, expired) never
  // changes again. A refused batch changes nothing ("spool-invalid-update"). An update written
  // without a sync can be lost in a crash (the recipient is then delivered again, never lost):
  // the fan-out syncs every few batches rather than after each one.
  Status UpdateRecipients(const std::string& id,
                          const std::vector<std::pair<std::size_t, RecipientEntry>>& updates,
                          bool sync = true);

  // All done: removes the active (and any incoming) file of the post, durably.
  Status Remove(const std::string& id);

  // Moves the post's files aside to corrupt/ (never deleted), with the reason in a side file.
  Status Quarantine(const std::string& id, const std::string& reason);

  // held/ (docs/queue-format.md). Hold moves incoming/<id> there, durably. Release marks the id
  // (released/<id>), writes the post back to incoming/ with received-at = `now` (its age starts
  // again: it is not expired at once) and removes the held file; Discard deletes it. Errors
  // "spool-not-found" for an id that is not held, "spool-invalid-id" for a bad one.
  Status Hold(const std::string& id);
  Result<std::vector<HeldPost>> ListHeld();  // oldest first; unreadable files are skipped
  Status Release(const std::string& id, std::int64_t now);
  Status Discard(const std::string& id);
  // Whether the owner released this post (it skips the members-only check), and forgetting that
  // once the post is expanded.
  bool Released(const std::string& id);
  Status ClearReleased(const std::string& id);

  Result<SpoolCounts> Counts();

  const std::string& dir() const { return dir_; }

 private:
  Spool(std::string dir, Env* env, std::string instance);

  std::string NewId();
  std::string Path(std::string_view sub, std::string_view name) const;
  // Writes head + message + tail to tmp/, fsyncs, renames to `to` and fsyncs its directory.
  Status WriteDurably(const std::string& tmp_name, const QueueFileFrame& frame,
                      const std::vector<std::string_view>& message_parts, std::string_view to_sub,
                      const std::string& id);
  Result<std::vector<std::string>> ListQueue(std::string_view sub);
  Status QuarantineFile(std::string_view sub, const std::string& id, const std::string& reason);
  Status CleanUpHeld();  // Open's part for held/ and released/

  const std::string dir_;
  Env* const env_;
  const std::string instance_;  // random per Open: ids from two runs in one microsecond differ

  std::mutex id_mu_;
  std::int64_t last_id_micros_ = 0;

  std::mutex mu_;  // serialises everything but Accept
};

}  // namespace blindlist::spool
