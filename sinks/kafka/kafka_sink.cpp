#include "sinks/kafka/kafka_sink.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
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
// Where every source's schema-change events go (docs/events.md).
constexpr std::string_view kSchemaChangeTopic = "{source}.schema-changes";

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

std::vector<std::pair<std::string, std::string>> KafkaProducerSettings(
    const KafkaSinkOptions& options) {
  std::vector<std::pair<std::string, std::string>> settings = BaseSettings(options);
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
  on_durable_ = std::move(on_durable);
  retries_before_open_ = retries_;
  failure_ = Status::Ok();
  fatal_error_ = false;
  spdlog::info("kafka-sink: Opened sink={} brokers={}", options_.name, options_.brokers);
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
  batches_.push_back({batch.sequence, 0, false});
  const int64_t now_us = UnixMicrosNow();
  for (const Event& event : batch.events) {
    Result<TableTopic*> topic = TopicFor(batch, event.table);
    if (!topic.ok()) return Fail(topic.status());
    Result<rd_kafka_topic_t*> handle = Serialize(batch, event, now_us, **topic);
    if (!handle.ok()) return Fail(handle.status());
    // A table without a key gets a null key, which the partitioner spreads at random.
    const std::string_view key = key_ == "null" ? std::string_view() : std::string_view(key_);
    const std::string_view position = batch.Text(event.position);
    const char op = static_cast<char>(event.op);
    const bool tombstone = event.op == Op::kDelete && options_.tombstones && !key.empty();
    for (int record = 0; record < (tombstone ? 2 : 1); ++record) {
      rd_kafka_headers_t* headers = rd_kafka_headers_new(3);
      AddHeader(headers, "op", std::string_view(&op, 1));
      AddHeader(headers, "source.schema_version", (*topic)->version_text);
      AddHeader(headers, "source.position", position);
      // The second record of a delete is its tombstone: same key, null value.
      Status status = Produce(*handle, key, record == 0 ? &value_ : nullptr, headers,
                              batch.sequence, /*dead_letter=*/false);
      if (!status.ok()) return Fail(std::move(status));
    }
  }
  // Looked up again: producing may poll, which may grow the deque. Only Serve retires batches.
  FindBatch(batch.sequence)->sealed = true;
  return Serve(0);
}

Status KafkaSink::Produce(rd_kafka_topic_t* topic, std::string_view key, const std::string* value,
                          rd_kafka_headers_t* headers, uint64_t sequence, bool dead_letter) {
  const size_t bytes = key.size() + (value != nullptr ? value->size() : 0);
  // librdkafka copies both (RD_KAFKA_MSG_F_COPY) and does not write through the pointers.
  void* key_data = key.empty() ? nullptr : const_cast<char*>(key.data());
  void* value_data = value != nullptr ? const_cast<char*>(value->data()) : nullptr;
  const size_t value_size = value != nullptr ? value->size() : 0;
  while (true) {
    const rd_kafka_resp_err_t error = rd_kafka_producev(
        producer_, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key_data, key.size()), RD_KAFKA_V_VALUE(value_data, value_size),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(Tag(sequence, dead_letter)), RD_KAFKA_V_END);
    if (error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      // librdkafka owns the headers now.
      if (!dead_letter) ++FindBatch(sequence)->remaining;
      pending_bytes_ += bytes;
      return Status::Ok();
    }
    if (error == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Bounded memory: wait for deliveries to make room; never drop.
      rd_kafka_poll(producer_, kQueueFullPollMs);
      if (fatal_error_ || !failure_.ok()) break;
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
    return Status::Fatal(fmt::format("kafka-sink {}: cannot produce to {}{}: {}", options_.name,
                                     rd_kafka_topic_name(topic),
                                     dead_letter ? " (dead letter)" : "", rd_kafka_err2str(error)));
  }
  rd_kafka_headers_destroy(headers);
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
    sink->Fail(Status::Fatal(fmt::format("kafka-sink {}: fatal producer error {}: {}",
                                         sink->options_.name, rd_kafka_err2name(cause), fatal)));
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
  if (!dead_letter_queue_.empty()) RETURN_IF_ERROR(WriteDeadLetters());
  AckCompleted();
  return failure_;
}

Status KafkaSink::Poll() {
  if (producer_ == nullptr) return failure_;
  return Serve(0);
}

Status KafkaSink::Flush() {
  if (producer_ == nullptr) return failure_;
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
  if (producer_ != nullptr) {
    // What is still queued was never acked: the checkpoint is behind it, so it will be replayed.
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_, 0);
    for (auto& [name, topic] : topics_) rd_kafka_topic_destroy(topic);
    if (dlq_topic_ != nullptr) rd_kafka_topic_destroy(dlq_topic_);
    rd_kafka_destroy(producer_);
    spdlog::info("kafka-sink: Closed sink={} dead_letters={}", options_.name, dead_letters_);
  }
  topics_.clear();
  dlq_topic_ = nullptr;
  producer_ = nullptr;
  batches_.clear();
  pending_bytes_ = 0;
}

void KafkaSink::FreeDeadLetters() {
  for (DeadLetter& letter : dead_letter_queue_) {
    if (letter.headers != nullptr) rd_kafka_headers_destroy(letter.headers);
  }
  dead_letter_queue_.clear();
}

const Status& KafkaSink::Fail(Status status) {
  if (!failure_.ok()) return failure_;
  spdlog::error("kafka-sink: Failed, no more acks sink={} error=\"{}\"", options_.name,
                status.ToString());
  failure_ = std::move(status);
  return failure_;
}

}  // namespace tributary
