#include "connectors/postgres/pg_connection.h"

#include <fmt/format.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

namespace tributary::postgres {

namespace {

std::string TrimNewline(const char* text) {
  std::string message = text != nullptr ? text : "";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  return message;
}

// SQLSTATE classes that mean the server or the network, not the request, failed.
bool IsTransientSqlState(std::string_view state) {
  return state.starts_with("08") ||   // connection exception
         state.starts_with("57P") ||  // admin/crash shutdown, cannot connect now
         state.starts_with("53") ||   // insufficient resources
         state == "40001" || state == "40P01" ||
         state == "55006";  // object in use: a slot still held by a connection that is dying
}

}  // namespace

Result<PgConnection> PgConnection::Open(const std::string& dsn, Mode mode) {
  // libpq lets later keywords win. Defaults the DSN may override come before it: TCP
  // keepalives and a user timeout notice a peer that vanished without a reset (a dead host, a
  // dropped route) in about a minute instead of the kernel's quarter of an hour. The session
  // settings after it fix the text format of values, which the decoder relies on.
  std::vector<const char*> keys = {"application_name",
                                   "connect_timeout",
                                   "keepalives",
                                   "keepalives_idle",
                                   "keepalives_interval",
                                   "keepalives_count",
                                   "tcp_user_timeout",
                                   "dbname",
                                   "options"};
  static constexpr const char* kSessionSettings =
      "-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex "
      "-c IntervalStyle=iso_8601 -c client_encoding=UTF8";
  std::vector<const char*> values = {
      "tributary", "10", "1", "30", "10", "3", "60000", dsn.c_str(), kSessionSettings};
  if (mode == Mode::kLogicalReplication) {
    keys.push_back("replication");
    values.push_back("database");
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return Status::Fatal("postgres: out of memory creating a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = TrimNewline(PQerrorMessage(conn));
    PQfinish(conn);
    bool auth = message.find("authentication") != std::string::npos ||
                message.find("password") != std::string::npos ||
                message.find("does not exist") != std::string::npos ||
                message.find("no pg_hba.conf entry") != std::string::npos;
    std::string text = "postgres: cannot connect: " + message;
    return auth ? Status::InvalidConfig(std::move(text)) : Status::Retriable(std::move(text));
  }
  return PgConnection(conn);
}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = other.conn_;
    other.conn_ = nullptr;
  }
  return *this;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Status ClassifyPgError(PGconn* conn, const PGresult* result, const std::string& context) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message =
      TrimNewline(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn));
  if (message.empty()) message = TrimNewline(PQerrorMessage(conn));
  std::string text = "postgres: " + context + ": " + message;
  if (PQstatus(conn) == CONNECTION_BAD || state == nullptr || IsTransientSqlState(state)) {
    return Status::Retriable(std::move(text));
  }
  return Status::Fatal(std::move(text));
}

Result<PgResult> PgConnection::Exec(const std::string& sql, ExecStatusType expected) {
  // The statement text may hold identifiers but never values; show its first word only.
  const std::string_view verb = std::string_view(sql).substr(0, sql.find(' '));
  PgResult result;
  if (answer_timeout_) {
    ASSIGN_OR_RETURN(result, ExecWithin(sql, verb));
  } else {
    result.reset(PQexec(conn_, sql.c_str()));
  }
  if (!result || PQresultStatus(result.get()) != expected) {
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      return Status::Fatal(fmt::format("postgres: {} returned {}, expected {} (a bug)", verb,
                                       PQresStatus(status), PQresStatus(expected)));
    }
    return ClassifyPgError(conn_, result.get(), fmt::format("{} failed", verb));
  }
  return result;
}

Result<PgResult> PgConnection::ExecWithin(const std::string& sql, std::string_view verb) {
  if (conn_ == nullptr) return Status::Retriable("postgres: the connection was closed");
  if (PQsendQuery(conn_, sql.c_str()) != 1) {
    return ClassifyPgError(conn_, nullptr, fmt::format("{} failed", verb));
  }
  const auto deadline = std::chrono::steady_clock::now() + *answer_timeout_;
  // Like PQexec: every result is read, the last one stands for the statement. Each may take
  // its time: a multi-statement query answers statement by statement.
  PgResult result;
  while (true) {
    while (PQisBusy(conn_) != 0) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        // Mid-statement the connection is of no further use; closing it also frees the
        // server from a reply nobody reads.
        PQfinish(conn_);
        conn_ = nullptr;
        return Status::Retriable(
            fmt::format("postgres: {} got no answer from the server in {} s; reconnecting", verb,
                        answer_timeout_->count() / 1000));
      }
      pollfd socket{PQsocket(conn_), POLLIN, 0};
      if (poll(&socket, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
        return Status::Retriable(
            fmt::format("postgres: {} failed: poll: {}", verb, std::strerror(errno)));
      }
      if (PQconsumeInput(conn_) != 1)
        return ClassifyPgError(conn_, nullptr, fmt::format("{} failed", verb));
    }
    PGresult* next = PQgetResult(conn_);
    if (next == nullptr) return result;
    result.reset(next);
  }
}

Result<TextRows> PgConnection::Query(const std::string& sql) {
  ASSIGN_OR_RETURN(PgResult result, Exec(sql));
  TextRows rows;
  int nrows = PQntuples(result.get());
  int ncols = PQnfields(result.get());
  rows.reserve(nrows);
  for (int r = 0; r < nrows; ++r) {
    std::vector<std::string> row;
    row.reserve(ncols);
    for (int c = 0; c < ncols; ++c) row.emplace_back(PQgetvalue(result.get(), r, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

Status PgConnection::Command(const std::string& sql) {
  ASSIGN_OR_RETURN(PgResult ignored, Exec(sql, PGRES_COMMAND_OK));
  return Status::Ok();
}

std::string PgConnection::QuoteIdentifier(std::string_view name) const {
  char* quoted = PQescapeIdentifier(conn_, name.data(), name.size());
  std::string out = quoted != nullptr ? quoted : "";
  PQfreemem(quoted);
  return out;
}

std::string PgConnection::QuoteLiteral(std::string_view value) const {
  char* quoted = PQescapeLiteral(conn_, value.data(), value.size());
  std::string out = quoted != nullptr ? quoted : "";
  PQfreemem(quoted);
  return out;
}

std::string PgConnection::LastError() const { return TrimNewline(PQerrorMessage(conn_)); }

}  // namespace tributary::postgres
