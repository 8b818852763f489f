#include "tests/support/agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace tributary::testing {

AgentProcess::AgentProcess(std::vector<std::string> args, std::filesystem::path log_path)
    : log_path_(std::move(log_path)) {
  std::vector<char*> argv;
  static std::string binary = TRIBUTARY_BINARY;
  argv.push_back(binary.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDERR_FILENO);
      dup2(fd, STDOUT_FILENO);
      close(fd);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
}

AgentProcess::~AgentProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

void AgentProcess::Signal(int signal) {
  if (running()) kill(pid_, signal);
}

bool AgentProcess::running() {
  if (exit_code_) return false;
  int status = 0;
  struct rusage usage {};
  pid_t r = wait4(pid_, &status, WNOHANG, &usage);
  if (r == pid_) {
    max_rss_kb_ = usage.ru_maxrss;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

std::optional<int> AgentProcess::Wait(std::chrono::milliseconds timeout) {
  WaitFor([this] { return !running(); }, timeout);
  return exit_code_;
}

std::string AgentProcess::Log() const { return ReadFile(log_path_); }

std::ostream& operator<<(std::ostream& out, const LogOf& log) { return out << log.agent.Log(); }

int RunAgent(const std::vector<std::string>& args, const std::filesystem::path& log_path,
             std::chrono::milliseconds timeout) {
  AgentProcess agent(args, log_path);
  auto code = agent.Wait(timeout);
  if (!code) throw std::runtime_error("agent did not exit in time:\n" + agent.Log());
  return *code;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace tributary::testing
