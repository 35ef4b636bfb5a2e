// The schema, as numbered migration steps applied in order at Store::Open.
// A step is never edited once released: a change to the schema is a new step.
// The SQL is shared by both backends; {BLOB} and {ID_PK} are replaced per
// backend (sql::ForDialect). docs/storage.md describes the resulting schema.
// Thread-safety: constant data.
#pragma once

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

// Applies the missing steps, each in its own transaction together with its
// schema_migrations row. Safe when several processes open the same database at
// once (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE). Returns the
// schema version. A database newer than this build is refused.
Result<int> Apply(sql::ConnectionPool& pool);

}  // namespace blindlist::store::migrations
