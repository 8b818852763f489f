#define BOOST_TEST_MODULE kafka_eos_test
#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/pg_kafka_setup.h"
#include "tests/support/pg_server.h"

// `exactly_once: true` end to end: PostgreSQL → the agent → librdkafka's mock cluster, read back
// with kcat. The mock does not hide aborted or open transactions from read_committed readers
// (docs/kafka-sink.md), so records of a transaction that never committed are visible here;
// each case asserts exactly what that leaves provable.
namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kPartitions = 6;
const std::string kTopic = "kf.public.t1";
const std::string kOffsetsTopic = "tributary.offsets";
constexpr int kApiEndTxn = 26;
constexpr int kErrNotCoordinator = 16;
constexpr int kErrUnsupportedForMessageFormat = 43;
constexpr int kErrInvalidProducerEpoch = 47;
constexpr int kErrProducerFenced = 90;

// PostgreSQL with t1, the mock cluster with the data and offsets topics, and the config: source
// kf feeding the transactional kafka sink `events`, plus, with `file_flush_ms`, a file sink
// `files` that acks only that often (flush_when_quiet off), so the agent's own checkpoint lags
// what Kafka committed.
struct Setup : PgKafkaSetup {
  explicit Setup(const std::string& extra_sink_yaml = "", int file_flush_ms = 0)
      : PgKafkaSetup(kTopic, kPartitions) {
    kafka->CreateTopic(kOffsetsTopic, 1);
    config = dir.path() / "tributary.yaml";
    std::string extra;
    std::istringstream lines(extra_sink_yaml);
    std::string line;
    while (std::getline(lines, line)) extra += "    " + line + "\n";
    std::string file_sink;
    if (file_flush_ms > 0) {
      file_sink = fmt::format(
          "  - name: files\n    type: file\n    path: {}\n    flush_interval_ms: {}\n"
          "    flush_when_quiet: false\n",
          (dir.path() / "out").string(), file_flush_ms);
    }
    std::ofstream out(config);
    out << fmt::format(R"(state_dir: {state}
log: {{ level: debug }}
sources:
  - name: kf
    type: postgres
    dsn: "{dsn}"
    tables: [public.t1]
    snapshot: never
    sinks: [{sinks}]
sinks:
  - name: events
    type: kafka
    brokers: "{brokers}"
    exactly_once: true
    flush_interval_ms: 100
{extra}{file_sink})",
                       fmt::arg("state", (dir.path() / "state").string()),
                       fmt::arg("dsn", pg->Dsn("kf")),
                       fmt::arg("sinks", file_flush_ms > 0 ? "events, files" : "events"),
                       fmt::arg("brokers", kafka->bootstrap()), fmt::arg("extra", extra),
                       fmt::arg("file_sink", file_sink));
  }

  // The mock shows the records of aborted and open transactions, so a marker in the topic
  // proves nothing about what is committed: after an abort, the replay may still be to come.
  // Stopping the agent there (in its backoff before the replay) leaves the rest of that
  // transaction unwritten. Caught up means the agent's checkpoint, saved after the commit,
  // has passed the marker.
  bool CatchUp(int marker) { return CatchUpCommitted(marker, "kf"); }
};

// How many value records carry each source.position (tombstones are not counted).
std::map<std::string, int> CopiesByPosition(const std::vector<KafkaRecord>& records) {
  std::map<std::string, int> copies;
  for (const KafkaRecord& record : records) {
    if (record.value) ++copies[json::parse(*record.value)["source"]["position"]];
  }
  return copies;
}

struct OffsetsRecord {
  std::string position;
  std::string checkpoint;
};

// The offsets records of source kf's sink `events`, in the order they were written.
std::vector<OffsetsRecord> ReadOffsets(const MockKafka& kafka) {
  std::vector<OffsetsRecord> offsets;
  for (const KafkaRecord& record : ReadKafkaTopic(kafka.bootstrap(), kOffsetsTopic)) {
    BOOST_REQUIRE(record.key == std::string(R"({"source":"kf","sink":"events"})"));
    BOOST_REQUIRE(record.value.has_value());
    json value = json::parse(*record.value);
    BOOST_TEST(value["transactional_id"] == "tributary-kf-events");
    offsets.push_back(
        {value["position"].is_string() ? value["position"].get<std::string>() : "",
         value["checkpoint"].is_string() ? value["checkpoint"].get<std::string>() : ""});
  }
  return offsets;
}

// A PostgreSQL checkpoint "X/Y" as a number, so that checkpoints compare as LSNs.
uint64_t Lsn(const std::string& checkpoint) {
  const size_t slash = checkpoint.find('/');
  BOOST_REQUIRE(slash != std::string::npos);
  return (std::stoull(checkpoint.substr(0, slash), nullptr, 16) << 32) |
         std::stoull(checkpoint.substr(slash + 1, checkpoint.find(' ') - slash - 1), nullptr, 16);
}

// Offsets records must only move forward: positions and checkpoints never go back.
void CheckOffsetsIncrease(const std::vector<OffsetsRecord>& offsets) {
  size_t backwards = 0;
  for (size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i].position < offsets[i - 1].position ||
        Lsn(offsets[i].checkpoint) < Lsn(offsets[i - 1].checkpoint)) {
      ++backwards;
    }
  }
  BOOST_TEST(backwards == 0u);
}

// The value of `key=` (up to the next space) on each log line that contains `marker`.
std::vector<std::string> LogValues(const std::string& log, std::string_view marker,
                                   std::string_view key) {
  std::vector<std::string> values;
  // Built with fmt: g++ 12 -O3 reports a false -Wrestrict for " " + key + "=".
  const std::string needle = fmt::format(" {}=", key);
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(marker) == std::string::npos) continue;
    const size_t at = line.find(needle);
    if (at == std::string::npos) continue;
    const size_t start = at + key.size() + 2;
    values.push_back(line.substr(start, line.find(' ', start) - start));
  }
  return values;
}

// How many of the log's lines contain `marker`.
size_t CountLines(const std::string& log, std::string_view marker) {
  size_t count = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) count += line.find(marker) != line.npos;
  return count;
}

// Sum of `skipped=N` over the agent's "Skipped events already committed" lines.
uint64_t SkippedInLog(const std::string& log) {
  uint64_t total = 0;
  for (const std::string& skipped :
       LogValues(log, "Skipped events already committed to Kafka sink=events", "skipped")) {
    total += std::stoull(skipped);
  }
  return total;
}

void StopAgent(AgentProcess& agent) {
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(20)).value_or(-1) == 0, agent.Log());
}

// Injected errors write nothing, and neither retriable produce errors nor retriable EndTxn
// errors abort a transaction: every change arrives exactly once, and the offsets topic ends at
// the last record. One request in flight per connection: with several, the mock answers the
// request behind a failed one with OUT_OF_ORDER_SEQUENCE_NUMBER ("skipped sequence numbers"),
// which makes librdkafka abort the transaction (docs/kafka-sink.md); that path is the next case.
BOOST_AUTO_TEST_CASE(retriable_errors_leave_no_duplicates) {
  Setup setup("librdkafka: { max.in.flight.requests.per.connection: \"1\" }");
  auto agent = setup.StartAgent();
  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer([&] { committed = RunT1Workload(*setup.pg, stop, 3, 400, milliseconds(3)); });
  std::this_thread::sleep_for(milliseconds(300));
  setup.kafka->PushErrors(kApiProduce, kErrNotLeaderForPartition, 8);
  std::this_thread::sleep_for(milliseconds(300));
  setup.kafka->PushErrors(kApiEndTxn, kErrNotCoordinator, 2);
  writer.join();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  BOOST_TEST(agent->running());
  StopAgent(*agent);

  const auto records = ReadKafkaTopic(setup.kafka->bootstrap(), kTopic);
  const auto copies = CopiesByPosition(records);
  size_t duplicates = 0;
  for (const auto& [position, count] : copies) duplicates += count > 1 ? 1 : 0;
  BOOST_TEST_MESSAGE("transactions " << committed << ", records " << records.size());
  BOOST_TEST(committed == 400);
  BOOST_TEST(duplicates == 0u);
  BOOST_TEST(CompareWithT1(*setup.pg, ReadEvents(records).events) == 0u);
  BOOST_TEST(agent->Log().find("Aborting the transaction") == std::string::npos, agent->Log());
  const auto offsets = ReadOffsets(*setup.kafka);
  BOOST_TEST_MESSAGE("offsets records " << offsets.size());
  BOOST_REQUIRE(!offsets.empty());
  CheckOffsetsIncrease(offsets);
  BOOST_TEST(offsets.back().position == copies.rbegin()->first);
}

// A source that starts without a checkpoint is a new lineage (docs/kafka-sink.md): an offsets
// record an earlier history of the source left, far ahead of this server's positions and of no
// lineage, does not make its changes look committed already.
BOOST_AUTO_TEST_CASE(a_source_that_starts_over_is_not_taken_for_a_replay) {
  Setup setup;
  const auto planted = setup.dir.path() / "planted.txt";
  std::ofstream(planted)
      << R"({"source":"kf","sink":"events"}|{"source":"kf","sink":"events",)"
      << R"("transactional_id":"tributary-kf-events","checkpoint":"FFFFFFFF/FFFFFFFF",)"
      << R"("position":"FFFFFFFFFFFFFFFF/FFFFFFFFFFFFFFFF/FFFFFFFF","ts_ms":0})"
      << "\n";
  BOOST_REQUIRE(std::system(fmt::format("kcat -P -b {} -t {} -p 0 -K '|' -l {}",
                                        setup.kafka->bootstrap(), kOffsetsTopic, planted.string())
                                .c_str()) == 0);
  auto agent = setup.StartAgent();
  std::atomic<bool> stop{false};
  const int committed = RunT1Workload(*setup.pg, stop, 5, 50, milliseconds(2));
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  StopAgent(*agent);

  BOOST_TEST(committed == 50);
  const auto records = ReadKafkaTopic(setup.kafka->bootstrap(), kTopic);
  BOOST_TEST(CompareWithT1(*setup.pg, ReadEvents(records).events) == 0u);
  BOOST_TEST(SkippedInLog(agent->Log()) == 0u);
  const auto offsets = ReadKafkaTopic(setup.kafka->bootstrap(), kOffsetsTopic);
  BOOST_REQUIRE(offsets.size() > 1u);
  BOOST_TEST(json::parse(*offsets.back().value)["lineage"].get<std::string>().size() == 16u);
}

// An abortable error (UNSUPPORTED_FOR_MESSAGE_FORMAT on a Produce) aborts the transaction; the
// pipeline replays from its checkpoint and the sink re-reads the offsets topic. Nothing is lost;
// the only second copies are of records after the position committed before the abort, which the
// mock shows although their transaction was aborted.
BOOST_AUTO_TEST_CASE(abortable_error_aborts_and_replays_without_loss) {
  Setup setup;
  auto agent = setup.StartAgent();
  std::atomic<bool> stop{false};
  std::thread writer([&] { RunT1Workload(*setup.pg, stop, 5, 300, milliseconds(2)); });
  std::this_thread::sleep_for(milliseconds(500));
  setup.kafka->PushErrors(kApiProduce, kErrUnsupportedForMessageFormat, 1);
  writer.join();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  BOOST_TEST(agent->running());
  StopAgent(*agent);

  const std::string log = agent->Log();
  BOOST_REQUIRE_MESSAGE(log.find("Aborting the transaction") != std::string::npos, log);
  // The read-back after the abort says what was committed before it.
  std::vector<std::string> ready =
      LogValues(log, "Transactions ready sink=events ", "committed_position");
  BOOST_REQUIRE(ready.size() >= 2u);
  for (std::string& position : ready) {
    if (position == "none") position.clear();
  }
  const auto records = ReadKafkaTopic(setup.kafka->bootstrap(), kTopic);
  size_t duplicates = 0;
  size_t early_duplicates = 0;
  for (const auto& [position, count] : CopiesByPosition(records)) {
    if (count == 1) continue;
    ++duplicates;
    // Each abort (a read-back after the first) may have left one copy after what was committed.
    int allowed = 1;
    for (size_t i = 1; i < ready.size(); ++i) allowed += position > ready[i] ? 1 : 0;
    if (count > allowed) ++early_duplicates;
  }
  // An abort is not always followed by a read-back: the agent may stop in the backoff first.
  BOOST_TEST_MESSAGE("aborts " << CountLines(log, "Aborting the transaction sink=events")
                               << ", read-backs after one " << ready.size() - 1
                               << ", duplicates (aborted, visible on the mock) " << duplicates);
  BOOST_TEST(early_duplicates == 0u, log);
  BOOST_TEST(CompareWithT1(*setup.pg, ReadEvents(records).events) == 0u, log);
  CheckOffsetsIncrease(ReadOffsets(*setup.kafka));
}

// A transaction that fails on one partition only: the mock has stored the rest of it, marker
// included, before anything is committed, and that partition's changes come with the replay. So
// the marker's visibility is no proof on the mock; the agent's checkpoint is (Setup::CatchUp).
// Partition 0 of the data topic is led by broker 2, everything else by broker 1, and broker 2's
// next Produce fails, answered late.
BOOST_AUTO_TEST_CASE(marker_visible_before_the_replay_is_not_caught_up) {
  Setup setup;
  for (int partition = 0; partition < kPartitions; ++partition) {
    setup.kafka->Command(fmt::format("leader {} {} {}", kTopic, partition, partition == 0 ? 2 : 1));
  }
  setup.kafka->Command(fmt::format("leader {} 0 1", kOffsetsTopic));
  auto agent = setup.StartAgent();
  std::string rows;
  for (int id = 1; id <= 60; ++id) {
    rows += fmt::format("{}({}, 0, 'n{}')", id == 1 ? "" : ",", id, id);
  }
  setup.pg->Exec("INSERT INTO t1 VALUES " + rows, "kf");
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  std::map<std::string, int> partition_of;
  for (const KafkaRecord& record : ReadKafkaTopic(setup.kafka->bootstrap(), kTopic)) {
    if (record.key) partition_of[*record.key] = record.partition;
  }
  int on_failing = 0;
  int marker = 0;
  for (int id = 1; id <= 60; ++id) {
    if (partition_of.at(fmt::format("{{\"id\":{}}}", id)) == 0) {
      ++on_failing;
    } else if (marker == 0) {
      marker = id;
    }
  }
  BOOST_REQUIRE(on_failing > 0);
  BOOST_REQUIRE(marker > 0);

  // Answered after 3 s: the replay cannot have run by the time the marker shows.
  setup.kafka->Command(
      fmt::format("broker_error 2 {} {} 3000 1", kApiProduce, kErrUnsupportedForMessageFormat));
  setup.pg->Exec(fmt::format("BEGIN; UPDATE t1 SET v = 1 WHERE id > 0 AND id <> {0}; "
                             "UPDATE t1 SET v = -7 WHERE id = {0}; COMMIT",
                             marker),
                 "kf");
  const std::string marker_key = fmt::format("{{\"id\":{}}}", marker);
  size_t differ_when_visible = 0;
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              const auto records = ReadKafkaTopic(setup.kafka->bootstrap(), kTopic);
                              for (const KafkaRecord& record : records) {
                                if (record.key != marker_key || !record.value) continue;
                                if (json::parse(*record.value)["after"]["v"] != -7) continue;
                                differ_when_visible =
                                    CompareWithT1(*setup.pg, ReadEvents(records).events);
                                return true;
                              }
                              return false;
                            },
                            seconds(30)),
                        LogOf{*agent});
  BOOST_TEST_MESSAGE("rows on the failing partition " << on_failing
                                                      << ", rows behind when the marker showed "
                                                      << differ_when_visible);
  // The failed partition's updates are not in the topic yet: the replay has not run. Other
  // partitions' updates of the same transaction may still be in flight when the marker shows
  // (with every fsync of the agent slowed to 6 ms, 7 were), hence at least.
  BOOST_TEST(differ_when_visible >= static_cast<size_t>(on_failing), agent->Log());
  // Stopping here, as a test that trusts the marker would, is a clean stop (the abort while
  // stopping is no failure) that leaves those rows to the next start: they are missing now...
  StopAgent(*agent);
  BOOST_TEST(agent->Log().find("Aborting the transaction") != std::string::npos, agent->Log());
  const auto stopped = ReadEvents(ReadKafkaTopic(setup.kafka->bootstrap(), kTopic)).events;
  BOOST_TEST(CompareWithT1(*setup.pg, stopped) == static_cast<size_t>(on_failing));
  // ...and not lost: the checkpoint stayed behind them, and the next start replays them.
  agent = setup.StartAgent();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-2), LogOf{*agent});
  BOOST_TEST(agent->running());
  StopAgent(*agent);
  BOOST_TEST(CompareWithT1(*setup.pg,
                           ReadEvents(ReadKafkaTopic(setup.kafka->bootstrap(), kTopic)).events) ==
             0u);
}

// kill -9 during a workload, three times. A file sink that acks every 3 s keeps the agent's own
// checkpoint behind what Kafka committed, so each restart replays committed changes, which the
// sink must drop. After each kill the test notes the committed position (the offsets topic's
// last record) and the records after it (the open transaction, visible on the mock): only those
// may appear again, once per kill that caught them.
BOOST_AUTO_TEST_CASE(kill_9_replays_only_the_uncommitted_tail) {
  Setup setup("", 3000);
  auto agent = setup.StartAgent();
  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer(
      [&] { committed = RunT1Workload(*setup.pg, stop, 4, 1 << 30, milliseconds(5)); });
  std::mt19937 random(11);
  std::map<std::string, int> in_tails;  // position -> how many kills left it uncommitted
  uint64_t skipped = 0;
  for (int k = 0; k < 3; ++k) {
    std::this_thread::sleep_for(milliseconds(1000 + random() % 1500));
    agent->Signal(SIGKILL);
    BOOST_REQUIRE(agent->Wait(seconds(10)).value_or(-1) == 128 + SIGKILL);
    skipped += SkippedInLog(agent->Log());
    const auto offsets = ReadOffsets(*setup.kafka);
    const std::string committed_position = offsets.empty() ? "" : offsets.back().position;
    for (const auto& [position, count] :
         CopiesByPosition(ReadKafkaTopic(setup.kafka->bootstrap(), kTopic))) {
      if (position > committed_position) ++in_tails[position];
    }
    agent = setup.StartAgent();
  }
  std::this_thread::sleep_for(seconds(1));
  stop.store(true);
  writer.join();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  StopAgent(*agent);
  skipped += SkippedInLog(agent->Log());

  const auto records = ReadKafkaTopic(setup.kafka->bootstrap(), kTopic);
  size_t duplicates = 0;
  size_t unexplained = 0;
  for (const auto& [position, count] : CopiesByPosition(records)) {
    if (count == 1) continue;
    ++duplicates;
    auto tail = in_tails.find(position);
    if (count > 1 + (tail == in_tails.end() ? 0 : tail->second)) ++unexplained;
  }
  BOOST_TEST_MESSAGE("transactions " << committed << ", records " << records.size()
                                     << ", duplicates " << duplicates << ", in tails "
                                     << in_tails.size() << ", skipped on replay " << skipped);
  BOOST_TEST(committed > 100);
  BOOST_TEST(unexplained == 0u);
  // The restarts did replay committed changes, and the sink dropped them.
  BOOST_TEST(skipped > 0u);
  BOOST_TEST(CompareWithT1(*setup.pg, ReadEvents(records).events) == 0u);
  CheckOffsetsIncrease(ReadOffsets(*setup.kafka));
}

// A record librdkafka refuses before sending goes to the dead-letter topic in the same
// transaction; one the broker rejects aborts the transaction (librdkafka makes it abortable), and
// on the replay the sink writes it to the dead-letter topic instead. The error is injected with
// nothing else in flight: it fails the whole next Produce request.
BOOST_AUTO_TEST_CASE(dead_letters_are_written_inside_the_transaction) {
  Setup setup("dlq_topic: kf.dlq\nlibrdkafka: { message.max.bytes: \"1500\" }");
  setup.kafka->CreateTopic("kf.dlq", 1);
  auto dead_letter_keys = [&] {
    std::set<std::string> keys;
    for (const KafkaRecord& record : ReadKafkaTopic(setup.kafka->bootstrap(), "kf.dlq")) {
      keys.insert(record.key.value_or(""));
    }
    return keys;
  };
  auto agent = setup.StartAgent();
  setup.pg->Exec("INSERT INTO t1 VALUES (1, 1, 'small')", "kf");
  setup.pg->Exec("INSERT INTO t1 VALUES (2, 2, repeat('x', 1800))", "kf");
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  BOOST_REQUIRE(dead_letter_keys().count("{\"id\":2}") == 1u);
  setup.kafka->PushErrors(kApiProduce, kErrMsgSizeTooLarge, 1);
  setup.pg->Exec("INSERT INTO t1 VALUES (3, 3, 'refused')", "kf");
  BOOST_REQUIRE_MESSAGE(
      WaitFor([&] { return dead_letter_keys().count("{\"id\":3}") == 1; }, seconds(40)),
      LogOf{*agent});
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-2), LogOf{*agent});
  BOOST_TEST(agent->running());
  StopAgent(*agent);
  BOOST_TEST(agent->Log().find("Aborting the transaction") != std::string::npos);
  const auto keys = dead_letter_keys();
  BOOST_TEST(keys.size() == 2u);
  std::set<std::string> delivered;
  for (const KafkaRecord& record : ReadKafkaTopic(setup.kafka->bootstrap(), kTopic)) {
    delivered.insert(record.key.value_or(""));
  }
  BOOST_TEST(delivered.count("{\"id\":1}") == 1u);
  BOOST_TEST(delivered.count("{\"id\":2}") == 0u);
}

// The mock does not fence a second producer with the same transactional.id (each
// InitProducerId mints a new producer id), so the fencing errors a broker would send are
// injected: PRODUCER_FENCED on EndTxn, then INVALID_PRODUCER_EPOCH on Produce. Each stops the
// agent with exit 75 and the fencing message; a restart loses nothing.
BOOST_AUTO_TEST_CASE(fencing_stops_the_agent_with_exit_75) {
  Setup setup;
  auto agent = setup.StartAgent();
  setup.pg->Exec("INSERT INTO t1 VALUES (1, 1, 'before')", "kf");
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  const std::string fenced =
      "fenced: another producer took over transactional.id \"tributary-kf-events\"";

  setup.kafka->PushErrors(kApiEndTxn, kErrProducerFenced, 1);
  setup.pg->Exec("INSERT INTO t1 VALUES (2, 2, 'x')", "kf");
  BOOST_TEST(agent->Wait(seconds(30)).value_or(-1) == 75, agent->Log());
  BOOST_TEST(agent->Log().find(fenced) != std::string::npos, agent->Log());

  agent = setup.StartAgent();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-2), LogOf{*agent});
  setup.kafka->PushErrors(kApiProduce, kErrInvalidProducerEpoch, 1);
  setup.pg->Exec("INSERT INTO t1 VALUES (3, 3, 'y')", "kf");
  BOOST_TEST(agent->Wait(seconds(30)).value_or(-1) == 75, agent->Log());
  BOOST_TEST(agent->Log().find(fenced) != std::string::npos, agent->Log());

  agent = setup.StartAgent();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-3), LogOf{*agent});
  StopAgent(*agent);
  BOOST_TEST(CompareWithT1(*setup.pg,
                           ReadEvents(ReadKafkaTopic(setup.kafka->bootstrap(), kTopic)).events) ==
             0u);
}

}  // namespace
}  // namespace tributary::testing
