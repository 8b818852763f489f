#pragma once

#include <chrono>
#include <cstdint>

namespace tributary {

// Wall-clock time in microseconds since the Unix epoch (event timestamps, lag).
inline int64_t UnixMicrosNow() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Monotonic time in nanoseconds (ages, intervals), as one integer for atomics.
inline int64_t SteadyNanosNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace tributary
