#include "sinks/kafka/kafka_sink.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <set>
#include <string_view>

#include "agent/core/clock.h"
#include "agent/core/topic_name.h"

namespace tributary {
namespace {

// How often librdkafka reports its statistics, where the re-send count comes from; a
// `statistics.interval.ms` under `librdkafka:` overrides it (0 turns the count off).
constexpr const char* kStatisticsIntervalMs = "5000";
// Kafka's own limit on a topic name's length.
constexpr size_t kMaxTopicLength = 249;
constexpr int kQueueFullPollMs = 100;
constexpr int kFlushStepMs = 100;
// exactly_once: how long the transactional calls may block before they count as failed, and
// how often a commit that timed out is tried again before the transaction is aborted. Each
// blocks the pipeline's thread, so each stays well under systemd's WatchdogSec=30s
// (packaging/tributary.service).
constexpr int kInitTimeoutMs = 20000;
constexpr int kCommitTimeoutMs = 5000;
constexpr int kCommitAttempts = 4;
constexpr int kAbortAttempts = 3;
constexpr auto kOffsetsReadTimeout = std::chrono::seconds(20);
// A transaction commits at a source transaction's end once it is this big, whatever its age.
constexpr size_t kTransactionBytes = 16 << 20;
// Past this age a transaction commits even inside a source transaction: half librdkafka's
// default transaction.timeout.ms, after which the coordinator would abort it.
constexpr auto kMaxTransactionAge = std::chrono::seconds(30);

// librdkafka settings a first-class option owns: setting them under `librdkafka:` would
// silently change what the sink promises (delivery, partitioning, where it connects).
constexpr std::array<std::string_view, 8> kReservedKeys = {
    "bootstrap.servers",     "metadata.broker.list",
    "enable.idempotence",    "acks",
    "request.required.acks", "transactional.id",
    "partitioner",           "enable.gapless.guarantee"};

constexpr std::array<std::string_view, 4> kSecretKeyParts = {"password", "secret", "sasl",
                                                             "ssl.key"};

// Our defaults, applied before the user's map.
std::vector<std::pair<std::string, std::string>> BaseSettings(const KafkaSinkOptions& options) {
  return {
      {"bootstrap.servers", options.brokers},
      {"client.id", "tributary-" + options.name},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      // Java's default for keyed records, so a key lands where Java producers put it.
      {"partitioner", "murmur2_random"},
      // Logs go through the error callback and our own lines, not librdkafka's stderr.
      {"log_level", "3"},
  };
}

bool IsSecretKey(std::string_view key) {
  return std::any_of(kSecretKeyParts.begin(), kSecretKeyParts.end(),
                     [key](std::string_view part) { return key.find(part) != key.npos; });
}

// Errors after which the broker will never take this record, whatever the retries: these go to
// the dead-letter topic. Anything else that fails a record is a failure of the pipeline.
bool IsRejectedForGood(rd_kafka_resp_err_t error) {
  switch (error) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      return true;
    default:
      return false;
  }
}

// The topic name for `table`, or kInvalidConfig for a bad template, or kFatal for a name Kafka
// cannot take.
Result<std::string> FormatTopic(const std::string& sink, std::string_view topic_template,
                                const TableSchema& table) {
  ASSIGN_OR_RETURN(std::string topic,
                   ExpandTopicTemplate("kafka-sink " + sink, topic_template, table));
  if (topic.empty() || topic == "." || topic == "..") topic.insert(topic.begin(), '_');
  if (topic.size() > kMaxTopicLength) {
    return Status::Fatal(
        fmt::format("kafka-sink {}: topic name of {} characters exceeds Kafka's {}", sink,
                    topic.size(), kMaxTopicLength));
  }
  return topic;
}

// A record's opaque: its batch's sequence and whether it is a dead letter. A number, never
// dereferenced, so a report that outlives its batch cannot touch freed memory.
void* Tag(uint64_t sequence, bool dead_letter) {
  const auto tag = static_cast<uintptr_t>((sequence << 1) | (dead_letter ? 1 : 0));
  return reinterpret_cast<void*>(tag);  // NOLINT(performance-no-int-to-ptr)
}

void AddHeader(rd_kafka_headers_t* headers, const char* name, std::string_view value) {
  rd_kafka_header_add(headers, name, -1, value.data(), static_cast<ssize_t>(value.size()));
}

bool IsFencing(rd_kafka_resp_err_t error) {
  return error == RD_KAFKA_RESP_ERR__FENCED || error == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         error == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

// Names one record of one event: its topic, its source.position, value or tombstone.
std::string RecordIdentity(std::string_view topic, std::string_view position, bool tombstone) {
  std::string identity;
  identity.reserve(topic.size() + position.size() + 3);
  identity.append(topic).append(1, '\n').append(position).append(tombstone ? "\nt" : "\nv");
  return identity;
}

std::string_view HeaderValue(const rd_kafka_message_t& message, const char* name) {
  rd_kafka_headers_t* headers = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_message_headers(&message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      value == nullptr) {
    return {};
  }
  return {static_cast<const char*>(value), size};
}

std::optional<std::string> OptionalString(const rapidjson::Value& object, const char* name) {
  if (!object.HasMember(name) || !object[name].IsString()) return std::nullopt;
  return std::string(object[name].GetString(), object[name].GetStringLength());
}

}  // namespace

std::vector<std::string> CheckKafkaSinkOptions(const KafkaSinkOptions& options,
                                               const std::string& path) {
  std::vector<std::string> problems;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [key, value] : options.librdkafka) {
    const std::string key_path = fmt::format("{}.librdkafka.\"{}\"", path, key);
    if (std::find(kReservedKeys.begin(), kReservedKeys.end(), key) != kReservedKeys.end()) {
      problems.push_back(fmt::format(
          "{}: conflicts with the sink's own settings (brokers, exactly_once, idempotence with "
          "acks=all, the murmur2 partitioner); remove it",
          key_path));
      continue;
    }
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      // librdkafka's message quotes the value, which may be a secret.
      problems.push_back(IsSecretKey(key) ? key_path + ": rejected by librdkafka"
                                          : key_path + ": " + errstr);
    }
  }
  rd_kafka_conf_destroy(conf);
  return problems;
}

std::string KafkaTransactionalId(const KafkaSinkOptions& options) {
  return "tributary-" + options.source + "-" + options.name;
}

std::vector<std::pair<std::string, std::string>> KafkaProducerSettings(
    const KafkaSinkOptions& options) {
  std::vector<std::pair<std::string, std::string>> settings = BaseSettings(options);
  if (options.exactly_once)
    settings.emplace_back("transactional.id", KafkaTransactionalId(options));
  settings.insert(settings.end(), options.librdkafka.begin(), options.librdkafka.end());
  return settings;
}

std::vector<std::string> KafkaTopicsFor(const KafkaSinkOptions& options, const TableSchema& table) {
  std::vector<std::string> topics;
  for (std::string_view topic_template :
       {std::string_view(options.topic_template), kSchemaChangeTopic}) {
    if (Result<std::string> topic = FormatTopic(options.name, topic_template, table); topic.ok()) {
      topics.push_back(std::move(topic).value());
    }
  }
  return topics;
}

KafkaSink::KafkaSink(KafkaSinkOptions options) : options_(std::move(options)) {}

KafkaSink::~KafkaSink() { Close(); }

Status KafkaSink::Open(AckCallback on_durable) {
  Close();
  RETURN_IF_ERROR(FormatTopic(options_.name, options_.topic_template, TableSchema{}).status());
  std::vector<std::string> problems = CheckKafkaSinkOptions(options_, "sink " + options_.name);
  if (!problems.empty()) return Status::InvalidConfig(fmt::format("{}", fmt::join(problems, "; ")));
  if (options_.exactly_once && options_.source.empty()) {
    return Status::InvalidConfig(
        fmt::format("kafka-sink {}: exactly_once needs the source's name", options_.name));
  }

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  rd_kafka_conf_set(conf, "statistics.interval.ms", kStatisticsIntervalMs, errstr, sizeof errstr);
  for (const auto& [key, value] : KafkaProducerSettings(options_)) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidConfig(
          fmt::format("kafka-sink {}: librdkafka rejects \"{}\"", options_.name, key));
    }
  }
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::OnDelivery);
  rd_kafka_conf_set_error_cb(conf, &KafkaSink::OnError);
  rd_kafka_conf_set_stats_cb(conf, &KafkaSink::OnStatistics);
  // On success rd_kafka_new owns conf; on failure it is still ours.
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (producer_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidConfig(
        fmt::format("kafka-sink {}: cannot create the producer: {}", options_.name, errstr));
  }
  if (!options_.dlq_topic.empty()) {
    dlq_topic_ = rd_kafka_topic_new(producer_, options_.dlq_topic.c_str(), nullptr);
  }
  if (options_.exactly_once) {
    offsets_topic_ = rd_kafka_topic_new(producer_, options_.offsets_topic.c_str(), nullptr);
  }
  on_durable_ = std::move(on_durable);
  retries_before_open_ = retries_;
  failure_ = Status::Ok();
  fatal_error_ = false;
  spdlog::info("kafka-sink: Opened sink={} brokers={} exactly_once={}", options_.name,
               options_.brokers, options_.exactly_once);
  return Status::Ok();
}

Result<rd_kafka_topic_t*> KafkaSink::TopicHandle(const std::string& name) {
  auto handle = topics_.find(name);
  if (handle == topics_.end()) {
    rd_kafka_topic_t* created = rd_kafka_topic_new(producer_, name.c_str(), nullptr);
    if (created == nullptr) {
      return Status::Fatal(fmt::format("kafka-sink {}: cannot create topic handle {}: {}",
                                       options_.name, name,
                                       rd_kafka_err2str(rd_kafka_last_error())));
    }
    handle = topics_.emplace(name, created).first;
  }
  return handle->second;
}

Result<KafkaSink::TableTopic*> KafkaSink::TopicFor(const Batch& batch, const TableSchema* table) {
  return topic_by_table_.Get(
      "kafka-sink " + options_.name, batch, table,
      [&](const std::shared_ptr<const TableSchema>& schema) -> Result<TableTopic> {
        TableTopic topic;
        ASSIGN_OR_RETURN(topic.topic, FormatTopic(options_.name, options_.topic_template, *schema));
        topic.version_text = std::to_string(schema->version);
        return topic;
      });
}

Result<rd_kafka_topic_t*> KafkaSink::Serialize(const Batch& batch, const Event& event,
                                               int64_t now_us, TableTopic& topic) {
  key_.clear();
  value_.clear();
  if (event.op == Op::kTransactionBegin || event.op == Op::kTransactionEnd) {
    // Two per transaction: the handle is looked up by name rather than cached per table.
    ASSIGN_OR_RETURN(std::string name, FormatTopic(options_.name, kTransactionTopic, *event.table));
    ASSIGN_OR_RETURN(rd_kafka_topic_t * handle, TopicHandle(name));
    if (options_.schemas) {
      envelope_writer_.WriteConnectTransactionKey(batch, event, key_);
      envelope_writer_.WriteConnectTransaction(batch, event, value_);
    } else {
      envelope_writer_.WriteTransactionKey(batch, event, key_);
      envelope_writer_.WriteTransaction(batch, event, value_);
    }
    return handle;
  }
  if (event.op == Op::kMessage) {
    ASSIGN_OR_RETURN(std::string name, FormatTopic(options_.name, kMessageTopic, *event.table));
    ASSIGN_OR_RETURN(rd_kafka_topic_t * handle, TopicHandle(name));
    if (options_.schemas) {
      envelope_writer_.WriteConnectMessageKey(batch, event, key_);
      envelope_writer_.WriteConnectMessage(batch, event, now_us, value_);
    } else {
      envelope_writer_.WriteMessageKey(batch, event, key_);
      envelope_writer_.WriteMessage(batch, event, now_us, value_);
    }
    return handle;
  }
  if (event.op == Op::kSchemaChange) {
    if (topic.schema_changes == nullptr) {
      ASSIGN_OR_RETURN(std::string name,
                       FormatTopic(options_.name, kSchemaChangeTopic, *event.table));
      ASSIGN_OR_RETURN(topic.schema_changes, TopicHandle(name));
    }
    if (options_.schemas) {
      envelope_writer_.WriteConnectSchemaChangeKey(event, key_);
      envelope_writer_.WriteConnectSchemaChange(batch, event, value_);
    } else {
      envelope_writer_.WriteSchemaChangeKey(event, key_);
      envelope_writer_.WriteSchemaChange(batch, event, value_);
    }
    return topic.schema_changes;
  }
  if (topic.handle == nullptr) {
    ASSIGN_OR_RETURN(topic.handle, TopicHandle(topic.topic));
    if (options_.schemas) topic.connect = BuildConnectSchemas(*event.table, topic.topic);
  }
  if (topic.connect) {
    envelope_writer_.WriteConnectKey(batch, event, *topic.connect, key_);
    envelope_writer_.WriteConnect(batch, event, now_us, *topic.connect, value_);
  } else {
    envelope_writer_.WriteKey(batch, event, key_);
    envelope_writer_.Write(batch, event, now_us, value_);
  }
  return topic.handle;
}

Status KafkaSink::Submit(const Batch& batch) {
  if (!failure_.ok()) return failure_;
  if (options_.exactly_once) RETURN_IF_ERROR(EnsureTransactional());
  batches_.push_back({batch.sequence, 0, false});
  const int64_t now_us = UnixMicrosNow();
  std::string_view last_position;  // the largest produced
  // Positions of another lineage (the source started over) are new, whatever they say.
  const bool same_lineage = batch.lineage == committed_lineage_;
  for (const Event& event : batch.events) {
    const std::string_view position = batch.Text(event.position);
    // Replayed from a checkpoint behind what the committed transactions hold: already in Kafka.
    if (committed_position_ && same_lineage && position <= *committed_position_) {
      ++skipped_;
      continue;
    }
    if (skipped_ > 0) {
      spdlog::info(
          "kafka-sink: Skipped events already committed to Kafka sink={} skipped={} "
          "committed_position={}",
          options_.name, skipped_, *committed_position_);
      skipped_ = 0;
    }
    // The largest, not the last: transaction metadata events sort after the change they precede.
    last_position = std::max(last_position, position);
    Result<TableTopic*> topic = TopicFor(batch, event.table);
    if (!topic.ok()) return Fail(topic.status());
    Result<rd_kafka_topic_t*> handle = Serialize(batch, event, now_us, **topic);
    if (!handle.ok()) return Fail(handle.status());
    // A table without a key gets a null key, which the partitioner spreads at random.
    const std::string_view key = key_ == "null" ? std::string_view() : std::string_view(key_);
    const char op = static_cast<char>(event.op);
    const bool tombstone = event.op == Op::kDelete && options_.tombstones && !key.empty();
    for (int record = 0; record < (tombstone ? 2 : 1); ++record) {
      rd_kafka_headers_t* headers = rd_kafka_headers_new(3);
      AddHeader(headers, "op", std::string_view(&op, 1));
      AddHeader(headers, "source.schema_version", (*topic)->version_text);
      AddHeader(headers, "source.position", position);
      if (!rejected_.empty()) {
        // The broker rejected this record for good in an aborted transaction: dead-letter it.
        const char* name = rd_kafka_topic_name(*handle);
        auto rejected = rejected_.find(RecordIdentity(name, position, record == 1));
        if (rejected != rejected_.end()) {
          ++FindBatch(batch.sequence)->remaining;
          dead_letter_queue_.push_back(DeadLetter{
              batch.sequence, name, key.empty() ? std::nullopt : std::optional<std::string>(key),
              record == 1 || rejected->second == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                  ? std::nullopt
                  : std::optional<std::string>(value_),
              headers, rejected->second});
          rejected_.erase(rejected);
          continue;
        }
      }
      // The second record of a delete is its tombstone: same key, null value.
      Status status = Produce(*handle, key, record == 0 ? &value_ : nullptr, headers,
                              batch.sequence, /*dead_letter=*/false);
      if (!status.ok()) return Fail(std::move(status));
    }
  }
  // Looked up again: producing may poll, which may grow the deque. Only Serve retires batches.
  if (InFlightBatch* submitted = FindBatch(batch.sequence)) submitted->sealed = true;
  if (!options_.exactly_once) return Serve(0);
  RETURN_IF_ERROR(Serve(0));
  if (!txn_open_) {
    // Nothing of it (or before it) is waiting for a commit: skipped events, or none.
    while (!batches_.empty()) {
      const uint64_t sequence = batches_.front().sequence;
      batches_.pop_front();
      on_durable_(sequence);
    }
    return failure_;
  }
  txn_at_boundary_ = batch.commit_position.has_value();
  if (batch.commit_position) txn_checkpoint_ = batch.commit_position;
  txn_lineage_.assign(batch.lineage);
  if (!last_position.empty() && (!txn_position_ || last_position > *txn_position_)) {
    txn_position_ = std::string(last_position);
  }
  return CommitDue() ? CommitTransaction() : failure_;
}

Status KafkaSink::Produce(rd_kafka_topic_t* topic, std::string_view key, const std::string* value,
                          rd_kafka_headers_t* headers, uint64_t sequence, bool dead_letter) {
  const size_t bytes = key.size() + (value != nullptr ? value->size() : 0);
  // librdkafka copies both (RD_KAFKA_MSG_F_COPY) and does not write through the pointers.
  void* key_data = key.empty() ? nullptr : const_cast<char*>(key.data());
  void* value_data = value != nullptr ? const_cast<char*>(value->data()) : nullptr;
  const size_t value_size = value != nullptr ? value->size() : 0;
  if (options_.exactly_once && !txn_open_) {
    if (Status status = BeginTransaction(); !status.ok()) {
      rd_kafka_headers_destroy(headers);
      return status;
    }
  }
  while (true) {
    const rd_kafka_resp_err_t error = rd_kafka_producev(
        producer_, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key_data, key.size()), RD_KAFKA_V_VALUE(value_data, value_size),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(Tag(sequence, dead_letter)), RD_KAFKA_V_END);
    if (error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      // librdkafka owns the headers now.
      if (InFlightBatch* batch = FindBatch(sequence); batch != nullptr && !dead_letter) {
        ++batch->remaining;
      }
      pending_bytes_ += bytes;
      return Status::Ok();
    }
    if (error == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Bounded memory: wait for deliveries to make room; never drop.
      rd_kafka_poll(producer_, kQueueFullPollMs);
      if (fatal_error_ || !failure_.ok() || !abort_reason_.empty()) break;
      continue;
    }
    if (!dead_letter && IsRejectedForGood(error) && dlq_topic_ != nullptr) {
      // Counted now, completed by the dead letter's own delivery report.
      ++FindBatch(sequence)->remaining;
      dead_letter_queue_.push_back(
          DeadLetter{sequence, rd_kafka_topic_name(topic),
                     key.empty() ? std::nullopt : std::optional<std::string>(key),
                     value == nullptr || error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                         ? std::nullopt
                         : std::optional<std::string>(*value),
                     headers, error});
      return Status::Ok();
    }
    rd_kafka_headers_destroy(headers);
    if (options_.exactly_once && (error == RD_KAFKA_RESP_ERR__STATE || !abort_reason_.empty())) {
      // The transaction failed (librdkafka refuses records until it is aborted); the delivery
      // report saying why may not have been served yet.
      return AbortTransaction(abort_reason_.empty() ? rd_kafka_err2str(error) : abort_reason_);
    }
    return Status::Fatal(fmt::format("kafka-sink {}: cannot produce to {}{}: {}", options_.name,
                                     rd_kafka_topic_name(topic),
                                     dead_letter ? " (dead letter)" : "", rd_kafka_err2str(error)));
  }
  rd_kafka_headers_destroy(headers);
  if (failure_.ok() && !abort_reason_.empty()) return AbortTransaction(abort_reason_);
  return failure_.ok() ? Status::Fatal(fmt::format("kafka-sink {}: producer failed", options_.name))
                       : failure_;
}

void KafkaSink::OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message, void* opaque) {
  static_cast<KafkaSink*>(opaque)->HandleDelivery(*message);
}

void KafkaSink::OnError(rd_kafka_t* rk, int error, const char* reason, void* opaque) {
  auto* sink = static_cast<KafkaSink*>(opaque);
  if (error == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[512];
    const rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
    sink->fatal_error_ = true;
    sink->Fail(Status::Fatal(sink->FatalMessage(cause, fatal)));
    return;
  }
  // Transient: librdkafka reconnects and retries by itself; deliveries that run out of
  // message.timeout.ms fail through the delivery reports.
  spdlog::warn("kafka-sink: Producer error sink={} error={} reason=\"{}\"", sink->options_.name,
               rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(error)), reason);
}

int KafkaSink::OnStatistics(rd_kafka_t* /*rk*/, char* json, size_t json_len, void* opaque) {
  auto* sink = static_cast<KafkaSink*>(opaque);
  rapidjson::Document doc;
  doc.Parse(json, json_len);
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("topics") ||
      !doc["topics"].IsObject()) {
    return 0;
  }
  // Per partition, librdkafka counts records produced ("msgs") and records transmitted
  // ("txmsgs"), re-sends included: the difference is the re-sends, once the partition's queue
  // is sent. Partition -1 holds records waiting for a partition, counted again in theirs.
  uint64_t retries = 0;
  for (const auto& topic : doc["topics"].GetObject()) {
    if (!topic.value.IsObject() || !topic.value.HasMember("partitions") ||
        !topic.value["partitions"].IsObject()) {
      continue;
    }
    for (const auto& partition : topic.value["partitions"].GetObject()) {
      const rapidjson::Value& p = partition.value;
      if (!p.IsObject() || !p.HasMember("partition") || !p["partition"].IsInt() ||
          p["partition"].GetInt() < 0 || !p.HasMember("txmsgs") || !p["txmsgs"].IsUint64() ||
          !p.HasMember("msgs") || !p["msgs"].IsUint64()) {
        continue;
      }
      const uint64_t sent = p["txmsgs"].GetUint64();
      const uint64_t produced = p["msgs"].GetUint64();
      if (sent > produced) retries += sent - produced;
    }
  }
  sink->retries_ = std::max(sink->retries_, sink->retries_before_open_ + retries);
  return 0;  // librdkafka frees the JSON
}

void KafkaSink::HandleDelivery(const rd_kafka_message_t& message) {
  const auto tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(message._private));
  const uint64_t sequence = tag >> 1;
  const bool dead_letter = (tag & 1) != 0;
  if (options_.exactly_once) {
    // Bytes stay pending until their transaction commits. A report whose batch is gone comes
    // from an aborted transaction (purged records): nothing to do.
    InFlightBatch* batch = FindBatch(sequence);
    if (batch == nullptr) return;
    if (message.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      --batch->remaining;
      return;
    }
    const char* topic = rd_kafka_topic_name(message.rkt);
    const bool purged = message.err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                        message.err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    if (!purged && (dead_letter || (IsRejectedForGood(message.err) && dlq_topic_ == nullptr))) {
      // A replay would fail the same way: stop, as without exactly_once.
      Fail(Status::Fatal(fmt::format("kafka-sink {}: delivery to {} failed{}: {}", options_.name,
                                     topic, dead_letter ? " (dead letter)" : "",
                                     rd_kafka_err2str(message.err))));
      return;
    }
    if (IsRejectedForGood(message.err)) {
      rejected_[RecordIdentity(topic, HeaderValue(message, "source.position"),
                               message.payload == nullptr)] = message.err;
    }
    // librdkafka has put the transaction in an abortable state; the next Serve aborts it. The
    // records it purged then report that first: a real cause replaces it.
    if (abort_reason_.empty() || (!purged && abort_reason_purged_)) {
      abort_reason_purged_ = purged;
      abort_reason_ =
          fmt::format("delivery to {} failed{}: {}", topic, dead_letter ? " (dead letter)" : "",
                      rd_kafka_err2str(message.err));
    }
    return;
  }
  pending_bytes_ -= std::min(pending_bytes_, message.len + message.key_len);
  if (message.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (InFlightBatch* batch = FindBatch(sequence)) --batch->remaining;
    return;
  }
  const char* topic = rd_kafka_topic_name(message.rkt);
  if (!dead_letter && IsRejectedForGood(message.err) && dlq_topic_ != nullptr) {
    rd_kafka_headers_t* original = nullptr;
    rd_kafka_message_headers(&message, &original);
    const auto* payload = static_cast<const char*>(message.payload);
    const auto* key = static_cast<const char*>(message.key);
    dead_letter_queue_.push_back(
        DeadLetter{sequence, topic,
                   key == nullptr ? std::nullopt
                                  : std::optional<std::string>(std::string(key, message.key_len)),
                   payload == nullptr || message.err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                       ? std::nullopt
                       : std::optional<std::string>(std::string(payload, message.len)),
                   original != nullptr ? rd_kafka_headers_copy(original) : rd_kafka_headers_new(4),
                   message.err});
    return;
  }
  // Possibly persisted or not, the record may be missing: stop before the checkpoint passes it.
  const bool persisted =
      rd_kafka_message_status(&message) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
  Fail(Status::Fatal(fmt::format("kafka-sink {}: delivery to {} failed{}: {}{}", options_.name,
                                 topic, dead_letter ? " (dead letter)" : "",
                                 rd_kafka_err2str(message.err),
                                 persisted ? " (possibly persisted)" : "")));
}

Status KafkaSink::WriteDeadLetters() {
  // Producing can poll, and polling can add dead letters: index, not iterators.
  for (size_t i = 0; i < dead_letter_queue_.size() && failure_.ok(); ++i) {
    // Moved out: producing may append to the queue and so move its elements.
    DeadLetter letter = std::move(dead_letter_queue_[i]);
    dead_letter_queue_[i].headers = nullptr;
    AddHeader(letter.headers, "dlq.error", rd_kafka_err2name(letter.error));
    AddHeader(letter.headers, "dlq.reason", rd_kafka_err2str(letter.error));
    AddHeader(letter.headers, "dlq.topic", letter.topic);
    ++dead_letters_;
    spdlog::warn(
        "kafka-sink: Record rejected, sending it to the dead-letter topic sink={} "
        "topic={} dlq_topic={} error={} dead_letters={}",
        options_.name, letter.topic, options_.dlq_topic, rd_kafka_err2name(letter.error),
        dead_letters_);
    const std::string* value = letter.value ? &*letter.value : nullptr;
    Status status = Produce(dlq_topic_, letter.key ? *letter.key : std::string_view(), value,
                            letter.headers, letter.sequence, /*dead_letter=*/true);
    if (!status.ok()) return Fail(std::move(status));
  }
  FreeDeadLetters();
  return failure_;
}

KafkaSink::InFlightBatch* KafkaSink::FindBatch(uint64_t sequence) {
  auto it = std::lower_bound(
      batches_.begin(), batches_.end(), sequence,
      [](const InFlightBatch& batch, uint64_t value) { return batch.sequence < value; });
  return it != batches_.end() && it->sequence == sequence ? &*it : nullptr;
}

void KafkaSink::AckCompleted() {
  while (failure_.ok() && !batches_.empty() && batches_.front().sealed &&
         batches_.front().remaining == 0) {
    const uint64_t sequence = batches_.front().sequence;
    batches_.pop_front();
    on_durable_(sequence);
  }
}

Status KafkaSink::Serve(int timeout_ms) {
  if (!failure_.ok()) return failure_;
  rd_kafka_poll(producer_, timeout_ms);
  if (!abort_reason_.empty()) return AbortTransaction(abort_reason_);
  if (!dead_letter_queue_.empty()) RETURN_IF_ERROR(WriteDeadLetters());
  // Transactional batches are acked by CommitTransaction only.
  if (!options_.exactly_once) AckCompleted();
  return failure_;
}

Status KafkaSink::Poll() {
  if (producer_ == nullptr) return failure_;
  RETURN_IF_ERROR(Serve(0));
  return options_.exactly_once && CommitDue() ? CommitTransaction() : failure_;
}

Status KafkaSink::Flush() {
  if (producer_ == nullptr) return failure_;
  if (options_.exactly_once) {
    Status status = failure_;
    if (status.ok() && txn_open_) status = CommitTransaction();
    if (status.ok()) {
      topic_by_table_.Prune();
      return status;
    }
    // An aborted transaction is reported until the pipeline drains (which ends with a Flush);
    // what it submits next is the replay from its checkpoint, which the sink takes afresh.
    if (status.retriable() && !fatal_error_) failure_ = Status::Ok();
    return status;
  }
  while (failure_.ok() && !batches_.empty()) {
    // rd_kafka_flush serves the delivery reports while it waits.
    rd_kafka_flush(producer_, kFlushStepMs);
    RETURN_IF_ERROR(Serve(0));
  }
  // A source replaces a table's schema on every Relation message (reconnects, DDL); forget the
  // versions no batch holds any more, so the cache does not grow for ever.
  topic_by_table_.Prune();
  return failure_;
}

void KafkaSink::Close() {
  topic_by_table_.Clear();
  FreeDeadLetters();
  if (producer_ != nullptr && txn_open_) {
    // Never committed, so never acked: the replay brings it again.
    if (rd_kafka_error_t* error = rd_kafka_abort_transaction(producer_, kCommitTimeoutMs)) {
      rd_kafka_error_destroy(error);
    }
  }
  if (producer_ != nullptr) {
    // What is still queued was never acked: the checkpoint is behind it, so it will be replayed.
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_, 0);
    for (auto& [name, topic] : topics_) rd_kafka_topic_destroy(topic);
    if (dlq_topic_ != nullptr) rd_kafka_topic_destroy(dlq_topic_);
    if (offsets_topic_ != nullptr) rd_kafka_topic_destroy(offsets_topic_);
    rd_kafka_destroy(producer_);
    spdlog::info("kafka-sink: Closed sink={} dead_letters={}", options_.name, dead_letters_);
  }
  topics_.clear();
  dlq_topic_ = nullptr;
  offsets_topic_ = nullptr;
  producer_ = nullptr;
  batches_.clear();
  pending_bytes_ = 0;
  initialized_ = false;
  offsets_known_ = false;
  txn_open_ = false;
  abort_reason_.clear();
  rejected_.clear();
}

void KafkaSink::FreeDeadLetters() {
  for (DeadLetter& letter : dead_letter_queue_) {
    if (letter.headers != nullptr) rd_kafka_headers_destroy(letter.headers);
  }
  dead_letter_queue_.clear();
}

const Status& KafkaSink::Fail(Status status) {
  // A fatal error outranks a retriable one waiting to be reported.
  if (!failure_.ok() && !(failure_.retriable() && !status.retriable())) return failure_;
  if (status.retriable()) {
    spdlog::warn("kafka-sink: Transaction aborted, the pipeline replays sink={} error=\"{}\"",
                 options_.name, status.ToString());
    failure_ = std::move(status);
    return failure_;
  }
  spdlog::error("kafka-sink: Failed, no more acks sink={} error=\"{}\"", options_.name,
                status.ToString());
  failure_ = std::move(status);
  return failure_;
}

std::string KafkaSink::FatalMessage(rd_kafka_resp_err_t cause, std::string_view reason) const {
  if (options_.exactly_once && IsFencing(cause)) {
    return fmt::format(
        "kafka-sink {}: fenced: another producer took over transactional.id \"{}\" (is a second "
        "agent running source {} with sink {}?); this one stops: {}",
        options_.name, KafkaTransactionalId(options_), options_.source, options_.name, reason);
  }
  return fmt::format("kafka-sink {}: fatal producer error {}: {}", options_.name,
                     rd_kafka_err2name(cause), reason);
}

std::string KafkaSink::OffsetsKey() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("source");
  writer.String(options_.source.c_str(), static_cast<rapidjson::SizeType>(options_.source.size()));
  writer.Key("sink");
  writer.String(options_.name.c_str(), static_cast<rapidjson::SizeType>(options_.name.size()));
  writer.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

bool KafkaSink::CommitDue() const {
  if (!txn_open_ || !failure_.ok()) return false;
  const auto age = std::chrono::steady_clock::now() - txn_started_;
  if (txn_at_boundary_ &&
      (age >= options_.transaction_interval || pending_bytes_ >= kTransactionBytes)) {
    return true;
  }
  return age >= kMaxTransactionAge;
}

Status KafkaSink::EnsureTransactional() {
  if (!initialized_) {
    // Fences any earlier producer with this transactional.id and aborts what it left open.
    if (rd_kafka_error_t* error = rd_kafka_init_transactions(producer_, kInitTimeoutMs)) {
      if (rd_kafka_error_is_fatal(error)) return TransactionFailure(error, "init_transactions");
      const std::string reason = rd_kafka_error_string(error);
      rd_kafka_error_destroy(error);
      return Status::Retriable(
          fmt::format("kafka-sink {}: cannot initialise transactions (transactional.id \"{}\"): {}",
                      options_.name, KafkaTransactionalId(options_), reason));
    }
    initialized_ = true;
  }
  if (!offsets_known_) {
    RETURN_IF_ERROR(ReadCommittedOffsets());
    offsets_known_ = true;
    skipped_ = 0;
    spdlog::info(
        "kafka-sink: Transactions ready sink={} transactional_id={} offsets_topic={} "
        "committed_position={} committed_checkpoint={}",
        options_.name, KafkaTransactionalId(options_), options_.offsets_topic,
        committed_position_.value_or("none"), committed_checkpoint_.value_or("none"));
  }
  return Status::Ok();
}

Status KafkaSink::ReadCommittedOffsets() {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The user's settings carry security and client tuning; producer-only ones are ignored.
  for (const auto& [key, value] : options_.librdkafka) {
    rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
  }
  const std::string group = KafkaTransactionalId(options_) + "-offsets";
  // Assigned, never subscribed: the group id is required but no group is joined or committed.
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"bootstrap.servers", options_.brokers},
                                                        {"group.id", group},
                                                        {"enable.auto.commit", "false"},
                                                        {"enable.auto.offset.store", "false"},
                                                        {"isolation.level", "read_committed"},
                                                        {"enable.partition.eof", "true"},
                                                        {"log_level", "3"}}) {
    rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
  }
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (consumer == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidConfig(
        fmt::format("kafka-sink {}: cannot create the offsets reader: {}", options_.name, errstr));
  }
  auto fail = [&](const std::string& why) {
    rd_kafka_destroy(consumer);
    return Status::Retriable(fmt::format("kafka-sink {}: cannot read offsets topic {}: {}",
                                         options_.name, options_.offsets_topic, why));
  };
  rd_kafka_topic_t* topic = rd_kafka_topic_new(consumer, options_.offsets_topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t error = rd_kafka_metadata(consumer, 0, topic, &metadata, 10000);
  rd_kafka_topic_destroy(topic);
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR) return fail(rd_kafka_err2str(error));
  int partitions = 0;
  rd_kafka_resp_err_t topic_error = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
  if (metadata->topic_cnt == 1) {
    topic_error = metadata->topics[0].err;
    partitions = metadata->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(metadata);
  committed_position_.reset();
  committed_checkpoint_.reset();
  committed_lineage_.clear();
  if (topic_error == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
      topic_error == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || partitions == 0) {
    // No transaction ever committed there: nothing to skip.
    rd_kafka_destroy(consumer);
    return Status::Ok();
  }
  if (topic_error != RD_KAFKA_RESP_ERR_NO_ERROR) return fail(rd_kafka_err2str(topic_error));

  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(partitions);
  for (int32_t partition = 0; partition < partitions; ++partition) {
    rd_kafka_topic_partition_list_add(assignment, options_.offsets_topic.c_str(), partition)
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  const rd_kafka_resp_err_t assigned = rd_kafka_assign(consumer, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  if (assigned != RD_KAFKA_RESP_ERR_NO_ERROR) return fail(rd_kafka_err2str(assigned));

  const std::string key = OffsetsKey();
  std::set<int32_t> at_end;
  std::string last_error = "timed out";
  const auto deadline = std::chrono::steady_clock::now() + kOffsetsReadTimeout;
  while (static_cast<int>(at_end.size()) < partitions) {
    if (std::chrono::steady_clock::now() > deadline) return fail(last_error);
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer, 200);
    if (message == nullptr) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert(message->partition);
    } else if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      last_error = rd_kafka_message_errstr(message);
    } else if (message->key_len == key.size() &&
               std::string_view(static_cast<const char*>(message->key), message->key_len) == key) {
      committed_position_.reset();
      committed_checkpoint_.reset();
      committed_lineage_.clear();
      // A tombstone resets the record: nothing is skipped.
      if (message->payload != nullptr) {
        rapidjson::Document doc;
        doc.Parse(static_cast<const char*>(message->payload), message->len);
        if (doc.HasParseError() || !doc.IsObject()) {
          rd_kafka_message_destroy(message);
          rd_kafka_destroy(consumer);
          return Status::CorruptData(
              fmt::format("kafka-sink {}: the offsets record in {} is not JSON", options_.name,
                          options_.offsets_topic));
        }
        committed_position_ = OptionalString(doc, "position");
        committed_checkpoint_ = OptionalString(doc, "checkpoint");
        committed_lineage_ = OptionalString(doc, "lineage").value_or("");
      }
    }
    rd_kafka_message_destroy(message);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return Status::Ok();
}

Status KafkaSink::BeginTransaction() {
  if (rd_kafka_error_t* error = rd_kafka_begin_transaction(producer_)) {
    return TransactionFailure(error, "begin_transaction");
  }
  txn_open_ = true;
  txn_at_boundary_ = false;
  txn_started_ = std::chrono::steady_clock::now();
  txn_checkpoint_.reset();
  txn_position_.reset();
  return Status::Ok();
}

Status KafkaSink::CommitTransaction() {
  // Every record, dead letters included, delivered first: a failed one aborts instead.
  while (failure_.ok() && txn_open_ &&
         (rd_kafka_outq_len(producer_) > 0 || !dead_letter_queue_.empty())) {
    rd_kafka_flush(producer_, kFlushStepMs);
    RETURN_IF_ERROR(Serve(0));
  }
  if (!failure_.ok() || !txn_open_) return failure_;

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  auto write_string = [&](const char* name, const std::optional<std::string>& text) {
    writer.Key(name);
    if (text) {
      writer.String(text->c_str(), static_cast<rapidjson::SizeType>(text->size()));
    } else {
      writer.Null();
    }
  };
  const std::optional<std::string> position = txn_position_ ? txn_position_ : committed_position_;
  const std::optional<std::string> checkpoint =
      txn_checkpoint_ ? txn_checkpoint_ : committed_checkpoint_;
  writer.StartObject();
  write_string("source", options_.source);
  write_string("sink", options_.name);
  write_string("transactional_id", KafkaTransactionalId(options_));
  write_string("checkpoint", checkpoint);
  write_string("position", position);
  // The position's lineage: the committed one while the transaction holds no event.
  const std::string& lineage = txn_position_ ? txn_lineage_ : committed_lineage_;
  if (!lineage.empty()) write_string("lineage", lineage);
  writer.Key("ts_ms");
  writer.Int64(UnixMicrosNow() / 1000);
  writer.EndObject();
  const std::string value(buffer.GetString(), buffer.GetSize());
  RETURN_IF_ERROR(Produce(offsets_topic_, OffsetsKey(), &value, rd_kafka_headers_new(0),
                          batches_.empty() ? 0 : batches_.back().sequence,
                          /*dead_letter=*/false));

  for (int attempt = 1;; ++attempt) {
    rd_kafka_error_t* error = rd_kafka_commit_transaction(producer_, kCommitTimeoutMs);
    if (error == nullptr) break;
    if (rd_kafka_error_is_retriable(error) && attempt < kCommitAttempts) {
      spdlog::warn("kafka-sink: Commit failed, trying again sink={} attempt={} error=\"{}\"",
                   options_.name, attempt, rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
      continue;
    }
    return TransactionFailure(error, "commit_transaction");
  }
  txn_open_ = false;
  committed_position_ = position;
  committed_checkpoint_ = checkpoint;
  committed_lineage_ = lineage;
  pending_bytes_ = 0;
  spdlog::debug("kafka-sink: Committed a transaction sink={} batches={} position={}", options_.name,
                batches_.size(), position.value_or("none"));
  // The committed records' reports: nothing left to learn from them.
  rd_kafka_poll(producer_, 0);
  while (!batches_.empty()) {
    const uint64_t sequence = batches_.front().sequence;
    batches_.pop_front();
    on_durable_(sequence);
  }
  return failure_;
}

Status KafkaSink::AbortTransaction(const std::string& reason) {
  spdlog::warn("kafka-sink: Aborting the transaction sink={} reason=\"{}\"", options_.name, reason);
  for (int attempt = 1;; ++attempt) {
    rd_kafka_error_t* error = rd_kafka_abort_transaction(producer_, kCommitTimeoutMs);
    if (error == nullptr) break;
    const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
    if (rd_kafka_error_is_fatal(error)) {
      const std::string text = rd_kafka_error_string(error);
      rd_kafka_error_destroy(error);
      fatal_error_ = true;
      return Fail(Status::Fatal(FatalMessage(code, text)));
    }
    const std::string text = rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
    if (code == RD_KAFKA_RESP_ERR__STATE) break;  // no transaction was open
    if (attempt >= kAbortAttempts) {
      return Fail(Status::Fatal(
          fmt::format("kafka-sink {}: cannot abort the transaction: {}", options_.name, text)));
    }
  }
  // What the transaction held is never acked: the pipeline replays it from its checkpoint, and
  // the offsets are read back first in case a commit that reported failure did go through.
  batches_.clear();
  FreeDeadLetters();
  txn_open_ = false;
  txn_position_.reset();
  txn_checkpoint_.reset();
  pending_bytes_ = 0;
  offsets_known_ = false;
  const std::string why = std::exchange(abort_reason_, {});
  rd_kafka_poll(producer_, 0);
  abort_reason_.clear();
  abort_reason_purged_ = false;
  return Fail(Status::Retriable(
      fmt::format("kafka-sink {}: transaction aborted, replaying from the checkpoint: {}",
                  options_.name, why.empty() ? reason : why)));
}

Status KafkaSink::TransactionFailure(rd_kafka_error_t* error, std::string_view what) {
  const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  const std::string reason = fmt::format("{} failed: {}", what, rd_kafka_error_string(error));
  const bool fatal = rd_kafka_error_is_fatal(error);
  rd_kafka_error_destroy(error);
  if (fatal) {
    fatal_error_ = true;
    rd_kafka_resp_err_t cause = code;
    char text[512];
    if (code == RD_KAFKA_RESP_ERR__FATAL)
      cause = rd_kafka_fatal_error(producer_, text, sizeof text);
    return Fail(Status::Fatal(FatalMessage(cause, reason)));
  }
  return AbortTransaction(reason);
}

}  // namespace tributary
