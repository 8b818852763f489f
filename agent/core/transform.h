#pragma once

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// A pure, in-place change to a batch's events (filters, masking). No I/O.
class Transform {
 public:
  virtual ~Transform() = default;
  virtual Status Apply(Batch& batch) = 0;
};

}  // namespace tributary
