// RFC 3464 delivery status notifications: what listd reads from the bounces that come back to a
// list's bounce address, to mark members failed or delayed.
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

}  // namespace blindlist::mime
