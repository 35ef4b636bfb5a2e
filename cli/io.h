// Standard input/output for blindlist commands: whole-input reads, and
// all-or-nothing writes (an -o file appears only once complete, mode 0600).
#pragma once

#include <string>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::cli {

// Reads all of FILE, or standard input when path is empty or "-". Refuses more than `limit` bytes.
Result<std::string> ReadInput(const std::string& path, std::size_t limit = std::size_t{1} << 30);
// Writes to FILE (through a temporary file renamed into place) or standard output.
Status WriteOutput(const std::string& path, std::string_view data);

}  // namespace blindlist::cli
