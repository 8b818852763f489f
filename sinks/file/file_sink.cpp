#include "sinks/file/file_sink.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <system_error>
#include <utility>

#include "agent/core/durable_file.h"

namespace tributary {
namespace {

// The topic name for `table`, or kInvalidConfig for a bad template. The name becomes one
// directory: characters outside [A-Za-z0-9._-] turn into '_', as Debezium does for Kafka
// topics, and a leading '.' too, since dot files are in-progress segments and . and ..
Result<std::string> FormatTopic(const std::string& sink, std::string_view topic_template,
                                const TableSchema& table) {
  std::string topic;
  size_t i = 0;
  while (i < topic_template.size()) {
    if (topic_template[i] != '{') {
      topic += topic_template[i++];
      continue;
    }
    size_t close = topic_template.find('}', i);
    if (close == std::string_view::npos) {
      return Status::InvalidConfig(fmt::format(
          "file-sink {}: topic template \"{}\" has an unclosed '{{'", sink, topic_template));
    }
    std::string_view field = topic_template.substr(i + 1, close - i - 1);
    if (field == "source") {
      topic += table.source;
    } else if (field == "schema") {
      topic += table.schema.empty() ? table.database : table.schema;
    } else if (field == "database") {
      topic += table.database;
    } else if (field == "table") {
      topic += table.table;
    } else {
      return Status::InvalidConfig(fmt::format(
          "file-sink {}: topic template \"{}\" has an unknown field {{{}}}; known: {{source}}, "
          "{{schema}}, {{database}}, {{table}}",
          sink, topic_template, field));
    }
    i = close + 1;
  }
  for (char& c : topic) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-';
    if (!allowed) c = '_';
  }
  if (topic.empty() || topic.front() == '.') topic.insert(topic.begin(), '_');
  return topic;
}

}  // namespace

FileSink::FileSink(FileSinkOptions options) : options_(std::move(options)) {}

FileSink::~FileSink() { Close(); }

Status FileSink::Open(AckCallback on_durable) {
  Close();
  if (options_.rotate_bytes == 0) {
    return Status::InvalidConfig(
        fmt::format("file-sink {}: rotate_bytes must be positive", options_.name));
  }
  RETURN_IF_ERROR(FormatTopic(options_.name, options_.topic_template, TableSchema{}).status());
  std::error_code ec;
  std::filesystem::create_directories(options_.path, ec);
  if (ec) return IoError("create directory", options_.path, ec.value());
  on_durable_ = std::move(on_durable);
  failure_ = Status::Ok();
  last_flush_ = std::chrono::steady_clock::now();
  spdlog::info("file-sink: Opened sink={} path={}", options_.name, options_.path.string());
  return Status::Ok();
}

Result<TopicWriter*> FileSink::TopicFor(const Batch& batch, const TableSchema* table) {
  if (table == last_table_) return last_topic_;
  auto cached = topic_by_table_.find(table);
  if (cached == topic_by_table_.end()) {
    auto retained = std::find_if(batch.tables.begin(), batch.tables.end(),
                                 [table](const auto& schema) { return schema.get() == table; });
    if (table == nullptr || retained == batch.tables.end()) {
      return Status::Fatal(
          fmt::format("file-sink {}: batch {} has an event whose table is not in Batch::tables",
                      options_.name, batch.sequence));
    }
    ASSIGN_OR_RETURN(std::string name, FormatTopic(options_.name, options_.topic_template, *table));
    auto topic = topics_.find(name);
    if (topic == topics_.end()) {
      auto writer =
          std::make_unique<TopicWriter>(name, options_.path / name, options_.rotate_bytes);
      RETURN_IF_ERROR(writer->Recover());
      topic = topics_.emplace(name, std::move(writer)).first;
    }
    cached = topic_by_table_.emplace(table, CachedTopic{*retained, topic->second.get()}).first;
  }
  last_table_ = table;
  last_topic_ = cached->second.topic;
  return last_topic_;
}

Status FileSink::Submit(const Batch& batch) {
  if (!failure_.ok()) return failure_;
  if (!batch.events.empty()) {
    int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    for (const Event& event : batch.events) {
      Result<TopicWriter*> topic = TopicFor(batch, event.table);
      if (!topic.ok()) return Fail(topic.status());
      Status status = (*topic)->Append(envelope_writer_, batch, event, now_us);
      if (!status.ok()) return Fail(std::move(status));
    }
  }
  size_t bytes = batch.ByteSize();
  pending_.push_back({batch.sequence, bytes});
  pending_bytes_ += bytes;
  return Status::Ok();
}

Status FileSink::Poll() {
  if (!failure_.ok()) return failure_;
  if (pending_.empty() ||
      std::chrono::steady_clock::now() - last_flush_ < options_.flush_interval) {
    return Status::Ok();
  }
  return Flush();
}

Status FileSink::Flush() {
  if (!failure_.ok()) return failure_;
  for (auto& [name, topic] : topics_) {
    Status status = topic->Sync();
    if (!status.ok()) return Fail(std::move(status));
  }
  last_flush_ = std::chrono::steady_clock::now();
  // Taken out first: the callback may submit again.
  std::deque<PendingBatch> durable = std::exchange(pending_, {});
  pending_bytes_ = 0;
  for (const PendingBatch& batch : durable) on_durable_(batch.sequence);
  // A source replaces a table's schema on every Relation message (reconnects, DDL); forget
  // the versions no batch holds any more, so the cache does not grow for ever.
  std::erase_if(topic_by_table_,
                [](const auto& entry) { return entry.second.schema.use_count() == 1; });
  last_table_ = nullptr;
  return Status::Ok();
}

void FileSink::Close() {
  topic_by_table_.clear();
  last_table_ = nullptr;
  last_topic_ = nullptr;
  topics_.clear();
  pending_.clear();
  pending_bytes_ = 0;
}

Status FileSink::Fail(Status status) {
  spdlog::error("file-sink: Failed, no more acks sink={} error=\"{}\"", options_.name,
                status.ToString());
  failure_ = status;
  return status;
}

}  // namespace tributary
