#pragma once

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// An in-place change to a batch's events (masking, schema versions), in pipeline order.
class Transform {
 public:
  virtual ~Transform() = default;
  virtual Status Apply(Batch& batch) = 0;
};

}  // namespace tributary
