#include "store/migrations/migrations.h"

#include <ctime>
#include <string>
#include <variant>

namespace blindlist::store::migrations {
namespace {

// Issued certificates have no foreign key to groups on purpose: deleting a
// group revokes them and keeps the records, so a serial never reads as unknown
// (and so never as "not revoked") after its group is gone.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE groups (
  id {ID_PK},
  name TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  last_key_version INTEGER NOT NULL DEFAULT 0,
  last_secret_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE group_keys (
  group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  key_type TEXT NOT NULL,
  certificate_der {BLOB} NOT NULL,
  csr_der {BLOB} NOT NULL,
  sealed_private_key {BLOB} NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'retired', 'destroyed')),
  created_at BIGINT NOT NULL,
  PRIMARY KEY (group_id, version)
);
CREATE TABLE group_secrets (
  group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  key_id {BLOB} NOT NULL,
  sealed_secret {BLOB} NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (group_id, version)
);
CREATE TABLE members (
  group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  certificate_der {BLOB} NOT NULL,
  cert_fingerprint TEXT NOT NULL,
  token_hash {BLOB} NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (group_id, address)
);
CREATE INDEX members_by_fingerprint ON members (group_id, cert_fingerprint);
CREATE INDEX members_by_token_hash ON members (group_id, token_hash);
CREATE TABLE exploders (
  group_id BIGINT PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,
  certificate_der {BLOB} NOT NULL,
  cert_fingerprint TEXT NOT NULL
);
CREATE TABLE admin_tokens (
  name TEXT PRIMARY KEY,
  token_hash {BLOB} NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);
CREATE TABLE audit_log (
  id {ID_PK},
  occurred_at BIGINT NOT NULL,
  daemon TEXT NOT NULL,
  caller TEXT NOT NULL,
  group_name TEXT NOT NULL,
  key_version INTEGER NOT NULL,
  operation TEXT NOT NULL,
  result TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX audit_log_by_group ON audit_log (group_name, id);
CREATE TABLE issued_certificates (
  serial_hex TEXT PRIMARY KEY,
  group_id BIGINT NOT NULL,
  member_address TEXT NOT NULL,
  not_after BIGINT NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
  revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX issued_certificates_by_member ON issued_certificates (group_id, member_address);
)sql";

// What the group's members can read, published with its certificate so senders follow it:
// 'any', 'aes-cbc' (EnvelopedData with AES-CBC only: members read with NSS/Thunderbird) or
// 'aead' (AuthEnvelopedData only).
constexpr std::string_view kContentCipher = R"sql(
ALTER TABLE groups ADD COLUMN content_cipher TEXT NOT NULL DEFAULT 'any' CHECK (content_cipher IN ('any', 'aes-cbc', 'aead'));
)sql";

// Store::FindMembers looks members up by address with the domain's case folded: the roster
// keeps addresses as they were registered.
constexpr std::string_view kMembersByLowerAddress = R"sql(
CREATE INDEX members_by_lower_address ON members (group_id, lower(address));
)sql";

// One audit record per request for many members (groupd's per-member re-wrap) names them all,
// by result, as JSON: one row a request instead of one a member.
constexpr std::string_view kAuditMembers = R"sql(
ALTER TABLE audit_log ADD COLUMN members TEXT NOT NULL DEFAULT '';
)sql";

// Store::FindMemberFingerprints (groupd's per-member re-wrap) answers from this index alone,
// without reading the members' rows and their certificates; it serves FindMembers as the
// index it replaces did.
constexpr std::string_view kMemberFingerprintsByLowerAddress = R"sql(
CREATE INDEX members_fingerprint_by_lower_address ON members (group_id, lower(address), address, cert_fingerprint);
DROP INDEX members_by_lower_address;
)sql";

// A threshold key generation round as each groupd node keeps it between its requests (one per
// group): the node's own start answer, and the one view it dealt on.
constexpr std::string_view kDkgRounds = R"sql(
CREATE TABLE dkg_rounds (
  group_name TEXT PRIMARY KEY,
  round TEXT NOT NULL,
  context TEXT NOT NULL,
  start_answer {BLOB} NOT NULL,
  dealt INTEGER NOT NULL DEFAULT 0 CHECK (dealt IN (0, 1)),
  view_digest {BLOB} NOT NULL,
  deal_answer {BLOB} NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX dkg_rounds_by_expiry ON dkg_rounds (expires_at);
)sql";

// A round's check (docs/threshold.md): whether the node accepted the pieces dealt to it (1) or
// found a bad one (2), its signed accept and its summed share sealed under its master key. Rounds
// last an hour at most and none can finish under the old rules: the table starts empty.
constexpr std::string_view kDkgRoundChecks = R"sql(
DROP TABLE dkg_rounds;
CREATE TABLE dkg_rounds (
  group_name TEXT PRIMARY KEY,
  round TEXT NOT NULL,
  context TEXT NOT NULL,
  start_answer {BLOB} NOT NULL,
  dealt INTEGER NOT NULL DEFAULT 0 CHECK (dealt IN (0, 1)),
  view_digest {BLOB} NOT NULL,
  deal_answer {BLOB} NOT NULL,
  checked INTEGER NOT NULL DEFAULT 0 CHECK (checked IN (0, 1, 2)),
  check_answer {BLOB} NOT NULL,
  sealed_share {BLOB} NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX dkg_rounds_by_expiry ON dkg_rounds (expires_at);
)sql";

// Every round id a node has started, kept for good (a row per key generation, which is rare): a
// round id starts once at a node, so a relay cannot restart one node's part of a round under the
// same id to draw it a new polynomial; the unique key settles concurrent starts on every backend;
// and the rounds a group was made in stay listed where no audit prune reaches (docs/threshold.md).
// Group names are kept with ASCII letters folded (every spelling of an address is one group).
// The rounds in progress when this step runs are ended (their ids kept as started): a round lasts
// an hour, and its command says to run the key generation again.
constexpr std::string_view kDkgStartedRounds = R"sql(
CREATE TABLE dkg_started_rounds (
  id {ID_PK},
  round TEXT NOT NULL UNIQUE,
  group_name TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  finished_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX dkg_started_rounds_by_group ON dkg_started_rounds (group_name, id);
INSERT INTO dkg_started_rounds (round, group_name, started_at)
  SELECT round, lower(group_name), 0 FROM dkg_rounds;
DELETE FROM dkg_rounds;
)sql";

// A group's name is its list's address, and an address is the same whatever the case of its
// letters: the index makes two names differing only in case one group, on every path that
// creates one and across processes. A store holding two such names is refused before this step
// (CheckBeforeStep) rather than changed: which group to keep is the operator's decision.
constexpr std::string_view kGroupsByLowerName = R"sql(
CREATE UNIQUE INDEX groups_by_lower_name ON groups (lower(name));
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema", kInitialSchema},
    {2, "groups.content_cipher", kContentCipher},
    {3, "members_by_lower_address", kMembersByLowerAddress},
    {4, "audit_log.members", kAuditMembers},
    {5, "members_fingerprint_by_lower_address", kMemberFingerprintsByLowerAddress},
    {6, "dkg_rounds", kDkgRounds},
    {7, "dkg_rounds.checked", kDkgRoundChecks},
    {8, "dkg_started_rounds", kDkgStartedRounds},
    {9, "groups_by_lower_name", kGroupsByLowerName},
};

// pg_advisory_xact_lock key: serialises migrations between processes ("blnd").
constexpr std::int64_t kMigrationLockKey = 0x626c6e64;

int Latest(const Schema& schema) { return schema.steps.back().version; }

// What a step needs of the data it finds, checked before it runs so that a store it cannot take
// is refused with one line saying why, and left as it was.
Result<std::monostate> CheckBeforeStep(sql::Connection& c, const Migration& m) {
  if (m.sql.data() != kGroupsByLowerName.data()) return std::monostate{};
  BL_TRY_ASSIGN(auto rows, c.Query("SELECT a.name, b.name FROM groups a JOIN groups b "
                                   "ON lower(a.name) = lower(b.name) AND a.id < b.id "
                                   "ORDER BY a.id, b.id LIMIT 1",
                                   {}));
  if (rows.empty()) return std::monostate{};
  return sql::StoreError("the groups " + sql::AsText(rows[0][0]) + " and " +
                         sql::AsText(rows[0][1]) +
                         " have names that differ only in case, which schema step " +
                         std::to_string(m.version) + " (" + std::string(m.description) +
                         ") refuses: delete one of them with the previous release, then start "
                         "this one (nothing was changed)");
}

// Applies at most one step; returns the version the database is at afterwards.
Result<int> ApplyNextStep(sql::Connection& c, sql::Dialect dialect, const Schema& schema) {
  if (dialect == sql::Dialect::kPostgres) {
    BL_TRY(c.Query("SELECT pg_advisory_xact_lock($1)", {schema.lock_key}));
  }
  const std::string table(schema.version_table);
  BL_TRY(c.ExecScript("CREATE TABLE IF NOT EXISTS " + table +
                      " (\n"
                      "  version INTEGER PRIMARY KEY,\n"
                      "  description TEXT NOT NULL,\n"
                      "  applied_at BIGINT NOT NULL\n"
                      ")"));
  BL_TRY_ASSIGN(auto rows, c.Query("SELECT COALESCE(MAX(version), 0) FROM " + table, {}));
  const int current = rows.empty() ? 0 : static_cast<int>(sql::AsInt(rows[0][0]));
  if (current > Latest(schema)) {
    return sql::UnavailableError("the database schema is version " + std::to_string(current) +
                                 ", newer than this build knows (" +
                                 std::to_string(Latest(schema)) + ")");
  }
  for (const Migration& m : schema.steps) {
    if (m.version <= current) continue;
    BL_TRY(CheckBeforeStep(c, m));
    BL_TRY(c.ExecScript(sql::ForDialect(m.sql, dialect)));
    BL_TRY(c.Exec("INSERT INTO " + table +
                      " (version, description, applied_at) "
                      "VALUES ($1, $2, $3)",
                  {std::int64_t{m.version}, std::string(m.description),
                   static_cast<std::int64_t>(std::time(nullptr))}));
    return m.version;
  }
  return current;
}

}  // namespace

std::span<const Migration> All() { return kMigrations; }

int LatestVersion() { return kMigrations[std::size(kMigrations) - 1].version; }

Result<int> Apply(sql::ConnectionPool& pool) {
  return Apply(pool, Schema{.steps = kMigrations,
                            .version_table = "schema_migrations",
                            .lock_key = kMigrationLockKey});
}

Result<int> Apply(sql::ConnectionPool& pool, const Schema& schema) {
  if (schema.steps.empty()) return sql::StoreError("a schema without migration steps");
  for (;;) {
    BL_TRY_ASSIGN(sql::Lease lease, pool.Acquire());
    BL_TRY(lease->Begin());
    auto step = ApplyNextStep(*lease, pool.dialect(), schema);
    if (!step.ok()) {
      (void)lease->Rollback();
      return step.error();
    }
    BL_TRY(lease->Commit());
    if (*step == Latest(schema)) return *step;
  }
}

}  // namespace blindlist::store::migrations
