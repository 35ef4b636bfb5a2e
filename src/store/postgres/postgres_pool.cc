// The PostgreSQL backend, on libpq directly: a small pool of connections,
// BYTEA parameters sent in binary, results read as text (BYTEA in hex).
// A connection found broken is reset once (PQreset) before it is used again.
#include <libpq-fe.h>

#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "store/sql.h"

namespace blindlist::store::sql {
namespace {

// Enough for a daemon's worker threads; each PostgreSQL connection is a server process.
constexpr std::size_t kMaxConnections = 8;

// Built-in type OIDs (catalog/pg_type.h, stable across releases).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;

// libpq messages end with a newline and may span lines; errors are one line.
std::string OneLine(const char* message) {
  std::string out = message != nullptr ? message : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  for (char& c : out) {
    if (c == '\n') c = ' ';
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// BYTEA in text form: "\x" followed by hex digits (bytea_output = hex, set per session).
bool DecodeBytea(std::string_view text, Bytes& out) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return false;
  out.clear();
  out.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int hi = HexDigit(text[i]);
    const int lo = HexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return true;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

class PostgresConnection final : public Connection {
 public:
  explicit PostgresConnection(PGconn* conn) : conn_(conn) {}
  PostgresConnection(const PostgresConnection&) = delete;
  PostgresConnection& operator=(const PostgresConnection&) = delete;
  ~PostgresConnection() override { PQfinish(conn_); }

  // Connects with the caller's URL; our defaults come first so the URL overrides them.
  static Result<std::unique_ptr<PostgresConnection>> Connect(const std::string& conninfo) {
    const char* const keywords[] = {"connect_timeout", "fallback_application_name",
                                    "client_encoding", "dbname", nullptr};
    const char* const values[] = {"10", "blindlist", "UTF8", conninfo.c_str(), nullptr};
    PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
    if (conn == nullptr) return UnavailableError("postgresql: out of memory");
    auto connection = std::make_unique<PostgresConnection>(conn);
    // libpq prints server notices to stderr by default; a library does not write to stderr.
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    if (PQstatus(conn) != CONNECTION_OK) {
      return UnavailableError("postgresql: " + OneLine(PQerrorMessage(conn)));
    }
    BL_TRY(connection->SetUpSession());
    return connection;
  }

  Result<std::vector<Row>> Query(std::string_view sql, const Params& params) override {
    BL_TRY_ASSIGN(ResultPtr result, Run(sql, params));
    PGresult* r = result.get();
    const int rows = PQntuples(r);
    const int columns = PQnfields(r);
    std::vector<Row> out;
    out.reserve(static_cast<std::size_t>(rows));
    for (int i = 0; i < rows; ++i) {
      Row row;
      row.reserve(static_cast<std::size_t>(columns));
      for (int j = 0; j < columns; ++j) {
        BL_TRY_ASSIGN(Value v, Cell(r, i, j));
        row.push_back(std::move(v));
      }
      out.push_back(std::move(row));
    }
    return out;
  }

  Result<std::int64_t> Exec(std::string_view sql, const Params& params) override {
    BL_TRY_ASSIGN(ResultPtr result, Run(sql, params));
    const std::string_view count = PQcmdTuples(result.get());
    std::int64_t n = 0;
    if (!count.empty()) std::from_chars(count.data(), count.data() + count.size(), n);
    return n;
  }

  Status ExecScript(const std::string& sql) override {
    ResultPtr result(PQexec(conn_, sql.c_str()));
    return Check(result.get());
  }

  Status Begin() override { return ExecScript("BEGIN"); }

  Status Commit() override {
    ResultPtr result(PQexec(conn_, "COMMIT"));
    BL_TRY(Check(result.get()));
    // COMMIT of a transaction that already failed succeeds as "ROLLBACK".
    if (std::string_view(PQcmdStatus(result.get())) != "COMMIT") {
      return StoreError("postgresql: the transaction was rolled back");
    }
    return Status::Ok();
  }

  Status Rollback() override {
    if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) == PQTRANS_IDLE) {
      return Status::Ok();
    }
    return ExecScript("ROLLBACK");
  }

  bool Broken() const override { return PQstatus(conn_) == CONNECTION_BAD; }

  Status Reconnect() override {
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      return UnavailableError("postgresql: reconnect failed: " + OneLine(PQerrorMessage(conn_)));
    }
    return SetUpSession();
  }

 private:
  // Results are decoded as hex whatever the server's default bytea_output.
  Status SetUpSession() { return ExecScript("SET bytea_output = 'hex'"); }

  Status Check(const PGresult* r) const {
    const ExecStatusType status = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Status::Ok();
    if (Broken()) {
      return UnavailableError("postgresql: connection lost: " + OneLine(PQerrorMessage(conn_)));
    }
    if (r == nullptr) return StoreError("postgresql: " + OneLine(PQerrorMessage(conn_)));
    // Only the primary message: DETAIL may quote the values of the failing row.
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    return StoreError("postgresql: " + OneLine(primary) + " (SQLSTATE " +
                      (state != nullptr ? state : "?") + ")");
  }

  Result<ResultPtr> Run(std::string_view sql, const Params& params) {
    BL_TRY(CheckParams(params));
    static constexpr char kEmpty[] = "";
    const std::size_t n = params.size();
    std::vector<std::string> numbers(n);
    std::vector<Oid> types(n, 0);
    std::vector<const char*> values(n, nullptr);
    std::vector<int> lengths(n, 0);
    std::vector<int> formats(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const Value& v = params[i];
      if (const auto* number = std::get_if<std::int64_t>(&v)) {
        numbers[i] = std::to_string(*number);
        types[i] = kInt8Oid;
        values[i] = numbers[i].c_str();
      } else if (const auto* text = std::get_if<std::string>(&v)) {
        types[i] = kTextOid;
        values[i] = text->c_str();
      } else if (const auto* blob = std::get_if<Bytes>(&v)) {
        types[i] = kByteaOid;
        // A null pointer would send SQL NULL, not an empty value.
        values[i] = blob->empty() ? kEmpty : reinterpret_cast<const char*>(blob->data());
        lengths[i] = static_cast<int>(blob->size());
        formats[i] = 1;
      }
    }
    const std::string statement(sql);
    ResultPtr result(PQexecParams(conn_, statement.c_str(), static_cast<int>(n), types.data(),
                                  values.data(), lengths.data(), formats.data(),
                                  /*resultFormat=*/0));
    BL_TRY(Check(result.get()));
    return result;
  }

  static Result<Value> Cell(const PGresult* r, int row, int column) {
    if (PQgetisnull(r, row, column) != 0) return Value{};
    const std::string_view text(PQgetvalue(r, row, column),
                                static_cast<std::size_t>(PQgetlength(r, row, column)));
    switch (PQftype(r, column)) {
      case kInt2Oid:
      case kInt4Oid:
      case kInt8Oid: {
        std::int64_t n = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || end != text.data() + text.size()) {
          return StoreError("postgresql: unreadable integer in a result");
        }
        return Value(n);
      }
      case kBoolOid:
        return Value(static_cast<std::int64_t>(text == "t" ? 1 : 0));
      case kByteaOid: {
        Bytes bytes;
        if (!DecodeBytea(text, bytes))
          return StoreError("postgresql: unreadable bytea in a result");
        return Value(std::move(bytes));
      }
      default:
        return Value(std::string(text));
    }
  }

  PGconn* conn_;
};

class PostgresPool final : public ConnectionPool {
 public:
  PostgresPool(std::string conninfo, std::unique_ptr<PostgresConnection> first)
      : conninfo_(std::move(conninfo)) {
    idle_.push_back(first.get());
    all_.push_back(std::move(first));
  }

  Result<Lease> Acquire() override {
    PostgresConnection* connection = nullptr;
    {
      std::unique_lock lock(mutex_);
      released_.wait(lock,
                     [this] { return !idle_.empty() || all_.size() + opening_ < kMaxConnections; });
      if (!idle_.empty()) {
        connection = idle_.back();
        idle_.pop_back();
      } else {
        ++opening_;
      }
    }
    if (connection == nullptr) return Open();
    if (connection->Broken()) {
      if (Status s = connection->Reconnect(); !s.ok()) {
        Release(connection);
        return s.error();
      }
    }
    return Lease(this, connection);
  }

  Dialect dialect() const override { return Dialect::kPostgres; }

 protected:
  void Release(Connection* connection) override {
    // A transaction left open by an early return must not leak into the next lease.
    (void)connection->Rollback();
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(static_cast<PostgresConnection*>(connection));
    }
    released_.notify_one();
  }

 private:
  // Opens one more connection; the caller has reserved the slot in opening_.
  Result<Lease> Open() {
    auto connected = PostgresConnection::Connect(conninfo_);
    std::lock_guard lock(mutex_);
    --opening_;
    if (!connected.ok()) {
      released_.notify_one();
      return connected.error();
    }
    PostgresConnection* connection = connected.value().get();
    all_.push_back(std::move(connected).value());
    return Lease(this, connection);
  }

  const std::string conninfo_;
  std::mutex mutex_;
  std::condition_variable released_;
  std::vector<std::unique_ptr<PostgresConnection>> all_;
  std::vector<PostgresConnection*> idle_;
  std::size_t opening_ = 0;
};

}  // namespace

Result<std::unique_ptr<ConnectionPool>> OpenPostgresPool(const std::string& conninfo) {
  BL_TRY_ASSIGN(auto first, PostgresConnection::Connect(conninfo));
  return std::unique_ptr<ConnectionPool>(
      std::make_unique<PostgresPool>(conninfo, std::move(first)));
}

}  // namespace blindlist::store::sql
