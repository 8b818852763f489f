#define BOOST_TEST_MODULE mysql_snapshot_test
#include <fmt/format.h>
#include <mysql.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <random>
#include <set>
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

// Random inserts, updates and deletes on snap.big (ids 1..rows exist at the start) until told
// to stop. Returns the transactions committed.
int RunWrites(const MariaDbServer& server, int rows, const std::atomic<bool>& stop, unsigned seed) {
  std::mt19937 random(seed);
  MYSQL* conn = mysql_init(nullptr);
  if (mysql_real_connect(conn, "127.0.0.1", "app", "app-pass", nullptr,
                         static_cast<unsigned>(server.port()), nullptr, 0) == nullptr) {
    mysql_close(conn);
    return 0;
  }
  int next_id = rows + 1;
  int committed = 0;
  while (!stop.load()) {
    const int op = static_cast<int>(random() % 10);
    const int id = 1 + static_cast<int>(random() % static_cast<unsigned>(next_id - 1));
    std::string sql;
    if (op < 4) {
      sql = fmt::format("INSERT INTO snap.big VALUES ({0}, 0, 'n{0}')", next_id++);
    } else if (op < 8) {
      sql =
          fmt::format("UPDATE snap.big SET v = v + 1, note = CONCAT(note, 'u') WHERE id = {}", id);
    } else {
      sql = fmt::format("DELETE FROM snap.big WHERE id = {}", id);
    }
    if (mysql_real_query(conn, sql.data(), sql.size()) != 0) break;
    ++committed;
  }
  mysql_close(conn);
  return committed;
}

struct Fixture {
  Fixture() : server(MariaDbServer::Start()) {
    server->Exec(
        "CREATE DATABASE snap;"
        "CREATE TABLE snap.big (id INT PRIMARY KEY, v INT, note TEXT);"
        "CREATE TABLE snap.keyless (id INT, note VARCHAR(20))");
  }

  void Fill(int rows) const {
    server->Exec(fmt::format(
        "INSERT INTO snap.big SELECT seq, seq % 7, CONCAT('n', seq) FROM snap.seq_1_to_{}", rows));
    server->Exec("INSERT INTO snap.keyless SELECT seq, CONCAT('k', seq) FROM snap.seq_1_to_300");
  }

  std::filesystem::path Config(size_t chunk_rows) const {
    auto config = WriteMysqlFileConfig(dir.path(), *server, "sn", R"(["snap.*"])");
    EditConfig(config, "snapshot: never",
               fmt::format("snapshot: initial\n    snapshot_chunk_rows: {}", chunk_rows));
    return config;
  }

  std::unique_ptr<AgentProcess> Start(const std::filesystem::path& config, int n) const {
    auto agent =
        std::make_unique<AgentProcess>(std::vector<std::string>{"run", "--config", config.string()},
                                       dir.path() / fmt::format("agent{}.log", n));
    bool started = WaitFor(
        [&] {
          return agent->Log().find("mysql: Snapshot ") != std::string::npos || !agent->running();
        },
        seconds(30));
    BOOST_REQUIRE_MESSAGE(started && agent->running(), agent->Log());
    return agent;
  }

  // A marker row committed last: once it is in the files, everything before it is too.
  void CatchUp(AgentProcess& agent) const {
    server->Exec("INSERT INTO snap.big VALUES (-1, -1, 'marker')");
    const auto topic = TopicDir(dir.path(), "sn.snap.big");
    bool caught_up = WaitFor(
        [&] {
          const auto last = LastTopicEvent(topic);
          return last && (*last)["after"].is_object() && (*last)["after"]["id"] == -1;
        },
        seconds(60));
    BOOST_REQUIRE_MESSAGE(caught_up, agent.Log());
  }

  // Catches up, stops the agent, and checks that both topics are in change order and replay to
  // the tables. Returns the events of big and of keyless.
  std::pair<std::vector<json>, std::vector<json>> StopAndCheck(AgentProcess& agent) const {
    CatchUp(agent);
    agent.Signal(SIGTERM);
    BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
    auto big = ReadTopicEvents(TopicDir(dir.path(), "sn.snap.big"));
    auto keyless = ReadTopicEvents(TopicDir(dir.path(), "sn.snap.keyless"));
    BOOST_TEST(FirstOutOfOrder(big) == -1);
    BOOST_TEST(FirstOutOfOrder(keyless) == -1);
    ExpectReplayMatches(big, "big");
    ExpectReplayMatches(keyless, "keyless");
    return {std::move(big), std::move(keyless)};
  }

  void ExpectReplayMatches(const std::vector<json>& events, const std::string& table) const {
    auto replayed = ReplayEvents(events, "id");
    auto rows = server->Query(fmt::format("SELECT id, note FROM snap.{} ORDER BY id", table));
    BOOST_TEST(replayed.size() == rows.size(),
               table << ": " << replayed.size() << " replayed, " << rows.size() << " in the table");
    size_t mismatches = 0;
    std::string first;
    for (const auto& row : rows) {
      auto it = replayed.find(row[0]);
      if (it == replayed.end() || it->second["note"] != row[1]) {
        if (mismatches++ < 10) first += row[0] + " ";
      }
    }
    BOOST_TEST(mismatches == 0u,
               table << ": " << mismatches << " rows differ, first ids " << first);
  }

  std::unique_ptr<MariaDbServer> server;
  TempDir dir;
};

size_t CountSnapshotRows(const std::vector<json>& events, const std::string& mark) {
  return static_cast<size_t>(std::count_if(events.begin(), events.end(), [&](const json& e) {
    return e["op"] == "r" && e["source"]["snapshot"] == mark;
  }));
}

size_t SnapshotRows(const std::vector<json>& events) {
  return CountSnapshotRows(events, "first") + CountSnapshotRows(events, "true") +
         CountSnapshotRows(events, "last");
}

// The number after `key=` in the last log line that has `line`.
uint64_t LoggedNumber(const std::string& log, const std::string& line, const std::string& key) {
  const size_t at = log.rfind(line);
  if (at == std::string::npos) return 0;
  const size_t k = log.find(key + "=", at);
  if (k == std::string::npos) return 0;
  return std::stoull(log.substr(k + key.size() + 1));
}

BOOST_FIXTURE_TEST_CASE(initial_snapshot_under_writes_replays_exactly, Fixture) {
  const int kRows = 20000;
  Fill(kRows);
  auto config = Config(500);
  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer([&] { committed = RunWrites(*server, kRows, stop, 1); });
  std::this_thread::sleep_for(milliseconds(300));
  const auto started = std::chrono::steady_clock::now();
  auto agent = Start(config, 0);
  bool done =
      WaitFor([&] { return agent->Log().find("mysql: Snapshot finished") != std::string::npos; },
              seconds(60));
  const auto snapshot_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count();
  std::this_thread::sleep_for(milliseconds(500));
  stop.store(true);
  writer.join();
  BOOST_REQUIRE_MESSAGE(done, agent->Log());
  BOOST_TEST_MESSAGE("writes committed: " << committed << "; snapshot took about " << snapshot_ms
                                          << " ms");
  BOOST_TEST(committed > 100);
  auto [big, keyless] = StopAndCheck(*agent);
  // Tables are read in name order: big first (with the first row), keyless last.
  BOOST_TEST(CountSnapshotRows(big, "first") == 1u);
  BOOST_TEST(CountSnapshotRows(big, "last") == 0u);
  BOOST_TEST(CountSnapshotRows(keyless, "first") == 0u);
  BOOST_TEST(CountSnapshotRows(keyless, "last") == 1u);
  BOOST_TEST(keyless.back()["source"]["snapshot"] == "last");
  BOOST_TEST(big.front()["source"]["snapshot"] == "first");
  BOOST_TEST(SnapshotRows(keyless) == 300u);
  // The snapshot holds the rows of one moment: at least the untouched initial rows, and no row
  // twice.
  const size_t big_rows = SnapshotRows(big);
  std::set<std::string> ids;
  for (const auto& e : big) {
    if (e["op"] == "r") ids.insert(e["after"]["id"].dump());
  }
  BOOST_TEST(ids.size() == big_rows);
  BOOST_TEST(big_rows > static_cast<size_t>(kRows) / 2);
  BOOST_TEST(agent->Log().find("without primary key whole") != std::string::npos);
  // Streamed changes follow the snapshot rows.
  size_t first_change = big.size();
  for (size_t i = 0; i < big.size(); ++i) {
    if (big[i]["op"] != "r") {
      first_change = std::min(first_change, i);
    } else {
      BOOST_TEST(i < first_change);
    }
  }
  BOOST_TEST(first_change < big.size());
}

BOOST_FIXTURE_TEST_CASE(kill_9_mid_snapshot_resumes_at_next_chunk, Fixture) {
  // The kill lands at a checkpoint a fifth or more into the table, so that resuming there reads
  // measurably less than the whole table. Checkpoints come with the file sink's flushes, every
  // 20 ms here: an optimized build reads this table in about 120 ms, so with the usual 100 ms
  // the first checkpoint often came after the snapshot had finished (5 kills of 10 too late).
  const int kRows = 40000;
  Fill(kRows);
  auto config = Config(100);
  EditConfig(config, "flush_interval_ms: 100", "flush_interval_ms: 20");
  std::atomic<bool> stop{false};
  std::thread writer([&] { RunWrites(*server, kRows, stop, 2); });
  auto agent = Start(config, 0);
  const auto checkpoint = dir.path() / "state" / "sn" / "checkpoint.json";
  uint64_t rows_at_kill = 0;
  bool progressed = WaitFor(
      [&] {
        if (!std::filesystem::exists(checkpoint)) return false;
        json saved = json::parse(ReadFile(checkpoint), nullptr, false);
        if (!saved.is_object()) return false;
        // Until the first checkpoint the file holds the source's lineage alone.
        std::string position = saved.value("position", "");
        size_t at = position.find("|snapshot=");
        if (at == std::string::npos) return false;
        rows_at_kill = std::stoull(position.substr(at + 10));
        return rows_at_kill >= kRows / 5;
      },
      seconds(60));
  BOOST_REQUIRE_MESSAGE(progressed, agent->Log());
  agent->Signal(SIGKILL);
  BOOST_REQUIRE(agent->Wait(seconds(10)).value_or(-1) == 128 + SIGKILL);
  BOOST_TEST(agent->Log().find("Snapshot finished") == std::string::npos);

  agent = Start(config, 1);
  bool done =
      WaitFor([&] { return agent->Log().find("mysql: Snapshot finished") != std::string::npos; },
              seconds(60));
  stop.store(true);
  writer.join();
  BOOST_REQUIRE_MESSAGE(done, agent->Log());
  const std::string log = agent->Log();
  BOOST_TEST(log.find("mysql: Snapshot resumed") != std::string::npos);
  BOOST_TEST(log.find("mysql: Snapshot started") == std::string::npos);
  const uint64_t resumed_at = LoggedNumber(log, "mysql: Snapshot resumed", "rows_done");
  const uint64_t finished_at = LoggedNumber(log, "mysql: Snapshot finished", "rows");
  BOOST_TEST(resumed_at >= rows_at_kill);
  const uint64_t reread = finished_at - resumed_at;
  BOOST_TEST_MESSAGE("checkpointed at the kill: " << rows_at_kill << "; resumed at " << resumed_at
                                                  << "; read after the restart: " << reread
                                                  << " of about " << kRows);
  CatchUp(*agent);
  // A full re-read would read every row the table holds; resuming skips the checkpointed ones.
  const auto table_rows = std::stoull(server->QueryValue("SELECT count(*) FROM snap.big"));
  BOOST_TEST(reread + rows_at_kill / 2 < table_rows, "read " << reread << " of " << table_rows);
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);

  auto big = ReadTopicEvents(TopicDir(dir.path(), "sn.snap.big"));
  // The sink drops what it already holds, by position: none of it may be a row read anew.
  BOOST_TEST(FirstOutOfOrder(big) == -1);
  ExpectReplayMatches(big, "big");
  ExpectReplayMatches(ReadTopicEvents(TopicDir(dir.path(), "sn.snap.keyless")), "keyless");
}

// A table rebuilt by DDL while the snapshot reads another one: the snapshot's consistent read of
// it then fails (MariaDB: "Table definition has changed, please retry transaction"), and the
// snapshot resumes from its last checkpoint with a fresh consistent view and the new definition,
// the stream still starting where the first view did. Nothing is lost.
BOOST_FIXTURE_TEST_CASE(ddl_during_the_snapshot_is_retried_and_loses_nothing, Fixture) {
  // Small chunks: big's snapshot takes many round trips, long past the ALTER below.
  Fill(30000);
  auto config = Config(50);
  auto agent = Start(config, 0);
  // Tables are read in name order: big (for seconds), then keyless.
  server->Exec(
      "ALTER TABLE snap.keyless ADD COLUMN extra INT NOT NULL DEFAULT 7, ALGORITHM=COPY;"
      "INSERT INTO snap.keyless VALUES (301, 'k301', 8)");
  bool done =
      WaitFor([&] { return agent->Log().find("mysql: Snapshot finished") != std::string::npos; },
              seconds(120));
  BOOST_REQUIRE_MESSAGE(done, agent->Log());
  const std::string log = agent->Log();
  BOOST_TEST(log.find("Table definition has changed") != std::string::npos, log);
  BOOST_TEST(log.find("mysql: Snapshot resumed") != std::string::npos, log);
  auto [big, keyless] = StopAndCheck(*agent);
  // keyless was read after the DDL, in the new shape; the insert is streamed again after it.
  BOOST_TEST(SnapshotRows(keyless) == 301u);
  for (const json& event : keyless) {
    if (event["op"] == "r") BOOST_TEST(event["after"].contains("extra"));
  }
  BOOST_TEST(keyless.back()["op"] == "c");
  BOOST_TEST(keyless.back()["after"]["extra"] == 8);
}

// Every type the stream decodes: a snapshot row must be the same JSON as the binlog's row of the
// same values, under the same schema version.
BOOST_AUTO_TEST_CASE(snapshot_values_match_streamed_values) {
  // Not UTC, so that TIMESTAMPs must be converted.
  auto server = MariaDbServer::Start({"--default-time-zone=+05:00"});
  TempDir dir;
  server->Exec("CREATE DATABASE shop");
  server->Exec(kMysqlTypesTable);
  server->Exec(R"(SET time_zone = '+00:00'; SET sql_mode = '';
INSERT INTO shop.types VALUES
 (1, -128, 255, -32768, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808,
  18446744073709551615, '-12345678901234567890.0123456789', 99999, 1.5, -2.25e-300, b'1',
  b'1010101010', 2155, '2024-01-31', '-838:59:59', '12:34:56.789', '-00:00:01.000001',
  '2024-01-31 13:45:00', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07',
  '1970-01-01 00:00:01.123', 'ab', 'héllo 🌍 "q" \\ \n\t', _latin1 x'636166e980',
  REPEAT('x', 70000), 'ok', x'00ff0000', REPEAT(x'ab', 300), x'deadbeef', 'medium', 'a,c',
  '{"k": [1, 2.5, "x"], "n": null}', ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326),
  '01234567-89ab-4def-8123-456789abcdef', '2001:db8::1'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 127, 0, 0, 0, 0, 0, 0, 0, 0, '0.0000000001', -99999, -3.25, 1e300, b'0', b'0', 0,
  '0000-00-00', '838:59:59', '-12:00:00.5', '00:00:00', '0000-00-00 00:00:00',
  '2000-02-29 12:00:00.000001', '2000-01-01 00:00:00', '1970-01-01 00:00:01', '', '', 'Ææ', '',
  '', '', '', '', '', '', '[]', ST_GeomFromText('POINT(0 0)'),
  '00000000-0000-0000-0000-000000000000', '::'))");
  auto config = WriteMysqlFileConfig(dir.path(), *server, "ty", R"(["shop.*"])");
  EditConfig(config, "snapshot: never", "snapshot: initial");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  bool done = WaitFor(
      [&] { return agent.Log().find("mysql: Streaming") != std::string::npos || !agent.running(); },
      seconds(30));
  BOOST_REQUIRE_MESSAGE(done && agent.running(), agent.Log());
  const std::string columns = server->QueryValue(
      "SELECT GROUP_CONCAT(column_name ORDER BY ordinal_position) FROM information_schema.columns "
      "WHERE table_schema = 'shop' AND table_name = 'types' AND column_name <> 'id'");
  server->Exec(
      fmt::format("SET sql_mode = ''; INSERT INTO shop.types SELECT id + 10, {} FROM "
                  "shop.types WHERE id < 10 ORDER BY id",
                  columns));
  const auto topic = TopicDir(dir.path(), "ty.shop.types");
  std::vector<json> events;
  bool streamed = WaitFor(
      [&] {
        events = ReadTopicEvents(topic);
        return events.size() >= 6;
      },
      seconds(30));
  BOOST_REQUIRE_MESSAGE(streamed, agent.Log());
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
  BOOST_REQUIRE(events.size() == 6u);
  BOOST_TEST(events[0]["source"]["snapshot"] == "first");
  BOOST_TEST(events[2]["source"]["snapshot"] == "last");
  for (size_t i = 0; i < 3; ++i) {
    const json& read = events[i];
    const json& created = events[i + 3];
    BOOST_TEST(read["op"] == "r");
    BOOST_TEST(created["op"] == "c");
    BOOST_TEST(read["source"]["schema_version"] == created["source"]["schema_version"]);
    BOOST_TEST(created["after"]["id"].get<int>() == read["after"]["id"].get<int>() + 10);
    for (const auto& [column, value] : created["after"].items()) {
      if (column == "id") continue;
      BOOST_TEST(read["after"][column] == value,
                 "row " << read["after"]["id"] << " column " << column << ": snapshot "
                        << read["after"][column].dump().substr(0, 80) << ", stream "
                        << value.dump().substr(0, 80));
    }
  }
}

}  // namespace
}  // namespace tributary::testing
