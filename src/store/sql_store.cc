#include "store/sql_store.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "blindlist/error_codes.h"
#include "store/list_store.h"
#include "store/migrations/migrations.h"

namespace blindlist::store {
namespace {

using sql::AsBlob;
using sql::AsInt;
using sql::AsText;
using sql::Row;

constexpr std::size_t kReasonChars = 200;
// Audit fields other than the reason come from callers too; keep records bounded.
constexpr std::size_t kAuditFieldChars = 1024;
// An audit record's members (AuditRecord::members): 1000 addresses of up to 254 characters, as
// JSON, fit.
constexpr std::size_t kAuditMembersChars = std::size_t{1} << 20;

UnixTime Now() { return static_cast<UnixTime>(std::time(nullptr)); }

// Fingerprints and serials are lowercase hex by contract; normalising here
// keeps a caller's uppercase hex from silently missing a match.
std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string_view StateName(KeyState state) {
  switch (state) {
    case KeyState::kActive:
      return "active";
    case KeyState::kRetired:
      return "retired";
    case KeyState::kDestroyed:
      return "destroyed";
  }
  return "active";
}

KeyState ParseState(std::string_view name) {
  if (name == "retired") return KeyState::kRetired;
  if (name == "destroyed") return KeyState::kDestroyed;
  return KeyState::kActive;
}

Error NotFound(std::string what) {
  return MakeError(std::string(errc::kNotFound), std::move(what));
}
Error Exists(std::string what) { return MakeError(std::string(errc::kExists), std::move(what)); }
Error InvalidArgument(std::string what) { return MakeError("invalid-argument", std::move(what)); }

constexpr std::string_view kGroupColumns = "id, name, created_at, content_cipher";
Group ToGroup(const Row& r) {
  return Group{.id = AsInt(r[0]),
               .name = AsText(r[1]),
               .created_at = AsInt(r[2]),
               .content_cipher = AsText(r[3])};
}

constexpr std::string_view kKeyColumns =
    "group_id, version, key_type, certificate_der, csr_der, sealed_private_key, state, "
    "created_at";
GroupKey ToGroupKey(const Row& r) {
  return GroupKey{.group_id = AsInt(r[0]),
                  .version = static_cast<int>(AsInt(r[1])),
                  .key_type = AsText(r[2]),
                  .certificate_der = AsBlob(r[3]),
                  .csr_der = AsBlob(r[4]),
                  .sealed_private_key = AsBlob(r[5]),
                  .state = ParseState(AsText(r[6])),
                  .created_at = AsInt(r[7])};
}

constexpr std::string_view kSecretColumns = "group_id, version, key_id, sealed_secret, created_at";
GroupSecretVersion ToSecret(const Row& r) {
  return GroupSecretVersion{.group_id = AsInt(r[0]),
                            .version = static_cast<int>(AsInt(r[1])),
                            .key_id = AsBlob(r[2]),
                            .sealed_secret = AsBlob(r[3]),
                            .created_at = AsInt(r[4])};
}

constexpr std::string_view kMemberColumns =
    "group_id, address, certificate_der, cert_fingerprint, token_hash, created_at";
Member ToMember(const Row& r) {
  return Member{.group_id = AsInt(r[0]),
                .address = AsText(r[1]),
                .certificate_der = AsBlob(r[2]),
                .cert_fingerprint = AsText(r[3]),
                .token_hash = AsBlob(r[4]),
                .created_at = AsInt(r[5])};
}

// Audit records: the columns of one, and an INSERT of `rows` of them ($1 ... $8 for the first).
constexpr std::size_t kAuditInsertColumns = 9;
constexpr std::size_t kAuditRowsPerInsert = 32;

std::string AuditInsertSql(std::size_t rows) {
  std::string sql =
      "INSERT INTO audit_log (occurred_at, daemon, caller, group_name, key_version, operation, "
      "result, reason, members) VALUES ";
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "(" : ", (";
    for (std::size_t c = 0; c < kAuditInsertColumns; ++c) {
      if (c != 0) sql += ", ";
      sql += "$" + std::to_string(r * kAuditInsertColumns + c + 1);
    }
    sql += ")";
  }
  return sql;
}

// Store::FindMembers: addresses per query, and the statement for `n` of them. The number of
// placeholders is rounded up to a power of two (the last address repeated), so a connection
// prepares at most a handful of these statements whatever the callers ask for.
constexpr std::size_t kFindMembersChunk = 512;

std::size_t FindMembersSlots(std::size_t n) {
  std::size_t slots = 1;
  while (slots < n) slots *= 2;
  return slots;
}

// `folded`: the addresses are passed as lower() would make them, so the statement does not
// call lower() on each (on SQLite, 512 calls of it cost as much as the look-ups themselves).
std::string MembersByAddressSql(std::string_view columns, std::size_t n, bool folded) {
  std::string sql = "SELECT " + std::string(columns) +
                    " FROM members WHERE group_id = $1 AND lower(address) IN (";
  const std::size_t slots = FindMembersSlots(n);
  for (std::size_t i = 0; i < slots; ++i) {
    if (i != 0) sql += ", ";
    const std::string slot = "$" + std::to_string(i + 2);
    sql += folded ? slot : "lower(" + slot + ")";
  }
  return sql + ")";
}

sql::Params MembersByAddressParams(std::int64_t group_id, std::span<const std::string> chunk) {
  sql::Params params{group_id};
  const std::size_t slots = FindMembersSlots(chunk.size());
  params.reserve(slots + 1);
  for (std::size_t i = 0; i < slots; ++i) params.emplace_back(chunk[std::min(i, chunk.size() - 1)]);
  return params;
}

// SQLite's lower() of each address (after the group id): ASCII letters folded here, as SQLite's
// lower() folds them; an address with any other byte is folded by the database itself (a build
// with ICU folds more), one small query each.
Result<sql::Params> FoldedAddressParams(sql::Connection& c, std::int64_t group_id,
                                        std::span<const std::string> chunk) {
  sql::Params params = MembersByAddressParams(group_id, chunk);
  for (std::size_t i = 1; i < params.size(); ++i) {
    auto& address = std::get<std::string>(params[i]);
    if (std::all_of(address.begin(), address.end(),
                    [](char ch) { return static_cast<unsigned char>(ch) < 0x80; })) {
      for (char& ch : address) {
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
      }
      continue;
    }
    BL_TRY_ASSIGN(auto rows, c.Query("SELECT lower($1)", {address}));
    if (rows.size() != 1 || rows[0].size() != 1) return sql::StoreError("lower() gave no row");
    address = AsText(rows[0][0]);
  }
  return params;
}

constexpr std::string_view kAuditColumns =
    "id, occurred_at, daemon, caller, group_name, key_version, operation, result, reason, members";
AuditRecord ToAudit(const Row& r) {
  return AuditRecord{.id = AsInt(r[0]),
                     .time = AsInt(r[1]),
                     .daemon = AsText(r[2]),
                     .caller = AsText(r[3]),
                     .group = AsText(r[4]),
                     .key_version = static_cast<int>(AsInt(r[5])),
                     .operation = AsText(r[6]),
                     .result = AsText(r[7]),
                     .reason = AsText(r[8]),
                     .members = AsText(r[9])};
}

constexpr std::string_view kCertificateColumns =
    "serial_hex, group_id, member_address, not_after, revoked, revoked_at";
IssuedCertificate ToCertificate(const Row& r) {
  return IssuedCertificate{.serial_hex = AsText(r[0]),
                           .group_id = AsInt(r[1]),
                           .member_address = AsText(r[2]),
                           .not_after = AsInt(r[3]),
                           .revoked = AsInt(r[4]) != 0,
                           .revoked_at = AsInt(r[5])};
}

std::string Select(std::string_view columns, std::string_view rest) {
  std::string s = "SELECT ";
  s += columns;
  s += ' ';
  s += rest;
  return s;
}

template <typename T, typename F>
Result<std::vector<T>> Map(Result<std::vector<Row>> rows, F convert) {
  if (!rows.ok()) return rows.error();
  std::vector<T> out;
  out.reserve(rows->size());
  for (const Row& r : *rows) out.push_back(convert(r));
  return out;
}

template <typename T, typename F>
Result<std::optional<T>> First(Result<std::vector<Row>> rows, F convert) {
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<T>();
  return std::optional<T>(convert(rows->front()));
}

Status ToStatus(const Result<std::monostate>& r) {
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Result<std::monostate> GroupMustExist(sql::Connection& c, std::int64_t group_id) {
  BL_TRY_ASSIGN(auto rows, c.Query("SELECT 1 FROM groups WHERE id = $1", {group_id}));
  if (rows.empty()) return NotFound("no group with id " + std::to_string(group_id));
  return std::monostate{};
}

// Marks the unexpired, unrevoked certificates matching `where` revoked at `now` ($1).
Result<std::int64_t> RevokeWhere(sql::Connection& c, std::string_view where,
                                 const sql::Params& params) {
  std::string statement =
      "UPDATE issued_certificates SET revoked = 1, revoked_at = $1 "
      "WHERE revoked = 0 AND not_after >= $1 AND ";
  statement += where;
  return c.Exec(statement, params);
}

// The inserts a group, a key version and a secret version are made of, on a connection
// inside the caller's transaction (alone, or together: a group with its first keys).
// A name equal to a group's with its letters' case folded is that group's (the unique index
// groups_by_lower_name, so concurrent creations settle too): refused, naming the group as stored.
Result<Group> InsertGroup(sql::Connection& c, const std::string& name) {
  BL_TRY_ASSIGN(auto rows, c.Query("INSERT INTO groups (name, created_at) VALUES ($1, $2) "
                                   "ON CONFLICT DO NOTHING RETURNING id, created_at",
                                   {name, Now()}));
  if (rows.empty()) {
    BL_TRY_ASSIGN(auto same, c.Query("SELECT name FROM groups WHERE lower(name) = lower($1) "
                                     "ORDER BY id LIMIT 1",
                                     {name}));
    const std::string existing = same.empty() ? name : AsText(same[0][0]);
    if (existing == name) return Exists("a group named " + name + " exists");
    return Exists("a group named " + existing + " exists (a name differing only in case is " +
                  "the same list address)");
  }
  return Group{.id = AsInt(rows[0][0]), .name = name, .created_at = AsInt(rows[0][1])};
}

Result<int> InsertGroupKey(sql::Connection& c, const GroupKey& key) {
  // The counter row is locked until commit, so concurrent writers (in any
  // process) get distinct, increasing versions.
  BL_TRY_ASSIGN(auto rows, c.Query("UPDATE groups SET last_key_version = last_key_version + 1 "
                                   "WHERE id = $1 RETURNING last_key_version",
                                   {key.group_id}));
  if (rows.empty()) return NotFound("no group with id " + std::to_string(key.group_id));
  const std::int64_t version = AsInt(rows[0][0]);
  const bool destroyed = key.state == KeyState::kDestroyed;
  BL_TRY(c.Exec("INSERT INTO group_keys (" + std::string(kKeyColumns) +
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                {key.group_id, version, key.key_type, key.certificate_der, key.csr_der,
                 destroyed ? Bytes{} : key.sealed_private_key, std::string(StateName(key.state)),
                 key.created_at != 0 ? key.created_at : Now()}));
  return static_cast<int>(version);
}

Result<int> InsertGroupSecret(sql::Connection& c, const GroupSecretVersion& secret) {
  BL_TRY_ASSIGN(auto rows,
                c.Query("UPDATE groups SET last_secret_version = last_secret_version + 1 "
                        "WHERE id = $1 RETURNING last_secret_version",
                        {secret.group_id}));
  if (rows.empty()) return NotFound("no group with id " + std::to_string(secret.group_id));
  const std::int64_t version = AsInt(rows[0][0]);
  BL_TRY(c.Exec(
      "INSERT INTO group_secrets (" + std::string(kSecretColumns) + ") VALUES ($1, $2, $3, $4, $5)",
      {secret.group_id, version, secret.key_id, secret.sealed_secret,
       secret.created_at != 0 ? secret.created_at : Now()}));
  return static_cast<int>(version);
}

constexpr std::string_view kDkgColumns =
    "group_name, round, context, start_answer, dealt, view_digest, deal_answer, checked, "
    "check_answer, sealed_share, expires_at";
DkgRound ToDkgRound(const Row& r) {
  return DkgRound{.group = AsText(r[0]),
                  .round = AsText(r[1]),
                  .context = AsText(r[2]),
                  .start_answer = AsBlob(r[3]),
                  .dealt = AsInt(r[4]) != 0,
                  .view_digest = AsBlob(r[5]),
                  .deal_answer = AsBlob(r[6]),
                  .checked = static_cast<DkgCheck>(AsInt(r[7])),
                  .check_answer = AsBlob(r[8]),
                  .sealed_share = AsBlob(r[9]),
                  .expires_at = AsInt(r[10])};
}

Result<DkgRound> UnexpiredDkgRound(sql::Connection& c, const std::string& group) {
  BL_TRY_ASSIGN(auto rows, c.Query(Select(kDkgColumns,
                                          "FROM dkg_rounds WHERE group_name = $1 AND "
                                          "expires_at >= $2"),
                                   {group, Now()}));
  if (rows.empty()) return NotFound("no unexpired key generation round for " + group);
  return ToDkgRound(rows[0]);
}

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<sql::ConnectionPool> pool) : pool_(std::move(pool)) {}
  using Store::ListAudit;

  Result<int> SchemaVersion() override {
    return Read([](sql::Connection& c) -> Result<int> {
      BL_TRY_ASSIGN(auto rows,
                    c.Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}));
      return static_cast<int>(rows.empty() ? 0 : AsInt(rows[0][0]));
    });
  }

  std::string BackendName() const override {
    return pool_->dialect() == sql::Dialect::kSqlite ? "sqlite" : "postgresql";
  }

  // ---- groups and keys ----

  Result<Group> CreateGroup(const std::string& name) override {
    if (name.empty()) return InvalidArgument("the group name is empty");
    return Write([&](sql::Connection& c) { return InsertGroup(c, name); });
  }

  Result<Group> CreateGroupWithKeys(const std::string& name, const GroupKey& key,
                                    const GroupSecretVersion& secret) override {
    if (name.empty()) return InvalidArgument("the group name is empty");
    return Write([&](sql::Connection& c) -> Result<Group> {
      BL_TRY_ASSIGN(Group group, InsertGroup(c, name));
      GroupKey first_key = key;
      first_key.group_id = group.id;
      BL_TRY(InsertGroupKey(c, first_key));
      GroupSecretVersion first_secret = secret;
      first_secret.group_id = group.id;
      BL_TRY(InsertGroupSecret(c, first_secret));
      return group;
    });
  }

  Result<std::optional<Group>> FindGroup(const std::string& name) override {
    return Read([&](sql::Connection& c) {
      return First<Group>(c.Query(Select(kGroupColumns, "FROM groups WHERE name = $1"), {name}),
                          ToGroup);
    });
  }

  Result<std::vector<Group>> ListGroups() override {
    return Read([&](sql::Connection& c) {
      return Map<Group>(c.Query(Select(kGroupColumns, "FROM groups ORDER BY name"), {}), ToGroup);
    });
  }

  Status SetGroupContentCipher(std::int64_t group_id, const std::string& cipher) override {
    if (cipher != "any" && cipher != "aes-cbc" && cipher != "aead")
      return MakeError("invalid-argument", "the content cipher must be any, aes-cbc or aead");
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("UPDATE groups SET content_cipher = $2 WHERE id = $1",
                                   {group_id, cipher}));
      if (n == 0) return MakeError("not-found", "no such group");
      return std::monostate{};
    }));
  }

  Status DeleteGroup(std::int64_t group_id) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      // Keys, secrets, members and the exploder go by ON DELETE CASCADE.
      BL_TRY_ASSIGN(auto n, c.Exec("DELETE FROM groups WHERE id = $1", {group_id}));
      if (n == 0) return NotFound("no group with id " + std::to_string(group_id));
      // Then its members' certificates are revoked, as if each had been removed. After the
      // DELETE, which waited for any issuance holding a member row (RecordIssuedCertificate),
      // so on PostgreSQL this statement's snapshot includes that certificate.
      BL_TRY(RevokeWhere(c, "group_id = $2", {Now(), group_id}));
      return std::monostate{};
    }));
  }

  Result<int> AddGroupKey(const GroupKey& key) override {
    return Write([&](sql::Connection& c) { return InsertGroupKey(c, key); });
  }

  Result<int> RotateGroupKey(const GroupKey& key, int expected_version) override {
    return Write([&](sql::Connection& c) -> Result<int> {
      BL_TRY_ASSIGN(int version, InsertGroupKey(c, key));
      if (version != expected_version) {
        // Another rotation came first; the rollback undoes the insert and the counter.
        return MakeError(std::string(errc::kConflict), "key version " +
                                                           std::to_string(expected_version) +
                                                           " was taken by a concurrent rotation");
      }
      BL_TRY(
          c.Exec("UPDATE group_keys SET state = $3 "
                 "WHERE group_id = $1 AND version < $2 AND state = $4",
                 {key.group_id, std::int64_t{version}, std::string(StateName(KeyState::kRetired)),
                  std::string(StateName(KeyState::kActive))}));
      return version;
    });
  }

  Result<std::vector<GroupKey>> ListGroupKeys(std::int64_t group_id) override {
    return Read([&](sql::Connection& c) {
      return Map<GroupKey>(
          c.Query(Select(kKeyColumns, "FROM group_keys WHERE group_id = $1 ORDER BY version"),
                  {group_id}),
          ToGroupKey);
    });
  }

  Status SetGroupKeyCertificate(std::int64_t group_id, int version,
                                const Bytes& cert_der) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("UPDATE group_keys SET certificate_der = $3 "
                                   "WHERE group_id = $1 AND version = $2",
                                   {group_id, std::int64_t{version}, cert_der}));
      if (n == 0) return KeyNotFound(group_id, version);
      return std::monostate{};
    }));
  }

  Status ReplaceSealedKey(std::int64_t group_id, int version, const Bytes& expected,
                          const Bytes& sealed) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("UPDATE group_keys SET sealed_private_key = $4 "
                                   "WHERE group_id = $1 AND version = $2 "
                                   "AND sealed_private_key = $3 AND state <> 'destroyed'",
                                   {group_id, std::int64_t{version}, expected, sealed}));
      if (n == 0) {
        return MakeError(std::string(errc::kConflict),
                         "key version " + std::to_string(version) + " changed or is gone");
      }
      return std::monostate{};
    }));
  }

  Status SetGroupKeyState(std::int64_t group_id, int version, KeyState state) override {
    // Destroyed is final and means the sealed key is gone, whichever call sets it.
    if (state == KeyState::kDestroyed) return DestroyGroupKey(group_id, version);
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto rows, c.Query("SELECT state FROM group_keys "
                                       "WHERE group_id = $1 AND version = $2",
                                       {group_id, std::int64_t{version}}));
      if (rows.empty()) return KeyNotFound(group_id, version);
      if (ParseState(AsText(rows[0][0])) == KeyState::kDestroyed) {
        return MakeError("key-destroyed", "key version " + std::to_string(version) +
                                              " is destroyed; its state cannot change");
      }
      BL_TRY(c.Exec("UPDATE group_keys SET state = $3 WHERE group_id = $1 AND version = $2",
                    {group_id, std::int64_t{version}, std::string(StateName(state))}));
      return std::monostate{};
    }));
  }

  Status DestroyGroupKey(std::int64_t group_id, int version) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("UPDATE group_keys SET sealed_private_key = $3, state = $4 "
                                   "WHERE group_id = $1 AND version = $2",
                                   {group_id, std::int64_t{version}, Bytes{},
                                    std::string(StateName(KeyState::kDestroyed))}));
      if (n == 0) return KeyNotFound(group_id, version);
      return std::monostate{};
    }));
  }

  Result<int> AddGroupSecret(const GroupSecretVersion& secret) override {
    return Write([&](sql::Connection& c) { return InsertGroupSecret(c, secret); });
  }

  Result<std::vector<GroupSecretVersion>> ListGroupSecrets(std::int64_t group_id) override {
    return Read([&](sql::Connection& c) {
      return Map<GroupSecretVersion>(
          c.Query(Select(kSecretColumns, "FROM group_secrets WHERE group_id = $1 ORDER BY version"),
                  {group_id}),
          ToSecret);
    });
  }

  // ---- roster ----

  // One certificate authenticates one member of a group: were it registered to two, removing
  // one of them would leave its holder reading as the other.
  static Status CertificateFree(sql::Connection& c, std::int64_t group_id,
                                const std::string& address, const std::string& fingerprint) {
    if (fingerprint.empty()) return Status::Ok();
    BL_TRY_ASSIGN(auto rows, c.Query("SELECT 1 FROM members WHERE group_id = $1 AND "
                                     "cert_fingerprint = $2 AND address <> $3",
                                     {group_id, Lower(fingerprint), address}));
    if (!rows.empty())
      return MakeError(std::string(errc::kCertificateInUse),
                       "another member of the group has registered this certificate");
    return Status::Ok();
  }

  Status AddMember(const Member& member) override {
    if (member.address.empty()) return InvalidArgument("the member address is empty");
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY(GroupMustExist(c, member.group_id));
      BL_TRY(CertificateFree(c, member.group_id, member.address, member.cert_fingerprint));
      BL_TRY_ASSIGN(auto n, c.Exec("INSERT INTO members (" + std::string(kMemberColumns) +
                                       ") VALUES ($1, $2, $3, $4, $5, $6) "
                                       "ON CONFLICT (group_id, address) DO NOTHING",
                                   {member.group_id, member.address, member.certificate_der,
                                    Lower(member.cert_fingerprint), member.token_hash,
                                    member.created_at != 0 ? member.created_at : Now()}));
      if (n == 0) return Exists(member.address + " is already a member");
      return std::monostate{};
    }));
  }

  Status RemoveMember(std::int64_t group_id, const std::string& address) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("DELETE FROM members WHERE group_id = $1 AND address = $2",
                                   {group_id, address}));
      if (n == 0) return NotFound(address + " is not a member");
      BL_TRY(RevokeWhere(c, "group_id = $2 AND member_address = $3", {Now(), group_id, address}));
      return std::monostate{};
    }));
  }

  Status SetMemberCertificate(std::int64_t group_id, const std::string& address,
                              const Bytes& certificate_der,
                              const std::string& cert_fingerprint) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("UPDATE members SET certificate_der = $3, cert_fingerprint = $4 "
                                   "WHERE group_id = $1 AND address = $2",
                                   {group_id, address, certificate_der, Lower(cert_fingerprint)}));
      if (n == 0) return NotFound(address + " is not a member");
      BL_TRY(CertificateFree(c, group_id, address, cert_fingerprint));  // a refusal rolls back
      return std::monostate{};
    }));
  }

  Status SetMemberTokenHash(std::int64_t group_id, const std::string& address,
                            const Bytes& token_hash) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("UPDATE members SET token_hash = $3 "
                                   "WHERE group_id = $1 AND address = $2",
                                   {group_id, address, token_hash}));
      if (n == 0) return NotFound(address + " is not a member");
      return std::monostate{};
    }));
  }

  Result<std::optional<Member>> FindMember(std::int64_t group_id,
                                           const std::string& address) override {
    return FindMemberWhere("address = $2", {group_id, address});
  }

  Result<std::optional<Member>> FindMemberByCertFingerprint(
      std::int64_t group_id, const std::string& fingerprint) override {
    // Members without a certificate have an empty fingerprint: never match them.
    if (fingerprint.empty()) return std::optional<Member>();
    return FindMemberWhere("cert_fingerprint = $2", {group_id, Lower(fingerprint)});
  }

  Result<std::optional<Member>> FindMemberByTokenHash(std::int64_t group_id,
                                                      const Bytes& token_hash) override {
    if (token_hash.empty()) return std::optional<Member>();
    return FindMemberWhere("token_hash = $2", {group_id, token_hash});
  }

  Result<std::vector<Member>> ListMembers(std::int64_t group_id) override {
    return Read([&](sql::Connection& c) {
      return Map<Member>(
          c.Query(Select(kMemberColumns, "FROM members WHERE group_id = $1 ORDER BY address"),
                  {group_id}),
          ToMember);
    });
  }

  Result<std::vector<Member>> FindMembers(std::int64_t group_id,
                                          const std::vector<std::string>& addresses) override {
    return FindByAddress<Member>(group_id, addresses, kMemberColumns, ToMember,
                                 [](const Member& m) -> const std::string& { return m.address; });
  }

  Result<std::vector<MemberFingerprint>> FindMemberFingerprints(
      std::int64_t group_id, const std::vector<std::string>& addresses) override {
    return FindByAddress<MemberFingerprint>(
        group_id, addresses, "address, cert_fingerprint",
        [](const Row& r) {
          return MemberFingerprint{.address = AsText(r[0]), .cert_fingerprint = AsText(r[1])};
        },
        [](const MemberFingerprint& m) -> const std::string& { return m.address; });
  }

  Status SetExploder(const Exploder& exploder) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY(GroupMustExist(c, exploder.group_id));
      BL_TRY(
          c.Exec("INSERT INTO exploders (group_id, certificate_der, cert_fingerprint) "
                 "VALUES ($1, $2, $3) ON CONFLICT (group_id) DO UPDATE SET "
                 "certificate_der = excluded.certificate_der, "
                 "cert_fingerprint = excluded.cert_fingerprint",
                 {exploder.group_id, exploder.certificate_der, Lower(exploder.cert_fingerprint)}));
      return std::monostate{};
    }));
  }

  Result<std::optional<Exploder>> FindExploder(std::int64_t group_id) override {
    return Read([&](sql::Connection& c) {
      return First<Exploder>(c.Query("SELECT group_id, certificate_der, cert_fingerprint "
                                     "FROM exploders WHERE group_id = $1",
                                     {group_id}),
                             [](const Row& r) {
                               return Exploder{.group_id = AsInt(r[0]),
                                               .certificate_der = AsBlob(r[1]),
                                               .cert_fingerprint = AsText(r[2])};
                             });
    });
  }

  // ---- administrators ----

  Status AddAdminToken(const AdminToken& token) override {
    if (token.name.empty()) return InvalidArgument("the administrator name is empty");
    if (token.token_hash.empty()) return InvalidArgument("the token hash is empty");
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("INSERT INTO admin_tokens (name, token_hash, created_at) "
                                   "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                   {token.name, token.token_hash,
                                    token.created_at != 0 ? token.created_at : Now()}));
      if (n == 0) return Exists("the administrator name or token exists");
      return std::monostate{};
    }));
  }

  Result<std::optional<AdminToken>> FindAdminToken(const Bytes& token_hash) override {
    if (token_hash.empty()) return std::optional<AdminToken>();
    return Read([&](sql::Connection& c) {
      return First<AdminToken>(
          c.Query("SELECT name, token_hash, created_at FROM admin_tokens WHERE token_hash = $1",
                  {token_hash}),
          [](const Row& r) {
            return AdminToken{
                .name = AsText(r[0]), .token_hash = AsBlob(r[1]), .created_at = AsInt(r[2])};
          });
    });
  }

  // ---- audit ----

  Status AppendAudit(const AuditRecord& record) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY(InsertAudit(c, record));
      return std::monostate{};
    }));
  }

  Status AppendAuditBatch(const std::vector<AuditRecord>& records) override {
    if (records.empty()) return Status::Ok();
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      // kAuditRowsPerInsert rows per INSERT (one statement, prepared once), the rest one each.
      std::size_t i = 0;
      for (; i + kAuditRowsPerInsert <= records.size(); i += kAuditRowsPerInsert) {
        static const std::string kInsertMany = AuditInsertSql(kAuditRowsPerInsert);
        sql::Params params;
        params.reserve(kAuditRowsPerInsert * kAuditInsertColumns);
        for (std::size_t j = i; j < i + kAuditRowsPerInsert; ++j)
          AddAuditParams(params, records[j]);
        BL_TRY(c.Exec(kInsertMany, params));
      }
      for (; i < records.size(); ++i) BL_TRY(InsertAudit(c, records[i]));
      return std::monostate{};
    }));
  }

  Result<std::int64_t> PruneAudit(UnixTime before) override {
    return Write([&](sql::Connection& c) -> Result<std::int64_t> {
      BL_TRY_ASSIGN(auto n, c.Exec("DELETE FROM audit_log WHERE occurred_at < $1", {before}));
      return static_cast<std::int64_t>(n);
    });
  }

  Result<std::vector<AuditRecord>> ListAudit(const AuditQuery& q) override {
    if (q.limit <= 0) return std::vector<AuditRecord>();
    std::string where;
    sql::Params params;
    const auto add = [&](std::string_view condition, sql::Value value) {
      params.push_back(std::move(value));
      where += where.empty() ? "WHERE " : " AND ";
      where += condition;
      where += "$" + std::to_string(params.size());
    };
    if (!q.group.empty()) add("group_name = ", sql::SanitizeText(q.group, kAuditFieldChars));
    if (q.before_id > 0) add("id < ", q.before_id);
    if (q.since > 0) add("occurred_at >= ", q.since);
    if (q.until > 0) add("occurred_at < ", q.until);
    params.emplace_back(std::int64_t{q.limit});
    std::string rest =
        "FROM audit_log " + where + " ORDER BY id DESC LIMIT $" + std::to_string(params.size());
    return Read([&](sql::Connection& c) {
      return Map<AuditRecord>(c.Query(Select(kAuditColumns, rest), params), ToAudit);
    });
  }

  // ---- membership certificates ----

  Status RecordIssuedCertificate(const IssuedCertificate& cert) override {
    if (cert.serial_hex.empty()) return InvalidArgument("the serial number is empty");
    // SQLite: BEGIN IMMEDIATE already excludes every other writer until commit. PostgreSQL
    // (READ COMMITTED): FOR SHARE holds the member's row, so a concurrent RemoveMember's DELETE
    // waits for this commit and its revocation then sees the new row; a DELETE that came first
    // makes this SELECT wait for it and find nothing.
    const std::string member_row =
        std::string("SELECT 1 FROM members WHERE group_id = $1 AND address = $2") +
        (pool_->dialect() == sql::Dialect::kPostgres ? " FOR SHARE" : "");
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY(GroupMustExist(c, cert.group_id));
      BL_TRY_ASSIGN(auto member, c.Query(member_row, {cert.group_id, cert.member_address}));
      if (member.empty()) {
        return MakeError(
            std::string(errc::kNotAMember),
            cert.member_address + " is not a member of group " + std::to_string(cert.group_id));
      }
      BL_TRY_ASSIGN(auto n,
                    c.Exec("INSERT INTO issued_certificates (" + std::string(kCertificateColumns) +
                               ") VALUES ($1, $2, $3, $4, $5, $6) "
                               "ON CONFLICT (serial_hex) DO NOTHING",
                           {Lower(cert.serial_hex), cert.group_id, cert.member_address,
                            cert.not_after, std::int64_t{cert.revoked ? 1 : 0},
                            cert.revoked ? cert.revoked_at : std::int64_t{0}}));
      if (n == 0) return Exists("a certificate with serial " + cert.serial_hex + " is recorded");
      return std::monostate{};
    }));
  }

  Result<int> RevokeMemberCertificates(std::int64_t group_id, const std::string& address,
                                       UnixTime now) override {
    return Write([&](sql::Connection& c) -> Result<int> {
      BL_TRY_ASSIGN(auto n, RevokeWhere(c, "group_id = $2 AND member_address = $3",
                                        {now, group_id, address}));
      return static_cast<int>(n);
    });
  }

  Result<std::optional<IssuedCertificateStatus>> FindIssuedCertificate(
      const std::string& serial_hex) override {
    return Read([&](sql::Connection& c) {
      return First<IssuedCertificateStatus>(
          c.Query(Select(kCertificateColumns,
                         ", CASE WHEN EXISTS (SELECT 1 FROM members m WHERE m.group_id = "
                         "issued_certificates.group_id AND m.address = "
                         "issued_certificates.member_address) THEN 1 ELSE 0 END "
                         "FROM issued_certificates WHERE serial_hex = $1"),
                  {Lower(serial_hex)}),
          [](const Row& r) {
            return IssuedCertificateStatus{.record = ToCertificate(r),
                                           .member_current = AsInt(r[6]) != 0};
          });
    });
  }

  Result<std::vector<IssuedCertificate>> ListRevokedCertificates() override {
    return Read([&](sql::Connection& c) {
      return Map<IssuedCertificate>(c.Query(Select(kCertificateColumns,
                                                   "FROM issued_certificates WHERE revoked = 1 "
                                                   "ORDER BY revoked_at, serial_hex"),
                                            {}),
                                    ToCertificate);
    });
  }

 private:
  static Error KeyNotFound(std::int64_t group_id, int version) {
    return NotFound("group " + std::to_string(group_id) + " has no key version " +
                    std::to_string(version));
  }

  static void AddAuditParams(sql::Params& params, const AuditRecord& record) {
    // Free text from callers is made storable rather than refused: an audit
    // record must never be lost to a stray byte.
    const auto field = [](const std::string& s) { return sql::SanitizeText(s, kAuditFieldChars); };
    params.emplace_back(record.time != 0 ? record.time : Now());
    params.emplace_back(field(record.daemon));
    params.emplace_back(field(record.caller));
    params.emplace_back(field(record.group));
    params.emplace_back(std::int64_t{record.key_version});
    params.emplace_back(field(record.operation));
    params.emplace_back(field(record.result));
    params.emplace_back(sql::SanitizeText(record.reason, kReasonChars));
    params.emplace_back(sql::SanitizeText(record.members, kAuditMembersChars));
  }

  static Status InsertAudit(sql::Connection& c, const AuditRecord& record) {
    static const std::string kInsertOne = AuditInsertSql(1);
    sql::Params params;
    params.reserve(kAuditInsertColumns);
    AddAuditParams(params, record);
    BL_TRY(c.Exec(kInsertOne, params));
    return Status::Ok();
  }

  // The rows (`columns`, read by `to_row`) of the members among `addresses`: one query per
  // kFindMembersChunk addresses, the domain's case aside (Store::FindMembers).
  template <typename T, typename ToRow, typename AddressOf>
  Result<std::vector<T>> FindByAddress(std::int64_t group_id,
                                       const std::vector<std::string>& addresses,
                                       std::string_view columns, ToRow to_row,
                                       AddressOf address_of) {
    // The addresses asked for, canonical, sorted and once each (a sorted vector: no node per
    // address, and each chunk is a slice of it, passed without copies).
    std::vector<std::string> wanted;
    wanted.reserve(addresses.size());
    for (const auto& a : addresses) wanted.push_back(CanonicalMailbox(a));
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    std::vector<T> found;
    found.reserve(wanted.size());
    const bool fold_here = pool_->dialect() == sql::Dialect::kSqlite;
    for (std::size_t start = 0; start < wanted.size(); start += kFindMembersChunk) {
      const std::span<const std::string> chunk(wanted.data() + start,
                                               std::min(kFindMembersChunk, wanted.size() - start));
      BL_TRY_ASSIGN(std::vector<T> rows, Read([&](sql::Connection& c) -> Result<std::vector<T>> {
                      sql::Params params;
                      if (fold_here) {
                        BL_TRY_ASSIGN(params, FoldedAddressParams(c, group_id, chunk));
                      } else {
                        params = MembersByAddressParams(group_id, chunk);
                      }
                      return Map<T>(
                          c.Query(MembersByAddressSql(columns, chunk.size(), fold_here), params),
                          to_row);
                    }));
      // lower() folds the local part too (and, on PostgreSQL, more than ASCII): keep only the
      // rows whose address is one of those asked for, its domain's case aside.
      for (auto& m : rows) {
        if (std::binary_search(wanted.begin(), wanted.end(), CanonicalMailbox(address_of(m))))
          found.push_back(std::move(m));
      }
    }
    return found;
  }

  Result<std::optional<Member>> FindMemberWhere(std::string_view where, const sql::Params& params) {
    std::string rest = "FROM members WHERE group_id = $1 AND ";
    rest += where;
    return Read([&](sql::Connection& c) {
      return First<Member>(c.Query(Select(kMemberColumns, rest), params), ToMember);
    });
  }

  // ---- threshold key generation rounds ----

  Result<DkgRound> BeginDkgRound(const DkgRound& given) override {
    if (given.group.empty() || given.round.empty())
      return InvalidArgument("a key generation round needs its group and round id");
    DkgRound round = given;
    round.group = sql::AsciiLower(given.group);
    return Write([&](sql::Connection& c) -> Result<DkgRound> {
      BL_TRY(c.Exec("DELETE FROM dkg_rounds WHERE expires_at < $1", {Now()}));
      // A group of this address, in any spelling, takes no round (it would only be refused at
      // finish, and would show among the rounds the group was made in).
      BL_TRY_ASSIGN(
          auto held,
          c.Query("SELECT name FROM groups WHERE lower(name) = lower($1) LIMIT 1", {round.group}));
      if (!held.empty()) return Exists("a group named " + AsText(held[0][0]) + " exists");
      // The round id first: of two concurrent starts of one id, on any backend, the key lets one
      // in and makes the other wait for it, then see it.
      BL_TRY_ASSIGN(auto fresh, c.Exec("INSERT INTO dkg_started_rounds (round, group_name, "
                                       "started_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                       {round.round, round.group, Now()}));
      if (fresh == 0) {
        // Started before: the same round of the group, still kept (a repeated start gets its
        // record back), or a round that ended, or another group's.
        auto kept = UnexpiredDkgRound(c, round.group);
        if (kept.ok() && kept->round == round.round) return kept;
        if (!kept.ok() && kept.error().code != errc::kNotFound) return kept.error();
        return MakeError(std::string(errc::kConflict),
                         "key generation round " + round.round +
                             " was started at this node before (it is finished, cancelled, "
                             "expired or another group's): a round id starts once");
      }
      BL_TRY(
          c.Exec("INSERT INTO dkg_rounds (" + std::string(kDkgColumns) +
                     ") VALUES ($1, $2, $3, $4, 0, $5, $5, 0, $5, $5, $6) ON CONFLICT DO NOTHING",
                 {round.group, round.round, round.context, round.start_answer, Bytes{},
                  round.expires_at}));
      BL_TRY_ASSIGN(DkgRound kept, UnexpiredDkgRound(c, round.group));
      // The group keeps another round: this id was not started after all.
      if (kept.round != round.round)
        BL_TRY(c.Exec("DELETE FROM dkg_started_rounds WHERE round = $1", {round.round}));
      return kept;
    });
  }

  Result<std::vector<StartedDkgRound>> ListStartedDkgRounds(const std::string& name) override {
    const std::string group = sql::AsciiLower(name);
    return Read([&](sql::Connection& c) -> Result<std::vector<StartedDkgRound>> {
      BL_TRY_ASSIGN(auto rows, c.Query("SELECT round, started_at, finished_at FROM "
                                       "dkg_started_rounds WHERE group_name = $1 ORDER BY id",
                                       {group}));
      std::vector<StartedDkgRound> out;
      out.reserve(rows.size());
      for (const auto& row : rows) {
        out.push_back(StartedDkgRound{
            .round = AsText(row[0]), .started_at = AsInt(row[1]), .finished_at = AsInt(row[2])});
      }
      return out;
    });
  }

  Result<std::optional<DkgRound>> FindDkgRound(const std::string& name) override {
    const std::string group = sql::AsciiLower(name);
    return Read([&](sql::Connection& c) -> Result<std::optional<DkgRound>> {
      auto found = UnexpiredDkgRound(c, group);
      if (!found.ok()) {
        if (found.error().code == errc::kNotFound) return std::optional<DkgRound>();
        return found.error();
      }
      return std::optional<DkgRound>(std::move(*found));
    });
  }

  Result<DkgRound> DealDkgRound(const std::string& name, const std::string& round,
                                const Bytes& view_digest, const Bytes& deal_answer) override {
    const std::string group = sql::AsciiLower(name);
    return Write([&](sql::Connection& c) -> Result<DkgRound> {
      BL_TRY(
          c.Exec("UPDATE dkg_rounds SET dealt = 1, view_digest = $3, deal_answer = $4 "
                 "WHERE group_name = $1 AND round = $2 AND dealt = 0 AND expires_at >= $5",
                 {group, round, view_digest, deal_answer, Now()}));
      BL_TRY_ASSIGN(DkgRound kept, UnexpiredDkgRound(c, group));
      if (kept.round != round)
        return NotFound("no key generation round " + round + " for " + group);
      return kept;
    });
  }

  Result<DkgRound> CheckDkgRound(const std::string& name, const std::string& round,
                                 const Bytes& view_digest, DkgCheck outcome,
                                 const Bytes& check_answer, const Bytes& sealed_share) override {
    const std::string group = sql::AsciiLower(name);
    return Write([&](sql::Connection& c) -> Result<DkgRound> {
      BL_TRY(
          c.Exec("UPDATE dkg_rounds SET checked = $4, check_answer = $5, sealed_share = $6 "
                 "WHERE group_name = $1 AND round = $2 AND dealt = 1 AND view_digest = $3 AND "
                 "checked = 0 AND expires_at >= $7",
                 {group, round, view_digest, static_cast<std::int64_t>(outcome), check_answer,
                  sealed_share, Now()}));
      BL_TRY_ASSIGN(DkgRound kept, UnexpiredDkgRound(c, group));
      if (kept.round != round)
        return NotFound("no key generation round " + round + " for " + group);
      return kept;
    });
  }

  Status EndDkgRound(const std::string& name, const std::string& round, bool finished) override {
    const std::string group = sql::AsciiLower(name);
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("DELETE FROM dkg_rounds WHERE group_name = $1 AND round = $2",
                                   {group, round}));
      if (n == 0) return NotFound("no key generation round " + round + " for " + name);
      if (finished) {
        BL_TRY(c.Exec("UPDATE dkg_started_rounds SET finished_at = $2 WHERE round = $1",
                      {round, Now()}));
      }
      return std::monostate{};
    }));
  }

  template <typename F>
  std::invoke_result_t<F&, sql::Connection&> Read(F body) {
    return sql::RunOnPool(*pool_, /*transaction=*/false, body);
  }
  template <typename F>
  std::invoke_result_t<F&, sql::Connection&> Write(F body) {
    return sql::RunOnPool(*pool_, /*transaction=*/true, body);
  }

  std::unique_ptr<sql::ConnectionPool> pool_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqlStore(std::unique_ptr<sql::ConnectionPool> pool) {
  BL_TRY(migrations::Apply(*pool));
  return std::unique_ptr<Store>(std::make_unique<SqlStore>(std::move(pool)));
}

}  // namespace blindlist::store
