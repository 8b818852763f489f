#include "agent/components.h"

#include <fmt/format.h>

#include <functional>
#include <map>

#include "connectors/mysql/mysql_source.h"
#include "connectors/postgres/postgres_source.h"
#include "sinks/file/file_sink.h"
#include "sinks/kafka/kafka_sink.h"

namespace tributary {

namespace {

using SourceFactory = std::function<std::unique_ptr<Source>(const SourceConfig&)>;
using SinkFactory =
    std::function<std::unique_ptr<Sink>(const SinkConfig&, const std::string& source)>;

postgres::PostgresSourceOptions PostgresOptionsFor(const SourceConfig& c) {
  return postgres::PostgresSourceOptions{
      .name = c.name,
      .dsn = c.dsn,
      .tables = c.tables,
      .exclude_tables = c.exclude_tables,
      .slot = c.slot,
      .publication = c.publication,
      .heartbeat_interval = std::chrono::milliseconds(c.heartbeat_interval_ms),
      .initial_snapshot = c.snapshot == "initial",
      .snapshot_chunk_rows = static_cast<size_t>(c.snapshot_chunk_rows),
      .streaming = c.streaming,
      .logical_messages = c.logical_messages,
      .state_dir = c.state_dir.empty() ? std::filesystem::path()
                                       : std::filesystem::path(c.state_dir) / c.name,
  };
}

const std::map<std::string, SourceFactory>& SourceFactories() {
  static const std::map<std::string, SourceFactory> kFactories = {
      {"postgres",
       [](const SourceConfig& c) -> std::unique_ptr<Source> {
         return std::make_unique<postgres::PostgresSource>(PostgresOptionsFor(c));
       }},
      {"mysql",
       [](const SourceConfig& c) -> std::unique_ptr<Source> {
         return std::make_unique<mysql::MysqlSource>(mysql::MysqlSourceOptions{
             .name = c.name,
             .dsn = c.dsn,
             .tables = c.tables,
             .exclude_tables = c.exclude_tables,
             .server_id = static_cast<uint32_t>(c.server_id),
             .heartbeat_interval = std::chrono::milliseconds(c.heartbeat_interval_ms),
             .initial_snapshot = c.snapshot == "initial",
             .snapshot_chunk_rows = static_cast<size_t>(c.snapshot_chunk_rows),
         });
       }},
  };
  return kFactories;
}

const std::map<std::string, SinkFactory>& SinkFactories() {
  static const std::map<std::string, SinkFactory> kFactories = {
      {"file",
       [](const SinkConfig& c, const std::string& /*source*/) -> std::unique_ptr<Sink> {
         return std::make_unique<FileSink>(FileSinkOptions{
             .name = c.name,
             .path = c.path,
             .topic_template = c.topic,
             .rotate_bytes = static_cast<uint64_t>(c.rotate_bytes),
             .flush_interval = std::chrono::milliseconds(c.flush_interval_ms),
             .flush_when_quiet = c.flush_when_quiet,
             .schemas = c.schemas,
         });
       }},
      {"kafka",
       [](const SinkConfig& c, const std::string& source) -> std::unique_ptr<Sink> {
         return std::make_unique<KafkaSink>(KafkaOptionsFor(c, source));
       }},
  };
  return kFactories;
}

}  // namespace

KafkaSinkOptions KafkaOptionsFor(const SinkConfig& c, const std::string& source) {
  return KafkaSinkOptions{
      .name = c.name,
      .brokers = c.brokers,
      .topic_template = c.topic,
      .tombstones = c.tombstones,
      .schemas = c.schemas,
      .dlq_topic = c.dlq_topic,
      .exactly_once = c.exactly_once,
      .source = source,
      .offsets_topic = c.offsets_topic,
      .transaction_interval = std::chrono::milliseconds(c.flush_interval_ms),
      .librdkafka = c.librdkafka,
  };
}

Result<std::unique_ptr<Source>> MakeSource(const SourceConfig& config) {
  auto it = SourceFactories().find(config.type);
  if (it == SourceFactories().end()) {
    return Status::InvalidConfig(
        fmt::format("source {}: unknown type \"{}\"", config.name, config.type));
  }
  return it->second(config);
}

Status RequestSnapshot(const SourceConfig& config, const std::string& table) {
  const size_t dot = table.find('.');
  if (config.type != "postgres") {
    return Status::InvalidConfig(fmt::format(
        "source {}: on-demand snapshots are not supported for type {}", config.name, config.type));
  }
  if (dot == std::string::npos || dot == 0 || dot + 1 == table.size()) {
    return Status::InvalidConfig(fmt::format("table \"{}\" is not schema.table", table));
  }
  return postgres::RequestSnapshot(PostgresOptionsFor(config), table.substr(0, dot),
                                   table.substr(dot + 1));
}

SchemaPolicy SchemaPolicyFor(const SourceConfig& config) {
  // The config loader accepts only these words.
  static const std::map<std::string, CompatibilityMode, std::less<>> kModes = {
      {"none", CompatibilityMode::kNone},
      {"backward", CompatibilityMode::kBackward},
      {"forward", CompatibilityMode::kForward},
      {"full", CompatibilityMode::kFull}};
  return SchemaPolicy{.mode = kModes.at(config.schema_compatibility),
                      .on_incompatible = config.on_incompatible == "fail" ? OnIncompatible::kFail
                                                                          : OnIncompatible::kWarn};
}

Result<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config, const std::string& source) {
  auto it = SinkFactories().find(config.type);
  if (it == SinkFactories().end()) {
    return Status::InvalidConfig(
        fmt::format("sink {}: unknown type \"{}\"", config.name, config.type));
  }
  return it->second(config, source);
}

std::vector<std::string> UnsupportedFeatures(const AgentConfig& config) {
  std::vector<std::string> problems;
  if (config.sources.empty()) problems.push_back("sources: at least one source is required");
  for (size_t i = 0; i < config.sinks.size(); ++i) {
    const SinkConfig& sink = config.sinks[i];
    if (sink.type != "kafka") continue;
    const std::string path = fmt::format("sinks[{}]", i);
    std::vector<std::string> kafka = CheckKafkaSinkOptions(KafkaOptionsFor(sink), path);
    problems.insert(problems.end(), kafka.begin(), kafka.end());
  }
  return problems;
}

}  // namespace tributary
