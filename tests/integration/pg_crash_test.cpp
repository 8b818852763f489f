#define BOOST_TEST_MODULE pg_crash_test
#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <random>
#include <set>
#include <thread>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const char* const kTables[] = {"t1", "t2", "t3"};

// Random single- and multi-statement transactions over three tables, from one connection,
// until told to stop. Returns how many transactions committed.
int RunWorkload(const PgServer& pg, const std::atomic<bool>& stop, unsigned seed) {
  PGconn* conn = PQconnectdb(pg.Dsn("crash").c_str());
  BOOST_REQUIRE(PQstatus(conn) == CONNECTION_OK);
  std::mt19937 random(seed);
  std::vector<std::vector<int>> live(3);
  int next_id = 1;
  int committed = 0;
  while (!stop.load()) {
    std::string sql = "BEGIN;";
    int statements = 1 + static_cast<int>(random() % 5);
    for (int s = 0; s < statements; ++s) {
      int t = static_cast<int>(random() % 3);
      auto& ids = live[t];
      int op = static_cast<int>(random() % 10);
      if (ids.empty() || op < 5) {
        int id = next_id++;
        ids.push_back(id);
        sql += fmt::format("INSERT INTO {} VALUES ({}, 0, 'n{}');", kTables[t], id, id);
      } else if (op < 8) {
        int id = ids[random() % ids.size()];
        sql += fmt::format("UPDATE {} SET v = v + 1, note = note || 'u' WHERE id = {};", kTables[t],
                           id);
      } else {
        size_t i = random() % ids.size();
        sql += fmt::format("DELETE FROM {} WHERE id = {};", kTables[t], ids[i]);
        ids.erase(ids.begin() + static_cast<long>(i));
      }
    }
    sql += "COMMIT;";
    PGresult* result = PQexec(conn, sql.c_str());
    BOOST_REQUIRE_MESSAGE(PQresultStatus(result) == PGRES_COMMAND_OK, PQresultErrorMessage(result));
    PQclear(result);
    ++committed;
  }
  PQfinish(conn);
  return committed;
}

BOOST_AUTO_TEST_CASE(kill_9_during_writes_loses_and_duplicates_nothing) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE crash");
  for (const char* t : kTables) {
    pg->Exec(fmt::format("CREATE TABLE {} (id int PRIMARY KEY, v int, note text)", t), "crash");
  }
  auto config = WritePgFileConfig(dir.path(), *pg, "crash", "cr", "[\"public.t*\"]");
  // Small segments, so that crashes also land around rotations.
  EditConfig(config, "rotate_bytes: 1048576", "rotate_bytes: 16384");
  auto start_agent = [&](int n) {
    return std::make_unique<AgentProcess>(
        std::vector<std::string>{"run", "--config", config.string()},
        dir.path() / fmt::format("agent{}.log", n));
  };
  auto agent = start_agent(0);
  BOOST_REQUIRE(WaitFor(
      [&] {
        return pg->QueryValue("SELECT count(*) FROM pg_replication_slots WHERE active") == "1";
      },
      seconds(30)));

  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer([&] { committed = RunWorkload(*pg, stop, 42); });
  std::mt19937 random(7);
  const int kKills = 6;
  for (int k = 1; k <= kKills; ++k) {
    std::this_thread::sleep_for(milliseconds(400 + random() % 1600));
    agent->Signal(SIGKILL);
    BOOST_REQUIRE(agent->Wait(seconds(10)).value_or(-1) == 128 + SIGKILL);
    agent = start_agent(k);
  }
  std::this_thread::sleep_for(seconds(1));
  stop.store(true);
  writer.join();
  BOOST_TEST_MESSAGE("transactions committed: " << committed);
  BOOST_TEST(committed > 100);

  // A marker committed last: once it is in the files, everything before it is too.
  pg->Exec("INSERT INTO t1 VALUES (-1, -1, 'marker')", "crash");
  auto t1_dir = TopicDir(dir.path(), "cr.public.t1");
  const auto caught_up = WaitForMarker(t1_dir, -1, seconds(60));
  BOOST_REQUIRE_MESSAGE(caught_up, LogOf{*agent});
  BOOST_TEST_MESSAGE("caught up in " << caught_up->count() << " ms");
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);

  for (const char* t : kTables) {
    auto events = ReadTopicEvents(TopicDir(dir.path(), fmt::format("cr.public.{}", t)));
    BOOST_TEST(FirstOutOfOrder(events) == -1, "duplicate or reordered event in " << t);
    auto replayed = ReplayEvents(events, "id");
    auto rows = pg->Query(fmt::format("SELECT id, v, note FROM {} ORDER BY id", t), "crash");
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

}  // namespace
}  // namespace tributary::testing
