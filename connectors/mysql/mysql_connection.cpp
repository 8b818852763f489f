#include "connectors/mysql/mysql_connection.h"

#include <errmsg.h>
#include <fmt/format.h>
#include <mysqld_error.h>

#include <charconv>

namespace tributary::mysql {

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexDigit(in[i + 1]);
    const int lo = HexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// Errors that the operator must fix: credentials, grants, a missing database.
bool IsConfigError(unsigned int code) {
  return code == ER_ACCESS_DENIED_ERROR || code == ER_DBACCESS_DENIED_ERROR ||
         code == ER_SPECIFIC_ACCESS_DENIED_ERROR || code == ER_TABLEACCESS_DENIED_ERROR ||
         code == ER_BAD_DB_ERROR || code == ER_ACCESS_DENIED_NO_PASSWORD_ERROR;
}

}  // namespace

Result<MysqlDsn> ParseMysqlDsn(const std::string& dsn) {
  constexpr std::string_view kScheme = "mysql://";
  const auto bad = [](std::string_view why) {
    return Status::InvalidConfig(
        fmt::format("mysql: dsn must be \"mysql://user:password@host:port\": {}", why));
  };
  if (!dsn.starts_with(kScheme)) return bad("it does not start with mysql://");
  std::string_view rest = std::string_view(dsn).substr(kScheme.size());
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    rest = rest.substr(0, slash);  // a trailing "/" or "/db" names no database we need
  }
  const size_t at = rest.rfind('@');
  if (at == std::string_view::npos) return bad("no user@");
  MysqlDsn out;
  const std::string_view userinfo = rest.substr(0, at);
  const std::string_view hostport = rest.substr(at + 1);
  const size_t colon = userinfo.find(':');
  if (!PercentDecode(userinfo.substr(0, colon), out.user) || out.user.empty()) {
    return bad("bad user");
  }
  if (colon != std::string_view::npos && !PercentDecode(userinfo.substr(colon + 1), out.password)) {
    return bad("bad %-escape in the password");
  }
  std::string_view host = hostport;
  std::string_view port;
  if (hostport.starts_with('[')) {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return bad("unclosed [ in the host");
    host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size()) {
      if (hostport[close + 1] != ':') return bad("bad host");
      port = hostport.substr(close + 2);
    }
  } else if (const size_t c = hostport.rfind(':'); c != std::string_view::npos) {
    host = hostport.substr(0, c);
    port = hostport.substr(c + 1);
  }
  if (host.empty()) return bad("no host");
  out.host = std::string(host);
  if (!port.empty()) {
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc() || end != port.data() + port.size() || out.port == 0 ||
        out.port > 65535) {
      return bad("bad port");
    }
  }
  return out;
}

Result<MysqlConnection> MysqlConnection::Open(const MysqlDsn& dsn, unsigned int read_timeout_s) {
  MYSQL* raw = mysql_init(nullptr);
  if (raw == nullptr) return Status::Fatal("mysql: out of memory");
  MysqlConnection conn(raw);
  unsigned int connect_timeout = 10;
  mysql_optionsv(raw, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  if (read_timeout_s > 0) mysql_optionsv(raw, MYSQL_OPT_READ_TIMEOUT, &read_timeout_s);
  mysql_optionsv(raw, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (mysql_real_connect(raw, dsn.host.c_str(), dsn.user.c_str(), dsn.password.c_str(), nullptr,
                         dsn.port, nullptr, 0) == nullptr) {
    return conn.LastError(
        fmt::format("cannot connect to {}:{} as {}", dsn.host, dsn.port, dsn.user));
  }
  return conn;
}

Status MysqlConnection::LastError(const std::string& what) const {
  const unsigned int code = mysql_errno(mysql_.get());
  std::string message =
      fmt::format("mysql: {}: {} (error {})", what, mysql_error(mysql_.get()), code);
  if (IsConfigError(code)) return Status::InvalidConfig(std::move(message));
  return Status::Retriable(std::move(message));
}

Result<MysqlRows> MysqlConnection::Query(const std::string& sql) {
  if (mysql_real_query(mysql_.get(), sql.data(), sql.size()) != 0) return LastError("query failed");
  MYSQL_RES* result = mysql_store_result(mysql_.get());
  MysqlRows rows;
  if (result == nullptr) {
    if (mysql_field_count(mysql_.get()) != 0) return LastError("reading a result failed");
    return rows;
  }
  const unsigned int fields = mysql_num_fields(result);
  while (MYSQL_ROW row = mysql_fetch_row(result)) {
    const unsigned long* lengths = mysql_fetch_lengths(result);
    std::vector<std::optional<std::string>> out;
    out.reserve(fields);
    for (unsigned int i = 0; i < fields; ++i) {
      if (row[i] == nullptr) {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(std::string(row[i], lengths[i]));
      }
    }
    rows.push_back(std::move(out));
  }
  mysql_free_result(result);
  return rows;
}

Status MysqlConnection::Exec(const std::string& sql) {
  ASSIGN_OR_RETURN(MysqlRows ignored, Query(sql));
  return Status::Ok();
}

std::string MysqlConnection::QuoteString(const std::string& text) {
  std::string out(text.size() * 2 + 3, '\0');
  out[0] = '\'';
  const unsigned long n =
      mysql_real_escape_string(mysql_.get(), out.data() + 1, text.data(), text.size());
  out.resize(n + 1);
  out.push_back('\'');
  return out;
}

}  // namespace tributary::mysql
