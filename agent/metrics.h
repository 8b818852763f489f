#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/core/event.h"
#include "agent/core/sink.h"
#include "agent/core/source.h"

namespace tributary {

class Watchdog;

enum class PipelineState { kStarting, kStreaming, kReconnecting, kStopped, kFailed };

std::string_view PipelineStateName(PipelineState state);

// What /status and `tributary status` show about one source.
struct SourceSnapshot {
  std::string name;
  std::string type;
  PipelineState state = PipelineState::kStarting;
  std::optional<std::string> checkpoint;
  std::optional<double> lag_seconds;             // commit time → delivered, at the last delivery
  std::optional<double> checkpoint_age_seconds;  // since the last checkpoint was saved
  std::optional<uint64_t> slot_lag_bytes;        // PostgreSQL, at the last sample
  uint64_t events = 0;
  uint64_t restarts = 0;
  std::vector<std::string> unhealthy_sinks;
  std::string last_error;
};

class Metrics;

// One pipeline's instruments. Written from the pipeline's thread, read from the HTTP thread.
// Counting is per batch and per run of same-table, same-op events, never a label lookup per
// event. Bytes are counted per batch, not per table: summing each event's value lengths cost
// about 7% CPU per row on the insert benchmark.
class PipelineMetrics {
 public:
  PipelineMetrics(Metrics& metrics, std::string source, std::string type,
                  std::vector<std::string> sinks, size_t max_pending_bytes);

  void SetState(PipelineState state, std::string error = "");
  PipelineState state() const { return state_.load(); }

  // A batch on its way to the sinks (after transforms).
  void CountBatch(const Batch& batch);
  // A checkpoint was saved at `position`: every batch up to it is delivered.
  void OnCheckpoint(const std::string& position);
  void OnSinkError(size_t sink);
  void OnSinkHealthy(size_t sink);
  void SetPendingBytes(size_t sink, size_t bytes);
  void OnRestart();
  // The source's latest measurements (Source::Sample).
  void SetSourceGauges(const SourceGauges& gauges);
  // A sink's cumulative counters (Sink::counters).
  void SetSinkCounters(size_t sink, const SinkCounters& counters);

  // The pipeline's loop made progress; feeds the systemd watchdog.
  void Beat();
  void AttachWatchdog(Watchdog* watchdog, size_t slot);

  SourceSnapshot Snapshot() const;
  // Gauges derived from time (checkpoint age), refreshed just before a scrape.
  void RefreshDerived();

 private:
  struct TableCounters {
    prometheus::Counter* events;
    prometheus::Counter* snapshot_rows;  // for op 'r' only
  };
  const TableCounters& CountersFor(const TableSchema& table, Op op);
  void SetSchemaVersion(const TableSchema& table);

  std::string source_;
  std::string type_;
  std::vector<std::string> sinks_;
  double max_pending_bytes_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  Metrics& metrics_;
  std::unordered_map<std::string, TableCounters> events_by_table_;       // "schema.table" + op
  std::unordered_map<std::string, prometheus::Gauge*> schema_versions_;  // "schema.table"
  prometheus::Counter* bytes_;
  prometheus::Counter* batches_;
  prometheus::Counter* checkpoints_;
  prometheus::Counter* restarts_;
  prometheus::Gauge* up_;
  prometheus::Gauge* lag_;
  prometheus::Gauge* checkpoint_age_;
  prometheus::Gauge* queue_fill_;
  std::vector<prometheus::Gauge*> pending_;
  std::vector<prometheus::Counter*> sink_errors_;
  std::vector<prometheus::Counter*> dead_letters_;
  std::vector<prometheus::Counter*> retries_;
  std::vector<SinkCounters> sink_counters_;  // as last seen, to turn totals into increments
  prometheus::Gauge* slot_lag_ = nullptr;    // only while the source measures it
  prometheus::Gauge* snapshot_tables_remaining_ = nullptr;
  std::vector<size_t> pending_bytes_;
  // Commit times of submitted batches that end a transaction, oldest first, so that the lag
  // can be measured when the checkpoint passes them.
  std::deque<std::pair<std::string, int64_t>> commit_times_;

  std::atomic<PipelineState> state_{PipelineState::kStarting};
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> restart_count_{0};
  std::atomic<int64_t> last_checkpoint_ns_{0};  // steady clock; 0 before the first one
  std::unique_ptr<std::atomic<bool>[]> sink_healthy_;

  mutable std::mutex mutex_;  // guards the fields below
  std::optional<std::string> checkpoint_;
  std::optional<double> lag_seconds_;
  std::optional<uint64_t> slot_lag_bytes_;
  std::string last_error_;

  Watchdog* watchdog_ = nullptr;
  size_t watchdog_slot_ = 0;
};

// The agent's metrics registry, the source of /metrics, /readyz and /status.
class Metrics {
 public:
  Metrics();

  // Called before the pipelines start; the returned object lives as long as this one.
  PipelineMetrics& AddPipeline(const std::string& source, const std::string& type,
                               const std::vector<std::string>& sinks, size_t max_pending_bytes);

  // Prometheus text exposition format 0.0.4.
  std::string Serialize();
  std::vector<SourceSnapshot> Snapshot() const;
  // Ready when every source is streaming and every sink healthy; otherwise says why.
  bool Ready(std::string& why) const;

 private:
  friend class PipelineMetrics;

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Family<prometheus::Counter>& bytes_;
  prometheus::Family<prometheus::Counter>& batches_;
  prometheus::Family<prometheus::Counter>& checkpoints_;
  prometheus::Family<prometheus::Counter>& restarts_;
  prometheus::Family<prometheus::Counter>& sink_errors_;
  prometheus::Family<prometheus::Counter>& dead_letters_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& snapshot_rows_;
  prometheus::Family<prometheus::Gauge>& slot_lag_;
  prometheus::Family<prometheus::Gauge>& snapshot_tables_remaining_;
  prometheus::Family<prometheus::Gauge>& up_;
  prometheus::Family<prometheus::Gauge>& lag_;
  prometheus::Family<prometheus::Gauge>& checkpoint_age_;
  prometheus::Family<prometheus::Gauge>& queue_fill_;
  prometheus::Family<prometheus::Gauge>& pending_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Gauge>& schema_version_;
  std::vector<std::unique_ptr<PipelineMetrics>> pipelines_;
};

}  // namespace tributary
