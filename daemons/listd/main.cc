// blindlist-listd: the exploder.
//
// SECURITY. listd receives encrypted posts for its lists and forwards them to
// the members in its own database. It holds no group private key and no group
// secret, so it cannot read what it forwards; its list database is not the
// roster, so nothing it writes makes anyone a member. It trusts its
// configuration, its spool directory and its list database. For path B it
// authenticates to groupd as the list's registered exploder and gets back only a
// RecipientInfo. It answers 250 only once a post is on disk (file and directory
// fsynced) and crosses members off as they are delivered: a crash repeats a
// delivery at most, never loses one. It refuses, at every entrance and for any
// size, a post that claims S/MIME but is not one whole S/MIME object (one
// application/pkcs7-mime entity whose whole body is exactly one EnvelopedData or
// AuthEnvelopedData naming the list), and plaintext on lists that want S/MIME.
// Path B' (listd holding group keys) breaks the trust split and needs an
// explicit [unsafe] setting, logged at every start.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "acceptor.h"
#include "api/daemon.h"
#include "api/metrics_access.h"
#include "config.h"
#include "delivery.h"
#include "held_command.h"
#include "incoming.h"
#include "list_headers.h"
#include "monitoring.h"
#include "net/https_server.h"
#include "net/smtp_server.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "owner_alias.h"
#include "request_reply.h"
#include "roster_sync.h"
#include "smtp_intake.h"
#include "spool/spool.h"
#include "store/list_store.h"
#include "verp.h"

namespace {
using namespace blindlist;  // NOLINT(google-build-using-namespace)

int Fatal(const Error& e) { return api::Fatal("blindlist-listd", e); }

// Wakes the queue runner early when a post was queued.
class RunnerSignal {
 public:
  void Notify() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
  }
  // Returns false once stopped.
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return pending_ || stop_; });
    pending_ = false;
    return !stop_;
  }
  bool stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
  bool stop_ = false;
};

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

int RunPipe(const listd::Config& config, const std::string& list, const std::string& pipe_sender) {
  const std::string sender = listd::PipeSender(pipe_sender);
  // A sender no queue file can hold is permanent, whatever else is wrong (65, EX_DATAERR).
  if (listd::Verdict bad = listd::CheckSender(sender); !bad.ok()) {
    std::fprintf(stderr, "blindlist-listd: %d %s %s\n", bad.code, bad.enhanced.c_str(),
                 bad.text.c_str());
    return listd::SysexitOf(bad);
  }
  // sysexits: a configuration or store problem is temporary for the MTA.
  auto lists = store::OpenListStore(config.store_url);
  if (!lists.ok()) {
    std::fprintf(stderr, "blindlist-listd: %s\n", lists.error().message.c_str());
    return 75;
  }
  auto spool =
      spool::Spool::Open(config.spool_dir, spool::Env::Default(), spool::Spool::Role::kGuest);
  if (!spool.ok()) {
    std::fprintf(stderr, "blindlist-listd: %s\n", spool.error().message.c_str());
    return 75;
  }
  std::string message((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (!std::cin.eof() && std::cin.fail()) {
    std::fprintf(stderr, "blindlist-listd: cannot read the message on stdin\n");
    return 75;
  }
  if (message.size() > config.smtp.max_message_bytes) {
    std::fprintf(stderr, "blindlist-listd: 5.3.4 message too large (limit %zu bytes)\n",
                 config.smtp.max_message_bytes);
    return 65;
  }
  listd::PostAcceptor acceptor(config, lists->get(), spool->get(), nullptr, nullptr);
  // The daemon creates the VERP key; pipe mode only reads it, to check bounce reports. Before
  // the daemon's first start there is none: posts are queued all the same, and a bounce
  // report (to a list's bounce address, tagged or not) waits (75) until the key exists.
  std::unique_ptr<listd::VerpSigner> verp;
  if (config.delivery.verp != listd::DeliveryConfig::Verp::kOff) {
    const std::string key_path = listd::VerpSecretPath(config);
    auto key = listd::LoadVerpSecret(key_path, /*create=*/false);
    const std::string to = listd::NormaliseAddress(list);
    const bool no_key_yet = !key.ok() && ::access(key_path.c_str(), F_OK) != 0 && errno == ENOENT;
    const bool post_to_list = to.find('+') == std::string::npos && [&] {
      auto found = (*lists)->FindList(to);
      if (found.ok() && found->has_value()) return true;
      auto owned = listd::FindListByOwnerAlias(**lists, to);  // mail for the owner
      return owned.ok() && owned->has_value();
    }();
    if (no_key_yet && post_to_list) {
      // A post, not a report: nothing to verify.
    } else if (!key.ok()) {
      std::fprintf(stderr, "blindlist-listd: %s\n", key.error().message.c_str());
      return 75;
    } else {
      verp = std::make_unique<listd::VerpSigner>(std::move(*key));
      acceptor.set_verp(verp.get());
    }
  }
  listd::Verdict v = acceptor.Accept(listd::NormaliseAddress(list), sender, message);
  // The reply as SMTP would give it: "250 2.0.0 queued as ID", or the refusal.
  std::fprintf(v.ok() ? stdout : stderr, "%s%d %s %s\n", v.ok() ? "" : "blindlist-listd: ", v.code,
               v.enhanced.c_str(), v.text.c_str());
  return listd::SysexitOf(v);
}

// The -request answers pipe-mode processes sent, into this daemon's counter (request_reply.h).
void CountPipeRequestReplies(const std::string& spool_dir, net::Metrics* metrics) {
  const listd::PipeReplyCounts n = listd::CollectPipeRequestReplies(spool_dir);
  if (n.sent > 0) {
    metrics->Increment("listd_request_replies_total", {{"result", "sent"}},
                       static_cast<double>(n.sent));
  }
  if (n.failed > 0) {
    metrics->Increment("listd_request_replies_total", {{"result", "failed"}},
                       static_cast<double>(n.failed));
  }
}

// What the command line may override in the configuration, and pipe mode's arguments.
struct CommandLine {
  std::string config_file;
  std::string listen;
  std::string lmtp_listen;
  std::string status_listen;
  std::string store_url;
  std::string spool_dir;
  std::string log_level;
  std::string port_file;
  std::string lmtp_port_file;
  std::string status_port_file;
  std::string pipe_list;
  std::string pipe_sender;
  CLI::App* deliver = nullptr;  // parsed: pipe mode
  CLI::App* held = nullptr;     // parsed: `held list|release ID|discard ID`
  std::string held_action;
  std::string held_id;
  bool held_json = false;
};

void AddOptions(CLI::App& app, CommandLine& c) {
  app.add_option("-c,--config", c.config_file, "TOML configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--listen", c.listen, "Override [smtp] listen (ADDRESS:PORT)");
  app.add_option("--lmtp-listen", c.lmtp_listen, "Override [lmtp] listen (ADDRESS:PORT)");
  app.add_option("--status-listen", c.status_listen, "Override [status] listen (ADDRESS:PORT)");
  app.add_option("--store", c.store_url, "Override [store] url (sqlite:PATH or postgresql://...)");
  app.add_option("--spool", c.spool_dir, "Override [spool] directory");
  app.add_option("--log-level", c.log_level, "debug, info, warning or error");
  app.add_option("--port-file", c.port_file, "Write the SMTP port to FILE once listening");
  app.add_option("--lmtp-port-file", c.lmtp_port_file, "Write the LMTP port to FILE");
  app.add_option("--status-port-file", c.status_port_file, "Write the status HTTP port to FILE");
  c.deliver = app.add_subcommand(
      "deliver", "Pipe mode for Postfix pipe(8): queue one message from stdin; sysexits codes");
  c.deliver->fallthrough();  // `deliver --config FILE --list ADDR`, as pipe(8) argv has it
  c.deliver->add_option("--list", c.pipe_list, "The list address the message is for")->required();
  c.deliver->add_option("--sender", c.pipe_sender, "The envelope sender (Postfix: ${sender})");
  c.held = app.add_subcommand(
      "held", "Posts a members-only list holds for its owner: list, release ID, discard ID");
  c.held->fallthrough();
  c.held->add_option("action", c.held_action, "list, release or discard")
      ->required()
      ->check(CLI::IsMember({"list", "release", "discard"}));
  c.held->add_option("id", c.held_id, "The held post's id (release, discard)");
  c.held->add_flag("--json", c.held_json, "list: JSON");
}

Status ApplyOverrides(const CommandLine& c, listd::Config& config) {
  auto override_listen = [](const std::string& flag, const std::string& value, std::string& host,
                            std::uint16_t& port, bool& enabled) -> Status {
    if (value.empty()) return Status::Ok();
    Status st = listd::ParseHostPort(value, host, port);
    if (!st.ok()) return MakeError("usage", flag + ": " + st.error().message);
    enabled = true;
    return Status::Ok();
  };
  BL_TRY(override_listen("--listen", c.listen, config.smtp.listen_address, config.smtp.port,
                         config.smtp_enabled));
  BL_TRY(override_listen("--lmtp-listen", c.lmtp_listen, config.lmtp.listen_address,
                         config.lmtp.port, config.lmtp_enabled));
  BL_TRY(override_listen("--status-listen", c.status_listen, config.status.listen_address,
                         config.status.port, config.status_enabled));
  if (!c.store_url.empty()) config.store_url = c.store_url;
  if (!c.spool_dir.empty()) config.spool_dir = c.spool_dir;
  if (!c.log_level.empty()) config.log_level = c.log_level;
  return Status::Ok();
}

// The VERP signer, or none with `[delivery] verp = "off"` (logged: bounces are then only logged).
Result<std::unique_ptr<listd::VerpSigner>> LoadVerp(const listd::Config& config) {
  if (config.delivery.verp == listd::DeliveryConfig::Verp::kOff) {
    net::Log(net::LogLevel::kWarning,
             "[delivery] verp = \"off\": bounce reports cannot be attributed and are only logged",
             {});
    return std::unique_ptr<listd::VerpSigner>();
  }
  BL_TRY_ASSIGN(auto key, listd::LoadVerpSecret(listd::VerpSecretPath(config), /*create=*/true));
  return std::make_unique<listd::VerpSigner>(std::move(key));
}

// The SMTP and LMTP listeners the configuration enables, started, their ports written.
Result<std::vector<std::unique_ptr<net::SmtpServer>>> StartMailListeners(
    const listd::Config& config, const CommandLine& c, listd::PostAcceptor* acceptor) {
  std::vector<std::unique_ptr<net::SmtpServer>> listeners;
  struct Listener {
    bool enabled;
    const net::SmtpServerConfig* config;
    bool lmtp;
    const std::string* port_file;
  };
  for (const Listener& l : {Listener{config.smtp_enabled, &config.smtp, false, &c.port_file},
                            Listener{config.lmtp_enabled, &config.lmtp, true, &c.lmtp_port_file}}) {
    if (!l.enabled) continue;
    auto server =
        std::make_unique<net::SmtpServer>(*l.config, listd::MakeSmtpIntake(acceptor, l.lmtp));
    BL_TRY(server->Start());
    if (!l.port_file->empty()) BL_TRY(api::WritePortFile(*l.port_file, server->port()));
    net::Log(net::LogLevel::kInfo, "listening",
             {{"protocol", l.lmtp ? "lmtp" : "smtp"},
              {"address", l.config->listen_address},
              {"port", std::to_string(server->port())}});
    listeners.push_back(std::move(server));
  }
  return listeners;
}

// The status listener's answers: /healthz (the list database answers and the spool is
// readable: posts can be taken) and /metrics (behind the bearer token when one is set).
struct StatusPages {
  const listd::Config* config;
  net::Metrics* metrics;
  const api::MetricsAccess* access;
  spool::Spool* spool;
  store::ListStore* lists;

  net::HttpResponse operator()(const net::HttpRequest& r) const {
    if (r.method != "GET") return net::HttpResponse::Error(405, "method-not-allowed", "GET only");
    if (r.path == "/healthz") return Health();
    if (r.path == "/metrics") {
      if (auto refused = access->Refusal(r)) return *refused;
      return Metrics();
    }
    return net::HttpResponse::Error(404, "not-found", "no such path");
  }

  net::HttpResponse Health() const {
    auto probe = lists->FindList("healthz@healthz.invalid");
    auto counts = spool->Counts();
    if (!probe.ok() || !counts.ok()) {
      return net::HttpResponse::Json(503,
                                     nlohmann::json{{"status", "unavailable"},
                                                    {"store", probe.ok() ? "ok" : "unavailable"},
                                                    {"spool", counts.ok() ? "ok" : "unavailable"}}
                                         .dump());
    }
    return net::HttpResponse::Json(
        200, nlohmann::json{{"status", "ok"}, {"store", lists->BackendName()}}.dump());
  }

  net::HttpResponse Metrics() const {
    if (auto counts = spool->Counts(); counts.ok()) {
      metrics->SetGauge("listd_spool_incoming", static_cast<double>(counts->incoming));
      metrics->SetGauge("listd_spool_active", static_cast<double>(counts->active));
      metrics->SetGauge("listd_spool_corrupt", static_cast<double>(counts->corrupt));
      metrics->SetGauge("listd_spool_held", static_cast<double>(counts->held));
    }
    net::HttpResponse resp;
    resp.content_type = "text/plain; version=0.0.4";
    resp.body = metrics->Render() + listd::MonitoringMetrics(*config, lists, spool, Now());
    return resp;
  }
};

Result<std::unique_ptr<net::HttpsServer>> StartStatusServer(const listd::Config& config,
                                                            const std::string& port_file,
                                                            const StatusPages& pages) {
  if (!config.status_enabled) return std::unique_ptr<net::HttpsServer>();
  auto status = std::make_unique<net::HttpsServer>(config.status, pages);
  BL_TRY(status->Start());
  if (!port_file.empty()) BL_TRY(api::WritePortFile(port_file, status->port()));
  return status;
}

}  // namespace

int Run(int argc, char** argv) {
  // Posts can be 25 MB: keep large buffers out of the heap so they go back to the
  // system when freed (glibc's dynamic threshold would otherwise keep them).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  CLI::App app{"blindlist-listd: the list exploder (forwards encrypted posts; holds no keys)"};
  CommandLine cl;
  AddOptions(app, cl);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  net::SetLogDaemonName("listd");

  auto loaded = listd::LoadConfig(cl.config_file);
  if (!loaded.ok()) {
    if (cl.deliver->parsed()) {
      std::fprintf(stderr, "blindlist-listd: %s\n", loaded.error().message.c_str());
      return 75;
    }
    return Fatal(loaded.error());
  }
  listd::Config config = *loaded;
  if (Status st = ApplyOverrides(cl, config); !st.ok()) return Fatal(st.error());
  net::SetLogLevel(api::ParseLogLevel(config.log_level));

  if (cl.deliver->parsed()) return RunPipe(config, cl.pipe_list, cl.pipe_sender);
  if (cl.held->parsed()) {
    if (cl.held_action != "list" && cl.held_id.empty()) {
      std::fprintf(stderr, "blindlist-listd: held %s needs the post's id\n",
                   cl.held_action.c_str());
      return 2;
    }
    return listd::RunHeldCommand(config, cl.held_action, cl.held_id, cl.held_json);
  }

  Status private_files = api::CheckSecretFileModes(
      {config.smtp.key_file, config.lmtp.key_file, config.groupd.client_key});
  if (!private_files.ok()) return Fatal(private_files.error());
  api::MetricsAccess metrics_access;
  if (Status st = metrics_access.Load(config.metrics_token_file); !st.ok())
    return Fatal(st.error());

  if (config.allow_local_group_keys) {
    net::Log(net::LogLevel::kWarning,
             "PATH B' IS ON: this exploder holds group keys from " + config.group_keys_dir +
                 " and CAN READ the lists that use it; the trust split between exploder and "
                 "group server is gone for them",
             {});
  }

  auto lists = store::OpenListStore(config.store_url);
  if (!lists.ok()) return Fatal(lists.error());
  auto spool = spool::Spool::Open(config.spool_dir);
  if (!spool.ok()) return Fatal(spool.error());
  auto verp = LoadVerp(config);
  if (!verp.ok()) return Fatal(verp.error());

  api::BlockServerSignals();
  net::Metrics metrics;
  RunnerSignal runner_signal;
  listd::PostAcceptor acceptor(config, lists->get(), spool->get(), &metrics,
                               [&runner_signal] { runner_signal.Notify(); });
  acceptor.set_verp(verp->get());
  auto listeners = StartMailListeners(config, cl, &acceptor);
  if (!listeners.ok()) return Fatal(listeners.error());
  spool::Spool* spool_ptr = spool->get();
  auto status =
      StartStatusServer(config, cl.status_port_file,
                        StatusPages{&config, &metrics, &metrics_access, spool_ptr, lists->get()});
  if (!status.ok()) return Fatal(status.error());

  auto path_b = listd::MakeGroupdRewrap(config.groupd);
  auto per_member = listd::MakeGroupdMemberRewrap(config.groupd);
  std::unique_ptr<listd::GroupSecretRewrap> path_b_prime;
  if (config.allow_local_group_keys)
    path_b_prime = listd::MakeLocalKeyRewrap(config.group_keys_dir);

  // Pipe mode queues from another process: the runner is woken when its file lands in
  // incoming/, not at the next tick (SMTP and LMTP wake it through the acceptor).
  auto watch = listd::IncomingWatch::Start(spool_ptr->dir() + "/incoming",
                                           [&runner_signal] { runner_signal.Notify(); });
  if (!watch.ok()) {
    net::Log(net::LogLevel::kWarning, "spool not watched; pipe-mode posts wait for the next tick",
             {{"error", watch.error().message}});
  }

  std::thread runner([&] {
    listd::IncomingProcessor processor(config, lists->get(), spool_ptr, &metrics, path_b.get(),
                                       path_b_prime.get(), per_member.get());
    listd::Deliverer deliverer(config, lists->get(), spool_ptr, &metrics, verp->get(),
                               [&runner_signal] { runner_signal.Notify(); });
    while (!runner_signal.stopped()) {
      try {
        processor.RunOnce(Now());
        deliverer.RunOnce(Now());
        CountPipeRequestReplies(config.spool_dir, &metrics);
      } catch (const std::exception& e) {
        net::Log(net::LogLevel::kError, "queue runner error", {{"error", e.what()}});
      }
      if (!runner_signal.WaitFor(std::chrono::milliseconds(1000))) break;
    }
  });

  // Delivery lists that follow groupd's roster ([groupd] roster_sync_seconds); stopped at exit.
  auto roster_sync = listd::StartRosterSync(config.groupd, lists->get(), &metrics);

  api::WaitForTermination([&] {
    metrics_access.Reload(config.metrics_token_file);
    for (auto& l : *listeners) {
      Status st = l->ReloadCertificates();
      net::Log(st.ok() ? net::LogLevel::kInfo : net::LogLevel::kError, "reloaded certificates",
               {{"result", st.ok() ? "ok" : st.error().message}});
    }
  });
  for (auto& l : *listeners) l->Stop();
  runner_signal.Stop();
  runner.join();
  if (*status) (*status)->Stop();
  net::Log(net::LogLevel::kInfo, "stopped", {});
  return 0;
}

int main(int argc, char** argv) { return api::RunMain("blindlist-listd", Run, argc, argv); }
