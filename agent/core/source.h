#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// What a source can measure about itself besides its events; what it cannot, it leaves empty.
struct SourceGauges {
  // PostgreSQL: WAL bytes from the slot's confirmed_flush_lsn to the server's current LSN.
  std::optional<uint64_t> slot_lag_bytes;
  // Tables whose snapshot has not finished (0 once none is left).
  std::optional<uint64_t> snapshot_tables_remaining;
};

// A change source. Sources do not retry: the pipeline's supervisor does.
class Source {
 public:
  virtual ~Source() = default;

  // Connects and positions the stream just after `checkpoint` (a commit position from an
  // earlier Batch), or at the start when there is none. Fails with kContinuityLost when the
  // server can no longer deliver everything after the checkpoint.
  virtual Status Open(const std::optional<std::string>& checkpoint) = 0;

  // After an Open from a checkpoint: false when the source resumed on a server whose positions
  // are not the checkpoint's history (a MariaDB failover by GTID to a server whose binlogs
  // number differently), so that they may sort below what sinks hold. The pipeline then starts
  // a new lineage (CheckpointStore::lineage): sinks take everything, duplicates rather than gaps.
  virtual bool PositionsContinueCheckpoint() const { return true; }

  // Appends events to `batch` (which the caller has cleared) until it holds about
  // `max_bytes`, a commit arrives after that, or the stream pauses. Waits at most `timeout`
  // for a first event; with events in hand, returns within about 100 ms however steadily
  // they come. Sets batch.commit_position when the batch ends a transaction. An empty batch is
  // fine.
  virtual Status Poll(Batch& batch, size_t max_bytes, std::chrono::milliseconds timeout) = 0;

  // Everything up to and including `position` is durably checkpointed: the source may let
  // the server discard it.
  virtual Status Acknowledge(const std::string& position) = 0;

  // Measures SourceGauges while open. Called every few seconds, never per event; a failed
  // measurement leaves its field empty and never fails the source.
  virtual SourceGauges Sample() { return {}; }

  virtual void Close() = 0;
};

}  // namespace tributary
