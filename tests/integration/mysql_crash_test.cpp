#define BOOST_TEST_MODULE mysql_crash_test
#include <fmt/format.h>
#include <mysql.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <random>
#include <thread>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/mysql_config.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const char* const kTables[] = {"t1", "t2", "t3"};

// Random single- and multi-statement transactions over three tables until told to stop;
// survives the server going away (retrying the transaction). Returns the commits.
int RunWorkload(const MariaDbServer& server, const std::atomic<bool>& stop, unsigned seed) {
  std::mt19937 random(seed);
  std::vector<std::vector<int>> live(3);
  int next_id = 1;
  int committed = 0;
  MYSQL* conn = nullptr;
  while (!stop.load()) {
    if (conn == nullptr) {
      conn = mysql_init(nullptr);
      if (mysql_real_connect(conn, "127.0.0.1", "app", "app-pass", nullptr,
                             static_cast<unsigned>(server.port()), nullptr,
                             CLIENT_MULTI_STATEMENTS) == nullptr) {
        mysql_close(conn);
        conn = nullptr;
        std::this_thread::sleep_for(milliseconds(100));
        continue;
      }
    }
    std::vector<std::vector<int>> next = live;
    int next_next_id = next_id;
    std::string sql = "BEGIN;";
    int statements = 1 + static_cast<int>(random() % 5);
    for (int s = 0; s < statements; ++s) {
      int t = static_cast<int>(random() % 3);
      auto& ids = next[t];
      int op = static_cast<int>(random() % 10);
      if (ids.empty() || op < 5) {
        int id = next_next_id++;
        ids.push_back(id);
        sql += fmt::format("INSERT INTO crash.{} VALUES ({}, 0, 'n{}');", kTables[t], id, id);
      } else if (op < 8) {
        int id = ids[random() % ids.size()];
        sql += fmt::format("UPDATE crash.{} SET v = v + 1, note = CONCAT(note, 'u') WHERE id = {};",
                           kTables[t], id);
      } else {
        size_t i = random() % ids.size();
        sql += fmt::format("DELETE FROM crash.{} WHERE id = {};", kTables[t], ids[i]);
        ids.erase(ids.begin() + static_cast<long>(i));
      }
    }
    sql += "COMMIT;";
    bool ok = mysql_real_query(conn, sql.data(), sql.size()) == 0;
    while (ok) {
      if (MYSQL_RES* r = mysql_store_result(conn)) mysql_free_result(r);
      int next_result = mysql_next_result(conn);
      if (next_result < 0) break;
      if (next_result > 0) ok = false;
    }
    if (!ok) {
      // The server went away mid-transaction: it rolled back, or committed before the reply
      // was lost. Either way the check compares against what the server holds.
      mysql_close(conn);
      conn = nullptr;
      next_id = next_next_id;  // its ids may exist now; never reuse them
      std::this_thread::sleep_for(milliseconds(200));
      continue;
    }
    live = std::move(next);
    next_id = next_next_id;
    ++committed;
  }
  if (conn != nullptr) mysql_close(conn);
  return committed;
}

void CreateTables(const MariaDbServer& server) {
  server.Exec("CREATE DATABASE crash");
  for (const char* t : kTables) {
    server.Exec(fmt::format("CREATE TABLE crash.{} (id INT PRIMARY KEY, v INT, note TEXT)", t));
  }
}

// Waits for a marker row committed last, then compares every table to its replayed events.
void CheckReplay(const MariaDbServer& server, const std::filesystem::path& dir,
                 AgentProcess& agent) {
  server.Exec("INSERT INTO crash.t1 VALUES (-1, -1, 'marker')");
  auto t1_dir = TopicDir(dir, "cr.crash.t1");
  const auto caught_up = WaitForMarker(t1_dir, -1, seconds(60));
  BOOST_REQUIRE_MESSAGE(caught_up, LogOf{agent});
  BOOST_TEST_MESSAGE("caught up in " << caught_up->count() << " ms");
  for (const char* t : kTables) {
    auto events = ReadTopicEvents(TopicDir(dir, fmt::format("cr.crash.{}", t)));
    BOOST_TEST(FirstOutOfOrder(events) == -1, "duplicate or reordered event in " << t);
    auto replayed = ReplayEvents(events, "id");
    auto rows = server.Query(fmt::format("SELECT id, v, note FROM crash.{} ORDER BY id", t));
    BOOST_TEST(replayed.size() == rows.size(), t);
    size_t mismatches = 0;
    for (const auto& row : rows) {
      auto it = replayed.find(row[0]);
      if (it == replayed.end() || it->second["v"] != std::stoi(row[1]) ||
          it->second["note"] != row[2]) {
        ++mismatches;
      }
    }
    BOOST_TEST(mismatches == 0u, t);
  }
}

std::filesystem::path SmallSegmentConfig(const std::filesystem::path& dir,
                                         const MariaDbServer& server) {
  auto config = WriteMysqlFileConfig(dir, server, "cr", R"(["crash.t*"])");
  EditConfig(config, "rotate_bytes: 1048576", "rotate_bytes: 16384");
  return config;
}

BOOST_AUTO_TEST_CASE(kill_9_during_writes_loses_and_duplicates_nothing) {
  // Small binlogs, so that crashes also land around binlog rotations.
  auto server = MariaDbServer::Start({"--max-binlog-size=65536"});
  TempDir dir;
  CreateTables(*server);
  auto config = SmallSegmentConfig(dir.path(), *server);
  auto agent = StartStreamingMysqlAgent(config, dir.path() / "agent0.log");

  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer([&] { committed = RunWorkload(*server, stop, 42); });
  std::mt19937 random(7);
  const int kKills = 6;
  for (int k = 1; k <= kKills; ++k) {
    std::this_thread::sleep_for(milliseconds(400 + random() % 1600));
    agent->Signal(SIGKILL);
    BOOST_REQUIRE(agent->Wait(seconds(10)).value_or(-1) == 128 + SIGKILL);
    agent =
        std::make_unique<AgentProcess>(std::vector<std::string>{"run", "--config", config.string()},
                                       dir.path() / fmt::format("agent{}.log", k));
  }
  std::this_thread::sleep_for(seconds(1));
  stop.store(true);
  writer.join();
  BOOST_TEST_MESSAGE("transactions committed: " << committed);
  BOOST_TEST(committed > 100);
  CheckReplay(*server, dir.path(), *agent);
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(server_restart_mid_stream_loses_nothing) {
  auto server = MariaDbServer::Start();
  TempDir dir;
  CreateTables(*server);
  auto config = SmallSegmentConfig(dir.path(), *server);
  auto agent = StartStreamingMysqlAgent(config, dir.path() / "agent.log");
  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer([&] { committed = RunWorkload(*server, stop, 43); });
  std::this_thread::sleep_for(seconds(2));
  server->Restart();  // clean shutdown and start: the agent reconnects with backoff
  std::this_thread::sleep_for(seconds(2));
  server->Kill();  // and a crash
  server->Restart();
  std::this_thread::sleep_for(seconds(2));
  stop.store(true);
  writer.join();
  BOOST_TEST(committed > 50);
  CheckReplay(*server, dir.path(), *agent);
  BOOST_TEST(agent->running());
  BOOST_TEST(agent->Log().find("reconnecting") != std::string::npos);
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
}

}  // namespace
}  // namespace tributary::testing
