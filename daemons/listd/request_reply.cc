#include "request_reply.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>

#include "delivery.h"
#include "list_headers.h"
#include "net/smtp_client.h"

namespace blindlist::listd {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A header value cut to one line, without CR/LF, so nothing of the request can add a field.
std::string OneLine(std::string_view v, std::size_t max) {
  std::string out;
  for (char c : v) {
    if (out.size() >= max) break;
    out += (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
  }
  return out;
}

// An RFC 5322 msg-id from a Message-ID value, or "" when it is not one.
std::string MsgId(std::string_view value) {
  const std::size_t open = value.find('<');
  const std::size_t close = value.find('>', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos || close - open > 250)
    return {};
  std::string id(value.substr(open, close - open + 1));
  if (std::any_of(id.begin(), id.end(), [](char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
      })) {
    return {};
  }
  return id;
}

// 64-bit FNV-1a of list NUL sender: a file name; a collision only suppresses a reply.
std::string KeyOf(std::string_view list, std::string_view sender) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::string_view s) {
    for (char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
  };
  mix(Lower(list));
  mix(std::string_view("\0", 1));
  mix(Lower(sender));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string Rfc5322Date(std::int64_t now) {
  const auto t = static_cast<std::time_t>(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace

std::optional<std::string> RequestListOf(std::string_view recipient) {
  const std::size_t at = recipient.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  const std::string local = Lower(recipient.substr(0, at));
  constexpr std::string_view kSuffix = "-request";
  if (local.size() <= kSuffix.size() || !EndsWith(local, kSuffix)) return std::nullopt;
  return std::string(recipient.substr(0, at - kSuffix.size())) + std::string(recipient.substr(at));
}

std::string NoAutoReplyReason(std::string_view sender, std::string_view message) {
  if (sender.empty()) return "null sender";
  const std::string s = Lower(sender);
  const std::string local = s.substr(0, s.rfind('@'));
  for (std::string_view robot : {"mailer-daemon", "postmaster", "nobody", "noreply", "no-reply",
                                 "listserv", "majordomo", "root"}) {
    if (local == robot) return "robot sender " + std::string(robot);
  }
  if (local.starts_with("owner-") || EndsWith(local, "-request") || EndsWith(local, "-owner") ||
      EndsWith(local, "-bounces") || local.find("-bounces+") != std::string::npos) {
    return "list or robot sender";
  }
  const std::string auto_submitted = Lower(HeaderValue(message, "Auto-Submitted"));
  if (!auto_submitted.empty() && !auto_submitted.starts_with("no")) {
    return "Auto-Submitted: " + OneLine(auto_submitted, 40);
  }
  const std::string precedence = Lower(HeaderValue(message, "Precedence"));
  if (precedence == "bulk" || precedence == "list" || precedence == "junk") {
    return "Precedence: " + precedence;
  }
  for (std::string_view field : {"List-Id", "List-Post", "List-Unsubscribe", "X-Loop"}) {
    if (!HeaderValue(message, field).empty()) return "list mail (" + std::string(field) + ")";
  }
  const std::string suppress = Lower(HeaderValue(message, "X-Auto-Response-Suppress"));
  if (suppress.find("all") != std::string::npos || suppress.find("autoreply") != std::string::npos)
    return "X-Auto-Response-Suppress";
  return {};
}

std::string BuildRequestReply(const RequestReply& r, std::string_view request, std::int64_t now) {
  const std::size_t at = r.list.rfind('@');
  const std::string request_address = r.list.substr(0, at) + "-request" + r.list.substr(at);
  const std::string subject = OneLine(HeaderValue(request, "Subject"), 200);
  const std::string in_reply_to = MsgId(HeaderValue(request, "Message-ID"));
  std::random_device rd;
  char unique[32];
  std::snprintf(unique, sizeof unique, "%08x%08x", static_cast<unsigned>(rd()),
                static_cast<unsigned>(rd()));
  std::string m;
  m += "From: " + request_address + "\r\n";
  m += "To: " + r.sender + "\r\n";
  m += "Subject: Auto: " +
       (subject.empty() ? std::string("your message to ") + request_address : subject) + "\r\n";
  m += "Date: " + Rfc5322Date(now) + "\r\n";
  m += "Message-ID: <" + std::to_string(now) + "." + unique + "@" + r.hostname + ">\r\n";
  if (!in_reply_to.empty()) {
    m += "In-Reply-To: " + in_reply_to + "\r\n";
    m += "References: " + in_reply_to + "\r\n";
  }
  m += "Auto-Submitted: auto-replied\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=us-ascii\r\n";
  m += "Content-Transfer-Encoding: 7bit\r\n\r\n";
  m += "This is an automatic reply from " + request_address + ".\r\n\r\n";
  m += "Mail to this address is not read and takes no commands: members of the\r\n";
  m += "encrypted list " + r.list + " are added and removed by its\r\n";
  m += "administrator. To subscribe, unsubscribe, change your certificate or ask\r\n";
  m += "anything about the list, write to:\r\n\r\n";
  m += "    " + r.owner + "\r\n\r\n";
  m += "You get this reply at most once a day.\r\n";
  return m;
}

Status SendAutoReply(const Config& config, const std::string& to, std::string_view message) {
  if (config.delivery.mode == DeliveryConfig::Mode::kMaildir)
    return DeliverToMaildir(config.delivery.maildir_root, to, message);
  net::SmtpClientConfig smtp = config.delivery.smarthost;
  smtp.timeout = std::min(smtp.timeout, std::chrono::milliseconds(10000));
  BL_TRY_ASSIGN(auto session, net::SmtpClient::Connect(smtp));
  BL_TRY_ASSIGN(net::SmtpSendResult sent, session->Send("", {to}, message));
  session->Quit();
  const net::SmtpRecipientResult& r = sent.recipients.at(0);
  if (r.code / 100 != 2) {
    return MakeError("refused", "the smarthost refused the answer to " + to + ": " +
                                    std::to_string(r.code) + " " + r.enhanced + " " + r.text);
  }
  return Status::Ok();
}

RequestReplyLimiter::RequestReplyLimiter(std::string dir, std::chrono::seconds interval,
                                         std::size_t max_entries)
    : dir_(std::move(dir)), interval_(interval), max_entries_(max_entries) {}

std::size_t RequestReplyLimiter::Prune(std::int64_t now) {
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return 0;
  std::size_t kept = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string path = dir_ + "/" + e->d_name;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;
    if (now - st.st_mtime >= interval_.count()) {
      ::unlink(path.c_str());
    } else {
      ++kept;
    }
  }
  ::closedir(d);
  return kept;
}

Result<bool> RequestReplyLimiter::TryReserve(std::string_view list, std::string_view sender,
                                             std::int64_t now) {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    return MakeError("io-error", "mkdir " + dir_ + ": " + std::strerror(errno));
  const std::string path = dir_ + "/" + KeyOf(list, sender);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && now - st.st_mtime < interval_.count()) return false;
  std::size_t entries = 0;
  if (DIR* d = ::opendir(dir_.c_str()); d != nullptr) {
    while (const dirent* e = ::readdir(d)) entries += e->d_name[0] == '.' ? 0 : 1;
    ::closedir(d);
  }
  if (entries >= max_entries_ && Prune(now) >= max_entries_) return false;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError("io-error", "create " + path + ": " + std::strerror(errno));
  const struct timeval times[2] = {{static_cast<time_t>(now), 0}, {static_cast<time_t>(now), 0}};
  ::futimes(fd, times);
  ::close(fd);
  return true;
}

Status NotePipeRequestReply(const std::string& spool_dir, bool sent) {
  const std::string dir = spool_dir + "/pipe-counts";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return MakeError("io-error", "mkdir " + dir + ": " + std::strerror(errno));
  static std::random_device rd;
  const std::string path = dir + "/request-reply." + (sent ? "sent." : "failed.") +
                           std::to_string(::getpid()) + "." + std::to_string(rd());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError("io-error", "create " + path + ": " + std::strerror(errno));
  ::close(fd);
  return Status::Ok();
}

PipeReplyCounts CollectPipeRequestReplies(const std::string& spool_dir) {
  PipeReplyCounts counts;
  const std::string dir = spool_dir + "/pipe-counts";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return counts;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    const bool sent = name.starts_with("request-reply.sent.");
    if (!sent && !name.starts_with("request-reply.failed.")) continue;
    // Counted only once it is gone: a file that cannot be removed is not counted again and again.
    if (::unlink((dir + "/" + std::string(name)).c_str()) != 0) continue;
    ++(sent ? counts.sent : counts.failed);
  }
  ::closedir(d);
  return counts;
}

}  // namespace blindlist::listd
