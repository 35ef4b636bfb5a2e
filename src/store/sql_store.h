// The Store implemented once over the SQL layer (sql.h), for both backends.
// Thread-safety: as Store (every call takes its own pooled connection).
#pragma once

#include <memory>

#include "blindlist/result.h"
#include "store/sql.h"
#include "store/store.h"

namespace blindlist::store {

// Migrates the database behind `pool` and wraps it as a Store.
Result<std::unique_ptr<Store>> OpenSqlStore(std::unique_ptr<sql::ConnectionPool> pool);

}  // namespace blindlist::store
