#include "tests/support/pg_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace tributary::testing {

namespace {

bool IsRoot() { return geteuid() == 0; }

// Prefixes a command so that it runs as the postgres user when we are root.
std::string AsPostgres(const std::string& command) {
  if (!IsRoot()) return command;
  return "runuser -u postgres -- " + command;
}

struct ConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};

std::unique_ptr<PGconn, ConnDeleter> Connect(const std::string& dsn) {
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdb(dsn.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to test server: " +
                             std::string(PQerrorMessage(conn.get())));
  }
  return conn;
}

}  // namespace

std::string PgBin(const std::string& program) { return "/usr/lib/postgresql/15/bin/" + program; }

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string RunCommand(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((command + " 2>&1").c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("popen failed: " + command);
  std::string output;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0)
    output.append(buffer.data(), n);
  int status = pclose(pipe.release());
  if (status != 0) {
    throw std::runtime_error(fmt::format("command failed ({}): {}\n{}", status, command, output));
  }
  return output;
}

std::unique_ptr<PgServer> PgServer::Start(const std::vector<std::string>& extra_settings) {
  std::unique_ptr<PgServer> server(new PgServer());
  server->dir_ = std::make_unique<TempDir>();
  server->data_dir_ = server->dir_->path() / "data";
  if (IsRoot()) {
    // The temp dir's parents must be traversable by postgres; the dir itself must be its.
    RunCommand(fmt::format("chmod 755 '{}' && chown postgres:postgres '{}'",
                           server->dir_->path().string(), server->dir_->path().string()));
  }
  RunCommand(AsPostgres(fmt::format("{} -D '{}' -A trust -U postgres -E UTF8 --no-sync",
                                    PgBin("initdb"), server->data_dir_.string())));
  std::string settings =
      "listen_addresses = '127.0.0.1'\n"
      "wal_level = logical\n"
      "max_replication_slots = 20\n"
      "max_wal_senders = 20\n"
      "fsync = off\n"
      "synchronous_commit = off\n"
      "full_page_writes = off\n"
      "shared_buffers = 128MB\n"
      "max_wal_size = 2GB\n"
      "log_min_messages = warning\n";
  settings += fmt::format("unix_socket_directories = '{}'\n", server->dir_->path().string());
  for (const auto& s : extra_settings) settings += s + "\n";

  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = FreeLoopbackPort();
    std::string conf = settings + fmt::format("port = {}\n", server->port_);
    // postgresql.auto.conf is read last, so these settings win.
    std::ofstream(server->data_dir_ / "postgresql.auto.conf", std::ios::trunc) << conf;
    try {
      server->Launch();
      return server;
    } catch (const std::exception&) {
      // Most likely the port was taken between choosing and binding it; try another.
    }
  }
  std::string log;
  try {
    log = RunCommand(fmt::format("tail -n 30 '{}/server.log'", server->dir_->path().string()));
  } catch (const std::exception&) {
  }
  throw std::runtime_error("PostgreSQL did not start:\n" + log);
}

PgServer::~PgServer() {
  try {
    Stop();
  } catch (const std::exception&) {
    // Best effort: the temp dir goes away regardless.
  }
}

void PgServer::Launch() {
  RunCommand(AsPostgres(fmt::format("{} -D '{}' -l '{}/server.log' -w -t 60 start", PgBin("pg_ctl"),
                                    data_dir_.string(), dir_->path().string())));
  running_ = true;
}

void PgServer::Restart() {
  Stop();
  Launch();
}

void PgServer::Stop() {
  if (!running_) return;
  running_ = false;
  RunCommand(AsPostgres(
      fmt::format("{} -D '{}' -m immediate -w stop", PgBin("pg_ctl"), data_dir_.string())));
}

std::string PgServer::Dsn(const std::string& dbname) const {
  return fmt::format("host=127.0.0.1 port={} dbname={} user=postgres", port_, dbname);
}

void PgServer::Exec(const std::string& sql, const std::string& dbname) const {
  auto conn = Connect(Dsn(dbname));
  PGresult* result = PQexec(conn.get(), sql.c_str());
  ExecStatusType status = PQresultStatus(result);
  std::string error = PQresultErrorMessage(result);
  PQclear(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("SQL failed: " + error + "\n" + sql.substr(0, 500));
  }
}

std::vector<std::vector<std::string>> PgServer::Query(const std::string& sql,
                                                      const std::string& dbname) const {
  auto conn = Connect(Dsn(dbname));
  PGresult* result = PQexec(conn.get(), sql.c_str());
  if (PQresultStatus(result) != PGRES_TUPLES_OK) {
    std::string error = PQresultErrorMessage(result);
    PQclear(result);
    throw std::runtime_error("query failed: " + error + "\n" + sql);
  }
  std::vector<std::vector<std::string>> rows;
  for (int r = 0; r < PQntuples(result); ++r) {
    std::vector<std::string> row;
    for (int c = 0; c < PQnfields(result); ++c) {
      row.emplace_back(PQgetisnull(result, r, c) ? "\\N" : PQgetvalue(result, r, c));
    }
    rows.push_back(std::move(row));
  }
  PQclear(result);
  return rows;
}

std::string PgServer::QueryValue(const std::string& sql, const std::string& dbname) const {
  auto rows = Query(sql, dbname);
  if (rows.size() != 1 || rows[0].size() != 1) {
    throw std::runtime_error("expected one value from: " + sql);
  }
  return rows[0][0];
}

}  // namespace tributary::testing
