// What both blindlist executables share: the command's title and version, and main()'s
// contract (usage errors: "blindlist: WHAT", exit 2; a failed action: "blindlist: WHAT", exit 1,
// or 75 for a temporary failure; anything thrown: one line, exit 1).
//
// `blindlist` itself runs encrypt, decrypt, rewrap, inspect and --version, linking only the
// crypto and S/MIME code; for every other command it executes the full command (every
// subcommand, with GMime, libpq and SQLite), installed beside it as kFullCommandPath says, with
// the same arguments. The user sees one command: same arguments, output and exit codes.
// Thread-safety: called from main() only.
#pragma once

#include "commands.h"

namespace blindlist::cli {

// Title, description, version flag and require_subcommand(1).
void ConfigureApp(CLI::App& app);

// Parses, runs the chosen action, and maps the result to the exit code.
int ParseAndRun(CLI::App& app, const Action& action, int argc, char** argv);

// Wraps `run` so that an escaping exception becomes one line and exit 1.
int GuardedMain(int (*run)(int, char**), int argc, char** argv);

}  // namespace blindlist::cli
