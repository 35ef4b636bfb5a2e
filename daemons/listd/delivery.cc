#include "delivery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "net/smtp_client.h"
#include "obs/log.h"

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

Deliverer::Deliverer(const Config& config, store::ListStore* lists, spool::Spool* spool,
                     net::Metrics* metrics)
    : config_(config), lists_(lists), spool_(spool), metrics_(metrics) {}

std::int64_t Deliverer::Backoff(int attempts) const {
  std::int64_t delay = config_.delivery.retry_initial.count();
  for (int i = 1; i < attempts && delay < config_.delivery.retry_max.count(); ++i) delay *= 2;
  return std::min<std::int64_t>(delay, config_.delivery.retry_max.count());
}

std::int64_t Deliverer::RunOnce(std::int64_t now) {
  auto ids = spool_->ListActive();
  if (!ids.ok()) {
    net::Log(net::LogLevel::kError, "cannot list the spool", {{"error", ids.error().message}});
    return now + 5;
  }
  std::map<std::string, std::int64_t> seen;
  for (const std::string& id : *ids) {
    auto due = next_due_.find(id);
    if (due != next_due_.end() && due->second > now) {
      seen[id] = due->second;
      continue;
    }
    auto post = spool_->ReadActive(id);
    if (!post.ok()) {
      net::Log(net::LogLevel::kWarning, "active post unreadable",
               {{"id", id}, {"error", post.error().message}});
      continue;
    }
    DeliverPost(*post, now);
    std::int64_t next = 0;
    bool pending = false;
    for (const spool::RecipientEntry& r : post->recipients) {
      if (r.state != spool::RecipientState::kPending) continue;
      pending = true;
      if (next == 0 || r.next_attempt_at < next) next = r.next_attempt_at;
    }
    if (!pending) {
      Status st = spool_->Remove(id);
      if (!st.ok())
        net::Log(net::LogLevel::kError, "cannot remove a finished post",
                 {{"error", st.error().message}});
      net::Log(net::LogLevel::kInfo, "post delivered to every member",
               {{"id", id}, {"list", post->list}});
      continue;
    }
    seen[id] = std::max(next, now + 1);
  }
  next_due_ = std::move(seen);
  std::int64_t earliest = 0;
  for (const auto& [id, at] : next_due_) {
    if (earliest == 0 || at < earliest) earliest = at;
  }
  return earliest;
}

void Deliverer::Settle(spool::ActivePost& post, std::size_t index, int code,
                       const std::string& text, std::int64_t now,
                       std::vector<std::pair<std::size_t, spool::RecipientEntry>>& updates) {
  spool::RecipientEntry r = post.recipients[index];
  ++r.attempts;
  std::string result;
  if (code / 100 == 2) {
    r.state = spool::RecipientState::kDelivered;
    result = "delivered";
  } else if (code / 100 == 5) {
    r.state = spool::RecipientState::kBounced;
    result = "bounced";
  } else if (now - post.received_at >= config_.delivery.max_age.count()) {
    r.state = spool::RecipientState::kExpired;
    result = "expired";
  } else {
    r.next_attempt_at = now + Backoff(r.attempts);
    result = "deferred";
  }
  if (metrics_ != nullptr) metrics_->Increment("listd_deliveries_total", {{"result", result}});
  if (r.state == spool::RecipientState::kBounced || r.state == spool::RecipientState::kExpired) {
    net::Log(net::LogLevel::kWarning, "delivery failed",
             {{"id", post.id}, {"member", r.address}, {"result", result}, {"reply", text}});
    auto list = lists_->FindList(post.list);
    if (list.ok() && list->has_value()) {
      auto b = lists_->RecordBounce((*list)->id, r.address, (result + ": " + text).substr(0, 200));
      if (!b.ok())
        net::Log(net::LogLevel::kError, "cannot record a bounce", {{"error", b.error().message}});
    }
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

void Deliverer::DeliverPost(spool::ActivePost& post, std::int64_t now) {
  std::vector<std::size_t> due;
  for (std::size_t i = 0; i < post.recipients.size(); ++i) {
    const spool::RecipientEntry& r = post.recipients[i];
    if (r.state == spool::RecipientState::kPending && r.next_attempt_at <= now) due.push_back(i);
  }
  if (due.empty()) return;
  const std::size_t batch = static_cast<std::size_t>(config_.delivery.batch_size);

  std::unique_ptr<net::SmtpClient> client;
  int batches = 0;
  for (std::size_t start = 0; start < due.size(); start += batch) {
    std::size_t end = std::min(due.size(), start + batch);
    std::vector<std::pair<std::size_t, spool::RecipientEntry>> updates;
    if (config_.delivery.mode == DeliveryConfig::Mode::kMaildir) {
      for (std::size_t k = start; k < end; ++k) {
        std::size_t i = due[k];
        Status st = DeliverToMaildir(config_.delivery.maildir_root, post.recipients[i].address,
                                     post.message);
        Settle(post, i, st.ok() ? 250 : 451, st.ok() ? "ok" : st.error().message, now, updates);
      }
    } else {
      std::vector<std::string> rcpts;
      for (std::size_t k = start; k < end; ++k) rcpts.push_back(post.recipients[due[k]].address);
      Result<net::SmtpSendResult> sent = MakeError("smtp-unavailable", "not connected");
      if (!client) {
        auto c = net::SmtpClient::Connect(config_.delivery.smarthost);
        if (c.ok())
          client = std::move(*c);
        else
          sent = c.error();
      }
      if (client) sent = client->Send(post.envelope_sender, rcpts, post.message);
      if (!sent.ok()) {
        client.reset();
        net::Log(net::LogLevel::kWarning, "smarthost unavailable",
                 {{"id", post.id}, {"error", sent.error().message}});
        // The rest of this post waits too: one connection attempt per pass, not per batch.
        for (std::size_t k = start; k < due.size(); ++k) {
          Settle(post, due[k], 421, sent.error().message, now, updates);
        }
        start = due.size();
      } else {
        for (std::size_t k = start; k < end; ++k) {
          const net::SmtpRecipientResult& r = sent->recipients[k - start];
          Settle(post, due[k], r.code, std::to_string(r.code) + " " + r.enhanced + " " + r.text,
                 now, updates);
        }
      }
    }
    // Synced every few batches and at the end: a crash forgets at most the last few
    // batches' cross-offs, so those members get the post twice, never zero times.
    ++batches;
    const bool sync = start + batch >= due.size() || batches % kBatchesPerSync == 0;
    Status st = spool_->UpdateRecipients(post.id, updates, sync);
    if (!st.ok()) {
      // Not crossed off durably: they will be sent again (a duplicate, never a loss).
      net::Log(net::LogLevel::kError, "cannot record delivery results",
               {{"id", post.id}, {"error", st.error().message}});
      return;
    }
  }
  if (client) client->Quit();
}

}  // namespace blindlist::listd
