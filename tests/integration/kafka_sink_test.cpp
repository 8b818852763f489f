#define BOOST_TEST_MODULE kafka_sink_test
#include "sinks/kafka/kafka_sink.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/pg_kafka_setup.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kPartitions = 6;
const std::string kTopic = "kf.public.t1";

// The Java client's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), written from its
// definition rather than from librdkafka's, so that the test checks compatibility.
int32_t JavaMurmur2(const std::string& data) {
  const uint32_t seed = 0x9747b28c;
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const size_t length = data.size();
  uint32_t h = seed ^ static_cast<uint32_t>(length);
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t length4 = length / 4;
  for (size_t i = 0; i < length4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = bytes[i4] | (bytes[i4 + 1] << 8) | (bytes[i4 + 2] << 16) |
                 (static_cast<uint32_t>(bytes[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = length & ~size_t{3};
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= bytes[tail];
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

std::string Header(const KafkaRecord& record, const std::string& name) {
  auto it = record.headers.find(name);
  return it == record.headers.end() ? "<missing>" : it->second;
}

int JavaPartition(const std::string& key, int partitions) {
  return static_cast<int>((static_cast<uint32_t>(JavaMurmur2(key)) & 0x7fffffff) %
                          static_cast<uint32_t>(partitions));
}

// PostgreSQL with t1, the mock cluster with its topic, and a config feeding the kafka sink
// `events` with `extra_sink_yaml`.
struct Setup : PgKafkaSetup {
  explicit Setup(const std::string& extra_sink_yaml = "") : PgKafkaSetup(kTopic, kPartitions) {
    config = WritePgKafkaConfig(dir.path(), *pg, "kf", "kf", "[public.t1]", kafka->bootstrap(),
                                extra_sink_yaml);
  }
};

void StopAgent(AgentProcess& agent) {
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(20)).value_or(-1) == 0, agent.Log());
}

BOOST_AUTO_TEST_CASE(end_to_end_keys_partitions_headers_tombstones) {
  Setup setup;
  auto agent = setup.StartAgent();
  std::atomic<bool> stop{false};
  const int committed = RunT1Workload(*setup.pg, stop, 1, 300);
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  StopAgent(*agent);

  std::vector<KafkaRecord> records = ReadKafkaTopic(setup.kafka->bootstrap(), kTopic);
  BOOST_TEST_MESSAGE("transactions " << committed << ", records " << records.size());
  // Records by (partition, offset), to find what follows a delete.
  std::map<std::pair<int, int64_t>, const KafkaRecord*> at;
  for (const KafkaRecord& record : records) at[{record.partition, record.offset}] = &record;
  size_t deletes = 0;
  size_t bad_partition = 0;
  size_t bad_key = 0;
  size_t bad_headers = 0;
  size_t missing_tombstones = 0;
  size_t tombstones = 0;
  for (const KafkaRecord& record : records) {
    BOOST_REQUIRE(record.key.has_value());
    if (JavaPartition(*record.key, kPartitions) != record.partition) ++bad_partition;
    if (!record.value) {
      ++tombstones;
      continue;
    }
    json event = json::parse(*record.value);
    const std::string op = event["op"];
    const json& image = op == "d" ? event["before"] : event["after"];
    if (json::parse(*record.key) != json{{"id", image["id"]}}) ++bad_key;
    if (Header(record, "op") != op ||
        Header(record, "source.position") != event["source"]["position"] ||
        Header(record, "source.schema_version") !=
            std::to_string(event["source"]["schema_version"].get<int>())) {
      ++bad_headers;
    }
    if (op == "d") {
      ++deletes;
      auto next = at.find({record.partition, record.offset + 1});
      if (next == at.end() || next->second->value || next->second->key != record.key) {
        ++missing_tombstones;
      }
    }
  }
  BOOST_TEST(deletes > 20u);
  BOOST_TEST(tombstones == deletes);
  BOOST_TEST(missing_tombstones == 0u);
  BOOST_TEST(bad_partition == 0u);
  BOOST_TEST(bad_key == 0u);
  BOOST_TEST(bad_headers == 0u);
  // Keys spread over every partition.
  std::set<int> partitions;
  for (const KafkaRecord& record : records) partitions.insert(record.partition);
  BOOST_TEST(partitions.size() == static_cast<size_t>(kPartitions));

  KafkaReplay replay = ReadEvents(records);
  BOOST_TEST(replay.duplicates == 0u);
  BOOST_TEST(CompareWithT1(*setup.pg, replay.events) == 0u);
}

BOOST_AUTO_TEST_CASE(tombstones_false_writes_none) {
  Setup setup("tombstones: false");
  auto agent = setup.StartAgent();
  setup.pg->Exec("INSERT INTO t1 VALUES (1, 1, 'a'), (2, 2, 'b'); DELETE FROM t1 WHERE id = 1",
                 "kf");
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  StopAgent(*agent);
  auto records = ReadKafkaTopic(setup.kafka->bootstrap(), kTopic);
  BOOST_TEST(records.size() == 4u);  // two inserts, a delete, the marker
  for (const KafkaRecord& record : records) BOOST_TEST(record.value.has_value());
}

BOOST_AUTO_TEST_CASE(broker_down_mid_stream_loses_nothing) {
  Setup setup;
  auto agent = setup.StartAgent();
  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer(
      [&] { committed = RunT1Workload(*setup.pg, stop, 2, 1 << 30, milliseconds(2)); });
  for (int broker = 1; broker <= 3; ++broker) {
    std::this_thread::sleep_for(milliseconds(700));
    setup.kafka->SetBrokerDown(broker);
    std::this_thread::sleep_for(milliseconds(1500));
    setup.kafka->SetBrokerUp(broker);
  }
  stop.store(true);
  writer.join();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  BOOST_TEST(agent->running());
  StopAgent(*agent);
  KafkaReplay replay = ReadEvents(ReadKafkaTopic(setup.kafka->bootstrap(), kTopic));
  BOOST_TEST_MESSAGE("transactions " << committed << ", records " << replay.records
                                     << ", duplicates " << replay.duplicates);
  BOOST_TEST(committed > 50);
  BOOST_TEST(CompareWithT1(*setup.pg, replay.events) == 0u);
}

// One request in flight per connection: the mock appends a batch whose sequence follows a gap
// that a real broker refuses, and librdkafka then acks the missing records implicitly
// (docs/kafka-sink.md, "What the mock cannot prove"). With pipelining off, a failed batch is
// retried before anything after it is sent, which the mock does model.
BOOST_AUTO_TEST_CASE(retriable_errors_are_survived_without_duplicates) {
  Setup setup("librdkafka: { max.in.flight.requests.per.connection: \"1\" }");
  auto agent = setup.StartAgent();
  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer([&] { committed = RunT1Workload(*setup.pg, stop, 3, 400); });
  std::this_thread::sleep_for(milliseconds(300));
  setup.kafka->PushErrors(kApiProduce, kErrNotLeaderForPartition, 8);
  writer.join();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  BOOST_TEST(agent->running());
  StopAgent(*agent);
  KafkaReplay replay = ReadEvents(ReadKafkaTopic(setup.kafka->bootstrap(), kTopic));
  BOOST_TEST_MESSAGE("transactions " << committed << ", records " << replay.records);
  // Injected errors write nothing, so an idempotent retry must not duplicate.
  BOOST_TEST(replay.duplicates == 0u);
  BOOST_TEST(CompareWithT1(*setup.pg, replay.events) == 0u);
}

BOOST_AUTO_TEST_CASE(fatal_error_exits_75_and_restart_loses_nothing) {
  Setup setup;
  auto agent = setup.StartAgent();
  setup.pg->Exec("INSERT INTO t1 VALUES (1, 1, 'before')", "kf");
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  // Not retriable and not a per-record rejection: the sink must stop the pipeline.
  setup.kafka->PushErrors(kApiProduce, kErrTopicAuthorizationFailed, 1);
  setup.pg->Exec("INSERT INTO t1 VALUES (2, 2, 'lost?')", "kf");
  BOOST_TEST(agent->Wait(seconds(30)).value_or(-1) == 75, agent->Log());
  BOOST_TEST(agent->Log().find("kafka-sink") != std::string::npos);
  setup.pg->Exec("UPDATE t1 SET v = 3 WHERE id = 2", "kf");

  agent = setup.StartAgent();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-2), LogOf{*agent});
  StopAgent(*agent);
  KafkaReplay replay = ReadEvents(ReadKafkaTopic(setup.kafka->bootstrap(), kTopic));
  BOOST_TEST(CompareWithT1(*setup.pg, replay.events) == 0u);
  bool insert_of_2 = false;
  for (const json& event : replay.events) {
    insert_of_2 = insert_of_2 || (event["op"] == "c" && event["after"]["id"] == 2);
  }
  BOOST_TEST(insert_of_2);
}

// The injected error fails the next Produce request as a whole, so it is injected when nothing
// else is in flight, and the marker after it waits for the dead letter: a record sharing the
// request would be a dead letter too.
BOOST_AUTO_TEST_CASE(records_rejected_for_good_go_to_the_dead_letter_topic) {
  Setup setup("dlq_topic: kf.dlq\nlibrdkafka: { message.max.bytes: \"1500\" }");
  setup.kafka->CreateTopic("kf.dlq", 1);
  // Whether `topic` holds a record with `key` (any record, without one) within 40 s.
  auto appears = [&](const std::string& topic, const std::optional<std::string>& key) {
    return WaitFor(
        [&] {
          for (const KafkaRecord& record : ReadKafkaTopic(setup.kafka->bootstrap(), topic)) {
            if (!key || record.key == key) return true;
          }
          return false;
        },
        seconds(40));
  };
  auto agent = setup.StartAgent();
  setup.pg->Exec("INSERT INTO t1 VALUES (1, 1, 'small')", "kf");
  // Bigger than message.max.bytes: librdkafka refuses it before sending.
  setup.pg->Exec("INSERT INTO t1 VALUES (2, 2, repeat('x', 1800))", "kf");
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  BOOST_REQUIRE(appears("kf.dlq", "{\"id\":2}"));
  BOOST_REQUIRE(appears("kf.schema-changes", std::nullopt));
  // Rejected by the broker.
  setup.kafka->PushErrors(kApiProduce, kErrMsgSizeTooLarge, 1);
  setup.pg->Exec("INSERT INTO t1 VALUES (3, 3, 'refused')", "kf");
  BOOST_REQUIRE(appears("kf.dlq", "{\"id\":3}"));
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-2), LogOf{*agent});
  BOOST_TEST(agent->running());
  StopAgent(*agent);

  auto letters = ReadKafkaTopic(setup.kafka->bootstrap(), "kf.dlq");
  BOOST_REQUIRE_MESSAGE(letters.size() == 2u, agent->Log());
  std::set<std::string> keys;
  for (KafkaRecord& letter : letters) {
    BOOST_TEST(letter.headers["dlq.error"] == "MSG_SIZE_TOO_LARGE");
    BOOST_TEST(letter.headers["dlq.topic"] == kTopic);
    BOOST_TEST(letter.headers["source.position"].size() > 10u);
    BOOST_TEST(letter.headers["op"] == "c");
    if (letter.key) keys.insert(*letter.key);
    // Too large to carry: the position says where to find it.
    BOOST_TEST(!letter.value.has_value());
  }
  BOOST_TEST(keys.count("{\"id\":2}") == 1u);
  BOOST_TEST(keys.count("{\"id\":3}") == 1u);
  BOOST_TEST(agent->Log().find("dead_letters=2") != std::string::npos);
  // The rest went on.
  auto records = ReadKafkaTopic(setup.kafka->bootstrap(), kTopic);
  std::set<std::string> delivered;
  for (const KafkaRecord& record : records) delivered.insert(record.key.value_or(""));
  BOOST_TEST(delivered.count("{\"id\":1}") == 1u);
  BOOST_TEST(delivered.count("{\"id\":2}") == 0u);
}

BOOST_AUTO_TEST_CASE(kill_9_mid_stream_then_restart_loses_nothing) {
  Setup setup;
  auto agent = setup.StartAgent();
  std::atomic<bool> stop{false};
  int committed = 0;
  std::thread writer(
      [&] { committed = RunT1Workload(*setup.pg, stop, 4, 1 << 30, milliseconds(2)); });
  std::mt19937 random(11);
  for (int k = 0; k < 4; ++k) {
    std::this_thread::sleep_for(milliseconds(500 + random() % 1500));
    agent->Signal(SIGKILL);
    BOOST_REQUIRE(agent->Wait(seconds(10)).value_or(-1) == 128 + SIGKILL);
    agent = setup.StartAgent();
  }
  std::this_thread::sleep_for(seconds(1));
  stop.store(true);
  writer.join();
  BOOST_REQUIRE_MESSAGE(setup.CatchUp(-1), LogOf{*agent});
  StopAgent(*agent);
  KafkaReplay replay = ReadEvents(ReadKafkaTopic(setup.kafka->bootstrap(), kTopic));
  // At-least-once: replays after each kill are allowed, counted, and dropped by position.
  BOOST_TEST_MESSAGE("transactions " << committed << ", records " << replay.records
                                     << ", duplicates " << replay.duplicates);
  BOOST_TEST(committed > 100);
  BOOST_TEST(CompareWithT1(*setup.pg, replay.events) == 0u);
}

// Source shop's table public.t (database shopdb) at `version`, with the key column id int4.
std::shared_ptr<TableSchema> ShopTable(uint32_t version) {
  auto table = std::make_shared<TableSchema>();
  table->connector = "postgresql";
  table->source = "shop";
  table->database = "shopdb";
  table->schema = "public";
  table->table = "t";
  table->version = version;
  ColumnSchema id;
  id.name = "id";
  id.type_name = "int4";
  id.canonical_type = "int32";
  id.key = true;
  id.nullable = false;
  table->columns = {id};
  return table;
}

// The sink in-process against the mock cluster: schema-change events (which the pipeline puts
// before a version's first row) go to {source}.schema-changes, keyed by source and table, and
// `schemas: true` wraps keys and values in the Connect form.
BOOST_AUTO_TEST_CASE(schema_changes_go_to_their_topic_and_schemas_true_wraps_records) {
  auto kafka = MockKafka::Start();
  kafka->CreateTopic("shop.schema-changes", 1);
  kafka->CreateTopic("shop.public.t", 1);
  auto table = ShopTable(2);
  table->previous_version = 1;

  Batch batch;
  batch.sequence = 1;
  Event change;
  change.op = Op::kSchemaChange;
  change.table = batch.Retain(table);
  change.position = batch.AddValue(ValueKind::kString, "0000000000000001");
  batch.events.push_back(change);
  Event insert = change;
  insert.op = Op::kCreate;
  insert.after = static_cast<uint32_t>(batch.values.size());
  batch.values.push_back(batch.AddValue(ValueKind::kRaw, "42"));
  batch.events.push_back(insert);
  Event del = insert;
  del.op = Op::kDelete;
  del.before = del.after;
  del.after.reset();
  del.position = batch.AddValue(ValueKind::kString, "0000000000000002");
  batch.events.push_back(del);
  batch.commit_position = "0000000000000002";

  std::vector<uint64_t> acks;
  KafkaSink sink(KafkaSinkOptions{.name = "events",
                                  .brokers = kafka->bootstrap(),
                                  .topic_template = "{source}.{schema}.{table}",
                                  .tombstones = true,
                                  .schemas = true,
                                  .dlq_topic = "",
                                  .librdkafka = {}});
  BOOST_REQUIRE(sink.Open([&](uint64_t sequence) { acks.push_back(sequence); }).ok());
  BOOST_REQUIRE(sink.Submit(batch).ok());
  BOOST_REQUIRE(sink.Flush().ok());
  BOOST_TEST(acks == std::vector<uint64_t>{1});
  sink.Close();

  auto changes = ReadKafkaTopic(kafka->bootstrap(), "shop.schema-changes");
  BOOST_REQUIRE(changes.size() == 1u);  // no tombstone, whatever the op
  BOOST_REQUIRE(changes[0].key && changes[0].value);
  const json key = json::parse(*changes[0].key);
  BOOST_TEST(key["payload"] == json::parse(R"({"source":"shop","table":"public.t"})"));
  BOOST_TEST(key["schema"]["name"] == "io.tributary.SchemaChangeKey");
  const json value = json::parse(*changes[0].value);
  BOOST_TEST(value["payload"]["version"] == 2);
  BOOST_TEST(value["payload"]["tableChanges"][0]["type"] == "ALTER");
  BOOST_TEST(Header(changes[0], "op") == "s");
  BOOST_TEST(Header(changes[0], "source.schema_version") == "2");
  BOOST_TEST(Header(changes[0], "source.position") == "0000000000000001");

  auto rows = ReadKafkaTopic(kafka->bootstrap(), "shop.public.t");
  BOOST_REQUIRE(rows.size() == 3u);  // insert, delete, tombstone
  BOOST_REQUIRE(rows[0].key && rows[0].value);
  const json row_key = json::parse(*rows[0].key);
  BOOST_TEST(row_key["schema"]["name"] == "shop.public.t.Key");
  BOOST_TEST(row_key["payload"] == json::parse(R"({"id":42})"));
  const json row = json::parse(*rows[0].value);
  BOOST_TEST(row["schema"]["name"] == "shop.public.t.Envelope");
  BOOST_TEST(row["schema"]["version"] == 2);
  BOOST_TEST(row["payload"]["after"]["id"] == 42);
  BOOST_TEST((rows[2].key == rows[1].key));
  BOOST_TEST(!rows[2].value.has_value());
}

// The sink's counters, which the agent exports as tributary_sink_dead_letters_total and
// tributary_sink_retries_total.
BOOST_AUTO_TEST_CASE(sink_counts_dead_letters_and_retries) {
  auto kafka = MockKafka::Start();
  kafka->CreateTopic("shop.public.t", 1);
  kafka->CreateTopic("shop.dlq", 1);
  auto table = ShopTable(1);
  ColumnSchema note;
  note.name = "note";
  note.type_name = "text";
  note.canonical_type = "string";
  table->columns.push_back(note);

  // Inserts of id 1.., the one numbered `oversized` with a value past message.max.bytes.
  auto make_batch = [&](uint64_t sequence, int first, int count, int oversized) {
    Batch batch;
    batch.sequence = sequence;
    for (int i = first; i < first + count; ++i) {
      Event insert;
      insert.op = Op::kCreate;
      insert.table = batch.Retain(table);
      insert.position = batch.AddValue(ValueKind::kString, fmt::format("{:016}", i));
      insert.after = static_cast<uint32_t>(batch.values.size());
      batch.values.push_back(batch.AddValue(ValueKind::kRaw, std::to_string(i)));
      batch.values.push_back(batch.AddValue(
          ValueKind::kString, i == oversized ? std::string(1800, 'x') : std::string("small")));
      batch.events.push_back(insert);
    }
    batch.commit_position = fmt::format("{:016}", first + count - 1);
    return batch;
  };

  std::vector<uint64_t> acks;
  KafkaSink sink(KafkaSinkOptions{
      .name = "events",
      .brokers = kafka->bootstrap(),
      .topic_template = "{source}.{schema}.{table}",
      .tombstones = true,
      .schemas = false,
      .dlq_topic = "shop.dlq",
      .librdkafka = {{"message.max.bytes", "1500"}, {"statistics.interval.ms", "100"}}});
  BOOST_REQUIRE(sink.Open([&](uint64_t sequence) { acks.push_back(sequence); }).ok());
  BOOST_TEST(sink.counters().dead_letters == 0u);
  BOOST_TEST(sink.counters().retries == 0u);

  // librdkafka refuses the oversized record before sending: one dead letter, the rest go on.
  BOOST_REQUIRE(sink.Submit(make_batch(1, 1, 3, 2)).ok());
  BOOST_REQUIRE(sink.Flush().ok());
  BOOST_TEST(acks == std::vector<uint64_t>{1});
  BOOST_TEST(sink.counters().dead_letters == 1u);
  BOOST_TEST(sink.counters().retries == 0u);

  // Refused by the broker with a retriable error: librdkafka re-sends, nothing is lost.
  kafka->PushErrors(kApiProduce, kErrNotLeaderForPartition, 3);
  BOOST_REQUIRE(sink.Submit(make_batch(2, 10, 2, 0)).ok());
  BOOST_REQUIRE(sink.Flush().ok());
  BOOST_TEST(acks == (std::vector<uint64_t>{1, 2}));
  // The count arrives with librdkafka's statistics (every 100 ms here); the first ones served
  // may predate the last re-send.
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (sink.counters().retries == 0 && std::chrono::steady_clock::now() < deadline) {
    BOOST_REQUIRE(sink.Poll().ok());
    std::this_thread::sleep_for(milliseconds(50));
  }
  for (int i = 0; i < 10; ++i) {
    BOOST_REQUIRE(sink.Poll().ok());
    std::this_thread::sleep_for(milliseconds(50));
  }
  BOOST_TEST_MESSAGE("retries " << sink.counters().retries);
  // Each of the 3 refused requests carried one or both records, so each record re-sent once
  // per refusal it met.
  BOOST_TEST(sink.counters().retries >= 3u);
  BOOST_TEST(sink.counters().retries <= 6u);
  BOOST_TEST(sink.counters().dead_letters == 1u);
  sink.Close();

  BOOST_TEST(ReadKafkaTopic(kafka->bootstrap(), "shop.dlq").size() == 1u);
  BOOST_TEST(ReadKafkaTopic(kafka->bootstrap(), "shop.public.t").size() == 4u);
}

}  // namespace
}  // namespace tributary::testing
