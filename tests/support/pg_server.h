#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace tributary::testing {

// A throwaway PostgreSQL 15 cluster: initdb in a temp dir (as the postgres user when run as
// root, since PostgreSQL refuses root), wal_level=logical, a free loopback port. Stopped and
// removed on destruction. Start() throws when the server does not come up: a missing server
// fails the test.
class PgServer {
 public:
  static std::unique_ptr<PgServer> Start(const std::vector<std::string>& extra_settings = {});
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  int port() const { return port_; }
  std::string Dsn(const std::string& dbname = "postgres") const;

  // Runs SQL (several statements allowed); throws with the server's message on failure.
  void Exec(const std::string& sql, const std::string& dbname = "postgres") const;
  // Rows of a query as text, SQL NULL as "\N".
  std::vector<std::vector<std::string>> Query(const std::string& sql,
                                              const std::string& dbname = "postgres") const;
  std::string QueryValue(const std::string& sql, const std::string& dbname = "postgres") const;

  // An immediate shutdown, as a crash would stop it; Restart() then starts it again on the same
  // port and data (crash recovery included).
  void Stop();
  void Restart();

 private:
  PgServer() = default;
  void Launch();
  std::unique_ptr<TempDir> dir_;
  std::filesystem::path data_dir_;
  int port_ = 0;
  bool running_ = false;
};

// A free TCP port on 127.0.0.1 (bound once to port 0, then released).
int FreeLoopbackPort();

// Runs a shell command, throwing when it exits non-zero; returns its stdout.
std::string RunCommand(const std::string& command);

// A program path from PostgreSQL 15's bin directory.
std::string PgBin(const std::string& program);

}  // namespace tributary::testing
