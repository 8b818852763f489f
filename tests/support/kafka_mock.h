#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/pg_server.h"

namespace tributary::testing {

// Kafka ApiKeys and error codes the tests inject (rdkafka_protocol.h is not installed).
inline constexpr int kApiProduce = 0;
inline constexpr int kErrNotLeaderForPartition = 6;
inline constexpr int kErrMsgSizeTooLarge = 10;
inline constexpr int kErrTopicAuthorizationFailed = 29;

// librdkafka's mock cluster (3 brokers) in a tributary_mock_kafka child process, which outlives
// any agent the test kills. Start() throws when it does not come up: a missing cluster fails
// the test. Destruction closes its stdin, which ends it.
class MockKafka {
 public:
  static std::unique_ptr<MockKafka> Start();
  ~MockKafka();
  MockKafka(const MockKafka&) = delete;
  MockKafka& operator=(const MockKafka&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }

  // Sends one command line (see tests/tools/mock_kafka.cpp) and throws unless it says "ok".
  void Command(const std::string& line);
  void CreateTopic(const std::string& name, int partitions);
  void SetBrokerDown(int broker);
  void SetBrokerUp(int broker);
  // The next `count` requests with `api_key`, cluster-wide, fail with `error` (nothing written).
  void PushErrors(int api_key, int error, int count);

 private:
  MockKafka() = default;
  std::string ReadLine();

  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffered_;
  std::string bootstrap_;
};

// One record as kcat -J shows it.
struct KafkaRecord {
  std::string topic;
  int partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;    // nullopt: null key
  std::optional<std::string> value;  // nullopt: null value (a tombstone)
  std::map<std::string, std::string> headers;
};

// Every record of `topic` (all partitions, each in offset order, partitions in turn), read with
// kcat. An absent topic has no records.
std::vector<KafkaRecord> ReadKafkaTopic(const std::string& bootstrap, const std::string& topic);

// Writes a config for one postgres source named `source` (snapshot: never) feeding one kafka
// sink named `events`, and returns its path. `extra_sink_yaml` lines are appended to the sink's
// mapping (indented by four spaces).
std::filesystem::path WritePgKafkaConfig(const std::filesystem::path& dir, const PgServer& pg,
                                         const std::string& dbname, const std::string& source,
                                         const std::string& tables_yaml, const std::string& brokers,
                                         const std::string& extra_sink_yaml = "");

}  // namespace tributary::testing
