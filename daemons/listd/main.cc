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
#include "config.h"
#include "delivery.h"
#include "incoming.h"
#include "list_headers.h"
#include "net/https_server.h"
#include "net/smtp_server.h"
#include "obs/log.h"
#include "obs/metrics.h"
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

int RunPipe(const listd::Config& config, const std::string& list, const std::string& sender) {
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
      return found.ok() && found->has_value();
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
  std::fprintf(v.ok() ? stdout : stderr, "%s%s %s\n",
               v.ok() ? "" : "blindlist-listd: ", v.enhanced.c_str(), v.text.c_str());
  return listd::SysexitOf(v);
}

}  // namespace

int Run(int argc, char** argv) {
  // Posts can be 25 MB: keep large buffers out of the heap so they go back to the
  // system when freed (glibc's dynamic threshold would otherwise keep them).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  CLI::App app{"blindlist-listd: the list exploder (forwards encrypted posts; holds no keys)"};
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
  app.add_option("-c,--config", config_file, "TOML configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--listen", listen, "Override [smtp] listen (ADDRESS:PORT)");
  app.add_option("--lmtp-listen", lmtp_listen, "Override [lmtp] listen (ADDRESS:PORT)");
  app.add_option("--status-listen", status_listen, "Override [status] listen (ADDRESS:PORT)");
  app.add_option("--store", store_url, "Override [store] url (sqlite:PATH or postgresql://...)");
  app.add_option("--spool", spool_dir, "Override [spool] directory");
  app.add_option("--log-level", log_level, "debug, info, warning or error");
  app.add_option("--port-file", port_file, "Write the SMTP port to FILE once listening");
  app.add_option("--lmtp-port-file", lmtp_port_file, "Write the LMTP port to FILE");
  app.add_option("--status-port-file", status_port_file, "Write the status HTTP port to FILE");
  std::string pipe_list;
  std::string pipe_sender;
  auto* deliver = app.add_subcommand(
      "deliver", "Pipe mode for Postfix pipe(8): queue one message from stdin; sysexits codes");
  deliver->fallthrough();  // `deliver --config FILE --list ADDR`, as pipe(8) argv has it
  deliver->add_option("--list", pipe_list, "The list address the message is for")->required();
  deliver->add_option("--sender", pipe_sender, "The envelope sender (Postfix: ${sender})");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  net::SetLogDaemonName("listd");

  auto loaded = listd::LoadConfig(config_file);
  if (!loaded.ok()) {
    if (deliver->parsed()) {
      std::fprintf(stderr, "blindlist-listd: %s\n", loaded.error().message.c_str());
      return 75;
    }
    return Fatal(loaded.error());
  }
  listd::Config config = *loaded;
  auto override_listen = [](const std::string& flag, const std::string& value, std::string& host,
                            std::uint16_t& port, bool& enabled) -> Status {
    if (value.empty()) return Status::Ok();
    Status st = listd::ParseHostPort(value, host, port);
    if (!st.ok()) return MakeError("usage", flag + ": " + st.error().message);
    enabled = true;
    return Status::Ok();
  };
  for (const Status& st :
       {override_listen("--listen", listen, config.smtp.listen_address, config.smtp.port,
                        config.smtp_enabled),
        override_listen("--lmtp-listen", lmtp_listen, config.lmtp.listen_address, config.lmtp.port,
                        config.lmtp_enabled),
        override_listen("--status-listen", status_listen, config.status.listen_address,
                        config.status.port, config.status_enabled)}) {
    if (!st.ok()) return Fatal(st.error());
  }
  if (!store_url.empty()) config.store_url = store_url;
  if (!spool_dir.empty()) config.spool_dir = spool_dir;
  if (!log_level.empty()) config.log_level = log_level;
  net::SetLogLevel(api::ParseLogLevel(config.log_level));

  if (deliver->parsed()) return RunPipe(config, pipe_list, pipe_sender);

  Status private_files = api::CheckSecretFileModes(
      {config.smtp.key_file, config.lmtp.key_file, config.groupd.client_key});
  if (!private_files.ok()) return Fatal(private_files.error());

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
  std::unique_ptr<listd::VerpSigner> verp;
  if (config.delivery.verp != listd::DeliveryConfig::Verp::kOff) {
    auto key = listd::LoadVerpSecret(listd::VerpSecretPath(config), /*create=*/true);
    if (!key.ok()) return Fatal(key.error());
    verp = std::make_unique<listd::VerpSigner>(std::move(*key));
  } else {
    net::Log(net::LogLevel::kWarning,
             "[delivery] verp = \"off\": bounce reports cannot be attributed and are only logged",
             {});
  }

  api::BlockServerSignals();
  net::Metrics metrics;
  RunnerSignal runner_signal;
  listd::PostAcceptor acceptor(config, lists->get(), spool->get(), &metrics,
                               [&runner_signal] { runner_signal.Notify(); });
  acceptor.set_verp(verp.get());

  std::vector<std::unique_ptr<net::SmtpServer>> listeners;
  struct Listener {
    bool enabled;
    const net::SmtpServerConfig* config;
    bool lmtp;
    const std::string* port_file;
  };
  for (const Listener& l : {Listener{config.smtp_enabled, &config.smtp, false, &port_file},
                            Listener{config.lmtp_enabled, &config.lmtp, true, &lmtp_port_file}}) {
    if (!l.enabled) continue;
    auto server =
        std::make_unique<net::SmtpServer>(*l.config, listd::MakeSmtpIntake(&acceptor, l.lmtp));
    Status st = server->Start();
    if (!st.ok()) return Fatal(st.error());
    if (!l.port_file->empty()) {
      Status written = api::WritePortFile(*l.port_file, server->port());
      if (!written.ok()) return Fatal(written.error());
    }
    net::Log(net::LogLevel::kInfo, "listening",
             {{"protocol", l.lmtp ? "lmtp" : "smtp"},
              {"address", l.config->listen_address},
              {"port", std::to_string(server->port())}});
    listeners.push_back(std::move(server));
  }

  spool::Spool* spool_ptr = spool->get();
  std::unique_ptr<net::HttpsServer> status;
  if (config.status_enabled) {
    store::ListStore* list_store = lists->get();
    status = std::make_unique<net::HttpsServer>(
        config.status, [&metrics, spool_ptr, list_store](const net::HttpRequest& r) {
          if (r.method != "GET")
            return net::HttpResponse::Error(405, "method-not-allowed", "GET only");
          if (r.path == "/healthz") {
            // Healthy means posts can be taken: the list database answers and the spool is
            // readable.
            auto probe = list_store->FindList("healthz@healthz.invalid");
            auto counts = spool_ptr->Counts();
            if (!probe.ok() || !counts.ok()) {
              return net::HttpResponse::Json(
                  503, nlohmann::json{{"status", "unavailable"},
                                      {"store", probe.ok() ? "ok" : "unavailable"},
                                      {"spool", counts.ok() ? "ok" : "unavailable"}}
                           .dump());
            }
            return net::HttpResponse::Json(
                200, nlohmann::json{{"status", "ok"}, {"store", list_store->BackendName()}}.dump());
          }
          if (r.path == "/metrics") {
            if (auto counts = spool_ptr->Counts(); counts.ok()) {
              metrics.SetGauge("listd_spool_incoming", static_cast<double>(counts->incoming));
              metrics.SetGauge("listd_spool_active", static_cast<double>(counts->active));
              metrics.SetGauge("listd_spool_corrupt", static_cast<double>(counts->corrupt));
            }
            net::HttpResponse resp;
            resp.content_type = "text/plain; version=0.0.4";
            resp.body = metrics.Render();
            return resp;
          }
          return net::HttpResponse::Error(404, "not-found", "no such path");
        });
    Status st = status->Start();
    if (!st.ok()) return Fatal(st.error());
    if (!status_port_file.empty()) {
      Status written = api::WritePortFile(status_port_file, status->port());
      if (!written.ok()) return Fatal(written.error());
    }
  }

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
    listd::Deliverer deliverer(config, lists->get(), spool_ptr, &metrics, verp.get(),
                               [&runner_signal] { runner_signal.Notify(); });
    while (!runner_signal.stopped()) {
      try {
        processor.RunOnce(Now());
        deliverer.RunOnce(Now());
      } catch (const std::exception& e) {
        net::Log(net::LogLevel::kError, "queue runner error", {{"error", e.what()}});
      }
      if (!runner_signal.WaitFor(std::chrono::milliseconds(1000))) break;
    }
  });

  // Delivery lists that follow groupd's roster ([groupd] roster_sync_seconds); stopped at exit.
  auto roster_sync = listd::StartRosterSync(config.groupd, lists->get(), &metrics);

  api::WaitForTermination([&] {
    for (auto& l : listeners) {
      Status st = l->ReloadCertificates();
      net::Log(st.ok() ? net::LogLevel::kInfo : net::LogLevel::kError, "reloaded certificates",
               {{"result", st.ok() ? "ok" : st.error().message}});
    }
  });
  for (auto& l : listeners) l->Stop();
  runner_signal.Stop();
  runner.join();
  if (status) status->Stop();
  net::Log(net::LogLevel::kInfo, "stopped", {});
  return 0;
}

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blindlist-listd: internal error: %s\n", e.what());
    return 1;
  }
}
