// Registration of the blindlist subcommands. Each group of commands lives in
// its own file and adds itself to the app; a command's action returns a Status
// that main() turns into a one-line error and a non-zero exit.
#pragma once

#include <functional>
#include <string>

#include "blindlist/result.h"

namespace CLI {
class App;
}

namespace blindlist::cli {

using Action = std::function<Status()>;

// -i/--in and -o/--out, shared by every command that reads a message.
struct IoOptions {
  std::string in;
  std::string out;
};
void AddIo(CLI::App* cmd, IoOptions& io);

// Each sets `*chosen` to the action of the subcommand that the user picked.
void AddCryptoCommands(CLI::App& app, Action* chosen);  // encrypt, decrypt, rewrap, inspect
void AddAdminCommands(CLI::App& app, Action* chosen);   // admin ...
void AddOpenCommand(CLI::App& app, Action* chosen);     // open
void AddCertCommand(CLI::App& app, Action* chosen);     // cert request
void AddListCommands(CLI::App& app, Action* chosen);    // list ... (listd's database)
void AddPostCommand(CLI::App& app, Action* chosen);     // post

}  // namespace blindlist::cli
