#pragma once

#include <string>
#include <string_view>

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// The topics of a source's own events, whatever the sink's row topic template (docs/events.md):
// schema changes, transaction BEGIN and END, logical decoding messages.
inline constexpr std::string_view kSchemaChangeTopic = "{source}.schema-changes";
inline constexpr std::string_view kTransactionTopic = "{source}.transaction";
inline constexpr std::string_view kMessageTopic = "{source}.message";

// Expands a sink's topic template for `table`: {source}, {schema} (the database when the table
// has no schema, as for MySQL), {database}, {table}. Characters outside [A-Za-z0-9._-] become
// '_', as Debezium does for Kafka topics; the sinks add their own rules on top. An unclosed '{'
// or an unknown field is kInvalidConfig, its message starting with `owner`.
Result<std::string> ExpandTopicTemplate(std::string_view owner, std::string_view topic_template,
                                        const TableSchema& table);

}  // namespace tributary
