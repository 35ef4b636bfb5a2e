#include "app.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "blindlist/error_codes.h"

namespace blindlist::cli {

void ConfigureApp(CLI::App& app) {
  app.description(
      "blindlist: confidential mailing lists whose list server cannot read the mail.\n"
      "Reads standard input and writes standard output unless -i/-o are given.");
  app.require_subcommand(1);
  app.set_version_flag("--version", "blindlist 0.1.0");
}

int ParseAndRun(CLI::App& app, const Action& action, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // Usage errors keep the one-line contract: "blindlist: WHAT", exit 2.
    std::string what = e.what();
    if (argc >= 2 && argv[1][0] != '-' && app.get_subcommands().empty()) {
      what = std::string("unknown command \"") + argv[1] + "\" (try blindlist --help)";
    } else if (what.empty() ||
               (e.get_name() == "RequiredError" && what.find("subcommand") != std::string::npos)) {
      what =
          "a subcommand is required: encrypt, decrypt, rewrap, inspect, admin, open, cert, list, "
          "post (try blindlist --help)";
    }
    std::fprintf(stderr, "blindlist: %s\n", what.c_str());
    return 2;
  }
  Status status = action ? action() : Status::Ok();
  if (!status.ok()) {
    std::fprintf(stderr, "blindlist: %s\n", status.error().message.c_str());
    // EX_TEMPFAIL, so a mail system running blindlist as a filter tries again later.
    return status.error().code == errc::kTempFail ? 75 : 1;
  }
  return 0;
}

int GuardedMain(int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    // Nothing is expected to throw this far; if something does, fail with one line.
    std::fprintf(stderr, "blindlist: internal error: %s\n", e.what());
    return 1;
  }
}

}  // namespace blindlist::cli
