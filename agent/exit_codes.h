#pragma once

#include "agent/core/status.h"

namespace tributary {

// sysexits, so that systemd can tell them apart (RestartPreventExitStatus=65 78).
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitContinuityLost = 65;
inline constexpr int kExitTransient = 75;
inline constexpr int kExitConfig = 78;

inline int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidConfig:
      return kExitConfig;
    case StatusCode::kContinuityLost:
    case StatusCode::kCorruptData:
    case StatusCode::kIncompatibleSchema:
      return kExitContinuityLost;
    case StatusCode::kRetriable:
    case StatusCode::kFatal:
      return kExitTransient;
  }
  return kExitTransient;
}

}  // namespace tributary
