#include "incoming.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "api/groupd_client.h"
#include "api/json_fields.h"
#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "crypto/cms.h"
#include "crypto/keys.h"
#include "list_headers.h"
#include "mime/smime.h"
#include "mime/smime_shape.h"
#include "obs/log.h"
#include "owner_alias.h"
#include "per_member.h"

namespace blindlist::listd {
namespace {

class GroupdRewrap final : public GroupSecretRewrap {
 public:
  explicit GroupdRewrap(const GroupdConfig& config) : creds_(config.Credentials()) {}
  Result<Bytes> Rewrap(const store::MailingList& list, ByteView recipient_info,
                       const std::string& post_id) override {
    if (creds_.server.empty())
      return MakeError("not-configured", "path B needs [groupd] url in the configuration");
    if (creds_.client_cert_file.empty())
      return MakeError("not-configured", "path B needs [groupd] client_certificate and client_key");
    api::ApiClient client(creds_);
    nlohmann::json body = {{"recipient_info", Base64Encode(recipient_info)},
                           {"reason", "exploder: post " + post_id + " to " + list.address}};
    BL_TRY_ASSIGN(
        nlohmann::json reply,
        client.Call("POST",
                    "/v1/groups/" + api::ApiClient::Segment(list.group) + "/rewrap/exploder",
                    body));
    Bytes der;
    auto b64 = api::StringField(reply, "recipient_info");
    if (!b64 || !Base64Decode(*b64, der)) {
      return MakeError("bad-reply", "groupd's rewrap reply has no recipient_info");
    }
    return der;
  }

 private:
  api::ApiCredentials creds_;
};

class LocalKeyRewrap final : public GroupSecretRewrap {
 public:
  explicit LocalKeyRewrap(std::string dir) : dir_(std::move(dir)) {}
  Result<Bytes> Rewrap(const store::MailingList& list, ByteView recipient_info,
                       const std::string& /*post_id*/) override {
    BL_TRY_ASSIGN(auto ri, crypto::RecipientInfo::Parse(recipient_info));
    BL_TRY_ASSIGN(auto key, crypto::PrivateKey::LoadFile(dir_ + "/" + list.address + ".key.pem"));
    BL_TRY_ASSIGN(crypto::GroupSecret secret,
                  LoadSecret(dir_ + "/" + list.address + ".secret.json"));
    Result<SecretBytes> cek = MakeError(std::string(errc::kUnwrapFailed), "no key");
    if (ri.kind == crypto::RecipientKind::kKeyAgree) {
      for (std::size_t i = 0; i < ri.recipient_keys.size() && !cek.ok(); ++i) {
        cek = crypto::UnwrapCek(ri, key, i);
      }
    } else {
      cek = crypto::UnwrapCek(ri, key);
    }
    if (!cek.ok()) return cek.error();
    return crypto::WrapCek(*cek, secret);
  }

 private:
  static Result<crypto::GroupSecret> LoadSecret(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return MakeError("not-configured", path + ": cannot read the group secret file");
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
    std::fill(s.begin(), s.end(), '\0');
    crypto::GroupSecret secret;
    SecretBytes key;
    Bytes id;
    auto key_id = api::StringField(j, "key_id");
    auto b64 = api::StringField(j, "secret");
    const bool decoded = b64 && Base64Decode(*b64, key);
    if (b64) std::fill(b64->begin(), b64->end(), '\0');
    if (!key_id || !decoded) {
      return MakeError("not-configured", path + ": expected {\"key_id\": HEX, \"secret\": BASE64}");
    }
    if (!FromHex(*key_id, id)) return MakeError("not-configured", path + ": key_id is not hex");
    secret.id = std::move(id);
    secret.key = std::move(key);
    return secret;
  }
  std::string dir_;
};

}  // namespace

struct IncomingWatch::State {
  int inotify_fd = -1;
  int stop_fd = -1;  // an eventfd: written once to stop the thread
  std::function<void()> on_arrival;
  std::thread thread;

  ~State() {
    if (inotify_fd >= 0) ::close(inotify_fd);
    if (stop_fd >= 0) ::close(stop_fd);
  }

  void Run() const {
    std::array<pollfd, 2> fds{pollfd{inotify_fd, POLLIN, 0}, pollfd{stop_fd, POLLIN, 0}};
    alignas(inotify_event) std::array<char, 4096> buf{};
    while (true) {
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        net::Log(net::LogLevel::kError, "spool watch stopped; the queue runner keeps its tick",
                 {{"error", std::strerror(errno)}});
        return;
      }
      if (fds[1].revents != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      // The events themselves do not matter: any arrival is a reason to look at incoming/.
      const ssize_t n = ::read(inotify_fd, buf.data(), buf.size());
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        net::Log(net::LogLevel::kError, "spool watch stopped; the queue runner keeps its tick",
                 {{"error", std::strerror(errno)}});
        return;
      }
      if (n > 0) on_arrival();
    }
  }
};

Result<std::unique_ptr<IncomingWatch>> IncomingWatch::Start(const std::string& incoming_dir,
                                                            std::function<void()> on_arrival) {
  auto state = std::make_unique<State>();
  state->on_arrival = std::move(on_arrival);
  state->inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (state->inotify_fd < 0) {
    return MakeError("inotify", std::string("inotify_init1: ") + std::strerror(errno));
  }
  // Spool::Accept renames a finished file into incoming/ (IN_MOVED_TO); IN_CLOSE_WRITE covers
  // a writer that creates the file there directly.
  if (::inotify_add_watch(state->inotify_fd, incoming_dir.c_str(),
                          IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
    return MakeError("inotify", "watch " + incoming_dir + ": " + std::strerror(errno));
  }
  state->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state->stop_fd < 0)
    return MakeError("inotify", std::string("eventfd: ") + std::strerror(errno));
  State* raw = state.get();
  state->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<IncomingWatch>(new IncomingWatch(std::move(state)));
}

IncomingWatch::IncomingWatch(std::unique_ptr<State> state) : state_(std::move(state)) {}

IncomingWatch::~IncomingWatch() {
  const std::uint64_t one = 1;
  if (::write(state_->stop_fd, &one, sizeof one) < 0) {
    net::Log(net::LogLevel::kError, "cannot stop the spool watch",
             {{"error", std::strerror(errno)}});
  }
  if (state_->thread.joinable()) state_->thread.join();
}

std::unique_ptr<GroupSecretRewrap> MakeGroupdRewrap(const GroupdConfig& config) {
  return std::make_unique<GroupdRewrap>(config);
}
std::unique_ptr<GroupSecretRewrap> MakeLocalKeyRewrap(const std::string& dir) {
  return std::make_unique<LocalKeyRewrap>(dir);
}

Result<std::string> ReplaceGroupRecipient(std::string_view message, const store::MailingList& list,
                                          GroupSecretRewrap& rewrap, const std::string& post_id) {
  // Everything before the call to groupd is about the post itself: a failure there is
  // permanent ("unparseable"), never a reason to wait and try again.
  BL_TRY_ASSIGN(GroupPost post, ReadGroupPost(message, list));
  BL_TRY_ASSIGN(Bytes kekri, rewrap.Rewrap(list, post.env.recipients[post.index].der, post_id));
  BL_TRY(post.env.ReplaceRecipient(post.index, kekri));
  post.smime.cms = post.env.Serialize();
  return mime::SerializeSmime(post.smime, post.env.auth_enveloped);
}

IncomingProcessor::IncomingProcessor(const Config& config, store::ListStore* lists,
                                     spool::Spool* spool, net::Metrics* metrics,
                                     GroupSecretRewrap* path_b, GroupSecretRewrap* path_b_prime,
                                     MemberRewrap* per_member)
    : config_(config),
      lists_(lists),
      spool_(spool),
      metrics_(metrics),
      path_b_(path_b),
      path_b_prime_(path_b_prime),
      per_member_(per_member) {}

// Posts by intake, counted once when first picked up: pipe mode is another process, which
// cannot touch the daemon's counters, so its posts are told apart by their id.
void IncomingProcessor::CountPickup(const std::string& id) {
  if (metrics_ == nullptr) return;
  metrics_->Increment("listd_posts_received_total",
                      {{"intake", spool::Spool::WrittenByGuest(id) ? "pipe" : "smtp-lmtp"}});
}

int IncomingProcessor::RunOnce(std::int64_t now) {
  now_ = now;
  ExpireHeld(now);
  auto ids = spool_->ListIncoming();
  if (!ids.ok()) {
    net::Log(net::LogLevel::kError, "cannot list the spool", {{"error", ids.error().message}});
    return 0;
  }
  int waiting = 0;
  for (const std::string& id : *ids) {
    auto it = waiting_.find(id);
    if (it != waiting_.end() && it->second.next_at > now) {
      ++waiting;
      continue;
    }
    auto post = spool_->ReadIncoming(id);
    if (!post.ok()) {
      // ReadIncoming moved a damaged file aside (or it was finished by another
      // process); either way there is nothing to do with it here.
      net::Log(net::LogLevel::kWarning, "incoming post unreadable",
               {{"id", id}, {"error", post.error().message}});
      waiting_.erase(id);
      continue;
    }
    if (it == waiting_.end()) CountPickup(id);
    Status st = Prepare(*post);
    if (st.ok()) {
      waiting_.erase(id);
      continue;
    }
    Backoff& b = waiting_[id];
    ++b.attempts;
    std::int64_t delay = config_.delivery.retry_initial.count();
    for (int i = 1; i < b.attempts && delay < config_.delivery.retry_max.count(); ++i) delay *= 2;
    delay = std::min<std::int64_t>(delay, config_.delivery.retry_max.count());
    b.next_at = now + delay;
    if (metrics_ != nullptr) metrics_->Increment("listd_prepare_failures_total", {});
    if (now - post->received_at > config_.delivery.max_age.count()) {
      net::Log(net::LogLevel::kError,
               "post could not be prepared before its maximum age; moved aside",
               {{"id", id}, {"list", post->list}, {"error", st.error().message}});
      Status q = spool_->Quarantine(id, "not prepared before max age: " + st.error().message);
      if (!q.ok())
        net::Log(net::LogLevel::kError, "quarantine failed", {{"error", q.error().message}});
      waiting_.erase(id);
      continue;
    }
    net::Log(net::LogLevel::kWarning, "post waits in the queue",
             {{"id", id},
              {"list", post->list},
              {"error", st.error().message},
              {"retry_in_seconds", std::to_string(delay)}});
    ++waiting;
  }
  return waiting;
}

Status IncomingProcessor::Hold(const spool::IncomingPost& post, const store::MailingList& list,
                               const std::string& reason) {
  net::Log(net::LogLevel::kError, "post cannot be re-wrapped; held in the spool, not forwarded",
           {{"id", post.id}, {"list", list.address}, {"reading", list.reading}, {"error", reason}});
  if (metrics_ != nullptr)
    metrics_->Increment("listd_posts_held_total", {{"reading", list.reading}});
  return spool_->Quarantine(
      post.id, "held, not forwarded: the " + list.reading + " re-wrap cannot use it: " + reason);
}

Status IncomingProcessor::HoldForOwner(const spool::IncomingPost& post,
                                       const store::MailingList& list) {
  // Anyone may mail a members-only list, and every such post was answered 250: held/ is bounded
  // per list, or a stranger fills the spool's disk (and members' posts then get 452).
  HeldTally& tally = held_tally_[post.list];
  const auto bytes = static_cast<std::int64_t>(post.message.size());
  if (tally.posts + 1 > config_.held_max_posts || tally.bytes + bytes > config_.held_max_bytes) {
    net::Log(net::LogLevel::kWarning,
             "post from a non-member deleted, not held: held/ is full for this list",
             {{"id", post.id},
              {"list", list.address},
              {"sender", post.sender},
              {"bytes", std::to_string(bytes)},
              {"held_posts", std::to_string(tally.posts)},
              {"held_bytes", std::to_string(tally.bytes)}});
    if (metrics_ != nullptr) metrics_->Increment("listd_held_full_deleted_total", {});
    return spool_->Remove(post.id);
  }
  BL_TRY(spool_->Hold(post.id));
  ++tally.posts;
  tally.bytes += bytes;
  net::Log(net::LogLevel::kWarning, "post held for the owner: the sender is not an enabled member",
           {{"id", post.id}, {"list", list.address}, {"sender", post.sender}});
  if (metrics_ != nullptr) metrics_->Increment("listd_posts_from_non_members_total", {});
  NotifyOwnerOfHeld(post, list);
  return Status::Ok();
}

// One mail to the owner per held post, through the owner alias (so it is delivered like any
// mail to LIST-owner@), from the null sender; never the post's content. At most
// held_notices_per_hour per list: past that the post is only logged.
void IncomingProcessor::NotifyOwnerOfHeld(const spool::IncomingPost& post,
                                          const store::MailingList& list) {
  if (list.owner.empty()) {
    net::Log(net::LogLevel::kInfo, "held post not announced: the list has no owner address",
             {{"id", post.id}, {"list", list.address}});
    return;
  }
  NoticeWindow& window = held_notices_[list.address];
  if (window.hour != now_ / 3600) window = NoticeWindow{now_ / 3600, 0};
  if (window.sent >= config_.held_notices_per_hour) {
    net::Log(net::LogLevel::kInfo, "held post not announced: too many this hour",
             {{"id", post.id}, {"list", list.address}});
    if (metrics_ != nullptr) metrics_->Increment("listd_held_notices_suppressed_total", {});
    return;
  }
  const std::size_t at = list.address.rfind('@');
  const std::string alias = list.address.substr(0, at) + "-owner" + list.address.substr(at);
  const std::string message =
      "From: MAILER-DAEMON@" + config_.smtp.hostname + "\r\nTo: " + list.owner +
      "\r\nSubject: Post held on " + list.address +
      "\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
      "A post to " +
      list.address +
      " is held: its sender is not an enabled member\r\n"
      "and the list takes posts from members only.\r\n\r\n"
      "Id: " +
      post.id + "\r\nEnvelope sender: <" + post.sender +
      ">\r\nSize: " + std::to_string(post.message.size()) +
      " bytes\r\n\r\n"
      "As listd's user (runuser -u blindlist-listd -- ...):\r\n"
      "To deliver it to the list: blindlist-listd --config FILE held release " +
      post.id + "\r\nTo delete it: blindlist-listd --config FILE held discard " + post.id +
      "\r\nOtherwise it is deleted after " + std::to_string(config_.held_days) + " day(s).\r\n";
  auto queued = spool_->Accept(alias, "", message);
  if (!queued.ok()) {
    net::Log(net::LogLevel::kWarning, "held post not announced: the spool refused the notice",
             {{"id", post.id}, {"list", list.address}, {"error", queued.error().message}});
    return;
  }
  ++window.sent;
  net::Log(net::LogLevel::kInfo, "owner told of a held post",
           {{"id", post.id}, {"list", list.address}, {"notice", *queued}});
}

void IncomingProcessor::ExpireHeld(std::int64_t now) {
  if (now < next_held_scan_) return;
  next_held_scan_ = now + 60;
  auto held = spool_->ListHeld();
  if (!held.ok()) {
    net::Log(net::LogLevel::kWarning, "cannot list held posts", {{"error", held.error().message}});
    return;
  }
  const std::int64_t max_age = std::int64_t{config_.held_days} * 86400;
  held_tally_.clear();
  for (const spool::HeldPost& h : *held) {
    if (now - h.received_at <= max_age) {
      HeldTally& tally = held_tally_[h.list];
      ++tally.posts;
      tally.bytes += static_cast<std::int64_t>(h.size);
      continue;
    }
    Status st = spool_->Discard(h.id);
    net::Log(st.ok() ? net::LogLevel::kInfo : net::LogLevel::kWarning,
             st.ok() ? "held post deleted: older than [spool] held_days" : "held post not deleted",
             {{"id", h.id},
              {"list", h.list},
              {"sender", h.sender},
              {"held_days", std::to_string(config_.held_days)},
              {"result", st.ok() ? "deleted" : st.error().message}});
  }
}

// Whether the post comes from an enabled member: its envelope sender or its From address.
Result<bool> IncomingProcessor::FromMember(const spool::IncomingPost& post,
                                           const store::MailingList& list) {
  std::vector<std::string> candidates = {NormaliseAddress(post.sender)};
  const std::string from = MailboxOf(HeaderValue(post.message, "From"));
  if (!from.empty()) candidates.push_back(NormaliseAddress(from));
  for (const std::string& who : candidates) {
    if (who.empty()) continue;
    BL_TRY_ASSIGN(auto m, lists_->FindMember(list.id, who));
    if (m.has_value() && m->enabled) return true;
  }
  return false;
}

// Mail to LIST-owner@ (owner_alias.h): forwarded as received, with the alias's X-Loop field on
// top, from its own envelope sender, to the owner address the list sets now.
Status IncomingProcessor::PrepareOwnerMail(spool::IncomingPost& post,
                                           const store::MailingList& list) {
  if (list.owner.empty()) {
    net::Log(net::LogLevel::kWarning, "mail for the owner held: the list has no owner address",
             {{"id", post.id}, {"list", list.address}});
    return spool_->Quarantine(post.id, "held: " + list.address + " has no owner address now");
  }
  const std::string trace = OwnerTraceField(post.list) + "\r\n";
  spool::ActivePost active;
  active.id = post.id;
  active.list = post.list;
  active.envelope_sender = post.sender;
  active.received_at = post.received_at;
  spool::RecipientEntry e;
  e.address = list.owner;
  active.recipients.push_back(std::move(e));
  BL_TRY(spool_->Activate(active, {trace, post.message}));
  net::Log(net::LogLevel::kInfo, "mail for the owner ready",
           {{"id", post.id}, {"list", list.address}, {"owner", list.owner}});
  return Status::Ok();
}

Status IncomingProcessor::PreparePerMember(spool::IncomingPost& post,
                                           const store::MailingList& list) {
  // As for path B: checked again, and a post the re-wrap cannot parse is held, never forwarded.
  auto shape = mime::CheckWholeMessage(post.message);
  if (!shape.ok()) return Hold(post, list, "not one S/MIME object: " + shape.error().message);
  if (!shape->smime && list.encrypted_only) {
    return Hold(post, list,
                "a plaintext post (" + shape->media_type + ") to an encrypted-only list");
  }
  BL_TRY_ASSIGN(auto members, lists_->ListMembers(list.id, /*enabled_only=*/true));
  spool::ActivePost active;
  active.id = post.id;
  active.list = list.address;
  active.envelope_sender = post.sender;
  active.received_at = post.received_at;
  PerMemberPlan plan;
  if (shape->smime) {
    if (per_member_ == nullptr) return MakeError("not-configured", "per-member is not configured");
    std::vector<std::string> addresses;
    addresses.reserve(members.size());
    for (const store::ListMember& m : members) addresses.push_back(m.address);
    auto planned = PlanPerMember(post.message, list, *per_member_, addresses, post.id);
    if (!planned.ok() && planned.error().code == errc::kUnparseable)
      return Hold(post, list, planned.error().message);
    if (!planned.ok()) return planned.error();  // groupd: waits in the queue, tried again
    plan = std::move(*planned);
    active.recipient_infos = std::move(plan.recipient_infos);
  } else {
    for (const store::ListMember& m : members) plan.recipients.push_back(m.address);
  }
  for (std::string& address : plan.recipients) {
    spool::RecipientEntry e;
    e.address = std::move(address);
    active.recipients.push_back(std::move(e));
  }
  const ListIdentity identity{list.address, list.description, list.bounce_address};
  const ListHeaderEdit edit = EditListHeaders(post.message, identity);
  const std::string_view source = post.message;
  BL_TRY(spool_->Activate(active, {edit.header, source.substr(edit.body_from)}));
  for (const std::string& a : plan.skipped) {
    net::Log(net::LogLevel::kInfo, "member skipped: no usable registered certificate",
             {{"id", post.id}, {"list", list.address}, {"member", a}});
  }
  if (!plan.not_current.empty()) NotifyOwnerNotCurrent(post, list, plan.not_current);
  if (metrics_ != nullptr) {
    metrics_->Increment("listd_posts_prepared_total", {{"reading", list.reading}});
    metrics_->Increment("listd_per_member_not_current_total", {},
                        static_cast<double>(plan.not_current.size()));
  }
  net::Log(net::LogLevel::kInfo, "post ready for fan-out",
           {{"id", post.id},
            {"list", list.address},
            {"reading", list.reading},
            {"members", std::to_string(active.recipients.size())},
            {"not_current", std::to_string(plan.not_current.size())},
            {"skipped", std::to_string(plan.skipped.size())}});
  return Status::Ok();
}

void IncomingProcessor::NotifyOwnerNotCurrent(const spool::IncomingPost& post,
                                              const store::MailingList& list,
                                              const std::vector<std::string>& not_current) {
  for (const std::string& a : not_current) {
    net::Log(net::LogLevel::kWarning, "delivery-list member not on groupd's roster: sent nothing",
             {{"id", post.id}, {"list", list.address}, {"member", a}});
  }
  // At most one notice per list per interval (per_member.h), so a stale list does not flood.
  auto claimed = lists_->ClaimOwnerNotice(list.id, std::string(kNotCurrentNoticeKind),
                                          static_cast<std::int64_t>(std::time(nullptr)),
                                          kNotCurrentNoticeInterval);
  if (!claimed.ok()) {
    net::Log(net::LogLevel::kError, "cannot record the owner notice; not sent",
             {{"id", post.id}, {"error", claimed.error().message}});
    return;
  }
  if (!*claimed) {
    net::Log(net::LogLevel::kInfo, "owner already told of members not on the roster today",
             {{"id", post.id}, {"list", list.address}});
    return;
  }
  const std::string owner = store::OwnerAddress(list);
  const std::string text =
      NotCurrentOwnerNotice(config_.smtp.hostname, owner, list, post.id, not_current);
  spool::ActivePost notice;
  notice.id = post.id + ".owner";
  notice.list = list.address;
  notice.envelope_sender = "";
  notice.received_at = post.received_at;
  notice.recipients.push_back(spool::RecipientEntry{owner, spool::RecipientState::kPending, 0, 0});
  Status st = spool_->Activate(notice, {text});
  if (!st.ok()) {
    net::Log(net::LogLevel::kError, "cannot queue the owner notice",
             {{"id", post.id}, {"error", st.error().message}});
  }
}

Status IncomingProcessor::Prepare(spool::IncomingPost& post) {
  BL_TRY_ASSIGN(auto found, lists_->FindList(post.list));
  if (!found) {
    BL_TRY_ASSIGN(auto owned, FindListByOwnerAlias(*lists_, post.list));
    if (owned) return PrepareOwnerMail(post, *owned);
    // The list was deleted after the post was accepted: keep the post, aside.
    net::Log(net::LogLevel::kWarning, "list no longer exists; post moved aside",
             {{"id", post.id}, {"list", post.list}});
    return spool_->Quarantine(post.id, "list " + post.list + " no longer exists");
  }
  const store::MailingList& list = *found;
  const bool released = spool_->Released(post.id);
  if (list.posting != "open" && !released) {
    // Checked here, after the 250, so the SMTP reply never says who is a member (acceptor.h).
    BL_TRY_ASSIGN(bool member, FromMember(post, list));
    if (!member) {
      net::Log(net::LogLevel::kWarning,
               "post held for the owner: the sender is not an enabled member",
               {{"id", post.id}, {"list", list.address}, {"sender", post.sender}});
      return HoldForOwner(post, list);
    }
  }
  if (released) {
    net::Log(net::LogLevel::kInfo, "released post: delivered as from a member",
             {{"id", post.id}, {"list", list.address}, {"sender", post.sender}});
  }

  if (list.reading == "per-member") {
    BL_TRY(PreparePerMember(post, list));
    if (released) (void)spool_->ClearReleased(post.id);  // else removed at the next start
    return Status::Ok();
  }
  const ListIdentity identity{list.address, list.description, list.bounce_address};
  std::string rewrapped;
  if (list.reading == "path-b" || list.reading == "path-b-prime") {
    // The post passed the whole-message rule at intake; it is checked again because the rules
    // may have changed since (or an older listd took it), and a post the re-wrap cannot parse is
    // never forwarded as received: it is held, moved aside in the spool with the reason.
    auto shape = mime::CheckWholeMessage(post.message);
    std::string unparseable;
    if (!shape.ok()) {
      unparseable = "not one S/MIME object: " + shape.error().message;
    } else if (!shape->smime && list.encrypted_only) {
      unparseable = "a plaintext post (" + shape->media_type + ") to an encrypted-only list";
    }
    if (shape.ok() && shape->smime) {
      // Only encrypted posts are re-wrapped (a list that allows plaintext forwards those as
      // they are).
      GroupSecretRewrap* rewrap = list.reading == "path-b" ? path_b_ : path_b_prime_;
      if (rewrap == nullptr) {
        return MakeError("not-configured", list.reading == "path-b"
                                               ? "path B is not configured"
                                               : "list reads by path B' but [unsafe] "
                                                 "allow_local_group_keys is off");
      }
      auto replaced = ReplaceGroupRecipient(post.message, list, *rewrap, post.id);
      if (replaced.ok()) {
        rewrapped = std::move(*replaced);
        std::string().swap(post.message);
      } else if (replaced.error().code == errc::kUnparseable) {
        unparseable = replaced.error().message;
      } else {
        return replaced.error();  // groupd: waits in the queue and is tried again
      }
    }
    if (!unparseable.empty()) return Hold(post, list, unparseable);
  }
  // The post goes out as the new header section followed by the original body, written to
  // the queue file from where they are: a 25 MB post is not copied again.
  const std::string_view source = rewrapped.empty() ? std::string_view(post.message) : rewrapped;
  const ListHeaderEdit edit = EditListHeaders(source, identity);
  const std::vector<std::string_view> parts = {edit.header, source.substr(edit.body_from)};

  BL_TRY_ASSIGN(auto members, lists_->ListMembers(list.id, /*enabled_only=*/true));
  spool::ActivePost active;
  active.id = post.id;
  active.list = list.address;
  // The post's own sender: a refusal of the message is reported to it (delivery.h). Delivery
  // sends from the list's bounce address, with a VERP tag.
  active.envelope_sender = post.sender;
  active.received_at = post.received_at;
  active.recipients.reserve(members.size());
  for (const store::ListMember& m : members) {
    spool::RecipientEntry e;
    e.address = m.address;
    active.recipients.push_back(std::move(e));
  }
  BL_TRY(spool_->Activate(active, parts));
  if (released) {
    if (Status st = spool_->ClearReleased(post.id); !st.ok()) {
      net::Log(net::LogLevel::kWarning, "release mark not removed (removed at the next start)",
               {{"id", post.id}, {"error", st.error().message}});
    }
  }
  if (metrics_ != nullptr)
    metrics_->Increment("listd_posts_prepared_total", {{"reading", list.reading}});
  net::Log(net::LogLevel::kInfo, "post ready for fan-out",
           {{"id", post.id},
            {"list", list.address},
            {"reading", list.reading},
            {"members", std::to_string(active.recipients.size())}});
  return Status::Ok();
}

}  // namespace blindlist::listd
