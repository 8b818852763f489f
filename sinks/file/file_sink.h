#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/connect_schema.h"
#include "agent/core/envelope_writer.h"
#include "agent/core/event.h"
#include "agent/core/sink.h"
#include "agent/core/status.h"
#include "agent/core/table_cache.h"
#include "sinks/file/topic_writer.h"

namespace tributary {

struct FileSinkOptions {
  std::string name;
  std::filesystem::path path;
  // {source}, {schema} (the database when the table has no schema), {database}, {table}.
  std::string topic_template = "{source}.{schema}.{table}";
  uint64_t rotate_bytes = 128 << 20;
  std::chrono::milliseconds flush_interval{200};
  // Flush as soon as the source falls quiet too, not only on the interval.
  bool flush_when_quiet = true;
  // Kafka Connect's JsonConverter form: {"schema":…,"payload":…} for every line.
  bool schemas = false;
};

// Writes envelopes as JSON lines into <path>/<topic>/ segments (DESIGN.md §6, TopicWriter);
// schema-change events go to the topic "{source}.schema-changes", transaction BEGIN and END
// events to "{source}.transaction".
// Acks a batch once a Flush has fsynced its lines and the watermarks that cover them; flushes
// on flush_interval from Poll, and when the source falls quiet. Events at or below the last
// position a topic took (after a crash, its watermark's) are replays and are skipped, so each
// change is written once. Each source needs its own topics: a topic directory is locked by its
// writer.
class FileSink : public Sink {
 public:
  explicit FileSink(FileSinkOptions options);
  ~FileSink() override;

  Status Open(AckCallback on_durable) override;
  Status Submit(const Batch& batch) override;
  Status Poll() override;
  Status Flush() override;
  // Flushes at once (unless flush_when_quiet is off): the interval bounds how long a change
  // waits while more keep coming, and none are coming.
  Status SourceQuiet() override;
  bool AcksWhenQuiet() const override { return options_.flush_when_quiet; }
  size_t PendingBytes() const override { return pending_bytes_; }
  void Close() override;

 private:
  struct PendingBatch {
    uint64_t sequence;
    size_t bytes;
  };
  // Where one table version's events go; the topics are opened on first use, so a version
  // that only ever has a schema change (a dropped table) creates no row directory.
  struct TableRoute {
    std::string topic;
    TopicWriter* rows = nullptr;
    TopicWriter* schema_changes = nullptr;
    TopicWriter* transactions = nullptr;    // {source}.transaction: BEGIN and END events
    TopicWriter* messages = nullptr;        // {source}.message: logical decoding messages
    std::optional<ConnectSchemas> connect;  // with `schemas`, built with the first row
  };
  Result<TableRoute*> RouteFor(const Batch& batch, const TableSchema* table);
  Result<TopicWriter*> OpenTopic(const std::string& name);
  Status AppendRow(const Batch& batch, const Event& event, int64_t now_us, TableRoute& route);
  Status AppendSchemaChange(const Batch& batch, const Event& event, TableRoute& route);
  Status AppendTransaction(const Batch& batch, const Event& event, TableRoute& route);
  Status AppendMessage(const Batch& batch, const Event& event, int64_t now_us, TableRoute& route);
  // Remembers the failure: after an I/O error nothing more may be acked.
  Status Fail(Status status);

  FileSinkOptions options_;
  AckCallback on_durable_;
  EnvelopeWriter envelope_writer_;
  // Topic directories are recovered on first use: other sinks may own the rest of `path`.
  std::map<std::string, std::unique_ptr<TopicWriter>> topics_;
  TableCache<TableRoute> route_by_table_;
  // Synced before the other topics, so a schema change is never less durable than its rows.
  std::vector<TopicWriter*> schema_change_topics_;
  std::deque<PendingBatch> pending_;
  size_t pending_bytes_ = 0;
  std::chrono::steady_clock::time_point last_flush_;
  Status failure_;
};

}  // namespace tributary
