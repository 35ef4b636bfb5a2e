// Store::Open: picks the backend from the URL, connects and migrates.
#include "store/store.h"

#include "blindlist/error_codes.h"
#include "store/sql.h"
#include "store/sql_store.h"

namespace blindlist::store {

Result<std::unique_ptr<Store>> Store::Open(const std::string& url) {
  auto pool = sql::OpenPool(url);
  if (!pool.ok()) return pool.error();
  auto store = OpenSqlStore(std::move(pool).value());
  if (!store.ok() && store.error().code != errc::kStoreUnavailable) {
    return sql::UnavailableError("cannot migrate the database: " + store.error().message);
  }
  return store;
}

}  // namespace blindlist::store
