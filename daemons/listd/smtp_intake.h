// The SMTP and LMTP listeners' view of listd: each RCPT and each message is
// answered by the PostAcceptor. In SMTP one transaction carries one list (a
// second list gets 452 4.5.3 and the client sends it separately), because a
// single reply to DATA cannot say "queued for one list, refused for another";
// LMTP answers per recipient.
// Thread-safety: as PostAcceptor.
#pragma once

#include <memory>

#include "acceptor.h"
#include "net/smtp_server.h"

namespace blindlist::listd {

std::shared_ptr<net::SmtpHandler> MakeSmtpIntake(PostAcceptor* acceptor, bool lmtp);

}  // namespace blindlist::listd
