#include "agent/sink_worker.h"

#include <utility>

namespace tributary {

namespace {

// How often an idle sink is polled: its flush interval and delivery reports come due without
// new batches.
constexpr auto kIdlePoll = std::chrono::milliseconds(10);

}  // namespace

std::unique_ptr<Batch> BatchPool::Take() {
  std::lock_guard lock(mutex_);
  if (free_.empty()) return std::make_unique<Batch>();
  std::unique_ptr<Batch> batch = std::move(free_.back());
  free_.pop_back();
  return batch;
}

std::shared_ptr<const Batch> BatchPool::Share(std::unique_ptr<Batch> batch) {
  return {batch.release(), [this](Batch* shared) {
            std::unique_ptr<Batch> returned(shared);
            if (returned->arena.capacity() > max_kept_bytes_) return;
            returned->Clear();
            std::lock_guard lock(mutex_);
            free_.push_back(std::move(returned));
          }};
}

SinkWorker::SinkWorker(Sink& sink, size_t max_queued) : sink_(sink), max_queued_(max_queued) {}

SinkWorker::~SinkWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_worker_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status SinkWorker::Open() {
  RETURN_IF_ERROR(sink_.Open([this](uint64_t sequence) {
    std::lock_guard lock(mutex_);
    acks_.push_back(sequence);
  }));
  Publish();
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

Status SinkWorker::Submit(std::shared_ptr<const Batch> batch) {
  std::unique_lock lock(mutex_);
  wake_pipeline_.wait(lock, [&] { return queue_.size() < max_queued_ || !failure_.ok(); });
  if (!failure_.ok()) return failure_;
  queued_bytes_ += batch->ByteSize();
  queue_.push_back(std::move(batch));
  wake_worker_.notify_one();
  return Status::Ok();
}

Status SinkWorker::Flush() {
  std::unique_lock lock(mutex_);
  const uint64_t flush = ++flushes_requested_;
  wake_worker_.notify_one();
  wake_pipeline_.wait(lock, [&] { return flushes_done_ >= flush; });
  return flush_status_;
}

void SinkWorker::SourceQuiet() {
  std::lock_guard lock(mutex_);
  source_quiet_ = true;
  wake_worker_.notify_one();
}

Status SinkWorker::status() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

void SinkWorker::Reset() {
  std::lock_guard lock(mutex_);
  failure_ = Status::Ok();
}

void SinkWorker::TakeAcks(std::vector<uint64_t>& acks) {
  std::lock_guard lock(mutex_);
  acks.insert(acks.end(), acks_.begin(), acks_.end());
  acks_.clear();
}

SinkCounters SinkWorker::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void SinkWorker::Loop() {
  auto next_poll = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_worker_.wait_for(lock, kIdlePoll, [&] {
      return stopping_ || !queue_.empty() || flushes_requested_ != flushes_done_ || source_quiet_;
    });
    if (stopping_) break;
    if (!queue_.empty()) {
      std::shared_ptr<const Batch> batch = std::move(queue_.front());
      queue_.pop_front();
      wake_pipeline_.notify_all();
      const bool failed = !failure_.ok();
      lock.unlock();
      Status status = failed ? Status::Ok() : sink_.Submit(*batch);
      const size_t bytes = batch->ByteSize();
      batch.reset();
      Publish();
      queued_bytes_ -= bytes;
      lock.lock();
      if (!status.ok()) FailLocked(status);
      // A sink that never runs dry is still polled on time: a file sink flushes and acks from
      // Poll on its interval.
      if (std::chrono::steady_clock::now() < next_poll) continue;
    }
    // A flush covers everything queued before it.
    const uint64_t flush = flushes_requested_;
    const bool flushing = flush != flushes_done_ && queue_.empty();
    // The sink hears of a quiet source once it has taken what was queued before.
    const bool quiet = !flushing && source_quiet_ && queue_.empty();
    if (flushing || quiet) source_quiet_ = false;
    if (!flushing && !failure_.ok()) continue;
    lock.unlock();
    Status status = flushing ? sink_.Flush() : quiet ? sink_.SourceQuiet() : sink_.Poll();
    next_poll = std::chrono::steady_clock::now() + kIdlePoll;
    Publish();
    lock.lock();
    if (flushing) {
      flush_status_ = failure_.ok() ? status : failure_;
      flushes_done_ = flush;
      wake_pipeline_.notify_all();
    }
    if (!status.ok()) FailLocked(status);
  }
}

void SinkWorker::FailLocked(const Status& status) {
  if (failure_.ok()) failure_ = status;
  wake_pipeline_.notify_all();
}

void SinkWorker::Publish() {
  sink_pending_bytes_ = sink_.PendingBytes();
  SinkCounters counters = sink_.counters();
  std::lock_guard lock(mutex_);
  counters_ = counters;
}

}  // namespace tributary
