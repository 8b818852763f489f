#include "tests/support/mariadb_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <mysql.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>

#include "tests/support/pg_server.h"

namespace tributary::testing {

namespace {

bool IsRoot() { return geteuid() == 0; }

struct MysqlDeleter {
  void operator()(MYSQL* mysql) const { mysql_close(mysql); }
};
using MysqlPtr = std::unique_ptr<MYSQL, MysqlDeleter>;

// Root over the unix socket, which needs no password and no host name resolution.
MysqlPtr ConnectRoot(const std::filesystem::path& socket, std::string* error = nullptr) {
  MysqlPtr mysql(mysql_init(nullptr));
  unsigned int timeout = 5;
  mysql_optionsv(mysql.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_optionsv(mysql.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (mysql_real_connect(mysql.get(), nullptr, "root", nullptr, nullptr, 0, socket.c_str(),
                         CLIENT_MULTI_STATEMENTS) == nullptr) {
    if (error != nullptr) *error = mysql_error(mysql.get());
    return nullptr;
  }
  return mysql;
}

}  // namespace

std::unique_ptr<MariaDbServer> MariaDbServer::Start(const std::vector<std::string>& extra_args) {
  std::unique_ptr<MariaDbServer> server(new MariaDbServer());
  server->dir_ = std::make_unique<TempDir>();
  server->data_dir_ = server->dir_->path() / "data";
  server->extra_args_ = extra_args;
  const std::string dir = server->dir_->path().string();
  if (IsRoot()) RunCommand(fmt::format("chmod 755 '{}' && chown mysql:mysql '{}'", dir, dir));
  // Temporary tables in the server's own directory: in the shared /tmp, another test's cleanup
  // once deleted a bootstrap's temporary table under it.
  RunCommand(
      fmt::format("mariadb-install-db --no-defaults {} --datadir='{}' --tmpdir='{}' "
                  "--auth-root-authentication-method=socket --skip-test-db",
                  IsRoot() ? "--user=mysql" : "", server->data_dir_.string(), dir));
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = FreeLoopbackPort();
    server->Launch();
    if (server->WaitReady()) {
      server->Exec(
          "CREATE USER cdc@'%' IDENTIFIED BY 'cdc-pass';"
          "GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR, REPLICATION SLAVE ADMIN "
          "ON *.* TO cdc@'%';"
          "CREATE USER app@'%' IDENTIFIED BY 'app-pass';"
          "GRANT ALL ON *.* TO app@'%';");
      return server;
    }
    server->Kill();  // most likely the port was taken between choosing and binding it
  }
  throw std::runtime_error("MariaDB did not start:\n" +
                           RunCommand(fmt::format("tail -n 30 '{}/error.log'", dir)));
}

MariaDbServer::~MariaDbServer() { Kill(); }

void MariaDbServer::Launch() {
  const std::string dir = dir_->path().string();
  std::vector<std::string> args = {
      "/usr/sbin/mariadbd",
      "--no-defaults",
      fmt::format("--datadir={}", data_dir_.string()),
      fmt::format("--port={}", port_),
      "--bind-address=127.0.0.1",
      fmt::format("--socket={}/mysqld.sock", dir),
      fmt::format("--tmpdir={}", dir),
      fmt::format("--pid-file={}/mysqld.pid", dir),
      fmt::format("--log-error={}/error.log", dir),
      fmt::format("--log-bin={}/binlog", data_dir_.string()),
      "--server-id=1",
      "--binlog-format=ROW",
      "--binlog-row-image=FULL",
      "--binlog-row-metadata=FULL",
      "--skip-name-resolve",
      "--innodb-buffer-pool-size=64M",
      "--innodb-log-file-size=64M",
      "--innodb-flush-log-at-trx-commit=2",
      "--sync-binlog=0",
      "--max-connections=100",
      "--skip-log-warnings",
  };
  if (IsRoot()) args.emplace_back("--user=mysql");
  for (const auto& a : extra_args_) args.push_back(a);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = dir + "/stdout.log";
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
}

bool MariaDbServer::WaitReady() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (ConnectRoot(dir_->path() / "mysqld.sock")) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string MariaDbServer::Dsn() const {
  return fmt::format("mysql://cdc:cdc-pass@127.0.0.1:{}", port_);
}

void MariaDbServer::Exec(const std::string& sql) const {
  std::string error;
  MysqlPtr mysql = ConnectRoot(dir_->path() / "mysqld.sock", &error);
  if (!mysql) throw std::runtime_error("cannot connect to test server: " + error);
  if (mysql_real_query(mysql.get(), sql.data(), sql.size()) != 0) {
    throw std::runtime_error("SQL failed: " + std::string(mysql_error(mysql.get())) + "\n" +
                             sql.substr(0, 500));
  }
  // Every result of a multi-statement must be consumed, and each can fail on its own.
  do {
    if (MYSQL_RES* result = mysql_store_result(mysql.get())) mysql_free_result(result);
    const int next = mysql_next_result(mysql.get());
    if (next > 0) {
      throw std::runtime_error("SQL failed: " + std::string(mysql_error(mysql.get())) + "\n" +
                               sql.substr(0, 500));
    }
    if (next < 0) break;
  } while (true);
}

std::vector<std::vector<std::string>> MariaDbServer::Query(const std::string& sql) const {
  std::string error;
  MysqlPtr mysql = ConnectRoot(dir_->path() / "mysqld.sock", &error);
  if (!mysql) throw std::runtime_error("cannot connect to test server: " + error);
  if (mysql_real_query(mysql.get(), sql.data(), sql.size()) != 0) {
    throw std::runtime_error("query failed: " + std::string(mysql_error(mysql.get())) + "\n" + sql);
  }
  MYSQL_RES* result = mysql_store_result(mysql.get());
  if (result == nullptr) throw std::runtime_error("query returned no rows: " + sql);
  std::vector<std::vector<std::string>> rows;
  const unsigned int fields = mysql_num_fields(result);
  while (MYSQL_ROW row = mysql_fetch_row(result)) {
    const unsigned long* lengths = mysql_fetch_lengths(result);
    std::vector<std::string> out;
    for (unsigned int i = 0; i < fields; ++i) {
      out.emplace_back(row[i] == nullptr ? std::string("\\N") : std::string(row[i], lengths[i]));
    }
    rows.push_back(std::move(out));
  }
  mysql_free_result(result);
  return rows;
}

std::string MariaDbServer::QueryValue(const std::string& sql) const {
  auto rows = Query(sql);
  if (rows.size() != 1 || rows[0].size() != 1) {
    throw std::runtime_error("expected one value from: " + sql);
  }
  return rows[0][0];
}

void MariaDbServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void MariaDbServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void MariaDbServer::Restart() {
  Stop();
  Launch();
  if (!WaitReady()) {
    throw std::runtime_error(
        "MariaDB did not restart:\n" +
        RunCommand(fmt::format("tail -n 30 '{}/error.log'", dir_->path().string())));
  }
}

}  // namespace tributary::testing
