// Fan-out of prepared posts: to a smarthost over SMTP, or to one Maildir per member, on up to
// [delivery] connections worker threads (one smarthost connection each), so one slow post or
// transaction holds up only its own worker. Envelope senders are VERP (verp.h): one XVERP
// transaction per batch when the smarthost offers it, else one transaction per member, or
// plain batches when VERP is off. Per recipient: 2xx crossed off, 4xx retried with exponential
// backoff until max_age; a 5xx to RCPT is that member's bounce (scored by the list store's
// rules); a 5xx to DATA or after the body is a refusal of the message: nobody's score changes
// and the post's sender (or the list owner) gets a DSN with the reply's codes and a fixed text
// (the remote text, which may name a member, goes to the log and to the owner only). A post
// whose copies expire (4xx until max_age) gets one DSN when it leaves the queue: to its sender
// when the message itself was deferred, to the owner when only members' RCPTs were. Each batch's
// results are written to the queue file when it ends and synced every few batches, so a crash
// repeats at most those batches (duplicates, never a loss). The workers also send the probes and
// owner notices the list store has waiting. Thread-safety: RunOnce from one thread (the runner's);
// the workers are internal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "mime/dsn.h"
#include "net/smtp_client.h"
#include "obs/metrics.h"
#include "spool/spool.h"
#include "store/list_store.h"

namespace blindlist::listd {

// Writes `message` into ROOT/ADDRESS/new (tmp, fsync, rename, fsync dir).
Status DeliverToMaildir(const std::string& root, const std::string& address,
                        std::string_view message);

class VerpSigner;

class Deliverer {
 public:
  // `verp` may be null only when [delivery] verp is "off". `wake` is called when a worker
  // finishes a post, so the runner looks again soon.
  Deliverer(const Config& config, store::ListStore* lists, spool::Spool* spool,
            net::Metrics* metrics, const VerpSigner* verp, std::function<void()> wake);
  // Lets the workers finish their current transactions, then joins them.
  ~Deliverer();
  Deliverer(const Deliverer&) = delete;
  Deliverer& operator=(const Deliverer&) = delete;

  // Hands what is due in every active post (and waiting probes and owner notices) to the
  // workers. Returns the earliest time something else becomes due (0: nothing waiting).
  std::int64_t RunOnce(std::int64_t now);

  struct PostWork;
  struct Job;
  class Worker;

 private:
  void Enqueue(std::shared_ptr<Job> job);
  void WorkerLoop();
  void RunPostJob(Job& job, Worker& worker);
  // Per-member posts: one transaction per member, each with that member's own copy.
  void SendPerMember(
      Job& job, Worker& worker,
      const std::function<void(std::size_t, const net::SmtpRecipientResult&)>& settle);
  void FinishPost(PostWork& work);
  void QueueBounceNotices(std::int64_t now);
  void SendProbe(const store::BounceNotice& notice, Worker& worker);
  void SendOwnerNotice(const store::BounceNotice& notice, Worker& worker);
  void SendMessageFailure(PostWork& work, const net::SmtpRecipientResult& reply, Worker& worker);
  // What the expiry report of a post needs, gathered as its copies expire.
  struct ExpiryNote {
    bool message = false;            // some copy expired on a reply about the message itself
    net::SmtpRecipientResult reply;  // the last reply before expiry
  };
  Status QueueExpiryReport(const PostWork& work, const ExpiryNote& note, std::size_t expired);
  void Settle(PostWork& work, std::size_t index, const net::SmtpRecipientResult& reply,
              std::vector<std::pair<std::size_t, spool::RecipientEntry>>& updates);
  std::int64_t Backoff(int attempts) const;

  const Config& config_;
  store::ListStore* lists_;
  spool::Spool* spool_;
  net::Metrics* metrics_;
  const VerpSigner* verp_;
  std::function<void()> wake_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::set<std::string> in_flight_;               // posts and notices handed to workers
  std::map<std::string, std::int64_t> next_due_;  // post id -> earliest pending retry
  std::map<std::string, ExpiryNote> expiries_;    // post id -> why its copies expired
  std::int64_t next_notice_scan_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace blindlist::listd
