#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "agent/core/event.h"
#include "sinks/kafka/kafka_sink.h"

namespace tributary {

struct KafkaClusterReport {
  std::vector<std::string> problems;
  std::vector<std::string> notes;
};

// `validate --connect` for one Kafka sink, each line starting with `path` (e.g. "sinks[0]").
// Asks the brokers for their metadata with the sink's own librdkafka settings (so TLS and SASL
// are checked too) and changes nothing: no topic is created, nothing is produced. Problems: the
// brokers cannot be reached or refuse the client within `timeout` (librdkafka's first error
// says why), a topic the sink writes that the brokers refuse to describe. Notes: the brokers
// that answered, and each topic of `tables`, `source_topics` (transaction metadata, messages),
// and the dead-letter and offsets topics, that does not exist yet, which only brokers with
// auto.create.topics.enable create on their own.
KafkaClusterReport CheckKafkaCluster(const KafkaSinkOptions& options,
                                     const std::vector<TableSchema>& tables,
                                     const std::vector<std::string>& source_topics,
                                     const std::string& path, std::chrono::milliseconds timeout);

}  // namespace tributary
