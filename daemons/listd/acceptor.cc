#include "acceptor.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <optional>

#include "blindlist/error_codes.h"
#include "crypto/cms.h"
#include "crypto/keys.h"
#include "list_headers.h"
#include "mime/dsn.h"
#include "mime/smime_shape.h"
#include "net/smtp_protocol.h"
#include "obs/log.h"
#include "owner_alias.h"
#include "request_reply.h"
#include "spool/queue_file.h"

namespace blindlist::listd {
namespace {

Verdict Reply(int code, std::string enhanced, std::string text) {
  return Verdict{code, std::move(enhanced), std::move(text)};
}

Verdict StoreDown(const Error& e) {
  net::Log(net::LogLevel::kError, "list database unavailable", {{"error", e.message}});
  return Reply(451, "4.3.0", "list database unavailable, try again later");
}

// What the post is, by the whole-message rule (mime/smime_shape.h): plaintext, or one whole
// S/MIME object. Anything that claims S/MIME and is not exactly one is refused, whatever the
// list: the reply says what is wrong. The check streams, so a 25 MB post is never held decoded.
Result<mime::MessageShape> Shape(std::string_view message) {
  auto shape = mime::CheckWholeMessage(message);
  if (shape.ok()) return shape;
  if (shape.error().code == errc::kMalformedMessage) {
    return MakeError("malformed", "malformed message: " + shape.error().message);
  }
  return MakeError("not-one-object", "not one S/MIME object: " + shape.error().message);
}

// True when one of the RecipientInfos names one of the list's certificates.
bool EncryptedToList(const std::vector<crypto::RecipientInfo>& recipients,
                     const std::vector<crypto::Certificate>& certs) {
  for (const crypto::RecipientInfo& ri : recipients) {
    for (const crypto::Certificate& cert : certs) {
      if (ri.kind == crypto::RecipientKind::kKeyTrans && ri.rid.Matches(cert)) return true;
      if (ri.kind == crypto::RecipientKind::kKeyAgree) {
        for (const crypto::RecipientEncryptedKey& rek : ri.recipient_keys) {
          if (rek.rid.Matches(cert)) return true;
        }
      }
    }
  }
  return false;
}

// The list whose LIST-request@ address `recipient` is, when [request] is on: nothing when it is
// not such an address (or no such list), an error when the database cannot tell.
std::optional<Result<store::MailingList>> FindRequestList(const Config& config,
                                                          store::ListStore* lists,
                                                          const std::string& recipient) {
  if (!config.request.enabled) return std::nullopt;
  std::optional<std::string> address = RequestListOf(recipient);
  if (!address) return std::nullopt;
  auto list = lists->FindList(*address);
  if (!list.ok()) return Result<store::MailingList>(list.error());
  if (!list->has_value()) return std::nullopt;
  return Result<store::MailingList>(std::move(**list));
}

}  // namespace

Verdict CheckSender(std::string_view sender) {
  if (sender.size() > spool::kMaxAddressBytes) {
    return Reply(
        553, "5.1.7",
        "the envelope sender is longer than " + std::to_string(spool::kMaxAddressBytes) + " bytes");
  }
  for (char c : sender) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return Reply(553, "5.1.7",
                   "the envelope sender contains a line break or another control character");
    }
  }
  // It goes out again as the sender of owner mail and as the recipient of DSNs: what the SMTP
  // client refuses to put on the wire (a '>' may end the path early at a lax next hop, even
  // quoted) would wait in the queue until max_age and reach nobody.
  // UTF-8 (RFC 6531, which pipe mode may be handed) is checked as if it were letters.
  std::string shape(sender);
  for (char& c : shape) {
    if ((static_cast<unsigned char>(c) & 0x80) != 0) c = 'x';
  }
  if (!sender.empty() &&
      (!net::IsSmtpMailbox(shape) || sender.find_first_of("<>") != std::string_view::npos)) {
    return Reply(553, "5.1.7",
                 "the envelope sender is not an address listd can send to (an RFC 5321 mailbox "
                 "without '<' or '>')");
  }
  return Reply(250, "2.1.0", "ok");
}

std::string PipeSender(const std::string& sender) {
  constexpr std::string_view kNull = "mailer-daemon";
  if (sender.size() != kNull.size()) return sender;
  for (std::size_t i = 0; i < sender.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(sender[i])) != kNull[i]) return sender;
  }
  return {};
}

int SysexitOf(const Verdict& v) {
  if (v.ok()) return 0;
  if (v.code / 100 == 4) return 75;               // EX_TEMPFAIL
  if (v.enhanced == "5.1.1") return 67;           // EX_NOUSER
  if (v.enhanced.starts_with("5.7.")) return 77;  // EX_NOPERM: the list's policy refuses it
  return 65;                                      // EX_DATAERR: the message itself is wrong
}

namespace {

// RFC 5321 4.5.3.1.6 and RFC 5322 2.1.1: at most 998 octets a line, without its CRLF.
constexpr std::size_t kMaxLineOctets = 998;

// Whether a line of `message` (CRLF lines, as intake leaves it) is longer than listd may send:
// what it takes it forwards as it is, and a strict smarthost refuses a longer line ("500 Line
// too long"), so the message would reach nobody (nor would a DSN quoting its header).
bool HasOverlongLine(std::string_view message) {
  std::size_t start = 0;
  while (start < message.size()) {
    std::size_t end = message.find('\n', start);
    if (end == std::string_view::npos) end = message.size();
    std::size_t len = end - start;
    if (len > 0 && message[end - 1] == '\r') --len;
    if (len > kMaxLineOctets) return true;
    start = end + 1;
  }
  return false;
}

Verdict OverlongLine() {
  return Reply(554, "5.6.0",
               "a line of the message is longer than 998 octets (RFC 5322 2.1.1); it could not "
               "be forwarded");
}

}  // namespace

PostAcceptor::PostAcceptor(const Config& config, store::ListStore* lists, spool::Spool* spool,
                           net::Metrics* metrics, std::function<void()> on_queued)
    : config_(config),
      lists_(lists),
      spool_(spool),
      metrics_(metrics),
      on_queued_(std::move(on_queued)) {}

Verdict PostAcceptor::Count(const std::string& what, Verdict v) {
  if (metrics_ != nullptr) {
    metrics_->Increment("listd_received_total",
                        {{"kind", what}, {"reply", std::to_string(v.code) + " " + v.enhanced}});
  }
  return v;
}

Verdict PostAcceptor::CheckRecipient(const std::string& recipient) {
  auto list = lists_->FindList(recipient);
  if (!list.ok()) return StoreDown(list.error());
  if (list->has_value()) return Reply(250, "2.1.5", "list " + (*list)->address);
  std::string tag;
  auto bounce = BounceList(recipient, &tag);
  if (!bounce.ok()) return StoreDown(bounce.error());
  if (bounce->has_value()) return Reply(250, "2.1.5", "bounce address of " + (*bounce)->address);
  if (auto request = RequestList(recipient); request.has_value()) {
    if (!request->ok()) return StoreDown(request->error());
    return Reply(250, "2.1.5", "request address of " + (*request)->address);
  }
  auto owned = FindListByOwnerAlias(*lists_, recipient);
  if (!owned.ok()) return StoreDown(owned.error());
  if (owned->has_value()) {
    if (Verdict v = OwnerRoute(**owned, recipient); !v.ok()) return v;
    return Reply(250, "2.1.5", "owner of " + (*owned)->address);
  }
  return Reply(550, "5.1.1", "no such list here: " + recipient);
}

// Whether mail to the owner alias can go anywhere: the list must set an owner address, and one
// that is not the alias itself or another address listd takes (that would loop).
Verdict PostAcceptor::OwnerRoute(const store::MailingList& list, const std::string& alias) {
  if (list.owner.empty()) {
    return Reply(550, "5.1.1",
                 alias + ": " + list.address + " has no owner address set (blindlist list set " +
                     list.address + " --owner ADDR)");
  }
  const std::string owner = store::CanonicalMailbox(list.owner);
  auto loops = [&]() -> Result<bool> {
    if (OwnerAliasBase(owner)) {
      BL_TRY_ASSIGN(auto other, FindListByOwnerAlias(*lists_, owner));
      if (other.has_value()) return true;
    }
    BL_TRY_ASSIGN(auto as_list, lists_->FindList(owner));
    if (as_list.has_value()) return true;
    BL_TRY_ASSIGN(auto as_bounce, lists_->FindListByBounceAddress(owner));
    return as_bounce.has_value();
  }();
  if (!loops.ok()) return StoreDown(loops.error());
  if (*loops) {
    return Reply(550, "5.1.1",
                 alias + ": the owner address of " + list.address + " (" + owner +
                     ") is an address of this exploder; set a person's address with --owner");
  }
  return Reply(250, "2.1.5", "owner " + owner);
}

Result<std::optional<store::MailingList>> PostAcceptor::BounceList(const std::string& recipient,
                                                                   std::string* tag) {
  tag->clear();
  BL_TRY_ASSIGN(auto bare, lists_->FindListByBounceAddress(recipient));
  if (bare.has_value()) return bare;
  auto tagged = SplitTag(recipient);
  if (!tagged) return std::optional<store::MailingList>();
  BL_TRY_ASSIGN(auto list, lists_->FindListByBounceAddress(tagged->base));
  if (list.has_value()) *tag = tagged->tag;
  return list;
}

Verdict PostAcceptor::Accept(const std::string& recipient, const std::string& sender,
                             std::string_view message) {
  // SMTP's parser never passes such a sender; pipe mode's --sender comes from argv. Permanent:
  // trying again cannot fix it.
  if (Verdict v = CheckSender(sender); !v.ok()) return Count("post", v);
  auto list = lists_->FindList(recipient);
  if (!list.ok()) return Count("post", StoreDown(list.error()));
  if (list->has_value()) return Count("post", AcceptPost(**list, sender, message));
  std::string tag;
  auto bounce = BounceList(recipient, &tag);
  if (!bounce.ok()) return Count("bounce", StoreDown(bounce.error()));
  if (bounce->has_value()) return Count("bounce", AcceptBounce(**bounce, tag, message));
  if (auto request = RequestList(recipient); request.has_value()) {
    if (!request->ok()) return Count("request", StoreDown(request->error()));
    return Count("request", AcceptRequest(**request, sender, message));
  }
  auto owned = FindListByOwnerAlias(*lists_, recipient);
  if (!owned.ok()) return Count("owner", StoreDown(owned.error()));
  if (owned->has_value())
    return Count("owner", AcceptOwnerMail(**owned, recipient, sender, message));
  return Count("post", Reply(550, "5.1.1", "no such list here: " + recipient));
}

// Mail to LIST-owner@: queued as received for the owner address (incoming.h forwards it); not
// list traffic, so none of the posting rules apply. A message that has been through this alias
// before (its X-Loop field) is a loop.
Verdict PostAcceptor::AcceptOwnerMail(const store::MailingList& list, const std::string& alias,
                                      const std::string& sender, std::string_view message) {
  if (Verdict v = OwnerRoute(list, alias); !v.ok()) return v;
  std::string canonical;
  if (!HasCanonicalLineEndings(message)) {
    canonical = CanonicalLineEndings(message);
    message = canonical;
  }
  if (HasOverlongLine(message)) return OverlongLine();
  const std::string to = store::CanonicalMailbox(alias);
  if (AlreadyExploded(message, ListIdentity{to, "", ""})) {
    return Reply(550, "5.4.6", "mail loop: already forwarded to the owner of " + list.address);
  }
  return Queue(to, sender, message, "mail for the owner queued");
}

Verdict PostAcceptor::Queue(const std::string& spool_list, const std::string& sender,
                            std::string_view message, const char* what) {
  auto id = spool_->Accept(spool_list, sender, message);
  if (!id.ok()) {
    net::Log(net::LogLevel::kError, "spool write failed", {{"error", id.error().message}});
    if (id.error().message.find("No space") != std::string::npos ||
        id.error().message.find("ENOSPC") != std::string::npos) {
      return Reply(452, "4.3.1", "insufficient system storage, try again later");
    }
    return Reply(451, "4.3.0", "cannot queue the post now, try again later");
  }
  net::Log(net::LogLevel::kInfo, what,
           {{"id", *id}, {"list", spool_list}, {"bytes", std::to_string(message.size())}});
  if (on_queued_) on_queued_();
  return Reply(250, "2.0.0", "queued as " + *id);
}

Verdict PostAcceptor::AcceptPost(const store::MailingList& list, const std::string& sender,
                                 std::string_view message) {
  // One canonical form in the spool, whatever the entrance: CRLF lines, no stray CR
  // (list_headers.h, the way Postfix reads mail). Copied only when it is not that already;
  // the checks below see what will be spooled.
  std::string canonical;
  if (!HasCanonicalLineEndings(message)) {
    canonical = CanonicalLineEndings(message);
    message = canonical;
  }
  if (HasOverlongLine(message)) return OverlongLine();
  // A post this list has already exploded (a member address that forwards back into the
  // list) is a mail loop: refused, never exploded again.
  if (AlreadyExploded(message, ListIdentity{list.address, list.description, list.bounce_address})) {
    return Reply(550, "5.4.6", "mail loop: already exploded by this list");
  }
  // What the message is: S/MIME to this list, other S/MIME, plaintext, or broken.
  auto shape = Shape(message);
  if (!shape.ok()) return Reply(554, "5.6.0", shape.error().message);
  if (!shape->smime) {
    if (list.encrypted_only) {
      std::string where =
          config_.groupd.public_url.empty()
              ? "from the list administrator"
              : "at " + config_.groupd.public_url + "/v1/groups/" + list.group + "/certificate";
      return Reply(550, "5.7.1",
                   list.address + " takes only S/MIME-encrypted posts; get the list certificate " +
                       where + " (plaintext posts are not accepted on this list: this one is " +
                       shape->media_type + ", not one application/pkcs7-mime entity)");
    }
  } else {
    std::vector<crypto::Certificate> certs;
    for (const Bytes& der : list.certificates) {
      auto cert = crypto::Certificate::Load(der);
      if (cert.ok()) certs.push_back(std::move(*cert));
    }
    if (!EncryptedToList(shape->cms.recipients, certs)) {
      return Reply(550, "5.7.1", "not encrypted to a current or retired key of " + list.address);
    }
    if (list.require_aead && !shape->cms.auth_enveloped) {
      // RFC 3463 5.7.6: cryptographic algorithm not supported.
      const std::string cipher = shape->cms.cipher
                                     ? std::string(crypto::ContentCipherName(*shape->cms.cipher))
                                     : shape->cms.cipher_oid;
      return Reply(554, "5.7.6",
                   list.address +
                       " requires authenticated encryption: RFC 5083 AuthEnvelopedData "
                       "(AES-GCM); this post is EnvelopedData with " +
                       cipher + ", which cannot detect tampering");
    }
    if (list.member_clients == "nss" &&
        (shape->cms.auth_enveloped || !shape->cms.cipher || crypto::IsGcm(*shape->cms.cipher))) {
      // The list's policy (member_clients = nss): its members' clients could not open it.
      const std::string cipher = shape->cms.cipher
                                     ? std::string(crypto::ContentCipherName(*shape->cms.cipher))
                                     : shape->cms.cipher_oid;
      return Reply(550, "5.7.6",
                   list.address +
                       " is read with NSS (Thunderbird), which opens only EnvelopedData with "
                       "AES-CBC; this post is " +
                       (shape->cms.auth_enveloped ? "AuthEnvelopedData" : "EnvelopedData") +
                       " with " + cipher +
                       ": send it with AES-256-CBC (blindlist post follows the list's policy; "
                       "Thunderbird sends it)");
    }
  }

  // A members-only list checks the sender only once the post is queued (incoming.h): the
  // reply and its timing are the same for a member and for anyone else, so they never tell
  // who is on the list. A post from a non-member is held in the spool for the owner.
  return Queue(list.address, sender, message, "post queued");
}

std::optional<Result<store::MailingList>> PostAcceptor::RequestList(const std::string& recipient) {
  return FindRequestList(config_, lists_, recipient);
}

Verdict PostAcceptor::AcceptRequest(const store::MailingList& list, const std::string& sender,
                                    std::string_view message) {
  const std::string why_not = !store::IsValidMailbox(sender) && !sender.empty()
                                  ? std::string("not a plain address")
                                  : NoAutoReplyReason(sender, message);
  if (!why_not.empty()) {
    net::Log(net::LogLevel::kInfo, "request address: no automatic answer",
             {{"list", list.address}, {"reason", why_not}});
    return Reply(250, "2.0.0", "received");
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  RequestReplyLimiter limiter(config_.spool_dir + "/request-replies", config_.request.interval);
  auto reserved = limiter.TryReserve(list.address, sender, now);
  if (!reserved.ok() || !*reserved) {
    net::Log(net::LogLevel::kInfo, "request address: answered recently, no answer now",
             {{"list", list.address},
              {"error", reserved.ok() ? std::string() : reserved.error().message}});
    return Reply(250, "2.0.0", "received");
  }
  RequestReply r;
  r.list = list.address;
  // The list's own owner first, then [request] owner, then the domain's postmaster.
  r.owner = !list.owner.empty() ? list.owner
            : !config_.request.owner.empty()
                ? config_.request.owner
                : "postmaster@" + list.address.substr(list.address.rfind('@') + 1);
  r.sender = sender;
  r.hostname = config_.smtp.hostname;
  Status sent = SendAutoReply(config_, sender, BuildRequestReply(r, message, now));
  net::Log(sent.ok() ? net::LogLevel::kInfo : net::LogLevel::kWarning,
           sent.ok() ? "request address: answered" : "request address: answer not sent",
           {{"list", list.address}, {"error", sent.ok() ? std::string() : sent.error().message}});
  if (metrics_ != nullptr) {
    metrics_->Increment("listd_request_replies_total", {{"result", sent.ok() ? "sent" : "failed"}});
  } else if (Status noted = NotePipeRequestReply(config_.spool_dir, sent.ok()); !noted.ok()) {
    // Pipe mode: the daemon counts it from the spool (request_reply.h).
    net::Log(net::LogLevel::kWarning, "request address: answer not counted",
             {{"error", noted.error().message}});
  }
  return Reply(250, "2.0.0", "received; see the automatic answer");
}

// A report counts only through its VERP tag: the tag, made with listd's key, says which member
// of which post it is about. Nothing in the report's text (Final-Recipient, how many "Action:
// failed" lines) chooses a member, and one report scores at most one bounce. Every report gets
// the same reply whatever it scored, so the reply tells a forger nothing.
Verdict PostAcceptor::AcceptBounce(const store::MailingList& list, const std::string& tag,
                                   std::string_view message) {
  Verdict received = Reply(250, "2.0.0", "delivery report received");
  auto ignore = [&](const std::string& why) {
    net::Log(net::LogLevel::kInfo, "bounce report not scored",
             {{"list", list.address}, {"why", why}});
    if (metrics_ != nullptr)
      metrics_->Increment("listd_bounce_reports_total", {{"result", "ignored"}});
    return received;
  };
  if (config_.delivery.verp == DeliveryConfig::Verp::kOff || verp_ == nullptr)
    return ignore("VERP is off: reports cannot be attributed");
  if (tag.empty()) return ignore("sent to the bare bounce address, no VERP tag");
  auto parsed = ParseTag(tag);
  if (!parsed) return ignore("not a VERP tag of ours");
  parsed->member = NormaliseAddress(parsed->member);
  if (!verp_->Verify(list.address, *parsed)) return ignore("VERP tag does not verify");
  auto dsn = mime::ParseDsn(message);
  if (!dsn.ok()) return ignore("not a delivery status report: " + dsn.error().message);
  const mime::DsnRecipient* failed = nullptr;
  for (const mime::DsnRecipient& r : *dsn) {
    if (r.action == "failed") {
      failed = &r;
      break;
    }
  }
  if (failed == nullptr) return ignore("the report says no delivery failed");
  const std::string reason =
      failed->status + (failed->diagnostic.empty() ? "" : " " + failed->diagnostic);
  Status st = ScoreReport(list, *parsed, reason.substr(0, 200));
  if (!st.ok()) {
    if (st.error().code == errc::kStoreUnavailable) return StoreDown(st.error());
    return ignore(st.error().message);
  }
  if (metrics_ != nullptr)
    metrics_->Increment("listd_bounce_reports_total", {{"result", "scored"}});
  return received;
}

Status PostAcceptor::ScoreReport(const store::MailingList& list, const VerpTag& tag,
                                 std::string_view reason) {
  const auto refused = [](const std::string& why) { return MakeError("not-scored", why); };
  constexpr std::int64_t kDay = std::int64_t{24} * 3600;
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  BL_TRY_ASSIGN(auto member, lists_->FindMember(list.id, tag.member));
  if (!member.has_value()) {
    // An MTA may have upper-cased the tagged address on its way back (the MAC covers the member
    // without case): the member as stored, in lower case as most are.
    std::string lower = tag.member;
    for (char& c : lower) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (lower != tag.member) {
      BL_TRY_ASSIGN(member, lists_->FindMember(list.id, lower));
    }
  }
  if (!member.has_value()) return refused("not a member of the list");
  const std::string& address = member->address;
  if (tag.kind == 'p') {
    std::int64_t at = 0;
    if (std::from_chars(tag.id.data(), tag.id.data() + tag.id.size(), at).ec != std::errc())
      return refused("bad probe time");
    BL_TRY_ASSIGN(auto disabled,
                  lists_->ConfirmProbeBounce(list.id, address, at, std::string(reason)));
    if (!disabled.has_value()) return refused("not the member's outstanding probe");
    net::Log(net::LogLevel::kWarning, "member disabled: its probe bounced",
             {{"list", list.address}, {"member", address}});
    return Status::Ok();
  }
  // The post's time is in its id (microseconds, spool/spool.h): a report counts only for a
  // post younger than bounce_info_stale_after days sent to someone who was a member then.
  std::int64_t micros = 0;
  const std::string_view id = tag.id;
  const std::size_t dash = id.find('-');
  const std::string_view digits = id.substr(0, dash);
  if (std::from_chars(digits.data(), digits.data() + digits.size(), micros).ec != std::errc())
    return refused("bad post id");
  const std::int64_t sent_at = micros / 1'000'000;
  if (sent_at > now + 300 || now - sent_at > std::int64_t{list.bounce_info_stale_after} * kDay)
    return refused("the post is too old, or from the future");
  if ((*member).added_at > sent_at) return refused("not a member when the post was sent");
  BL_TRY_ASSIGN(store::BounceOutcome b, lists_->RecordBounce(list.id, address, now));
  net::Log(net::LogLevel::kInfo, "bounce report scored",
           {{"list", list.address},
            {"member", address},
            {"post", tag.id},
            {"counted", b.counted ? "yes" : "no (one a day, or disabled)"},
            {"score", std::to_string(b.member.bounce_score)},
            {"probe", b.probe_wanted ? "wanted" : "no"},
            {"reason", std::string(reason)}});
  return Status::Ok();
}

}  // namespace blindlist::listd
