// The storage interface shared by every daemon. One interface, two backends
// chosen by URL: "sqlite:PATH" (WAL; the embedded default) and
// "postgresql://..." (libpq). Both run the same versioned migrations at Open
// and pass the same test suite (src/store/store_test.cc runs it on both).
//
// Thread-safety: a Store is safe to use from many threads at once; each call
// takes a connection from an internal pool. No call caches anything: a write is
// visible to the very next read from any process sharing the database (this is
// what makes removing a member take effect on the next request).
//
// Secrets never reach this layer in the clear: private keys and group secrets
// arrive already sealed under the master key; tokens arrive as SHA-256 hashes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::store {

// Seconds since the Unix epoch (UTC).
using UnixTime = std::int64_t;

struct Group {
  std::int64_t id = 0;
  std::string name;  // the list address, e.g. "list@example.org"
  UnixTime created_at = 0;
  // The content cipher the group's members can read, published with its certificate:
  // "any", "aes-cbc" (NSS/Thunderbird readers) or "aead".
  std::string content_cipher = "any";
};

enum class KeyState { kActive, kRetired, kDestroyed };

struct GroupKey {
  std::int64_t group_id = 0;
  int version = 0;           // 1, 2, ... ; the highest active one is current
  std::string key_type;      // "rsa3072" | "p256"
  Bytes certificate_der;     // empty while a CSR waits for an outside CA
  Bytes csr_der;             // set when the group was created with a CSR
  Bytes sealed_private_key;  // PKCS#8 DER sealed under the master key; empty once destroyed
  KeyState state = KeyState::kActive;
  UnixTime created_at = 0;
};

struct GroupSecretVersion {
  std::int64_t group_id = 0;
  int version = 0;
  Bytes key_id;         // the KEKRecipientInfo keyIdentifier
  Bytes sealed_secret;  // sealed under the master key
  UnixTime created_at = 0;
};

struct Member {
  std::int64_t group_id = 0;
  std::string address;
  Bytes certificate_der;         // empty if none registered
  std::string cert_fingerprint;  // lowercase hex SHA-256 of certificate_der, empty if none
  Bytes token_hash;              // SHA-256 of the bearer token, empty if none
  UnixTime created_at = 0;
};

// A member as the per-member re-wrap needs it: whom, and which certificate (by its SHA-256),
// without the certificate's bytes.
struct MemberFingerprint {
  std::string address;
  std::string cert_fingerprint;  // lowercase hex SHA-256 of the certificate, empty if none
};

struct Exploder {
  std::int64_t group_id = 0;
  Bytes certificate_der;
  std::string cert_fingerprint;
};

// An administrator's bearer token (stored hashed).
struct AdminToken {
  std::string name;
  Bytes token_hash;
  UnixTime created_at = 0;
};

struct AuditRecord {
  std::int64_t id = 0;  // assigned by the store
  UnixTime time = 0;
  std::string daemon;     // "groupd" | "certd" | ...
  std::string caller;     // member address, "exploder", "admin:NAME", "cert:SERIAL" or "anonymous"
  std::string group;      // group name ("" if none)
  int key_version = 0;    // 0 if none
  std::string operation;  // "unwrap", "rewrap-member", "blind", ...
  std::string result;     // "ok" or an error code
  std::string reason;     // the caller's stated reason, truncated to 200 characters
  // The addresses a request for many members acted on, by result, as a JSON object (groupd's
  // per-member re-wrap: {"ok": [ADDRESS, ...], "not-member": [...]}); "" for other records.
  std::string members;
};

// Which audit records ListAudit() returns: newest first, at most `limit`, optionally only
// those older than a record id (paging backwards) and within a time window.
struct AuditQuery {
  std::string group;           // "" means all groups
  int limit = 100;             // <= 0 gives none
  std::int64_t before_id = 0;  // > 0: only records with id < before_id
  UnixTime since = 0;          // > 0: only records with time >= since
  UnixTime until = 0;          // > 0: only records with time < until
};

// Membership certificates issued by certd (the issuance record) and revoked.
struct IssuedCertificate {
  std::string serial_hex;  // lowercase hex of the serial number
  std::int64_t group_id = 0;
  std::string member_address;  // known to certd only; groupd never reads it
  UnixTime not_after = 0;
  bool revoked = false;
  UnixTime revoked_at = 0;
};

// An issuance record as path G reads it: the record, and whether the member is on the roster.
struct IssuedCertificateStatus {
  IssuedCertificate record;
  bool member_current = false;  // member_address is a member of group_id now
};

// A threshold key generation round as one groupd node keeps it between the round's requests
// (docs/threshold.md, "Creation without a dealer"): at most one per group at a time, until it
// finishes, is cancelled or expires. Every DKG call folds the group name's ASCII letters, as the
// groups' unique index does: all spellings of a list address share one round at a time and one
// list of started rounds. Nothing secret: the start answer carries the node's round
// state sealed under its master key.
// A round id as a node started it (ListStartedDkgRounds).
struct StartedDkgRound {
  std::string round;
  UnixTime started_at = 0;  // 0: started before the node kept the time (schema step 8)
  UnixTime finished_at =
      0;  // when a group was stored from it; 0: never (ended otherwise, or not yet)
};
enum class DkgCheck : std::uint8_t { kNone = 0, kAccepted = 1, kFailed = 2 };
struct DkgRound {
  std::string group;    // the group's name
  std::string round;    // the round id (32 hex digits)
  std::string context;  // k, n, the node's index and the node list the round was started with
  Bytes start_answer;   // the node's own start answer (JSON), exactly as it answered
  bool dealt = false;   // the node dealt, on view_digest
  Bytes view_digest;    // SHA-256 of the one view the node dealt on; empty until it dealt
  Bytes deal_answer;    // the node's deal answer (JSON), exactly as it answered
  DkgCheck checked = DkgCheck::kNone;  // the node's check of the pieces dealt to it
  Bytes check_answer;                  // its accept answer (JSON) once it accepted
  Bytes sealed_share;                  // its summed share, sealed under its master key
  UnixTime expires_at = 0;             // the round is forgotten after this
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (and migrates) the store named by url. Errors: "bad-url", "store-unavailable".
  static Result<std::unique_ptr<Store>> Open(const std::string& url);
  // The schema version after migrations.
  virtual Result<int> SchemaVersion() = 0;
  // "sqlite" or "postgresql".
  virtual std::string BackendName() const = 0;

  // ---- groups and keys (groupd) ----
  // Errors: "exists" if the name is taken.
  // Every call may also fail with "store-unavailable" or "store-error"; text
  // arguments that are not UTF-8 (or hold a NUL byte) give "invalid-argument".
  // A created_at of 0 in a record means "now".
  virtual Result<Group> CreateGroup(const std::string& name) = 0;
  virtual Result<std::optional<Group>> FindGroup(const std::string& name) = 0;
  virtual Result<std::vector<Group>> ListGroups() = 0;
  // "any", "aes-cbc" or "aead" (else "invalid-argument"); "not-found" for no such group.
  virtual Status SetGroupContentCipher(std::int64_t group_id, const std::string& cipher) = 0;
  virtual Status DeleteGroup(
      std::int64_t group_id) = 0;  // with its keys, secrets, members, exploder
  // A group with its first key version and first secret version, in one transaction: all of it
  // or nothing. The records' group_id is ignored. Errors: "exists", as CreateGroup.
  virtual Result<Group> CreateGroupWithKeys(const std::string& name, const GroupKey& key,
                                            const GroupSecretVersion& secret) = 0;

  // Adds a key version; `key.version` is ignored and the next number is assigned and returned.
  // Versions are never reused, also across processes. Errors: "not-found" (no such group).
  virtual Result<int> AddGroupKey(const GroupKey& key) = 0;
  // A key rotation in one transaction: adds `key` as version `expected_version` (sealed for that
  // version) and retires every older active version. Errors: "conflict" (a concurrent rotation
  // took that version; nothing is written), "not-found" (no such group).
  virtual Result<int> RotateGroupKey(const GroupKey& key, int expected_version) = 0;
  virtual Result<std::vector<GroupKey>> ListGroupKeys(std::int64_t group_id) = 0;  // by version
  virtual Status SetGroupKeyCertificate(std::int64_t group_id, int version,
                                        const Bytes& cert_der) = 0;
  // Replaces a key version's sealed key only if it is still `expected` (a threshold share
  // refresh, docs/threshold.md). Errors: errc::kConflict (changed meanwhile, or destroyed).
  virtual Status ReplaceSealedKey(std::int64_t group_id, int version, const Bytes& expected,
                                  const Bytes& sealed) = 0;
  // kDestroyed acts as DestroyGroupKey. Errors: "not-found", "key-destroyed" (destroyed is final).
  virtual Status SetGroupKeyState(std::int64_t group_id, int version, KeyState state) = 0;
  // Erases the sealed private key and marks the version destroyed.
  virtual Status DestroyGroupKey(std::int64_t group_id, int version) = 0;

  virtual Result<int> AddGroupSecret(const GroupSecretVersion& secret) = 0;  // assigns the version
  virtual Result<std::vector<GroupSecretVersion>> ListGroupSecrets(std::int64_t group_id) = 0;

  // ---- roster (groupd, read by certd) ----
  // Errors: "exists" if the address is already a member.
  virtual Status AddMember(const Member& member) = 0;
  // Also revokes the member's unexpired membership certificates, in the same
  // transaction. Errors: "not-found".
  virtual Status RemoveMember(std::int64_t group_id, const std::string& address) = 0;
  virtual Result<std::optional<Member>> FindMember(std::int64_t group_id,
                                                   const std::string& address) = 0;
  // An empty fingerprint or token hash never matches (members without one have it empty).
  virtual Result<std::optional<Member>> FindMemberByCertFingerprint(
      std::int64_t group_id, const std::string& fingerprint) = 0;
  virtual Result<std::optional<Member>> FindMemberByTokenHash(std::int64_t group_id,
                                                              const Bytes& token_hash) = 0;
  virtual Result<std::vector<Member>> ListMembers(std::int64_t group_id) = 0;
  // The members among `addresses`, read in one query per 512 addresses (the roster is not read
  // whole): each row whose address equals one of `addresses` with the domain compared without
  // regard to ASCII case (CanonicalMailbox), once, in no particular order. An address that is
  // not a member is simply absent.
  virtual Result<std::vector<Member>> FindMembers(std::int64_t group_id,
                                                  const std::vector<std::string>& addresses) = 0;
  // As FindMembers, but each member's address and certificate fingerprint only: for a caller
  // that keeps certificates by fingerprint and reads one (FindMembers) only when it lacks it.
  virtual Result<std::vector<MemberFingerprint>> FindMemberFingerprints(
      std::int64_t group_id, const std::vector<std::string>& addresses) = 0;
  // Replace one credential of a current member, leaving the other and the member's
  // membership certificates as they are. An empty value removes that credential.
  // Errors: "not-found" (not a member).
  virtual Status SetMemberCertificate(std::int64_t group_id, const std::string& address,
                                      const Bytes& certificate_der,
                                      const std::string& cert_fingerprint) = 0;
  virtual Status SetMemberTokenHash(std::int64_t group_id, const std::string& address,
                                    const Bytes& token_hash) = 0;

  virtual Status SetExploder(const Exploder& exploder) = 0;  // replaces any previous one
  virtual Result<std::optional<Exploder>> FindExploder(std::int64_t group_id) = 0;

  // ---- administrators ----
  virtual Status AddAdminToken(const AdminToken& token) = 0;
  virtual Result<std::optional<AdminToken>> FindAdminToken(const Bytes& token_hash) = 0;

  // ---- audit ----
  // Text that is not UTF-8 is stored with U+FFFD, never refused; time 0 means "now".
  virtual Status AppendAudit(const AuditRecord& record) = 0;
  // Appends the records in order in one transaction (one commit, one sync): all land or none.
  // For group commit (groupd's AuditWriter). The default appends them one by one.
  virtual Status AppendAuditBatch(const std::vector<AuditRecord>& records) {
    for (const auto& r : records) BL_TRY(AppendAudit(r));
    return Status::Ok();
  }
  // Deletes every record older than `before` (time < before); returns how many.
  virtual Result<std::int64_t> PruneAudit(UnixTime before) = 0;
  // Newest first (by id), filtered and paged as `query` says.
  virtual Result<std::vector<AuditRecord>> ListAudit(const AuditQuery& query) = 0;
  // Newest first; group "" means all groups; limit <= 0 gives none.
  Result<std::vector<AuditRecord>> ListAudit(const std::string& group, int limit) {
    return ListAudit(AuditQuery{.group = group, .limit = limit});
  }

  // ---- membership certificates (certd writes, groupd reads them for path G) ----
  // Records a certificate certd has just signed, in one transaction that re-checks that
  // `member_address` is a member of the group now and holds that member's row against
  // removal until commit: a member removed before the commit gets "not-a-member" and nothing
  // is recorded; one removed after it has the certificate revoked by RemoveMember. certd
  // hands the certificate out only after this succeeds. Errors: "exists" (serial recorded),
  // "not-found" (no such group), "not-a-member".
  virtual Status RecordIssuedCertificate(const IssuedCertificate& cert) = 0;
  // Revokes every unexpired (not_after >= now) certificate of the member at `now`; returns how
  // many. DeleteGroup revokes the group's certificates the same way and keeps their records.
  virtual Result<int> RevokeMemberCertificates(std::int64_t group_id, const std::string& address,
                                               UnixTime now) = 0;
  // The record of a serial (any case), with whether its member is still a member of its
  // group; nothing for a serial certd never recorded. Path G accepts only a record that is
  // unrevoked and whose member is current (an unknown serial is refused, never "not revoked").
  virtual Result<std::optional<IssuedCertificateStatus>> FindIssuedCertificate(
      const std::string& serial_hex) = 0;
  virtual Result<std::vector<IssuedCertificate>> ListRevokedCertificates() = 0;

  // ---- threshold key generation rounds (groupd) ----
  // Records `round` unless its group has an unexpired round already, and returns the group's
  // round as stored afterwards: `round` itself, or the one kept (the caller compares the round
  // id and context). Every expired round, of any group, is forgotten first. A round id is
  // started once at a node, for good (ListStartedDkgRounds). Errors: "exists" (a group of this
  // name, in any spelling, exists), "conflict" (this id was
  // started here before and has ended, or is another group's).
  virtual Result<DkgRound> BeginDkgRound(const DkgRound& round) = 0;
  // The group's unexpired round, if any.
  virtual Result<std::optional<DkgRound>> FindDkgRound(const std::string& group) = 0;
  // Records the deal of the group's unexpired round `round` if it has none yet, and returns the
  // round as stored afterwards (the caller compares the view). Errors: "not-found" (no such
  // unexpired round).
  virtual Result<DkgRound> DealDkgRound(const std::string& group, const std::string& round,
                                        const Bytes& view_digest, const Bytes& deal_answer) = 0;
  // Records the check of the group's unexpired round `round` if it has dealt on `view_digest` and
  // has no check yet (`outcome` kAccepted or kFailed, with the accept answer and the sealed share
  // when accepted): the first check stands. Returns the round as stored afterwards (the caller
  // compares the outcome).
  // Errors: "not-found" (no such unexpired round).
  virtual Result<DkgRound> CheckDkgRound(const std::string& group, const std::string& round,
                                         const Bytes& view_digest, DkgCheck outcome,
                                         const Bytes& check_answer, const Bytes& sealed_share) = 0;
  // Forgets the group's round `round`, `finished` (a group was stored from it: its started record
  // says when) or cancelled; its id stays started. Errors: "not-found" (none, or another round:
  // a finish claims its round once).
  virtual Status EndDkgRound(const std::string& group, const std::string& round, bool finished) = 0;
  // Every round id started at this node for the group, oldest first, kept for good (no prune
  // reaches it): what a group made by a key generation was made in, and what was thrown away.
  virtual Result<std::vector<StartedDkgRound>> ListStartedDkgRounds(const std::string& group) = 0;
};

}  // namespace blindlist::store
