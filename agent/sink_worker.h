#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/core/event.h"
#include "agent/core/sink.h"
#include "agent/core/status.h"

namespace tributary {

// Recycles batches between the pipeline and its sink workers, so a batch's buffers keep their
// capacity from poll to poll as they did with one batch. The pool must outlive every batch it
// shares.
class BatchPool {
 public:
  // A batch whose arena grew past `max_kept_bytes` (a huge row) is freed instead of kept.
  explicit BatchPool(size_t max_kept_bytes) : max_kept_bytes_(max_kept_bytes) {}

  // An empty batch.
  std::unique_ptr<Batch> Take();

  // Shares `batch` read-only; it comes back to the pool when the last holder lets go.
  std::shared_ptr<const Batch> Share(std::unique_ptr<Batch> batch);

 private:
  const size_t max_kept_bytes_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Batch>> free_;
};

// Runs one sink on a thread of its own, so that encoding and writing a batch overlap with
// reading and decoding the next one: on a single thread the sink's JSON alone takes longer
// than the source's whole read (docs/performance.md).
//
// Every call into the sink after Open comes from the worker's thread, one at a time, and so
// do its acks; the pipeline collects them with TakeAcks. After a sink call fails, the worker
// drops what is queued behind it, so that a sink never takes a batch after one it failed (a
// file sink would then skip the failed batch's replay as already written); the failure is
// reported by every call until Reset.
class SinkWorker {
 public:
  // `sink` must outlive the worker, and be closed only after it; `max_queued` batches may
  // wait for it.
  SinkWorker(Sink& sink, size_t max_queued);
  ~SinkWorker();
  SinkWorker(const SinkWorker&) = delete;
  SinkWorker& operator=(const SinkWorker&) = delete;

  // Opens the sink, its acks queued for TakeAcks, and starts the thread.
  Status Open();

  // Queues a batch for the sink, waiting while `max_queued` batches wait already. Returns the
  // failure, if any, without queueing.
  Status Submit(std::shared_ptr<const Batch> batch);

  // Waits until the sink has taken everything queued and its Flush returned: the first
  // failure since Reset, if any, else the Flush's outcome. The queue is empty afterwards.
  Status Flush();

  // Tells the sink, once the queue ahead is empty, that the source is quiet
  // (Sink::SourceQuiet). Does not wait.
  void SourceQuiet();

  // The first failure since Reset, or Ok.
  Status status() const;

  // Forgets the failure, for the pipeline's next run. The queue must be empty (after Flush).
  void Reset();

  // Appends the sequences acked since the last call.
  void TakeAcks(std::vector<uint64_t>& acks);

  // Bytes queued for the sink plus the sink's own PendingBytes.
  size_t PendingBytes() const { return queued_bytes_.load() + sink_pending_bytes_.load(); }
  SinkCounters counters() const;

 private:
  void Loop();
  // Records the first failure and wakes a waiting Submit; the caller holds mutex_.
  void FailLocked(const Status& status);
  // After each sink call, what the pipeline reads without calling into the sink.
  void Publish();

  Sink& sink_;
  const size_t max_queued_;

  mutable std::mutex mutex_;
  std::condition_variable wake_worker_;
  std::condition_variable wake_pipeline_;
  std::deque<std::shared_ptr<const Batch>> queue_;
  uint64_t flushes_requested_ = 0;
  uint64_t flushes_done_ = 0;
  bool source_quiet_ = false;
  Status flush_status_;
  Status failure_;
  std::vector<uint64_t> acks_;
  SinkCounters counters_;
  bool stopping_ = false;

  std::atomic<size_t> queued_bytes_{0};
  std::atomic<size_t> sink_pending_bytes_{0};
  std::thread thread_;
};

}  // namespace tributary
