#pragma once

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// An in-place change to a batch's events (masking, schema versions), in pipeline order.
class Transform {
 public:
  virtual ~Transform() = default;
  virtual Status Apply(Batch& batch) = 0;
  // Called each time before the pipeline (re)opens its source. After a failure, batches this
  // transform saw may never have reached the sinks (a failed or aborted write): they are
  // replayed from the checkpoint.
  virtual void Restart() {}
};

}  // namespace tributary
