// Per-member reading (DESIGN.md, "per member"): before a post goes out, groupd re-wraps its
// message key to each current member's registered certificate (POST .../rewrap/members, as
// the list's exploder); each member's copy holds only that member's RecipientInfo, so the
// member's own S/MIME client reads it. listd learns nothing: each answer is wrapped to a
// member's public key. A post is never sent without the re-wrap: any failure to get it keeps
// the post in the spool.
// Thread-safety: MemberRewrap implementations are used from one thread (the runner's);
// PerMemberCopies is immutable after Parse and may be shared by the delivery workers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "config.h"
#include "crypto/cms.h"
#include "mime/smime.h"
#include "store/list_store.h"

namespace blindlist::listd {

// The index of the RecipientInfo that names one of the list's certificates.
std::optional<std::size_t> GroupRecipientIndex(const crypto::Envelope& env,
                                               const store::MailingList& list);

// A post read as far as the exploder reads one: its S/MIME entity, its envelope and the index of
// the RecipientInfo for the list. "unparseable" when the post is at fault (permanent).
struct GroupPost {
  mime::SmimeEnvelope smime;
  crypto::Envelope env;
  std::size_t index = 0;
};
Result<GroupPost> ReadGroupPost(std::string_view message, const store::MailingList& list);

// groupd's answer for one address.
struct MemberRecipientInfo {
  std::string address;
  std::string status;          // "ok", "not-member", "no-certificate", "unusable-certificate"
  std::string recipient_info;  // base64 DER, for "ok"
};

class MemberRewrap {
 public:
  virtual ~MemberRewrap() = default;
  // One entry per address, in order. Any error leaves the post waiting.
  virtual Result<std::vector<MemberRecipientInfo>> Rewrap(const store::MailingList& list,
                                                          ByteView group_recipient_info,
                                                          const std::vector<std::string>& addresses,
                                                          const std::string& post_id) = 0;
};

// Asks groupd (mTLS as the exploder), kChunk addresses per request.
std::unique_ptr<MemberRewrap> MakeGroupdMemberRewrap(const GroupdConfig& config);
inline constexpr std::size_t kMemberRewrapChunk = 500;

// Who gets what from one per-member post.
struct PerMemberPlan {
  std::vector<std::string> recipients;       // in delivery-list order
  std::vector<std::string> recipient_infos;  // one per recipient; "" = the group's copy
  std::vector<std::string> not_current;      // in listd's delivery list, not on groupd's roster
  std::vector<std::string> skipped;          // no usable certificate, per_member_fallback = skip
};

// The group RecipientInfo of `message` (RFC 5322 S/MIME naming one of the list's certificates),
// re-wrapped for `members`. "unparseable" when the post is at fault (permanent).
Result<PerMemberPlan> PlanPerMember(std::string_view message, const store::MailingList& list,
                                    MemberRewrap& rewrap, const std::vector<std::string>& members,
                                    const std::string& post_id);

// The owner's notice about addresses of the delivery list that groupd does not list
// (PerMemberPlan::not_current): a stale delivery list would otherwise send one with every post.
// At most one per list per kNotCurrentNoticeInterval (the time of the last one is stored:
// store::ListStore::ClaimOwnerNotice, kind kNotCurrentNoticeKind), naming every such address
// of the post that sends it; the posts in between only log them.
inline constexpr std::int64_t kNotCurrentNoticeInterval = std::int64_t{24} * 3600;
inline constexpr std::string_view kNotCurrentNoticeKind = "per-member-not-current";
// The notice itself (RFC 5322, CRLF), from MAILER-DAEMON@`hostname` to `owner`.
std::string NotCurrentOwnerNotice(const std::string& hostname, const std::string& owner,
                                  const store::MailingList& list, const std::string& post_id,
                                  const std::vector<std::string>& not_current);

// The prepared message (List-* headers on top, the group's RecipientInfo inside), parsed once;
// For() writes one member's copy: the same message with only that member's RecipientInfo.
class PerMemberCopies {
 public:
  static Result<std::shared_ptr<const PerMemberCopies>> Parse(std::string_view message,
                                                              const store::MailingList& list);
  Result<std::string> For(const std::string& recipient_info_b64) const;
  ~PerMemberCopies();
  PerMemberCopies(const PerMemberCopies&) = delete;
  PerMemberCopies& operator=(const PerMemberCopies&) = delete;

 private:
  struct State;
  explicit PerMemberCopies(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace blindlist::listd
