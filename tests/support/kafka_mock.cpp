#include "tests/support/kafka_mock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "tests/support/agent_process.h"

namespace tributary::testing {

namespace {

constexpr auto kReplyTimeout = std::chrono::seconds(10);

}  // namespace

std::unique_ptr<MockKafka> MockKafka::Start() {
  int in_pipe[2];
  int out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  std::unique_ptr<MockKafka> mock(new MockKafka());
  mock->pid_ = fork();
  if (mock->pid_ < 0) throw std::runtime_error("fork failed");
  if (mock->pid_ == 0) {
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    execl(TRIBUTARY_MOCK_KAFKA_BINARY, TRIBUTARY_MOCK_KAFKA_BINARY, nullptr);
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  mock->to_child_ = in_pipe[1];
  mock->from_child_ = out_pipe[0];
  mock->bootstrap_ = mock->ReadLine();
  if (mock->bootstrap_.find(':') == std::string::npos) {
    throw std::runtime_error("mock kafka printed no bootstrap address: " + mock->bootstrap_);
  }
  return mock;
}

MockKafka::~MockKafka() {
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
  if (pid_ > 0) {
    int status = 0;
    bool exited =
        WaitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, std::chrono::seconds(5));
    if (!exited) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
}

std::string MockKafka::ReadLine() {
  auto deadline = std::chrono::steady_clock::now() + kReplyTimeout;
  while (true) {
    size_t end = buffered_.find('\n');
    if (end != std::string::npos) {
      std::string line = buffered_.substr(0, end);
      buffered_.erase(0, end + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("mock kafka did not answer");
    struct pollfd fd {
      from_child_, POLLIN, 0
    };
    if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = read(from_child_, buf, sizeof buf);
    if (n <= 0) throw std::runtime_error("mock kafka exited");
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

void MockKafka::Command(const std::string& line) {
  std::string text = line + "\n";
  if (write(to_child_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error("cannot write to mock kafka");
  }
  std::string reply = ReadLine();
  if (reply != "ok") throw std::runtime_error("mock kafka: " + line + ": " + reply);
}

void MockKafka::CreateTopic(const std::string& name, int partitions) {
  Command(fmt::format("topic {} {}", name, partitions));
}

void MockKafka::SetBrokerDown(int broker) { Command(fmt::format("down {}", broker)); }

void MockKafka::SetBrokerUp(int broker) { Command(fmt::format("up {}", broker)); }

void MockKafka::PushErrors(int api_key, int error, int count) {
  Command(fmt::format("error {} {} {}", api_key, error, count));
}

std::vector<KafkaRecord> ReadKafkaTopic(const std::string& bootstrap, const std::string& topic) {
  // -e: exit at the end of every partition; -J: one JSON object a record.
  std::string output = RunCommand(
      fmt::format("kcat -b '{}' -C -t '{}' -o beginning -e -J -q -m 10", bootstrap, topic));
  std::vector<KafkaRecord> records;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.front() != '{') continue;
    nlohmann::json json = nlohmann::json::parse(line);
    KafkaRecord record;
    record.topic = json.at("topic");
    record.partition = json.at("partition");
    record.offset = json.at("offset");
    if (!json.at("key").is_null()) record.key = json.at("key").get<std::string>();
    if (!json.at("payload").is_null()) record.value = json.at("payload").get<std::string>();
    if (json.contains("headers")) {
      const auto& headers = json.at("headers");
      for (size_t i = 0; i + 1 < headers.size(); i += 2) {
        record.headers[headers[i].get<std::string>()] =
            headers[i + 1].is_null() ? "" : headers[i + 1].get<std::string>();
      }
    }
    records.push_back(std::move(record));
  }
  return records;
}

std::filesystem::path WritePgKafkaConfig(const std::filesystem::path& dir, const PgServer& pg,
                                         const std::string& dbname, const std::string& source,
                                         const std::string& tables_yaml, const std::string& brokers,
                                         const std::string& extra_sink_yaml) {
  std::string extra;
  std::istringstream lines(extra_sink_yaml);
  std::string line;
  while (std::getline(lines, line)) extra += "    " + line + "\n";
  std::filesystem::path path = dir / "tributary.yaml";
  std::ofstream out(path);
  out << fmt::format(R"(state_dir: {state}
log: {{ level: debug }}
sources:
  - name: {source}
    type: postgres
    dsn: "{dsn}"
    tables: {tables}
    snapshot: never
    sinks: [events]
sinks:
  - name: events
    type: kafka
    brokers: "{brokers}"
{extra})",
                     fmt::arg("state", (dir / "state").string()), fmt::arg("source", source),
                     fmt::arg("dsn", pg.Dsn(dbname)), fmt::arg("tables", tables_yaml),
                     fmt::arg("brokers", brokers), fmt::arg("extra", extra));
  return path;
}

}  // namespace tributary::testing
