#include "agent/core/connect_schema.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "agent/core/envelope_writer.h"
#include "agent/core/text_append.h"

namespace tributary {
namespace {

// Appends one schema as JsonConverter writes it: type, then `inner` (,"items":{…} or
// ,"fields":[…]), optional, name, version (0: none), `tail` (,"parameters":{…},"default":…),
// and last the struct field's name, when there is one.
void AppendSchema(std::string& out, std::string_view field, std::string_view type, bool optional,
                  std::string_view inner = {}, std::string_view name = {}, uint32_t version = 0,
                  std::string_view tail = {}) {
  out.append("{\"type\":\"");
  out.append(type);
  out.push_back('"');
  out.append(inner);
  out.append(optional ? ",\"optional\":true" : ",\"optional\":false");
  if (!name.empty()) {
    out.append(",\"name\":");
    AppendJsonString(name, out);
  }
  if (version != 0) {
    out.append(",\"version\":");
    AppendNumber(version, out);
  }
  out.append(tail);
  if (!field.empty()) {
    out.append(",\"field\":");
    AppendJsonString(field, out);
  }
  out.push_back('}');
}

void AppendPrimitive(std::string_view type, bool optional, std::string_view field,
                     std::string& out) {
  AppendSchema(out, field, type, optional);
}

// A struct's `inner`: ,"fields":[ … ] around what `fields` appends (comma-separated).
template <typename Fields>
std::string StructFields(Fields&& fields) {
  std::string inner = ",\"fields\":[";
  fields(inner);
  inner.push_back(']');
  return inner;
}

std::string ArrayItems(std::string_view item_type) {
  std::string inner = ",\"items\":";
  AppendPrimitive(item_type, /*optional=*/false, {}, inner);
  return inner;
}

constexpr std::string_view kDecimalTail = ",\"parameters\":{\"scale\":\"0\"}";
constexpr std::string_view kSnapshotTail =
    ",\"parameters\":{\"allowed\":\"true,first,last,false,incremental\"},\"default\":\"false\"";

constexpr std::array<std::string_view, 9> kGeometryTypes = {
    "geometry",        "point",        "linestring",         "polygon",       "multipoint",
    "multilinestring", "multipolygon", "geometrycollection", "geomcollection"};

// Appends the schema of a value of `canonical` type as the envelope writes it (docs/types.md,
// docs/mysql.md), and says how the writer must treat its values.
void AppendValueSchema(std::string_view canonical, bool optional, std::string_view field,
                       ConnectColumn& column, std::string& out) {
  auto primitive = [&](std::string_view type, std::string_view name = {}) {
    AppendSchema(out, field, type, optional, {}, name, name.empty() ? 0u : 1u);
  };
  if (canonical == "int16" || canonical == "int32" || canonical == "int64")
    return primitive(canonical);
  if (canonical == "float32") return primitive("float");
  if (canonical == "float64") return primitive("double");
  if (canonical == "boolean") return primitive("boolean");
  if (canonical == "uint64") {
    // Written as an exact JSON number that may exceed int64: Connect's Decimal (scale 0) is
    // what JsonConverter writes with decimal.format=NUMERIC, and it reads such numbers exactly.
    AppendSchema(out, field, "bytes", optional, {}, "org.apache.kafka.connect.data.Decimal", 1,
                 kDecimalTail);
    return;
  }
  if (canonical.starts_with("bytes")) {
    column.bytes = true;  // base64 text, JsonConverter's own form of bytes
    return primitive("bytes");
  }
  if (canonical == "timestamptz") return primitive("string", "io.debezium.time.ZonedTimestamp");
  if (canonical == "uuid") return primitive("string", "io.debezium.data.Uuid");
  if (canonical.starts_with("array<") && canonical.ends_with(">") &&
      !canonical.starts_with("array<json")) {
    std::string inner = ",\"items\":";
    ConnectColumn item;
    AppendValueSchema(canonical.substr(6, canonical.size() - 7), /*optional=*/true, {}, item,
                      inner);
    AppendSchema(out, field, "array", optional, inner);
    return;
  }
  if (canonical.starts_with("other:") && std::find(kGeometryTypes.begin(), kGeometryTypes.end(),
                                                   canonical.substr(6)) != kGeometryTypes.end()) {
    // Debezium's Geometry: {"wkb": base64, "srid": n}.
    const std::string inner = StructFields([](std::string& fields) {
      AppendPrimitive("bytes", /*optional=*/false, "wkb", fields);
      fields.push_back(',');
      AppendPrimitive("int32", /*optional=*/true, "srid", fields);
    });
    AppendSchema(out, field, "struct", optional, inner, "io.debezium.data.geometry.Geometry", 1);
    return;
  }
  // Everything else is text: decimals (exact digits), strings, dates and times (ISO 8601),
  // json (and arrays of it, whole), and types without a mapping. A value the envelope writes as
  // raw JSON is written as a string holding that JSON, so the field is always a string.
  column.quote_raw = true;
  if (canonical == "json" || canonical.starts_with("array<json")) {
    return primitive("string", "io.debezium.data.Json");
  }
  primitive("string");
}

std::string SourceSchemaName(const TableSchema& table) {
  return "io.debezium.connector." + table.connector + ".Source";
}

// The source block exactly as EnvelopeWriter writes it for `table`'s connector.
void AppendSourceSchema(const TableSchema& table, std::string& out) {
  const std::string inner = StructFields([&](std::string& f) {
    AppendPrimitive("string", false, "version", f);
    f.push_back(',');
    AppendPrimitive("string", false, "connector", f);
    f.push_back(',');
    AppendPrimitive("string", false, "name", f);
    f.push_back(',');
    AppendPrimitive("int64", false, "ts_ms", f);
    f.push_back(',');
    AppendPrimitive("int64", true, "ts_us", f);
    f.push_back(',');
    AppendSchema(f, "snapshot", "string", true, {}, "io.debezium.data.Enum", 1, kSnapshotTail);
    f.push_back(',');
    AppendPrimitive("string", false, "db", f);
    if (table.connector == "postgresql") {
      f.push_back(',');
      AppendPrimitive("string", true, "sequence", f);
      f.push_back(',');
      AppendPrimitive("string", false, "schema", f);
      f.push_back(',');
      AppendPrimitive("string", false, "table", f);
      f.push_back(',');
      AppendPrimitive("int64", true, "txId", f);
      f.push_back(',');
      AppendPrimitive("int64", true, "lsn", f);
      f.push_back(',');
      AppendPrimitive("int64", true, "xmin", f);
    } else if (table.connector == "mysql" || table.connector == "mariadb") {
      f.push_back(',');
      AppendPrimitive("string", true, "table", f);
      f.push_back(',');
      AppendPrimitive("int64", false, "server_id", f);
      f.push_back(',');
      AppendPrimitive("string", true, "gtid", f);
      f.push_back(',');
      AppendPrimitive("string", true, "file", f);
      f.push_back(',');
      AppendPrimitive("int64", false, "pos", f);
      f.push_back(',');
      AppendPrimitive("int64", false, "row", f);
      f.push_back(',');
      AppendPrimitive("int64", true, "thread", f);
      f.push_back(',');
      AppendPrimitive("string", true, "query", f);
    } else {
      f.push_back(',');
      AppendPrimitive("string", false, "table", f);
    }
    f.push_back(',');
    AppendPrimitive("int64", false, "schema_version", f);
    f.push_back(',');
    AppendPrimitive("string", false, "position", f);
    f.push_back(',');
    AppendPrimitive("string", true, "masking_policy", f);
  });
  AppendSchema(out, "source", "struct", false, inner, SourceSchemaName(table));
}

// `source`, `op`, `ts_ms` and `ts_us`, each followed by a comma: the fields every value starts
// with after its images.
void AppendSourceOpAndTimes(const TableSchema& table, std::string& f) {
  AppendSourceSchema(table, f);
  f.push_back(',');
  AppendPrimitive("string", false, "op", f);
  f.push_back(',');
  AppendPrimitive("int64", true, "ts_ms", f);
  f.push_back(',');
  AppendPrimitive("int64", true, "ts_us", f);
  f.push_back(',');
}

// A struct of (name, type, optional) string/boolean/int fields, used by the schema-change value.
struct PlainField {
  std::string_view name;
  std::string_view type;
  bool optional = false;
};

template <size_t N>
std::string PlainStruct(const std::array<PlainField, N>& fields) {
  return StructFields([&](std::string& f) {
    for (size_t i = 0; i < N; ++i) {
      if (i > 0) f.push_back(',');
      if (fields[i].type == "array<string>") {
        AppendSchema(f, fields[i].name, "array", fields[i].optional, ArrayItems("string"));
      } else {
        AppendPrimitive(fields[i].type, fields[i].optional, fields[i].name, f);
      }
    }
  });
}

}  // namespace

ConnectSchemas BuildConnectSchemas(const TableSchema& table, std::string_view topic) {
  ConnectSchemas schemas;
  schemas.columns.resize(table.columns.size());
  const bool postgres = table.connector == "postgresql";
  const std::string topic_text(topic);

  // PostgreSQL's before images under REPLICA IDENTITY DEFAULT hold null for every non-key
  // column, so those fields are optional whatever the column's nullability.
  std::string value_fields = StructFields([&](std::string& f) {
    for (size_t i = 0; i < table.columns.size(); ++i) {
      const ColumnSchema& column = table.columns[i];
      if (i > 0) f.push_back(',');
      AppendValueSchema(column.canonical_type, column.nullable || (postgres && !column.key),
                        column.name, schemas.columns[i], f);
    }
  });
  const std::string value_name = topic_text + ".Value";

  std::string& envelope = schemas.value;
  const std::string envelope_fields = StructFields([&](std::string& f) {
    AppendSchema(f, "before", "struct", true, value_fields, value_name, table.version);
    f.push_back(',');
    AppendSchema(f, "after", "struct", true, value_fields, value_name, table.version);
    f.push_back(',');
    AppendSourceOpAndTimes(table, f);
    const std::string block = PlainStruct(std::array<PlainField, 3>{
        {{"id", "string"}, {"total_order", "int64"}, {"data_collection_order", "int64"}}});
    AppendSchema(f, "transaction", "struct", true, block, "event.block", 1);
  });
  AppendSchema(envelope, {}, "struct", false, envelope_fields, topic_text + ".Envelope",
               table.version);

  const bool has_key = std::any_of(table.columns.begin(), table.columns.end(),
                                   [](const ColumnSchema& c) { return c.key; });
  if (has_key) {
    const std::string key_fields = StructFields([&](std::string& f) {
      bool first = true;
      for (size_t i = 0; i < table.columns.size(); ++i) {
        const ColumnSchema& column = table.columns[i];
        if (!column.key) continue;
        if (!first) f.push_back(',');
        first = false;
        ConnectColumn ignored;
        AppendValueSchema(column.canonical_type, column.nullable, column.name, ignored, f);
      }
    });
    AppendSchema(schemas.key, {}, "struct", false, key_fields, topic_text + ".Key");
  }
  return schemas;
}

std::string SchemaChangeKeyConnectSchema() {
  std::string out;
  AppendSchema(out, {}, "struct", false,
               PlainStruct(std::array<PlainField, 2>{{{"source", "string"}, {"table", "string"}}}),
               "io.tributary.SchemaChangeKey");
  return out;
}

std::string SchemaChangeValueConnectSchema(const TableSchema& table) {
  const std::string debezium_column =
      PlainStruct(std::array<PlainField, 4>{{{"name", "string"},
                                             {"typeName", "string"},
                                             {"position", "int32"},
                                             {"optional", "boolean"}}});
  std::string debezium_table = StructFields([&](std::string& f) {
    AppendSchema(f, "primaryKeyColumnNames", "array", false, ArrayItems("string"));
    f.push_back(',');
    std::string items = ",\"items\":";
    AppendSchema(items, {}, "struct", false, debezium_column,
                 "io.debezium.connector.schema.Column");
    AppendSchema(f, "columns", "array", false, items);
  });
  const std::string change = StructFields([&](std::string& f) {
    AppendPrimitive("string", false, "type", f);
    f.push_back(',');
    AppendPrimitive("string", false, "id", f);
    f.push_back(',');
    AppendSchema(f, "table", "struct", false, debezium_table, "io.debezium.connector.schema.Table");
  });
  const std::string column = PlainStruct(std::array<PlainField, 6>{{{"name", "string"},
                                                                    {"type", "string"},
                                                                    {"canonical_type", "string"},
                                                                    {"nullable", "boolean"},
                                                                    {"key", "boolean"},
                                                                    {"position", "int32"}}});
  const std::string fields = StructFields([&](std::string& f) {
    AppendSourceSchema(table, f);
    f.push_back(',');
    AppendPrimitive("string", false, "databaseName", f);
    f.push_back(',');
    AppendPrimitive("string", true, "schemaName", f);
    f.push_back(',');
    AppendPrimitive("string", true, "ddl", f);
    f.push_back(',');
    std::string items = ",\"items\":";
    AppendSchema(items, {}, "struct", false, change, "io.debezium.connector.schema.Change");
    AppendSchema(f, "tableChanges", "array", false, items);
    f.push_back(',');
    AppendPrimitive("string", false, "table", f);
    f.push_back(',');
    AppendPrimitive("int64", false, "version", f);
    f.push_back(',');
    AppendPrimitive("int64", false, "previous_version", f);
    f.push_back(',');
    AppendPrimitive("boolean", false, "compatible", f);
    f.push_back(',');
    AppendSchema(f, "problems", "array", false, ArrayItems("string"));
    f.push_back(',');
    AppendPrimitive("boolean", false, "dropped", f);
    f.push_back(',');
    std::string column_items = ",\"items\":";
    AppendSchema(column_items, {}, "struct", false, column, "io.tributary.schema.Column");
    AppendSchema(f, "columns", "array", false, column_items);
    f.push_back(',');
    AppendSchema(f, "primary_key", "array", false, ArrayItems("string"));
    f.push_back(',');
    AppendPrimitive("string", false, "position", f);
    f.push_back(',');
    AppendPrimitive("int64", false, "ts_ms", f);
  });
  std::string out;
  AppendSchema(out, {}, "struct", false, fields, "io.tributary.SchemaChangeValue", 1);
  return out;
}

std::string MessageKeyConnectSchema(const TableSchema& table) {
  std::string out;
  AppendSchema(out, {}, "struct", false,
               PlainStruct(std::array<PlainField, 1>{{{"prefix", "string"}}}),
               "io.debezium.connector." + table.connector + ".MessageKey");
  return out;
}

std::string MessageValueConnectSchema(const TableSchema& table) {
  const std::string message =
      PlainStruct(std::array<PlainField, 2>{{{"prefix", "string"}, {"content", "bytes"}}});
  const std::string fields = StructFields([&](std::string& f) {
    AppendSourceOpAndTimes(table, f);
    AppendSchema(f, "message", "struct", false, message,
                 "io.debezium.connector." + table.connector + ".Message");
  });
  std::string out;
  AppendSchema(out, {}, "struct", false, fields,
               "io.debezium.connector." + table.connector + ".MessageValue");
  return out;
}

}  // namespace tributary
