// What listd takes in, and its answer, for one (list, message) pair: the
// checks of the posting rules and the durable hand-off to the spool. Shared by
// the SMTP and LMTP listeners and by the pipe(8) mode, so every entrance gives
// the same answer. It never needs a key: it only reads which certificates a
// post's RecipientInfos name.
// Thread-safety: Accept and CheckRecipient may be called from many threads.
#pragma once

#include <functional>
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

class PostAcceptor {
 public:
  PostAcceptor(const Config& config, store::ListStore* lists, spool::Spool* spool,
               net::Metrics* metrics, std::function<void()> on_queued);

  // The VERP key that checks the tags of bounce reports (verp.h). Without it (or with
  // [delivery] verp = "off") reports are logged and never scored. Set before serving.
  void set_verp(const VerpSigner* verp) { verp_ = verp; }

  // RCPT TO: a list address, a list's bounce address, or its bounce address with a +TAG
  // (accepted whatever the tag: it is checked, with the same answer, only once the report is
  // in). 550 5.1.1 otherwise.
  Verdict CheckRecipient(const std::string& recipient);
  // The message for one recipient (a list, or a list's bounce address).
  Verdict Accept(const std::string& recipient, const std::string& sender, std::string_view message);

 private:
  Verdict AcceptPost(const store::MailingList& list, const std::string& sender,
                     std::string_view message);
  // The list whose bounce address `recipient` is, bare or with a +TAG; the tag in `tag`.
  Result<std::optional<store::MailingList>> BounceList(const std::string& recipient,
                                                       std::string* tag);
  Verdict AcceptBounce(const store::MailingList& list, const std::string& tag,
                       std::string_view message);
  // What a verified tag scores; every refusal is only logged (the reply is always the same).
  Status ScoreReport(const store::MailingList& list, const VerpTag& tag, std::string_view reason);
  Verdict Count(const std::string& what, Verdict v);

  const Config& config_;
  store::ListStore* lists_;
  spool::Spool* spool_;
  net::Metrics* metrics_;
  std::function<void()> on_queued_;
  const VerpSigner* verp_ = nullptr;
};

}  // namespace blindlist::listd
