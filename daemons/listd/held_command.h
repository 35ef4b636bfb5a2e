// `blindlist-listd --config FILE held list|release ID|discard ID`: the operator's hand on posts a
// members-only list holds for its owner (spool.h, held/). Runs beside the daemon, as pipe mode
// does: it opens the spool as a guest and moves files with renames the daemon tolerates.
// Thread-safety: one call per process.
#pragma once

#include <string>

#include "config.h"

namespace blindlist::listd {

// Prints to stdout (the list, or what was done) and returns an exit code: 0 done, 1 no such held
// post or a spool error, 2 a bad action or id.
int RunHeldCommand(const Config& config, const std::string& action, const std::string& id,
                   bool json);

}  // namespace blindlist::listd
