#define BOOST_TEST_MODULE pg_stream_test
#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <thread>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/pg_agent.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// One PostgreSQL for the whole file; each test uses its own database.
struct ServerFixture {
  ServerFixture() { server = PgServer::Start(); }
  ~ServerFixture() { server.reset(); }
  static inline std::unique_ptr<PgServer> server;
};
BOOST_TEST_GLOBAL_FIXTURE(ServerFixture);

PgServer& Pg() { return *ServerFixture::server; }

std::vector<json> WaitForEvents(const std::filesystem::path& topic, size_t count,
                                AgentProcess& agent) {
  std::vector<json> events;
  bool done = WaitFor(
      [&] {
        events = ReadTopicEvents(topic);
        return events.size() >= count;
      },
      seconds(30));
  BOOST_REQUIRE_MESSAGE(done, "expected " << count << " events, got " << events.size() << "\n"
                                          << agent.Log());
  return events;
}

// Waits up to 20 s for `slot`'s confirmed_flush_lsn to reach `lsn`.
bool WaitForSlotAt(const std::string& slot, const std::string& lsn) {
  return WaitFor(
      [&] {
        return Pg().QueryValue("SELECT confirmed_flush_lsn >= '" + lsn +
                               "' FROM pg_replication_slots WHERE slot_name = '" + slot + "'") ==
               "t";
      },
      seconds(20));
}

std::string Checkpoint(const std::filesystem::path& dir, const std::string& source) {
  return json::parse(ReadFile(dir / "state" / source / "checkpoint.json"))["position"];
}

BOOST_AUTO_TEST_CASE(inserts_updates_deletes_and_truncate_become_events) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE crud");
  Pg().Exec(
      "CREATE TABLE items (id int PRIMARY KEY, name text, qty int);"
      "CREATE TABLE not_captured (id int PRIMARY KEY)",
      "crud");
  auto config = WritePgFileConfig(dir.path(), Pg(), "crud", "shop", "[public.items]");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_shop");

  Pg().Exec(
      "INSERT INTO items VALUES (1, 'apple', 3), (2, 'pear', NULL);"
      "INSERT INTO not_captured VALUES (1);"
      "BEGIN; INSERT INTO items VALUES (3, 'fig', 7); UPDATE items SET qty = 4 WHERE id = 1; "
      "COMMIT;"
      "UPDATE items SET id = 20 WHERE id = 2;"
      "DELETE FROM items WHERE id = 3;"
      "TRUNCATE items;",
      "crud");
  auto topic = TopicDir(dir.path(), "shop.public.items");
  auto events = WaitForEvents(topic, 8, agent);
  BOOST_TEST(events.size() == 8u);
  std::string ops;
  for (const auto& e : events) ops += e["op"].get<std::string>();
  BOOST_TEST(ops ==
             "ccc"
             "u"
             "dc"
             "d"
             "t");
  BOOST_TEST(FirstOutOfOrder(events) == -1);

  const json& insert = events[0];
  BOOST_TEST(insert["before"].is_null());
  BOOST_TEST(insert["after"] == json::parse(R"({"id":1,"name":"apple","qty":3})"));
  BOOST_TEST(events[1]["after"]["qty"].is_null());
  const json& source = insert["source"];
  BOOST_TEST(source["connector"] == "postgresql");
  BOOST_TEST(source["name"] == "shop");
  BOOST_TEST(source["db"] == "crud");
  BOOST_TEST(source["schema"] == "public");
  BOOST_TEST(source["table"] == "items");
  BOOST_TEST(source["snapshot"] == "false");
  BOOST_TEST(source["schema_version"] == 1);
  BOOST_TEST(source["txId"].get<int64_t>() > 0);
  BOOST_TEST(source["lsn"].get<int64_t>() > 0);
  BOOST_TEST(source["ts_ms"].get<int64_t>() > 1700000000000);
  BOOST_TEST(insert["ts_ms"].get<int64_t>() >= source["ts_ms"].get<int64_t>());
  BOOST_TEST(insert.contains("transaction"));
  // source.position: commit LSN / change LSN / sequence in the transaction, fixed-width hex.
  std::string position = source["position"];
  BOOST_TEST_REQUIRE(position.size() == 42u);
  BOOST_TEST((position[16] == '/' && position[33] == '/'));
  BOOST_TEST(std::stoull(position.substr(17, 16), nullptr, 16) == source["lsn"].get<uint64_t>());
  BOOST_TEST(position.substr(34) == "00000000");
  BOOST_TEST(events[1]["source"]["position"].get<std::string>().substr(34) == "00000001");
  // Both rows of the first statement belong to one transaction.
  BOOST_TEST(events[0]["source"]["txId"] == events[1]["source"]["txId"]);

  // UPDATE that keeps the key: no old image under REPLICA IDENTITY DEFAULT.
  BOOST_TEST(events[3]["before"].is_null());
  BOOST_TEST(events[3]["after"]["qty"] == 4);
  // UPDATE of the key, as Debezium writes it: a delete of the old key (non-key columns null
  // under REPLICA IDENTITY DEFAULT), then a create of the new row, right after it.
  BOOST_TEST(events[4]["before"]["id"] == 2);
  BOOST_TEST(events[4]["after"].is_null());
  BOOST_TEST(events[5]["before"].is_null());
  BOOST_TEST(events[5]["after"] == json::parse(R"({"id":20,"name":"pear","qty":null})"));
  BOOST_TEST(events[5]["source"]["position"] ==
             events[4]["source"]["position"].get<std::string>() + "+");
  BOOST_TEST(events[6]["before"]["id"] == 3);
  BOOST_TEST(events[6]["after"].is_null());
  BOOST_TEST(events[7]["before"].is_null());
  BOOST_TEST(events[7]["after"].is_null());
  BOOST_TEST(!std::filesystem::exists(TopicDir(dir.path(), "shop.public.not_captured")));

  agent.Signal(SIGTERM);
  auto code = agent.Wait(seconds(15));
  BOOST_REQUIRE_MESSAGE(code.has_value(), "agent did not stop on SIGTERM");
  BOOST_TEST(*code == 0, agent.Log());
  // The checkpoint is durable and the slot was told exactly that much, no more.
  std::string checkpoint = Checkpoint(dir.path(), "shop");
  BOOST_TEST(Pg().QueryValue("SELECT confirmed_flush_lsn FROM pg_replication_slots "
                             "WHERE slot_name = 'tributary_shop'") == checkpoint);
  BOOST_TEST(agent.Log().find("apple") == std::string::npos, "row values must not be logged");

  // A restart delivers nothing twice and picks up what changed while it was down.
  Pg().Exec("INSERT INTO items VALUES (5, 'kiwi', 1)", "crud");
  AgentProcess again({"run", "--config", config.string()}, dir.path() / "agent2.log");
  events = WaitForEvents(topic, 9, again);
  again.Signal(SIGTERM);
  BOOST_TEST(again.Wait(seconds(15)).value_or(-1) == 0);
  events = ReadTopicEvents(topic);
  BOOST_TEST(events.size() == 9u);
  BOOST_TEST(events.back()["after"]["name"] == "kiwi");
}

BOOST_AUTO_TEST_CASE(every_mapped_type_round_trips) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE types");
  Pg().Exec(
      "CREATE TYPE mood AS ENUM ('sad', 'happy');"
      "CREATE TABLE t (id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4, "
      "f8 float8, n numeric(20,6), nu numeric, tx text, vc varchar(10), ch char(3), "
      "by bytea, d date, tm time, ts timestamp, tz timestamptz, u uuid, j json, jb jsonb, "
      "ai int4[], at text[], m mood, am mood[], big text, ip inet);"
      // Stored out of line uncompressed, so an update elsewhere sends it as unchanged TOAST.
      "ALTER TABLE t ALTER big SET STORAGE EXTERNAL",
      "types");
  auto config = WritePgFileConfig(dir.path(), Pg(), "types", "ty", "[\"public.*\"]");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_ty");
  Pg().Exec(
      "INSERT INTO t VALUES (1, true, -32768, 2147483647, 9223372036854775807, 1.5, "
      "0.1, 12345678901234.123456, 'NaN', 'quote \" and \\ and \n newline', 'héllo', 'ab', "
      "'\\x00ff10', '2024-02-29', '13:45:01.5', '2024-02-29 13:45:01.123456', "
      "'2024-02-29 13:45:01.5+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
      "'{\"a\": [1, 2]}', '{\"b\": null}', '{1,NULL,3}', '{\"x y\",z}', 'happy', "
      "'{sad,happy}', repeat(md5('x'), 400), '10.0.0.1');"
      "INSERT INTO t (id) VALUES (2);"
      "UPDATE t SET i4 = 5 WHERE id = 1;",
      "types");
  auto events = WaitForEvents(TopicDir(dir.path(), "ty.public.t"), 3, agent);
  const json& a = events[0]["after"];
  BOOST_TEST(a["b"] == true);
  BOOST_TEST(a["i2"] == -32768);
  BOOST_TEST(a["i4"] == 2147483647);
  BOOST_TEST(a["i8"].dump() == "9223372036854775807");
  BOOST_TEST(a["f4"] == 1.5);
  BOOST_TEST(a["f8"].dump() == "0.1");
  BOOST_TEST(a["n"] == "12345678901234.123456");
  BOOST_TEST(a["nu"] == "NaN");
  BOOST_TEST(a["tx"] == "quote \" and \\ and \n newline");
  BOOST_TEST(a["vc"] == "héllo");
  BOOST_TEST(a["ch"] == "ab ");
  BOOST_TEST(a["by"] == "AP8Q");
  BOOST_TEST(a["d"] == "2024-02-29");
  BOOST_TEST(a["tm"] == "13:45:01.500000");
  BOOST_TEST(a["ts"] == "2024-02-29T13:45:01.123456");
  BOOST_TEST(a["tz"] == "2024-02-29T11:45:01.500000Z");
  BOOST_TEST(a["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  BOOST_TEST(a["j"] == json::parse(R"({"a": [1, 2]})"));
  BOOST_TEST(a["jb"] == json::parse(R"({"b": null})"));
  BOOST_TEST(a["ai"] == json::parse("[1,null,3]"));
  BOOST_TEST(a["at"] == json::parse(R"(["x y","z"])"));
  BOOST_TEST(a["m"] == "happy");
  BOOST_TEST(a["am"] == json::parse(R"(["sad","happy"])"));
  BOOST_TEST(a["big"].get<std::string>().size() == 12800u);
  BOOST_TEST(a["ip"] == "10.0.0.1");  // no mapping yet: its text form, never dropped

  const json& nulls = events[1]["after"];
  for (const auto& [column, value] : nulls.items()) {
    if (column != "id") BOOST_TEST(value.is_null(), column);
  }
  // The update did not touch the TOASTed column: marked as unavailable, never null.
  BOOST_TEST(events[2]["after"]["big"] == "__debezium_unavailable_value");
  BOOST_TEST(events[2]["after"]["i4"] == 5);
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
}

// Before images as each REPLICA IDENTITY allows, and a TOASTed value an update did not touch:
// a placeholder under DEFAULT (PostgreSQL does not send it), the real value under FULL.
BOOST_AUTO_TEST_CASE(row_images_follow_the_replica_identity_and_toast_is_never_stale) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE images");
  Pg().Exec(
      "CREATE TABLE dflt (id int PRIMARY KEY, big text, n int);"
      "CREATE TABLE full_t (id int PRIMARY KEY, big text, n int);"
      "ALTER TABLE full_t REPLICA IDENTITY FULL;"
      "CREATE TABLE idx (id int PRIMARY KEY, code text NOT NULL, n int);"
      "CREATE UNIQUE INDEX idx_code ON idx (code);"
      "ALTER TABLE idx REPLICA IDENTITY USING INDEX idx_code;"
      // Out of line and uncompressed: TOASTed for sure.
      "ALTER TABLE dflt ALTER COLUMN big SET STORAGE EXTERNAL;"
      "ALTER TABLE full_t ALTER COLUMN big SET STORAGE EXTERNAL;",
      "images");
  auto config = WritePgFileConfig(dir.path(), Pg(), "images", "im", "[public.*]");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_im");
  const std::string big_sql =
      "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)";
  Pg().Exec(
      fmt::format("INSERT INTO dflt VALUES (1, {0}, 0); INSERT INTO full_t VALUES (1, {0}, 0);"
                  "INSERT INTO idx VALUES (1, 'a', 0);"
                  "UPDATE dflt SET n = 1; UPDATE full_t SET n = 1;"
                  "UPDATE idx SET n = 1; UPDATE idx SET code = 'b';"
                  "DELETE FROM dflt; DELETE FROM full_t; DELETE FROM idx;",
                  big_sql),
      "images");
  const std::string big = Pg().QueryValue("SELECT " + big_sql, "images");
  BOOST_REQUIRE(big.size() == 12800u);
  auto dflt = WaitForEvents(TopicDir(dir.path(), "im.public.dflt"), 3, agent);
  auto full = WaitForEvents(TopicDir(dir.path(), "im.public.full_t"), 3, agent);
  auto idx = WaitForEvents(TopicDir(dir.path(), "im.public.idx"), 5, agent);
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);

  // DEFAULT: no old image on an update that keeps the key; the untouched TOAST value is the
  // placeholder, never null and never an old value; a delete carries the key only.
  BOOST_REQUIRE(dflt.size() == 3u);
  BOOST_TEST(dflt[0]["after"]["big"] == big);
  BOOST_TEST(dflt[1]["before"].is_null());
  BOOST_TEST(dflt[1]["after"]["big"] == "__debezium_unavailable_value");
  BOOST_TEST(dflt[1]["after"]["n"] == 1);
  BOOST_TEST(dflt[2]["before"] == json::parse(R"({"id":1,"big":null,"n":null})"));
  // FULL: the whole old row, and the untouched TOAST value filled in from it.
  BOOST_REQUIRE(full.size() == 3u);
  BOOST_TEST(full[1]["before"]["n"] == 0);
  BOOST_TEST(full[1]["before"]["big"] == big);
  BOOST_TEST(full[1]["after"]["big"] == big);
  BOOST_TEST(full[2]["before"]["big"] == big);
  BOOST_TEST(full[2]["before"]["n"] == 1);
  // USING INDEX on (code): the key is code; an update of code is a delete and a create.
  std::string ops;
  for (const json& event : idx) ops += event["op"].get<std::string>();
  BOOST_TEST(ops == "cudcd");
  BOOST_TEST(idx[1]["before"].is_null());
  BOOST_TEST(idx[2]["before"]["code"] == "a");
  BOOST_TEST(idx[3]["after"] == json::parse(R"({"id":1,"code":"b","n":1})"));
  BOOST_TEST(idx[4]["before"] == json::parse(R"({"id":null,"code":"b","n":null})"));
}

BOOST_AUTO_TEST_CASE(slot_ahead_of_checkpoint_or_gone_stops_with_65) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE ahead");
  Pg().Exec("CREATE TABLE a (id int PRIMARY KEY)", "ahead");
  auto config = WritePgFileConfig(dir.path(), Pg(), "ahead", "ah", "[public.a]");
  {
    AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
    WaitForSlotActive(Pg(), agent, "tributary_ah");
    Pg().Exec("INSERT INTO a VALUES (1)", "ahead");
    WaitForEvents(TopicDir(dir.path(), "ah.public.a"), 1, agent);
    agent.Signal(SIGTERM);
    BOOST_REQUIRE(agent.Wait(seconds(15)).value_or(-1) == 0);
    BOOST_REQUIRE_MESSAGE(std::filesystem::exists(dir.path() / "state/ah/checkpoint.json"),
                          agent.Log());
  }
  // Someone else consumes the slot past our checkpoint while the agent is down.
  // (The test server commits asynchronously; the slot advances only over flushed WAL.)
  Pg().Exec("SET synchronous_commit = on; INSERT INTO a VALUES (2)", "ahead");
  Pg().Exec("SELECT pg_replication_slot_advance('tributary_ah', pg_current_wal_lsn())", "ahead");
  BOOST_REQUIRE(Pg().QueryValue("SELECT confirmed_flush_lsn FROM pg_replication_slots "
                                "WHERE slot_name = 'tributary_ah'") !=
                Checkpoint(dir.path(), "ah"));
  int code = RunAgent({"run", "--config", config.string()}, dir.path() / "ahead.log");
  BOOST_TEST(code == 65);
  std::string log = ReadFile(dir.path() / "ahead.log");
  BOOST_TEST(log.find("ahead of the checkpoint") != std::string::npos, log);
  BOOST_TEST(ReadTopicEvents(TopicDir(dir.path(), "ah.public.a")).size() == 1u);

  // A checkpoint from beyond the server's WAL: another server, or one restored from a backup.
  std::string saved = ReadFile(dir.path() / "state/ah/checkpoint.json");
  std::ofstream(dir.path() / "state/ah/checkpoint.json", std::ios::trunc)
      << R"({"source":"ah","position":"FF/0","saved_at":"2026-01-01T00:00:00.000Z"})";
  code = RunAgent({"run", "--config", config.string()}, dir.path() / "behind.log");
  BOOST_TEST(code == 65);
  log = ReadFile(dir.path() / "behind.log");
  BOOST_TEST(log.find("before the checkpoint FF/0") != std::string::npos, log);
  std::ofstream(dir.path() / "state/ah/checkpoint.json", std::ios::trunc) << saved;

  Pg().Exec("SELECT pg_drop_replication_slot('tributary_ah')", "ahead");
  code = RunAgent({"run", "--config", config.string()}, dir.path() / "gone.log");
  BOOST_TEST(code == 65);
  log = ReadFile(dir.path() / "gone.log");
  BOOST_TEST(log.find("is gone") != std::string::npos, log);
}

BOOST_AUTO_TEST_CASE(a_dropped_replication_connection_is_resumed_without_loss) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE drop_conn");
  Pg().Exec("CREATE TABLE d (id int PRIMARY KEY)", "drop_conn");
  auto config = WritePgFileConfig(dir.path(), Pg(), "drop_conn", "dc", "[public.d]");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_dc");
  auto topic = TopicDir(dir.path(), "dc.public.d");
  for (int round = 0; round < 3; ++round) {
    Pg().Exec(fmt::format("INSERT INTO d SELECT g FROM generate_series({}, {}) g", round * 100 + 1,
                          round * 100 + 100),
              "drop_conn");
    WaitForEvents(topic, static_cast<size_t>(round * 100 + 50), agent);
    // The server drops the walsender, as on a failover or an admin's pg_terminate_backend.
    Pg().Exec(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
        "WHERE slot_name = 'tributary_dc' AND active",
        "drop_conn");
  }
  auto events = WaitForEvents(topic, 300, agent);
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
  events = ReadTopicEvents(topic);
  BOOST_TEST(events.size() == 300u);
  BOOST_TEST(FirstOutOfOrder(events) == -1);
  BOOST_TEST(ReplayEvents(events, "id").size() == 300u);
  BOOST_TEST(agent.Log().find("reconnecting") != std::string::npos, agent.Log());
}

// A catalog backend that stops answering (SIGSTOP: a hung server, as far as the agent can
// tell) must not hold the pipeline's thread past the systemd watchdog: the query gives up,
// the source reconnects, and the rows written meanwhile arrive.
BOOST_AUTO_TEST_CASE(a_catalog_connection_that_stops_answering_is_abandoned) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE hang");
  Pg().Exec("CREATE TABLE h (id int PRIMARY KEY)", "hang");
  auto config = WritePgFileConfig(dir.path(), Pg(), "hang", "hg", "[public.h]",
                                  "    heartbeat_interval_ms: 1000\n");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_hg");
  auto topic = TopicDir(dir.path(), "hg.public.h");
  Pg().Exec("INSERT INTO h SELECT g FROM generate_series(1, 10) g", "hang");
  WaitForEvents(topic, 10, agent);

  const std::string backend = Pg().QueryValue(
      "SELECT pid FROM pg_stat_activity WHERE datname = 'hang' AND application_name = "
      "'tributary' AND backend_type = 'client backend'",
      "hang");
  BOOST_TEST_REQUIRE(!backend.empty());
  const pid_t pid = std::stoi(backend);
  BOOST_TEST_REQUIRE(kill(pid, SIGSTOP) == 0);
  struct Resume {
    pid_t pid;
    ~Resume() { kill(pid, SIGCONT); }
  } resume{pid};
  // The table check (every heartbeat) hangs within a second; the rows written after that wait
  // for the source to give up on it (15 s) and reconnect.
  std::this_thread::sleep_for(seconds(2));
  Pg().Exec("INSERT INTO h SELECT g FROM generate_series(11, 20) g", "hang");
  auto events = WaitForEvents(topic, 20, agent);
  BOOST_TEST(agent.Log().find("got no answer from the server in 15 s") != std::string::npos,
             agent.Log());
  BOOST_TEST(ReplayEvents(events, "id").size() == 20u);
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(a_server_restart_under_writes_loses_nothing) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE restart");
  Pg().Exec("CREATE TABLE r (id int PRIMARY KEY, v int)", "restart");
  auto config = WritePgFileConfig(dir.path(), Pg(), "restart", "rs", "[public.r]");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_rs");
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::thread writer([&] {
    for (int first = 1; !stop.load(); first += 10) {
      try {
        Pg().Exec(fmt::format("BEGIN; INSERT INTO r SELECT g, 0 FROM generate_series({}, {}) g; "
                              "UPDATE r SET v = v + 1 WHERE id = {}; COMMIT;",
                              first, first + 9, std::max(1, first - 5)),
                  "restart");
      } catch (const std::exception&) {
        // The server is down; whether this one committed, the table says.
        ++failed;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });
  std::this_thread::sleep_for(seconds(1));
  Pg().Restart();  // immediate shutdown, crash recovery on start
  std::this_thread::sleep_for(seconds(2));
  stop.store(true);
  writer.join();
  BOOST_TEST(failed.load() > 0, "the writer never saw the server down");

  const auto rows = Pg().Query("SELECT id, v FROM r ORDER BY id", "restart");
  BOOST_REQUIRE(rows.size() > 100u);
  auto topic = TopicDir(dir.path(), "rs.public.r");
  std::map<std::string, json> replayed;
  const bool caught_up = WaitFor(
      [&] {
        replayed = ReplayEvents(ReadTopicEvents(topic), "id");
        return replayed.size() >= rows.size();
      },
      seconds(60));
  BOOST_REQUIRE_MESSAGE(caught_up, "replayed " << replayed.size() << " of " << rows.size()
                                               << " rows\n"
                                               << agent.Log());
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
  BOOST_TEST(replayed.size() == rows.size());
  size_t mismatches = 0;
  for (const auto& row : rows) {
    auto it = replayed.find(row[0]);
    if (it == replayed.end() || it->second["v"] != std::stoi(row[1])) ++mismatches;
  }
  BOOST_TEST(mismatches == 0u);
  BOOST_TEST(FirstOutOfOrder(ReadTopicEvents(topic)) == -1);
  BOOST_TEST(agent.Log().find("reconnecting") != std::string::npos, agent.Log());
}

// `tables` globs cover tables created later: a table created (or dropped and created again)
// while the agent streams joins the publication, and an on-demand snapshot brings the rows it
// held before that; its later changes are streamed.
BOOST_AUTO_TEST_CASE(tables_created_while_streaming_are_captured_with_their_rows) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE later");
  Pg().Exec("CREATE TABLE first (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY)",
            "later");
  auto config = WritePgFileConfig(dir.path(), Pg(), "later", "lt", "[\"public.f*\", public.new]",
                                  "    heartbeat_interval_ms: 200\n    snapshot: initial\n");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_lt");
  // Rows the table holds before the agent can see it: only a snapshot can bring them.
  Pg().Exec(
      "BEGIN; CREATE TABLE fresh (id int PRIMARY KEY, v text);"
      "INSERT INTO fresh SELECT g, 'old' FROM generate_series(1, 500) g; COMMIT;"
      "CREATE TABLE not_matched (id int PRIMARY KEY)",
      "later");
  auto topic = TopicDir(dir.path(), "lt.public.fresh");
  WaitForEvents(topic, 500, agent);
  Pg().Exec("INSERT INTO fresh VALUES (501, 'new'); UPDATE fresh SET v = 'changed' WHERE id = 1",
            "later");
  auto events = WaitForEvents(topic, 502, agent);
  auto replayed = ReplayEvents(events, "id");
  BOOST_TEST(replayed.size() == 501u);
  BOOST_TEST(replayed["1"]["v"] == "changed");
  BOOST_TEST(replayed["501"]["v"] == "new");
  BOOST_TEST(events.front()["op"] == "r");
  BOOST_TEST(events.front()["source"]["snapshot"] == "incremental");

  // Dropped and created again under the same name: a new table, captured again.
  Pg().Exec(
      "DROP TABLE fresh; CREATE TABLE fresh (id int PRIMARY KEY, v text, w int);"
      "INSERT INTO fresh VALUES (7, 'again', 1)",
      "later");
  bool again = WaitFor(
      [&] {
        events = ReadTopicEvents(topic);
        return events.back()["after"].is_object() && events.back()["after"]["v"] == "again";
      },
      seconds(30));
  BOOST_TEST(again, agent.Log());

  // Without a replica identity it stays out, so that its UPDATEs keep working, until it has one.
  Pg().Exec("CREATE TABLE fkeyless (id int, v text); INSERT INTO fkeyless VALUES (1, 'a')",
            "later");
  BOOST_REQUIRE(WaitFor(
      [&] { return agent.Log().find("table=public.fkeyless") != std::string::npos; }, seconds(30)));
  Pg().Exec("UPDATE fkeyless SET v = 'b'", "later");
  Pg().Exec("ALTER TABLE fkeyless ADD PRIMARY KEY (id)", "later");
  auto keyed = WaitForEvents(TopicDir(dir.path(), "lt.public.fkeyless"), 1, agent);
  BOOST_TEST(keyed.back()["after"]["v"] == "b");
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
  BOOST_TEST(!std::filesystem::exists(TopicDir(dir.path(), "lt.public.not_matched")));
  BOOST_TEST(!std::filesystem::exists(TopicDir(dir.path(), "lt.public.other")));
  BOOST_TEST(Pg().QueryValue("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM "
                             "pg_publication_tables WHERE pubname = 'tributary_lt'",
                             "later") == "first,fkeyless,fresh");

  // Created while the agent was down: it joins when the agent resumes, rows included.
  Pg().Exec(
      "CREATE TABLE filled (id int PRIMARY KEY); "
      "INSERT INTO filled SELECT generate_series(1, 100)",
      "later");
  AgentProcess resumed({"run", "--config", config.string()}, dir.path() / "agent2.log");
  auto filled = WaitForEvents(TopicDir(dir.path(), "lt.public.filled"), 100, resumed);
  BOOST_TEST(ReplayEvents(filled, "id").size() == 100u);
  resumed.Signal(SIGTERM);
  BOOST_TEST(resumed.Wait(seconds(15)).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(slot_advances_while_only_uncaptured_tables_change) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE idle");
  Pg().Exec("CREATE TABLE captured (id int PRIMARY KEY); CREATE TABLE busy (id int PRIMARY KEY)",
            "idle");
  auto config = WritePgFileConfig(dir.path(), Pg(), "idle", "id", "[public.captured]",
                                  "    heartbeat_interval_ms: 200");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_id");
  Pg().Exec("INSERT INTO busy SELECT g FROM generate_series(1, 10000) g", "idle");
  std::string target = Pg().QueryValue("SELECT pg_current_wal_lsn()", "idle");
  bool advanced = WaitForSlotAt("tributary_id", target);
  BOOST_TEST(advanced, "the slot did not advance past the uncaptured writes\n" << agent.Log());
  // The position the slot reached is a saved checkpoint, so a restart passes the continuity check.
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
  BOOST_TEST(Pg().QueryValue("SELECT confirmed_flush_lsn FROM pg_replication_slots "
                             "WHERE slot_name = 'tributary_id'") == Checkpoint(dir.path(), "id"));
  Pg().Exec("INSERT INTO captured VALUES (1)", "idle");
  AgentProcess again({"run", "--config", config.string()}, dir.path() / "agent2.log");
  auto events = WaitForEvents(TopicDir(dir.path(), "id.public.captured"), 1, again);
  BOOST_TEST(events.size() == 1u);
  BOOST_TEST(!std::filesystem::exists(TopicDir(dir.path(), "id.public.busy")));
  again.Signal(SIGTERM);
  BOOST_TEST(again.Wait(seconds(15)).value_or(-1) == 0);
}

// flush_interval_ms bounds how long a change waits while more keep coming: the end of a burst
// is made durable, and checkpointed, as soon as the source falls quiet, not a minute later.
BOOST_AUTO_TEST_CASE(the_end_of_a_burst_is_durable_without_waiting_out_the_flush_interval) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE burst");
  Pg().Exec("CREATE TABLE items (id int PRIMARY KEY, note text)", "burst");
  auto config = WritePgFileConfig(dir.path(), Pg(), "burst", "burst", "[public.items]");
  EditConfig(config, "flush_interval_ms: 100", "flush_interval_ms: 60000");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_burst");
  // The test server commits asynchronously, and pg_current_wal_lsn() is the write position: it
  // may still be short of the commit record, and the walsender's keepalive at that point, sent
  // before the transaction, checkpointed with none of its rows. The insert position after a
  // synchronous commit is past it.
  Pg().Exec(
      "SET synchronous_commit = on; "
      "INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
      "burst");
  const std::string target = Pg().QueryValue("SELECT pg_current_wal_insert_lsn()", "burst");
  bool durable = WaitForSlotAt("tributary_burst", target);
  BOOST_TEST(durable, "the burst was not checkpointed within 20 s\n" << agent.Log());
  // The slot is told only what the checkpoint holds, and the checkpoint only what is durable.
  const size_t rows = ReadTopicEvents(TopicDir(dir.path(), "burst.public.items")).size();
  BOOST_TEST(rows == 5000u,
             "target " << target << ", slot at "
                       << Pg().QueryValue("SELECT confirmed_flush_lsn FROM pg_replication_slots "
                                          "WHERE slot_name = 'tributary_burst'")
                       << ", checkpoint "
                       << ReadFile(dir.path() / "state" / "burst" / "checkpoint.json") << "\n"
                       << agent.Log());
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(bad_config_exits_78_naming_the_problem) {
  TempDir dir;
  std::filesystem::path config = dir.path() / "bad.yaml";
  std::ofstream(config) << "state_dir: /tmp/x\nsources:\n  - name: s\n    type: postgres\n"
                           "    dsn: \"host=h password=${file:/nonexistent/pw}\"\n"
                           "    tables: [public.t]\n    sinks: [nope]\n";
  int code = RunAgent({"validate", "--config", config.string()}, dir.path() / "v.log");
  BOOST_TEST(code == 78);
  std::string log = ReadFile(dir.path() / "v.log");
  BOOST_TEST(log.find("sources[0].sinks[0]") != std::string::npos, log);
  BOOST_TEST(log.find("/nonexistent/pw") != std::string::npos, log);

  std::ofstream(config, std::ios::trunc)
      << "state_dir: /tmp/x\nsources:\n  - name: s\n    type: postgres\n    dsn: \"host=h\"\n"
         "    tables: [public.t]\n    snapshot_chunk_rows: 0\n    sinks: [f]\nsinks:\n"
         "  - name: f\n    type: file\n    path: /tmp/y\n";
  code = RunAgent({"run", "--config", config.string()}, dir.path() / "r.log");
  BOOST_TEST(code == 78);
  log = ReadFile(dir.path() / "r.log");
  BOOST_TEST(log.find("sources[0].snapshot_chunk_rows") != std::string::npos, log);

  BOOST_TEST(RunAgent({"run"}, dir.path() / "u.log") == 64);
  BOOST_TEST(RunAgent({"version"}, dir.path() / "ver.log") == 0);
}

}  // namespace
}  // namespace tributary::testing
