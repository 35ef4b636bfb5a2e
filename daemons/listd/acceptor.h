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
#include "net/metrics.h"
#include "spool/spool.h"
#include "store/list_store.h"

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

  // RCPT TO: a list address, a list's bounce address or LIST-request@. 550 5.1.1 otherwise.
  Verdict CheckRecipient(const std::string& recipient);
  // The message for one recipient (a list, or a list's bounce address).
  Verdict Accept(const std::string& recipient, const std::string& sender, std::string_view message);

 private:
  Verdict AcceptPost(const store::MailingList& list, const std::string& sender,
                     std::string_view message);
  Verdict AcceptBounce(const store::MailingList& list, std::string_view message);
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
};

}  // namespace blindlist::listd
