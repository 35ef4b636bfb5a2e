// The schema, as numbered migration steps applied in order at Store::Open.
// A step is never edited once released: a change to the schema is a new step.
// The SQL is shared by both backends; {BLOB} and {ID_PK} are replaced per
// backend (sql::ForDialect). docs/storage.md describes the resulting schema.
// Thread-safety: constant data.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "blindlist/result.h"
#include "store/sql.h"

namespace blindlist::store::migrations {

struct Migration {
  int version;
  std::string_view description;
  std::string_view sql;  // several statements separated by ';'
};

std::span<const Migration> All();
int LatestVersion();

// A schema that migrates independently: its steps, the table recording them
// and the PostgreSQL advisory lock key that serialises its migrations, so two
// schemas (groupd's, listd's) never share a version sequence.
struct Schema {
  std::span<const Migration> steps;  // versions 1, 2, ... in order; never empty
  std::string_view version_table;    // a plain identifier, e.g. "schema_migrations"
  std::int64_t lock_key;
};

// Applies the missing steps, each in its own transaction together with its
// schema_migrations row. Safe when several processes open the same database at
// once (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE). Returns the
// schema version. A database newer than this build is refused.
Result<int> Apply(sql::ConnectionPool& pool);
// As above for any schema (groupd's is {All(), "schema_migrations", 0x626c6e64}).
Result<int> Apply(sql::ConnectionPool& pool, const Schema& schema);

}  // namespace blindlist::store::migrations
