#define BOOST_TEST_MODULE pg_streaming_test
#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <set>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/pg_agent.h"
#include "tests/support/pg_server.h"

// pgoutput streaming of in-progress transactions (proto_version 2): a server whose
// logical_decoding_work_mem is its minimum, 64kB, streams any transaction of more than a few
// hundred rows while it is still open. The agent must deliver it only at its commit, exactly as
// if it had been sent whole.

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

struct ServerFixture {
  ServerFixture() { server = PgServer::Start({"logical_decoding_work_mem = '64kB'"}); }
  ~ServerFixture() { server.reset(); }
  static inline std::unique_ptr<PgServer> server;
};
BOOST_TEST_GLOBAL_FIXTURE(ServerFixture);

PgServer& Pg() { return *ServerFixture::server; }

// A client connection that can hold a transaction open across steps of a test.
class Session {
 public:
  explicit Session(const std::string& dbname) : conn_(PQconnectdb(Pg().Dsn(dbname).c_str())) {
    BOOST_REQUIRE_MESSAGE(PQstatus(conn_) == CONNECTION_OK, PQerrorMessage(conn_));
  }
  ~Session() { PQfinish(conn_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Exec(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    const bool ok =
        PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK;
    std::string error = PQresultErrorMessage(result);
    PQclear(result);
    BOOST_REQUIRE_MESSAGE(ok, sql << ": " << error);
  }

 private:
  PGconn* conn_;
};

// INSERTs ids first..last into `table` with a payload that makes each row a few hundred bytes.
std::string InsertRange(const std::string& table, int first, int last) {
  return fmt::format(
      "INSERT INTO {} SELECT g, repeat(md5(g::text), 4) FROM generate_series({}, {}) g", table,
      first, last);
}

// Streamed transactions the slot has sent so far (statistics lag by up to a second).
int64_t StreamedTxns(const std::string& slot) {
  std::string value = Pg().QueryValue(
      "SELECT coalesce(max(stream_txns), 0) FROM pg_stat_replication_slots WHERE slot_name = '" +
      slot + "'");
  return std::stoll(value);
}

// Waits for the marker row (id -1) that a test commits last; returns every event of the topic.
std::vector<json> WaitForMarker(const std::filesystem::path& topic, AgentProcess& agent) {
  bool done = WaitFor(
      [&] {
        const auto last = LastTopicEvent(topic);
        return last && (*last)["after"].is_object() && (*last)["after"]["id"] == -1;
      },
      seconds(60));
  BOOST_REQUIRE_MESSAGE(done, "the marker row did not arrive\n" << LogOf{agent});
  return ReadTopicEvents(topic);
}

void StopAgent(AgentProcess& agent) {
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(30)).value_or(-1) == 0, LogOf{agent});
}

// The ids of the created rows, in event order.
std::vector<int> CreatedIds(const std::vector<json>& events) {
  std::vector<int> ids;
  for (const json& e : events) {
    if (e["op"] == "c") ids.push_back(e["after"]["id"].get<int>());
  }
  return ids;
}

std::vector<int> Range(int first, int last) {
  std::vector<int> ids;
  for (int id = first; id <= last; ++id) ids.push_back(id);
  return ids;
}

std::vector<int> Concat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

size_t SpoolFiles(const std::filesystem::path& state_dir) {
  size_t spools = 0;
  if (!std::filesystem::exists(state_dir)) return 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(state_dir)) {
    if (entry.path().extension() == ".spool") ++spools;
  }
  return spools;
}

uintmax_t SpoolBytes(const std::filesystem::path& state_dir) {
  uintmax_t bytes = 0;
  if (!std::filesystem::exists(state_dir)) return 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(state_dir)) {
    std::error_code error;
    if (entry.path().extension() == ".spool") bytes += entry.file_size(error);
  }
  return bytes;
}

// Events of one transaction carry its commit LSN and xid, and sequence 0, 1, 2, ...
void CheckOneTransaction(const std::vector<json>& events, size_t from, size_t count) {
  BOOST_REQUIRE(from + count <= events.size());
  const json& first = events[from]["source"];
  size_t bad = 0;
  for (size_t i = 0; i < count; ++i) {
    const json& source = events[from + i]["source"];
    const std::string position = source["position"];
    if (source["txId"] != first["txId"] ||
        position.substr(0, 16) != first["position"].get<std::string>().substr(0, 16) ||
        std::stoul(position.substr(34, 8), nullptr, 16) != i) {
      ++bad;
    }
  }
  BOOST_TEST(bad == 0u,
             "events " << from << ".." << from + count << " are not one transaction in order");
}

BOOST_AUTO_TEST_CASE(streamed_transaction_is_delivered_at_commit_exactly_as_sent_whole) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE same");
  Pg().Exec("CREATE TABLE big (id int PRIMARY KEY, payload text)", "same");
  // Two sources on the same WAL: one streams in-progress transactions, one does not.
  std::filesystem::path config = dir.path() / "tributary.yaml";
  std::ofstream(config) << fmt::format(R"(state_dir: {state}
log: {{ level: debug }}
sources:
  - name: st
    type: postgres
    dsn: "{dsn}"
    tables: [public.big]
    snapshot: never
    streaming: true
    sinks: [files]
  - name: ns
    type: postgres
    dsn: "{dsn}"
    tables: [public.big]
    snapshot: never
    streaming: false
    sinks: [files]
sinks:
  - name: files
    type: file
    path: {out}
    flush_interval_ms: 100
)",
                                       fmt::arg("state", (dir.path() / "state").string()),
                                       fmt::arg("dsn", Pg().Dsn("same")),
                                       fmt::arg("out", (dir.path() / "out").string()));
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_st");
  WaitForSlotActive(Pg(), agent, "tributary_ns");

  // The large transaction streams; another commits small transactions in the middle of it,
  // before and after the large one changes the table's schema.
  Session large("same");
  Session small("same");
  large.Exec("BEGIN");
  large.Exec(InsertRange("big", 1, 6000));
  large.Exec("UPDATE big SET payload = 'updated' WHERE id % 10 = 0");
  large.Exec("DELETE FROM big WHERE id % 10 = 5");
  small.Exec(InsertRange("big", 100001, 100003));
  BOOST_REQUIRE_MESSAGE(WaitFor([] { return StreamedTxns("tributary_st") > 0; }, seconds(20)),
                        "the server did not stream the open transaction");
  const auto st_topic = TopicDir(dir.path(), "st.public.big");
  const auto ns_topic = TopicDir(dir.path(), "ns.public.big");
  BOOST_REQUIRE(WaitFor([&] { return ReadTopicEvents(st_topic).size() == 3; }, seconds(20)));
  // Nothing of the open transaction is delivered while it is open.
  BOOST_TEST(ReadTopicEvents(st_topic).size() == 3u);
  large.Exec("ALTER TABLE big ADD COLUMN extra int DEFAULT 7");
  large.Exec(InsertRange("big", 6001, 9000));
  large.Exec("UPDATE big SET extra = 8 WHERE id = 6001");
  large.Exec("COMMIT");
  small.Exec(InsertRange("big", 100004, 100005));
  small.Exec("INSERT INTO big VALUES (-1, 'marker', 0)");

  const std::vector<json> st = WaitForMarker(st_topic, agent);
  const std::vector<json> ns = WaitForMarker(ns_topic, agent);
  StopAgent(agent);
  BOOST_TEST(StreamedTxns("tributary_st") > 0);
  BOOST_TEST(StreamedTxns("tributary_ns") == 0);
  BOOST_TEST(SpoolFiles(dir.path() / "state") == 0u);

  // 3 small rows, then the large transaction: 6000 inserts, 600 updates, 600 deletes, 3000
  // inserts and 1 update; then 2 small rows and the marker.
  const size_t large_events = 6000 + 600 + 600 + 3000 + 1;
  BOOST_TEST_REQUIRE(st.size() == 3 + large_events + 3);
  BOOST_TEST(FirstOutOfOrder(st) == -1);
  CheckOneTransaction(st, 3, large_events);
  BOOST_TEST(CreatedIds(st) ==
             Concat(Concat(Range(100001, 100003), Range(1, 9000)), {100004, 100005, -1}));
  // Every field the source sets is the same as the non-streaming source's, position included;
  // only the source name and the processing time differ.
  BOOST_TEST_REQUIRE(ns.size() == st.size());
  size_t different = 0;
  for (size_t i = 0; i < st.size(); ++i) {
    json a = st[i];
    json b = ns[i];
    for (json* e : {&a, &b}) {
      e->erase("ts_ms");
      e->erase("ts_us");
      (*e)["source"].erase("name");
    }
    if (a != b) {
      if (different == 0) BOOST_TEST_MESSAGE("first difference:\n" << a << "\n" << b);
      ++different;
    }
  }
  BOOST_TEST(different == 0u);
  // The rows after the ALTER carry the new column, those before it do not.
  BOOST_TEST(st[3]["after"].size() == 2u);
  BOOST_TEST(st[3 + large_events - 2]["after"]["extra"] == 7);
  BOOST_TEST(st[3 + large_events - 1]["after"]["extra"] == 8);
  BOOST_TEST(st[3 + large_events]["after"]["extra"] == 7);
}

BOOST_AUTO_TEST_CASE(aborted_streamed_transaction_and_rolled_back_savepoint_deliver_nothing) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE abort_db");
  Pg().Exec("CREATE TABLE big (id int PRIMARY KEY, payload text)", "abort_db");
  auto config = WritePgFileConfig(dir.path(), Pg(), "abort_db", "ab", "[public.big]",
                                  "    streaming: true\n");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_ab");

  Session session("abort_db");
  // A whole transaction that streams, then rolls back.
  session.Exec("BEGIN");
  session.Exec(InsertRange("big", 1, 5000));
  BOOST_REQUIRE(WaitFor([] { return StreamedTxns("tributary_ab") >= 1; }, seconds(20)));
  BOOST_REQUIRE(WaitFor([&] { return SpoolFiles(dir.path() / "state") == 1; }, seconds(20)));
  session.Exec("ROLLBACK");
  // A subtransaction that streams, then rolls back inside a transaction that commits; and a
  // nested one, released into a subtransaction that rolls back.
  session.Exec("BEGIN");
  session.Exec(InsertRange("big", 10001, 13000));
  session.Exec("SAVEPOINT a");
  session.Exec(InsertRange("big", 20001, 23000));
  session.Exec("SAVEPOINT b");
  session.Exec(InsertRange("big", 30001, 33000));
  session.Exec("RELEASE SAVEPOINT b");
  // Most of the subtransactions' rows are in the spool before they roll back (the last 64kB
  // may still be in the server's memory).
  BOOST_REQUIRE(WaitFor([&] { return SpoolBytes(dir.path() / "state") > 1200000; }, seconds(20)));
  session.Exec("ROLLBACK TO SAVEPOINT a");
  session.Exec(InsertRange("big", 40001, 43000));
  session.Exec("SAVEPOINT c");
  session.Exec(InsertRange("big", 50001, 50010));
  session.Exec("RELEASE SAVEPOINT c");
  session.Exec("COMMIT");
  session.Exec("INSERT INTO big VALUES (-1, 'marker')");

  const std::vector<json> events = WaitForMarker(TopicDir(dir.path(), "ab.public.big"), agent);
  StopAgent(agent);
  BOOST_TEST(
      CreatedIds(events) ==
      Concat(Concat(Concat(Range(10001, 13000), Range(40001, 43000)), Range(50001, 50010)), {-1}));
  BOOST_TEST(FirstOutOfOrder(events) == -1);
  CheckOneTransaction(events, 0, 6010);
  BOOST_TEST(SpoolFiles(dir.path() / "state") == 0u);
  BOOST_TEST(agent.Log().find("Dropping an aborted streamed transaction") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(interleaved_streamed_transactions_arrive_whole_in_commit_order) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE inter");
  Pg().Exec("CREATE TABLE big (id int PRIMARY KEY, payload text)", "inter");
  auto config =
      WritePgFileConfig(dir.path(), Pg(), "inter", "in", "[public.big]", "    streaming: true\n");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  WaitForSlotActive(Pg(), agent, "tributary_in");

  Session a("inter");
  Session b("inter");
  a.Exec("BEGIN");
  b.Exec("BEGIN");
  for (int round = 0; round < 3; ++round) {
    a.Exec(InsertRange("big", 1 + round * 2000, (round + 1) * 2000));
    b.Exec(InsertRange("big", 100001 + round * 2000, 100000 + (round + 1) * 2000));
  }
  BOOST_REQUIRE(WaitFor([] { return StreamedTxns("tributary_in") >= 2; }, seconds(20)));
  BOOST_REQUIRE(WaitFor([&] { return SpoolFiles(dir.path() / "state") == 2; }, seconds(20)));
  b.Exec("COMMIT");
  a.Exec(InsertRange("big", 6001, 7000));
  a.Exec("COMMIT");
  a.Exec("INSERT INTO big VALUES (-1, 'marker')");

  const std::vector<json> events = WaitForMarker(TopicDir(dir.path(), "in.public.big"), agent);
  StopAgent(agent);
  BOOST_TEST(CreatedIds(events) == Concat(Concat(Range(100001, 106000), Range(1, 7000)), {-1}));
  BOOST_TEST(FirstOutOfOrder(events) == -1);
  CheckOneTransaction(events, 0, 6000);
  CheckOneTransaction(events, 6000, 7000);
  BOOST_TEST(events[0]["source"]["txId"] != events[6000]["source"]["txId"]);
}

BOOST_AUTO_TEST_CASE(kill_9_while_spooling_delivers_exactly_the_committed_rows) {
  TempDir dir;
  Pg().Exec("CREATE DATABASE crash");
  Pg().Exec("CREATE TABLE big (id int PRIMARY KEY, payload text)", "crash");
  auto config =
      WritePgFileConfig(dir.path(), Pg(), "crash", "cr", "[public.big]", "    streaming: true\n");
  auto agent = std::make_unique<AgentProcess>(
      std::vector<std::string>{"run", "--config", config.string()}, dir.path() / "agent0.log");
  WaitForSlotActive(Pg(), *agent, "tributary_cr");

  Session session("crash");
  session.Exec(InsertRange("big", 1, 100));
  session.Exec("BEGIN");
  session.Exec(InsertRange("big", 1001, 4000));
  BOOST_REQUIRE(WaitFor([&] { return SpoolFiles(dir.path() / "state") == 1; }, seconds(20)));
  agent->Signal(SIGKILL);
  BOOST_REQUIRE(agent->Wait(seconds(10)).value_or(-1) == 128 + SIGKILL);
  BOOST_TEST(SpoolFiles(dir.path() / "state") == 1u);
  session.Exec(InsertRange("big", 4001, 8000));
  session.Exec("COMMIT");
  agent = std::make_unique<AgentProcess>(
      std::vector<std::string>{"run", "--config", config.string()}, dir.path() / "agent1.log");
  session.Exec("INSERT INTO big VALUES (-1, 'marker')");

  const std::vector<json> events = WaitForMarker(TopicDir(dir.path(), "cr.public.big"), *agent);
  StopAgent(*agent);
  BOOST_TEST(CreatedIds(events) == Concat(Concat(Range(1, 100), Range(1001, 8000)), {-1}));
  BOOST_TEST(FirstOutOfOrder(events) == -1);
  CheckOneTransaction(events, 100, 7000);
  BOOST_TEST(SpoolFiles(dir.path() / "state") == 0u);
}

}  // namespace
}  // namespace tributary::testing
