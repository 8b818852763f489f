#include "agent/pipeline.h"

#include <algorithm>
#include <random>
#include <thread>
#include <utility>

#include "agent/core/logging.h"

namespace tributary {

namespace {

// How long the source may wait for changes. Acks are collected between polls, so while batches
// wait for theirs the loop comes back soon: an idle source would otherwise hold a durable
// batch's checkpoint back for a whole poll.
constexpr std::chrono::milliseconds kIdlePollTimeout{100};
constexpr std::chrono::milliseconds kAckPollTimeout{10};
// Once sinks that flush when the source is quiet (Sink::AcksWhenQuiet) heard that it is, their
// acks are collected within a millisecond rather than a poll's 10.
constexpr std::chrono::milliseconds kQuietAckPollTimeout{1};

// Sleeps in short steps so that a stop request is honoured quickly. Waiting out a backoff is
// progress too: the watchdog must not restart an agent that is retrying as designed.
void SleepUnlessStopped(std::chrono::milliseconds total, const std::atomic<bool>& stop,
                        PipelineMetrics* metrics) {
  auto deadline = std::chrono::steady_clock::now() + total;
  while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
    if (metrics != nullptr) metrics->Beat();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Pipeline::Pipeline(std::string name, std::unique_ptr<Source> source,
                   std::vector<std::unique_ptr<Sink>> sinks,
                   std::vector<std::unique_ptr<Transform>> transforms, CheckpointStore checkpoints,
                   PipelineOptions options)
    : name_(std::move(name)),
      source_(std::move(source)),
      sinks_(std::move(sinks)),
      transforms_(std::move(transforms)),
      checkpoints_(std::move(checkpoints)),
      options_(options),
      pool_(2 * options.batch_bytes) {}

Status Pipeline::Run(const std::atomic<bool>& stop) {
  acks_when_quiet_ = std::all_of(sinks_.begin(), sinks_.end(),
                                 [](const auto& sink) { return sink->AcksWhenQuiet(); });
  for (size_t i = 0; i < sinks_.size(); ++i) {
    workers_.push_back(std::make_unique<SinkWorker>(*sinks_[i], options_.max_queued_batches));
    Status opened = Checked(i, workers_.back()->Open());
    if (!opened.ok()) {
      workers_.clear();
      for (size_t j = 0; j < i; ++j) sinks_[j]->Close();
      return opened;
    }
  }
  std::mt19937 random(std::random_device{}());
  auto backoff = std::chrono::milliseconds(500);
  const auto max_backoff = std::chrono::milliseconds(30000);
  Status status;
  while (true) {
    auto started = std::chrono::steady_clock::now();
    status = RunOnce(stop);
    // A source that streamed for a while before failing starts its backoff afresh.
    if (std::chrono::steady_clock::now() - started > max_backoff) {
      backoff = std::chrono::milliseconds(500);
    }
    // A transient failure while stopping is no failure: RunOnce drained and checkpointed.
    if (status.retriable() && stop.load()) status = Status::Ok();
    if (status.ok() || !status.retriable()) break;
    if (metrics_ != nullptr) {
      metrics_->OnRestart();
      metrics_->SetState(PipelineState::kReconnecting, status.message());
    }
    // Jitter spreads reconnects of many agents after a server restart.
    auto delay = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(backoff.count() / 2, backoff.count())(random));
    spdlog::warn("pipeline: Source failed, reconnecting source={} delay_ms={} error=\"{}\"", name_,
                 delay.count(), status.message());
    SleepUnlessStopped(delay, stop, metrics_);
    backoff = std::min(backoff * 2, max_backoff);
    if (stop.load()) {
      status = Status::Ok();
      break;
    }
  }
  workers_.clear();
  for (auto& sink : sinks_) sink->Close();
  if (metrics_ != nullptr) {
    metrics_->SetState(status.ok() ? PipelineState::kStopped : PipelineState::kFailed,
                       status.ok() ? "" : status.message());
  }
  return status;
}

Status Pipeline::RunOnce(const std::atomic<bool>& stop) {
  // Batches a failed run left unacked are replayed from the checkpoint under new sequences; a
  // sink that dropped them (an aborted Kafka transaction) never acks them, so they must not
  // hold the watermark back.
  tracker_ = AckTracker();
  for (auto& worker : workers_) worker->Reset();
  for (auto& transform : transforms_) transform->Restart();
  ASSIGN_OR_RETURN(std::optional<std::string> checkpoint, checkpoints_.Load());
  if (!checkpoint) RETURN_IF_ERROR(checkpoints_.SaveLineage());
  spdlog::info("pipeline: Opening source source={} checkpoint={}", name_,
               checkpoint ? *checkpoint : "none");
  RETURN_IF_ERROR(source_->Open(checkpoint));
  source_open_ = true;
  if (checkpoint && !source_->PositionsContinueCheckpoint()) {
    checkpoints_.StartNewLineage();
    spdlog::warn(
        "pipeline: The source's positions do not continue its checkpoint's; they start a new "
        "lineage, and sinks take what they may already hold again (duplicates, no gaps) "
        "source={} lineage={}",
        name_, checkpoints_.lineage());
  }
  // Measured at once: right after a reconnect is when the slot lag says most.
  next_sample_ = {};
  if (metrics_ != nullptr) metrics_->SetState(PipelineState::kStreaming);
  Status status = Pump(stop);
  // Stopping or failing, what the sinks have taken is made durable and checkpointed, and the
  // source is told, before it goes away.
  Status drained = Drain();
  RecordMeasurements();
  source_->Close();
  source_open_ = false;
  // A sink that cannot drain outranks the source's failure: it is what would lose data.
  if (!drained.ok()) return drained;
  return status;
}

Status Pipeline::Pump(const std::atomic<bool>& stop) {
  std::unique_ptr<Batch> batch;
  while (!stop.load()) {
    bool over_limit = false;
    for (size_t i = 0; i < workers_.size(); ++i) {
      const size_t pending = workers_[i]->PendingBytes();
      over_limit = over_limit || pending > options_.max_pending_bytes;
      if (metrics_ != nullptr) metrics_->SetPendingBytes(i, pending);
    }
    RecordMeasurements();
    if (metrics_ != nullptr) metrics_->Beat();
    if (over_limit) {
      // Backpressure: nothing more is read until the sinks catch up.
      for (size_t i = 0; i < workers_.size(); ++i) {
        RETURN_IF_ERROR(Checked(i, workers_[i]->Flush()));
      }
      RETURN_IF_ERROR(AdvanceWatermark());
      continue;
    }
    if (batch == nullptr) batch = pool_.Take();
    const auto timeout = tracker_.InFlight() == 0          ? kIdlePollTimeout
                         : quiet_told_ && acks_when_quiet_ ? kQuietAckPollTimeout
                                                           : kAckPollTimeout;
    RETURN_IF_ERROR(source_->Poll(*batch, options_.batch_bytes, timeout));
    // Read before the batch is handed over.
    const bool came_empty = batch->empty();
    const bool ends_burst = batch->ends_burst;
    if (!came_empty) {
      batch->sequence = next_sequence_++;
      batch->lineage = checkpoints_.lineage();
      for (auto& transform : transforms_) RETURN_IF_ERROR(transform->Apply(*batch));
      if (metrics_ != nullptr) metrics_->CountBatch(*batch);
      tracker_.Register(batch->sequence, batch->commit_position, static_cast<int>(workers_.size()));
      std::shared_ptr<const Batch> shared = pool_.Share(std::exchange(batch, nullptr));
      for (size_t i = 0; i < workers_.size(); ++i) {
        RETURN_IF_ERROR(Checked(i, workers_[i]->Submit(shared)));
      }
      quiet_told_ = false;
    }
    // The end of a burst, as the source saw it or as the empty poll shows: its last batches
    // need not wait out a sink's flush interval.
    if (!quiet_told_ && tracker_.InFlight() > 0 && (ends_burst || came_empty)) {
      for (auto& worker : workers_) worker->SourceQuiet();
      quiet_told_ = true;
    }
    RETURN_IF_ERROR(PollSinks());
  }
  return Status::Ok();
}

Status Pipeline::PollSinks() {
  for (size_t i = 0; i < workers_.size(); ++i) RETURN_IF_ERROR(Checked(i, workers_[i]->status()));
  return AdvanceWatermark();
}

Status Pipeline::AdvanceWatermark() {
  acks_.clear();
  for (auto& worker : workers_) worker->TakeAcks(acks_);
  for (uint64_t sequence : acks_) tracker_.Ack(sequence);
  std::optional<std::string> position = tracker_.TakeAdvance();
  if (!position) return Status::Ok();
  RETURN_IF_ERROR(checkpoints_.Save(*position));
  if (metrics_ != nullptr) metrics_->OnCheckpoint(*position);
  if (source_open_) RETURN_IF_ERROR(source_->Acknowledge(*position));
  return Status::Ok();
}

Status Pipeline::Drain() {
  Status first;
  for (size_t i = 0; i < workers_.size(); ++i) {
    Status flushed = Checked(i, workers_[i]->Flush());
    if (first.ok()) first = flushed;
  }
  // Acks are only ever for durable batches: what the sinks acked before failing is saved.
  Status advanced = AdvanceWatermark();
  return first.ok() ? advanced : first;
}

void Pipeline::RecordMeasurements() {
  if (metrics_ == nullptr) return;
  for (size_t i = 0; i < workers_.size(); ++i) {
    metrics_->SetSinkCounters(i, workers_[i]->counters());
  }
  const auto now = std::chrono::steady_clock::now();
  if (!source_open_ || now < next_sample_) return;
  metrics_->SetSourceGauges(source_->Sample());
  next_sample_ = now + options_.sample_interval;
}

Status Pipeline::Checked(size_t sink, Status status) {
  if (metrics_ == nullptr) return status;
  if (status.ok()) {
    metrics_->OnSinkHealthy(sink);
  } else {
    metrics_->OnSinkError(sink);
  }
  return status;
}

}  // namespace tributary
