#include "agent/components.h"

#include <fmt/format.h>

#include <functional>
#include <map>

#include "connectors/postgres/postgres_source.h"
#include "sinks/file/file_sink.h"

namespace tributary {

namespace {

using SourceFactory = std::function<std::unique_ptr<Source>(const SourceConfig&)>;
using SinkFactory = std::function<std::unique_ptr<Sink>(const SinkConfig&)>;

const std::map<std::string, SourceFactory>& SourceFactories() {
  static const std::map<std::string, SourceFactory> kFactories = {
      {"postgres",
       [](const SourceConfig& c) -> std::unique_ptr<Source> {
         return std::make_unique<postgres::PostgresSource>(postgres::PostgresSourceOptions{
             .name = c.name,
             .dsn = c.dsn,
             .tables = c.tables,
             .exclude_tables = c.exclude_tables,
             .slot = c.slot,
             .publication = c.publication,
             .heartbeat_interval = std::chrono::milliseconds(c.heartbeat_interval_ms),
         });
       }},
  };
  return kFactories;
}

const std::map<std::string, SinkFactory>& SinkFactories() {
  static const std::map<std::string, SinkFactory> kFactories = {
      {"file",
       [](const SinkConfig& c) -> std::unique_ptr<Sink> {
         return std::make_unique<FileSink>(FileSinkOptions{
             .name = c.name,
             .path = c.path,
             .topic_template = c.topic,
             .rotate_bytes = static_cast<uint64_t>(c.rotate_bytes),
             .flush_interval = std::chrono::milliseconds(c.flush_interval_ms),
         });
       }},
  };
  return kFactories;
}

}  // namespace

Result<std::unique_ptr<Source>> MakeSource(const SourceConfig& config) {
  auto it = SourceFactories().find(config.type);
  if (it == SourceFactories().end()) {
    return Status::InvalidConfig(
        fmt::format("source {}: unknown type \"{}\"", config.name, config.type));
  }
  return it->second(config);
}

Result<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config) {
  auto it = SinkFactories().find(config.type);
  if (it == SinkFactories().end()) {
    return Status::InvalidConfig(
        fmt::format("sink {}: unknown type \"{}\"", config.name, config.type));
  }
  return it->second(config);
}

std::vector<std::string> UnsupportedFeatures(const AgentConfig& config) {
  std::vector<std::string> problems;
  if (config.sources.empty()) problems.push_back("sources: at least one source is required");
  for (size_t i = 0; i < config.sources.size(); ++i) {
    if (config.sources[i].snapshot == "initial") {
      problems.push_back(fmt::format(
          "sources[{}].snapshot: \"initial\" is not supported yet; set `snapshot: never` to "
          "stream changes from now on",
          i));
    }
  }
  return problems;
}

}  // namespace tributary
