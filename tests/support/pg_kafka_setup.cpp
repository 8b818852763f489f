#include "tests/support/pg_kafka_setup.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <map>
#include <optional>
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

namespace {

constexpr auto kCatchUpTimeout = std::chrono::seconds(40);

// The hex LSN "X/Y" (a checkpoint) or the first field of "XXXXXXXXXXXXXXXX/…" (a
// source.position: the commit LSN of the event's transaction).
std::optional<uint64_t> LeadingLsn(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  const uint64_t first = std::stoull(text.substr(0, slash), nullptr, 16);
  if (text.find('/', slash + 1) != std::string::npos) return first;
  return (first << 32) | std::stoull(text.substr(slash + 1), nullptr, 16);
}

// The source.position of the first record with `key`, once one is in the topic.
std::optional<std::string> WaitForKey(const std::string& bootstrap, const std::string& topic,
                                      const std::string& key,
                                      std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    for (const KafkaRecord& record : ReadKafkaTopic(bootstrap, topic)) {
      if (record.key != key) continue;
      auto position = record.headers.find("source.position");
      return position == record.headers.end() ? std::string() : position->second;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return std::nullopt;
}

}  // namespace

bool PgKafkaSetup::CatchUp(int marker) {
  pg->Exec(fmt::format("INSERT INTO t1 VALUES ({}, -1, 'marker')", marker), "kf");
  return WaitForKey(kafka->bootstrap(), topic, fmt::format("{{\"id\":{}}}", marker),
                    std::chrono::steady_clock::now() + kCatchUpTimeout)
      .has_value();
}

bool PgKafkaSetup::CatchUpCommitted(int marker, const std::string& source) {
  const auto deadline = std::chrono::steady_clock::now() + kCatchUpTimeout;
  pg->Exec(fmt::format("INSERT INTO t1 VALUES ({}, -1, 'marker')", marker), "kf");
  const std::optional<std::string> position =
      WaitForKey(kafka->bootstrap(), topic, fmt::format("{{\"id\":{}}}", marker), deadline);
  if (!position) return false;
  const std::optional<uint64_t> commit_lsn = LeadingLsn(*position);
  BOOST_REQUIRE_MESSAGE(commit_lsn, "the marker has no source.position: " << *position);
  // The checkpoint is a commit's end LSN (or a keepalive's position past it), so it passes the
  // marker's commit LSN only once the marker's transaction is acknowledged.
  const std::filesystem::path checkpoint = dir.path() / "state" / source / "checkpoint.json";
  return WaitFor(
      [&] {
        std::ifstream in(checkpoint);
        if (!in) return false;
        const json saved = json::parse(in, nullptr, /*allow_exceptions=*/false);
        if (!saved.is_object() || !saved.contains("position") || !saved["position"].is_string()) {
          return false;
        }
        const std::optional<uint64_t> lsn = LeadingLsn(saved["position"].get<std::string>());
        return lsn && *lsn > *commit_lsn;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                            std::chrono::steady_clock::now()));
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
