#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/connect_schema.h"
#include "agent/core/envelope_writer.h"
#include "agent/core/event.h"
#include "agent/core/sink.h"
#include "agent/core/status.h"
#include "agent/core/table_cache.h"

namespace tributary {

struct KafkaSinkOptions {
  std::string name;
  std::string brokers;  // bootstrap.servers
  // {source}, {schema} (the database when the table has no schema), {database}, {table}.
  std::string topic_template = "{source}.{schema}.{table}";
  bool tombstones = true;  // a null-value record with the key after each delete
  bool schemas = false;    // key and value in Kafka Connect's JsonConverter form
  std::string dlq_topic;   // where messages rejected for good go; empty: such a failure is fatal
  // exactly_once: a transactional producer; see docs/kafka-sink.md.
  bool exactly_once = false;
  // The pipeline's source: names the transactional.id and the offsets record.
  std::string source = "";
  std::string offsets_topic = "tributary.offsets";      // where each transaction's checkpoint goes
  std::chrono::milliseconds transaction_interval{200};  // how long a transaction stays open
  // Passed to rd_kafka_conf_set after our defaults; see CheckKafkaSinkOptions.
  std::vector<std::pair<std::string, std::string>> librdkafka;
};

// Problems librdkafka or the sink's own settings rule out, one line each, starting with `path`
// (e.g. "sinks[0]"): a `librdkafka` key that a first-class option owns, or one librdkafka
// rejects. Values are never shown: they may be secrets.
std::vector<std::string> CheckKafkaSinkOptions(const KafkaSinkOptions& options,
                                               const std::string& path);

// "tributary-<source>-<sink>": stable across restarts, so a restarted agent fences the old one.
std::string KafkaTransactionalId(const KafkaSinkOptions& options);

// librdkafka settings of the sink's producer: the sink's defaults, then the `librdkafka` map.
std::vector<std::pair<std::string, std::string>> KafkaProducerSettings(
    const KafkaSinkOptions& options);

// The topics `table`'s events go to: its rows' topic and its source's schema-change topic. A
// name the template cannot make is left out; Open reports it.
std::vector<std::string> KafkaTopicsFor(const KafkaSinkOptions& options, const TableSchema& table);

// Produces each event as one Kafka record: key = the primary key as JSON, value = the Debezium
// envelope, headers op, source.schema_version and source.position, partitioned like the Java
// client (murmur2 of the key). Idempotent producer with acks=all. Schema-change events go to
// "{source}.schema-changes", keyed by source and table, without tombstones.
//
// A batch is acked once every record of it (and of every earlier batch) has a successful
// delivery report; reports are served from Submit, Poll and Flush, on the sink's thread. Retriable
// produce errors are retried by librdkafka itself. A record the broker rejects for good (too
// large, invalid) goes to dlq_topic when set; any other delivery failure, a failed dead-letter
// write, or a fatal producer error makes every later call return kFatal, and nothing more is
// acked, so the checkpoint stays behind what may be lost.
//
// With exactly_once, records go out in Kafka transactions that each hold many batches and end
// (normally) only after a batch that ends a source transaction. Each transaction also writes
// the offsets record (the last commit position and the last source.position it holds) to
// offsets_topic; batches are acked only once their transaction committed. On start, and after
// an aborted transaction, the sink reads that record back (read_committed) and drops every
// event whose source.position is not after the recorded one: the pipeline replays from its own
// checkpoint, which may be behind what Kafka holds. An abortable error aborts the transaction
// and returns kRetriable until the next Flush; fencing is kFatal.
class KafkaSink : public Sink {
 public:
  explicit KafkaSink(KafkaSinkOptions options);
  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  Status Open(AckCallback on_durable) override;
  Status Submit(const Batch& batch) override;
  Status Poll() override;
  Status Flush() override;
  size_t PendingBytes() const override { return pending_bytes_; }
  SinkCounters counters() const override { return {dead_letters_, retries_}; }
  void Close() override;

 private:
  struct InFlightBatch {
    uint64_t sequence;
    size_t remaining;  // records without a successful delivery report
    bool sealed;       // Submit has produced all of the batch's records
  };
  // What every record of one table version shares. Handles are owned by topics_ and looked
  // up on first use, so a version that only has a schema change touches no row topic.
  struct TableTopic {
    std::string topic;
    rd_kafka_topic_t* handle = nullptr;          // the rows' topic
    rd_kafka_topic_t* schema_changes = nullptr;  // {source}.schema-changes
    std::string version_text;                    // the source.schema_version header
    std::optional<ConnectSchemas> connect;       // with `schemas`, built with the first row
  };
  // A record rejected for good, waiting to be written to the dead-letter topic.
  struct DeadLetter {
    uint64_t sequence;
    std::string topic;
    std::optional<std::string> key;
    std::optional<std::string> value;  // none when the record was too large
    rd_kafka_headers_t* headers;       // owned; a copy of the record's
    rd_kafka_resp_err_t error;
  };

  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static void OnError(rd_kafka_t* rk, int error, const char* reason, void* opaque);
  static int OnStatistics(rd_kafka_t* rk, char* json, size_t json_len, void* opaque);
  void HandleDelivery(const rd_kafka_message_t& message);

  Result<TableTopic*> TopicFor(const Batch& batch, const TableSchema* table);
  Result<rd_kafka_topic_t*> TopicHandle(const std::string& name);
  // Writes the event's key and value into key_ and value_; returns the topic they go to.
  Result<rd_kafka_topic_t*> Serialize(const Batch& batch, const Event& event, int64_t now_us,
                                      TableTopic& topic);
  // Produces one record, polling while librdkafka's queue is full (never dropping). A record
  // librdkafka rejects for good before sending is queued as a dead letter.
  Status Produce(rd_kafka_topic_t* topic, std::string_view key, const std::string* value,
                 rd_kafka_headers_t* headers, uint64_t sequence, bool dead_letter);
  // Serves librdkafka's callbacks for up to `timeout_ms`, writes dead letters, fires acks.
  Status Serve(int timeout_ms);
  Status WriteDeadLetters();
  void AckCompleted();
  // exactly_once: the transactional producer's steps.
  Status EnsureTransactional();
  Status ReadCommittedOffsets();
  Status BeginTransaction();
  Status CommitTransaction();
  Status AbortTransaction(const std::string& reason);
  // A failed transactional call: fatal (fencing named as such), else abort and kRetriable.
  Status TransactionFailure(rd_kafka_error_t* error, std::string_view what);
  std::string FatalMessage(rd_kafka_resp_err_t cause, std::string_view reason) const;
  std::string OffsetsKey() const;
  bool CommitDue() const;
  InFlightBatch* FindBatch(uint64_t sequence);
  // Remembers the first failure, which every later call returns: nothing more is acked.
  const Status& Fail(Status status);
  void FreeDeadLetters();

  KafkaSinkOptions options_;
  AckCallback on_durable_;
  EnvelopeWriter envelope_writer_;
  rd_kafka_t* producer_ = nullptr;
  rd_kafka_topic_t* dlq_topic_ = nullptr;
  std::map<std::string, rd_kafka_topic_t*> topics_;
  TableCache<TableTopic> topic_by_table_;
  std::deque<InFlightBatch> batches_;
  std::vector<DeadLetter> dead_letter_queue_;
  size_t pending_bytes_ = 0;
  uint64_t dead_letters_ = 0;
  uint64_t retries_ = 0;              // over every producer this sink has had
  uint64_t retries_before_open_ = 0;  // of the producers before the current one
  bool fatal_error_ = false;          // set by librdkafka's error callback
  std::string key_;
  std::string value_;
  Status failure_;

  // exactly_once state.
  rd_kafka_topic_t* offsets_topic_ = nullptr;
  bool initialized_ = false;    // init_transactions done for this producer
  bool offsets_known_ = false;  // committed_position_ read back since the last abort
  bool txn_open_ = false;
  bool txn_at_boundary_ = false;  // the last batch submitted ended a source transaction
  std::chrono::steady_clock::time_point txn_started_{};
  std::optional<std::string> txn_checkpoint_;  // the last commit position in the transaction
  std::optional<std::string> txn_position_;    // the last source.position in the transaction
  // What committed transactions hold: events at or before this position, of the same lineage
  // (Batch::lineage), are dropped.
  std::optional<std::string> committed_position_;
  std::optional<std::string> committed_checkpoint_;
  std::string committed_lineage_;  // "" in records written before lineages
  std::string txn_lineage_;        // of the batches in the open transaction
  uint64_t skipped_ = 0;           // events dropped as already committed, since the last read-back
  std::string abort_reason_;       // set by a failed delivery: the transaction must be aborted
  bool abort_reason_purged_ = false;  // abort_reason_ is only "purged", not the cause
  // Records the broker rejected for good in an aborted transaction ("topic\nposition\nkind"),
  // with the error: on the replay they go straight to the dead-letter topic.
  std::map<std::string, rd_kafka_resp_err_t> rejected_;
};

}  // namespace tributary
