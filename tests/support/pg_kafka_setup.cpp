#include "tests/support/pg_kafka_setup.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <boost/test/unit_test.hpp>
#include <map>
#include <random>
#include <thread>

#include "tests/support/file_events.h"

namespace tributary::testing {

using nlohmann::json;

PgKafkaSetup::PgKafkaSetup(const std::string& topic_name, int partitions) : topic(topic_name) {
  pg = PgServer::Start();
  pg->Exec("CREATE DATABASE kf");
  pg->Exec("CREATE TABLE t1 (id int PRIMARY KEY, v int, note text)", "kf");
  kafka = MockKafka::Start();
  kafka->CreateTopic(topic, partitions);
}

std::unique_ptr<AgentProcess> PgKafkaSetup::StartAgent() {
  auto agent =
      std::make_unique<AgentProcess>(std::vector<std::string>{"run", "--config", config.string()},
                                     dir.path() / fmt::format("agent{}.log", agents_started++));
  BOOST_REQUIRE_MESSAGE(
      WaitFor(
          [&] {
            return pg->QueryValue("SELECT count(*) FROM pg_replication_slots WHERE active") == "1";
          },
          std::chrono::seconds(30)),
      LogOf{*agent});
  return agent;
}

bool PgKafkaSetup::CatchUp(int marker) {
  pg->Exec(fmt::format("INSERT INTO t1 VALUES ({}, -1, 'marker')", marker), "kf");
  const std::string key = fmt::format("{{\"id\":{}}}", marker);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const KafkaRecord& record : ReadKafkaTopic(kafka->bootstrap(), topic)) {
      if (record.key == key) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return false;
}

int RunT1Workload(const PgServer& pg, const std::atomic<bool>& stop, unsigned seed,
                  int max_transactions, std::chrono::milliseconds pause) {
  PGconn* conn = PQconnectdb(pg.Dsn("kf").c_str());
  BOOST_REQUIRE(PQstatus(conn) == CONNECTION_OK);
  std::mt19937 random(seed);
  std::vector<int> live;
  int next_id = 1 + static_cast<int>(seed % 1000) * 100000;
  int committed = 0;
  while (!stop.load() && committed < max_transactions) {
    std::string sql = "BEGIN;";
    const int statements = 1 + static_cast<int>(random() % 4);
    for (int s = 0; s < statements; ++s) {
      const int op = static_cast<int>(random() % 10);
      if (live.empty() || op < 5) {
        const int id = next_id++;
        live.push_back(id);
        sql += fmt::format("INSERT INTO t1 VALUES ({}, 0, 'n{}');", id, id);
      } else if (op < 8) {
        sql += fmt::format("UPDATE t1 SET v = v + 1, note = note || 'u' WHERE id = {};",
                           live[random() % live.size()]);
      } else {
        const size_t i = random() % live.size();
        sql += fmt::format("DELETE FROM t1 WHERE id = {};", live[i]);
        live.erase(live.begin() + static_cast<long>(i));
      }
    }
    sql += "COMMIT;";
    PGresult* result = PQexec(conn, sql.c_str());
    BOOST_REQUIRE_MESSAGE(PQresultStatus(result) == PGRES_COMMAND_OK, PQresultErrorMessage(result));
    PQclear(result);
    ++committed;
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  PQfinish(conn);
  return committed;
}

KafkaReplay ReadEvents(const std::vector<KafkaRecord>& records) {
  KafkaReplay replay;
  std::map<std::string, json> by_position;
  for (const KafkaRecord& record : records) {
    if (!record.value) continue;
    ++replay.records;
    json event = json::parse(*record.value);
    std::string position = event["source"]["position"];
    if (!by_position.emplace(position, std::move(event)).second) ++replay.duplicates;
  }
  for (auto& [position, event] : by_position) replay.events.push_back(std::move(event));
  return replay;
}

size_t CompareWithT1(const PgServer& pg, const std::vector<json>& events) {
  auto replayed = ReplayEvents(events, "id");
  auto rows = pg.Query("SELECT id, v, note FROM t1 ORDER BY id", "kf");
  BOOST_TEST(replayed.size() == rows.size());
  size_t mismatches = 0;
  for (const auto& row : rows) {
    auto it = replayed.find(row[0]);
    if (it == replayed.end() || it->second["v"] != std::stoi(row[1]) ||
        it->second["note"] != row[2]) {
      ++mismatches;
      if (mismatches <= 3) {
        BOOST_TEST_MESSAGE("row id=" << row[0] << " differs or is missing in the replay");
      }
    }
  }
  return mismatches;
}

}  // namespace tributary::testing
