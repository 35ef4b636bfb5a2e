#include "roster_sync.h"

#include <nlohmann/json.hpp>

#include "obs/log.h"

namespace blindlist::listd {
namespace {

constexpr std::size_t kLoggedAddresses = 20;

class GroupdRosterSource final : public RosterSource {
 public:
  explicit GroupdRosterSource(const GroupdConfig& config) : creds_(config.Credentials()) {}

  Result<std::vector<std::string>> Fetch(const std::string& group) override {
    if (creds_.server.empty())
      return MakeError("not-configured", "roster sync needs [groupd] url in listd's configuration");
    if (creds_.client_cert_file.empty()) {
      return MakeError("not-configured",
                       "roster sync needs [groupd] client_certificate and client_key (the "
                       "exploder identity registered with groupd)");
    }
    api::ApiClient client(creds_);
    BL_TRY_ASSIGN(
        nlohmann::json reply,
        client.Call("GET", "/v1/groups/" + api::ApiClient::Segment(group) + "/roster", nullptr));
    auto members = reply.find("members");
    if (!reply.is_object() || members == reply.end() || !members->is_array())
      return MakeError("bad-reply", "groupd's roster reply has no \"members\" array");
    std::vector<std::string> out;
    out.reserve(members->size());
    for (const auto& m : *members) {
      if (!m.is_string()) return MakeError("bad-reply", "groupd's roster holds a non-string");
      out.push_back(m.get<std::string>());
    }
    return out;
  }

 private:
  api::ApiCredentials creds_;
};

std::string Joined(const std::vector<std::string>& addresses) {
  std::string out;
  for (std::size_t i = 0; i < addresses.size() && i < kLoggedAddresses; ++i)
    out += (i == 0 ? "" : ",") + addresses[i];
  if (addresses.size() > kLoggedAddresses)
    out += ",... (" + std::to_string(addresses.size() - kLoggedAddresses) + " more)";
  return out;
}

}  // namespace

std::unique_ptr<RosterSource> MakeGroupdRosterSource(const GroupdConfig& config) {
  return std::make_unique<GroupdRosterSource>(config);
}

Result<store::RosterChange> SyncRoster(store::ListStore& lists, const store::MailingList& list,
                                       RosterSource& source, net::Metrics* metrics) {
  const auto count = [metrics](const char* result) {
    if (metrics != nullptr) metrics->Increment("listd_roster_sync_total", {{"result", result}});
  };
  if (list.roster != "groupd") {
    return MakeError("usage", list.address +
                                  " keeps its delivery list by hand (roster = manual); set "
                                  "`blindlist list set " +
                                  list.address + " --roster groupd` first");
  }
  auto roster = source.Fetch(list.group);
  if (!roster.ok()) {
    count("error");
    net::Log(net::LogLevel::kWarning, "roster sync failed; delivery list unchanged",
             {{"list", list.address}, {"group", list.group}, {"error", roster.error().message}});
    return roster.error();
  }
  auto change = lists.ReplaceMembers(list.id, *roster);
  if (!change.ok()) {
    count("error");
    net::Log(net::LogLevel::kWarning, "roster sync failed; delivery list unchanged",
             {{"list", list.address}, {"error", change.error().message}});
    return change.error();
  }
  count("ok");
  if (metrics != nullptr) {
    metrics->Increment("listd_roster_changes_total", {{"change", "added"}},
                       static_cast<double>(change->added.size()));
    metrics->Increment("listd_roster_changes_total", {{"change", "removed"}},
                       static_cast<double>(change->removed.size()));
  }
  const bool changed = !change->added.empty() || !change->removed.empty();
  net::Log(changed ? net::LogLevel::kInfo : net::LogLevel::kDebug, "roster synced",
           {{"list", list.address},
            {"group", list.group},
            {"added", std::to_string(change->added.size())},
            {"removed", std::to_string(change->removed.size())},
            {"unchanged", std::to_string(change->unchanged)},
            {"added_addresses", Joined(change->added)},
            {"removed_addresses", Joined(change->removed)}});
  if (!change->skipped.empty()) {
    net::Log(net::LogLevel::kWarning, "roster sync skipped addresses that cannot be delivered to",
             {{"list", list.address}, {"skipped", Joined(change->skipped)}});
  }
  return change;
}

int SyncAllRosters(store::ListStore& lists, RosterSource& source, net::Metrics* metrics) {
  auto all = lists.ListLists();
  if (!all.ok()) {
    net::Log(net::LogLevel::kWarning, "roster sync: cannot list the lists",
             {{"error", all.error().message}});
    return 1;
  }
  int failures = 0;
  for (const auto& list : *all) {
    if (list.roster != "groupd") continue;
    if (!SyncRoster(lists, list, source, metrics).ok()) ++failures;
  }
  return failures;
}

RosterSyncLoop::RosterSyncLoop(store::ListStore* lists, std::unique_ptr<RosterSource> source,
                               std::chrono::seconds interval, net::Metrics* metrics)
    : thread_([this, lists, source = std::move(source), interval, metrics] {
        std::unique_lock<std::mutex> lock(mu_);
        while (!stop_) {
          lock.unlock();
          try {
            SyncAllRosters(*lists, *source, metrics);
          } catch (const std::exception& e) {
            net::Log(net::LogLevel::kError, "roster sync error", {{"error", e.what()}});
          }
          lock.lock();
          cv_.wait_for(lock, interval, [this] { return stop_; });
        }
      }) {}

RosterSyncLoop::~RosterSyncLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::unique_ptr<RosterSyncLoop> StartRosterSync(const GroupdConfig& config, store::ListStore* lists,
                                                net::Metrics* metrics) {
  if (config.roster_sync_seconds <= 0 || config.url.empty()) return nullptr;
  return std::make_unique<RosterSyncLoop>(lists, MakeGroupdRosterSource(config),
                                          std::chrono::seconds(config.roster_sync_seconds),
                                          metrics);
}

}  // namespace blindlist::listd
