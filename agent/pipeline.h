#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/ack_tracker.h"
#include "agent/checkpoint_store.h"
#include "agent/core/sink.h"
#include "agent/core/source.h"
#include "agent/core/status.h"
#include "agent/core/transform.h"
#include "agent/metrics.h"
#include "agent/sink_worker.h"

namespace tributary {

struct PipelineOptions {
  size_t batch_bytes = 1 << 20;         // a Poll returns about this much
  size_t max_pending_bytes = 64 << 20;  // per sink: past this, stop reading and drain
  size_t max_queued_batches = 2;        // per sink worker: batches waiting for the sink
  // How often the source's gauges (Source::Sample) are measured for the metrics.
  std::chrono::milliseconds sample_interval{5000};
};

// One source feeding its sinks, with the watermark loop of DESIGN.md §1: a source position is
// checkpointed only once every sink has made all batches up to it durable, and the source is
// told only after the checkpoint is saved. The source and transforms run on the caller's
// thread, each sink on its own (SinkWorker). Retriable failures reopen the source from the
// checkpoint with capped, jittered backoff.
class Pipeline {
 public:
  Pipeline(std::string name, std::unique_ptr<Source> source,
           std::vector<std::unique_ptr<Sink>> sinks,
           std::vector<std::unique_ptr<Transform>> transforms, CheckpointStore checkpoints,
           PipelineOptions options = {});

  // Runs until `stop` is set (then drains, checkpoints and returns Ok) or a failure that is
  // not retriable.
  Status Run(const std::atomic<bool>& stop);

  // Optional instruments (metrics, health, watchdog); must outlive the pipeline.
  void SetMetrics(PipelineMetrics* metrics) { metrics_ = metrics; }

 private:
  Status RunOnce(const std::atomic<bool>& stop);
  Status Pump(const std::atomic<bool>& stop);
  Status PollSinks();
  // Collects the sinks' acks and, when the acked prefix moved, checkpoints and tells the source.
  Status AdvanceWatermark();
  // Flushes every sink, even past one that fails, so no batch is left queued for the next run,
  // and checkpoints what they acked.
  Status Drain();
  // Records a sink call's outcome in the metrics and passes it on.
  Status Checked(size_t sink, Status status);
  // Passes the sinks' counters and, when due, the source's gauges to the metrics.
  void RecordMeasurements();

  std::string name_;
  std::unique_ptr<Source> source_;
  std::vector<std::unique_ptr<Sink>> sinks_;
  std::vector<std::unique_ptr<Transform>> transforms_;
  CheckpointStore checkpoints_;
  PipelineOptions options_;
  // Declared before the workers: it must outlive the batches they hold.
  BatchPool pool_;
  // One per sink, while Run runs: each sink encodes and writes on its own thread.
  std::vector<std::unique_ptr<SinkWorker>> workers_;
  std::vector<uint64_t> acks_;
  AckTracker tracker_;
  uint64_t next_sequence_ = 1;
  // The sinks were told the source is quiet, and no batch has come since.
  bool quiet_told_ = false;
  // Every sink acks at once when told so (Sink::AcksWhenQuiet).
  bool acks_when_quiet_ = false;
  bool source_open_ = false;
  std::chrono::steady_clock::time_point next_sample_{};
  PipelineMetrics* metrics_ = nullptr;
};

}  // namespace tributary
