#define BOOST_TEST_MODULE pg_message_test
#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "agent/core/text_append.h"
#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/pg_agent.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kMessages = "    logical_messages: [\"audit\", \"app.*\"]\n";

// Waits until row `id` of public.a is in the files: everything before it was handled.
void WaitForRow(const std::filesystem::path& dir, const std::string& source, int id,
                const AgentProcess& agent) {
  const auto topic = TopicDir(dir, source + ".public.a");
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              const auto last = LastTopicEvent(topic);
                              return last && (*last)["after"].is_object() &&
                                     (*last)["after"]["id"] == id;
                            },
                            seconds(30)),
                        LogOf{agent});
}

// pg_lsn text ("0/16B36C0") as a number.
uint64_t ParsePgLsn(const std::string& text) {
  const size_t slash = text.find('/');
  return (std::stoull(text.substr(0, slash), nullptr, 16) << 32) |
         std::stoull(text.substr(slash + 1), nullptr, 16);
}

std::string Base64(std::string_view bytes) {
  std::string out;
  AppendBase64(bytes, out);
  return out;
}

std::string Content(const json& event) { return event["message"]["content"]; }

// Without `logical_messages` (a second source on the same server), no message is emitted.
void CheckOffByDefault(const PgServer& pg) {
  TempDir dir;
  auto config = WritePgFileConfig(dir.path(), pg, "shop", "off", "[\"public.a\"]");
  auto agent = StartRunAgent(dir.path(), config, 0);
  WaitForSlotActive(pg, *agent, "tributary_off");
  pg.Exec(
      "BEGIN; SELECT pg_logical_emit_message(true, 'audit', 'off'); INSERT INTO a VALUES (-5, 0);"
      "COMMIT; SELECT pg_logical_emit_message(false, 'audit', 'off');"
      "INSERT INTO a VALUES (-6, 0)",
      "shop");
  WaitForRow(dir.path(), "off", -6, *agent);
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
  BOOST_TEST(!std::filesystem::exists(TopicDir(dir.path(), "off.message")));
}

BOOST_AUTO_TEST_CASE(messages_are_events_in_order_and_survive_kill_9) {
  // Small enough that the big transaction below is streamed in progress (proto 2).
  auto pg = PgServer::Start({"logical_decoding_work_mem = '64kB'"});
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE a (id int PRIMARY KEY, v int)", "shop");
  auto config = WritePgFileConfig(dir.path(), *pg, "shop", "msg", "[\"public.a\"]",
                                  std::string(kMessages) + "    streaming: true\n");
  auto agent = StartRunAgent(dir.path(), config, 0);
  WaitForSlotActive(*pg, *agent, "tributary_msg");

  // A transaction with rows and messages: the non-transactional one inside it is decoded when
  // PostgreSQL reads it, before the transaction's commit; prefixes not listed (and the agent's
  // own) are not emitted.
  pg->Exec(
      "BEGIN; INSERT INTO a VALUES (1, 1);"
      "SELECT pg_logical_emit_message(true, 'audit', 'x');"
      "SELECT pg_logical_emit_message(false, 'audit', 'inside');"
      "SELECT pg_logical_emit_message(true, 'other', 'not listed');"
      "SELECT pg_logical_emit_message(true, 'app', 'not matched');"
      "SELECT pg_logical_emit_message(true, 'tributary', 'own prefix');"
      "SELECT pg_logical_emit_message(true, 'app.orders', 'y');"
      "INSERT INTO a VALUES (2, 2); COMMIT",
      "shop");
  // Binary content outside a transaction; the function returns the message's LSN.
  const std::string binary("\x00\x01\xff\n\"", 5);
  const uint64_t binary_lsn = ParsePgLsn(pg->QueryValue(
      "SELECT pg_logical_emit_message(false, 'audit', '\\x0001ff0a22'::bytea)", "shop"));
  // A transaction big enough to be streamed, with a message between its rows.
  pg->Exec(
      "BEGIN; INSERT INTO a SELECT g, g FROM generate_series(100, 2099) g;"
      "SELECT pg_logical_emit_message(true, 'app.stream', 'mid');"
      "INSERT INTO a SELECT g, g FROM generate_series(2100, 4099) g; COMMIT",
      "shop");
  pg->Exec("INSERT INTO a VALUES (3, 3)", "shop");
  WaitForRow(dir.path(), "msg", 3, *agent);

  const auto message_topic = TopicDir(dir.path(), "msg.message");
  {
    const auto messages = ReadTopicEvents(message_topic);
    BOOST_REQUIRE_MESSAGE(messages.size() == 5u, json(messages).dump());
    std::vector<std::string> contents;
    for (const json& m : messages) contents.push_back(Content(m));
    BOOST_TEST(contents == (std::vector<std::string>{Base64("inside"), Base64("x"), Base64("y"),
                                                     Base64(binary), Base64("mid")}),
               boost::test_tools::per_element());
    BOOST_TEST(FirstOutOfOrder(messages) == -1);
    for (const json& m : messages) {
      BOOST_TEST(m["op"] == "m");
      BOOST_TEST(!m.contains("before"));
      BOOST_TEST(!m.contains("after"));
      BOOST_TEST(m["source"]["connector"] == "postgresql");
      BOOST_TEST(m["source"]["name"] == "msg");
      BOOST_TEST(m["source"]["db"] == "shop");
      BOOST_TEST(m["source"]["table"] == "");
    }
    BOOST_TEST(messages[0]["message"]["prefix"] == "audit");
    BOOST_TEST(messages[0]["source"]["txId"].is_null());
    BOOST_TEST(messages[2]["message"]["prefix"] == "app.orders");
    BOOST_TEST(messages[3]["source"]["txId"].is_null());
    BOOST_TEST(messages[3]["source"]["lsn"] == binary_lsn);

    // Transactional messages carry their transaction and sort between its rows.
    const auto rows = ReadTopicEvents(TopicDir(dir.path(), "msg.public.a"));
    BOOST_REQUIRE(rows.size() == 4003u);
    const json& x = messages[1];
    BOOST_TEST(x["source"]["txId"] == rows[0]["source"]["txId"]);
    BOOST_TEST(json::parse(x["source"]["sequence"].get<std::string>())[0] ==
               json::parse(rows[0]["source"]["sequence"].get<std::string>())[0]);
    const auto position = [](const json& event) {
      return event["source"]["position"].get<std::string>();
    };
    BOOST_TEST(position(rows[0]) < position(x));
    BOOST_TEST(position(messages[2]) < position(rows[1]));
    // The non-transactional message inside it sorts before the transaction it was sent before.
    BOOST_TEST(position(messages[0]) < position(rows[0]));
    BOOST_TEST(position(rows[1]) < position(messages[3]));
    BOOST_TEST(position(messages[3]) < position(rows[2]));
    // The streamed transaction's message lies between its 2000th and 2001st rows.
    BOOST_TEST(rows[2001]["after"]["id"] == 2099);
    BOOST_TEST(position(rows[2001]) < position(messages[4]));
    BOOST_TEST(position(messages[4]) < position(rows[2002]));
    BOOST_TEST(messages[4]["source"]["txId"] == rows[2002]["source"]["txId"]);
  }
  BOOST_TEST(agent->Log().find("Spooling a streamed transaction") != std::string::npos,
             "the big transaction was not streamed");

  // Messages while the agent is killed and restarted: each arrives exactly once.
  std::atomic<bool> stop{false};
  std::mutex emitted_mutex;
  std::set<std::string> emitted;
  std::thread writer([&] {
    PGconn* conn = PQconnectdb(pg->Dsn("shop").c_str());
    BOOST_REQUIRE(PQstatus(conn) == CONNECTION_OK);
    for (int id = 10000; !stop.load(); ++id) {
      const std::string sql =
          id % 3 == 0 ? fmt::format("SELECT pg_logical_emit_message(false, 'audit', 'n{}')", id)
                      : fmt::format(
                            "BEGIN; INSERT INTO a VALUES ({0}, 0);"
                            "SELECT pg_logical_emit_message(true, 'audit', 't{0}'); COMMIT;",
                            id);
      PGresult* result = PQexec(conn, sql.c_str());
      const ExecStatusType status = PQresultStatus(result);
      BOOST_REQUIRE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK);
      PQclear(result);
      {
        std::lock_guard lock(emitted_mutex);
        emitted.insert(Base64(fmt::format("{}{}", id % 3 == 0 ? 'n' : 't', id)));
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
    PQfinish(conn);
  });
  for (int k = 1; k <= 3; ++k) {
    std::this_thread::sleep_for(milliseconds(400 + 300 * k));
    agent->Signal(SIGKILL);
    BOOST_REQUIRE(agent->Wait(seconds(10)).value_or(-1) == 128 + SIGKILL);
    agent = StartRunAgent(dir.path(), config, k);
  }
  std::this_thread::sleep_for(milliseconds(500));
  stop.store(true);
  writer.join();
  pg->Exec("INSERT INTO a VALUES (-1, -1)", "shop");
  WaitForRow(dir.path(), "msg", -1, *agent);
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);

  const auto messages = ReadTopicEvents(message_topic);
  BOOST_TEST(FirstOutOfOrder(messages) == -1);
  std::multiset<std::string> seen;
  for (size_t i = 5; i < messages.size(); ++i) seen.insert(Content(messages[i]));
  BOOST_TEST_MESSAGE("messages during the kills: " << emitted.size());
  BOOST_TEST(emitted.size() > 100u);
  BOOST_TEST(seen.size() == emitted.size());
  BOOST_TEST((std::set<std::string>(seen.begin(), seen.end()) == emitted));

  CheckOffByDefault(*pg);
}

// The Kafka sink routes messages to {source}.message, keyed by the prefix.
BOOST_AUTO_TEST_CASE(kafka_routes_messages_by_prefix) {
  auto pg = PgServer::Start();
  auto kafka = MockKafka::Start();
  kafka->CreateTopic("km.message", 1);
  kafka->CreateTopic("km.public.a", 1);
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE a (id int PRIMARY KEY)", "shop");
  // The tables list carries the source's extra key onto the next line.
  auto config =
      WritePgKafkaConfig(dir.path(), *pg, "shop", "km",
                         "[\"public.a\"]\n    logical_messages: [\"audit\"]", kafka->bootstrap());
  auto agent = StartRunAgent(dir.path(), config, 0);
  WaitForSlotActive(*pg, *agent, "tributary_km");
  pg->Exec(
      "BEGIN; INSERT INTO a VALUES (1); SELECT pg_logical_emit_message(true, 'audit', 'k');"
      "COMMIT; SELECT pg_logical_emit_message(false, 'audit', 'n')",
      "shop");
  std::vector<KafkaRecord> records;
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              records = ReadKafkaTopic(kafka->bootstrap(), "km.message");
                              return records.size() >= 2;
                            },
                            seconds(30)),
                        LogOf{*agent});
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
  BOOST_REQUIRE(records.size() == 2u);
  for (const KafkaRecord& record : records) {
    BOOST_TEST(record.key.value_or("") == R"({"prefix":"audit"})");
    BOOST_TEST(record.headers.at("op") == "m");
    BOOST_REQUIRE(record.value.has_value());
    const json value = json::parse(*record.value);
    BOOST_TEST(record.headers.at("source.position") == value["source"]["position"]);
  }
  BOOST_TEST(json::parse(*records[0].value)["message"]["content"] == Base64("k"));
  BOOST_TEST(json::parse(*records[1].value)["message"]["content"] == Base64("n"));
  BOOST_TEST(ReadKafkaTopic(kafka->bootstrap(), "km.public.a").size() == 1u);
}

}  // namespace
}  // namespace tributary::testing
