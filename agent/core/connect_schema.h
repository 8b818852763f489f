#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agent/core/event.h"

namespace tributary {

// How one column's values are written inside a Connect-form payload (docs/events.md, "Connect
// form"): the schema must describe the JSON written, so that Kafka Connect's JsonConverter reads
// it back.
struct ConnectColumn {
  // Declared "string": a kRaw value (json, or a number or boolean of a type without a Connect
  // mapping) is written as a JSON string holding its text, as Debezium writes json columns.
  bool quote_raw = false;
  // Declared "bytes": an unavailable TOAST value is Debezium's placeholder in base64.
  bool bytes = false;
};

// Kafka Connect JsonConverter schemas (schemas.enable=true) for the row events of one table
// version on one topic. Built once per (topic, table version) by the sinks, never per event.
struct ConnectSchemas {
  std::string key;    // struct "<topic>.Key"; empty when the table has no key columns
  std::string value;  // struct "<topic>.Envelope", with the table's schema version as `version`
  std::vector<ConnectColumn> columns;  // one per table column
};

ConnectSchemas BuildConnectSchemas(const TableSchema& table, std::string_view topic);

// The schemas of schema-change events (EnvelopeWriter::WriteSchemaChange and its key) from a
// source of `table`'s connector: the source block differs between connectors.
std::string SchemaChangeKeyConnectSchema();
std::string SchemaChangeValueConnectSchema(const TableSchema& table);

// The schemas of logical decoding message events (EnvelopeWriter::WriteMessage and its key),
// Debezium's `io.debezium.connector.postgresql.MessageValue` and `…MessageKey`; `table` is the
// source's message pseudo-table.
std::string MessageKeyConnectSchema(const TableSchema& table);
std::string MessageValueConnectSchema(const TableSchema& table);

}  // namespace tributary
