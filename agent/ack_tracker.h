#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

namespace tributary {

// Turns per-sink, possibly out-of-order batch acks into the in-order commit position that is
// safe to checkpoint: the latest one within the longest prefix of batches every sink acked.
// Pure bookkeeping for the pipeline's thread; the pipeline saves and acknowledges.
//
// Acks are counted, not attributed: each sink must ack each batch exactly once (Sink's
// contract). Acks beyond a batch's sink count, and acks for batches that are unknown or
// already retired, are ignored with a warning; a sink that acked twice before another sink
// acked at all cannot be told apart from two sinks.
class AckTracker {
 public:
  // `sequence` must grow from call to call. A batch with no sinks is acked at once.
  void Register(uint64_t sequence, std::optional<std::string> commit_position, int sink_count);

  void Ack(uint64_t sequence);

  // The commit position of the latest fully acked prefix, when it moved since the last call.
  std::optional<std::string> TakeAdvance();

  // Batches registered and not yet retired with the acked prefix.
  size_t InFlight() const { return batches_.size(); }

 private:
  struct InFlightBatch {
    uint64_t sequence;
    std::optional<std::string> commit_position;
    int acks_missing;
  };

  // Retires the fully acked batches at the front, remembering the last commit position.
  void RetirePrefix();

  std::deque<InFlightBatch> batches_;
  std::optional<uint64_t> last_registered_;
  std::optional<std::string> advance_;
};

}  // namespace tributary
