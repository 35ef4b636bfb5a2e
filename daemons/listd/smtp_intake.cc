#include "smtp_intake.h"

#include <algorithm>

#include "list_headers.h"

namespace blindlist::listd {
namespace {

net::SmtpReply ToReply(const Verdict& v) { return net::SmtpReply{v.code, v.enhanced, v.text}; }

class SmtpIntake final : public net::SmtpHandler {
 public:
  SmtpIntake(PostAcceptor* acceptor, bool lmtp) : acceptor_(acceptor), lmtp_(lmtp) {}

  net::SmtpReply OnMailFrom(const net::SmtpEnvelope& /*envelope*/) override {
    return net::SmtpReply{250, "2.1.0", "sender ok"};
  }

  net::SmtpReply OnRcptTo(const net::SmtpEnvelope& envelope,
                          const std::string& recipient) override {
    const std::string rcpt = NormaliseAddress(recipient);
    if (!lmtp_ && !envelope.recipients.empty() &&
        NormaliseAddress(envelope.recipients.front()) != rcpt) {
      return net::SmtpReply{452, "4.5.3", "one list per transaction; send this one separately"};
    }
    return ToReply(acceptor_->CheckRecipient(rcpt));
  }

  std::vector<net::SmtpReply> OnData(const net::SmtpEnvelope& envelope,
                                     std::string message) override {
    std::vector<net::SmtpReply> replies;
    if (!lmtp_) {
      replies.push_back(ToReply(acceptor_->Accept(NormaliseAddress(envelope.recipients.front()),
                                                  envelope.mail_from, message)));
      return replies;
    }
    // LMTP: one reply per recipient; a list named twice is queued once.
    std::vector<std::pair<std::string, net::SmtpReply>> done;
    for (const std::string& r : envelope.recipients) {
      const std::string rcpt = NormaliseAddress(r);
      auto it =
          std::find_if(done.begin(), done.end(), [&](const auto& d) { return d.first == rcpt; });
      if (it != done.end()) {
        replies.push_back(it->second);
        continue;
      }
      net::SmtpReply reply = ToReply(acceptor_->Accept(rcpt, envelope.mail_from, message));
      done.emplace_back(rcpt, reply);
      replies.push_back(reply);
    }
    return replies;
  }

 private:
  PostAcceptor* acceptor_;
  bool lmtp_;
};

}  // namespace

std::shared_ptr<net::SmtpHandler> MakeSmtpIntake(PostAcceptor* acceptor, bool lmtp) {
  return std::make_shared<SmtpIntake>(acceptor, lmtp);
}

}  // namespace blindlist::listd
