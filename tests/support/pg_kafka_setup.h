#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/agent_process.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/pg_server.h"
#include "tests/support/temp_dir.h"

namespace tributary::testing {

// PostgreSQL with database kf and table t1 (id int primary key, v int, note text), and the mock
// cluster with `topic` (kf.public.t1 for a source named kf). The test writes `config`.
struct PgKafkaSetup {
  PgKafkaSetup(const std::string& topic, int partitions);

  // Starts `tributary run` and waits until its replication slot is active.
  std::unique_ptr<AgentProcess> StartAgent();
  // Commits a marker row and waits until it is in the topic: everything before it is too.
  // With exactly_once on the mock that is not enough: aborted records are visible there.
  bool CatchUp(int marker);
  // CatchUp, then waits until source `source`'s checkpoint (saved only once every sink made
  // the marker durable, for a transactional sink after its commit) has passed the marker.
  bool CatchUpCommitted(int marker, const std::string& source);

  TempDir dir;
  std::unique_ptr<PgServer> pg;
  std::unique_ptr<MockKafka> kafka;
  std::string topic;
  std::filesystem::path config;
  int agents_started = 0;
};

// Random transactions of inserts, updates and deletes on t1 from one connection, until `stop`
// or `max_transactions`, with `pause` between them. Returns how many committed. Long runs are
// paced: the mock keeps only a few MB a partition and drops the oldest records past that.
int RunT1Workload(const PgServer& pg, const std::atomic<bool>& stop, unsigned seed,
                  int max_transactions = 1 << 30,
                  std::chrono::milliseconds pause = std::chrono::milliseconds(0));

struct KafkaReplay {
  std::vector<nlohmann::json> events;  // one per source.position, in position order
  size_t records = 0;                  // value records read (not tombstones)
  size_t duplicates = 0;               // value records whose source.position was seen before
};

// The records' envelopes in change order: copies of a position are counted, then dropped.
KafkaReplay ReadEvents(const std::vector<KafkaRecord>& records);

// Replays `events` into t1's rows and compares them with the table (a failed check for a row
// count that differs); returns how many rows differ or are missing.
size_t CompareWithT1(const PgServer& pg, const std::vector<nlohmann::json>& events);

}  // namespace tributary::testing
