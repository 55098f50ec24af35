#include "pg/pg.h"

#include <libpq-fe.h>

#include <boost/url/parse.hpp>

namespace tw::pg {

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
  // libpq takes the URI itself; the timeout is added as a keyword (connect_timeout).
  const std::string timeout = std::to_string(timeout_s);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {url.c_str(), timeout.c_str(), "toolwarden", nullptr};
  pg_conn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  const std::string where = "PostgreSQL " + url;
  if (conn == nullptr) return Fail(Error::Unavailable(where + ": out of memory"));
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string m = PQerrorMessage(conn);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    PQfinish(conn);
    return Fail(Error::Unavailable(where + ": " + m));
  }
  // Server notices ("relation … already exists, skipping") are not for the gateway's stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn, where));
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::ok() const { return PQstatus(conn_) == CONNECTION_OK; }

Result<std::vector<Row>> Connection::Exec(const std::string& sql,
                                          const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
  const ExecStatusType status = PQresultStatus(res);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string m = res ? PQresultErrorMessage(res) : PQerrorMessage(conn_);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    PQclear(res);
    return Fail(Error::Unavailable(where_ + ": " + m));
  }
  std::vector<Row> rows;
  const int n = PQntuples(res), cols = PQnfields(res);
  rows.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Row row;
    row.reserve(static_cast<size_t>(cols));
    for (int j = 0; j < cols; ++j) {
      if (PQgetisnull(res, i, j)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res, i, j), static_cast<size_t>(PQgetlength(res, i, j))));
      }
    }
    rows.push_back(std::move(row));
  }
  PQclear(res);
  return rows;
}

}  // namespace tw::pg
