#define BOOST_TEST_MODULE pipeline_test
#include "agent/pipeline.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/sink_worker.h"

namespace tributary {
namespace {

// The pipeline's own machinery (sink threads, failure handling, checkpoints) over stand-ins
// for a source and a sink; real sources and sinks are covered by the integration tests.

std::string PositionOf(int n) { return fmt::format("{:06}", n); }

// Emits one committed batch per Poll, positions 1..`last`, resuming after its checkpoint.
class CountingSource : public Source {
 public:
  explicit CountingSource(int last) : last_(last) {}

  Status Open(const std::optional<std::string>& checkpoint) override {
    opened_from.push_back(checkpoint.value_or("none"));
    next_ = checkpoint ? std::stoi(*checkpoint) + 1 : 1;
    return Status::Ok();
  }
  Status Poll(Batch& batch, size_t, std::chrono::milliseconds timeout) override {
    if (next_ > last_) {
      std::this_thread::sleep_for(timeout);
      return Status::Ok();
    }
    batch.AddValue(ValueKind::kString, std::string(100, 'x'));
    batch.commit_position = PositionOf(next_++);
    return Status::Ok();
  }
  Status Acknowledge(const std::string& position) override {
    acknowledged = position;
    return Status::Ok();
  }
  void Close() override {}

  std::vector<std::string> opened_from;  // the pipeline's thread only
  std::string acknowledged;

 private:
  const int last_;
  int next_ = 1;
};

// Takes batches on the worker's thread, fails one position once, acks on Flush and on every
// other Poll, and stops the test once it holds `last`.
class RecordingSink : public Sink {
 public:
  RecordingSink(std::string fail_at, std::string last, std::atomic<bool>& stop)
      : fail_at_(std::move(fail_at)), last_(std::move(last)), stop_(stop) {}

  Status Open(AckCallback on_durable) override {
    on_durable_ = std::move(on_durable);
    return Status::Ok();
  }
  Status Submit(const Batch& batch) override {
    std::lock_guard lock(mutex_);
    threads.insert(std::this_thread::get_id());
    const std::string& position = *batch.commit_position;
    if (position == fail_at_) {
      fail_at_.clear();
      return Status::Retriable("injected failure");
    }
    taken.push_back(position);
    lineages.insert(std::string(batch.lineage));
    unacked_.push_back(batch.sequence);
    pending_ += batch.ByteSize();
    if (position == last_) stop_ = true;
    return Status::Ok();
  }
  Status Poll() override {
    std::lock_guard lock(mutex_);
    threads.insert(std::this_thread::get_id());
    if (++polls_ % 2 == 0) AckAll();
    return Status::Ok();
  }
  Status Flush() override {
    std::lock_guard lock(mutex_);
    threads.insert(std::this_thread::get_id());
    AckAll();
    return Status::Ok();
  }
  size_t PendingBytes() const override { return pending_; }
  void Close() override {}

  std::mutex mutex_;
  std::vector<std::string> taken;
  std::set<std::string> lineages;  // Batch::lineage of the batches taken
  std::set<std::thread::id> threads;

 private:
  void AckAll() {
    for (uint64_t sequence : unacked_) on_durable_(sequence);
    unacked_.clear();
    pending_ = 0;
  }

  std::string fail_at_;
  const std::string last_;
  std::atomic<bool>& stop_;
  AckCallback on_durable_;
  std::vector<uint64_t> unacked_;
  uint64_t polls_ = 0;
  std::atomic<size_t> pending_{0};
};

struct TempDir {
  TempDir()
      : path(std::filesystem::temp_directory_path() /
             fmt::format("tributary-pipeline-test-{}", getpid())) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
};

// A pipeline of `source` and one `sink`, its checkpoint under `state`.
Pipeline OneSinkPipeline(const TempDir& state, std::unique_ptr<Source> source,
                         std::unique_ptr<Sink> sink) {
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(sink));
  return Pipeline("test", std::move(source), std::move(sinks), {},
                  CheckpointStore(state.path, "test"), PipelineOptions{});
}

// Runs `pipeline` for `duration`, then stops it.
Status RunFor(Pipeline& pipeline, std::chrono::milliseconds duration) {
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(duration);
    stop = true;
  });
  Status status = pipeline.Run(stop);
  stopper.join();
  return status;
}

BOOST_AUTO_TEST_CASE(a_failed_sink_takes_nothing_after_its_failure_and_the_run_resumes) {
  TempDir state;
  std::atomic<bool> stop{false};
  constexpr int kLast = 400;
  auto source = std::make_unique<CountingSource>(kLast);
  CountingSource& source_ref = *source;
  auto sink = std::make_unique<RecordingSink>(PositionOf(150), PositionOf(kLast), stop);
  RecordingSink& sink_ref = *sink;
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(sink));
  PipelineOptions options;
  options.max_queued_batches = 4;
  Pipeline pipeline("test", std::move(source), std::move(sinks), {},
                    CheckpointStore(state.path, "test"), options);

  Status status = pipeline.Run(stop);
  BOOST_TEST_REQUIRE(status.ok(), status.message());

  // Every position was taken exactly once and in order: nothing queued behind the failure
  // reached the sink, and the second run replayed from the checkpoint before it.
  std::vector<std::string> expected;
  for (int n = 1; n <= kLast; ++n) expected.push_back(PositionOf(n));
  BOOST_TEST(sink_ref.taken == expected, boost::test_tools::per_element());
  BOOST_TEST_REQUIRE(source_ref.opened_from.size() == 2u);
  BOOST_TEST(source_ref.opened_from[0] == "none");
  BOOST_TEST(source_ref.opened_from[1] == PositionOf(149));
  // Stopping drained the sink: the last position is checkpointed and acknowledged.
  BOOST_TEST(source_ref.acknowledged == PositionOf(kLast));
  CheckpointStore store(state.path, "test");
  auto saved = store.Load();
  BOOST_TEST_REQUIRE(saved.ok());
  BOOST_TEST(saved.value().value_or("none") == PositionOf(kLast));
  // The first run drew a lineage and checkpointed it; the resumed run carried it on.
  BOOST_TEST_REQUIRE(sink_ref.lineages.size() == 1u);
  BOOST_TEST(sink_ref.lineages.begin()->size() == 16u);
  BOOST_TEST(*sink_ref.lineages.begin() == store.lineage());
  // One thread called the sink, and not the pipeline's.
  BOOST_TEST(sink_ref.threads.size() == 1u);
  BOOST_TEST((sink_ref.threads.count(std::this_thread::get_id()) == 0u));
}

// A sink that counts Polls: the worker polls an idle sink by itself (a file sink's flush
// interval, Kafka's delivery reports).
class PollCountingSink : public Sink {
 public:
  Status Open(AckCallback) override { return Status::Ok(); }
  Status Submit(const Batch&) override { return Status::Ok(); }
  Status Poll() override {
    ++polls;
    return polls > 3 ? Status::Fatal("disk gone") : Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  size_t PendingBytes() const override { return 0; }
  void Close() override {}
  std::atomic<int> polls{0};
};

BOOST_AUTO_TEST_CASE(an_idle_sink_is_polled_and_its_failure_is_kept_until_reset) {
  PollCountingSink sink;
  SinkWorker worker(sink, 2);
  BOOST_TEST_REQUIRE(worker.Open().ok());
  for (int i = 0; i < 200 && worker.status().ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_TEST(worker.status().message() == "disk gone");
  // The failed sink is polled no further, and a Flush reports the first failure.
  const int polls = sink.polls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  BOOST_TEST(sink.polls.load() == polls);
  BatchPool pool(1 << 20);
  BOOST_TEST(worker.Submit(pool.Share(pool.Take())).message() == "disk gone");
  BOOST_TEST(worker.Flush().message() == "disk gone");
  worker.Reset();
  BOOST_TEST(worker.status().ok());
}

// A sink slower than its source never runs dry, and must still be polled on time: a file sink
// flushes and acks only from Poll and Flush.
class SlowSink : public Sink {
 public:
  Status Open(AckCallback) override { return Status::Ok(); }
  Status Submit(const Batch&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Status::Ok();
  }
  Status Poll() override {
    ++polls;
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  size_t PendingBytes() const override { return 0; }
  void Close() override {}
  std::atomic<int> polls{0};
};

BOOST_AUTO_TEST_CASE(a_busy_sink_is_polled_on_time) {
  SlowSink sink;
  SinkWorker worker(sink, 2);
  BOOST_TEST_REQUIRE(worker.Open().ok());
  BatchPool pool(1 << 20);
  // 60 batches at 5 ms each, the queue full all along: about 300 ms of work.
  for (int i = 0; i < 60; ++i) BOOST_TEST_REQUIRE(worker.Submit(pool.Share(pool.Take())).ok());
  BOOST_TEST(sink.polls.load() >= 10);
  BOOST_TEST(worker.Flush().ok());
}

// Emits batches as `script` says, one step a Poll: 'b' a committed batch, '.' nothing (it waits
// out the timeout, noting each wait it was allowed); after the script, nothing.
class ScriptedSource : public Source {
 public:
  explicit ScriptedSource(std::string script) : script_(std::move(script)) {}

  Status Open(const std::optional<std::string>&) override { return Status::Ok(); }
  Status Poll(Batch& batch, size_t, std::chrono::milliseconds timeout) override {
    const char step = next_ < script_.size() ? script_[next_++] : '.';
    if (step == 'b' || step == 'e') {
      batch.AddValue(ValueKind::kString, "x");
      batch.commit_position = PositionOf(++batches_);
      batch.ends_burst = step == 'e';
      return Status::Ok();
    }
    idle_timeouts.push_back(timeout);
    std::this_thread::sleep_for(timeout);
    return Status::Ok();
  }
  Status Acknowledge(const std::string& position) override {
    acknowledged = position;
    return Status::Ok();
  }
  void Close() override {}

  // The pipeline's thread only.
  std::vector<std::chrono::milliseconds> idle_timeouts;
  std::string acknowledged;

 private:
  const std::string script_;
  size_t next_ = 0;
  int batches_ = 0;
};

// Keeps what it takes and acks it all on Flush.
class AckOnFlushSink : public Sink {
 public:
  Status Open(AckCallback on_durable) override {
    on_durable_ = std::move(on_durable);
    return Status::Ok();
  }
  Status Submit(const Batch& batch) override {
    unacked_.push_back(batch.sequence);
    return Status::Ok();
  }
  Status Poll() override { return Status::Ok(); }
  Status Flush() override {
    for (uint64_t sequence : unacked_) on_durable_(sequence);
    unacked_.clear();
    return Status::Ok();
  }
  size_t PendingBytes() const override { return 0; }
  void Close() override {}

 protected:
  bool HoldsUnacked() const { return !unacked_.empty(); }

 private:
  AckCallback on_durable_;
  std::vector<uint64_t> unacked_;
};

// Acks each batch on the first Poll 30 ms after taking it.
class LateAckSink : public AckOnFlushSink {
 public:
  Status Submit(const Batch& batch) override {
    taken_at_ = std::chrono::steady_clock::now();
    return AckOnFlushSink::Submit(batch);
  }
  Status Poll() override {
    if (HoldsUnacked() &&
        std::chrono::steady_clock::now() - taken_at_ >= std::chrono::milliseconds(30)) {
      return Flush();
    }
    return Status::Ok();
  }

 private:
  std::chrono::steady_clock::time_point taken_at_;
};

BOOST_AUTO_TEST_CASE(an_idle_source_is_polled_briefly_while_batches_wait_for_acks) {
  TempDir state;
  auto source = std::make_unique<ScriptedSource>("b");
  ScriptedSource& source_ref = *source;
  Pipeline pipeline = OneSinkPipeline(state, std::move(source), std::make_unique<LateAckSink>());
  Status status = RunFor(pipeline, std::chrono::milliseconds(400));
  BOOST_TEST_REQUIRE(status.ok(), status.message());
  BOOST_TEST(source_ref.acknowledged == PositionOf(1));

  // Short waits until the ack came in (30 ms at least), the long one after it: the checkpoint
  // is not held back by an idle source's wait. This sink does not ack when told the source is
  // quiet, so the waits stay at 10 ms rather than a millisecond.
  const auto& waits = source_ref.idle_timeouts;
  auto first_long = std::find(waits.begin(), waits.end(), std::chrono::milliseconds(100));
  BOOST_TEST_REQUIRE((first_long != waits.end()));
  BOOST_TEST(std::distance(waits.begin(), first_long) >= 2);
  BOOST_TEST(std::all_of(waits.begin(), first_long,
                         [](auto wait) { return wait == std::chrono::milliseconds(10); }));
  BOOST_TEST(std::all_of(first_long, waits.end(),
                         [](auto wait) { return wait == std::chrono::milliseconds(100); }));
}

// Acks only when told the source is quiet (or on Flush), and counts how often it is told.
class QuietAckSink : public AckOnFlushSink {
 public:
  Status SourceQuiet() override {
    ++quiet_calls;
    return Flush();
  }
  bool AcksWhenQuiet() const override { return true; }

  std::atomic<int> quiet_calls{0};
};

// What a run of `script` into a QuietAckSink left behind.
struct QuietRun {
  int quiet_calls = 0;
  std::string acknowledged;
  std::vector<std::chrono::milliseconds> idle_timeouts;
};

QuietRun RunQuiet(const std::string& script, std::chrono::milliseconds duration) {
  TempDir state;
  auto source = std::make_unique<ScriptedSource>(script);
  ScriptedSource& source_ref = *source;
  auto sink = std::make_unique<QuietAckSink>();
  QuietAckSink& sink_ref = *sink;
  Pipeline pipeline = OneSinkPipeline(state, std::move(source), std::move(sink));
  Status status = RunFor(pipeline, duration);
  BOOST_TEST_REQUIRE(status.ok(), status.message());
  return {sink_ref.quiet_calls.load(), source_ref.acknowledged, source_ref.idle_timeouts};
}

// A sink hears that the source fell quiet once at the end of each burst, with batches waiting
// for its acks, and not on every idle poll after it.
BOOST_AUTO_TEST_CASE(sinks_hear_once_at_the_end_of_each_burst_that_the_source_is_quiet) {
  const QuietRun run = RunQuiet("bb....b", std::chrono::milliseconds(800));
  BOOST_TEST(run.quiet_calls == 2);
  BOOST_TEST(run.acknowledged == PositionOf(3));
}

// A batch the source hands over with nothing more to read tells the sinks at once: the poll
// after it waits a millisecond for their acks (they ack when told), or the long idle wait if
// they came already. Without the mark, that poll waits the usual 10 ms and finds the source
// quiet.
BOOST_AUTO_TEST_CASE(a_batch_that_ends_a_burst_tells_the_sinks_without_waiting_for_a_poll) {
  for (const std::string script : {"e", "b"}) {
    const QuietRun run = RunQuiet(script, std::chrono::milliseconds(300));
    BOOST_TEST(run.quiet_calls == 1, script);
    BOOST_TEST(run.acknowledged == PositionOf(1), script);
    BOOST_TEST_REQUIRE(!run.idle_timeouts.empty());
    const bool waited_a_poll = run.idle_timeouts.front() == std::chrono::milliseconds(10);
    BOOST_TEST(waited_a_poll == (script == "b"), script);
  }
}

BOOST_AUTO_TEST_CASE(the_pool_recycles_batches_cleared_and_frees_huge_ones) {
  BatchPool pool(1000);
  std::unique_ptr<Batch> batch = pool.Take();
  batch->AddValue(ValueKind::kString, "abc");
  batch->commit_position = "p";
  batch->ends_inside_transaction = true;
  batch->ends_burst = true;
  const Batch* address = batch.get();
  {
    std::shared_ptr<const Batch> shared = pool.Share(std::move(batch));
    std::shared_ptr<const Batch> second = shared;
  }
  std::unique_ptr<Batch> again = pool.Take();
  BOOST_TEST(again.get() == address);
  BOOST_TEST(again->empty());
  BOOST_TEST(again->arena.empty());
  BOOST_TEST(!again->ends_inside_transaction);
  BOOST_TEST(!again->ends_burst);

  again->AddValue(ValueKind::kString, std::string(5000, 'x'));
  pool.Share(std::move(again)).reset();
  std::unique_ptr<Batch> fresh = pool.Take();
  BOOST_TEST(fresh->arena.capacity() < 5000u);
}

}  // namespace
}  // namespace tributary
