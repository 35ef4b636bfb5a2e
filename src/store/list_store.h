// The exploder's (blindlist-listd's) own database: its mailing lists, the group
// certificates posts to each may be encrypted to, and each list's delivery
// list. It is never groupd's roster: nothing written here makes anyone a
// member (an address added here receives only ciphertext). SQLite (embedded)
// or PostgreSQL (several listd nodes sharing it), over the SQL layer in sql.h.
//
// Addresses are compared with their domain lowercased (CanonicalMailbox);
// the local part is kept as given. List and bounce addresses are found without case in the
// local part too (ASCII letters), and no two lists differ only in case.
//
// Thread-safety: a ListStore is safe to use from many threads; each call takes
// its own pooled connection. Errors: "invalid-argument", "not-found",
// "exists", "store-unavailable", "store-error", "bad-url".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::store {

// local@domain with no spaces, CR, LF, NUL, control characters, angle
// brackets, quotes or other RFC 5322 specials, valid UTF-8, local part at most
// 64 bytes and the whole at most 254. Used by the store and by `blindlist list`.
bool IsValidMailbox(std::string_view address);
// The form stored and compared: the domain lowercased (ASCII), the local part as given.
std::string CanonicalMailbox(std::string_view address);
// local-part + "-bounces@" + domain, the default bounce address of a list.
std::string DefaultBounceAddress(std::string_view list_address);

struct MailingList {
  std::int64_t id = 0;
  std::string address;  // list@example.org (lowercased domain; local part as given)
  std::string group;    // the group name on groupd whose certificate the list uses
  std::string description;
  // "direct": forward as received; "path-b": ask groupd to re-wrap to the group
  // secret; "path-b-prime": listd re-wraps itself with a local group key file
  // (off by default, dangerous: it breaks the trust split).
  // "per-member": listd asks groupd to re-wrap the post's key to each current member's
  // registered certificate and sends each member a copy holding only that RecipientInfo.
  std::string reading = "direct";
  // per-member: a member without a registered certificate gets the post as sent to the group
  // ("group") or nothing ("skip").
  std::string per_member_fallback = "group";
  // "nss": the members read with NSS (Thunderbird), which takes only AES-CBC EnvelopedData and
  // RSA PKCS#1 v1.5 key transport; "any": any client (OAEP, AES-GCM).
  std::string member_clients = "any";
  std::string posting = "members";  // "members" (sender must be an enabled member) or "open"
  bool encrypted_only = true;       // refuse plaintext posts
  // Refuse EnvelopedData (CBC): only RFC 5083 AuthEnvelopedData (AES-GCM) is forwarded.
  bool require_aead = false;
  // Where the delivery list comes from: "manual" (`blindlist list member ...`) or "groupd"
  // (listd copies the addresses of the group's roster from groupd: ReplaceMembers).
  std::string roster = "manual";
  std::string bounce_address;  // default: local-part + "-bounces@" + domain
  int bounce_threshold = 5;    // a member whose score reaches it is probed, then disabled
  // Days after which a member's last bounce is forgotten: the next bounce starts the score
  // again at 1 (Mailman 3's bounce_info_stale_after). Also how long a probe stays outstanding.
  int bounce_info_stale_after = 7;
  // Who hears about failures of the list's mail (message refusals without a sender, members
  // disabled). Empty: local-part + "-owner@" + domain (OwnerAddress).
  std::string owner;
  // Group certificates (DER) posts may be encrypted to: the current one first,
  // then retired ones. Never empty in a stored list.
  std::vector<Bytes> certificates;
  std::int64_t created_at = 0;
};

// A member's probe (docs/operations.md, "Bounces"): once its score reaches the threshold a
// probe is wanted; the deliverer sends it (kSent, probe_at = when, named in its VERP token);
// a bounce of that probe disables the member.
enum class ProbeState { kNone = 0, kWanted = 1, kSent = 2 };

struct ListMember {
  std::string address;
  bool enabled = true;
  int bounce_score = 0;
  std::string disabled_reason;  // e.g. "bounces: 5.1.1 user unknown"
  std::int64_t added_at = 0;
  std::int64_t last_bounce_at = 0;  // unix seconds of the last bounce counted (0: none)
  ProbeState probe = ProbeState::kNone;
  std::int64_t probe_at = 0;      // when the probe was wanted or sent
  bool owner_notice_due = false;  // disabled by bounces; the owner has not been told yet
};

// The result of one bounce for one member.
struct BounceOutcome {
  ListMember member;          // after the update
  bool counted = false;       // false: disabled already, or a bounce was counted the same day
  bool probe_wanted = false;  // this bounce reached the threshold: a probe is now due
};

// A probe or owner notice waiting to go out.
struct BounceNotice {
  std::int64_t list_id = 0;
  std::string list_address;
  ListMember member;
};

// What ReplaceMembers changed, each list of addresses ordered by address.
struct RosterChange {
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::int64_t unchanged = 0;
  // Given but not storable (not a mailbox, or the list's own address): left out, and reported.
  std::vector<std::string> skipped;
};

struct MemberCounts {
  std::int64_t enabled = 0;
  std::int64_t disabled = 0;
};

class ListStore {
 public:
  virtual ~ListStore() = default;

  // "sqlite" or "postgresql".
  virtual std::string BackendName() const = 0;
  // The applied version of listd's schema (migrations/list_migrations.h).
  virtual Result<int> SchemaVersion() = 0;

  // ---- lists ----

  // Validates and stores a new list (id and created_at are assigned; an empty
  // bounce_address gets the default). "exists" if the address or the bounce
  // address is taken by any list, as its address or its bounce address.
  virtual Result<MailingList> CreateList(const MailingList& list) = 0;
  // By id: group, description, reading, posting, encrypted_only, require_aead, bounce_address
  // (empty: the default), bounce_threshold; the certificates are replaced.
  // The address cannot change. "not-found", "exists" (bounce address taken).
  virtual Status UpdateList(const MailingList& list) = 0;
  // The list with its certificates and delivery list. "not-found".
  virtual Status DeleteList(const std::string& address) = 0;
  // Case-insensitive in the domain, and in the local part (ASCII) when no exact match exists.
  virtual Result<std::optional<MailingList>> FindList(const std::string& address) = 0;
  virtual Result<std::optional<MailingList>> FindListByBounceAddress(
      const std::string& address) = 0;
  // Ordered by address (byte order, the same on both backends).
  virtual Result<std::vector<MailingList>> ListLists() = 0;

  // ---- delivery lists ----

  // "not-found" (no such list), "exists", "invalid-argument" (not a mailbox,
  // or the list's own address or bounce address, which would loop).
  virtual Status AddMember(std::int64_t list_id, const std::string& address) = 0;
  // "not-found".
  virtual Status RemoveMember(std::int64_t list_id, const std::string& address) = 0;
  virtual Result<std::optional<ListMember>> FindMember(std::int64_t list_id,
                                                       const std::string& address) = 0;
  // Ordered by address (byte order).
  virtual Result<std::vector<ListMember>> ListMembers(std::int64_t list_id, bool enabled_only) = 0;
  virtual Result<std::int64_t> CountMembers(std::int64_t list_id) = 0;
  virtual Result<MemberCounts> CountMembersByState(std::int64_t list_id) = 0;
  // The disabled members only, ordered by address (for `blindlist list show`).
  virtual Result<std::vector<ListMember>> ListDisabledMembers(std::int64_t list_id) = 0;

  // Scores one hard bounce at `now` (unix seconds), as Mailman 3 does: at most one per member
  // per UTC day; a last bounce older than the list's bounce_info_stale_after days restarts the
  // score; a disabled member is not scored. Reaching the threshold disables nobody: it makes a
  // probe wanted (unless one is outstanding and younger than bounce_info_stale_after), and only
  // a bounce of that probe disables (ConfirmProbeBounce). "not-found".
  virtual Result<BounceOutcome> RecordBounce(std::int64_t list_id, const std::string& address,
                                             std::int64_t now) = 0;
  // Probes wanted, and owner notices due, on every list (oldest first, at most `limit`).
  virtual Result<std::vector<BounceNotice>> PendingProbes(std::size_t limit) = 0;
  virtual Result<std::vector<BounceNotice>> PendingOwnerNotices(std::size_t limit) = 0;
  // The wanted probe went out at `at`. "not-found" (no such member, or no probe wanted).
  virtual Status MarkProbeSent(std::int64_t list_id, const std::string& address,
                               std::int64_t at) = 0;
  // A bounce of the probe sent at `probe_at`: the member is disabled with the reason
  // "bounces: " + reason and an owner notice becomes due. Nothing happens (nullopt) when that
  // probe is not the member's outstanding one (an old, repeated or made-up report). `reason` is
  // free text from a remote server, made storable and bounded, never refused.
  virtual Result<std::optional<ListMember>> ConfirmProbeBounce(std::int64_t list_id,
                                                               const std::string& address,
                                                               std::int64_t probe_at,
                                                               const std::string& reason) = 0;
  virtual Status MarkOwnerNotified(std::int64_t list_id, const std::string& address) = 0;
  // Whether the owner may be sent a notice of `kind` about this list at `now` (unix seconds):
  // true, and `now` recorded as the last one, when none of that kind was sent in the
  // `min_interval` seconds before; false otherwise. Atomic, so listd nodes sharing the database
  // send one notice between them. "not-found" (no such list).
  virtual Result<bool> ClaimOwnerNotice(std::int64_t list_id, const std::string& kind,
                                        std::int64_t now, std::int64_t min_interval) = 0;
  // Re-enables the member and resets its score and probe. "not-found".
  virtual Status EnableMember(std::int64_t list_id, const std::string& address) = 0;

  // Bulk insert for import, one transaction per chunk of kAddMembersChunk;
  // returns how many were added (existing ones and repeats are skipped). Every
  // address is checked before anything is written: one invalid address fails
  // the call ("invalid-argument", naming it) with nothing added.
  virtual Result<std::int64_t> AddMembers(std::int64_t list_id,
                                          const std::vector<std::string>& addresses) = 0;
  static constexpr std::size_t kAddMembersChunk = 1000;

  // Makes the delivery list exactly `addresses` (a roster copied from groupd), in one
  // transaction: new ones are added enabled, missing ones removed, the others keep their
  // state (a member disabled for bounces stays disabled). Addresses that are not mailboxes
  // or that are the list's own are skipped, never fatal. "not-found" (no such list).
  virtual Result<RosterChange> ReplaceMembers(std::int64_t list_id,
                                              const std::vector<std::string>& addresses) = 0;
};

// The list's owner: list.owner, or local-part + "-owner@" + domain.
std::string OwnerAddress(const MailingList& list);

// "sqlite:PATH" or "postgresql://..." / "postgres://..." (the URL forms of
// Store::Open). Connects and migrates listd's schema. Errors: "bad-url",
// "store-unavailable".
Result<std::unique_ptr<ListStore>> OpenListStore(const std::string& url);

}  // namespace blindlist::store
