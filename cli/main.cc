// blindlist: the one command for senders, members and administrators.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "blindlist: confidential mailing lists whose list server cannot read the mail.\n"
      "Reads standard input and writes standard output unless -i/-o are given."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "blindlist 0.1.0");
  blindlist::cli::Action action;
  blindlist::cli::AddCryptoCommands(app, &action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  blindlist::Status status = action ? action() : blindlist::Status::Ok();
  if (!status.ok()) {
    std::fprintf(stderr, "blindlist: %s\n", status.error().message.c_str());
    return 1;
  }
  return 0;
}
