// The small SQL layer under the store: one connection interface, implemented
// once for SQLite (sqlite/) and once for PostgreSQL through libpq (postgres/),
// so the domain code (sql_store.cc) and its SQL are written once.
//
// SQL uses $1, $2, ... placeholders; the SQLite backend rewrites them to ?1, ?2.
// Parameters and results are Values: NULL, a 64-bit integer, UTF-8 text
// (no NUL bytes), or bytes.
//
// Thread-safety: a Connection is used by one thread at a time, which the
// ConnectionPool guarantees by handing it out inside a Lease. The pool itself
// is safe to use from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::store::sql {

using Value = std::variant<std::monostate, std::int64_t, std::string, Bytes>;
using Row = std::vector<Value>;
using Params = std::vector<Value>;

enum class Dialect { kSqlite, kPostgres };

class Connection {
 public:
  virtual ~Connection() = default;

  // Runs one statement and returns its rows (none for a statement without RETURNING).
  virtual Result<std::vector<Row>> Query(std::string_view sql, const Params& params) = 0;
  // Runs one statement and returns how many rows it inserted, updated or deleted.
  virtual Result<std::int64_t> Exec(std::string_view sql, const Params& params) = 0;
  // Runs several parameterless statements separated by ';' (migrations).
  virtual Status ExecScript(const std::string& sql) = 0;

  // A write transaction: SQLite takes the write lock at once (BEGIN IMMEDIATE),
  // so two writers never deadlock upgrading a read lock.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;

  // True once the link to the server is lost; Reconnect() then tries once.
  virtual bool Broken() const = 0;
  virtual Status Reconnect() = 0;
};

class ConnectionPool;

// Exclusive use of one pooled connection; gives it back when destroyed.
class Lease {
 public:
  Lease(ConnectionPool* pool, Connection* connection) : pool_(pool), connection_(connection) {}
  Lease(Lease&& other) noexcept : pool_(other.pool_), connection_(other.connection_) {
    other.pool_ = nullptr;
    other.connection_ = nullptr;
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Lease& operator=(Lease&&) = delete;
  ~Lease();

  Connection& operator*() const { return *connection_; }
  Connection* operator->() const { return connection_; }

 private:
  ConnectionPool* pool_;
  Connection* connection_;
};

class ConnectionPool {
 public:
  virtual ~ConnectionPool() = default;
  // Blocks while every connection is in use. Errors: "store-unavailable".
  virtual Result<Lease> Acquire() = 0;
  virtual Dialect dialect() const = 0;

 protected:
  friend class Lease;
  virtual void Release(Connection* connection) = 0;
};

// SQLite over one file, created with mode 0600 if missing. Errors: "store-unavailable".
Result<std::unique_ptr<ConnectionPool>> OpenSqlitePool(const std::string& path);
// PostgreSQL; `conninfo` is a libpq URL or keyword string. Errors: "store-unavailable".
Result<std::unique_ptr<ConnectionPool>> OpenPostgresPool(const std::string& conninfo);

// The backend a store URL names: "sqlite:PATH", or "postgresql://..." / "postgres://...".
// Errors: "bad-url", "store-unavailable" (the URL itself is never echoed: it may hold a password).
Result<std::unique_ptr<ConnectionPool>> OpenPool(const std::string& url);

// Runs `body(Connection&)` on a pooled connection, inside a transaction if
// `transaction`. If the connection turns out to be lost before COMMIT was sent,
// nothing was written: it reconnects once and runs the body again.
template <typename F>
std::invoke_result_t<F&, Connection&> RunOnPool(ConnectionPool& pool, bool transaction, F& body) {
  using R = std::invoke_result_t<F&, Connection&>;
  auto lease = pool.Acquire();
  if (!lease.ok()) return R(lease.error());
  Connection& c = **lease;
  for (int attempt = 0;; ++attempt) {
    bool committing = false;
    R result = [&]() -> R {
      if (transaction) {
        if (Status s = c.Begin(); !s.ok()) return R(s.error());
      }
      R out = body(c);
      if (!transaction) return out;
      if (!out.ok()) {
        (void)c.Rollback();
        return out;
      }
      committing = true;
      if (Status s = c.Commit(); !s.ok()) return R(s.error());
      return out;
    }();
    if (!result.ok() && attempt == 0 && !committing && c.Broken() && c.Reconnect().ok()) {
      continue;
    }
    return result;
  }
}

// ---- helpers shared by both backends and the domain code ----

// Replaces the dialect tokens used by the migrations: {BLOB} and {ID_PK}
// (an auto-assigned 64-bit primary key).
std::string ForDialect(std::string_view sql, Dialect dialect);

// Text parameters must be valid UTF-8 without NUL bytes: PostgreSQL rejects
// anything else and SQLite would store it, and both backends must agree.
Status CheckParams(const Params& params);
bool IsValidText(std::string_view s);
// Replaces invalid UTF-8 and NUL bytes with U+FFFD, keeping at most
// max_chars code points. For free text from callers (audit records).
std::string SanitizeText(std::string_view s, std::size_t max_chars);
// ASCII letters folded to lowercase, the rest as is: what SQLite's lower() does, and the part of
// PostgreSQL's lower() every locale agrees on.
std::string AsciiLower(std::string_view s);

// Typed access to a result column; a mismatched type reads as 0 / empty.
std::int64_t AsInt(const Value& v);
std::string AsText(const Value& v);
Bytes AsBlob(const Value& v);

Error StoreError(std::string message);        // "store-error": an unexpected database failure
Error UnavailableError(std::string message);  // "store-unavailable": no usable connection

}  // namespace blindlist::store::sql
