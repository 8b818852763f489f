#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

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
};

// Writes envelopes as JSON lines into <path>/<topic>/ segments (DESIGN.md §6, TopicWriter).
// Acks a batch once a Flush has fsynced its lines and the watermarks that cover them; flushes
// on flush_interval from Poll. Events at or below the last position a topic took (after a
// crash, its watermark's) are replays and are skipped, so each change is written once.
// Each source needs its own topics: a topic directory is locked by its writer.
class FileSink : public Sink {
 public:
  explicit FileSink(FileSinkOptions options);
  ~FileSink() override;

  Status Open(AckCallback on_durable) override;
  Status Submit(const Batch& batch) override;
  Status Poll() override;
  Status Flush() override;
  size_t PendingBytes() const override { return pending_bytes_; }
  void Close() override;

 private:
  struct PendingBatch {
    uint64_t sequence;
    size_t bytes;
  };
  Result<TopicWriter*> TopicFor(const Batch& batch, const TableSchema* table);
  // Remembers the failure: after an I/O error nothing more may be acked.
  Status Fail(Status status);

  FileSinkOptions options_;
  AckCallback on_durable_;
  EnvelopeWriter envelope_writer_;
  // Topic directories are recovered on first use: other sinks may own the rest of `path`.
  std::map<std::string, std::unique_ptr<TopicWriter>> topics_;
  TableCache<TopicWriter*> topic_by_table_;
  std::deque<PendingBatch> pending_;
  size_t pending_bytes_ = 0;
  std::chrono::steady_clock::time_point last_flush_;
  Status failure_;
};

}  // namespace tributary
