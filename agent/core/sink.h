#pragma once

#include <cstdint>
#include <functional>

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// Called with a batch's sequence once every event of it is durable in the sink.
using AckCallback = std::function<void(uint64_t batch_sequence)>;

// What a sink counts about its deliveries, since it was created.
struct SinkCounters {
  uint64_t dead_letters = 0;  // records rejected for good and sent to the dead-letter topic
  uint64_t retries = 0;       // sends repeated after a retriable failure
};

// A destination. Open and Close come from the pipeline's thread; every call in between, and the
// acks, from the sink's worker thread (SinkWorker), one at a time. Other sinks read the same
// batches at the same time, so a batch is read-only. Close must not ack: the worker is gone.
class Sink {
 public:
  virtual ~Sink() = default;

  virtual Status Open(AckCallback on_durable) = 0;

  // Takes the batch's events; the batch may be reused once this returns.
  virtual Status Submit(const Batch& batch) = 0;

  // Lets the sink make progress (flush on its interval, collect delivery reports) and fire
  // acks. Cheap when there is nothing to do.
  virtual Status Poll() = 0;

  // Makes everything submitted durable and fires its acks before returning.
  virtual Status Flush() = 0;

  // The source has nothing more for now, and the pipeline waits for acks of what this sink
  // took: a sink that holds it back for an interval may make it durable now. Called with
  // nothing queued for the sink.
  virtual Status SourceQuiet() { return Status::Ok(); }
  // Whether SourceQuiet makes what the sink took durable, and acks it, at once. When every sink
  // does, the pipeline then looks for their acks every millisecond rather than every 10.
  virtual bool AcksWhenQuiet() const { return false; }

  // Bytes submitted but not yet acknowledged: the pipeline stops reading past its limit.
  virtual size_t PendingBytes() const = 0;

  // Totals since the sink was created. The pipeline reads them on every loop: keep it cheap.
  virtual SinkCounters counters() const { return {}; }

  virtual void Close() = 0;
};

}  // namespace tributary
