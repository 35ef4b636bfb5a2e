#include "delivery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <optional>
#include <system_error>

#include "blindlist/error_codes.h"
#include "mime/dsn.h"
#include "net/smtp_client.h"
#include "obs/log.h"
#include "owner_alias.h"
#include "per_member.h"
#include "verp.h"

namespace blindlist::listd {
namespace {

Error SysError(const std::string& what) {
  return MakeError("io-error", what + ": " + std::strerror(errno));
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return SysError("mkdir " + path);
  return Status::Ok();
}

Status SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysError("open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return SysError("fsync " + path);
  return Status::Ok();
}

// A Maildir folder name for an address: lowercase, and nothing that could walk the tree.
std::string FolderOf(const std::string& address) {
  std::string out;
  for (char c : address) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '/' || u < 0x21 || u == 0x7f) {
      out += '_';
    } else {
      out += static_cast<char>(std::tolower(u));
    }
  }
  if (out.empty() || out[0] == '.') out.insert(0, "_");
  return out;
}

std::atomic<unsigned> maildir_counter{0};

constexpr int kBatchesPerSync = 10;

bool WriteAll(int fd, const char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Maildir files hold lines ending in LF, as Maildir readers expect: CRLF and a bare CR
// become LF. Written through a small buffer, so a 25 MB post is never copied whole.
bool WriteWithLf(int fd, std::string_view message) {
  char buf[64 * 1024];
  std::size_t used = 0;
  for (std::size_t i = 0; i < message.size(); ++i) {
    char c = message[i];
    if (c == '\r') {
      if (i + 1 < message.size() && message[i + 1] == '\n') continue;
      c = '\n';
    }
    buf[used++] = c;
    if (used == sizeof(buf)) {
      if (!WriteAll(fd, buf, used)) return false;
      used = 0;
    }
  }
  return WriteAll(fd, buf, used);
}

}  // namespace

Status DeliverToMaildir(const std::string& root, const std::string& address,
                        std::string_view message) {
  const std::string dir = root + "/" + FolderOf(address);
  BL_TRY(MakeDir(root));
  BL_TRY(MakeDir(dir));
  BL_TRY(MakeDir(dir + "/tmp"));
  BL_TRY(MakeDir(dir + "/new"));
  BL_TRY(MakeDir(dir + "/cur"));
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  for (char* p = host; *p != '\0'; ++p) {
    if (*p == '/' || *p == ':') *p = '_';
  }
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const std::string name = std::to_string(ts.tv_sec) + ".M" + std::to_string(ts.tv_nsec / 1000) +
                           "P" + std::to_string(::getpid()) + "Q" +
                           std::to_string(maildir_counter.fetch_add(1)) + "." + host;
  const std::string tmp = dir + "/tmp/" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("create " + tmp);
  if (!WriteWithLf(fd, message)) {
    Error e = SysError("write " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  if (::fsync(fd) != 0) {
    Error e = SysError("fsync " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  ::close(fd);
  const std::string final_name = dir + "/new/" + name;
  if (::rename(tmp.c_str(), final_name.c_str()) != 0) {
    Error e = SysError("rename " + tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  return SyncDir(dir + "/new");
}

struct Deliverer::PostWork {
  spool::ActivePost post;
  store::MailingList list;
  std::int64_t now = 0;
  std::atomic<int> jobs_left{0};
  std::atomic<int> jobs_done{0};
  int jobs_total = 0;
  std::atomic<bool> refusal_reported{false};
  // Mail to the list's owner alias (owner_alias.h): sent plainly from its own sender, no VERP,
  // no bounce scoring.
  bool owner_mail = false;
  std::shared_ptr<const PerMemberCopies> copies;  // per-member posts: parsed once
};

struct Deliverer::Job {
  std::shared_ptr<PostWork> post;  // a post job: these recipients of it
  std::vector<std::size_t> indexes;
  std::optional<store::BounceNotice> probe;         // or a probe
  std::optional<store::BounceNotice> owner_notice;  // or an owner notice
  std::string key;                                  // in in_flight_
};

// One worker's smarthost connection, opened when needed and closed when the worker is idle.
class Deliverer::Worker {
 public:
  explicit Worker(const net::SmtpClientConfig& config) : config_(config) {}
  ~Worker() { Close(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  Result<net::SmtpClient*> Client() {
    if (!client_) {
      BL_TRY_ASSIGN(client_, net::SmtpClient::Connect(config_));
    }
    return client_.get();
  }
  void Drop() { client_.reset(); }
  void Close() {
    if (client_) client_->Quit();
    client_.reset();
  }

 private:
  const net::SmtpClientConfig& config_;
  std::unique_ptr<net::SmtpClient> client_;
};

namespace {

constexpr std::int64_t kNoticeScanSeconds = 10;
constexpr std::size_t kNoticesPerScan = 100;

bool IsVerpOn(const Config& c) { return c.delivery.verp != DeliveryConfig::Verp::kOff; }

std::string Describe(const net::SmtpRecipientResult& r) {
  return std::to_string(r.code) + (r.enhanced.empty() ? "" : " " + r.enhanced) + " " + r.text;
}

// listd's own outcome (no connection, a Maildir write): about the message, never a member's
// bounce.
net::SmtpRecipientResult Outcome(int code, std::string text) {
  net::SmtpRecipientResult r;
  r.code = code;
  r.text = std::move(text);
  r.data_phase = true;
  return r;
}

using Settle = std::function<void(std::size_t, const net::SmtpRecipientResult&)>;

// One transaction on the worker's connection for the job's n-th recipient alone, from `from`
// (a VERP address that could not be made fails the transaction). False when the smarthost is
// lost: the connection is dropped and this and every later recipient of the job get a 421.
bool SendToOne(Deliverer::Worker& worker, const Deliverer::Job& job, std::size_t n,
               const Result<std::string>& from, std::string_view message, const Settle& settle) {
  const spool::ActivePost& post = job.post->post;
  const std::size_t i = job.indexes[n];
  Result<net::SmtpSendResult> sent = MakeError("smtp-unavailable", "not connected");
  if (!from.ok()) {
    sent = from.error();
  } else if (auto c = worker.Client(); !c.ok()) {
    sent = c.error();
  } else {
    sent = (*c)->Send(*from, {post.recipients[i].address}, message);
  }
  if (!sent.ok()) {
    worker.Drop();
    net::Log(net::LogLevel::kWarning, "smarthost unavailable",
             {{"id", post.id}, {"error", sent.error().message}});
    for (std::size_t k = n; k < job.indexes.size(); ++k)
      settle(job.indexes[k], Outcome(421, sent.error().message));
    return false;
  }
  settle(i, sent->recipients[0]);
  return true;
}

// What a DSN to a post's sender says about the smarthost's reply: its codes and a fixed text.
// The remote text may echo a member's address (per-recipient mode), so it goes to the log and
// to the owner only.
std::string SenderDiagnostic(const net::SmtpRecipientResult& r, const std::string& what) {
  return std::to_string(r.code) + (r.enhanced.empty() ? "" : " " + r.enhanced) + " " + what;
}

std::string AgeText(std::int64_t seconds) {
  if (seconds % 86400 == 0) return std::to_string(seconds / 86400) + " day(s)";
  if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + " hour(s)";
  return std::to_string(seconds) + " seconds";
}

// An expired record keeps, in its next-attempt field (meaningless once final), the reply it
// expired on (docs/queue-format.md): kExpiryMark + M * 10^9 + code * 10^6 + S * 10^3 + D, M 1 for
// a reply about the message itself, 4.S.D its enhanced status. So the expiry report goes where it
// would have gone had listd not restarted in between.
constexpr std::int64_t kExpiryMark = 900'000'000'000'000'000;

std::int64_t EncodeExpiry(const net::SmtpRecipientResult& r) {
  std::int64_t subject = 0;
  std::int64_t detail = 0;
  if (r.enhanced.starts_with("4.")) {
    const char* p = r.enhanced.data() + 2;
    const char* end = r.enhanced.data() + r.enhanced.size();
    auto first = std::from_chars(p, end, subject);
    if (first.ec != std::errc() || first.ptr == end || *first.ptr != '.' ||
        std::from_chars(first.ptr + 1, end, detail).ptr != end || subject > 999 || detail > 999 ||
        subject < 0 || detail < 0) {
      subject = detail = 0;
    }
  }
  const std::int64_t code = r.code >= 0 && r.code <= 999 ? r.code : 0;
  return kExpiryMark + (r.data_phase ? 1'000'000'000 : 0) + code * 1'000'000 + subject * 1000 +
         detail;
}

// Nullopt for a record written before (its field holds a time).
std::optional<net::SmtpRecipientResult> DecodeExpiry(std::int64_t value) {
  if (value < kExpiryMark || value - kExpiryMark >= 2'000'000'000) return std::nullopt;
  const std::int64_t v = value - kExpiryMark;
  net::SmtpRecipientResult r;
  r.data_phase = v / 1'000'000'000 == 1;
  r.code = static_cast<int>(v / 1'000'000 % 1000);
  const std::int64_t subject = v / 1000 % 1000;
  const std::int64_t detail = v % 1000;
  if (subject != 0 || detail != 0) {
    r.enhanced = "4." + std::to_string(subject) + "." + std::to_string(detail);
  }
  return r;
}

// Whether a sender names the list itself (or is empty): its failures go to the owner.
bool IsListItself(const store::MailingList& list, const std::string& sender) {
  if (sender.empty()) return true;
  const std::string s = store::CanonicalMailbox(sender);
  if (s == list.address || s == list.bounce_address) return true;
  auto tagged = SplitTag(s);
  return tagged && (tagged->base == list.bounce_address || tagged->base == list.address);
}

std::string NoticeHeader(const std::string& from, const std::string& to,
                         const std::string& subject) {
  return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
         "\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
}

}  // namespace

Deliverer::Deliverer(const Config& config, store::ListStore* lists, spool::Spool* spool,
                     net::Metrics* metrics, const VerpSigner* verp, std::function<void()> wake)
    : config_(config),
      lists_(lists),
      spool_(spool),
      metrics_(metrics),
      verp_(verp),
      wake_(std::move(wake)) {
  for (int i = 0; i < config_.delivery.connections; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

Deliverer::~Deliverer() {
  {
    const std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

std::int64_t Deliverer::Backoff(int attempts) const {
  std::int64_t delay = config_.delivery.retry_initial.count();
  for (int i = 1; i < attempts && delay < config_.delivery.retry_max.count(); ++i) delay *= 2;
  return std::min<std::int64_t>(delay, config_.delivery.retry_max.count());
}

void Deliverer::Enqueue(std::shared_ptr<Job> job) {
  {
    const std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Deliverer::WorkerLoop() {
  Worker worker(config_.delivery.smarthost);
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (queue_.empty()) {
        lock.unlock();
        worker.Close();  // idle: no connection held open
        lock.lock();
      }
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      if (job->post) {
        RunPostJob(*job, worker);
      } else if (job->probe) {
        SendProbe(*job->probe, worker);
      } else if (job->owner_notice) {
        SendOwnerNotice(*job->owner_notice, worker);
      }
    } catch (const std::exception& e) {
      net::Log(net::LogLevel::kError, "delivery worker error", {{"error", e.what()}});
      worker.Drop();
    }
    bool finished_post = false;
    if (job->post) {
      finished_post = job->post->jobs_left.fetch_sub(1) == 1;
      if (finished_post) FinishPost(*job->post);
    }
    if (!job->post || finished_post) {
      {
        const std::lock_guard<std::mutex> lock(mu_);
        in_flight_.erase(job->key);
      }
      if (wake_) wake_();
    }
  }
}

std::int64_t Deliverer::RunOnce(std::int64_t now) {
  auto ids = spool_->ListActive();
  if (!ids.ok()) {
    net::Log(net::LogLevel::kError, "cannot list the spool", {{"error", ids.error().message}});
    return now + 5;
  }
  const std::size_t max_in_flight = static_cast<std::size_t>(config_.delivery.connections) * 2;
  for (const std::string& id : *ids) {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      if (in_flight_.count(id) != 0 || in_flight_.size() >= max_in_flight) continue;
      auto due = next_due_.find(id);
      if (due != next_due_.end() && due->second > now) continue;
    }
    auto post = spool_->ReadActive(id);
    if (!post.ok()) {
      net::Log(net::LogLevel::kWarning, "active post unreadable",
               {{"id", id}, {"error", post.error().message}});
      continue;
    }
    auto work = std::make_shared<PostWork>();
    work->post = std::move(*post);
    work->now = now;
    auto list = lists_->FindList(work->post.list);
    if (list.ok() && !list->has_value()) {
      auto owned = FindListByOwnerAlias(*lists_, work->post.list);
      if (!owned.ok()) {
        list = owned.error();
      } else if (owned->has_value()) {
        work->owner_mail = true;
        list = std::move(*owned);
      }
    }
    if (list.ok() && list->has_value()) {
      work->list = **list;
    } else if (list.ok()) {
      // The list was deleted: the members still get what was accepted for them.
      work->list.address = work->post.list;
      work->list.bounce_address = store::DefaultBounceAddress(work->post.list);
    } else {
      net::Log(net::LogLevel::kWarning, "list database unavailable; delivery waits",
               {{"id", id}, {"error", list.error().message}});
      continue;
    }
    if (!work->post.recipient_infos.empty()) {
      auto copies = PerMemberCopies::Parse(work->post.message, work->list);
      if (!copies.ok()) {
        net::Log(net::LogLevel::kError, "per-member post unreadable; delivery waits",
                 {{"id", id}, {"error", copies.error().message}});
        continue;
      }
      work->copies = std::move(*copies);
    }
    std::vector<std::size_t> due;
    for (std::size_t i = 0; i < work->post.recipients.size(); ++i) {
      const spool::RecipientEntry& r = work->post.recipients[i];
      if (r.state == spool::RecipientState::kPending && r.next_attempt_at <= now) due.push_back(i);
    }
    if (due.empty()) {
      FinishPost(*work);
      continue;
    }
    const std::size_t batch = static_cast<std::size_t>(config_.delivery.batch_size);
    std::vector<std::shared_ptr<Job>> jobs;
    for (std::size_t start = 0; start < due.size(); start += batch) {
      auto job = std::make_shared<Job>();
      job->post = work;
      job->key = id;
      job->indexes.assign(
          due.begin() + static_cast<std::ptrdiff_t>(start),
          due.begin() + static_cast<std::ptrdiff_t>(std::min(due.size(), start + batch)));
      jobs.push_back(std::move(job));
    }
    work->jobs_left = static_cast<int>(jobs.size());
    work->jobs_total = static_cast<int>(jobs.size());
    {
      const std::lock_guard<std::mutex> lock(mu_);
      in_flight_.insert(id);
      next_due_.erase(id);
    }
    for (auto& job : jobs) Enqueue(std::move(job));
  }
  QueueBounceNotices(now);
  const std::lock_guard<std::mutex> lock(mu_);
  std::int64_t earliest = 0;
  for (auto it = next_due_.begin(); it != next_due_.end();) {
    if (std::find(ids->begin(), ids->end(), it->first) == ids->end() &&
        in_flight_.count(it->first) == 0) {
      it = next_due_.erase(it);  // finished meanwhile
      continue;
    }
    if (earliest == 0 || it->second < earliest) earliest = it->second;
    ++it;
  }
  return earliest;
}

// Every job of the post is done (or none was due): remove it, or note when it is due again.
void Deliverer::FinishPost(PostWork& work) {
  std::int64_t next = 0;
  std::optional<std::size_t> pending;
  for (std::size_t i = 0; i < work.post.recipients.size(); ++i) {
    const spool::RecipientEntry& r = work.post.recipients[i];
    if (r.state != spool::RecipientState::kPending) continue;
    if (!pending) pending = i;
    if (next == 0 || r.next_attempt_at < next) next = r.next_attempt_at;
  }
  if (pending) {
    if (work.jobs_total > 0) {
      // Concurrent batches may have written after the last sync: one more makes them durable.
      Status st = spool_->UpdateRecipients(
          work.post.id, {{*pending, work.post.recipients[*pending]}}, /*sync=*/true);
      if (!st.ok())
        net::Log(net::LogLevel::kError, "cannot record delivery results",
                 {{"id", work.post.id}, {"error", st.error().message}});
    }
    const std::lock_guard<std::mutex> lock(mu_);
    next_due_[work.post.id] = std::max(next, work.now + 1);
    return;
  }
  std::size_t sent = 0;
  std::size_t bounced = 0;
  std::size_t expired = 0;
  for (const spool::RecipientEntry& r : work.post.recipients) {
    if (r.state == spool::RecipientState::kDelivered) ++sent;
    if (r.state == spool::RecipientState::kBounced) ++bounced;
    if (r.state == spool::RecipientState::kExpired) ++expired;
  }
  // Where the report goes is read from the records (the same after a restart); this run's
  // replies add their remote text for the owner.
  ExpiryNote note;
  for (const spool::RecipientEntry& r : work.post.recipients) {
    if (r.state != spool::RecipientState::kExpired) continue;
    auto reply = DecodeExpiry(r.next_attempt_at);
    if (!reply || (note.message && !reply->data_phase)) continue;
    note.message = reply->data_phase;
    note.reply = *reply;
  }
  {
    const std::lock_guard<std::mutex> lock(mu_);
    auto it = expiries_.find(work.post.id);
    if (it != expiries_.end()) {
      if (it->second.message == note.message) note.reply = it->second.reply;
      expiries_.erase(it);
    }
  }
  // The report is in the spool before the queue file goes: a crash between them finds it there.
  if (expired > 0) {
    if (Status queued = QueueExpiryReport(work, note, expired); !queued.ok()) {
      net::Log(net::LogLevel::kError, "cannot queue the expiry report; the post stays queued",
               {{"id", work.post.id}, {"error", queued.error().message}});
      const std::lock_guard<std::mutex> lock(mu_);
      next_due_[work.post.id] = work.now + 60;
      return;
    }
  }
  Status st = spool_->Remove(work.post.id);
  if (!st.ok())
    net::Log(net::LogLevel::kError, "cannot remove a finished post",
             {{"error", st.error().message}});
  const std::vector<std::pair<std::string, std::string>> counts = {
      {"id", work.post.id},
      {"list", work.post.list},
      {"sent", std::to_string(sent)},
      {"bounced_or_refused", std::to_string(bounced)},
      {"expired", std::to_string(expired)}};
  if (expired > 0) {
    net::Log(net::LogLevel::kWarning, "post expired: its last copies were never accepted", counts);
  } else if (bounced > 0) {
    net::Log(net::LogLevel::kInfo, "post finished; some copies bounced or were refused", counts);
  } else {
    net::Log(net::LogLevel::kInfo, "post delivered to every member", counts);
  }
  const std::lock_guard<std::mutex> lock(mu_);
  next_due_.erase(work.post.id);
}

// One DSN for a post whose copies expired (4xx until max_age): Action failed, the last 4.x.x
// status. To the post's sender when the message itself was deferred (a 4xx to DATA, or no
// connection); to the owner when only some members' RCPTs were (the sender is not told about
// members). It names the list, never a member, and carries no remote text unless it goes to the
// owner. Written to the spool as its own queue file, "<id>.dsn", for the owner alias (so it is
// sent plainly, from the null sender, without VERP, and retried like any mail); an existing one
// (a crash after it was written) is kept.
Status Deliverer::QueueExpiryReport(const PostWork& work, const ExpiryNote& note,
                                    std::size_t expired) {
  const bool list_itself = IsListItself(work.list, work.post.envelope_sender);
  const bool to_owner = !work.owner_mail && (!note.message || list_itself);
  const std::string owner = store::OwnerAddress(work.list);
  if (work.owner_mail && work.post.envelope_sender.empty()) return Status::Ok();  // nobody to tell
  mime::DsnFailure f;
  f.reporting_mta = config_.smtp.hostname;
  f.from = "MAILER-DAEMON@" + config_.smtp.hostname;
  f.to = to_owner ? owner : work.post.envelope_sender;
  f.final_recipient = work.owner_mail ? work.post.list : work.list.address;
  f.status = note.reply.enhanced.starts_with("4.") ? note.reply.enhanced : "4.4.7";
  f.remote_mta = config_.delivery.mode == DeliveryConfig::Mode::kMaildir
                     ? ""
                     : config_.delivery.smarthost.host;
  net::SmtpRecipientResult last = note.reply;
  if (last.code == 0) last.code = 421;
  f.diagnostic = to_owner ? Describe(last)
                          : SenderDiagnostic(last, "delivery deferred until the post expired");
  const std::string age = AgeText(config_.delivery.max_age.count());
  f.explanation = to_owner
                      ? "A post to " + work.list.address + " expired in the queue after " + age +
                            ": " + std::to_string(expired) +
                            " member copies were deferred until then and were never delivered. "
                            "The last reply is below."
                      : "Your " + std::string(work.owner_mail ? "message" : "post") + " to " +
                            f.final_recipient +
                            " could not be delivered: the mail server kept deferring it for " +
                            age + ", and listd gave up.";
  f.original_message = work.post.message;
  f.date = static_cast<std::int64_t>(std::time(nullptr));
  spool::ActivePost dsn;
  dsn.id = work.post.id + ".dsn";
  const std::size_t at = work.list.address.rfind('@');
  dsn.list = at == std::string::npos
                 ? work.list.address
                 : work.list.address.substr(0, at) + "-owner" + work.list.address.substr(at);
  dsn.received_at = work.now;
  spool::RecipientEntry to;
  to.address = f.to;
  dsn.recipients.push_back(std::move(to));
  const std::string message = mime::MakeDsn(f);
  Status st = spool_->Activate(dsn, {message});
  if (!st.ok() && st.error().code != errc::kSpoolAlreadyActive) return st;
  net::Log(net::LogLevel::kInfo, "delivery status notification for an expired post queued",
           {{"id", work.post.id}, {"dsn", dsn.id}, {"to", f.to}, {"list", f.final_recipient}});
  return Status::Ok();
}

void Deliverer::Settle(PostWork& work, std::size_t index, const net::SmtpRecipientResult& reply,
                       std::vector<std::pair<std::size_t, spool::RecipientEntry>>& updates) {
  spool::ActivePost& post = work.post;
  spool::RecipientEntry r = post.recipients[index];
  const std::string text = Describe(reply);
  ++r.attempts;
  std::string result;
  if (reply.code / 100 == 2) {
    r.state = spool::RecipientState::kDelivered;
    result = "delivered";
  } else if (reply.code / 100 == 5) {
    r.state = spool::RecipientState::kBounced;
    result = reply.data_phase ? "refused" : "bounced";
  } else if (work.now - post.received_at >= config_.delivery.max_age.count()) {
    r.state = spool::RecipientState::kExpired;
    result = "expired";
  } else {
    r.next_attempt_at = work.now + Backoff(r.attempts);
    result = "deferred";
  }
  if (metrics_ != nullptr) metrics_->Increment("listd_deliveries_total", {{"result", result}});
  if (result == "expired") {
    r.next_attempt_at = EncodeExpiry(reply);
    const std::lock_guard<std::mutex> lock(mu_);
    ExpiryNote& note = expiries_[post.id];
    note.message = note.message || reply.data_phase;
    note.reply = reply;
  }
  if (result == "bounced" || result == "expired") {
    net::Log(net::LogLevel::kWarning, "delivery failed",
             {{"id", post.id}, {"member", r.address}, {"result", result}, {"reply", text}});
    if (work.list.id != 0 && !work.owner_mail && !reply.data_phase) {
      auto b = lists_->RecordBounce(work.list.id, r.address, work.now);
      if (!b.ok() && b.error().code != errc::kNotFound) {
        net::Log(net::LogLevel::kError, "cannot record a bounce", {{"error", b.error().message}});
      } else if (b.ok()) {
        net::Log(net::LogLevel::kInfo, "bounce scored",
                 {{"list", work.list.address},
                  {"member", r.address},
                  {"counted", b->counted ? "yes" : "no (one a day)"},
                  {"score", std::to_string(b->member.bounce_score)},
                  {"probe", b->probe_wanted ? "wanted" : "no"}});
        if (b->probe_wanted) {
          const std::lock_guard<std::mutex> lock(mu_);
          next_notice_scan_ = 0;
        }
      }
    }
  } else if (result == "refused") {
    net::Log(net::LogLevel::kWarning,
             "the smarthost refused the message; no member's score changes",
             {{"id", post.id}, {"member", r.address}, {"reply", text}});
  } else if (result == "deferred") {
    net::Log(net::LogLevel::kInfo, "delivery deferred",
             {{"id", post.id},
              {"member", r.address},
              {"reply", text},
              {"retry_at", std::to_string(r.next_attempt_at)}});
  }
  post.recipients[index] = r;
  updates.emplace_back(index, r);
}

namespace {

// One message to one recipient: through the worker's connection, or into a Maildir.
Result<net::SmtpRecipientResult> SendOne(const Config& config, Deliverer::Worker& worker,
                                         const std::string& from, const std::string& to,
                                         const std::string& message) {
  if (config.delivery.mode == DeliveryConfig::Mode::kMaildir) {
    BL_TRY(DeliverToMaildir(config.delivery.maildir_root, to, message));
    return Outcome(250, "ok");
  }
  BL_TRY_ASSIGN(net::SmtpClient * client, worker.Client());
  auto sent = client->Send(from, {to}, message);
  if (!sent.ok()) {
    worker.Drop();
    return sent.error();
  }
  return sent->recipients[0];
}

}  // namespace

void Deliverer::SendPerMember(
    Job& job, Worker& worker,
    const std::function<void(std::size_t, const net::SmtpRecipientResult&)>& settle) {
  PostWork& work = *job.post;
  const spool::ActivePost& post = work.post;
  for (std::size_t n = 0; n < job.indexes.size(); ++n) {
    const std::size_t i = job.indexes[n];
    const std::string& member = post.recipients[i].address;
    const std::string& ri = post.recipient_infos[i];
    Result<std::string> copy =
        ri.empty() ? Result<std::string>(post.message) : work.copies->For(ri);
    if (!copy.ok()) {
      net::Log(net::LogLevel::kError, "cannot write a member's copy",
               {{"id", post.id}, {"member", member}, {"error", copy.error().message}});
      settle(i, Outcome(451, copy.error().message));
      continue;
    }
    if (config_.delivery.mode == DeliveryConfig::Mode::kMaildir) {
      Status st = DeliverToMaildir(config_.delivery.maildir_root, member, *copy);
      settle(i, Outcome(st.ok() ? 250 : 451, st.ok() ? "ok" : st.error().message));
      continue;
    }
    // One transaction per member (its copy is its own), from its VERP address when VERP is on.
    Result<std::string> from = work.list.bounce_address;
    if (IsVerpOn(config_)) {
      from = verp_->MemberSender(work.list.bounce_address, 'm', work.list.address, post.id, member);
    }
    if (!SendToOne(worker, job, n, from, *copy, settle)) return;
  }
}

void Deliverer::RunPostJob(Job& job, Worker& worker) {
  PostWork& work = *job.post;
  spool::ActivePost& post = work.post;
  std::vector<std::pair<std::size_t, spool::RecipientEntry>> updates;
  std::optional<net::SmtpRecipientResult> refusal;  // a 5xx about the message itself
  auto settle = [&](std::size_t i, const net::SmtpRecipientResult& r) {
    if (r.data_phase && r.code / 100 == 5 && !refusal) refusal = r;
    Settle(work, i, r, updates);
  };
  if (work.owner_mail) {
    // Forwarded as an alias forwards: from the message's own sender, to the owner.
    for (std::size_t i : job.indexes) {
      auto sent =
          SendOne(config_, worker, post.envelope_sender, post.recipients[i].address, post.message);
      settle(i, sent.ok() ? *sent : Outcome(421, sent.error().message));
    }
  } else if (work.copies) {
    SendPerMember(job, worker, settle);
  } else if (config_.delivery.mode == DeliveryConfig::Mode::kMaildir) {
    for (std::size_t i : job.indexes) {
      Status st =
          DeliverToMaildir(config_.delivery.maildir_root, post.recipients[i].address, post.message);
      settle(i, Outcome(st.ok() ? 250 : 451, st.ok() ? "ok" : st.error().message));
    }
  } else {
    auto client = worker.Client();
    using Verp = DeliveryConfig::Verp;
    const Verp verp = config_.delivery.verp;
    const bool xverp =
        client.ok() && (verp == Verp::kXverp || (verp == Verp::kAuto && (*client)->xverp()));
    if (!client.ok() || (verp == Verp::kXverp && !(*client)->xverp())) {
      const std::string why = client.ok() ? "[delivery] verp = \"xverp\" but the smarthost does "
                                            "not offer XVERP"
                                          : client.error().message;
      net::Log(net::LogLevel::kWarning, "smarthost unavailable", {{"id", post.id}, {"error", why}});
      for (std::size_t i : job.indexes) settle(i, Outcome(421, why));
    } else if (verp == Verp::kOff || xverp) {
      std::string from = work.list.bounce_address;
      if (xverp) {
        auto sender = verp_->BatchSender(work.list.bounce_address, work.list.address, post.id);
        from = sender.ok() ? *sender : from;
      }
      std::vector<std::string> rcpts;
      for (std::size_t i : job.indexes) rcpts.push_back(post.recipients[i].address);
      auto sent = (*client)->Send(from, rcpts, post.message, xverp);
      if (!sent.ok()) {
        worker.Drop();
        net::Log(net::LogLevel::kWarning, "smarthost unavailable",
                 {{"id", post.id}, {"error", sent.error().message}});
        for (std::size_t i : job.indexes) settle(i, Outcome(421, sent.error().message));
      } else {
        for (std::size_t k = 0; k < job.indexes.size(); ++k)
          settle(job.indexes[k], sent->recipients[k]);
      }
    } else {
      // One transaction per member, each from its own VERP address, on this one connection.
      for (std::size_t n = 0; n < job.indexes.size(); ++n) {
        const std::size_t i = job.indexes[n];
        const std::string& member = post.recipients[i].address;
        auto from =
            verp_->MemberSender(work.list.bounce_address, 'm', work.list.address, post.id, member);
        if (!SendToOne(worker, job, n, from, post.message, settle)) break;
      }
    }
  }
  if (refusal && !work.refusal_reported.exchange(true)) SendMessageFailure(work, *refusal, worker);
  // Synced every few batches and at the post's last: a crash forgets at most the last few
  // batches' cross-offs, so those members get the post twice, never zero times.
  const int done = work.jobs_done.fetch_add(1) + 1;
  const bool sync = done == work.jobs_total || done % kBatchesPerSync == 0;
  Status st = spool_->UpdateRecipients(post.id, updates, sync);
  if (!st.ok()) {
    // Not crossed off durably: they will be sent again (a duplicate, never a loss).
    net::Log(net::LogLevel::kError, "cannot record delivery results",
             {{"id", post.id}, {"error", st.error().message}});
  }
}

void Deliverer::QueueBounceNotices(std::int64_t now) {
  if (!IsVerpOn(config_)) return;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (now < next_notice_scan_) return;
    next_notice_scan_ = now + kNoticeScanSeconds;
  }
  auto probes = lists_->PendingProbes(kNoticesPerScan);
  auto notices = lists_->PendingOwnerNotices(kNoticesPerScan);
  if (!probes.ok() || !notices.ok()) {
    net::Log(net::LogLevel::kWarning, "cannot read waiting probes and owner notices",
             {{"error", (probes.ok() ? notices.error() : probes.error()).message}});
    return;
  }
  auto queue = [&](const store::BounceNotice& n, bool probe) {
    auto job = std::make_shared<Job>();
    job->key = std::string(probe ? "probe " : "notice ") + std::to_string(n.list_id) + " " +
               n.member.address;
    {
      const std::lock_guard<std::mutex> lock(mu_);
      if (!in_flight_.insert(job->key).second) return;
    }
    (probe ? job->probe : job->owner_notice) = n;
    Enqueue(std::move(job));
  };
  for (const store::BounceNotice& n : *probes) queue(n, true);
  for (const store::BounceNotice& n : *notices) queue(n, false);
}

// A probe: a plain note to the member from its own VERP address ('p', the probe's time). If it
// bounces (here, at RCPT, or later as a report), the member is disabled.
void Deliverer::SendProbe(const store::BounceNotice& n, Worker& worker) {
  auto list = lists_->FindList(n.list_address);
  if (!list.ok() || !list->has_value()) return;
  const std::int64_t at = static_cast<std::int64_t>(std::time(nullptr));
  auto from = verp_->MemberSender((*list)->bounce_address, 'p', (*list)->address,
                                  std::to_string(at), n.member.address);
  if (!from.ok()) return;
  const std::string message =
      NoticeHeader(store::OwnerAddress(**list), n.member.address,
                   "Delivery test from " + (*list)->address) +
      "Mail from the list " + (*list)->address +
      " to this address has bounced.\r\n"
      "This message tests whether it still arrives; nothing needs to be done.\r\n"
      "If it bounces too, delivery to this address is disabled and the list owner\r\n"
      "is told.\r\n";
  auto sent = SendOne(config_, worker, *from, n.member.address, message);
  if (!sent.ok() || sent->code / 100 == 4) {
    net::Log(net::LogLevel::kWarning, "probe not sent; tried again later",
             {{"list", n.list_address},
              {"member", n.member.address},
              {"error", sent.ok() ? Describe(*sent) : sent.error().message}});
    return;
  }
  Status marked = lists_->MarkProbeSent(n.list_id, n.member.address, at);
  net::Log(net::LogLevel::kInfo, "probe sent",
           {{"list", n.list_address}, {"member", n.member.address}, {"reply", Describe(*sent)}});
  if (!marked.ok() || sent->code / 100 != 5 || sent->data_phase) return;
  // Refused at RCPT: the probe bounced already.
  auto confirmed = lists_->ConfirmProbeBounce(n.list_id, n.member.address, at, Describe(*sent));
  if (confirmed.ok() && confirmed->has_value()) {
    net::Log(net::LogLevel::kWarning, "member disabled: its probe bounced",
             {{"list", n.list_address}, {"member", n.member.address}});
    const std::lock_guard<std::mutex> lock(mu_);
    next_notice_scan_ = 0;
  }
}

void Deliverer::SendOwnerNotice(const store::BounceNotice& n, Worker& worker) {
  auto list = lists_->FindList(n.list_address);
  if (!list.ok() || !list->has_value()) return;
  const std::string owner = store::OwnerAddress(**list);
  const std::string message =
      NoticeHeader("MAILER-DAEMON@" + config_.smtp.hostname, owner,
                   "Member disabled on " + (*list)->address) +
      "Delivery to " + n.member.address + " on " + (*list)->address +
      " is disabled:\r\nits mail bounced " + std::to_string(n.member.bounce_score) +
      " times and a probe bounced too.\r\nReason: " + n.member.disabled_reason +
      "\r\n\r\nThe address stays on the list, disabled (it receives nothing).\r\n"
      "To deliver to it again: blindlist list member enable " +
      (*list)->address + " " + n.member.address +
      "\r\nTo remove it: blindlist list member remove " + (*list)->address + " " +
      n.member.address + "\r\n";
  auto sent = SendOne(config_, worker, "", owner, message);
  if (!sent.ok() || sent->code / 100 == 4) {
    net::Log(net::LogLevel::kWarning, "owner notice not sent; tried again later",
             {{"list", n.list_address},
              {"owner", owner},
              {"error", sent.ok() ? Describe(*sent) : sent.error().message}});
    return;
  }
  Status st = lists_->MarkOwnerNotified(n.list_id, n.member.address);
  net::Log(net::LogLevel::kInfo, "owner told of a disabled member",
           {{"list", n.list_address},
            {"member", n.member.address},
            {"reply", Describe(*sent)},
            {"recorded", st.ok() ? "yes" : st.error().message}});
}

// The smarthost refused the message itself: its sender (or the list's owner) gets a DSN from
// the null sender, once per post. It names the list, never a member.
void Deliverer::SendMessageFailure(PostWork& work, const net::SmtpRecipientResult& reply,
                                   Worker& worker) {
  const bool to_owner = IsListItself(work.list, work.post.envelope_sender);
  const std::string to = to_owner ? store::OwnerAddress(work.list) : work.post.envelope_sender;
  if (work.owner_mail && work.post.envelope_sender.empty()) return;  // nobody to tell
  mime::DsnFailure f;
  f.reporting_mta = config_.smtp.hostname;
  f.from = "MAILER-DAEMON@" + config_.smtp.hostname;
  f.to = to;
  f.final_recipient = work.owner_mail ? work.post.list : work.list.address;
  f.status = reply.enhanced.empty() ? "5.0.0" : reply.enhanced;
  f.remote_mta = config_.delivery.smarthost.host;
  // The full reply only to the owner: the remote text may name a member.
  f.diagnostic =
      to_owner ? Describe(reply) : SenderDiagnostic(reply, "the mail server refused the message");
  f.explanation = "Your " + std::string(work.owner_mail ? "message" : "post") + " to " +
                  f.final_recipient +
                  " could not be delivered: the mail server refused the message itself. "
                  "No member received it from this attempt.";
  f.original_message = work.post.message;
  f.date = work.now;
  auto sent = SendOne(config_, worker, "", to, mime::MakeDsn(f));
  net::Log(sent.ok() && sent->code / 100 == 2 ? net::LogLevel::kInfo : net::LogLevel::kWarning,
           "delivery status notification for a refused post",
           {{"id", work.post.id},
            {"to", to},
            {"smarthost_reply", Describe(reply)},
            {"result", sent.ok() ? Describe(*sent) : sent.error().message}});
}

}  // namespace blindlist::listd
