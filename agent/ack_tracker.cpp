#include "agent/ack_tracker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <utility>

namespace tributary {

void AckTracker::Register(uint64_t sequence, std::optional<std::string> commit_position,
                          int sink_count) {
  assert(!last_registered_ || sequence > *last_registered_);
  assert(sink_count >= 0);
  last_registered_ = sequence;
  batches_.push_back({sequence, std::move(commit_position), sink_count});
  RetirePrefix();
}

void AckTracker::Ack(uint64_t sequence) {
  // Sequences grow along the deque, so the batch is found by binary search.
  auto it = std::lower_bound(
      batches_.begin(), batches_.end(), sequence,
      [](const InFlightBatch& batch, uint64_t wanted) { return batch.sequence < wanted; });
  if (it == batches_.end() || it->sequence != sequence || it->acks_missing == 0) {
    spdlog::warn("ack-tracker: Ignoring an ack for a batch not awaiting one sequence={}", sequence);
    return;
  }
  --it->acks_missing;
  if (it == batches_.begin()) RetirePrefix();
}

std::optional<std::string> AckTracker::TakeAdvance() { return std::exchange(advance_, {}); }

void AckTracker::RetirePrefix() {
  while (!batches_.empty() && batches_.front().acks_missing == 0) {
    if (batches_.front().commit_position) advance_ = std::move(batches_.front().commit_position);
    batches_.pop_front();
  }
}

}  // namespace tributary
