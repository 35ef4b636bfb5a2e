#include "api/daemon.h"

#include <pthread.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>

namespace blindlist::api {

Result<SecretBytes> LoadMasterKey(const std::string& file) {
  std::string hex;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return MakeError("bad-config", "cannot read the master key file " + file);
    std::getline(in, hex);
  } else if (const char* env = std::getenv("BLINDLIST_MASTER_KEY"); env != nullptr) {
    hex = env;
    ::unsetenv("BLINDLIST_MASTER_KEY");
  } else {
    return MakeError("bad-config",
                     "no master key: set [keys] master_key_file or BLINDLIST_MASTER_KEY");
  }
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' '))
    hex.pop_back();
  SecretBytes key;
  bool ok = FromHex(hex, key) && key.size() == 32;
  std::fill(hex.begin(), hex.end(), '\0');
  if (!ok) return MakeError("bad-config", "the master key must be 64 hex digits (32 bytes)");
  return key;
}

Status CheckSecretFileModes(std::initializer_list<std::string_view> paths) {
  for (std::string_view path : paths) {
    if (path.empty()) continue;
    const std::string file(path);
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) continue;  // the loader reports a missing file
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return MakeError("bad-config", file + " is readable or writable by group or others (mode " +
                                         mode + "); make it 0600 (chmod 600)");
    }
  }
  return Status::Ok();
}

int Fatal(const std::string& daemon, const Error& error) {
  net::Log(net::LogLevel::kError, error.message, {{"code", error.code}});
  std::fprintf(stderr, "%s: %s\n", daemon.c_str(), error.message.c_str());
  return 1;
}

int RunMain(const char* daemon, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", daemon, e.what());
    return 1;
  }
}

Status WritePortFile(const std::string& path, std::uint16_t port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return MakeError("io", "cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return MakeError("io", "cannot rename into " + path);
  return Status::Ok();
}

net::LogLevel ParseLogLevel(const std::string& s) {
  if (s == "debug") return net::LogLevel::kDebug;
  if (s == "warning") return net::LogLevel::kWarning;
  if (s == "error") return net::LogLevel::kError;
  return net::LogLevel::kInfo;
}

namespace {
sigset_t ServerSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  return signals;
}
}  // namespace

void BlockServerSignals() {
  sigset_t signals = ServerSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void WaitForTermination(const std::function<void()>& on_reload) {
  sigset_t signals = ServerSignals();
  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      on_reload();
      continue;
    }
    net::Log(net::LogLevel::kInfo, "draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    return;
  }
}

void ServeUntilTerminated(net::HttpsServer& server, const std::function<void()>& on_reload) {
  WaitForTermination(on_reload);
  server.Stop();
  net::Log(net::LogLevel::kInfo, "stopped");
}

Status StartServer(net::HttpsServer& server, const net::HttpsServerConfig& config,
                   const std::string& port_file, const std::string& store_backend) {
  BL_TRY(server.Start());
  if (!port_file.empty()) BL_TRY(WritePortFile(port_file, server.port()));
  net::Log(net::LogLevel::kInfo, "listening",
           {{"address", config.listen_address},
            {"port", std::to_string(server.port())},
            {"store", store_backend}});
  return Status::Ok();
}

}  // namespace blindlist::api
