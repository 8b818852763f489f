#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace tributary::postgres {

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// Rows of a simple query's result as text; SQL NULL becomes "" (callers that care ask
// PQgetisnull through Exec instead).
using TextRows = std::vector<std::vector<std::string>>;

// A move-only libpq connection. Replication connections accept only the simple query
// protocol, so every call here uses PQexec and callers quote with QuoteIdentifier/Literal.
class PgConnection {
 public:
  enum class Mode { kNormal, kLogicalReplication };

  // Connects with `dsn` plus session settings that fix the text format of values
  // (ISO dates, UTC, exact floats, hex bytea).
  static Result<PgConnection> Open(const std::string& dsn, Mode mode);

  PgConnection(PgConnection&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // Runs one statement; `expected` is the status that counts as success.
  Result<PgResult> Exec(const std::string& sql, ExecStatusType expected = PGRES_TUPLES_OK);
  // From now on a statement the server has not answered within `timeout` fails as
  // retriable, and the connection is closed: a server that stopped answering must not hold
  // the pipeline's thread past the systemd watchdog. Meant for short catalog queries.
  void SetAnswerTimeout(std::chrono::milliseconds timeout) { answer_timeout_ = timeout; }
  Result<TextRows> Query(const std::string& sql);
  Status Command(const std::string& sql);

  std::string QuoteIdentifier(std::string_view name) const;
  std::string QuoteLiteral(std::string_view value) const;

  // The text of the last error, one line, without the trailing newline.
  std::string LastError() const;
  PGconn* get() const { return conn_; }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  // PQexec, but giving up after answer_timeout_.
  Result<PgResult> ExecWithin(const std::string& sql, std::string_view verb);

  PGconn* conn_ = nullptr;
  std::optional<std::chrono::milliseconds> answer_timeout_;
};

// Sorts a server error into retriable (the connection or server went away) or not.
Status ClassifyPgError(PGconn* conn, const PGresult* result, const std::string& context);

}  // namespace tributary::postgres
