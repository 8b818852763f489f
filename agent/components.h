#pragma once

#include <memory>

#include "agent/config.h"
#include "agent/core/sink.h"
#include "agent/core/source.h"
#include "agent/core/status.h"
#include "schema_registry/schema_registry.h"
#include "sinks/kafka/kafka_sink.h"

namespace tributary {

// The one table that maps config `type:` names to implementations. Adding a connector or a
// sink touches its own folder and one line here.
Result<std::unique_ptr<Source>> MakeSource(const SourceConfig& config);
// `source` is the source the sink instance serves (one instance per source and sink).
Result<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config, const std::string& source);
KafkaSinkOptions KafkaOptionsFor(const SinkConfig& config, const std::string& source = "");

// The source's schema_compatibility and on_incompatible, as the registry takes them.
SchemaPolicy SchemaPolicyFor(const SourceConfig& config);

// Asks a running (or the next) source to re-snapshot `table` ("schema.table") while it streams.
Status RequestSnapshot(const SourceConfig& config, const std::string& table);

// Problems with a config that parses but cannot run: nothing to stream, or what this build
// cannot do yet. One line each with its path, as LoadConfig reports them.
std::vector<std::string> UnsupportedFeatures(const AgentConfig& config);

}  // namespace tributary
