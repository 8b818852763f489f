#pragma once

#include <string>
#include <string_view>

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// Expands a sink's topic template for `table`: {source}, {schema} (the database when the table
// has no schema, as for MySQL), {database}, {table}. Characters outside [A-Za-z0-9._-] become
// '_', as Debezium does for Kafka topics; the sinks add their own rules on top. An unclosed '{'
// or an unknown field is kInvalidConfig, its message starting with `owner`.
Result<std::string> ExpandTopicTemplate(std::string_view owner, std::string_view topic_template,
                                        const TableSchema& table);

}  // namespace tributary
