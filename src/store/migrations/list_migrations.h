// The exploder's (listd's) schema: its lists, their group certificates and
// their delivery lists, as numbered steps like groupd's (migrations.h). It has
// its own version table and advisory lock key, so it never shares a version
// sequence with groupd even on one PostgreSQL database; the tables are all
// prefixed "list" and never touch groupd's roster.
// Thread-safety: constant data.
#pragma once

#include <span>

#include "store/migrations/migrations.h"

namespace blindlist::store::migrations {

std::span<const Migration> ListSteps();
int ListLatestVersion();
// {ListSteps(), "list_schema_migrations", the "blls" lock key}.
Schema ListSchema();

}  // namespace blindlist::store::migrations
