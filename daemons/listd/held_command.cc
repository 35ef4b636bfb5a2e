#include "held_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "blindlist/error_codes.h"
#include "obs/log.h"
#include "spool/spool.h"

namespace blindlist::listd {
namespace {

std::string AgeText(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds >= 86400) return std::to_string(seconds / 86400) + "d";
  if (seconds >= 3600) return std::to_string(seconds / 3600) + "h";
  if (seconds >= 60) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

int PrintError(const Error& e) {
  std::fprintf(stderr, "blindlist-listd: %s: %s\n", e.code.c_str(), e.message.c_str());
  return e.code == errc::kSpoolInvalidId ? 2 : 1;
}

int List(spool::Spool& spool, std::int64_t now, bool json) {
  auto held = spool.ListHeld();
  if (!held.ok()) return PrintError(held.error());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const spool::HeldPost& h : *held) {
      out.push_back({{"id", h.id},
                     {"list", h.list},
                     {"sender", h.sender},
                     {"age_seconds", now - h.received_at},
                     {"size", h.size}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-27s %-30s %-30s %6s %10s\n", "ID", "LIST", "SENDER", "AGE", "SIZE");
  for (const spool::HeldPost& h : *held) {
    std::printf("%-27s %-30s %-30s %6s %10llu\n", h.id.c_str(), h.list.c_str(),
                h.sender.empty() ? "<>" : h.sender.c_str(), AgeText(now - h.received_at).c_str(),
                static_cast<unsigned long long>(h.size));
  }
  return 0;
}

// release and discard write into the spool: a file root made there is one listd (its own user)
// cannot read or remove, so the post would stick. Refuse to write as anyone but the spool's
// owner, and say how to run it.
int RefuseForeignWriter(const std::string& spool_dir) {
  struct stat st {};
  if (::stat(spool_dir.c_str(), &st) != 0 || st.st_uid == ::geteuid()) return 0;
  std::fprintf(stderr,
               "blindlist-listd: held: %s belongs to uid %u, not to this user (uid %u): run it as "
               "listd's user, e.g. runuser -u blindlist-listd -- blindlist-listd ...\n",
               spool_dir.c_str(), static_cast<unsigned>(st.st_uid),
               static_cast<unsigned>(::geteuid()));
  return 1;
}

}  // namespace

int RunHeldCommand(const Config& config, const std::string& action, const std::string& id,
                   bool json) {
  auto spool =
      spool::Spool::Open(config.spool_dir, spool::Env::Default(), spool::Spool::Role::kGuest);
  if (!spool.ok()) return PrintError(spool.error());
  const std::int64_t now = std::time(nullptr);
  if (action == "list") return List(**spool, now, json);
  if (action != "release" && action != "discard") {
    std::fprintf(stderr, "blindlist-listd: held: unknown action '%s'\n", action.c_str());
    return 2;
  }
  if (int refused = RefuseForeignWriter(config.spool_dir); refused != 0) return refused;
  std::string list;
  std::string sender;
  if (auto held = (*spool)->ListHeld(); held.ok()) {
    for (const spool::HeldPost& h : *held) {
      if (h.id == id) {
        list = h.list;
        sender = h.sender;
      }
    }
  }
  Status st = action == "release" ? (*spool)->Release(id, now) : (*spool)->Discard(id);
  if (!st.ok()) return PrintError(st.error());
  net::Log(net::LogLevel::kInfo,
           action == "release" ? "held post released by the operator: delivered as from a member"
                               : "held post discarded by the operator",
           {{"id", id}, {"list", list}, {"sender", sender}});
  std::printf("%s %s\n", action == "release" ? "released" : "discarded", id.c_str());
  return 0;
}

}  // namespace blindlist::listd
