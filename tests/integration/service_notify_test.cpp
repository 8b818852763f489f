#define BOOST_TEST_MODULE service_notify_test
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// A datagram socket standing in for systemd's notify socket (PID 1 is not systemd here).
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    BOOST_REQUIRE(path.string().size() < sizeof addr.sun_path);
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    BOOST_REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~NotifySocket() { close(fd_); }

  // Every datagram that arrives within `timeout`, each split into its lines.
  std::vector<std::string> Read(milliseconds timeout) {
    std::vector<std::string> lines;
    auto deadline = steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      std::string datagram(buf, static_cast<size_t>(n));
      size_t start = 0;
      while (start <= datagram.size()) {
        size_t end = datagram.find('\n', start);
        if (end == std::string::npos) end = datagram.size();
        if (end > start) lines.push_back(datagram.substr(start, end - start));
        start = end + 1;
      }
    }
    return lines;
  }

  // Reads until a line equal to (or, with `prefix`, starting with) `wanted` arrives; every line
  // read is appended to `seen`.
  bool WaitForLine(const std::string& wanted, milliseconds timeout, std::vector<std::string>& seen,
                   bool prefix = false) {
    auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      if (unread_.empty()) unread_ = Read(milliseconds(100));
      while (!unread_.empty()) {
        std::string line = unread_.front();
        unread_.erase(unread_.begin());
        seen.push_back(line);
        if (prefix ? line.starts_with(wanted) : line == wanted) return true;
      }
    }
    return false;
  }

  // Lines that WaitForLine read past its match, then whatever arrives within `timeout`.
  std::vector<std::string> ReadRest(milliseconds timeout) {
    std::vector<std::string> lines = std::move(unread_);
    unread_.clear();
    for (auto& line : Read(timeout)) lines.push_back(std::move(line));
    return lines;
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<std::string> unread_;
};

size_t Count(const std::vector<std::string>& lines, const std::string& line) {
  return static_cast<size_t>(std::count(lines.begin(), lines.end(), line));
}

BOOST_AUTO_TEST_CASE(ready_status_watchdog_reload_and_stopping) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY)", "shop");
  auto config = WritePgFileConfig(dir.path(), *pg, "shop", "svc", "[public.orders]");
  NotifySocket notify(dir.path() / "notify.sock");
  setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
  setenv("WATCHDOG_USEC", "1000000", 1);
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");

  std::vector<std::string> seen;
  BOOST_REQUIRE_MESSAGE(notify.WaitForLine("READY=1", seconds(30), seen), agent.Log());
  BOOST_REQUIRE(notify.WaitForLine("STATUS=svc: streaming", seconds(5), seen, true));

  // Interval 1 s: a ping every half second while the pipeline loops.
  auto lines = notify.ReadRest(milliseconds(3000));
  size_t pings = Count(lines, "WATCHDOG=1");
  BOOST_TEST(pings >= 4u);
  BOOST_TEST(pings <= 7u);

  // SIGHUP with a new log level: RELOADING=1, then READY=1 again, and the new level applies.
  EditConfig(config, "level: debug", "level: warn");
  agent.Signal(SIGHUP);
  seen.clear();
  BOOST_REQUIRE(notify.WaitForLine("RELOADING=1", seconds(5), seen));
  BOOST_REQUIRE(notify.WaitForLine("READY=1", seconds(5), seen));
  BOOST_TEST(agent.running());
  BOOST_TEST(agent.Log().find("Reloaded log_level=warn") != std::string::npos);

  agent.Signal(SIGTERM);
  seen.clear();
  BOOST_TEST(notify.WaitForLine("STOPPING=1", seconds(10), seen));
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(a_stalled_pipeline_stops_the_watchdog_pings) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY)", "shop");
  // A listener that never accepts: the kernel completes the TCP handshake, and the second
  // source then waits for a server greeting that never comes, stalled inside its Open.
  int black_hole = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(bind(black_hole, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  BOOST_REQUIRE(listen(black_hole, 16) == 0);
  socklen_t len = sizeof addr;
  BOOST_REQUIRE(getsockname(black_hole, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const auto config = dir.path() / "tributary.yaml";
  std::ofstream(config) << fmt::format(
      R"(state_dir: {state}
sources:
  - name: svc
    type: postgres
    dsn: "{dsn}"
    tables: [public.orders]
    snapshot: never
    sinks: [files]
  - name: stalled
    type: postgres
    dsn: "host=127.0.0.1 port={port} dbname=x user=x connect_timeout=60"
    tables: [public.t]
    snapshot: never
    sinks: [files]
sinks:
  - name: files
    type: file
    path: {out}
)",
      fmt::arg("state", (dir.path() / "state").string()), fmt::arg("dsn", pg->Dsn("shop")),
      fmt::arg("port", ntohs(addr.sin_port)), fmt::arg("out", (dir.path() / "out").string()));
  NotifySocket notify(dir.path() / "notify.sock");
  setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
  setenv("WATCHDOG_USEC", "1000000", 1);
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");

  // The healthy source streams and loops, yet no ping goes out: one pipeline is stuck.
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              return pg->QueryValue(
                                         "SELECT count(*) FROM pg_replication_slots "
                                         "WHERE active") == "1";
                            },
                            seconds(30)),
                        LogOf{agent});
  auto lines = notify.Read(milliseconds(3000));
  BOOST_TEST(Count(lines, "WATCHDOG=1") == 0u);
  BOOST_TEST(Count(lines, "READY=1") == 0u);
  BOOST_TEST(agent.running());

  // Unstuck: the pending connections are reset, the source fails over to its reconnect backoff,
  // which is progress, and pings resume.
  close(black_hole);
  lines = notify.Read(milliseconds(4000));
  BOOST_TEST(Count(lines, "WATCHDOG=1") >= 2u, agent.Log());

  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
}

}  // namespace
}  // namespace tributary::testing
