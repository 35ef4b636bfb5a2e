// blindlist: the one command for senders, members and administrators. This is the full command,
// every subcommand; the `blindlist` users run executes it for all but the envelope commands
// (app.h, envelope_main.cc).
#include <CLI/CLI.hpp>

#include "app.h"
#include "commands.h"

namespace {

int Run(int argc, char** argv) {
  CLI::App app;
  blindlist::cli::ConfigureApp(app);
  blindlist::cli::Action action;
  blindlist::cli::AddCryptoCommands(app, &action);
  blindlist::cli::AddAdminCommands(app, &action);
  blindlist::cli::AddOpenCommand(app, &action);
  blindlist::cli::AddCertCommand(app, &action);
  blindlist::cli::AddListCommands(app, &action);
  blindlist::cli::AddPostCommand(app, &action);
  return blindlist::cli::ParseAndRun(app, action, argc, argv);
}

}  // namespace

int main(int argc, char** argv) { return blindlist::cli::GuardedMain(Run, argc, argv); }
