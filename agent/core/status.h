#pragma once

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

namespace tributary {

// What a failure means for whoever handles it. The exit code of the agent follows from it.
enum class StatusCode {
  kOk,
  kRetriable,  // transient: a dropped socket, a server restart; retry with backoff (exit 75)
  kFatal,      // cannot go on, nothing the config can fix (exit 75 after the supervisor gives up)
  kInvalidConfig,       // the operator must change the config or the server setup (exit 78)
  kCorruptData,         // bytes that do not decode; never skipped (exit 65)
  kContinuityLost,      // the position we need is gone or the server is ahead of us (exit 65)
  kIncompatibleSchema,  // a schema change the policy refuses (on_incompatible: fail; exit 65)
};

const char* StatusCodeName(StatusCode code);

inline std::ostream& operator<<(std::ostream& os, StatusCode code) {
  return os << StatusCodeName(code);
}

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status Retriable(std::string m) { return {StatusCode::kRetriable, std::move(m)}; }
  static Status Fatal(std::string m) { return {StatusCode::kFatal, std::move(m)}; }
  static Status InvalidConfig(std::string m) { return {StatusCode::kInvalidConfig, std::move(m)}; }
  static Status CorruptData(std::string m) { return {StatusCode::kCorruptData, std::move(m)}; }
  static Status ContinuityLost(std::string m) {
    return {StatusCode::kContinuityLost, std::move(m)};
  }
  static Status IncompatibleSchema(std::string m) {
    return {StatusCode::kIncompatibleSchema, std::move(m)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool retriable() const { return code_ == StatusCode::kRetriable; }

  // "CORRUPT_DATA: pgoutput: truncated Insert at offset 12"
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status that says why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok());
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace tributary

#define TRIBUTARY_CONCAT_INNER(a, b) a##b
#define TRIBUTARY_CONCAT(a, b) TRIBUTARY_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when it is not ok.
#define RETURN_IF_ERROR(expr)         \
  do {                                \
    ::tributary::Status _st = (expr); \
    if (!_st.ok()) return _st;        \
  } while (0)

// lhs is a declaration and tmp a name: neither can be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

// ASSIGN_OR_RETURN(auto x, Foo()); binds x or returns Foo()'s Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(TRIBUTARY_CONCAT(_result_, __LINE__), lhs, expr)
