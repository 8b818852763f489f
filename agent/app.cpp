#include "agent/app.h"

#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <map>
#include <thread>

#include "agent/checkpoint_store.h"
#include "agent/components.h"
#include "agent/config.h"
#include "agent/connect_check.h"
#include "agent/core/logging.h"
#include "agent/exit_codes.h"
#include "agent/http_server.h"
#include "agent/metrics.h"
#include "agent/pipeline.h"
#include "agent/schema_stage.h"
#include "agent/schemas_command.h"
#include "agent/secret_check.h"
#include "agent/snapshot_command.h"
#include "agent/status_command.h"
#include "agent/systemd_notify.h"
#include "agent/transforms/key_change_split.h"
#include "agent/transforms/masking_transform.h"
#include "agent/transforms/transaction_metadata.h"

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

int Validate(const std::string& path, bool connect) {
  auto config = LoadAndCheck(path);
  if (!config) return kExitConfig;
  if (auto warning = ExposedSecretWarning(path)) std::cerr << "warning: " << *warning << "\n";
  if (connect) {
    ConnectReport report = CheckConnections(*config);
    for (const auto& note : report.notes) std::cout << note << "\n";
    if (!report.problems.empty()) {
      std::cerr << "tributary: " << path << " cannot run as configured:\n";
      for (const auto& problem : report.problems) std::cerr << problem << "\n";
      return kExitConfig;
    }
  }
  std::cout << "config " << path << " is valid: " << config->sources.size() << " source(s), "
            << config->sinks.size() << " sink(s)\n";
  return kExitOk;
}

// Blocks SIGTERM/SIGINT/SIGHUP in every thread and turns them into `stop` and `reload` from
// one waiting thread.
class SignalWatcher {
 public:
  SignalWatcher(std::atomic<bool>& stop, std::atomic<bool>& reload) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGHUP);
    sigaddset(&set_, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this, &stop, &reload] {
      int signal = 0;
      while (sigwait(&set_, &signal) == 0) {
        if (signal == SIGUSR1) return;  // our own wake-up at shutdown
        if (signal == SIGHUP) {
          reload.store(true);
          continue;
        }
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

// One line per source for systemd's STATUS=: "shop: streaming lag=0.120s; legacy: reconnecting".
std::string StatusLine(const std::vector<SourceSnapshot>& snapshots) {
  std::string line;
  for (const SourceSnapshot& s : snapshots) {
    if (!line.empty()) line += "; ";
    line += s.name + ": " + std::string(PipelineStateName(s.state));
    if (s.lag_seconds) line += fmt::format(" lag={:.3f}s", *s.lag_seconds);
  }
  return line;
}

// SIGHUP: re-reads the config and applies what can change safely in a running agent, the log
// level; everything else needs a restart (docs/operations.md).
void Reload(const std::string& path) {
  NotifySystemd("RELOADING=1");
  Result<AgentConfig> config = LoadConfig(path);
  if (!config.ok()) {
    spdlog::error("agent: Reload failed, keeping the running config error=\"{}\"",
                  config.status().message());
  } else {
    // Said before it applies, so that a quieter level does not hide it.
    spdlog::info("agent: Reloaded log_level={}", config->log.level);
    spdlog::set_level(spdlog::level::from_str(config->log.level));
  }
  NotifySystemd("READY=1");
}

int Run(const std::string& path) {
  auto config = LoadAndCheck(path);
  if (!config) return kExitConfig;
  SetupLogging(config->log.level, config->log.format);
  spdlog::info("agent: Starting version={} config={}", TRIBUTARY_VERSION, path);
  if (auto warning = ExposedSecretWarning(path)) spdlog::warn("agent: {}", *warning);

  std::atomic<bool> stop{false};
  std::atomic<bool> reload{false};
  SignalWatcher signals(stop, reload);

  PipelineOptions options;
  Metrics metrics;
  Watchdog watchdog(config->sources.size());
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
        auto sink = MakeSink(sink_config, source_config.name);
        if (!sink.ok()) {
          spdlog::error("agent: {}", sink.status().message());
          return ExitCodeFor(sink.status());
        }
        sinks.push_back(std::move(sink).value());
      }
    }
    // Each pipeline runs on its own thread with its own transforms.
    std::vector<std::unique_ptr<Transform>> transforms;
    transforms.push_back(std::make_unique<KeyChangeSplit>());
    if (config->masking) {
      auto masking = MaskingTransform::Create(*config->masking);
      if (!masking.ok()) {
        spdlog::error("agent: {}", masking.status().message());
        return ExitCodeFor(masking.status());
      }
      transforms.push_back(std::move(masking).value());
    }
    auto registry =
        SchemaRegistry::Open(config->state_dir, source_config.name, SchemaPolicyFor(source_config));
    if (!registry.ok()) {
      spdlog::error("agent: {}", registry.status().message());
      return ExitCodeFor(registry.status());
    }
    transforms.push_back(std::make_unique<SchemaStage>(std::move(registry).value()));
    // Last: it counts the events the sinks will write.
    if (source_config.transaction_metadata) {
      transforms.push_back(std::make_unique<TransactionMetadata>());
    }
    pipelines.push_back(std::make_unique<Pipeline>(
        source_config.name, std::move(source).value(), std::move(sinks), std::move(transforms),
        CheckpointStore(config->state_dir, source_config.name), options));
    PipelineMetrics& pipeline_metrics = metrics.AddPipeline(
        source_config.name, source_config.type, source_config.sinks, options.max_pending_bytes);
    pipeline_metrics.AttachWatchdog(&watchdog, pipelines.size() - 1);
    pipelines.back()->SetMetrics(&pipeline_metrics);
  }

  std::unique_ptr<HttpServer> http;
  if (config->http) {
    auto server = HttpServer::Start(*config->http, metrics);
    if (!server.ok()) {
      spdlog::error("agent: {}", server.status().message());
      return ExitCodeFor(server.status());
    }
    http = std::move(server).value();
  }
  if (watchdog.enabled()) {
    spdlog::info("agent: Watchdog enabled interval_ms={}", watchdog.interval().count() / 1000);
  }

  // One thread per source. Under stop_all the first failure stops the others; under isolate
  // the others go on. Either way the worst exit code wins.
  const bool stop_all = config->on_source_failure == "stop_all";
  std::vector<Status> results(pipelines.size());
  std::vector<std::atomic<bool>> finished(pipelines.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < pipelines.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = pipelines[i]->Run(stop);
      watchdog.Retire(i);
      if (!results[i].ok()) {
        spdlog::error("agent: Source stopped source={} error=\"{}\"", config->sources[i].name,
                      results[i].ToString());
        if (stop_all) stop.store(true);
      }
      finished[i].store(true);
    });
  }

  // The main thread speaks to systemd: READY=1 once every source is open (or has ended),
  // STATUS= on changes, STOPPING=1 once asked to stop.
  bool ready = false;
  bool stopping = false;
  std::string last_status;
  auto last_status_at = std::chrono::steady_clock::now();
  while (!std::all_of(finished.begin(), finished.end(), [](const auto& f) { return f.load(); })) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (stop.load() && !stopping) {
      stopping = true;
      NotifySystemd("STOPPING=1\nSTATUS=Stopping: draining sinks and checkpointing");
    }
    if (reload.exchange(false) && !stopping) Reload(path);
    if (stopping) continue;
    std::vector<SourceSnapshot> snapshots = metrics.Snapshot();
    if (!ready && std::all_of(snapshots.begin(), snapshots.end(), [](const SourceSnapshot& s) {
          return s.state != PipelineState::kStarting && s.state != PipelineState::kReconnecting;
        })) {
      ready = true;
      spdlog::info("agent: Ready sources={}", snapshots.size());
      NotifySystemd("READY=1\nSTATUS=" + StatusLine(snapshots));
    }
    // States change rarely; lag moves all the time, so it refreshes every 10 s only.
    std::string status = StatusLine(snapshots);
    auto now = std::chrono::steady_clock::now();
    std::string states;
    for (const auto& snapshot : snapshots) states += PipelineStateName(snapshot.state);
    if (states != last_status || now - last_status_at > std::chrono::seconds(10)) {
      NotifySystemd("STATUS=" + status);
      last_status = states;
      last_status_at = now;
    }
  }
  for (auto& t : threads) t.join();
  http.reset();

  int exit_code = kExitOk;
  for (const Status& result : results) {
    if (result.ok()) continue;
    int code = ExitCodeFor(result);
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
  bool connect = false;
  validate->add_flag("--connect", connect,
                     "Also reach every source and sink and report what is missing (read-only)");
  auto* status = app.add_subcommand("status", "Print each source's checkpoint, state and lag");
  status->add_option("-c,--config", config_path, "Config file")->required();
  auto* snapshot = app.add_subcommand("snapshot", "Re-snapshot one table while streaming goes on");
  std::string snapshot_table;
  std::string snapshot_source;
  snapshot->add_option("-c,--config", config_path, "Config file")->required();
  snapshot->add_option("-t,--table", snapshot_table, "The table, schema.table")->required();
  snapshot->add_option("-s,--source", snapshot_source, "Only this source");
  auto* schemas = app.add_subcommand("schemas", "Print the schema history of each source");
  std::string schemas_table;
  std::string schemas_source;
  bool schemas_json = false;
  schemas->add_option("-c,--config", config_path, "Config file")->required();
  schemas->add_option("-t,--table", schemas_table, "Only this table, schema.table or db.table");
  schemas->add_option("-s,--source", schemas_source, "Only this source");
  schemas->add_flag("--json", schemas_json, "Print the history lines as stored (JSON)");
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
  if (validate->parsed()) return Validate(config_path, connect);
  if (status->parsed()) {
    auto config = LoadAndCheck(config_path);
    return config ? PrintStatus(*config, std::cout) : kExitConfig;
  }
  if (snapshot->parsed()) return RequestTableSnapshot(config_path, snapshot_table, snapshot_source);
  if (schemas->parsed()) {
    auto config = LoadAndCheck(config_path);
    return config ? PrintSchemas(*config, schemas_source, schemas_table, schemas_json, std::cout,
                                 std::cerr)
                  : kExitConfig;
  }
  if (run->parsed()) return Run(config_path);
  return kExitUsage;
}

}  // namespace tributary
