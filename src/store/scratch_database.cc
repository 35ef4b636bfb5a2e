#include "store/scratch_database.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "blindlist/error_codes.h"

namespace blindlist::store::testkit {
namespace {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string_view BackendName(Backend backend) {
  return backend == Backend::kSqlite ? "sqlite" : "postgresql";
}

std::vector<Backend> BackendsFromEnvironment() {
  const char* env = std::getenv("BLINDLIST_STORE_BACKEND");
  const std::string_view name = env != nullptr ? env : "";
  if (name.empty()) return {Backend::kSqlite, Backend::kPostgres};
  if (name == "sqlite") return {Backend::kSqlite};
  if (name == "postgresql") return {Backend::kPostgres};
  std::fprintf(stderr, "BLINDLIST_STORE_BACKEND must be sqlite or postgresql, not \"%s\"\n",
               std::string(name).c_str());
  std::exit(2);
}

Result<std::string> PostgresTestUrl() {
  const char* file = std::getenv("BLINDLIST_PG_URL_FILE");
  if (file == nullptr || *file == '\0') {
    return MakeError(std::string(errc::kStoreUnavailable),
                     "BLINDLIST_PG_URL_FILE is not set: run through ctest (fixture postgres), or "
                     "start a server with scripts/pg-harness start DIR and point it at DIR/url");
  }
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  std::string url = Trimmed(text.str());
  if (!in || url.empty()) {
    return MakeError(std::string(errc::kStoreUnavailable),
                     std::string("no PostgreSQL test server URL in ") + file +
                         " (did the postgres_start fixture fail?)");
  }
  return url;
}

std::string WithUrlParameter(const std::string& url, std::string_view key, std::string_view value) {
  std::string out = url;
  out += url.find('?') == std::string::npos ? '?' : '&';
  out += key;
  out += '=';
  out += value;
  return out;
}

Status PostgresExec(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdb(url.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return MakeError(std::string(errc::kStoreUnavailable), Trimmed(PQerrorMessage(conn.get())));
  }
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);  // "drop cascades to ..."
  std::unique_ptr<PGresult, ResultDeleter> result(PQexec(conn.get(), sql.c_str()));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return MakeError("store-error", Trimmed(PQerrorMessage(conn.get())));
  }
  return Status::Ok();
}

Result<std::unique_ptr<ScratchDatabase>> ScratchDatabase::Create(Backend backend) {
  static std::atomic<int> counter{0};
  std::unique_ptr<ScratchDatabase> db(new ScratchDatabase());
  db->backend_ = backend;
  if (backend == Backend::kSqlite) {
    std::string pattern = (std::filesystem::temp_directory_path() / "blindlist-store-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      return MakeError(std::string(errc::kStoreUnavailable), "mkdtemp failed");
    }
    db->directory_ = pattern;
    db->url_ = "sqlite:" + pattern + "/store.db";
    return db;
  }
  BL_TRY_ASSIGN(db->server_url_, PostgresTestUrl());
  std::random_device random;
  db->schema_ = "test_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
                std::to_string(random() % 1000000);
  BL_TRY(PostgresExec(db->server_url_, "CREATE SCHEMA " + db->schema_));
  db->url_ = WithUrlParameter(db->server_url_, "options", "-csearch_path%3D" + db->schema_);
  return db;
}

ScratchDatabase::~ScratchDatabase() {
  if (backend_ == Backend::kSqlite) {
    std::error_code ignored;
    if (!directory_.empty()) std::filesystem::remove_all(directory_, ignored);
    return;
  }
  if (!schema_.empty()) (void)PostgresExec(server_url_, "DROP SCHEMA " + schema_ + " CASCADE");
}

}  // namespace blindlist::store::testkit
