// `blindlist open --maildir DIR --reopen`: the posts a delivery filter passed through unread
// (groupd was down, say) are found in a Maildir and opened in place. Maildir files are
// immutable to their readers (Dovecot and IMAP clients cache a message by its file name), so
// an opened post gets a new unique name: written to tmp/ and synced, renamed into the
// original's folder with its flags, the folder synced, and only then the original removed.
// A crash in between leaves both (a duplicate, never a loss); any failure leaves the original.
// Thread-safety: none needed (one run of the command).
#pragma once

#include <functional>
#include <string>

#include "blindlist/result.h"

namespace blindlist::cli {

struct ReopenCounts {
  int opened = 0;   // replaced by the opened post
  int failed = 0;   // still encrypted: opening failed, the original kept
  int skipped = 0;  // not a post of this list, or already readable
};

// For each file in DIR/new and DIR/cur whose message `is_candidate` accepts, `open_into`
// writes the opened message to the path it is given (durably, or not at all) and returns
// its status. Errors only for DIR itself (not a Maildir, unreadable).
Result<ReopenCounts> ReopenMaildir(
    const std::string& dir, const std::function<bool(const std::string& message)>& is_candidate,
    const std::function<Status(const std::string& message, const std::string& out_path)>&
        open_into);

}  // namespace blindlist::cli
