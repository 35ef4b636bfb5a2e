// RFC 3464 delivery status notifications: what listd reads from the bounces that come back to a
// list's bounce address, to mark members failed or delayed, and the one it writes when the
// smarthost refuses a post itself (a 5xx to DATA).
// Thread-safety: free functions, no shared state (GMime is initialised once, thread-safely).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "blindlist/result.h"

namespace blindlist::mime {

// One per-recipient group of the message/delivery-status part.
struct DsnRecipient {
  std::string final_recipient;  // address without its "rfc822;" type (and without <>)
  std::string action;      // lowercased: "failed", "delayed", "delivered", "relayed", "expanded"
  std::string status;      // e.g. "5.1.1" (empty if the MTA left it out)
  std::string diagnostic;  // Diagnostic-Code without its "smtp;" type, unfolded; may be empty
};

// Parses a multipart/report; report-type=delivery-status message with a message/delivery-status
// (or RFC 6533 message/global-delivery-status) part. Errors: "not-a-dsn" when the message is not
// a delivery status report (plain mail, a read receipt, not MIME at all), "malformed-dsn" when it
// says it is one but the status part is missing or a recipient group lacks Final-Recipient or a
// valid Action.
Result<std::vector<DsnRecipient>> ParseDsn(std::string_view message);

// A failure report for one message, to be sent from the null sender.
struct DsnFailure {
  std::string reporting_mta;     // our host name (Reporting-MTA: dns; ...)
  std::string from;              // the From: field, e.g. MAILER-DAEMON@host
  std::string to;                // who is told
  std::string final_recipient;   // the address the message was for (a list, not its members)
  std::string status;            // "5.6.0"; anything not X.Y.Z becomes "5.0.0"
  std::string remote_mta;        // the server that refused it (Remote-MTA: dns; ...), may be empty
  std::string diagnostic;        // its reply, e.g. "554 5.6.0 bare LF refused"
  std::string explanation;       // the human-readable first part
  std::string original_message;  // only its header section is returned (text/rfc822-headers)
  std::int64_t date = 0;         // unix seconds, for Date: and Arrival-Date:
};
// CRLF lines; every field is made a single line of printable ASCII, and at most 16 KB of the
// original header section is returned.
std::string MakeDsn(const DsnFailure& failure);

}  // namespace blindlist::mime
