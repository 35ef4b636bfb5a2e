// The SQLite backend: a few connections per Store, each handed to one thread at
// a time. WAL lets readers (here and in other processes) proceed while a write is
// open, so a lookup never queues behind a commit's sync. Writers in this process
// take turns on a write gate instead of spinning in SQLite's busy handler;
// busy_timeout makes writers in other processes wait instead of failing.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "blindlist/error_codes.h"
#include "store/sql.h"

namespace blindlist::store::sql {
namespace {

constexpr int kBusyTimeoutMs = 10000;
// Connections are opened on demand up to this many; more would only wait for the CPUs.
constexpr std::size_t kMaxConnections = 8;

// One writer at a time in this process. Not a std::mutex: Begin and Commit may in
// principle run on different threads of one lease holder.
class WriteGate {
 public:
  void Enter() {
    std::unique_lock lock(mutex_);
    free_.wait(lock, [this] { return !held_; });
    held_ = true;
  }
  void Leave() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    free_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable free_;
  bool held_ = false;
};

// $1, $2, ... become ?1, ?2, ... (the SQL never has '$' inside a literal).
std::string RewritePlaceholders(std::string_view sql) {
  std::string out(sql);
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
  }
  return out;
}

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(sqlite3* db, WriteGate* gate) : db_(db), gate_(gate) {}
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Result<std::vector<Row>> Query(std::string_view sql, const Params& params) override {
    std::vector<Row> rows;
    BL_TRY(Run(sql, params, &rows));
    return rows;
  }

  Result<std::int64_t> Exec(std::string_view sql, const Params& params) override {
    BL_TRY(Run(sql, params, nullptr));
    return static_cast<std::int64_t>(sqlite3_changes64(db_));
  }

  Status ExecScript(const std::string& sql) override {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string text = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    return Failure(rc, text);
  }

  Status Begin() override {
    gate_->Enter();
    Status st = ExecScript("BEGIN IMMEDIATE");
    if (!st.ok()) gate_->Leave();
    in_write_ = st.ok();
    return st;
  }
  Status Commit() override {
    Status st = ExecScript("COMMIT");
    // A failed COMMIT may leave the transaction open; Rollback() then ends it and leaves.
    if (sqlite3_get_autocommit(db_) != 0) LeaveGate();
    return st;
  }
  Status Rollback() override {
    if (sqlite3_get_autocommit(db_) != 0) {  // nothing open
      LeaveGate();
      return Status::Ok();
    }
    Status st = ExecScript("ROLLBACK");
    LeaveGate();
    return st;
  }

  // A local file does not drop its connection.
  bool Broken() const override { return false; }
  Status Reconnect() override { return Status::Ok(); }

 private:
  static Error Failure(int rc, const std::string& message) {
    const int primary = rc & 0xFF;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
      return UnavailableError("sqlite: database is busy: " + message);
    }
    return StoreError("sqlite: " + message);
  }

  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second;
    const std::string rewritten = RewritePlaceholders(sql);
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, rewritten.c_str(), static_cast<int>(rewritten.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return Failure(rc, sqlite3_errmsg(db_));
    statements_.emplace(std::string(sql), stmt);
    return stmt;
  }

  static int Bind(sqlite3_stmt* stmt, int index, const Value& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return sqlite3_bind_int64(stmt, index, *i);
    if (const auto* s = std::get_if<std::string>(&v)) {
      return sqlite3_bind_text64(stmt, index, s->data(), s->size(), SQLITE_STATIC, SQLITE_UTF8);
    }
    if (const auto* b = std::get_if<Bytes>(&v)) {
      // A zero-length blob with a null pointer would bind NULL.
      if (b->empty()) return sqlite3_bind_zeroblob(stmt, index, 0);
      return sqlite3_bind_blob64(stmt, index, b->data(), b->size(), SQLITE_STATIC);
    }
    return sqlite3_bind_null(stmt, index);
  }

  static Value Column(sqlite3_stmt* stmt, int i) {
    switch (sqlite3_column_type(stmt, i)) {
      case SQLITE_INTEGER:
      case SQLITE_FLOAT:
        return static_cast<std::int64_t>(sqlite3_column_int64(stmt, i));
      case SQLITE_TEXT: {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
        return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, i)));
      }
      case SQLITE_BLOB: {
        const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, i));
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, i));
        return data == nullptr ? Bytes{} : Bytes(data, data + size);
      }
      default:
        return std::monostate{};
    }
  }

  // Steps the statement to its end, collecting rows if `rows` is set.
  Status Run(std::string_view sql, const Params& params, std::vector<Row>* rows) {
    BL_TRY(CheckParams(params));
    BL_TRY_ASSIGN(sqlite3_stmt * stmt, Prepare(sql));
    // Bindings point into `params` (SQLITE_STATIC): clear them before returning.
    struct ResetOnExit {
      sqlite3_stmt* stmt;
      ~ResetOnExit() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } reset{stmt};
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int rc = Bind(stmt, static_cast<int>(i + 1), params[i]);
      if (rc != SQLITE_OK) return Failure(rc, sqlite3_errmsg(db_));
    }
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) return Status::Ok();
      if (rc != SQLITE_ROW) return Failure(rc, sqlite3_errmsg(db_));
      if (rows == nullptr) continue;
      Row row;
      const int columns = sqlite3_column_count(stmt);
      row.reserve(static_cast<std::size_t>(columns));
      for (int i = 0; i < columns; ++i) row.push_back(Column(stmt, i));
      rows->push_back(std::move(row));
    }
  }

  void LeaveGate() {
    if (in_write_) gate_->Leave();
    in_write_ = false;
  }

  sqlite3* db_;
  WriteGate* gate_;
  bool in_write_ = false;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
};

// Opens one connection with this backend's settings.
Result<std::unique_ptr<SqliteConnection>> OpenConnection(const std::string& path, WriteGate* gate) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string reason = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return UnavailableError("sqlite: cannot open " + path + ": " + reason);
  }
  auto connection = std::make_unique<SqliteConnection>(db, gate);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  BL_TRY_ASSIGN(auto mode, connection->Query("PRAGMA journal_mode=WAL", {}));
  if (path != ":memory:" && (mode.empty() || AsText(mode[0][0]) != "wal")) {
    return UnavailableError("sqlite: cannot switch " + path + " to WAL mode");
  }
  // FULL: a committed removal or audit record survives a power loss, even in WAL mode.
  // (groupd commits its audit records in batches, so this costs one sync per batch.)
  // secure_delete: a destroyed key's sealed bytes are overwritten, not left in free pages.
  // cache_size: up to 32 MiB of pages per connection (the default is 2 MiB), so a roster of
  // ten thousand members with their certificates stays in memory between requests instead of
  // being read again from the file on every look-up.
  BL_TRY(connection->ExecScript(
      "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; "
      "PRAGMA cache_size=-32768; PRAGMA mmap_size=268435456"));
  return connection;
}

class SqlitePool final : public ConnectionPool {
 public:
  // ":memory:" gets one connection: each connection to it would be a database of its own.
  SqlitePool(std::string path, std::unique_ptr<WriteGate> gate,
             std::unique_ptr<SqliteConnection> first)
      : path_(std::move(path)),
        gate_(std::move(gate)),
        max_(path_ == ":memory:" ? 1 : kMaxConnections) {
    idle_.push_back(first.get());
    all_.push_back(std::move(first));
  }

  Result<Lease> Acquire() override {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!idle_.empty()) {
        SqliteConnection* c = idle_.back();
        idle_.pop_back();
        return Lease(this, c);
      }
      if (all_.size() + opening_ < max_) break;
      released_.wait(lock);
    }
    // Open outside the lock: opening is file I/O.
    ++opening_;
    lock.unlock();
    auto opened = OpenConnection(path_, gate_.get());
    lock.lock();
    --opening_;
    if (!opened.ok()) {
      released_.notify_one();  // a waiter may open instead, or wait for a release
      return opened.error();
    }
    SqliteConnection* c = opened->get();
    all_.push_back(std::move(*opened));
    return Lease(this, c);
  }

  Dialect dialect() const override { return Dialect::kSqlite; }

 protected:
  void Release(Connection* connection) override {
    // A transaction left open by an early return must not leak into the next lease.
    (void)connection->Rollback();
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(static_cast<SqliteConnection*>(connection));
    }
    released_.notify_one();
  }

 private:
  const std::string path_;
  std::unique_ptr<WriteGate> gate_;  // declared before the connections, which point to it
  const std::size_t max_;
  std::mutex mutex_;
  std::condition_variable released_;
  std::vector<std::unique_ptr<SqliteConnection>> all_;
  std::vector<SqliteConnection*> idle_;
  std::size_t opening_ = 0;
};

}  // namespace

Result<std::unique_ptr<ConnectionPool>> OpenSqlitePool(const std::string& path) {
  if (path.empty()) return MakeError(std::string(errc::kBadUrl), "sqlite: the path is empty");
  if (path != ":memory:") {
    // Create the file ourselves so it is never readable by others, whatever the umask.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return UnavailableError("sqlite: cannot open " + path + ": " + std::strerror(errno));
    }
    ::close(fd);
  }
  auto gate = std::make_unique<WriteGate>();
  BL_TRY_ASSIGN(auto first, OpenConnection(path, gate.get()));
  return std::unique_ptr<ConnectionPool>(
      std::make_unique<SqlitePool>(path, std::move(gate), std::move(first)));
}

}  // namespace blindlist::store::sql
