// libpq, loaded on first use. The store's PostgreSQL code calls the libpq functions it
// needs by their usual names; this file defines those names and forwards each call to
// libpq.so.5, which it opens (dlopen) the first time any of them is called. A process whose
// store is SQLite therefore never maps libpq nor what libpq brings (Kerberos, LDAP, SASL,
// GnuTLS: about fifteen shared objects): listd's pipe mode, started by Postfix for every
// post, spends no start-up time on them.
//
// If libpq cannot be opened, the connection functions return no connection, PQstatus says
// CONNECTION_BAD and PQerrorMessage names the library and dlerror()'s reason, so the store
// reports "store-unavailable" with that text, as for a server that is down. Only the
// functions below exist: a new libpq call in the store fails to link until it is added here.
//
// Thread-safety: the library is opened once (std::call_once); the table is read-only after.
#include <dlfcn.h>
#include <libpq-fe.h>

#include <cstddef>
#include <mutex>
#include <string>

namespace {

constexpr const char* kLibpq = "libpq.so.5";

// One pointer per libpq function the store uses, filled by Load().
struct Libpq {
  decltype(&PQconnectdb) connectdb = nullptr;
  decltype(&PQconnectdbParams) connectdb_params = nullptr;
  decltype(&PQstatus) status = nullptr;
  decltype(&PQtransactionStatus) transaction_status = nullptr;
  decltype(&PQerrorMessage) error_message = nullptr;
  decltype(&PQfinish) finish = nullptr;
  decltype(&PQreset) reset = nullptr;
  decltype(&PQsetNoticeProcessor) set_notice_processor = nullptr;
  decltype(&PQexec) exec = nullptr;
  decltype(&PQexecParams) exec_params = nullptr;
  decltype(&PQresultStatus) result_status = nullptr;
  decltype(&PQresultErrorField) result_error_field = nullptr;
  decltype(&PQclear) clear = nullptr;
  decltype(&PQntuples) ntuples = nullptr;
  decltype(&PQnfields) nfields = nullptr;
  decltype(&PQgetvalue) getvalue = nullptr;
  decltype(&PQgetlength) getlength = nullptr;
  decltype(&PQgetisnull) getisnull = nullptr;
  decltype(&PQftype) ftype = nullptr;
  decltype(&PQcmdTuples) cmd_tuples = nullptr;
  decltype(&PQcmdStatus) cmd_status = nullptr;
  bool loaded = false;
  std::string error;  // why loading failed, in PQerrorMessage's form (ends in a newline)
};

template <typename F>
bool Bind(void* handle, const char* name, F& out, std::string& error) {
  void* symbol = ::dlsym(handle, name);
  if (symbol == nullptr) {
    error = std::string(kLibpq) + " has no " + name + "\n";
    return false;
  }
  out = reinterpret_cast<F>(symbol);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
  return true;
}

void Load(Libpq& lib) {
  // RTLD_LOCAL: libpq's own dependencies stay out of the global namespace.
  void* handle = ::dlopen(kLibpq, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    lib.error =
        std::string("cannot load ") + kLibpq + ": " + (why != nullptr ? why : "unknown") + "\n";
    return;
  }
  std::string& e = lib.error;
  const bool ok =
      Bind(handle, "PQconnectdb", lib.connectdb, e) &&
      Bind(handle, "PQconnectdbParams", lib.connectdb_params, e) &&
      Bind(handle, "PQstatus", lib.status, e) &&
      Bind(handle, "PQtransactionStatus", lib.transaction_status, e) &&
      Bind(handle, "PQerrorMessage", lib.error_message, e) &&
      Bind(handle, "PQfinish", lib.finish, e) && Bind(handle, "PQreset", lib.reset, e) &&
      Bind(handle, "PQsetNoticeProcessor", lib.set_notice_processor, e) &&
      Bind(handle, "PQexec", lib.exec, e) && Bind(handle, "PQexecParams", lib.exec_params, e) &&
      Bind(handle, "PQresultStatus", lib.result_status, e) &&
      Bind(handle, "PQresultErrorField", lib.result_error_field, e) &&
      Bind(handle, "PQclear", lib.clear, e) && Bind(handle, "PQntuples", lib.ntuples, e) &&
      Bind(handle, "PQnfields", lib.nfields, e) && Bind(handle, "PQgetvalue", lib.getvalue, e) &&
      Bind(handle, "PQgetlength", lib.getlength, e) &&
      Bind(handle, "PQgetisnull", lib.getisnull, e) && Bind(handle, "PQftype", lib.ftype, e) &&
      Bind(handle, "PQcmdTuples", lib.cmd_tuples, e) &&
      Bind(handle, "PQcmdStatus", lib.cmd_status, e);
  lib.loaded = ok;  // the handle stays open for the life of the process
}

const Libpq& Lib() {
  static Libpq lib;
  static std::once_flag once;
  std::call_once(once, [] { Load(lib); });
  return lib;
}

// Calls made before a successful load can only be on a null connection or result (the
// connection functions returned none): they answer as libpq does for a null pointer.
const Libpq* Loaded() {
  const Libpq& lib = Lib();
  return lib.loaded ? &lib : nullptr;
}

// libpq answers "" where a string is asked of a null result.
char* Empty() {
  static char empty[1] = {'\0'};  // NOLINT(cppcoreguidelines-avoid-c-arrays)
  return empty;
}

}  // namespace

extern "C" {

PGconn* PQconnectdb(const char* conninfo) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->connectdb(conninfo) : nullptr;
}

PGconn* PQconnectdbParams(const char* const* keywords, const char* const* values,
                          int expand_dbname) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->connectdb_params(keywords, values, expand_dbname) : nullptr;
}

ConnStatusType PQstatus(const PGconn* conn) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->status(conn) : CONNECTION_BAD;
}

PGTransactionStatusType PQtransactionStatus(const PGconn* conn) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->transaction_status(conn) : PQTRANS_UNKNOWN;
}

char* PQerrorMessage(const PGconn* conn) {
  const Libpq& lib = Lib();
  if (lib.loaded) return lib.error_message(conn);
  // libpq's signature returns a non-const pointer; callers only read it.
  return const_cast<char*>(lib.error.c_str());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
}

void PQfinish(PGconn* conn) {
  const Libpq* lib = Loaded();
  if (lib != nullptr) lib->finish(conn);
}

void PQreset(PGconn* conn) {
  const Libpq* lib = Loaded();
  if (lib != nullptr) lib->reset(conn);
}

PQnoticeProcessor PQsetNoticeProcessor(PGconn* conn, PQnoticeProcessor proc, void* arg) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->set_notice_processor(conn, proc, arg) : nullptr;
}

PGresult* PQexec(PGconn* conn, const char* query) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->exec(conn, query) : nullptr;
}

PGresult* PQexecParams(PGconn* conn, const char* command, int n_params, const Oid* param_types,
                       const char* const* param_values, const int* param_lengths,
                       const int* param_formats, int result_format) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->exec_params(conn, command, n_params, param_types, param_values,
                                           param_lengths, param_formats, result_format)
                        : nullptr;
}

ExecStatusType PQresultStatus(const PGresult* res) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->result_status(res) : PGRES_FATAL_ERROR;
}

char* PQresultErrorField(const PGresult* res, int fieldcode) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->result_error_field(res, fieldcode) : nullptr;
}

void PQclear(PGresult* res) {
  const Libpq* lib = Loaded();
  if (lib != nullptr) lib->clear(res);
}

int PQntuples(const PGresult* res) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->ntuples(res) : 0;
}

int PQnfields(const PGresult* res) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->nfields(res) : 0;
}

char* PQgetvalue(const PGresult* res, int tup_num, int field_num) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->getvalue(res, tup_num, field_num) : Empty();
}

int PQgetlength(const PGresult* res, int tup_num, int field_num) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->getlength(res, tup_num, field_num) : 0;
}

int PQgetisnull(const PGresult* res, int tup_num, int field_num) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->getisnull(res, tup_num, field_num) : 1;
}

Oid PQftype(const PGresult* res, int field_num) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->ftype(res, field_num) : InvalidOid;
}

char* PQcmdTuples(PGresult* res) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->cmd_tuples(res) : Empty();
}

char* PQcmdStatus(PGresult* res) {
  const Libpq* lib = Loaded();
  return lib != nullptr ? lib->cmd_status(res) : Empty();
}

}  // extern "C"
