// Turns an incoming post into a post ready for fan-out: the list's enabled
// members as recipients, the post's sender kept (for a DSN if the message is refused), the
// List-* fields on top and, for lists that read by path B, the group's
// RecipientInfo replaced by a KEKRecipientInfo under the group secret. A post
// whose re-wrap fails waits in the queue and is retried; it is never forwarded
// without it. After max_age it is moved aside, never deleted. A post the re-wrap
// cannot parse (not one whole S/MIME object, or naming none of the list's
// certificates) is moved aside at once: it is held, never forwarded as received.
// On a members-only list a post whose envelope sender and From address are both not enabled
// members is held for the owner in the spool's held/ directory, after the intake's 250, so the
// reply never tells who is a member; the owner gets one mail about it (rate-limited, without its
// content), may release or discard it (`blindlist-listd held`), and it is deleted after
// [spool] held_days. A released post skips the members-only check once. Mail to a list's owner
// alias (owner_alias.h) becomes a post to one recipient, the owner address, without List-* fields.
// Thread-safety: one IncomingProcessor per thread (the runner's).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "config.h"
#include "obs/metrics.h"
#include "per_member.h"
#include "spool/spool.h"
#include "store/list_store.h"

namespace blindlist::listd {

// Re-wraps the group RecipientInfo of a post to the group secret (path B or B').
class GroupSecretRewrap {
 public:
  virtual ~GroupSecretRewrap() = default;
  // Returns the DER of a KEKRecipientInfo carrying the same CEK.
  virtual Result<Bytes> Rewrap(const store::MailingList& list, ByteView recipient_info,
                               const std::string& post_id) = 0;
};

// Path B: ask groupd, authenticated (mTLS) as the list's registered exploder.
std::unique_ptr<GroupSecretRewrap> MakeGroupdRewrap(const GroupdConfig& config);
// Path B': the group key and secret from files in `dir` (LIST.key.pem, LIST.secret.json).
std::unique_ptr<GroupSecretRewrap> MakeLocalKeyRewrap(const std::string& dir);

// Applies the re-wrap to an RFC 5322 S/MIME message: the RecipientInfo naming one
// of `certificates` is replaced; nothing else in the CMS changes. "unparseable" when
// the post itself is at fault (permanent); any other error is the re-wrap's.
Result<std::string> ReplaceGroupRecipient(std::string_view message, const store::MailingList& list,
                                          GroupSecretRewrap& rewrap, const std::string& post_id);

// Calls `on_arrival` as soon as a queue file is renamed into the spool's incoming/ directory,
// by this process or by another one (pipe mode runs as its own process): the queue runner is
// woken at once instead of at its next tick. inotify(7); a thread of its own, stopped and
// joined by the destructor. `on_arrival` runs on that thread.
class IncomingWatch {
 public:
  // Error "inotify" when the directory cannot be watched (the runner then keeps its tick).
  static Result<std::unique_ptr<IncomingWatch>> Start(const std::string& incoming_dir,
                                                      std::function<void()> on_arrival);
  IncomingWatch(const IncomingWatch&) = delete;
  IncomingWatch& operator=(const IncomingWatch&) = delete;
  ~IncomingWatch();

 private:
  struct State;
  explicit IncomingWatch(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class IncomingProcessor {
 public:
  IncomingProcessor(const Config& config, store::ListStore* lists, spool::Spool* spool,
                    net::Metrics* metrics, GroupSecretRewrap* path_b,
                    GroupSecretRewrap* path_b_prime, MemberRewrap* per_member = nullptr);

  // Prepares every incoming post that is due, and deletes held posts older than held_days
  // (looked at once a minute). Returns the number still waiting.
  int RunOnce(std::int64_t now);

 private:
  void CountPickup(const std::string& id);
  Status Prepare(spool::IncomingPost& post);  // frees post.message once prepared
  Status PrepareOwnerMail(spool::IncomingPost& post, const store::MailingList& list);
  Result<bool> FromMember(const spool::IncomingPost& post, const store::MailingList& list);
  // Moves a post the re-wrap cannot use aside in the spool, with the reason.
  Status Hold(const spool::IncomingPost& post, const store::MailingList& list,
              const std::string& reason);
  // Moves a non-member's post to held/ and tells the owner.
  Status HoldForOwner(const spool::IncomingPost& post, const store::MailingList& list);
  void NotifyOwnerOfHeld(const spool::IncomingPost& post, const store::MailingList& list);
  void ExpireHeld(std::int64_t now);
  // Per-member reading: re-wraps for each enabled member and activates the post with one
  // RecipientInfo per recipient. Error: the post waits (groupd) or is held ("unparseable").
  Status PreparePerMember(spool::IncomingPost& post, const store::MailingList& list);
  // Tells the list's owner, by a notice queued like a post, that delivery-list members were
  // not on groupd's roster and got nothing.
  void NotifyOwnerNotCurrent(const spool::IncomingPost& post, const store::MailingList& list,
                             const std::vector<std::string>& not_current);

  const Config& config_;
  store::ListStore* lists_;
  spool::Spool* spool_;
  net::Metrics* metrics_;
  GroupSecretRewrap* path_b_;
  GroupSecretRewrap* path_b_prime_;
  MemberRewrap* per_member_;
  struct Backoff {
    int attempts = 0;
    std::int64_t next_at = 0;
  };
  std::map<std::string, Backoff> waiting_;  // post id -> when to try again
  std::int64_t now_ = 0;                    // of the current RunOnce
  std::int64_t next_held_scan_ = 0;
  struct NoticeWindow {
    std::int64_t hour = 0;  // now / 3600 of the window
    int sent = 0;
  };
  std::map<std::string, NoticeWindow> held_notices_;  // list address -> this hour's notices
  struct HeldTally {
    std::int64_t posts = 0;
    std::int64_t bytes = 0;
  };
  // What held/ holds per list: counted by ExpireHeld's scan, added to by HoldForOwner (a
  // release or discard by the command is seen at the next scan).
  std::map<std::string, HeldTally> held_tally_;
};

}  // namespace blindlist::listd
