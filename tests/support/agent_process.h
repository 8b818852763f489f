#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace tributary::testing {

// The tributary binary run as a child process, its stderr captured to a file.
class AgentProcess {
 public:
  AgentProcess(std::vector<std::string> args, std::filesystem::path log_path);
  ~AgentProcess();  // kills the child if it is still running
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  void Signal(int signal);
  // The exit code, or 128+signal when killed; nullopt if still running after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool running();
  std::string Log() const;
  pid_t pid() const { return pid_; }
  // Peak resident set size of the exited child, in KiB (0 while it runs).
  long max_rss_kb() const { return max_rss_kb_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  long max_rss_kb_ = 0;
  std::filesystem::path log_path_;
};

// The agent's log, read when it is printed. For Boost.Test messages: the message of
// BOOST_REQUIRE_MESSAGE(WaitFor(...), agent.Log()) may be built before the wait runs (argument
// order is unspecified), so a failure would print a stale log; LogOf{agent} reads it last.
struct LogOf {
  const AgentProcess& agent;
};
std::ostream& operator<<(std::ostream& out, const LogOf& log);

// Runs the agent to completion and returns its exit code; stderr goes to `log_path`.
int RunAgent(const std::vector<std::string>& args, const std::filesystem::path& log_path,
             std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Polls `condition` every 50 ms until it holds or `timeout` passes.
template <typename F>
bool WaitFor(F condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    struct timespec ts {
      0, 50'000'000
    };
    nanosleep(&ts, nullptr);
  }
  return condition();
}

std::string ReadFile(const std::filesystem::path& path);

}  // namespace tributary::testing
