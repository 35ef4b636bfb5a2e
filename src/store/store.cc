// Store::Open: picks the backend from the URL, connects and migrates.
#include "store/store.h"

#include <string_view>

#include "store/sql.h"
#include "store/sql_store.h"

namespace blindlist::store {

Result<std::unique_ptr<Store>> Store::Open(const std::string& url) {
  const std::string_view u = url;
  Result<std::unique_ptr<sql::ConnectionPool>> pool =
      MakeError("bad-url", "the store URL must start with sqlite:, postgresql:// or postgres://");
  if (u.starts_with("sqlite:")) {
    pool = sql::OpenSqlitePool(std::string(u.substr(7)));
  } else if (u.starts_with("postgresql://") || u.starts_with("postgres://")) {
    // libpq reads the URL itself; it is never echoed, since it may carry a password.
    pool = sql::OpenPostgresPool(url);
  }
  if (!pool.ok()) {
    const Error& e = pool.error();
    if (e.code == "bad-url" || e.code == "store-unavailable") return e;
    return sql::UnavailableError(e.message);
  }
  auto store = OpenSqlStore(std::move(pool).value());
  if (!store.ok() && store.error().code != "store-unavailable") {
    return sql::UnavailableError("cannot migrate the database: " + store.error().message);
  }
  return store;
}

}  // namespace blindlist::store
