// bench_fanout: the exploder fan-out benchmark (docs/benchmarks.md, "Exploder fan-out";
// bench/fanout.sh prepares the list and the post and drives it).
//
// One in-process SMTP sink (net::SmtpServer) stands in for the smarthost: it accepts every
// MAIL, RCPT and DATA, timestamps each RCPT it accepts and counts the DATA bytes. Each round
// then measures two ways of getting one post to the N members through that sink:
//   listd  one blindlist-listd per invocation (its own spool, the prepared list store,
//          [delivery] smtp to the sink) gets the post over SMTP. t0 = the first byte of the
//          post sent to listd, t1 = the sink's timestamp of the last of the N RCPTs it
//          accepted. listd's CPU time (all threads, from /proc) covers t0 until the post has
//          left its spool; its peak memory is its VmHWM then. A fresh process per invocation
//          (one per list size) makes that figure per case.
//          With --intake pipe the post goes in by pipe mode instead, as Postfix's pipe(8) hands
//          it over: `blindlist-listd deliver` with the post on stdin in LF lines; t0 = just
//          before that process is started, listd's "250" = its exit 0. listd's CPU figure is
//          the daemon's only (the pipe-mode process is not counted).
//   raw    one net::SmtpClient pushes the message listd delivered (captured by the sink, so
//          the same bytes) to the same sink, in transactions of --batch recipients on one
//          connection, as listd does. t0 = its first byte, t1 = the last RCPT accepted.
// The two are measured seconds apart, under the same machine load; the ratio is what counts.
// Beside t1 each side also reports when the sink had the last message whole: with pipelined
// RCPTs the last RCPT is accepted before the last transaction's DATA is even sent.
// --warmup rounds go first and are not reported. Every round checks that the sink saw each member
// exactly once and that every transaction carried a message of the same size.
//
// Prints one JSON line with the per-round figures and their medians; progress goes to stderr.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "blindlist/result.h"
#include "net/smtp_client.h"
#include "net/smtp_server.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): posix_spawn's envp

namespace {
using namespace blindlist;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct Options {
  std::string listd;
  std::string store_url;
  std::string list;
  std::string post_file;
  std::string members_file;
  std::string work_dir;
  std::string sender = "sender@example.org";
  std::string intake = "smtp";  // or "pipe"
  int runs = 3;
  int warmup = 1;
  int batch = 100;
  // listd's [delivery] verp: "off" (plain batches, as the raw client sends them),
  // "per-recipient" (one transaction per member) or "xverp"/"auto" (the sink then offers
  // Postfix's XVERP and takes its MAIL FROM parameter, as Postfix does; one transaction per
  // batch).
  std::string verp = "off";
  int sink_threads = 2;
  double timeout_s = 1800;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

Error SysError(const std::string& what) {
  return MakeError("io-error", what + ": " + std::strerror(errno));
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError("io-error", "cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) return MakeError("io-error", "cannot write " + path);
  return Status::Ok();
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return SysError("mkdir " + path);
  return Status::Ok();
}

std::string LoadAverage() {
  auto text = ReadFile("/proc/loadavg");
  if (!text.ok()) return "";
  std::istringstream in(*text);
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// The smarthost stand-in. Accepts everything; what it saw since Reset() is read with Take().
class Sink final : public net::SmtpHandler {
 public:
  struct Seen {
    std::int64_t mails = 0;
    std::int64_t rcpts = 0;
    std::int64_t transactions = 0;  // DATA received
    std::uint64_t data_bytes = 0;   // dot-unstuffed, as handed to OnData
    std::size_t distinct_rcpts = 0;
    bool sizes_differ = false;
    std::optional<Clock::time_point> first_rcpt;
    std::optional<Clock::time_point> last_rcpt;
    std::optional<Clock::time_point> last_data;  // the last message fully received
  };

  // Forgets what was seen. With `capture`, the first message of the next transactions is kept.
  void Reset(bool capture) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_ = Seen{};
    recipients_.clear();
    first_size_ = 0;
    capture_ = capture;
  }

  net::SmtpReply OnMailFrom(const net::SmtpEnvelope& /*envelope*/) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++seen_.mails;
    return {.code = 250, .enhanced = "2.1.0", .text = "sender ok"};
  }

  net::SmtpReply OnRcptTo(const net::SmtpEnvelope& /*envelope*/,
                          const std::string& recipient) override {
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!seen_.first_rcpt) seen_.first_rcpt = now;
      seen_.last_rcpt = now;
      ++seen_.rcpts;
      recipients_.insert(recipient);
    }
    cv_.notify_all();
    return {.code = 250, .enhanced = "2.1.5", .text = "recipient ok"};
  }

  std::vector<net::SmtpReply> OnData(const net::SmtpEnvelope& /*envelope*/,
                                     std::string message) override {
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.last_data = now;
      ++seen_.transactions;
      seen_.data_bytes += message.size();
      if (seen_.transactions == 1) {
        first_size_ = message.size();
        if (capture_) {
          captured_ = std::move(message);
          capture_ = false;
        }
      } else if (message.size() != first_size_) {
        seen_.sizes_differ = true;
      }
    }
    cv_.notify_all();
    return {{.code = 250, .enhanced = "2.0.0", .text = "queued"}};
  }

  // True once `rcpts` recipients and `transactions` DATA were seen; false at the deadline.
  bool WaitFor(std::int64_t rcpts, std::int64_t transactions, Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(
        lock, deadline, [&] { return seen_.rcpts >= rcpts && seen_.transactions >= transactions; });
  }

  Seen Take() {
    std::lock_guard<std::mutex> lock(mu_);
    Seen s = seen_;
    s.distinct_rcpts = recipients_.size();
    return s;
  }

  // The message captured since Reset(true) (empty if none).
  std::string captured() {
    std::lock_guard<std::mutex> lock(mu_);
    return captured_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Seen seen_;
  std::unordered_set<std::string> recipients_;
  std::size_t first_size_ = 0;
  bool capture_ = false;
  std::string captured_;
};

// The sink's view of one measured delivery, checked against what was expected.
Result<Sink::Seen> Collect(Sink& sink, std::size_t members, int batch, Clock::time_point deadline,
                           const std::string& who) {
  const auto n = static_cast<std::int64_t>(members);
  const std::int64_t transactions = (n + batch - 1) / batch;
  if (!sink.WaitFor(n, transactions, deadline)) {
    Sink::Seen s = sink.Take();
    return MakeError("timeout", who + ": the sink saw " + std::to_string(s.rcpts) + " of " +
                                    std::to_string(n) + " RCPTs and " +
                                    std::to_string(s.transactions) + " of " +
                                    std::to_string(transactions) + " DATA before the timeout");
  }
  Sink::Seen s = sink.Take();
  if (s.rcpts != n || s.distinct_rcpts != members || s.transactions != transactions) {
    return MakeError("wrong-delivery", who + ": the sink saw " + std::to_string(s.rcpts) +
                                           " RCPTs (" + std::to_string(s.distinct_rcpts) +
                                           " distinct) in " + std::to_string(s.transactions) +
                                           " transactions; expected " + std::to_string(n) +
                                           " distinct in " + std::to_string(transactions));
  }
  if (s.sizes_differ) {
    return MakeError("wrong-delivery",
                     who + ": the transactions carried messages of different sizes");
  }
  return s;
}

// A child process: blindlist-listd.
class Child {
 public:
  static Result<Child> Spawn(const std::vector<std::string>& args, const std::string& log_file,
                             const std::string& stdin_file = "/dev/null") {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, stdin_file.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return MakeError("spawn", "cannot start " + args[0] + ": " + std::strerror(rc));
    return Child(pid);
  }

  Child(Child&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }

  // Waits for the process to exit; its exit status (-1 if it did not exit normally).
  int Wait() {
    int status = 0;
    if (pid_ <= 0 || ::waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // False once the process has exited (it is then reaped).
  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  // A "VmXXX:" line of /proc/PID/status, in kB (-1 if unreadable).
  long StatusKb(const std::string& field) const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(field, 0) == 0) return std::strtol(line.c_str() + field.size(), nullptr, 10);
    }
    return -1;
  }

  // CPU time of the live threads so far (schedstat: nanoseconds on a CPU, finer than the
  // 10 ms ticks of /proc/PID/stat). listd's threads live as long as the process.
  double CpuMs() const {
    const std::string task_dir = "/proc/" + std::to_string(pid_) + "/task";
    DIR* d = ::opendir(task_dir.c_str());
    if (d == nullptr) return 0;
    double ns = 0;
    while (const struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(task_dir + "/" + e->d_name + "/schedstat");
      double on_cpu = 0;
      if (in >> on_cpu) ns += on_cpu;
    }
    ::closedir(d);
    return ns / 1e6;
  }

  // SIGTERM, then SIGKILL after `grace`; returns the exit status and resource usage.
  struct Exit {
    int status = 0;
    struct rusage usage {};
  };
  Result<Exit> Stop(std::chrono::milliseconds grace) {
    if (pid_ <= 0) return MakeError("spawn", "the process had already exited");
    ::kill(pid_, SIGTERM);
    Exit e;
    const Clock::time_point deadline = Clock::now() + grace;
    while (true) {
      const pid_t r = ::wait4(pid_, &e.status, WNOHANG, &e.usage);
      if (r == pid_) break;
      if (r < 0) return SysError("wait4");
      if (Clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::wait4(pid_, &e.status, 0, &e.usage);
        pid_ = -1;
        return MakeError("spawn", "listd did not stop within the grace period (killed)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    return e;
  }

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

double CpuMs(const struct rusage& u) {
  return (static_cast<double>(u.ru_utime.tv_sec) + static_cast<double>(u.ru_stime.tv_sec)) * 1e3 +
         (static_cast<double>(u.ru_utime.tv_usec) + static_cast<double>(u.ru_stime.tv_usec)) / 1e3;
}

double ThreadCpuMs() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

std::size_t CountEntries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  std::size_t n = 0;
  while (const struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++n;
  }
  ::closedir(d);
  return n;
}

std::string ListdConfig(const Options& o, const std::string& run_dir, std::uint16_t sink_port) {
  std::ostringstream c;
  c << "# Written by bench_fanout for one round.\n"
    << "[smtp]\nlisten = \"127.0.0.1:0\"\nmax_message_bytes = 33554432\n\n"
    << "[lmtp]\nlisten = \"\"\n\n"
    << "[status]\nlisten = \"127.0.0.1:0\"\n\n"
    << "[store]\nurl = \"" << o.store_url << "\"\n\n"
    << "[spool]\ndirectory = \"" << run_dir << "/spool\"\n\n"
    << "[delivery]\nmode = \"smtp\"\nsmarthost = \"127.0.0.1:" << sink_port << "\"\n"
    << "starttls = \"never\"\nbatch_size = " << o.batch << "\nverp = \"" << o.verp << "\"\n\n"
    << "[log]\nlevel = \"warning\"\n";
  return c.str();
}

struct ListdRound {
  double total_ms = 0;       // t0 -> last RCPT at the sink
  double data_ms = 0;        // t0 -> last message received by the sink
  double accepted_ms = 0;    // t0 -> listd's 250 (post spooled)
  double first_rcpt_ms = 0;  // t0 -> first RCPT at the sink
  double cpu_ms = 0;         // listd's CPU time (all threads) from t0 until the post left the spool
  long vm_hwm_kb = 0;        // listd's peak resident memory so far, once the post left the spool
  Sink::Seen seen;
};

// A blindlist-listd with its own spool, delivering to the sink.
struct RunningListd {
  Child child;
  std::string dir;
  std::uint16_t port = 0;
};

Result<RunningListd> StartListd(const Options& o, std::uint16_t sink_port) {
  const std::string dir = o.work_dir + "/listd";
  BL_TRY(MakeDir(dir));
  BL_TRY(WriteFile(dir + "/listd.toml", ListdConfig(o, dir, sink_port)));
  const std::string port_file = dir + "/listd.port";
  ::unlink(port_file.c_str());
  BL_TRY_ASSIGN(Child child, Child::Spawn({o.listd, "--config", dir + "/listd.toml", "--port-file",
                                           port_file, "--status-port-file", dir + "/status.port"},
                                          dir + "/listd.log"));
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);
  while (true) {
    auto text = ReadFile(port_file);
    if (text.ok() && !text->empty()) {
      return RunningListd{.child = std::move(child),
                          .dir = dir,
                          .port = static_cast<std::uint16_t>(std::stoi(*text))};
    }
    if (!child.Running()) {
      return MakeError("spawn", "listd exited at start; see " + dir + "/listd.log");
    }
    if (Clock::now() > deadline) {
      return MakeError("timeout",
                       "listd wrote no port file within 60 s; see " + dir + "/listd.log");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The rest of a round, whichever way the post went in (t0: its first byte or the start of
// pipe mode; accepted: listd's 250 or pipe mode's exit): the sink's view of every member's
// delivery, then the wait until the post has left listd's spool (the last batch's results are
// written after its DATA), so the memory and CPU figures cover all of it.
Result<ListdRound> FinishRound(const Options& o, Sink& sink, RunningListd& listd,
                               std::size_t members, double cpu0, Clock::time_point t0,
                               Clock::time_point accepted) {
  const Clock::time_point deadline =
      t0 + std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  // One transaction per member with per-recipient VERP, batches otherwise.
  const int batch = o.verp == "per-recipient" ? 1 : o.batch;
  BL_TRY_ASSIGN(Sink::Seen seen, Collect(sink, members, batch, deadline, "listd"));
  while (CountEntries(listd.dir + "/spool/active") + CountEntries(listd.dir + "/spool/incoming") >
         0) {
    if (Clock::now() > deadline) return MakeError("timeout", "the post stayed in listd's spool");
    if (!listd.child.Running()) return MakeError("spawn", "listd exited; see its log");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ListdRound r;
  r.cpu_ms = listd.child.CpuMs() - cpu0;
  r.vm_hwm_kb = listd.child.StatusKb("VmHWM:");
  r.total_ms = Ms(*seen.last_rcpt - t0);
  r.data_ms = Ms(*seen.last_data - t0);
  r.accepted_ms = Ms(accepted - t0);
  r.first_rcpt_ms = Ms(*seen.first_rcpt - t0);
  r.seen = seen;
  return r;
}

Result<ListdRound> PostThroughListd(const Options& o, Sink& sink, RunningListd& listd,
                                    const std::string& post,
                                    const std::vector<std::string>& members) {
  sink.Reset(/*capture=*/true);
  net::SmtpClientConfig cc;
  cc.port = listd.port;
  cc.starttls = net::SmtpClientConfig::StartTls::kNever;
  cc.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  BL_TRY_ASSIGN(std::unique_ptr<net::SmtpClient> client, net::SmtpClient::Connect(cc));
  const double cpu0 = listd.child.CpuMs();
  const Clock::time_point t0 = Clock::now();
  BL_TRY_ASSIGN(net::SmtpSendResult sent, client->Send(o.sender, {o.list}, post));
  const Clock::time_point accepted = Clock::now();
  client->Quit();
  if (sent.recipients.size() != 1 || sent.recipients[0].code / 100 != 2) {
    const net::SmtpRecipientResult& r = sent.recipients.at(0);
    return MakeError("refused", "listd refused the post: " + std::to_string(r.code) + " " +
                                    r.enhanced + " " + r.text);
  }
  return FinishRound(o, sink, listd, members.size(), cpu0, t0, accepted);
}

// The same through pipe mode: `blindlist-listd deliver` reads `post_lf_file` (LF lines, as
// pipe(8) gives them) on stdin and exits 0 once the post is in the daemon's spool.
Result<ListdRound> PipeThroughListd(const Options& o, Sink& sink, RunningListd& listd,
                                    const std::string& post_lf_file,
                                    const std::vector<std::string>& members) {
  sink.Reset(/*capture=*/true);
  const double cpu0 = listd.child.CpuMs();
  const Clock::time_point t0 = Clock::now();
  BL_TRY_ASSIGN(Child pipe, Child::Spawn({o.listd, "deliver", "--config", listd.dir + "/listd.toml",
                                          "--list", o.list, "--sender", o.sender},
                                         listd.dir + "/pipe.log", post_lf_file));
  const int status = pipe.Wait();
  const Clock::time_point accepted = Clock::now();
  if (status != 0) {
    return MakeError("refused", "pipe mode exited " + std::to_string(status) + "; see " +
                                    listd.dir + "/pipe.log");
  }
  return FinishRound(o, sink, listd, members.size(), cpu0, t0, accepted);
}

// The post with LF line ends, as Postfix's pipe(8) hands it over; written beside the work files.
Result<std::string> WriteLfPost(const Options& o, const std::string& post) {
  std::string lf;
  lf.reserve(post.size());
  for (std::size_t i = 0; i < post.size(); ++i) {
    if (post[i] == '\r' && i + 1 < post.size() && post[i + 1] == '\n') continue;
    lf += post[i];
  }
  const std::string path = o.work_dir + "/post-lf.eml";
  BL_TRY(WriteFile(path, lf));
  return path;
}

struct RawRound {
  double total_ms = 0;
  double data_ms = 0;
  double first_rcpt_ms = 0;
  double cpu_ms = 0;  // the client thread's CPU time
  Sink::Seen seen;
};

Result<RawRound> MeasureRaw(const Options& o, Sink& sink, std::uint16_t sink_port,
                            const std::string& message, const std::vector<std::string>& members) {
  sink.Reset(/*capture=*/false);
  net::SmtpClientConfig cc;
  cc.port = sink_port;
  cc.starttls = net::SmtpClientConfig::StartTls::kNever;
  cc.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  BL_TRY_ASSIGN(std::unique_ptr<net::SmtpClient> client, net::SmtpClient::Connect(cc));
  const double cpu0 = ThreadCpuMs();
  const Clock::time_point t0 = Clock::now();
  // The same transactions as listd's: one per member when listd sends one per member.
  const int per_transaction = o.verp == "per-recipient" ? 1 : o.batch;
  const auto batch = static_cast<std::size_t>(per_transaction);
  std::vector<std::string> rcpts;
  for (std::size_t start = 0; start < members.size(); start += batch) {
    const std::size_t end = std::min(members.size(), start + batch);
    rcpts.assign(members.begin() + static_cast<std::ptrdiff_t>(start),
                 members.begin() + static_cast<std::ptrdiff_t>(end));
    BL_TRY_ASSIGN(net::SmtpSendResult sent, client->Send(o.sender, rcpts, message));
    for (const net::SmtpRecipientResult& r : sent.recipients) {
      if (r.code / 100 != 2) {
        return MakeError("refused",
                         "the sink refused " + r.address + ": " + std::to_string(r.code));
      }
    }
  }
  const double cpu1 = ThreadCpuMs();
  client->Quit();
  const Clock::time_point deadline =
      t0 + std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  BL_TRY_ASSIGN(Sink::Seen seen, Collect(sink, members.size(), per_transaction, deadline, "raw"));
  RawRound r;
  r.total_ms = Ms(*seen.last_rcpt - t0);
  r.data_ms = Ms(*seen.last_data - t0);
  r.first_rcpt_ms = Ms(*seen.first_rcpt - t0);
  r.cpu_ms = cpu1 - cpu0;
  r.seen = seen;
  return r;
}

Result<std::vector<std::string>> ReadMembers(const std::string& path) {
  BL_TRY_ASSIGN(std::string text, ReadFile(path));
  std::vector<std::string> members;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    members.push_back(line);
  }
  if (members.empty()) return MakeError("usage", path + " names no member");
  return members;
}

int Run(const Options& o) {
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "bench_fanout: %s\n", e.message.c_str());
    return 1;
  };
  auto post = ReadFile(o.post_file);
  if (!post.ok()) return fail(post.error());
  auto members = ReadMembers(o.members_file);
  if (!members.ok()) return fail(members.error());
  if (Status st = MakeDir(o.work_dir); !st.ok()) return fail(st.error());

  auto sink = std::make_shared<Sink>();
  net::SmtpServerConfig sc;
  sc.listen_address = "127.0.0.1";
  sc.hostname = "sink.bench";
  sc.max_message_bytes = std::size_t{256} << 20;
  sc.max_recipients = std::max(1000, o.batch);
  // One connection carries every transaction of a post: MAIL + RCPTs + DATA per batch.
  sc.max_commands = 1 << 30;
  sc.threads = o.sink_threads;
  // Standing in for Postfix: XVERP offered when listd is to use it.
  sc.offer_xverp = o.verp == "xverp" || o.verp == "auto";
  sc.data_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  net::SmtpServer server(sc, sink);
  if (Status st = server.Start(); !st.ok()) return fail(st.error());
  const std::uint16_t sink_port = server.port();

  const std::string load_before = LoadAverage();
  Json rounds = Json::array();
  std::vector<double> listd_ms, raw_ms, ratios, listd_data_ms, raw_data_ms;
  std::vector<double> listd_cpu, raw_cpu, hwm, accepted, first_rcpt;
  std::string delivered;  // the message listd delivered: the raw client's payload
  Json bytes;
  auto listd = StartListd(o, sink_port);
  if (!listd.ok()) return fail(listd.error());
  std::string post_lf_file;
  if (o.intake == "pipe") {
    auto written = WriteLfPost(o, *post);
    if (!written.ok()) return fail(written.error());
    post_lf_file = *written;
  }
  // Warm-up rounds (not reported) take the first post's one-time costs out: OpenSSL's and the
  // store's first use, page faults, the sink's first connection. A long-running listd has
  // paid them long ago.
  for (int round = 1 - o.warmup; round <= o.runs; ++round) {
    auto l = o.intake == "pipe" ? PipeThroughListd(o, *sink, *listd, post_lf_file, *members)
                                : PostThroughListd(o, *sink, *listd, *post, *members);
    if (!l.ok()) return fail(l.error());
    if (delivered.empty()) delivered = sink->captured();
    auto r = MeasureRaw(o, *sink, sink_port, delivered, *members);
    if (!r.ok()) return fail(r.error());
    if (round < 1) {
      std::fprintf(stderr, "N=%zu warm-up: listd %.1f ms, raw %.1f ms\n", members->size(),
                   l->total_ms, r->total_ms);
      continue;
    }
    if (l->seen.data_bytes != r->seen.data_bytes) {
      return fail(MakeError("wrong-delivery", "listd and raw sent different byte counts: " +
                                                  std::to_string(l->seen.data_bytes) + " and " +
                                                  std::to_string(r->seen.data_bytes)));
    }
    const double ratio = l->total_ms / r->total_ms;
    const double data_ratio = l->data_ms / r->data_ms;
    std::fprintf(stderr,
                 "N=%zu round %d: listd %.1f ms (250 after %.1f ms, first RCPT %.1f ms, last DATA "
                 "%.1f ms, CPU %.1f ms, VmHWM %ld kB) raw %.1f ms (last DATA %.1f ms, CPU %.1f ms) "
                 "ratio %.2f\n",
                 members->size(), round, l->total_ms, l->accepted_ms, l->first_rcpt_ms, l->data_ms,
                 l->cpu_ms, l->vm_hwm_kb, r->total_ms, r->data_ms, r->cpu_ms, ratio);
    rounds.push_back({{"round", round},
                      {"listd_ms", l->total_ms},
                      {"listd_data_ms", l->data_ms},
                      {"listd_accepted_ms", l->accepted_ms},
                      {"listd_first_rcpt_ms", l->first_rcpt_ms},
                      {"listd_cpu_ms", l->cpu_ms},
                      {"listd_vm_hwm_kb", l->vm_hwm_kb},
                      {"raw_ms", r->total_ms},
                      {"raw_data_ms", r->data_ms},
                      {"raw_first_rcpt_ms", r->first_rcpt_ms},
                      {"raw_client_cpu_ms", r->cpu_ms},
                      {"ratio", ratio},
                      {"data_ratio", data_ratio}});
    listd_ms.push_back(l->total_ms);
    raw_ms.push_back(r->total_ms);
    ratios.push_back(ratio);
    listd_data_ms.push_back(l->data_ms);
    raw_data_ms.push_back(r->data_ms);
    listd_cpu.push_back(l->cpu_ms);
    raw_cpu.push_back(r->cpu_ms);
    hwm.push_back(static_cast<double>(l->vm_hwm_kb));
    accepted.push_back(l->accepted_ms);
    first_rcpt.push_back(l->first_rcpt_ms);
    bytes = {{"post_bytes", post->size()},
             {"delivered_message_bytes", delivered.size()},
             {"data_bytes", l->seen.data_bytes},
             {"rcpts", l->seen.rcpts},
             {"transactions", l->seen.transactions}};
  }
  auto exit = listd->child.Stop(std::chrono::seconds(30));
  if (!exit.ok()) return fail(exit.error());
  server.Stop();

  Json out = {{"members", members->size()},
              {"intake", o.intake},
              {"batch", o.batch},
              {"runs", o.runs},
              {"warmup", o.warmup},
              // Over listd's whole life (start, warm-up, rounds, stop): wait4's ru_maxrss.
              {"listd_max_rss_kb", exit->usage.ru_maxrss},
              {"listd_total_cpu_ms", CpuMs(exit->usage)},
              {"load_before", load_before},
              {"load_after", LoadAverage()},
              {"bytes", bytes},
              {"median",
               {{"listd_ms", Median(listd_ms)},
                {"raw_ms", Median(raw_ms)},
                {"ratio_of_medians", Median(listd_ms) / Median(raw_ms)},
                {"median_ratio", Median(ratios)},
                {"listd_data_ms", Median(listd_data_ms)},
                {"raw_data_ms", Median(raw_data_ms)},
                {"data_ratio_of_medians", Median(listd_data_ms) / Median(raw_data_ms)},
                {"listd_accepted_ms", Median(accepted)},
                {"listd_first_rcpt_ms", Median(first_rcpt)},
                {"listd_cpu_ms", Median(listd_cpu)},
                {"raw_client_cpu_ms", Median(raw_cpu)},
                {"listd_vm_hwm_kb", Median(hwm)}}},
              {"max_listd_vm_hwm_kb", *std::max_element(hwm.begin(), hwm.end())},
              {"rounds", rounds}};
  std::cout << out.dump() << "\n";
  return 0;
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"bench_fanout: listd fan-out to an in-process SMTP sink against a raw client"};
  app.add_option("--listd", o.listd, "The blindlist-listd binary")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--store", o.store_url, "listd's [store] url, holding the list and its members")
      ->required();
  app.add_option("--list", o.list, "The list address the post is sent to")->required();
  app.add_option("--post", o.post_file, "The post: an S/MIME message with CRLF line endings")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--members", o.members_file, "The list's members, one a line (for the raw client)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--work", o.work_dir, "A directory for the rounds' configs, spools and logs")
      ->required();
  app.add_option("--sender", o.sender, "The envelope sender of the post")->capture_default_str();
  app.add_option("--intake", o.intake,
                 "How the post reaches listd: smtp, or pipe (pipe mode, LF lines on stdin)")
      ->check(CLI::IsMember({"smtp", "pipe"}))
      ->capture_default_str();
  app.add_option("--runs", o.runs, "Rounds (one listd and one raw measurement each)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "Rounds before the measured ones, not reported")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--verp", o.verp, "listd's [delivery] verp: off, per-recipient, xverp, auto")
      ->check(CLI::IsMember({"off", "per-recipient", "xverp", "auto"}));
  app.add_option("--batch", o.batch,
                 "Recipients per transaction: listd's batch_size and the raw one")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--sink-threads", o.sink_threads, "The sink's server threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "Seconds one measurement may take")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // A sink connection closed under us must come back as an error, not kill the bench.
  ::signal(SIGPIPE, SIG_IGN);
  return Run(o);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fanout: internal error: %s\n", e.what());
    return 1;
  }
}
