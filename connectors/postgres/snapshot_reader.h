#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/status.h"
#include "connectors/postgres/pg_connection.h"
#include "connectors/postgres/snapshot.h"

namespace tributary::postgres {

// What the reader reads: one table from `after_key` up to `until_key`, `chunk_rows` a chunk,
// each chunk followed by its high watermark (WatermarkMessage). A chunk whose table changed
// ends the reading.
struct SnapshotReadJob {
  CatalogTable table;  // as the catalog described it when reading began
  std::optional<std::vector<std::string>> after_key;
  std::optional<std::vector<std::string>> until_key;
  size_t chunk_rows = 1;
  std::string chunk_id_prefix;  // a chunk's id is this and its serial
  // Read in the transaction BeginExported opened: no watermarks, no transaction per chunk.
  bool exported = false;
};

// Reads a table's chunks on a thread and a connection of its own, a few chunks ahead of the
// stream: while the source turns one chunk into events and waits for the next one's watermark,
// the server already reads the chunks after it. A chunk's range starts after the last key of
// the chunk before it, so the reader, not the source, walks the table.
class SnapshotReader {
 public:
  SnapshotReader(std::string source_name, std::string dsn);
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  // Opens the transaction that exported jobs read in: it imports the slot's exported snapshot
  // `snapshot_name` and locks `tables` (quoted, comma-separated) in ACCESS SHARE mode, so that
  // none is altered until Close. Only while no job runs; a failure closes the connection.
  //
  // A thread with a connection of its own then looks for sessions waiting for those locks
  // (an ALTER TABLE, and every query queued behind it) until Close. When it finds one, or
  // cannot look, it ends the reading session at once (EndExportedSession), whatever the reader
  // and the source are doing, and exported_ended() turns true: jobs fail from then on.
  Status BeginExported(const std::string& snapshot_name, const std::string& tables);
  bool exported_ended() const { return exported_ended_.load(); }

  // Starts reading; a job still running is stopped first.
  void Start(SnapshotReadJob job);
  // Stops reading and drops the chunks read ahead. Keeps the connection when it is idle.
  void Stop();
  // Closes the connection too.
  void Close();

  // The next chunk, waiting up to `wait` for it; nullopt when none is ready in time or the job
  // has no more. An error when the reader failed.
  Result<std::optional<SnapshotChunk>> Next(std::chrono::milliseconds wait);

 private:
  void Run(const SnapshotReadJob& job);
  void WatchForWaiters(int pid);
  // Hangs up the exported snapshot's session, if there is one; with mutex_ held.
  void EndExportedSession();
  Result<SnapshotChunk> ReadChunk(const SnapshotReadJob& job, uint64_t serial,
                                  std::optional<std::vector<std::string>>& after_key);
  Status Connect();

  const std::string source_name_;
  const std::string dsn_;
  // Used by the thread only while it runs, and by Stop/Close only while it does not.
  std::optional<PgConnection> conn_;

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<SnapshotChunk> ready_;  // guarded by mutex_
  Status failure_;                   // guarded by mutex_
  bool running_ = false;             // guarded by mutex_: the thread reads on
  bool stop_ = false;                // guarded by mutex_
  bool cancelled_ = false;           // guarded by mutex_: a query was interrupted
  // Guarded by mutex_: the connection holds the exported snapshot's transaction
  // (BeginExported), so it is never interrupted or replaced until Close.
  bool exported_session_ = false;
  PGcancel* cancel_ = nullptr;  // guarded by mutex_: interrupts the running query

  std::thread watcher_;
  std::mutex watch_mutex_;
  std::condition_variable watch_changed_;
  bool watch_stop_ = false;  // guarded by watch_mutex_
  std::atomic<bool> exported_ended_{false};
};

}  // namespace tributary::postgres
