#include "pg/pg.h"

#include <dlfcn.h>
#include <libpq-fe.h>

#include <boost/url/parse.hpp>

namespace tw::pg {
namespace {

// libpq is loaded when the first connection opens, not linked: the shared audit trail is the
// only user, and a binary that runs on any Linux (make package) cannot carry libpq statically
// (Debian ships no static GSSAPI or LDAP libraries it needs). A host that configures
// `audit.shared: postgresql://…` installs its distribution's libpq, as any PostgreSQL client
// does; every other host never loads it.
struct Libpq {
  decltype(&::PQconnectdbParams) connectdb_params;
  decltype(&::PQstatus) status;
  decltype(&::PQerrorMessage) error_message;
  decltype(&::PQfinish) finish;
  decltype(&::PQsetNoticeProcessor) set_notice_processor;
  decltype(&::PQexecParams) exec_params;
  decltype(&::PQresultStatus) result_status;
  decltype(&::PQresultErrorMessage) result_error_message;
  decltype(&::PQclear) clear;
  decltype(&::PQntuples) ntuples;
  decltype(&::PQnfields) nfields;
  decltype(&::PQgetisnull) getisnull;
  decltype(&::PQgetvalue) getvalue;
  decltype(&::PQgetlength) getlength;
};

template <typename F>
bool Bind(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  return fn != nullptr;
}

// The library's functions, or why they could not be loaded. Loaded once; never unloaded.
const Result<Libpq>& LoadLibpq() {
  static const Result<Libpq> loaded = []() -> Result<Libpq> {
    void* lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      return Fail(Error::Unavailable(
          "audit.shared needs PostgreSQL's client library, libpq.so.5, which is not installed "
          "(Debian, Ubuntu: apt install libpq5; Fedora, RHEL: dnf install libpq)"));
    }
    Libpq f{};
    const bool ok =
        Bind(lib, "PQconnectdbParams", f.connectdb_params) && Bind(lib, "PQstatus", f.status) &&
        Bind(lib, "PQerrorMessage", f.error_message) && Bind(lib, "PQfinish", f.finish) &&
        Bind(lib, "PQsetNoticeProcessor", f.set_notice_processor) &&
        Bind(lib, "PQexecParams", f.exec_params) && Bind(lib, "PQresultStatus", f.result_status) &&
        Bind(lib, "PQresultErrorMessage", f.result_error_message) &&
        Bind(lib, "PQclear", f.clear) && Bind(lib, "PQntuples", f.ntuples) &&
        Bind(lib, "PQnfields", f.nfields) && Bind(lib, "PQgetisnull", f.getisnull) &&
        Bind(lib, "PQgetvalue", f.getvalue) && Bind(lib, "PQgetlength", f.getlength);
    if (!ok) {
      return Fail(Error::Unavailable("audit.shared: libpq.so.5 lacks a function toolwarden needs"));
    }
    return f;
  }();
  return loaded;
}

const Libpq& pq() { return *LoadLibpq(); }  // only after Open() succeeded

}  // namespace

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& url, int timeout_s) {
  auto u = boost::urls::parse_uri(url);
  if (!u || !IsPostgresUrl(url)) {
    return Fail(Error::InvalidArgument("audit.shared \"" + url +
                                       "\": expected postgresql://HOST[:PORT]/DATABASE"));
  }
  if (u->has_password()) {
    return Fail(Error::InvalidArgument(
        "audit.shared: a password does not belong in the URL (a config file is kept in git): "
        "set PGPASSWORD in the environment or use ~/.pgpass"));
  }
  const auto& lib = LoadLibpq();
  if (!lib) return Fail(lib.error());
  // libpq takes the URI itself; the timeout is added as a keyword (connect_timeout).
  const std::string timeout = std::to_string(timeout_s);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {url.c_str(), timeout.c_str(), "toolwarden", nullptr};
  pg_conn* conn = pq().connectdb_params(keys, values, /*expand_dbname=*/1);
  const std::string where = "PostgreSQL " + url;
  if (conn == nullptr) return Fail(Error::Unavailable(where + ": out of memory"));
  if (pq().status(conn) != CONNECTION_OK) {
    std::string m = pq().error_message(conn);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    pq().finish(conn);
    return Fail(Error::Unavailable(where + ": " + m));
  }
  // Server notices ("relation … already exists, skipping") are not for the gateway's stderr.
  pq().set_notice_processor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn, where));
}

Connection::~Connection() { pq().finish(conn_); }

bool Connection::ok() const { return pq().status(conn_) == CONNECTION_OK; }

Result<std::vector<Row>> Connection::Exec(const std::string& sql,
                                          const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* res = pq().exec_params(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                   values.data(), nullptr, nullptr, 0);
  const ExecStatusType status = pq().result_status(res);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string m = res ? pq().result_error_message(res) : pq().error_message(conn_);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    pq().clear(res);
    return Fail(Error::Unavailable(where_ + ": " + m));
  }
  std::vector<Row> rows;
  const int n = pq().ntuples(res), cols = pq().nfields(res);
  rows.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Row row;
    row.reserve(static_cast<size_t>(cols));
    for (int j = 0; j < cols; ++j) {
      if (pq().getisnull(res, i, j)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(pq().getvalue(res, i, j), static_cast<size_t>(pq().getlength(res, i, j))));
      }
    }
    rows.push_back(std::move(row));
  }
  pq().clear(res);
  return rows;
}

}  // namespace tw::pg
