#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace tributary::testing {

// A throwaway MariaDB 10.11: mariadb-install-db into a temp dir, mariadbd (as the mysql user
// when run as root) on a free loopback port with log_bin, binlog_format=ROW,
// binlog_row_image=FULL, binlog_row_metadata=FULL, server_id=1, a replication user
// cdc/cdc-pass and an application user app/app-pass with all privileges. Killed and removed on
// destruction. Start() throws when the server does not come up: a missing server fails the test.
class MariaDbServer {
 public:
  // `extra_args` are mariadbd options ("--binlog-format=STATEMENT") that override the defaults.
  static std::unique_ptr<MariaDbServer> Start(const std::vector<std::string>& extra_args = {});
  ~MariaDbServer();
  MariaDbServer(const MariaDbServer&) = delete;
  MariaDbServer& operator=(const MariaDbServer&) = delete;

  int port() const { return port_; }
  // "mysql://cdc:cdc-pass@127.0.0.1:<port>", the agent's dsn form.
  std::string Dsn() const;

  // Runs SQL as root (several statements allowed); throws with the server's message on
  // failure.
  void Exec(const std::string& sql) const;
  // Rows of a query as text, SQL NULL as "\N".
  std::vector<std::vector<std::string>> Query(const std::string& sql) const;
  std::string QueryValue(const std::string& sql) const;

  // Clean shutdown; Restart() starts it again on the same port and data.
  void Stop();
  void Kill();  // SIGKILL, as a crash would
  void Restart();

  const std::filesystem::path& data_dir() const { return data_dir_; }

 private:
  MariaDbServer() = default;
  void Launch();
  bool WaitReady();

  std::unique_ptr<TempDir> dir_;
  std::filesystem::path data_dir_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tributary::testing
