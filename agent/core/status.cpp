#include "agent/core/status.h"

namespace tributary {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kRetriable:
      return "RETRIABLE";
    case StatusCode::kFatal:
      return "FATAL";
    case StatusCode::kInvalidConfig:
      return "INVALID_CONFIG";
    case StatusCode::kCorruptData:
      return "CORRUPT_DATA";
    case StatusCode::kContinuityLost:
      return "CONTINUITY_LOST";
    case StatusCode::kIncompatibleSchema:
      return "INCOMPATIBLE_SCHEMA";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

}  // namespace tributary
