#pragma once

#include <mysql.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/status.h"

namespace tributary::mysql {

// The parts of `mysql://user:password@host:port`; user and password percent-decoded.
struct MysqlDsn {
  std::string user;
  std::string password;
  std::string host = "127.0.0.1";
  unsigned int port = 3306;
};

// kInvalidConfig naming what is wrong, never the password.
Result<MysqlDsn> ParseMysqlDsn(const std::string& dsn);

using MysqlRows = std::vector<std::vector<std::optional<std::string>>>;

// A client connection (MariaDB Connector/C), move-only.
class MysqlConnection {
 public:
  // Fails kInvalidConfig on bad credentials or access, kRetriable when the server is not
  // reachable. `read_timeout_s` bounds every read (0: none).
  static Result<MysqlConnection> Open(const MysqlDsn& dsn, unsigned int read_timeout_s);

  MYSQL* get() const { return mysql_.get(); }

  Result<MysqlRows> Query(const std::string& sql);
  Status Exec(const std::string& sql);
  std::string QuoteString(const std::string& text);
  // The failure of the last call as a Status: kRetriable for a lost connection.
  Status LastError(const std::string& what) const;

 private:
  struct Closer {
    void operator()(MYSQL* mysql) const { mysql_close(mysql); }
  };
  explicit MysqlConnection(MYSQL* mysql) : mysql_(mysql) {}
  std::unique_ptr<MYSQL, Closer> mysql_;
};

}  // namespace tributary::mysql
