// Registration of the blindlist subcommands. Each group of commands lives in
// its own file and adds itself to the app; a command's action returns a Status
// that main() turns into a one-line error and a non-zero exit.
#pragma once

#include <functional>

#include "blindlist/result.h"

namespace CLI {
class App;
}

namespace blindlist::cli {

using Action = std::function<Status()>;

// Sets `*chosen` to the action of the subcommand that the user picked.
void AddCryptoCommands(CLI::App& app, Action* chosen);

}  // namespace blindlist::cli
