// Test support, for any module whose tests need a store: a fresh, empty
// database per test on either backend. SQLite: a file in a new temporary
// directory. PostgreSQL: a new schema on the test server started by
// scripts/pg-harness (ctest fixture "postgres"), whose URL is read from the
// file named by $BLINDLIST_PG_URL_FILE; the returned URL selects the schema
// through search_path, so tests running at once never see each other's rows.
// Not for production code. Thread-safety: plain values; Create() may be called
// from many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/result.h"

namespace blindlist::store::testkit {

enum class Backend { kSqlite, kPostgres };

// "sqlite" or "postgresql", as Store::BackendName().
std::string_view BackendName(Backend backend);

// The backend named by $BLINDLIST_STORE_BACKEND ("sqlite" or "postgresql"), or
// both if it is unset or empty. Any other value ends the process with an error,
// so a typo fails loudly instead of testing nothing.
std::vector<Backend> BackendsFromEnvironment();

// The PostgreSQL test server's URL. Errors: "store-unavailable" (no
// $BLINDLIST_PG_URL_FILE, or the file is missing or empty).
Result<std::string> PostgresTestUrl();

// Appends a libpq URL query parameter (value already percent-encoded).
std::string WithUrlParameter(const std::string& url, std::string_view key, std::string_view value);

// Runs parameterless SQL directly on a PostgreSQL server, outside any Store.
Status PostgresExec(const std::string& url, const std::string& sql);

class ScratchDatabase {
 public:
  static Result<std::unique_ptr<ScratchDatabase>> Create(Backend backend);
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  // Removes the directory or drops the schema; close every Store on it first.
  ~ScratchDatabase();

  // The URL to pass to Store::Open (any number of times, from any number of Stores).
  const std::string& url() const { return url_; }

 private:
  ScratchDatabase() = default;

  Backend backend_ = Backend::kSqlite;
  std::string url_;
  std::string directory_;   // SQLite
  std::string server_url_;  // PostgreSQL
  std::string schema_;      // PostgreSQL
};

}  // namespace blindlist::store::testkit
