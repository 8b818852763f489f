#include "sinks/kafka/kafka_check.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <memory>
#include <mutex>
#include <set>

namespace tributary {

namespace {

// The first error librdkafka reports from its own threads: why the brokers did not answer.
struct FirstError {
  std::mutex mutex;
  std::string reason;
};

void OnError(rd_kafka_t* /*rk*/, int /*error*/, const char* reason, void* opaque) {
  auto& first = *static_cast<FirstError*>(opaque);
  std::lock_guard lock(first.mutex);
  if (first.reason.empty()) first.reason = reason;
}

struct ProducerCloser {
  void operator()(rd_kafka_t* producer) const { rd_kafka_destroy(producer); }
};

struct MetadataCloser {
  void operator()(const rd_kafka_metadata_t* metadata) const {
    rd_kafka_metadata_destroy(metadata);
  }
};

}  // namespace

KafkaClusterReport CheckKafkaCluster(const KafkaSinkOptions& options,
                                     const std::vector<TableSchema>& tables,
                                     const std::vector<std::string>& source_topics,
                                     const std::string& path, std::chrono::milliseconds timeout) {
  KafkaClusterReport report;
  FirstError first_error;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  // A metadata probe: no transactional.id, which would make it a second transactional producer.
  KafkaSinkOptions probe = options;
  probe.exactly_once = false;
  for (const auto& [key, value] : KafkaProducerSettings(probe)) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      // `validate` without --connect names the key; here it only stops the check.
      rd_kafka_conf_destroy(conf);
      report.problems.push_back(fmt::format("{}.librdkafka: librdkafka rejects \"{}\"", path, key));
      return report;
    }
  }
  rd_kafka_conf_set_opaque(conf, &first_error);
  rd_kafka_conf_set_error_cb(conf, &OnError);
  std::unique_ptr<rd_kafka_t, ProducerCloser> producer(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr));
  if (!producer) {
    rd_kafka_conf_destroy(conf);
    report.problems.push_back(fmt::format("{}: cannot create a producer: {}", path, errstr));
    return report;
  }

  const rd_kafka_metadata_t* raw = nullptr;
  const rd_kafka_resp_err_t error =
      rd_kafka_metadata(producer.get(), 1, nullptr, &raw, static_cast<int>(timeout.count()));
  std::unique_ptr<const rd_kafka_metadata_t, MetadataCloser> metadata(raw);
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::string reason;
    {
      std::lock_guard lock(first_error.mutex);
      reason = first_error.reason.empty() ? rd_kafka_err2str(error) : first_error.reason;
    }
    report.problems.push_back(fmt::format("{}.brokers: no metadata from {} within {} s: {}", path,
                                          options.brokers, timeout.count() / 1000, reason));
    return report;
  }
  report.notes.push_back(fmt::format("{}.brokers: {} broker(s) answered, {} topic(s)", path,
                                     metadata->broker_cnt, metadata->topic_cnt));

  std::set<std::string> wanted;
  for (const TableSchema& table : tables) {
    for (std::string& topic : KafkaTopicsFor(options, table)) wanted.insert(std::move(topic));
  }
  wanted.insert(source_topics.begin(), source_topics.end());
  if (!options.dlq_topic.empty()) wanted.insert(options.dlq_topic);
  if (options.exactly_once) wanted.insert(options.offsets_topic);
  for (const std::string& topic : wanted) {
    const rd_kafka_metadata_topic_t* found = nullptr;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      if (topic == metadata->topics[i].topic) found = &metadata->topics[i];
    }
    if (found == nullptr) {
      report.notes.push_back(fmt::format(
          "{}: topic {} does not exist yet: create it, unless the brokers auto-create topics "
          "(auto.create.topics.enable)",
          path, topic));
    } else if (found->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      report.problems.push_back(
          fmt::format("{}: topic {}: {}", path, topic, rd_kafka_err2str(found->err)));
    }
  }
  return report;
}

}  // namespace tributary
