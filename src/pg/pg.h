// A connection to PostgreSQL (libpq), for the audit trail a fleet shares (`audit.shared:
// postgresql://…`). Thin on purpose: statements with $n parameters (never values formatted
// into SQL), rows as text, every failure a Result.
//
// Credentials never come from the URL (a config file is kept in git): a URL with a password is
// refused; libpq reads PGPASSWORD (or ~/.pgpass) and PGUSER from the environment as usual.
//
// Contract: one thread at a time per Connection (the shipper's; a query's own).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct pg_conn;

namespace tw::pg {

// Whether a spec names a PostgreSQL database (postgresql:// or postgres://).
inline bool IsPostgresUrl(std::string_view spec) {
  return spec.starts_with("postgresql://") || spec.starts_with("postgres://");
}

using Row = std::vector<std::optional<std::string>>;  // nullopt: SQL NULL

class Connection {
 public:
  // Connects within `timeout_s` seconds.
  static Result<std::unique_ptr<Connection>> Open(const std::string& url, int timeout_s = 5);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement; returns its rows (none for a command). Parameters are text ($1…).
  Result<std::vector<Row>> Exec(const std::string& sql,
                                const std::vector<std::optional<std::string>>& params = {});
  // Whether the connection is still usable (false after the server went away).
  bool ok() const;

 private:
  explicit Connection(pg_conn* conn, std::string where) : conn_(conn), where_(std::move(where)) {}
  pg_conn* conn_;
  std::string where_;
};

}  // namespace tw::pg
