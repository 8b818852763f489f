#include "agent/app.h"

#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <thread>

#include "agent/checkpoint_store.h"
#include "agent/components.h"
#include "agent/config.h"
#include "agent/core/logging.h"
#include "agent/exit_codes.h"
#include "agent/pipeline.h"
#include "agent/transforms/masking_transform.h"

namespace tributary {

namespace {

// Loads the config and reports every problem on stderr; nullopt means exit 78.
std::optional<AgentConfig> LoadAndCheck(const std::string& path) {
  Result<AgentConfig> config = LoadConfig(path);
  std::vector<std::string> problems;
  if (!config.ok()) {
    problems.push_back(config.status().message());
  } else {
    problems = UnsupportedFeatures(*config);
  }
  if (problems.empty()) return std::move(config).value();
  std::cerr << "tributary: invalid config " << path << ":\n";
  for (const auto& p : problems) std::cerr << p << "\n";
  return std::nullopt;
}

int Validate(const std::string& path) {
  auto config = LoadAndCheck(path);
  if (!config) return kExitConfig;
  std::cout << "config " << path << " is valid: " << config->sources.size() << " source(s), "
            << config->sinks.size() << " sink(s)\n";
  return kExitOk;
}

// Blocks SIGTERM/SIGINT in every thread and turns them into `stop` from one waiting thread.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::atomic<bool>& stop) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this, &stop] {
      int signal = 0;
      while (sigwait(&set_, &signal) == 0) {
        if (signal == SIGUSR1) return;  // our own wake-up at shutdown
        spdlog::info("agent: Stopping signal={}", strsignal(signal));
        stop.store(true);
      }
    });
  }
  ~SignalWatcher() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

 private:
  sigset_t set_;
  std::thread thread_;
};

int Run(const std::string& path) {
  auto config = LoadAndCheck(path);
  if (!config) return kExitConfig;
  SetupLogging(config->log.level, config->log.format);
  spdlog::info("agent: Starting version={} config={}", TRIBUTARY_VERSION, path);

  std::atomic<bool> stop{false};
  SignalWatcher signals(stop);

  std::vector<std::unique_ptr<Pipeline>> pipelines;
  for (const SourceConfig& source_config : config->sources) {
    auto source = MakeSource(source_config);
    if (!source.ok()) {
      spdlog::error("agent: {}", source.status().message());
      return ExitCodeFor(source.status());
    }
    std::vector<std::unique_ptr<Sink>> sinks;
    for (const std::string& sink_name : source_config.sinks) {
      for (const SinkConfig& sink_config : config->sinks) {
        if (sink_config.name != sink_name) continue;
        auto sink = MakeSink(sink_config);
        if (!sink.ok()) {
          spdlog::error("agent: {}", sink.status().message());
          return ExitCodeFor(sink.status());
        }
        sinks.push_back(std::move(sink).value());
      }
    }
    // Each pipeline runs on its own thread with its own transforms.
    std::vector<std::unique_ptr<Transform>> transforms;
    if (config->masking) {
      auto masking = MaskingTransform::Create(*config->masking);
      if (!masking.ok()) {
        spdlog::error("agent: {}", masking.status().message());
        return ExitCodeFor(masking.status());
      }
      transforms.push_back(std::move(masking).value());
    }
    pipelines.push_back(std::make_unique<Pipeline>(
        source_config.name, std::move(source).value(), std::move(sinks), std::move(transforms),
        CheckpointStore(config->state_dir, source_config.name)));
  }

  // One thread per source; the first failure stops the others, and the worst exit code wins.
  std::vector<Status> results(pipelines.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < pipelines.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = pipelines[i]->Run(stop);
      if (!results[i].ok()) stop.store(true);
    });
  }
  for (auto& t : threads) t.join();

  int exit_code = kExitOk;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok()) continue;
    spdlog::error("agent: Source stopped source={} error=\"{}\"", config->sources[i].name,
                  results[i].ToString());
    int code = ExitCodeFor(results[i]);
    // 65 and 78 need an operator; they outrank a transient 75.
    if (exit_code == kExitOk || code != kExitTransient) exit_code = code;
  }
  spdlog::info("agent: Stopped exit_code={}", exit_code);
  return exit_code;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"Tributary: change data capture from PostgreSQL to files and Kafka", "tributary"};
  app.require_subcommand(1);
  std::string config_path;

  auto* run = app.add_subcommand("run", "Stream changes until SIGTERM/SIGINT");
  run->add_option("-c,--config", config_path, "Config file")->required();
  auto* validate = app.add_subcommand("validate", "Check the config and print every problem");
  validate->add_option("-c,--config", config_path, "Config file")->required();
  auto* version = app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (version->parsed()) {
    std::cout << "tributary " << TRIBUTARY_VERSION << "\n";
    return kExitOk;
  }
  if (validate->parsed()) return Validate(config_path);
  if (run->parsed()) return Run(config_path);
  return kExitUsage;
}

}  // namespace tributary
