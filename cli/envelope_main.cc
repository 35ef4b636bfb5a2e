// blindlist, as users run it. The envelope commands (encrypt, decrypt, rewrap, inspect) and
// --version run here, in a process that loads only libcrypto and the C++ runtime: a sender's
// cost is the encryption, not the start-up of GMime's, libpq's and SQLite's library stacks.
// Every other command line (administration, open, post, list, cert, --help, usage errors) is
// handed unchanged to the full command by execv, so the user sees one command: the same
// arguments, --help text, output and exit codes (app.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "app.h"
#include "commands.h"
#include "crypto/init.h"

#ifndef BLINDLIST_FULL_COMMAND
#error "BLINDLIST_FULL_COMMAND: the full command's path relative to this executable's directory"
#endif

namespace {

bool IsEnvelopeCommandLine(int argc, char** argv) {
  if (argc < 2) return false;
  const std::string_view first = argv[1];
  if (argc == 2 && first == "--version") return true;
  return first == "encrypt" || first == "decrypt" || first == "rewrap" || first == "inspect";
}

// Beside this executable, wherever it is installed or built: found through /proc/self/exe, not
// PATH, so the pair cannot be split by the environment.
std::string FullCommandPath() {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return {};
  const std::string_view path(self, static_cast<std::size_t>(n));
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {};
  return std::string(path.substr(0, slash + 1)) + BLINDLIST_FULL_COMMAND;
}

int ExecFullCommand(char** argv) {
  const std::string full = FullCommandPath();
  if (!full.empty()) ::execv(full.c_str(), argv);
  std::fprintf(stderr, "blindlist: cannot run %s: %s\n",
               full.empty() ? "the full blindlist command" : full.c_str(), std::strerror(errno));
  return 1;
}

int Run(int argc, char** argv) {
  if (!IsEnvelopeCommandLine(argc, argv)) return ExecFullCommand(argv);
  blindlist::crypto::InitForCommandLine();
  CLI::App app;
  blindlist::cli::ConfigureApp(app);
  blindlist::cli::Action action;
  blindlist::cli::AddCryptoCommands(app, &action);
  return blindlist::cli::ParseAndRun(app, action, argc, argv);
}

}  // namespace

int main(int argc, char** argv) { return blindlist::cli::GuardedMain(Run, argc, argv); }
