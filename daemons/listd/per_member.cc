#include "per_member.h"

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "api/groupd_client.h"
#include "api/json_fields.h"
#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "crypto/cms.h"
#include "crypto/keys.h"
#include "mime/smime.h"
#include "obs/log.h"

namespace blindlist::listd {
namespace {

class GroupdMemberRewrap final : public MemberRewrap {
 public:
  explicit GroupdMemberRewrap(const GroupdConfig& config) : creds_(config.Credentials()) {}

  Result<std::vector<MemberRecipientInfo>> Rewrap(const store::MailingList& list,
                                                  ByteView group_recipient_info,
                                                  const std::vector<std::string>& addresses,
                                                  const std::string& post_id) override {
    if (creds_.server.empty())
      return MakeError("not-configured", "per-member reading needs [groupd] url");
    if (creds_.client_cert_file.empty()) {
      return MakeError("not-configured",
                       "per-member reading needs [groupd] client_certificate and client_key");
    }
    ClientLease lease(*this);
    api::ApiClient& client = *lease.client;
    const std::string path =
        "/v1/groups/" + api::ApiClient::Segment(list.group) + "/rewrap/members";
    const std::string ri = Base64Encode(group_recipient_info);
    std::vector<MemberRecipientInfo> out;
    out.reserve(addresses.size());
    for (std::size_t start = 0; start < addresses.size(); start += kMemberRewrapChunk) {
      const std::size_t end = std::min(addresses.size(), start + kMemberRewrapChunk);
      nlohmann::json body = {{"recipient_info", ri},
                             {"members", std::vector<std::string>(
                                             addresses.begin() + static_cast<std::ptrdiff_t>(start),
                                             addresses.begin() + static_cast<std::ptrdiff_t>(end))},
                             {"rsa_padding", list.member_clients == "nss" ? "pkcs1" : "oaep"},
                             {"reason", "exploder: post " + post_id + " to " + list.address}};
      BL_TRY_ASSIGN(nlohmann::json reply, client.Call("POST", path, body));
      auto members = reply.find("members");
      if (members == reply.end() || !members->is_array() || members->size() != end - start)
        return MakeError("bad-reply", "groupd's rewrap/members reply has no member list");
      for (std::size_t i = 0; i < members->size(); ++i) {
        const nlohmann::json& m = (*members)[i];
        MemberRecipientInfo r;
        r.address = api::StringField(m, "address").value_or("");
        r.status = api::StringField(m, "status").value_or("");
        r.recipient_info = api::StringField(m, "recipient_info").value_or("");
        if (r.address != addresses[start + i] || (r.status == "ok" && r.recipient_info.empty()))
          return MakeError("bad-reply", "groupd's rewrap/members reply does not match the request");
        out.push_back(std::move(r));
      }
    }
    return out;
  }

 private:
  // A client taken from the idle ones (or made) for one Rewrap and put back after, so its
  // TLS connection to groupd is kept alive between posts instead of made again for each.
  struct ClientLease {
    explicit ClientLease(GroupdMemberRewrap& from) : owner(from) {
      std::lock_guard lock(from.mu_);
      if (!from.idle_.empty()) {
        client = std::move(from.idle_.back());
        from.idle_.pop_back();
      }
      if (!client) client = std::make_unique<api::ApiClient>(from.creds_);
    }
    ~ClientLease() {
      std::lock_guard lock(owner.mu_);
      owner.idle_.push_back(std::move(client));
    }
    ClientLease(const ClientLease&) = delete;
    ClientLease& operator=(const ClientLease&) = delete;
    GroupdMemberRewrap& owner;
    std::unique_ptr<api::ApiClient> client;
  };

  api::ApiCredentials creds_;
  std::mutex mu_;
  std::vector<std::unique_ptr<api::ApiClient>> idle_;  // at most one per concurrent Rewrap
};

}  // namespace

std::optional<std::size_t> GroupRecipientIndex(const crypto::Envelope& env,
                                               const store::MailingList& list) {
  for (const Bytes& der : list.certificates) {
    auto cert = crypto::Certificate::Load(der);
    if (!cert.ok()) continue;
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
      const crypto::RecipientInfo& ri = env.recipients[i];
      if (ri.kind == crypto::RecipientKind::kKeyTrans && ri.rid.Matches(*cert)) return i;
      if (ri.kind == crypto::RecipientKind::kKeyAgree) {
        for (const auto& rek : ri.recipient_keys) {
          if (rek.rid.Matches(*cert)) return i;
        }
      }
    }
  }
  return std::nullopt;
}

Result<GroupPost> ReadGroupPost(std::string_view message, const store::MailingList& list) {
  const auto unparseable = [](const Error& e) {
    return MakeError(std::string(errc::kUnparseable), e.message);
  };
  auto smime = mime::ParseSmime(message);
  if (!smime.ok()) return unparseable(smime.error());
  auto env = crypto::Envelope::Parse(smime->cms);
  if (!env.ok()) return unparseable(env.error());
  auto index = GroupRecipientIndex(*env, list);
  if (!index) {
    return MakeError(std::string(errc::kUnparseable),
                     "the post names none of the list's certificates");
  }
  return GroupPost{std::move(*smime), std::move(*env), *index};
}

std::unique_ptr<MemberRewrap> MakeGroupdMemberRewrap(const GroupdConfig& config) {
  return std::make_unique<GroupdMemberRewrap>(config);
}

Result<PerMemberPlan> PlanPerMember(std::string_view message, const store::MailingList& list,
                                    MemberRewrap& rewrap, const std::vector<std::string>& members,
                                    const std::string& post_id) {
  BL_TRY_ASSIGN(GroupPost post, ReadGroupPost(message, list));
  PerMemberPlan plan;
  if (members.empty()) return plan;
  BL_TRY_ASSIGN(auto answers,
                rewrap.Rewrap(list, post.env.recipients[post.index].der, members, post_id));
  for (MemberRecipientInfo& a : answers) {
    if (a.status == "ok") {
      plan.recipients.push_back(std::move(a.address));
      plan.recipient_infos.push_back(std::move(a.recipient_info));
    } else if (a.status == errc::kNotMember) {
      plan.not_current.push_back(std::move(a.address));
    } else if (list.per_member_fallback == "group") {
      plan.recipients.push_back(std::move(a.address));
      plan.recipient_infos.emplace_back();
    } else {
      plan.skipped.push_back(std::move(a.address));
    }
  }
  return plan;
}

// Every copy is the same message but for the RecipientInfos at the start of its CMS: the
// header section and the base64 of the CMS's constant tail are made once, and each copy writes
// only its own DER head (a few hundred bytes) before them.
struct PerMemberCopies::State {
  std::string headers;  // the header section, through the blank line
  std::string eol;
  crypto::Envelope light;  // the envelope without RecipientInfos, ciphertext or tail bytes
  Bytes tail;              // Envelope::SerializeTail()
  std::array<std::string, 3> tail_base64;  // base64 of tail[k:], k = 0, 1, 2
};

PerMemberCopies::PerMemberCopies(std::unique_ptr<State> state) : state_(std::move(state)) {}
PerMemberCopies::~PerMemberCopies() = default;

Result<std::shared_ptr<const PerMemberCopies>> PerMemberCopies::Parse(
    std::string_view message, const store::MailingList& /*list*/) {
  auto state = std::make_unique<State>();
  BL_TRY_ASSIGN(mime::SmimeEnvelope smime, mime::ParseSmime(message));
  if (smime.form != mime::SmimeForm::kMime)
    return MakeError(std::string(errc::kUnparseable),
                     "a per-member post is one application/pkcs7-mime entity");
  BL_TRY_ASSIGN(crypto::Envelope env, crypto::Envelope::Parse(smime.cms));
  BL_TRY(env.ReencodeContentDer());
  state->tail = env.SerializeTail();
  for (std::size_t k = 0; k < 3 && k <= state->tail.size(); ++k) {
    state->tail_base64[k] = Base64Encode(ByteView(state->tail).subspan(k));
  }
  state->light = std::move(env);
  state->light.recipients.clear();
  state->light.encrypted_content_info.clear();
  state->light.ciphertext.clear();
  // The MIME header section as SerializeSmime writes it, for an empty body.
  smime.cms.clear();
  state->headers = mime::SerializeSmime(smime, state->light.auth_enveloped);
  state->eol = state->headers.find("\r\n") != std::string::npos ? "\r\n" : "\n";
  return std::shared_ptr<const PerMemberCopies>(new PerMemberCopies(std::move(state)));
}

Result<std::string> PerMemberCopies::For(const std::string& recipient_info_b64) const {
  Bytes der;
  if (!Base64Decode(recipient_info_b64, der))
    return MakeError("bad-recipient-info", "a member's RecipientInfo is not base64");
  crypto::Envelope light = state_->light;
  BL_TRY(light.AddRecipient(der));
  Bytes head = light.SerializeHead(state_->tail.size());
  // Borrow up to two bytes of the tail so that the head's base64 ends on a group boundary.
  const std::size_t k = std::min((3 - head.size() % 3) % 3, state_->tail.size());
  head.insert(head.end(), state_->tail.begin(),
              state_->tail.begin() + static_cast<std::ptrdiff_t>(k));
  const std::string head_base64 = Base64Encode(head);
  const std::string& tail_base64 = state_->tail_base64[k];
  // 76-column lines, as SerializeSmime writes them.
  constexpr std::size_t kLine = 76;
  const std::size_t total = head_base64.size() + tail_base64.size();
  std::string out;
  out.reserve(state_->headers.size() + total + (total / kLine + 1) * state_->eol.size());
  out += state_->headers;
  for (std::size_t pos = 0; pos < total; pos += kLine) {
    const std::size_t end = std::min(total, pos + kLine);
    if (pos < head_base64.size()) {
      out.append(head_base64, pos, std::min(end, head_base64.size()) - pos);
    }
    if (end > head_base64.size()) {
      const std::size_t from = std::max(pos, head_base64.size()) - head_base64.size();
      out.append(tail_base64, from, end - head_base64.size() - from);
    }
    out += state_->eol;
  }
  return out;
}

std::string NotCurrentOwnerNotice(const std::string& hostname, const std::string& owner,
                                  const store::MailingList& list, const std::string& post_id,
                                  const std::vector<std::string>& not_current) {
  std::string text = "From: MAILER-DAEMON@" + hostname + "\r\nTo: " + owner +
                     "\r\nSubject: Members not on the roster of " + list.address +
                     "\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                     "Post " +
                     post_id + " to " + list.address +
                     " was not sent to these addresses of the delivery list:\r\n"
                     "groupd does not list them as members of " +
                     list.group + " now.\r\n\r\n";
  for (const std::string& a : not_current) text += "  " + a + "\r\n";
  text += "\r\nTo remove them: blindlist list member remove " + list.address +
          " ADDRESS\r\n(or let the list follow groupd's roster: list set --roster groupd)\r\n"
          "\r\nThis notice is sent at most once a day for this list; posts in between are not\r\n"
          "sent to these addresses either (listd's log names them with each post).\r\n";
  return text;
}

}  // namespace blindlist::listd
