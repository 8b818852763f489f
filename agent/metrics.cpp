#include "agent/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>

#include "agent/core/clock.h"
#include "agent/systemd_notify.h"

namespace tributary {

std::string_view PipelineStateName(PipelineState state) {
  switch (state) {
    case PipelineState::kStarting:
      return "starting";
    case PipelineState::kStreaming:
      return "streaming";
    case PipelineState::kReconnecting:
      return "reconnecting";
    case PipelineState::kStopped:
      return "stopped";
    case PipelineState::kFailed:
      return "failed";
  }
  return "unknown";
}

PipelineMetrics::PipelineMetrics(Metrics& metrics, std::string source, std::string type,
                                 std::vector<std::string> sinks, size_t max_pending_bytes)
    : source_(std::move(source)),
      type_(std::move(type)),
      sinks_(std::move(sinks)),
      max_pending_bytes_(static_cast<double>(std::max<size_t>(max_pending_bytes, 1))),
      metrics_(metrics),
      bytes_(&metrics.bytes_.Add({{"source", source_}})),
      batches_(&metrics.batches_.Add({{"source", source_}})),
      checkpoints_(&metrics.checkpoints_.Add({{"source", source_}})),
      restarts_(&metrics.restarts_.Add({{"source", source_}})),
      up_(&metrics.up_.Add({{"source", source_}})),
      lag_(&metrics.lag_.Add({{"source", source_}})),
      checkpoint_age_(&metrics.checkpoint_age_.Add({{"source", source_}})),
      queue_fill_(&metrics.queue_fill_.Add({{"source", source_}})),
      sink_counters_(sinks_.size()),
      pending_bytes_(sinks_.size(), 0),
      sink_healthy_(std::make_unique<std::atomic<bool>[]>(sinks_.size())) {
  for (size_t i = 0; i < sinks_.size(); ++i) {
    pending_.push_back(&metrics.pending_.Add({{"source", source_}, {"sink", sinks_[i]}}));
    sink_errors_.push_back(&metrics.sink_errors_.Add({{"source", source_}, {"sink", sinks_[i]}}));
    dead_letters_.push_back(&metrics.dead_letters_.Add({{"source", source_}, {"sink", sinks_[i]}}));
    retries_.push_back(&metrics.retries_.Add({{"source", source_}, {"sink", sinks_[i]}}));
    sink_healthy_[i].store(true);
  }
}

void PipelineMetrics::SetState(PipelineState state, std::string error) {
  state_.store(state);
  up_->Set(state == PipelineState::kStreaming ? 1 : 0);
  if (!error.empty()) {
    std::lock_guard lock(mutex_);
    last_error_ = std::move(error);
  }
}

const PipelineMetrics::TableCounters& PipelineMetrics::CountersFor(const TableSchema& table,
                                                                   Op op) {
  std::string key = table.schema;
  key += '.';
  key += table.table;
  key += static_cast<char>(op);
  auto it = events_by_table_.find(key);
  if (it != events_by_table_.end()) return it->second;
  // MySQL tables have no schema: the label is then the database's table name.
  std::string label =
      table.schema.empty() ? table.database + "." + table.table : table.schema + "." + table.table;
  TableCounters counters{};
  counters.events = &metrics_.events_.Add(
      {{"source", source_}, {"table", label}, {"op", std::string(1, static_cast<char>(op))}});
  // Only snapshots emit reads ('r'), so the table's snapshot rows are its read events.
  if (op == Op::kRead) {
    counters.snapshot_rows = &metrics_.snapshot_rows_.Add({{"source", source_}, {"table", label}});
  }
  return events_by_table_.emplace(std::move(key), counters).first->second;
}

void PipelineMetrics::SetSchemaVersion(const TableSchema& table) {
  std::string label =
      table.schema.empty() ? table.database + "." + table.table : table.schema + "." + table.table;
  auto it = schema_versions_.find(label);
  if (it == schema_versions_.end()) {
    prometheus::Gauge& gauge =
        metrics_.schema_version_.Add({{"source", source_}, {"table", label}});
    it = schema_versions_.emplace(std::move(label), &gauge).first;
  }
  it->second->Set(table.version);
}

void PipelineMetrics::CountBatch(const Batch& batch) {
  batches_->Increment();
  bytes_->Increment(static_cast<double>(batch.arena.size()));
  const std::vector<Event>& events = batch.events;
  size_t i = 0;
  size_t changes = 0;
  while (i < events.size()) {
    const TableSchema* table = events[i].table;
    const Op op = events[i].op;
    if (op == Op::kSchemaChange) {
      // Not a change event: it shows as the table's version instead.
      if (table != nullptr) SetSchemaVersion(*table);
      ++changes;
      ++i;
      continue;
    }
    if (op == Op::kTransactionBegin || op == Op::kTransactionEnd || op == Op::kMessage) {
      // Transaction metadata and logical decoding messages: not changes either.
      ++changes;
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < events.size() && events[j].table == table && events[j].op == op) ++j;
    if (table != nullptr) {
      const TableCounters& counters = CountersFor(*table, op);
      counters.events->Increment(static_cast<double>(j - i));
      if (counters.snapshot_rows != nullptr) {
        counters.snapshot_rows->Increment(static_cast<double>(j - i));
      }
    }
    i = j;
  }
  events_.fetch_add(events.size() - changes, std::memory_order_relaxed);
  // Events are in commit order, so the last one carries the batch's latest commit time.
  if (batch.commit_position && !events.empty() && events.back().meta.commit_ts_us > 0) {
    commit_times_.emplace_back(*batch.commit_position, events.back().meta.commit_ts_us);
  }
}

void PipelineMetrics::OnCheckpoint(const std::string& position) {
  checkpoints_->Increment();
  last_checkpoint_ns_.store(SteadyNanosNow());
  // Positions sort in change order (DESIGN.md §5), so every entry up to `position` is delivered.
  int64_t delivered_ts_us = 0;
  while (!commit_times_.empty() && commit_times_.front().first <= position) {
    delivered_ts_us = commit_times_.front().second;
    commit_times_.pop_front();
  }
  std::lock_guard lock(mutex_);
  checkpoint_ = position;
  if (delivered_ts_us > 0) {
    const double lag =
        static_cast<double>(std::max<int64_t>(UnixMicrosNow() - delivered_ts_us, 0)) / 1e6;
    lag_->Set(lag);
    lag_seconds_ = lag;
  }
}

void PipelineMetrics::OnSinkError(size_t sink) {
  sink_errors_.at(sink)->Increment();
  sink_healthy_[sink].store(false);
}

void PipelineMetrics::OnSinkHealthy(size_t sink) { sink_healthy_[sink].store(true); }

void PipelineMetrics::SetPendingBytes(size_t sink, size_t bytes) {
  if (pending_bytes_[sink] == bytes) return;
  pending_bytes_[sink] = bytes;
  pending_[sink]->Set(static_cast<double>(bytes));
  const size_t fullest = *std::max_element(pending_bytes_.begin(), pending_bytes_.end());
  queue_fill_->Set(static_cast<double>(fullest) / max_pending_bytes_);
}

void PipelineMetrics::OnRestart() {
  restarts_->Increment();
  restart_count_.fetch_add(1);
  // Whatever was in flight is replayed from the checkpoint, so its commit times are stale.
  commit_times_.clear();
}

void PipelineMetrics::SetSourceGauges(const SourceGauges& gauges) {
  if (gauges.slot_lag_bytes) {
    if (slot_lag_ == nullptr) slot_lag_ = &metrics_.slot_lag_.Add({{"source", source_}});
    slot_lag_->Set(static_cast<double>(*gauges.slot_lag_bytes));
  } else if (slot_lag_ != nullptr) {
    // Not measured now: no series rather than a stale value.
    metrics_.slot_lag_.Remove(slot_lag_);
    slot_lag_ = nullptr;
  }
  if (gauges.snapshot_tables_remaining) {
    if (snapshot_tables_remaining_ == nullptr) {
      snapshot_tables_remaining_ = &metrics_.snapshot_tables_remaining_.Add({{"source", source_}});
    }
    snapshot_tables_remaining_->Set(static_cast<double>(*gauges.snapshot_tables_remaining));
  }
  std::lock_guard lock(mutex_);
  slot_lag_bytes_ = gauges.slot_lag_bytes;
}

void PipelineMetrics::SetSinkCounters(size_t sink, const SinkCounters& counters) {
  SinkCounters& seen = sink_counters_.at(sink);
  // Totals only grow while the sink lives; a smaller one is a fresh count.
  const auto increment = [](uint64_t now, uint64_t before) {
    return static_cast<double>(now >= before ? now - before : now);
  };
  if (counters.dead_letters != seen.dead_letters) {
    dead_letters_[sink]->Increment(increment(counters.dead_letters, seen.dead_letters));
  }
  if (counters.retries != seen.retries) {
    retries_[sink]->Increment(increment(counters.retries, seen.retries));
  }
  seen = counters;
}

void PipelineMetrics::Beat() {
  if (watchdog_ != nullptr) watchdog_->Beat(watchdog_slot_);
}

void PipelineMetrics::AttachWatchdog(Watchdog* watchdog, size_t slot) {
  watchdog_ = watchdog;
  watchdog_slot_ = slot;
}

SourceSnapshot PipelineMetrics::Snapshot() const {
  SourceSnapshot snapshot;
  snapshot.name = source_;
  snapshot.type = type_;
  snapshot.state = state_.load();
  snapshot.events = events_.load(std::memory_order_relaxed);
  snapshot.restarts = restart_count_.load();
  const int64_t last = last_checkpoint_ns_.load();
  if (last != 0)
    snapshot.checkpoint_age_seconds = static_cast<double>(SteadyNanosNow() - last) / 1e9;
  for (size_t i = 0; i < sinks_.size(); ++i) {
    if (!sink_healthy_[i].load()) snapshot.unhealthy_sinks.push_back(sinks_[i]);
  }
  std::lock_guard lock(mutex_);
  snapshot.checkpoint = checkpoint_;
  snapshot.lag_seconds = lag_seconds_;
  snapshot.slot_lag_bytes = slot_lag_bytes_;
  snapshot.last_error = last_error_;
  return snapshot;
}

void PipelineMetrics::RefreshDerived() {
  const int64_t last = last_checkpoint_ns_.load();
  // Before the first checkpoint the age counts from the pipeline's start, so that a pipeline
  // that never checkpoints still trips an age alert.
  const int64_t since =
      last != 0 ? last
                : std::chrono::duration_cast<std::chrono::nanoseconds>(started_.time_since_epoch())
                      .count();
  checkpoint_age_->Set(static_cast<double>(SteadyNanosNow() - since) / 1e9);
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      events_(prometheus::BuildCounter()
                  .Name("tributary_events_total")
                  .Help("Change events read from a source, by table and Debezium op")
                  .Register(*registry_)),
      bytes_(prometheus::BuildCounter()
                 .Name("tributary_source_bytes_total")
                 .Help("Bytes of decoded event text (values and positions) read from a source")
                 .Register(*registry_)),
      batches_(prometheus::BuildCounter()
                   .Name("tributary_batches_total")
                   .Help("Batches handed to the sinks")
                   .Register(*registry_)),
      checkpoints_(prometheus::BuildCounter()
                       .Name("tributary_checkpoints_total")
                       .Help("Checkpoints saved after every sink made the data durable")
                       .Register(*registry_)),
      restarts_(prometheus::BuildCounter()
                    .Name("tributary_pipeline_restarts_total")
                    .Help("Times a pipeline reopened its source after a retriable failure")
                    .Register(*registry_)),
      sink_errors_(prometheus::BuildCounter()
                       .Name("tributary_sink_delivery_errors_total")
                       .Help("Sink calls that failed; each one restarts the pipeline")
                       .Register(*registry_)),
      dead_letters_(prometheus::BuildCounter()
                        .Name("tributary_sink_dead_letters_total")
                        .Help("Records the broker rejected for good (too large, invalid), "
                              "written to the sink's dead-letter topic")
                        .Register(*registry_)),
      retries_(prometheus::BuildCounter()
                   .Name("tributary_sink_retries_total")
                   .Help("Records the Kafka client sent again after a retriable produce "
                         "error (librdkafka statistics: records transmitted minus records "
                         "produced, per partition, read every 5 s)")
                   .Register(*registry_)),
      snapshot_rows_(prometheus::BuildCounter()
                         .Name("tributary_snapshot_rows_total")
                         .Help("Snapshot rows (op r) read from a table since the agent started")
                         .Register(*registry_)),
      slot_lag_(prometheus::BuildGauge()
                    .Name("tributary_source_slot_lag_bytes")
                    .Help("PostgreSQL: WAL bytes from the slot's confirmed_flush_lsn to the "
                          "server's current LSN, sampled every 5 s; absent after a failed sample")
                    .Register(*registry_)),
      snapshot_tables_remaining_(prometheus::BuildGauge()
                                     .Name("tributary_snapshot_tables_remaining")
                                     .Help("Tables whose snapshot has not finished, sampled "
                                           "every 5 s")
                                     .Register(*registry_)),
      up_(prometheus::BuildGauge()
              .Name("tributary_source_up")
              .Help("1 while the source is open and streaming, else 0")
              .Register(*registry_)),
      lag_(prometheus::BuildGauge()
               .Name("tributary_source_lag_seconds")
               .Help("Source commit time to checkpointed delivery, at the last delivery")
               .Register(*registry_)),
      checkpoint_age_(prometheus::BuildGauge()
                          .Name("tributary_checkpoint_age_seconds")
                          .Help("Seconds since the last checkpoint (since start before the first)")
                          .Register(*registry_)),
      queue_fill_(prometheus::BuildGauge()
                      .Name("tributary_queue_fill_ratio")
                      .Help("Undelivered bytes of the fullest sink over the backpressure limit")
                      .Register(*registry_)),
      pending_(prometheus::BuildGauge()
                   .Name("tributary_sink_pending_bytes")
                   .Help("Bytes submitted to a sink and not yet durable")
                   .Register(*registry_)),
      build_info_(prometheus::BuildGauge()
                      .Name("tributary_build_info")
                      .Help("Always 1; the version is a label")
                      .Register(*registry_)),
      schema_version_(prometheus::BuildGauge()
                          .Name("tributary_schema_version")
                          .Help("The latest schema version announced for a table")
                          .Register(*registry_)) {
  build_info_.Add({{"version", TRIBUTARY_VERSION}}).Set(1);
}

PipelineMetrics& Metrics::AddPipeline(const std::string& source, const std::string& type,
                                      const std::vector<std::string>& sinks,
                                      size_t max_pending_bytes) {
  pipelines_.push_back(
      std::make_unique<PipelineMetrics>(*this, source, type, sinks, max_pending_bytes));
  return *pipelines_.back();
}

std::string Metrics::Serialize() {
  for (auto& pipeline : pipelines_) pipeline->RefreshDerived();
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

std::vector<SourceSnapshot> Metrics::Snapshot() const {
  std::vector<SourceSnapshot> out;
  out.reserve(pipelines_.size());
  for (const auto& pipeline : pipelines_) out.push_back(pipeline->Snapshot());
  return out;
}

bool Metrics::Ready(std::string& why) const {
  why.clear();
  for (const auto& pipeline : pipelines_) {
    SourceSnapshot s = pipeline->Snapshot();
    if (s.state != PipelineState::kStreaming) {
      why += "source " + s.name + " is " + std::string(PipelineStateName(s.state)) + "\n";
    }
    for (const auto& sink : s.unhealthy_sinks) {
      why += "sink " + sink + " of source " + s.name + " is failing\n";
    }
  }
  return why.empty();
}

}  // namespace tributary
