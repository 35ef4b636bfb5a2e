// Opening many posts of a threshold group at once (docs/threshold.md, "Archives"): every post of
// some files, mbox files and Maildirs, asking each node once per chunk of posts through
// `POST /v1/groups/{group}/threshold/bulk`; and the node list from a file.
// Thread-safety: free functions; no shared state.
#pragma once

#include <string>
#include <vector>

#include "blindlist/result.h"
#include "threshold_open.h"

namespace blindlist::cli {

// The posts of `paths`: a Maildir (its new/ and cur/), a directory (its files), an mbox (a file
// whose first line starts "From "; mboxrd quoting undone) or one message per file. Each post is
// opened into `out_dir`/NNNN.eml (numbered from 1 in that order); a post that cannot be opened
// is named on standard error, and the error says how many failed.
Status OpenThresholdArchive(const ThresholdRead& t, const std::vector<std::string>& paths,
                            const std::string& out_dir);

// The nodes of a threshold group from a file: one URL per line; blank lines and lines starting
// with '#' are skipped; surrounding blanks are ignored. Errors: "usage" (unreadable, empty, or a
// line that is not an https:// URL).
Result<std::vector<std::string>> ReadNodesFile(const std::string& path);

}  // namespace blindlist::cli
