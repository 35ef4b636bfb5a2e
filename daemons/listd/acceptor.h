// What listd takes in, and its answer, for one (list, message) pair: the
// checks of the posting rules and the durable hand-off to the spool. Shared by
// the SMTP and LMTP listeners and by the pipe(8) mode, so every entrance gives
// the same answer. It never needs a key: it only reads which certificates a
// post's RecipientInfos name.
// Thread-safety: Accept and CheckRecipient may be called from many threads.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config.h"
#include "obs/metrics.h"
#include "spool/spool.h"
#include "store/list_store.h"
#include "verp.h"

namespace blindlist::listd {

struct Verdict {
  int code = 250;
  std::string enhanced = "2.0.0";
  std::string text;
  bool ok() const { return code / 100 == 2; }
};

// sysexits(3) for pipe mode, each a permanent refusal except 75: 0 queued, 67 unknown list,
// 77 refused by the list's policy (5.7.x: plaintext, not a member, not its key, CBC on a list
// that requires AEAD), 65 refused data (5.6.0: not one S/MIME object, 5.3.4 too large),
// 75 try later.
int SysexitOf(const Verdict& v);

// 553 5.1.7 for an envelope sender no queue file may hold (CR, LF, NUL or another control
// character, or longer than the spool allows), or that listd could never send to or from again
// (not an RFC 5321 mailbox, or a '<' or '>' even inside quotes); 250 otherwise. "" is the null
// sender.
Verdict CheckSender(std::string_view sender);

// pipe(8) passes the null sender as "MAILER-DAEMON" (its null_sender default): "" for that,
// the sender otherwise.
std::string PipeSender(const std::string& sender);

class PostAcceptor {
 public:
  PostAcceptor(const Config& config, store::ListStore* lists, spool::Spool* spool,
               net::Metrics* metrics, std::function<void()> on_queued);

  // The VERP key that checks the tags of bounce reports (verp.h). Without it (or with
  // [delivery] verp = "off") reports are logged and never scored. Set before serving.
  void set_verp(const VerpSigner* verp) { verp_ = verp; }

  // RCPT TO: a list address, a list's bounce address, or its bounce address with a +TAG
  // (accepted whatever the tag: it is checked, with the same answer, only once the report is
  // in), LIST-request@, or a list's owner alias LIST-owner@ when the list sets an owner
  // address (owner_alias.h). Local parts compare without case. 550 5.1.1 otherwise.
  Verdict CheckRecipient(const std::string& recipient);
  // The message for one recipient (a list, or a list's bounce address).
  Verdict Accept(const std::string& recipient, const std::string& sender, std::string_view message);

 private:
  Verdict AcceptPost(const store::MailingList& list, const std::string& sender,
                     std::string_view message);
  Verdict AcceptOwnerMail(const store::MailingList& list, const std::string& alias,
                          const std::string& sender, std::string_view message);
  Verdict OwnerRoute(const store::MailingList& list, const std::string& alias);
  // Into the spool, durably; 250 with the queue id, or 4xx.
  Verdict Queue(const std::string& spool_list, const std::string& sender, std::string_view message,
                const char* what);
  // The list whose bounce address `recipient` is, bare or with a +TAG; the tag in `tag`.
  Result<std::optional<store::MailingList>> BounceList(const std::string& recipient,
                                                       std::string* tag);
  Verdict AcceptBounce(const store::MailingList& list, const std::string& tag,
                       std::string_view message);
  // What a verified tag scores; every refusal is only logged (the reply is always the same).
  Status ScoreReport(const store::MailingList& list, const VerpTag& tag, std::string_view reason);
  // LIST-request@: 250, and an automatic answer saying whom to ask (request_reply.h).
  Verdict AcceptRequest(const store::MailingList& list, const std::string& sender,
                        std::string_view message);
  Verdict Count(const std::string& what, Verdict v);
  std::optional<Result<store::MailingList>> RequestList(const std::string& recipient);

  const Config& config_;
  store::ListStore* lists_;
  spool::Spool* spool_;
  net::Metrics* metrics_;
  std::function<void()> on_queued_;
  const VerpSigner* verp_ = nullptr;
};

}  // namespace blindlist::listd
