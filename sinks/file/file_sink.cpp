#include "sinks/file/file_sink.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <system_error>
#include <utility>

#include "agent/core/clock.h"
#include "agent/core/durable_file.h"
#include "agent/core/topic_name.h"

namespace tributary {
namespace {

// The topic name for `table`, or kInvalidConfig for a bad template. The name becomes one
// directory: a leading '.' is prefixed with '_' as well, since dot files are in-progress
// segments and . and .. are not names.
Result<std::string> FormatTopic(const std::string& sink, std::string_view topic_template,
                                const TableSchema& table) {
  ASSIGN_OR_RETURN(std::string topic,
                   ExpandTopicTemplate("file-sink " + sink, topic_template, table));
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

Result<TopicWriter*> FileSink::OpenTopic(const std::string& name) {
  auto topic = topics_.find(name);
  if (topic == topics_.end()) {
    auto created = std::make_unique<TopicWriter>(name, options_.path / name, options_.rotate_bytes);
    RETURN_IF_ERROR(created->Recover());
    // A rotation vouches for the rows it completes at once, not at the next flush: the schema
    // changes they follow must be durable first, as Flush makes them.
    created->BeforeCompletingSegment([this, self = created.get()]() -> Status {
      for (TopicWriter* changes : schema_change_topics_) {
        if (changes != self) RETURN_IF_ERROR(changes->Sync());
      }
      return Status::Ok();
    });
    topic = topics_.emplace(name, std::move(created)).first;
  }
  return topic->second.get();
}

Result<FileSink::TableRoute*> FileSink::RouteFor(const Batch& batch, const TableSchema* table) {
  return route_by_table_.Get(
      "file-sink " + options_.name, batch, table,
      [&](const std::shared_ptr<const TableSchema>& schema) -> Result<TableRoute> {
        ASSIGN_OR_RETURN(std::string topic,
                         FormatTopic(options_.name, options_.topic_template, *schema));
        TableRoute route;
        route.topic = std::move(topic);
        return route;
      });
}

Status FileSink::AppendRow(const Batch& batch, const Event& event, int64_t now_us,
                           TableRoute& route) {
  if (route.rows == nullptr) {
    ASSIGN_OR_RETURN(route.rows, OpenTopic(route.topic));
    if (options_.schemas) route.connect = BuildConnectSchemas(*event.table, route.topic);
  }
  return route.rows->Append(batch.Text(event.position), batch.lineage, [&](std::string& out) {
    if (route.connect) {
      envelope_writer_.WriteConnect(batch, event, now_us, *route.connect, out);
    } else {
      envelope_writer_.Write(batch, event, now_us, out);
    }
  });
}

Status FileSink::AppendSchemaChange(const Batch& batch, const Event& event, TableRoute& route) {
  if (route.schema_changes == nullptr) {
    ASSIGN_OR_RETURN(std::string name,
                     FormatTopic(options_.name, kSchemaChangeTopic, *event.table));
    ASSIGN_OR_RETURN(route.schema_changes, OpenTopic(name));
    if (std::find(schema_change_topics_.begin(), schema_change_topics_.end(),
                  route.schema_changes) == schema_change_topics_.end()) {
      schema_change_topics_.push_back(route.schema_changes);
    }
  }
  return route.schema_changes->Append(
      batch.Text(event.position), batch.lineage, [&](std::string& out) {
        if (options_.schemas) {
          envelope_writer_.WriteConnectSchemaChange(batch, event, out);
        } else {
          envelope_writer_.WriteSchemaChange(batch, event, out);
        }
      });
}

Status FileSink::AppendTransaction(const Batch& batch, const Event& event, TableRoute& route) {
  if (route.transactions == nullptr) {
    ASSIGN_OR_RETURN(std::string name, FormatTopic(options_.name, kTransactionTopic, *event.table));
    ASSIGN_OR_RETURN(route.transactions, OpenTopic(name));
  }
  return route.transactions->Append(batch.Text(event.position), batch.lineage,
                                    [&](std::string& out) {
                                      if (options_.schemas) {
                                        envelope_writer_.WriteConnectTransaction(batch, event, out);
                                      } else {
                                        envelope_writer_.WriteTransaction(batch, event, out);
                                      }
                                    });
}

Status FileSink::AppendMessage(const Batch& batch, const Event& event, int64_t now_us,
                               TableRoute& route) {
  if (route.messages == nullptr) {
    ASSIGN_OR_RETURN(std::string name, FormatTopic(options_.name, kMessageTopic, *event.table));
    ASSIGN_OR_RETURN(route.messages, OpenTopic(name));
  }
  return route.messages->Append(batch.Text(event.position), batch.lineage, [&](std::string& out) {
    if (options_.schemas) {
      envelope_writer_.WriteConnectMessage(batch, event, now_us, out);
    } else {
      envelope_writer_.WriteMessage(batch, event, now_us, out);
    }
  });
}

Status FileSink::Submit(const Batch& batch) {
  if (!failure_.ok()) return failure_;
  if (!batch.events.empty()) {
    const int64_t now_us = UnixMicrosNow();
    for (const Event& event : batch.events) {
      Result<TableRoute*> route = RouteFor(batch, event.table);
      if (!route.ok()) return Fail(route.status());
      Status status;
      if (event.op == Op::kSchemaChange) {
        status = AppendSchemaChange(batch, event, **route);
      } else if (event.op == Op::kTransactionBegin || event.op == Op::kTransactionEnd) {
        status = AppendTransaction(batch, event, **route);
      } else if (event.op == Op::kMessage) {
        status = AppendMessage(batch, event, now_us, **route);
      } else {
        status = AppendRow(batch, event, now_us, **route);
      }
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

Status FileSink::SourceQuiet() {
  if (!failure_.ok()) return failure_;
  return pending_.empty() || !options_.flush_when_quiet ? Status::Ok() : Flush();
}

Status FileSink::Flush() {
  if (!failure_.ok()) return failure_;
  // Schema changes first: a crash between two topics' syncs must not leave rows of a new
  // version durable without the schema change that precedes them.
  for (TopicWriter* topic : schema_change_topics_) {
    Status status = topic->Sync();
    if (!status.ok()) return Fail(std::move(status));
  }
  for (auto& [name, topic] : topics_) {
    Status status = topic->Sync();
    if (!status.ok()) return Fail(std::move(status));
  }
  last_flush_ = std::chrono::steady_clock::now();
  std::deque<PendingBatch> durable = std::exchange(pending_, {});
  pending_bytes_ = 0;
  for (const PendingBatch& batch : durable) on_durable_(batch.sequence);
  route_by_table_.Prune();
  return Status::Ok();
}

void FileSink::Close() {
  route_by_table_.Clear();
  schema_change_topics_.clear();
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
