#include "store/list_store.h"

#include <algorithm>
#include <ctime>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

#include "blindlist/error_codes.h"
#include "store/migrations/list_migrations.h"
#include "store/migrations/migrations.h"
#include "store/sql.h"

namespace blindlist::store {

namespace {

constexpr std::size_t kMaxLocalPart = 64;
constexpr std::size_t kMaxMailbox = 254;
constexpr std::size_t kMaxLabel = 63;
constexpr std::size_t kMaxDescriptionChars = 1000;
constexpr std::size_t kMaxGroupName = 254;
// Bounce reasons come from remote servers: bounded, and sanitised instead of refused.
constexpr std::size_t kReasonChars = 200;
// Rows per multi-row INSERT in AddMembers: 3 parameters each stays below
// SQLite's oldest limit of 999 host parameters.
constexpr std::size_t kRowsPerInsert = 100;

// RFC 5322 specials that are not allowed in an unquoted local part, and that
// would break a header or an SMTP command if they were.
bool IsSpecial(unsigned char c) {
  switch (c) {
    case '(':
    case ')':
    case '<':
    case '>':
    case '[':
    case ']':
    case ':':
    case ';':
    case '@':
    case '\\':
    case ',':
    case '"':
    case ' ':
      return true;
    default:
      return c < 0x20 || c == 0x7f;
  }
}

bool IsValidDomain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i <= domain.size(); ++i) {
    if (i == domain.size() || domain[i] == '.') {
      if (label == 0 || label > kMaxLabel) return false;
      label = 0;
      continue;
    }
    const auto c = static_cast<unsigned char>(domain[i]);
    // Letters, digits, hyphens; bytes >= 0x80 for internationalised names (checked as UTF-8).
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c >= 0x80;
    if (!ok) return false;
    ++label;
  }
  return true;
}

bool EqualIgnoringCase(std::string_view a, std::string_view b) {
  const auto lower = [](char ch) {
    return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
  };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

Error NotFound(std::string what) { return MakeError("not-found", std::move(what)); }
Error Exists(std::string what) { return MakeError("exists", std::move(what)); }
Error InvalidArgument(std::string what) { return MakeError("invalid-argument", std::move(what)); }

Status ToStatus(const Result<std::monostate>& r) {
  if (!r.ok()) return r.error();
  return Status::Ok();
}

constexpr std::string_view kListColumns =
    "id, address, group_name, description, reading, posting, encrypted_only, bounce_address, "
    "bounce_threshold, created_at, require_aead, roster, bounce_info_stale_after, owner_address, "
    "per_member, per_member_fallback, member_clients";

// The lists.reading column predates per-member reading: such a list is stored as 'direct' with
// per_member = 1 (migration 5).
std::string StoredReading(const MailingList& l) {
  return l.reading == "per-member" ? "direct" : l.reading;
}
std::int64_t PerMember(const MailingList& l) { return l.reading == "per-member" ? 1 : 0; }

MailingList ToList(const sql::Row& r) {
  MailingList l;
  l.id = sql::AsInt(r[0]);
  l.address = sql::AsText(r[1]);
  l.group = sql::AsText(r[2]);
  l.description = sql::AsText(r[3]);
  l.reading = sql::AsText(r[4]);
  l.posting = sql::AsText(r[5]);
  l.encrypted_only = sql::AsInt(r[6]) != 0;
  l.bounce_address = sql::AsText(r[7]);
  l.bounce_threshold = static_cast<int>(sql::AsInt(r[8]));
  l.created_at = sql::AsInt(r[9]);
  l.require_aead = sql::AsInt(r[10]) != 0;
  l.roster = sql::AsText(r[11]);
  l.bounce_info_stale_after = static_cast<int>(sql::AsInt(r[12]));
  l.owner = sql::AsText(r[13]);
  if (sql::AsInt(r[14]) != 0) l.reading = "per-member";  // stored as 'direct' (migration 5)
  l.per_member_fallback = sql::AsText(r[15]);
  l.member_clients = sql::AsText(r[16]);
  return l;
}

constexpr std::string_view kMemberColumns =
    "address, enabled, bounce_score, disabled_reason, added_at, last_bounce_at, probe_state, "
    "probe_at, owner_notice_due";

ListMember ToMember(const sql::Row& r) {
  const std::int64_t probe = sql::AsInt(r[6]);
  return ListMember{.address = sql::AsText(r[0]),
                    .enabled = sql::AsInt(r[1]) != 0,
                    .bounce_score = static_cast<int>(sql::AsInt(r[2])),
                    .disabled_reason = sql::AsText(r[3]),
                    .added_at = sql::AsInt(r[4]),
                    .last_bounce_at = sql::AsInt(r[5]),
                    .probe = probe == 1   ? ProbeState::kWanted
                             : probe == 2 ? ProbeState::kSent
                                          : ProbeState::kNone,
                    .probe_at = sql::AsInt(r[7]),
                    .owner_notice_due = sql::AsInt(r[8]) != 0};
}

constexpr std::int64_t kDay = std::int64_t{24} * 3600;

std::string Select(std::string_view columns, std::string_view rest) {
  std::string s = "SELECT ";
  s += columns;
  s += ' ';
  s += rest;
  return s;
}

// Checks the fields a caller sets and fills in the defaults; `list.address` is
// made canonical.
Status Normalise(MailingList& list) {
  if (!IsValidMailbox(list.address)) {
    return InvalidArgument("the list address \"" + sql::SanitizeText(list.address, 80) +
                           "\" is not a mailbox (local@domain)");
  }
  list.address = CanonicalMailbox(list.address);
  if (list.group.empty()) return InvalidArgument("the group name is empty");
  if (list.group.size() > kMaxGroupName || !sql::IsValidText(list.group)) {
    return InvalidArgument("the group name is too long or not valid UTF-8");
  }
  if (list.reading != "direct" && list.reading != "path-b" && list.reading != "path-b-prime" &&
      list.reading != "per-member") {
    return InvalidArgument("reading must be direct, path-b, path-b-prime or per-member, not \"" +
                           sql::SanitizeText(list.reading, 40) + "\"");
  }
  if (list.per_member_fallback != "group" && list.per_member_fallback != "skip") {
    return InvalidArgument("per_member_fallback must be group or skip, not \"" +
                           sql::SanitizeText(list.per_member_fallback, 40) + "\"");
  }
  if (list.member_clients != "any" && list.member_clients != "nss") {
    return InvalidArgument("member_clients must be any or nss, not \"" +
                           sql::SanitizeText(list.member_clients, 40) + "\"");
  }
  if (list.member_clients == "nss" && list.require_aead) {
    return InvalidArgument(
        "member_clients nss needs AES-CBC posts (NSS reads nothing else): require_aead cannot be "
        "on");
  }
  if (list.roster != "manual" && list.roster != "groupd") {
    return InvalidArgument("roster must be manual or groupd, not \"" +
                           sql::SanitizeText(list.roster, 40) + "\"");
  }
  if (list.posting != "members" && list.posting != "open") {
    return InvalidArgument("posting must be members or open, not \"" +
                           sql::SanitizeText(list.posting, 40) + "\"");
  }
  if (!sql::IsValidText(list.description)) {
    return InvalidArgument("the description is not valid UTF-8 or contains a NUL byte");
  }
  if (sql::SanitizeText(list.description, kMaxDescriptionChars).size() < list.description.size()) {
    return InvalidArgument("the description is longer than " +
                           std::to_string(kMaxDescriptionChars) + " characters");
  }
  if (list.bounce_threshold < 1) {
    return InvalidArgument("the bounce threshold must be at least 1");
  }
  if (list.bounce_info_stale_after < 1) {
    return InvalidArgument("bounce_info_stale_after must be at least 1 day");
  }
  if (!list.owner.empty()) {
    if (!IsValidMailbox(list.owner)) {
      return InvalidArgument("the owner address \"" + sql::SanitizeText(list.owner, 80) +
                             "\" is not a mailbox (local@domain)");
    }
    list.owner = CanonicalMailbox(list.owner);
  }
  if (list.bounce_address.empty()) list.bounce_address = DefaultBounceAddress(list.address);
  if (!IsValidMailbox(list.bounce_address)) {
    return InvalidArgument("the bounce address \"" + sql::SanitizeText(list.bounce_address, 80) +
                           "\" is not a mailbox (local@domain)");
  }
  list.bounce_address = CanonicalMailbox(list.bounce_address);
  if (list.bounce_address == list.address) {
    return InvalidArgument("the bounce address must differ from the list address");
  }
  if (list.certificates.empty()) {
    return InvalidArgument("a list needs at least one group certificate");
  }
  for (const Bytes& cert : list.certificates) {
    if (cert.empty()) return InvalidArgument("a group certificate is empty");
  }
  return Status::Ok();
}

class SqlListStore final : public ListStore {
 public:
  explicit SqlListStore(std::unique_ptr<sql::ConnectionPool> pool) : pool_(std::move(pool)) {
    // Byte order on both backends: PostgreSQL would otherwise sort by the
    // database's locale and the two backends would list members differently.
    order_by_address_ = pool_->dialect() == sql::Dialect::kPostgres
                            ? "ORDER BY address COLLATE \"C\""
                            : "ORDER BY address";
    lock_row_ = pool_->dialect() == sql::Dialect::kPostgres ? " FOR UPDATE" : "";
  }

  std::string BackendName() const override {
    return pool_->dialect() == sql::Dialect::kSqlite ? "sqlite" : "postgresql";
  }

  Result<int> SchemaVersion() override {
    return Read([](sql::Connection& c) -> Result<int> {
      BL_TRY_ASSIGN(auto rows,
                    c.Query("SELECT COALESCE(MAX(version), 0) FROM list_schema_migrations", {}));
      return static_cast<int>(rows.empty() ? 0 : sql::AsInt(rows[0][0]));
    });
  }

  // ---- lists ----

  Result<MailingList> CreateList(const MailingList& input) override {
    MailingList list = input;
    BL_TRY(Normalise(list));
    return Write([&](sql::Connection& c) -> Result<MailingList> {
      BL_TRY(AddressesFree(c, list, 0));
      list.created_at = list.created_at != 0 ? list.created_at : Now();
      BL_TRY_ASSIGN(
          auto rows,
          c.Query(
              "INSERT INTO lists (address, group_name, description, reading, posting, "
              "encrypted_only, bounce_address, bounce_threshold, created_at, require_aead, "
              "roster, bounce_info_stale_after, owner_address, per_member, per_member_fallback, "
              "member_clients) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
              "ON CONFLICT DO NOTHING RETURNING id",
              {list.address, list.group, list.description, StoredReading(list), list.posting,
               std::int64_t{list.encrypted_only ? 1 : 0}, list.bounce_address,
               std::int64_t{list.bounce_threshold}, list.created_at,
               std::int64_t{list.require_aead ? 1 : 0}, list.roster,
               std::int64_t{list.bounce_info_stale_after}, list.owner, PerMember(list),
               list.per_member_fallback, list.member_clients}));
      // Only a writer in another process between our check and the insert gets here.
      if (rows.empty()) return Exists("a list at " + list.address + " exists");
      list.id = sql::AsInt(rows[0][0]);
      BL_TRY(WriteCertificates(c, list));
      return list;
    });
  }

  Status UpdateList(const MailingList& input) override {
    MailingList list = input;
    BL_TRY_ASSIGN(std::optional<MailingList> current,
                  Read([&](sql::Connection& c) { return LoadList(c, "id = $1", {list.id}); }));
    if (!current) return NotFound("no list with id " + std::to_string(list.id));
    // The address is fixed; checking the rest against it keeps the rules of CreateList.
    list.address = current->address;
    BL_TRY(Normalise(list));
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY(AddressesFree(c, list, list.id));
      BL_TRY_ASSIGN(
          auto n,
          c.Exec("UPDATE lists SET group_name = $2, description = $3, reading = $4, posting = $5, "
                 "encrypted_only = $6, bounce_address = $7, bounce_threshold = $8, "
                 "require_aead = $9, roster = $10, bounce_info_stale_after = $11, "
                 "owner_address = $12, per_member = $13, per_member_fallback = $14, "
                 "member_clients = $15 WHERE id = $1",
                 {list.id, list.group, list.description, StoredReading(list), list.posting,
                  std::int64_t{list.encrypted_only ? 1 : 0}, list.bounce_address,
                  std::int64_t{list.bounce_threshold}, std::int64_t{list.require_aead ? 1 : 0},
                  list.roster, std::int64_t{list.bounce_info_stale_after}, list.owner,
                  PerMember(list), list.per_member_fallback, list.member_clients}));
      if (n == 0) return NotFound("no list with id " + std::to_string(list.id));
      BL_TRY(c.Exec("DELETE FROM list_certificates WHERE list_id = $1", {list.id}));
      BL_TRY(WriteCertificates(c, list));
      return std::monostate{};
    }));
  }

  Status DeleteList(const std::string& address) override {
    const std::string canonical = CanonicalMailbox(address);
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      // Certificates and members go by ON DELETE CASCADE.
      BL_TRY_ASSIGN(auto n, c.Exec("DELETE FROM lists WHERE address = $1", {canonical}));
      if (n == 0) return NotFound("no list at " + sql::SanitizeText(address, 300));
      return std::monostate{};
    }));
  }

  Result<std::optional<MailingList>> FindList(const std::string& address) override {
    return Read([&](sql::Connection& c) { return LoadByAddress(c, "address", address); });
  }

  Result<std::optional<MailingList>> FindListByBounceAddress(const std::string& address) override {
    return Read([&](sql::Connection& c) { return LoadByAddress(c, "bounce_address", address); });
  }

  Result<std::vector<MailingList>> ListLists() override {
    return Read([&](sql::Connection& c) -> Result<std::vector<MailingList>> {
      BL_TRY_ASSIGN(auto rows,
                    c.Query(Select(kListColumns, "FROM lists " + order_by_address_), {}));
      std::vector<MailingList> out;
      out.reserve(rows.size());
      for (const sql::Row& r : rows) {
        MailingList l = ToList(r);
        BL_TRY_ASSIGN(l.certificates, LoadCertificates(c, l.id));
        out.push_back(std::move(l));
      }
      return out;
    });
  }

  // ---- delivery lists ----

  Status AddMember(std::int64_t list_id, const std::string& address) override {
    BL_TRY(CheckMemberAddress(address));
    const std::string canonical = CanonicalMailbox(address);
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(MailingList list, ListForMembers(c, list_id));
      BL_TRY(NotTheListItself(list, canonical));
      BL_TRY_ASSIGN(auto n, c.Exec("INSERT INTO list_members (list_id, address, added_at) "
                                   "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                   {list_id, canonical, Now()}));
      if (n == 0) return Exists(canonical + " is already on " + list.address);
      return std::monostate{};
    }));
  }

  Status RemoveMember(std::int64_t list_id, const std::string& address) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("DELETE FROM list_members WHERE list_id = $1 AND address = $2",
                                   {list_id, CanonicalMailbox(address)}));
      if (n == 0) return NotMember(address);
      return std::monostate{};
    }));
  }

  Result<std::optional<ListMember>> FindMember(std::int64_t list_id,
                                               const std::string& address) override {
    return Read([&](sql::Connection& c) -> Result<std::optional<ListMember>> {
      BL_TRY_ASSIGN(
          auto rows,
          c.Query(Select(kMemberColumns, "FROM list_members WHERE list_id = $1 AND address = $2"),
                  {list_id, CanonicalMailbox(address)}));
      if (rows.empty()) return std::optional<ListMember>();
      return std::optional<ListMember>(ToMember(rows[0]));
    });
  }

  Result<std::vector<ListMember>> ListMembers(std::int64_t list_id, bool enabled_only) override {
    std::string where = "FROM list_members WHERE list_id = $1 ";
    if (enabled_only) where += "AND enabled = 1 ";
    return MembersWhere(where, {list_id});
  }

  Result<std::vector<ListMember>> ListDisabledMembers(std::int64_t list_id) override {
    return MembersWhere("FROM list_members WHERE list_id = $1 AND enabled = 0 ", {list_id});
  }

  Result<std::int64_t> CountMembers(std::int64_t list_id) override {
    BL_TRY_ASSIGN(MemberCounts counts, CountMembersByState(list_id));
    return counts.enabled + counts.disabled;
  }

  Result<MemberCounts> CountMembersByState(std::int64_t list_id) override {
    return Read([&](sql::Connection& c) -> Result<MemberCounts> {
      BL_TRY_ASSIGN(auto rows, c.Query("SELECT enabled, COUNT(*) FROM list_members "
                                       "WHERE list_id = $1 GROUP BY enabled",
                                       {list_id}));
      MemberCounts counts;
      for (const sql::Row& r : rows) {
        (sql::AsInt(r[0]) != 0 ? counts.enabled : counts.disabled) += sql::AsInt(r[1]);
      }
      return counts;
    });
  }

  Result<BounceOutcome> RecordBounce(std::int64_t list_id, const std::string& address,
                                     std::int64_t now) override {
    const std::string canonical = CanonicalMailbox(address);
    return Write([&](sql::Connection& c) -> Result<BounceOutcome> {
      // Read, decide, write in one transaction; the row is locked (PostgreSQL FOR UPDATE,
      // SQLite's write lock) so concurrent bounces for one member are decided one at a time.
      BL_TRY_ASSIGN(auto rows, c.Query(Select(kMemberColumns,
                                              "FROM list_members WHERE list_id "
                                              "= $1 AND address = $2" +
                                                  lock_row_),
                                       {list_id, canonical}));
      if (rows.empty()) return NotMember(address);
      BL_TRY_ASSIGN(MailingList list, ListForMembers(c, list_id));
      BounceOutcome out;
      out.member = ToMember(rows[0]);
      ListMember& m = out.member;
      const std::int64_t stale = std::int64_t{list.bounce_info_stale_after} * kDay;
      if (!m.enabled || (m.last_bounce_at != 0 && m.last_bounce_at / kDay == now / kDay)) {
        return out;
      }
      if (m.last_bounce_at != 0 && now - m.last_bounce_at > stale) m.bounce_score = 0;
      ++m.bounce_score;
      m.last_bounce_at = now;
      out.counted = true;
      const bool probe_outstanding = m.probe != ProbeState::kNone && now - m.probe_at <= stale;
      if (m.bounce_score >= list.bounce_threshold && !probe_outstanding) {
        m.probe = ProbeState::kWanted;
        m.probe_at = now;
        out.probe_wanted = true;
      }
      BL_TRY(
          c.Exec("UPDATE list_members SET bounce_score = $3, last_bounce_at = $4, "
                 "probe_state = $5, probe_at = $6 WHERE list_id = $1 AND address = $2",
                 {list_id, canonical, std::int64_t{m.bounce_score}, m.last_bounce_at,
                  static_cast<std::int64_t>(m.probe), m.probe_at}));
      return out;
    });
  }

  Result<std::vector<BounceNotice>> PendingProbes(std::size_t limit) override {
    return Notices("m.probe_state = 1", limit);
  }

  Result<std::vector<BounceNotice>> PendingOwnerNotices(std::size_t limit) override {
    return Notices("m.owner_notice_due = 1", limit);
  }

  Status MarkProbeSent(std::int64_t list_id, const std::string& address, std::int64_t at) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("UPDATE list_members SET probe_state = 2, probe_at = $3 "
                                   "WHERE list_id = $1 AND address = $2 AND probe_state = 1",
                                   {list_id, CanonicalMailbox(address), at}));
      if (n == 0) return NotFound("no probe wanted for " + sql::SanitizeText(address, 300));
      return std::monostate{};
    }));
  }

  Result<std::optional<ListMember>> ConfirmProbeBounce(std::int64_t list_id,
                                                       const std::string& address,
                                                       std::int64_t probe_at,
                                                       const std::string& reason) override {
    const std::string disabled_reason = "bounces: " + sql::SanitizeText(reason, kReasonChars);
    return Write([&](sql::Connection& c) -> Result<std::optional<ListMember>> {
      BL_TRY_ASSIGN(
          auto rows,
          c.Query("UPDATE list_members SET enabled = 0, disabled_reason = $4, probe_state = 0, "
                  "owner_notice_due = 1 WHERE list_id = $1 AND address = $2 AND enabled = 1 "
                  "AND probe_state = 2 AND probe_at = $3 RETURNING " +
                      std::string(kMemberColumns),
                  {list_id, CanonicalMailbox(address), probe_at, disabled_reason}));
      if (rows.empty()) return std::optional<ListMember>();
      return std::optional<ListMember>(ToMember(rows[0]));
    });
  }

  Status MarkOwnerNotified(std::int64_t list_id, const std::string& address) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY(
          c.Exec("UPDATE list_members SET owner_notice_due = 0 "
                 "WHERE list_id = $1 AND address = $2",
                 {list_id, CanonicalMailbox(address)}));
      return std::monostate{};
    }));
  }

  Result<bool> ClaimOwnerNotice(std::int64_t list_id, const std::string& kind, std::int64_t now,
                                std::int64_t min_interval) override {
    return Write([&](sql::Connection& c) -> Result<bool> {
      BL_TRY_ASSIGN(auto lists, c.Query("SELECT id FROM lists WHERE id = $1", {list_id}));
      if (lists.empty()) return NotFound("no such list");
      BL_TRY_ASSIGN(auto added, c.Exec("INSERT INTO list_notices (list_id, kind, last_sent_at) "
                                       "VALUES ($1, $2, $3) ON CONFLICT (list_id, kind) DO NOTHING",
                                       {list_id, kind, now}));
      if (added == 1) return true;
      // A clock set back (last_sent_at in the future) counts as "sent just now".
      BL_TRY_ASSIGN(auto updated, c.Exec("UPDATE list_notices SET last_sent_at = $3 "
                                         "WHERE list_id = $1 AND kind = $2 AND last_sent_at <= $4",
                                         {list_id, kind, now, now - min_interval}));
      return updated == 1;
    });
  }

  Status EnableMember(std::int64_t list_id, const std::string& address) override {
    return ToStatus(Write([&](sql::Connection& c) -> Result<std::monostate> {
      BL_TRY_ASSIGN(auto n, c.Exec("UPDATE list_members SET enabled = 1, bounce_score = 0, "
                                   "disabled_reason = '', last_bounce_at = 0, probe_state = 0, "
                                   "probe_at = 0, owner_notice_due = 0 "
                                   "WHERE list_id = $1 AND address = $2",
                                   {list_id, CanonicalMailbox(address)}));
      if (n == 0) return NotMember(address);
      return std::monostate{};
    }));
  }

  Result<std::int64_t> AddMembers(std::int64_t list_id,
                                  const std::vector<std::string>& addresses) override {
    // Checked and deduplicated up front, so a bad address adds nothing at all.
    std::vector<std::string> canonical;
    canonical.reserve(addresses.size());
    std::set<std::string, std::less<>> seen;
    for (const std::string& a : addresses) {
      BL_TRY(CheckMemberAddress(a));
      std::string c = CanonicalMailbox(a);
      if (seen.insert(c).second) canonical.push_back(std::move(c));
    }
    seen.clear();
    {
      BL_TRY_ASSIGN(MailingList list,
                    Read([&](sql::Connection& c) { return ListForMembers(c, list_id); }));
      for (const std::string& a : canonical) BL_TRY(NotTheListItself(list, a));
    }
    const std::int64_t now = Now();
    std::int64_t added = 0;
    for (std::size_t start = 0; start < canonical.size(); start += kAddMembersChunk) {
      const std::size_t end = std::min(canonical.size(), start + kAddMembersChunk);
      BL_TRY_ASSIGN(std::int64_t n, Write([&](sql::Connection& c) -> Result<std::int64_t> {
                      // The list may have been deleted since the last chunk.
                      BL_TRY(ListForMembers(c, list_id));
                      return InsertMembers(c, list_id, canonical, start, end, now);
                    }));
      added += n;
    }
    return added;
  }

  Result<RosterChange> ReplaceMembers(std::int64_t list_id,
                                      const std::vector<std::string>& addresses) override {
    std::set<std::string, std::less<>> wanted;
    RosterChange change;
    BL_TRY_ASSIGN(MailingList list,
                  Read([&](sql::Connection& c) { return ListForMembers(c, list_id); }));
    for (const std::string& a : addresses) {
      const std::string canonical = CanonicalMailbox(a);
      if (!IsValidMailbox(a) || !NotTheListItself(list, canonical).ok()) {
        change.skipped.push_back(sql::SanitizeText(a, 300));
        continue;
      }
      wanted.insert(canonical);
    }
    auto written = Write([&](sql::Connection& c) -> Result<std::monostate> {
      change.added.clear();
      change.removed.clear();
      change.unchanged = 0;
      BL_TRY(ListForMembers(c, list_id));  // still there
      BL_TRY_ASSIGN(auto rows,
                    c.Query("SELECT address FROM list_members WHERE list_id = $1", {list_id}));
      std::set<std::string, std::less<>> current;
      for (const sql::Row& r : rows) current.insert(sql::AsText(r[0]));
      for (const std::string& a : current) {
        if (wanted.contains(a)) {
          ++change.unchanged;
          continue;
        }
        BL_TRY(
            c.Exec("DELETE FROM list_members WHERE list_id = $1 AND address = $2", {list_id, a}));
        change.removed.push_back(a);
      }
      for (const std::string& a : wanted) {
        if (!current.contains(a)) change.added.push_back(a);
      }
      BL_TRY(InsertMembers(c, list_id, change.added, 0, change.added.size(), Now()));
      return std::monostate{};
    });
    if (!written.ok()) return written.error();
    return change;
  }

 private:
  Result<std::vector<BounceNotice>> Notices(std::string_view where, std::size_t limit) {
    std::string statement = "SELECT l.id, l.address, m." + [] {
      std::string cols;
      for (char ch : kMemberColumns) {
        cols += ch;
        if (ch == ' ') cols += "m.";
      }
      return cols;
    }() + " FROM list_members m JOIN lists l ON l.id = m.list_id WHERE ";
    statement += where;
    statement += " ORDER BY m.probe_at, m.list_id, m.address LIMIT $1";
    return Read([&](sql::Connection& c) -> Result<std::vector<BounceNotice>> {
      BL_TRY_ASSIGN(auto rows, c.Query(statement, {static_cast<std::int64_t>(limit)}));
      std::vector<BounceNotice> out;
      for (const sql::Row& r : rows) {
        const sql::Row member(r.begin() + 2, r.end());
        out.push_back(BounceNotice{sql::AsInt(r[0]), sql::AsText(r[1]), ToMember(member)});
      }
      return out;
    });
  }

  static Error NotMember(const std::string& address) {
    return NotFound(sql::SanitizeText(address, 300) + " is not on the list");
  }

  static Status CheckMemberAddress(const std::string& address) {
    if (!IsValidMailbox(address)) {
      return InvalidArgument("\"" + sql::SanitizeText(address, 80) +
                             "\" is not a mailbox (local@domain)");
    }
    return Status::Ok();
  }

  // Case-insensitive in the local part too: most servers deliver "L@" to "l@".
  static Status NotTheListItself(const MailingList& list, const std::string& canonical) {
    if (EqualIgnoringCase(canonical, list.address) ||
        EqualIgnoringCase(canonical, list.bounce_address)) {
      return InvalidArgument(canonical + " is the list's own address; as a member it would loop");
    }
    return Status::Ok();
  }

  // Inserts canonical[start, end) in multi-row statements; returns how many were new.
  static Result<std::int64_t> InsertMembers(sql::Connection& c, std::int64_t list_id,
                                            const std::vector<std::string>& canonical,
                                            std::size_t start, std::size_t end, std::int64_t now) {
    static const std::string kBatch = [] {
      std::string s = "INSERT INTO list_members (list_id, address, added_at) VALUES ";
      for (std::size_t i = 0; i < kRowsPerInsert; ++i) {
        if (i > 0) s += ", ";
        s += "($" + std::to_string(3 * i + 1) + ", $" + std::to_string(3 * i + 2) + ", $" +
             std::to_string(3 * i + 3) + ")";
      }
      return s + " ON CONFLICT DO NOTHING";
    }();
    std::int64_t added = 0;
    std::size_t i = start;
    sql::Params params;
    for (; i + kRowsPerInsert <= end; i += kRowsPerInsert) {
      params.clear();
      for (std::size_t k = i; k < i + kRowsPerInsert; ++k) {
        params.emplace_back(list_id);
        params.emplace_back(canonical[k]);
        params.emplace_back(now);
      }
      BL_TRY_ASSIGN(std::int64_t n, c.Exec(kBatch, params));
      added += n;
    }
    // The rest one by one: a statement per remainder size would grow the statement cache.
    for (; i < end; ++i) {
      BL_TRY_ASSIGN(std::int64_t n, c.Exec("INSERT INTO list_members (list_id, address, added_at) "
                                           "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                           {list_id, canonical[i], now}));
      added += n;
    }
    return added;
  }

  Result<std::vector<ListMember>> MembersWhere(const std::string& rest, const sql::Params& params) {
    const std::string statement = Select(kMemberColumns, rest + order_by_address_);
    return Read([&](sql::Connection& c) -> Result<std::vector<ListMember>> {
      BL_TRY_ASSIGN(auto rows, c.Query(statement, params));
      std::vector<ListMember> out;
      out.reserve(rows.size());
      for (const sql::Row& r : rows) out.push_back(ToMember(r));
      return out;
    });
  }

  // The list a member operation names. "not-found".
  static Result<MailingList> ListForMembers(sql::Connection& c, std::int64_t list_id) {
    BL_TRY_ASSIGN(auto rows, c.Query(Select(kListColumns, "FROM lists WHERE id = $1"), {list_id}));
    if (rows.empty()) return NotFound("no list with id " + std::to_string(list_id));
    return ToList(rows[0]);
  }

  // "exists" when another list (not `self_id`) uses the list's address or bounce
  // address, as either of its two addresses.
  static Status AddressesFree(sql::Connection& c, const MailingList& list, std::int64_t self_id) {
    // Without case in the local part (ASCII), as lists are found.
    BL_TRY_ASSIGN(
        auto rows,
        c.Query("SELECT address FROM lists WHERE id <> $3 AND "
                "(lower(address) IN ($1, $2) OR lower(bounce_address) IN ($1, $2))",
                {sql::AsciiLower(list.address), sql::AsciiLower(list.bounce_address), self_id}));
    if (rows.empty()) return Status::Ok();
    const std::string other = sql::AsText(rows[0][0]);
    if (EqualIgnoringCase(other, list.address)) return Exists("a list at " + other + " exists");
    return Exists("the list " + other + " already uses " + list.address + " or " +
                  list.bounce_address);
  }

  static Status WriteCertificates(sql::Connection& c, const MailingList& list) {
    for (std::size_t i = 0; i < list.certificates.size(); ++i) {
      BL_TRY(
          c.Exec("INSERT INTO list_certificates (list_id, position, certificate_der) "
                 "VALUES ($1, $2, $3)",
                 {list.id, static_cast<std::int64_t>(i), list.certificates[i]}));
    }
    return Status::Ok();
  }

  static Result<std::vector<Bytes>> LoadCertificates(sql::Connection& c, std::int64_t list_id) {
    BL_TRY_ASSIGN(auto rows, c.Query("SELECT certificate_der FROM list_certificates "
                                     "WHERE list_id = $1 ORDER BY position",
                                     {list_id}));
    std::vector<Bytes> out;
    out.reserve(rows.size());
    for (const sql::Row& r : rows) out.push_back(sql::AsBlob(r[0]));
    return out;
  }

  // The list whose `column` is `address`: as stored first, then without case in the local
  // part too (ASCII; RFC 5321 lets a receiver compare local parts without case, and MTAs
  // rewrite them). No two lists differ only in case (AddressesFree).
  static Result<std::optional<MailingList>> LoadByAddress(sql::Connection& c,
                                                          std::string_view column,
                                                          const std::string& address) {
    const std::string canonical = CanonicalMailbox(address);
    BL_TRY_ASSIGN(auto exact, LoadList(c, std::string(column) + " = $1", {canonical}));
    if (exact || sql::AsciiLower(canonical) == canonical) return exact;
    return LoadList(c, "lower(" + std::string(column) + ") = $1 ORDER BY id LIMIT 1",
                    {sql::AsciiLower(canonical)});
  }

  static Result<std::optional<MailingList>> LoadList(sql::Connection& c, std::string_view where,
                                                     const sql::Params& params) {
    std::string rest = "FROM lists WHERE ";
    rest += where;
    BL_TRY_ASSIGN(auto rows, c.Query(Select(kListColumns, rest), params));
    if (rows.empty()) return std::optional<MailingList>();
    MailingList l = ToList(rows[0]);
    BL_TRY_ASSIGN(l.certificates, LoadCertificates(c, l.id));
    return std::optional<MailingList>(std::move(l));
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
  std::string order_by_address_;
  std::string lock_row_;
};

}  // namespace

bool IsValidMailbox(std::string_view address) {
  if (address.size() < 3 || address.size() > kMaxMailbox) return false;
  if (!sql::IsValidText(address)) return false;
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return false;
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  if (local.empty() || local.size() > kMaxLocalPart) return false;
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return false;
  }
  for (const char ch : local) {
    if (IsSpecial(static_cast<unsigned char>(ch))) return false;
  }
  return IsValidDomain(domain);
}

std::string CanonicalMailbox(std::string_view address) {
  std::string out(address);
  const std::size_t at = out.rfind('@');
  if (at == std::string::npos) return out;
  for (std::size_t i = at + 1; i < out.size(); ++i) {
    if (out[i] >= 'A' && out[i] <= 'Z') out[i] = static_cast<char>(out[i] - 'A' + 'a');
  }
  return out;
}

std::string DefaultBounceAddress(std::string_view list_address) {
  const std::size_t at = list_address.rfind('@');
  if (at == std::string_view::npos) return std::string(list_address) + "-bounces";
  return std::string(list_address.substr(0, at)) + "-bounces" +
         CanonicalMailbox(list_address).substr(at);
}

std::string OwnerAddress(const MailingList& list) {
  if (!list.owner.empty()) return list.owner;
  const std::size_t at = list.address.rfind('@');
  if (at == std::string::npos) return list.address + "-owner";
  return list.address.substr(0, at) + "-owner" + CanonicalMailbox(list.address).substr(at);
}

Result<std::unique_ptr<ListStore>> OpenListStore(const std::string& url) {
  auto pool = sql::OpenPool(url);
  if (!pool.ok()) return pool.error();
  auto migrated = migrations::Apply(**pool, migrations::ListSchema());
  if (!migrated.ok()) {
    if (migrated.error().code == errc::kStoreUnavailable) return migrated.error();
    return sql::UnavailableError("cannot migrate the list database: " + migrated.error().message);
  }
  return std::unique_ptr<ListStore>(std::make_unique<SqlListStore>(std::move(pool).value()));
}

}  // namespace blindlist::store
