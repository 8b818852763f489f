#define BOOST_TEST_MODULE pg_txmeta_test
#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "agent/transforms/transaction_metadata.h"
#include "sinks/kafka/kafka_sink.h"
#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/mysql_config.h"
#include "tests/support/pg_agent.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kOn = "    transaction_metadata: true\n";

// The data events of topics a and b, in file order.
std::vector<json> DataEvents(const std::filesystem::path& dir, const std::string& source) {
  std::vector<json> events;
  for (const char* table : {"a", "b"}) {
    auto topic = ReadTopicEvents(TopicDir(dir, fmt::format("{}.public.{}", source, table)));
    events.insert(events.end(), topic.begin(), topic.end());
  }
  return events;
}

// Checks the transaction topic against the data events: BEGIN/END alternate with one id, no
// duplicates (positions strictly increase), END counts match the data events carrying the id,
// and each transaction's orders run 1..n in total and per table. Returns the number of
// transactions.
size_t CheckTransactions(const std::vector<json>& transactions, const std::vector<json>& data) {
  std::map<std::string, std::vector<const json*>> by_id;
  for (const json& event : data) {
    BOOST_REQUIRE_MESSAGE(event["transaction"].is_object(), event.dump());
    by_id[event["transaction"]["id"].get<std::string>()].push_back(&event);
  }
  BOOST_REQUIRE(transactions.size() % 2 == 0);
  std::set<std::string> ended;
  for (size_t i = 0; i < transactions.size(); i += 2) {
    const json& begin = transactions[i];
    const json& end = transactions[i + 1];
    BOOST_REQUIRE_MESSAGE(begin["status"] == "BEGIN" && end["status"] == "END", begin.dump()
                                                                                    << "\n"
                                                                                    << end.dump());
    BOOST_TEST(begin["id"] == end["id"]);
    BOOST_TEST(begin["event_count"].is_null());
    BOOST_TEST(begin["data_collections"].is_null());
    BOOST_TEST(begin["position"].get<std::string>() < end["position"].get<std::string>());
    if (i > 0) {
      BOOST_TEST(
          transactions[i - 1]["position"].get<std::string>() < begin["position"].get<std::string>(),
          "duplicate or reordered BEGIN at " << i);
    }
    const std::string id = end["id"];
    BOOST_TEST(ended.insert(id).second, "second END for " << id);
    const auto& events = by_id[id];
    BOOST_TEST(end["event_count"] == events.size(), id);
    std::map<std::string, size_t> per_table;
    std::set<int64_t> total_orders;
    std::map<std::string, std::set<int64_t>> table_orders;
    for (const json* event : events) {
      const std::string table = "public." + (*event)["source"]["table"].get<std::string>();
      ++per_table[table];
      total_orders.insert((*event)["transaction"]["total_order"].get<int64_t>());
      table_orders[table].insert((*event)["transaction"]["data_collection_order"].get<int64_t>());
      // "<txId>:<commit LSN>", the commit LSN being source.sequence's first element.
      const std::string sequence = (*event)["source"]["sequence"];
      const std::string commit_lsn = json::parse(sequence)[0];
      BOOST_TEST(id == fmt::format("{}:{}", (*event)["source"]["txId"].get<int64_t>(), commit_lsn));
    }
    BOOST_TEST(total_orders.size() == events.size(), id);
    if (!total_orders.empty()) BOOST_TEST(*total_orders.rbegin() == int64_t(events.size()), id);
    size_t listed = 0;
    for (const json& collection : end["data_collections"]) {
      const std::string table = collection["data_collection"];
      BOOST_TEST(collection["event_count"] == per_table[table], id << " " << table);
      BOOST_TEST(table_orders[table].size() == per_table[table], id << " " << table);
      BOOST_TEST(*table_orders[table].rbegin() == int64_t(per_table[table]), id << " " << table);
      ++listed;
    }
    BOOST_TEST(listed == per_table.size(), id);
  }
  BOOST_TEST(ended.size() == by_id.size(), "data events of a transaction without END");
  return ended.size();
}

// Without `transaction_metadata` (a second source on the same server): changes keep
// "transaction": null and there is no transaction topic.
void CheckOffByDefault(const PgServer& pg) {
  TempDir dir;
  auto config = WritePgFileConfig(dir.path(), pg, "shop", "off", "[\"public.a\"]");
  auto agent = StartRunAgent(dir.path(), config, 0);
  WaitForSlotActive(pg, *agent, "tributary_off");
  pg.Exec("BEGIN; INSERT INTO a VALUES (-2, 1, 'off'); INSERT INTO a VALUES (-3, 2, 'off'); COMMIT",
          "shop");
  const auto topic = TopicDir(dir.path(), "off.public.a");
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return ReadTopicEvents(topic).size() == 2; }, seconds(30)),
                        agent->Log());
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
  for (const json& event : ReadTopicEvents(topic)) BOOST_TEST(event["transaction"].is_null());
  BOOST_TEST(!std::filesystem::exists(TopicDir(dir.path(), "off.transaction")));
}

BOOST_AUTO_TEST_CASE(begin_end_and_blocks_survive_kill_9) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  for (const char* table : {"a", "b", "other"}) {
    pg->Exec(fmt::format("CREATE TABLE {} (id int PRIMARY KEY, v int, note text)", table), "shop");
  }
  auto config =
      WritePgFileConfig(dir.path(), *pg, "shop", "tx", "[\"public.a\", \"public.b\"]", kOn);
  auto agent = StartRunAgent(dir.path(), config, 0);
  WaitForSlotActive(*pg, *agent, "tributary_tx");

  // Known transactions first: two tables, one not captured, one big enough for several batches.
  pg->Exec(
      "BEGIN; INSERT INTO a VALUES (1, 1, 'x'); INSERT INTO b VALUES (1, 1, 'x');"
      "INSERT INTO a VALUES (2, 2, 'x'); UPDATE b SET v = 5 WHERE id = 1; COMMIT",
      "shop");
  pg->Exec("INSERT INTO other VALUES (1, 1, 'not captured')", "shop");
  pg->Exec(
      "BEGIN; INSERT INTO b SELECT g, g, repeat('y', 300) FROM generate_series(2, 4001) g;"
      "INSERT INTO a SELECT g, g, repeat('y', 300) FROM generate_series(3, 2002) g; COMMIT",
      "shop");
  const auto tx_topic = TopicDir(dir.path(), "tx.transaction");
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return ReadTopicEvents(tx_topic).size() == 4; }, seconds(30)),
                        agent->Log());
  {
    const auto transactions = ReadTopicEvents(tx_topic);
    BOOST_TEST(transactions[1]["event_count"] == 4);
    BOOST_TEST(transactions[1]["data_collections"] ==
               json::parse(R"([{"data_collection":"public.a","event_count":2},
                               {"data_collection":"public.b","event_count":2}])"));
    BOOST_TEST(transactions[3]["event_count"] == 6000);
    BOOST_TEST(transactions[3]["data_collections"] ==
               json::parse(R"([{"data_collection":"public.b","event_count":4000},
                               {"data_collection":"public.a","event_count":2000}])"));
    const auto a = ReadTopicEvents(TopicDir(dir.path(), "tx.public.a"));
    BOOST_REQUIRE(a.size() == 2002u);
    BOOST_TEST(a[1]["transaction"]["id"] == transactions[0]["id"]);
    BOOST_TEST(a[1]["transaction"]["total_order"] == 3);
    BOOST_TEST(a[1]["transaction"]["data_collection_order"] == 2);
    BOOST_TEST(a[2001]["transaction"]["total_order"] == 6000);
    BOOST_TEST(a[2001]["transaction"]["data_collection_order"] == 2000);
  }

  // Multi-table transactions while the agent is killed and restarted.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    PGconn* conn = PQconnectdb(pg->Dsn("shop").c_str());
    BOOST_REQUIRE(PQstatus(conn) == CONNECTION_OK);
    std::mt19937 random(11);
    for (int id = 10000; !stop.load(); id += 10) {
      std::string sql = "BEGIN;";
      const int statements = 1 + static_cast<int>(random() % 4);
      for (int s = 0; s < statements; ++s) {
        const char* table = random() % 3 == 0 ? "other" : (random() % 2 == 0 ? "a" : "b");
        sql += fmt::format("INSERT INTO {} VALUES ({}, 0, 'w');", table, id + s);
      }
      sql += "COMMIT;";
      PGresult* result = PQexec(conn, sql.c_str());
      BOOST_REQUIRE(PQresultStatus(result) == PGRES_COMMAND_OK);
      PQclear(result);
      // A few hundred transactions a second: enough to kill mid-transaction, few enough that
      // the checks stay quick under the sanitizers.
      std::this_thread::sleep_for(milliseconds(2));
    }
    PQfinish(conn);
  });
  std::mt19937 random(3);
  for (int k = 1; k <= 3; ++k) {
    std::this_thread::sleep_for(milliseconds(500 + random() % 1000));
    agent->Signal(SIGKILL);
    BOOST_REQUIRE(agent->Wait(seconds(10)).value_or(-1) == 128 + SIGKILL);
    agent = StartRunAgent(dir.path(), config, k);
  }
  std::this_thread::sleep_for(seconds(1));
  stop.store(true);
  writer.join();

  pg->Exec("INSERT INTO a VALUES (-1, -1, 'marker')", "shop");
  const auto a_topic = TopicDir(dir.path(), "tx.public.a");
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              const auto last = LastTopicEvent(a_topic);
                              const auto end = LastTopicEvent(tx_topic);
                              return last && (*last)["after"].is_object() &&
                                     (*last)["after"]["id"] == -1 && end &&
                                     (*end)["id"] == (*last)["transaction"]["id"];
                            },
                            seconds(60)),
                        agent->Log());
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);

  const auto data = DataEvents(dir.path(), "tx");
  const size_t transactions = CheckTransactions(ReadTopicEvents(tx_topic), data);
  BOOST_TEST_MESSAGE("transactions with captured changes: " << transactions);
  BOOST_TEST(transactions > 20u);
  // Every captured row arrived once: the files hold as many changes as the tables have rows
  // (inserts only, plus the one update).
  const auto rows = std::stoul(pg->QueryValue("SELECT count(*) FROM a", "shop")) +
                    std::stoul(pg->QueryValue("SELECT count(*) FROM b", "shop"));
  BOOST_TEST(data.size() == rows + 1);

  CheckOffByDefault(*pg);
}

BOOST_AUTO_TEST_CASE(mariadb_transactions_are_named_by_gtid) {
  auto server = MariaDbServer::Start();
  TempDir dir;
  server->Exec(
      "CREATE DATABASE shop;"
      "CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(20));"
      "CREATE TABLE shop.items (id INT PRIMARY KEY);"
      "CREATE TABLE shop.ignored (id INT PRIMARY KEY);");
  auto config =
      WriteMysqlFileConfig(dir.path(), *server, "my", R"(["shop.orders", "shop.items"])", kOn);
  auto agent = StartStreamingMysqlAgent(config, dir.path() / "agent.log");
  server->Exec(
      "BEGIN; INSERT INTO shop.orders VALUES (1, 'one'); INSERT INTO shop.items VALUES (1);"
      "INSERT INTO shop.orders VALUES (2, 'two'); COMMIT;"
      "INSERT INTO shop.ignored VALUES (1);"
      "UPDATE shop.orders SET note = 'uno' WHERE id = 1;");
  const auto tx_topic = TopicDir(dir.path(), "my.transaction");
  const auto orders_topic = TopicDir(dir.path(), "my.shop.orders");
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              return ReadTopicEvents(tx_topic).size() >= 4 &&
                                     ReadTopicEvents(orders_topic).size() >= 3;
                            },
                            seconds(30)),
                        agent->Log());
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);

  const auto transactions = ReadTopicEvents(tx_topic);
  const auto orders = ReadTopicEvents(orders_topic);
  const auto items = ReadTopicEvents(TopicDir(dir.path(), "my.shop.items"));
  // The transaction of shop.ignored only produced nothing.
  BOOST_REQUIRE(transactions.size() == 4u);
  BOOST_REQUIRE(orders.size() == 3u);
  BOOST_REQUIRE(items.size() == 1u);
  const std::string first = orders[0]["source"]["gtid"];
  const std::string second = orders[2]["source"]["gtid"];
  BOOST_TEST(first != second);
  BOOST_TEST(transactions[0]["status"] == "BEGIN");
  BOOST_TEST(transactions[0]["id"] == first);
  BOOST_TEST(transactions[1]["status"] == "END");
  BOOST_TEST(transactions[1]["id"] == first);
  BOOST_TEST(transactions[1]["event_count"] == 3);
  BOOST_TEST(transactions[1]["data_collections"] ==
             json::parse(R"([{"data_collection":"shop.orders","event_count":2},
                             {"data_collection":"shop.items","event_count":1}])"));
  BOOST_TEST(transactions[3]["id"] == second);
  BOOST_TEST(transactions[3]["event_count"] == 1);
  BOOST_TEST(items[0]["transaction"] ==
             json::parse(
                 fmt::format(R"({{"id":"{}","total_order":2,"data_collection_order":1}})", first)));
  BOOST_TEST(orders[1]["transaction"]["total_order"] == 3);
  BOOST_TEST(orders[1]["transaction"]["data_collection_order"] == 2);
  BOOST_TEST(orders[2]["transaction"]["id"] == second);
}

// The Kafka sink routes BEGIN and END to {source}.transaction, keyed by the transaction id.
BOOST_AUTO_TEST_CASE(kafka_routes_begin_and_end_to_the_transaction_topic) {
  auto kafka = MockKafka::Start();
  kafka->CreateTopic("shop.transaction", 1);
  kafka->CreateTopic("shop.public.t", 1);
  auto table = std::make_shared<TableSchema>();
  table->connector = "postgresql";
  table->source = "shop";
  table->database = "shopdb";
  table->schema = "public";
  table->table = "t";
  ColumnSchema id;
  id.name = "id";
  id.type_name = "int4";
  id.canonical_type = "int32";
  id.key = true;
  id.nullable = false;
  table->columns = {id};

  Batch batch;
  batch.sequence = 1;
  for (int i = 0; i < 2; ++i) {
    Event insert;
    insert.op = Op::kCreate;
    insert.table = batch.Retain(table);
    insert.meta.txid = 42;
    insert.meta.commit_lsn = 1000;
    insert.after = static_cast<uint32_t>(batch.values.size());
    batch.values.push_back(batch.AddValue(ValueKind::kRaw, std::to_string(i)));
    insert.position =
        batch.AddValue(ValueKind::kString, fmt::format("00000000000003E8/{:016X}", i));
    batch.events.push_back(insert);
  }
  batch.commit_position = "commit";
  TransactionMetadata transform;
  BOOST_REQUIRE(transform.Apply(batch).ok());
  BOOST_REQUIRE(batch.events.size() == 4u);

  KafkaSinkOptions options;
  options.name = "events";
  options.brokers = kafka->bootstrap();
  std::vector<uint64_t> acks;
  KafkaSink sink(options);
  BOOST_REQUIRE(sink.Open([&](uint64_t sequence) { acks.push_back(sequence); }).ok());
  BOOST_REQUIRE(sink.Submit(batch).ok());
  BOOST_REQUIRE(sink.Flush().ok());
  BOOST_TEST(acks == std::vector<uint64_t>{1});
  sink.Close();

  const auto records = ReadKafkaTopic(kafka->bootstrap(), "shop.transaction");
  BOOST_REQUIRE(records.size() == 2u);
  for (const KafkaRecord& record : records) {
    BOOST_TEST(record.key.value_or("") == R"({"id":"42:1000"})");
    BOOST_REQUIRE(record.value.has_value());
  }
  BOOST_TEST(records[0].headers.at("op") == "B");
  BOOST_TEST(records[1].headers.at("op") == "E");
  const json end = json::parse(*records[1].value);
  BOOST_TEST(end["status"] == "END");
  BOOST_TEST(end["event_count"] == 2);
  BOOST_TEST(records[1].headers.at("source.position") == end["position"]);
  const auto rows = ReadKafkaTopic(kafka->bootstrap(), "shop.public.t");
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(json::parse(*rows[1].value)["transaction"] ==
             json::parse(R"({"id":"42:1000","total_order":2,"data_collection_order":2})"));
}

}  // namespace
}  // namespace tributary::testing
