#include "store/migrations/list_migrations.h"

#include <string_view>

namespace blindlist::store::migrations {
namespace {

// Addresses are stored canonical (domain lowercased, CanonicalMailbox), so
// equality is the case-insensitive-domain lookup. A list's bounce address is
// unique too: a bounce must lead back to exactly one list.
// list_certificates.position 0 is the current group certificate; higher ones
// are retired certificates that posts may still be encrypted to.
constexpr std::string_view kInitialListSchema = R"sql(
CREATE TABLE lists (
  id {ID_PK},
  address TEXT NOT NULL UNIQUE,
  group_name TEXT NOT NULL,
  description TEXT NOT NULL,
  reading TEXT NOT NULL CHECK (reading IN ('direct', 'path-b', 'path-b-prime')),
  posting TEXT NOT NULL CHECK (posting IN ('members', 'open')),
  encrypted_only INTEGER NOT NULL CHECK (encrypted_only IN (0, 1)),
  bounce_address TEXT NOT NULL UNIQUE,
  bounce_threshold INTEGER NOT NULL CHECK (bounce_threshold >= 1),
  created_at BIGINT NOT NULL
);
CREATE TABLE list_certificates (
  list_id BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  certificate_der {BLOB} NOT NULL,
  PRIMARY KEY (list_id, position)
);
CREATE TABLE list_members (
  list_id BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  bounce_score INTEGER NOT NULL DEFAULT 0,
  disabled_reason TEXT NOT NULL DEFAULT '',
  added_at BIGINT NOT NULL,
  PRIMARY KEY (list_id, address)
);
CREATE INDEX list_members_by_state ON list_members (list_id, enabled, address);
)sql";

// A list may require RFC 5083 AuthEnvelopedData (an AEAD cipher): off by default, since
// Thunderbird sends AES-CBC EnvelopedData.
constexpr std::string_view kRequireAead = R"sql(
ALTER TABLE lists ADD COLUMN require_aead INTEGER NOT NULL DEFAULT 0 CHECK (require_aead IN (0, 1));
)sql";

// A list's delivery list may follow groupd's roster ("groupd") instead of being kept by hand.
constexpr std::string_view kRoster = R"sql(
ALTER TABLE lists ADD COLUMN roster TEXT NOT NULL DEFAULT 'manual' CHECK (roster IN ('manual', 'groupd'));
)sql";

// Bounces as Mailman 3 scores them: one per member per day (last_bounce_at), forgotten after
// bounce_info_stale_after days; a probe before disabling (probe_state 0 none, 1 wanted, 2 sent
// at probe_at); the owner told of each member disabled (owner_notice_due). owner_address ''
// means local-part + "-owner@" + domain.
constexpr std::string_view kBounceScoring = R"sql(
ALTER TABLE lists ADD COLUMN bounce_info_stale_after INTEGER NOT NULL DEFAULT 7 CHECK (bounce_info_stale_after >= 1);
ALTER TABLE lists ADD COLUMN owner_address TEXT NOT NULL DEFAULT '';
ALTER TABLE list_members ADD COLUMN last_bounce_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE list_members ADD COLUMN probe_state INTEGER NOT NULL DEFAULT 0 CHECK (probe_state IN (0, 1, 2));
ALTER TABLE list_members ADD COLUMN probe_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE list_members ADD COLUMN owner_notice_due INTEGER NOT NULL DEFAULT 0 CHECK (owner_notice_due IN (0, 1));
CREATE INDEX list_members_probe_state ON list_members (probe_state);
CREATE INDEX list_members_owner_notice_due ON list_members (owner_notice_due);
)sql";

// Per-member reading (path E at the exploder). The lists.reading CHECK cannot be altered in
// SQLite without rebuilding the table (and its cascades), so per_member = 1 marks the list and
// reading stays 'direct' (ListStore reports reading "per-member"). per_member_fallback: a member
// without a registered certificate gets the group's copy ('group') or nothing ('skip').
// member_clients 'nss': members read with NSS (Thunderbird): RSA PKCS#1 v1.5 key transport and
// AES-CBC EnvelopedData only.
constexpr std::string_view kPerMember = R"sql(
ALTER TABLE lists ADD COLUMN per_member INTEGER NOT NULL DEFAULT 0 CHECK (per_member IN (0, 1));
ALTER TABLE lists ADD COLUMN per_member_fallback TEXT NOT NULL DEFAULT 'group' CHECK (per_member_fallback IN ('group', 'skip'));
ALTER TABLE lists ADD COLUMN member_clients TEXT NOT NULL DEFAULT 'any' CHECK (member_clients IN ('any', 'nss'));
)sql";

// Owner notices that must not flood the owner (ListStore::ClaimOwnerNotice): when the last one
// of each kind went out for each list.
constexpr std::string_view kListNotices = R"sql(
CREATE TABLE list_notices (
  list_id BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  last_sent_at BIGINT NOT NULL,
  PRIMARY KEY (list_id, kind)
);
)sql";

constexpr Migration kListMigrations[] = {
    {1, "initial list schema", kInitialListSchema},
    {2, "lists.require_aead", kRequireAead},
    {3, "lists.roster", kRoster},
    {4, "bounce scoring: stale after, probes, owner notices", kBounceScoring},
    {5, "per-member reading, its fallback, the members' clients", kPerMember},
    {6, "list_notices: owner notices at most once per interval", kListNotices},
};

// pg_advisory_xact_lock key for listd's migrations ("blls"), distinct from groupd's.
constexpr std::int64_t kListMigrationLockKey = 0x626c6c73;

}  // namespace

std::span<const Migration> ListSteps() { return kListMigrations; }

int ListLatestVersion() { return kListMigrations[std::size(kListMigrations) - 1].version; }

Schema ListSchema() {
  return Schema{.steps = kListMigrations,
                .version_table = "list_schema_migrations",
                .lock_key = kListMigrationLockKey};
}

}  // namespace blindlist::store::migrations
