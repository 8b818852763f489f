#define BOOST_TEST_MODULE connect_form_test
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/core/connect_schema.h"
#include "agent/core/envelope_writer.h"
#include "agent/core/event.h"

namespace tributary {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr int64_t kNowUs = 1706708700123456;
constexpr char kTopic[] = "shop.public.items";

bool IsBase64(const std::string& text) {
  if (text.size() % 4 != 0) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '+' || c == '/';
    if (!alpha && !(c == '=' && i + 2 >= text.size())) return false;
  }
  return true;
}

// Reads `value` against a JsonConverter schema as JsonConverter.toConnect would, and records
// whatever it would reject or silently lose: a null in a required field, a value of another
// JSON type (JsonConverter would read 0 or null), a payload member the schema does not name.
void Check(const json& schema, const json& value, const std::string& path,
           std::vector<std::string>& problems) {
  if (value.is_null()) {
    if (!schema.at("optional").get<bool>()) problems.push_back(path + ": null but required");
    return;
  }
  const std::string type = schema.at("type");
  const std::string name = schema.value("name", "");
  auto expect = [&](bool ok, const char* what) {
    if (!ok) problems.push_back(path + ": not " + what + ": " + value.dump());
  };
  if (name == "org.apache.kafka.connect.data.Decimal") {
    expect(value.is_number_integer() || value.is_number_unsigned(), "an integer (Decimal)");
  } else if (type == "int16") {
    expect(value.is_number_integer() && value.get<int64_t>() >= -32768 &&
               value.get<int64_t>() <= 32767,
           "an int16");
  } else if (type == "int32") {
    expect(value.is_number_integer() && value.get<int64_t>() >= INT32_MIN &&
               value.get<int64_t>() <= INT32_MAX,
           "an int32");
  } else if (type == "int64") {
    expect(value.is_number_integer() &&
               !(value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{INT64_MAX}),
           "an int64");
  } else if (type == "float" || type == "double") {
    expect(value.is_number(), "a number");
  } else if (type == "boolean") {
    expect(value.is_boolean(), "a boolean");
  } else if (type == "string") {
    expect(value.is_string(), "a string");
  } else if (type == "bytes") {
    expect(value.is_string() && IsBase64(value.get<std::string>()), "base64");
  } else if (type == "array") {
    expect(value.is_array(), "an array");
    if (!value.is_array()) return;
    for (size_t i = 0; i < value.size(); ++i) {
      Check(schema.at("items"), value[i], path + "[" + std::to_string(i) + "]", problems);
    }
  } else if (type == "struct") {
    expect(value.is_object(), "an object");
    if (!value.is_object()) return;
    std::vector<std::string> fields;
    for (const json& field : schema.at("fields")) {
      const std::string field_name = field.at("field");
      fields.push_back(field_name);
      Check(field, value.contains(field_name) ? value[field_name] : json(), path + "." + field_name,
            problems);
    }
    for (const auto& item : value.items()) {
      if (std::find(fields.begin(), fields.end(), item.key()) == fields.end()) {
        problems.push_back(path + "." + item.key() +
                           ": not in the schema (JsonConverter drops it)");
      }
    }
  } else {
    problems.push_back(path + ": unknown schema type " + type);
  }
}

std::vector<std::string> Problems(const json& connect) {
  std::vector<std::string> problems;
  BOOST_REQUIRE(connect.contains("schema") && connect.contains("payload"));
  Check(connect["schema"], connect["payload"], "payload", problems);
  return problems;
}

ColumnSchema Column(std::string name, std::string type_name, std::string canonical,
                    bool nullable = true, bool key = false) {
  ColumnSchema column;
  column.name = std::move(name);
  column.type_name = std::move(type_name);
  column.canonical_type = std::move(canonical);
  column.nullable = nullable;
  column.key = key;
  return column;
}

std::shared_ptr<TableSchema> Items() {
  auto table = std::make_shared<TableSchema>();
  table->connector = "postgresql";
  table->source = "shop";
  table->database = "shopdb";
  table->schema = "public";
  table->table = "items";
  table->version = 3;
  table->previous_version = 2;
  table->columns = {Column("id", "int4", "int32", false, true),
                    Column("big", "int8", "int64", false),
                    Column("small", "int2", "int16"),
                    Column("price", "numeric", "decimal(10,2)"),
                    Column("name", "varchar", "string(20)"),
                    Column("data", "bytea", "bytes"),
                    Column("created", "timestamptz", "timestamptz"),
                    Column("day", "date", "date"),
                    Column("doc", "jsonb", "json"),
                    Column("tags", "_text", "array<string>"),
                    Column("ratio", "float8", "float64"),
                    Column("flag", "bool", "boolean"),
                    Column("uid", "uuid", "uuid"),
                    Column("span", "interval", "other:interval")};
  return table;
}

struct Cell {
  ValueKind kind;
  std::string text;
};

uint32_t AddImage(Batch& batch, const std::vector<Cell>& cells) {
  const auto first = static_cast<uint32_t>(batch.values.size());
  for (const Cell& cell : cells) batch.values.push_back(batch.AddValue(cell.kind, cell.text));
  return first;
}

std::vector<Cell> FullRow() {
  return {{ValueKind::kRaw, "7"},
          {ValueKind::kRaw, "-9223372036854775808"},
          {ValueKind::kRaw, "-32768"},
          {ValueKind::kString, "12.50"},
          {ValueKind::kString, "a \"quoted\"\nname"},
          {ValueKind::kString, "AQL/"},
          {ValueKind::kString, "2024-01-31T13:45:00.123400Z"},
          {ValueKind::kString, "2024-01-31"},
          {ValueKind::kRaw, R"({"a":[1,2.50],"b":"x\"y"})"},
          {ValueKind::kRaw, R"(["a",null,"c"])"},
          {ValueKind::kRaw, "1e-07"},
          {ValueKind::kRaw, "true"},
          {ValueKind::kString, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
          {ValueKind::kString, "P1Y2M3DT4H"}};
}

Event MakeEvent(Batch& batch, const std::shared_ptr<TableSchema>& table, Op op) {
  Event event;
  event.op = op;
  event.table = batch.Retain(table);
  event.meta.commit_ts_us = 1706708700000789;
  event.meta.commit_lsn = 23803720;
  event.meta.lsn = 23803584;
  event.meta.txid = 771;
  event.position = batch.AddValue(ValueKind::kString, "00000000016B3748/00000000016B36C0/00000000");
  return event;
}

// The field of struct `schema` named `name`.
json Field(const json& schema, const std::string& name) {
  for (const json& field : schema.at("fields")) {
    if (field.at("field") == name) return field;
  }
  BOOST_FAIL("no field " + name);
  return {};
}

std::vector<std::string> FieldNames(const json& schema) {
  std::vector<std::string> names;
  for (const json& field : schema.at("fields")) names.push_back(field.at("field"));
  return names;
}

BOOST_AUTO_TEST_CASE(row_value_schema_describes_the_envelope) {
  Batch batch;
  auto table = Items();
  Event event = MakeEvent(batch, table, Op::kCreate);
  event.after = AddImage(batch, FullRow());
  const ConnectSchemas schemas = BuildConnectSchemas(*table, kTopic);
  EnvelopeWriter writer;
  std::string connect_text;
  writer.WriteConnect(batch, event, kNowUs, schemas, connect_text);
  BOOST_REQUIRE(connect_text.find('\n') == std::string::npos);
  const json connect = json::parse(connect_text);

  const json& schema = connect["schema"];
  BOOST_TEST(schema["type"] == "struct");
  BOOST_TEST(schema["name"] == "shop.public.items.Envelope");
  BOOST_TEST(schema["version"] == 3);
  BOOST_TEST(schema["optional"] == false);
  BOOST_TEST(FieldNames(schema) == (std::vector<std::string>{"before", "after", "source", "op",
                                                             "ts_ms", "ts_us", "transaction"}),
             boost::test_tools::per_element());
  const json after = Field(schema, "after");
  BOOST_TEST(after["name"] == "shop.public.items.Value");
  BOOST_TEST(after["optional"] == true);
  BOOST_TEST(after["version"] == 3);
  BOOST_TEST(Field(schema, "before")["name"] == after["name"]);
  BOOST_TEST(json(Field(schema, "before")["fields"]) == json(after["fields"]));

  const json expected_fields = json::parse(R"([
    {"type":"int32","optional":false,"field":"id"},
    {"type":"int64","optional":true,"field":"big"},
    {"type":"int16","optional":true,"field":"small"},
    {"type":"string","optional":true,"field":"price"},
    {"type":"string","optional":true,"field":"name"},
    {"type":"bytes","optional":true,"field":"data"},
    {"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","version":1,"field":"created"},
    {"type":"string","optional":true,"field":"day"},
    {"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"doc"},
    {"type":"array","items":{"type":"string","optional":true},"optional":true,"field":"tags"},
    {"type":"double","optional":true,"field":"ratio"},
    {"type":"boolean","optional":true,"field":"flag"},
    {"type":"string","optional":true,"name":"io.debezium.data.Uuid","version":1,"field":"uid"},
    {"type":"string","optional":true,"field":"span"}])");
  BOOST_TEST(after["fields"] == expected_fields);

  const json source = Field(schema, "source");
  BOOST_TEST(source["name"] == "io.debezium.connector.postgresql.Source");
  BOOST_TEST(Field(source, "snapshot")["name"] == "io.debezium.data.Enum");
  BOOST_TEST(Field(schema, "transaction")["optional"] == true);

  // The payload is the plain envelope, except that the json column is a string holding it.
  std::string plain_text;
  writer.Write(batch, event, kNowUs, plain_text);
  json plain = json::parse(plain_text);
  BOOST_TEST(connect["payload"]["after"]["doc"] == R"({"a":[1,2.50],"b":"x\"y"})");
  plain["after"]["doc"] = connect["payload"]["after"]["doc"];
  BOOST_TEST(connect["payload"] == plain);
  // Source fields in the schema are those the writer writes, in the same order.
  std::vector<std::string> written;
  const ordered_json ordered = ordered_json::parse(plain_text);
  for (const auto& item : ordered["source"].items()) {
    written.push_back(item.key());
  }
  std::vector<std::string> declared = FieldNames(source);
  declared.erase(std::remove(declared.begin(), declared.end(), "masking_policy"), declared.end());
  BOOST_TEST(declared == written, boost::test_tools::per_element());

  const std::vector<std::string> problems = Problems(connect);
  BOOST_TEST(problems.empty(), fmt::format("{}", fmt::join(problems, "; ")));
}

BOOST_AUTO_TEST_CASE(key_schema_has_the_key_columns) {
  Batch batch;
  auto table = Items();
  Event event = MakeEvent(batch, table, Op::kDelete);
  event.before = AddImage(batch, FullRow());
  const ConnectSchemas schemas = BuildConnectSchemas(*table, kTopic);
  EnvelopeWriter writer;
  std::string key_text;
  writer.WriteConnectKey(batch, event, schemas, key_text);
  const json key = json::parse(key_text);
  BOOST_TEST(key["schema"] == json::parse(R"({"type":"struct","fields":[
      {"type":"int32","optional":false,"field":"id"}],"optional":false,
      "name":"shop.public.items.Key"})"));
  std::string plain;
  writer.WriteKey(batch, event, plain);
  BOOST_TEST(key["payload"] == json::parse(plain));
  BOOST_TEST(Problems(key).empty());

  // No key columns, or a truncate: a null key, as JsonConverter writes a null schema and value.
  auto keyless = Items();
  for (ColumnSchema& column : keyless->columns) column.key = false;
  const ConnectSchemas keyless_schemas = BuildConnectSchemas(*keyless, kTopic);
  BOOST_TEST(keyless_schemas.key.empty());
  Event keyless_event = MakeEvent(batch, keyless, Op::kCreate);
  keyless_event.after = AddImage(batch, FullRow());
  std::string null_key;
  writer.WriteConnectKey(batch, keyless_event, keyless_schemas, null_key);
  BOOST_TEST(null_key == "null");
  Event truncate = MakeEvent(batch, table, Op::kTruncate);
  null_key.clear();
  writer.WriteConnectKey(batch, truncate, schemas, null_key);
  BOOST_TEST(null_key == "null");
}

BOOST_AUTO_TEST_CASE(partial_before_images_and_unavailable_values_read_back) {
  Batch batch;
  auto table = Items();
  const ConnectSchemas schemas = BuildConnectSchemas(*table, kTopic);
  EnvelopeWriter writer;

  // REPLICA IDENTITY DEFAULT: the delete's before image holds the key only, even for NOT NULL
  // columns.
  Event del = MakeEvent(batch, table, Op::kDelete);
  std::vector<Cell> key_only(table->columns.size(), {ValueKind::kNull, ""});
  key_only[0] = {ValueKind::kRaw, "7"};
  del.before = AddImage(batch, key_only);
  std::string text;
  writer.WriteConnect(batch, del, kNowUs, schemas, text);
  json connect = json::parse(text);
  BOOST_TEST(Problems(connect).empty(), fmt::format("{}", fmt::join(Problems(connect), "; ")));

  // Unchanged TOAST values: the placeholder string, and its bytes (base64) in a bytes column.
  Event update = MakeEvent(batch, table, Op::kUpdate);
  std::vector<Cell> row = FullRow();
  row[4] = {ValueKind::kUnavailable, ""};
  row[5] = {ValueKind::kUnavailable, ""};
  row[8] = {ValueKind::kUnavailable, ""};
  update.after = AddImage(batch, row);
  text.clear();
  writer.WriteConnect(batch, update, kNowUs, schemas, text);
  connect = json::parse(text);
  BOOST_TEST(connect["payload"]["after"]["name"] == "__debezium_unavailable_value");
  BOOST_TEST(connect["payload"]["after"]["data"] == "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==");
  BOOST_TEST(connect["payload"]["after"]["doc"] == "__debezium_unavailable_value");
  BOOST_TEST(Problems(connect).empty(), fmt::format("{}", fmt::join(Problems(connect), "; ")));
}

BOOST_AUTO_TEST_CASE(mysql_types_and_source_read_back) {
  Batch batch;
  auto table = std::make_shared<TableSchema>();
  table->connector = "mariadb";
  table->source = "legacy";
  table->database = "crm";
  table->table = "accounts";
  table->version = 1;
  table->columns = {Column("id", "bigint unsigned", "uint64", false, true),
                    Column("shape", "geometry", "other:geometry"),
                    Column("doc", "json", "json"),
                    Column("year", "year", "other:year"),
                    Column("amount", "decimal", "decimal(20,6)"),
                    Column("tiny", "tinyint", "int16", false)};
  Event event = MakeEvent(batch, table, Op::kCreate);
  event.meta.server_id = 1;
  event.meta.binlog_file = batch.AddValue(ValueKind::kString, "binlog.000042");
  event.meta.binlog_pos = 1931;
  event.after = AddImage(batch, {{ValueKind::kRaw, "18446744073709551615"},
                                 {ValueKind::kRaw, R"({"wkb":"AQEAAAA=","srid":4326})"},
                                 {ValueKind::kRaw, R"({"k":[1,2.5]})"},
                                 {ValueKind::kRaw, "2024"},
                                 {ValueKind::kString, "-12345678901234.567890"},
                                 {ValueKind::kRaw, "-128"}});
  const ConnectSchemas schemas = BuildConnectSchemas(*table, "legacy.crm.accounts");
  EnvelopeWriter writer;
  std::string text;
  writer.WriteConnect(batch, event, kNowUs, schemas, text);
  const json connect = json::parse(text);
  const json after = Field(connect["schema"], "after");
  BOOST_TEST(Field(after, "id")["name"] == "org.apache.kafka.connect.data.Decimal");
  BOOST_TEST(Field(after, "id")["parameters"]["scale"] == "0");
  BOOST_TEST(Field(after, "shape")["name"] == "io.debezium.data.geometry.Geometry");
  BOOST_TEST(Field(after, "year")["type"] == "string");
  BOOST_TEST(Field(connect["schema"], "source")["name"] == "io.debezium.connector.mariadb.Source");
  // The unsigned maximum is still an exact number; a raw value of an unmapped type is a string.
  BOOST_TEST(text.find(R"("id":18446744073709551615)") != std::string::npos);
  BOOST_TEST(connect["payload"]["after"]["year"] == "2024");
  BOOST_TEST(connect["payload"]["after"]["doc"] == R"({"k":[1,2.5]})");
  BOOST_TEST(Problems(connect).empty(), fmt::format("{}", fmt::join(Problems(connect), "; ")));
}

BOOST_AUTO_TEST_CASE(schema_change_events_in_connect_form) {
  for (const char* connector : {"postgresql", "mysql"}) {
    Batch batch;
    auto table = Items();
    table->connector = connector;
    if (std::string(connector) == "mysql") table->schema.clear();
    table->ddl = "ALTER TABLE items\nADD \"x\" int";
    table->compatible = false;
    table->problems = {"column email dropped"};
    Event event = MakeEvent(batch, table, Op::kSchemaChange);
    EnvelopeWriter writer;
    std::string text;
    writer.WriteConnectSchemaChange(batch, event, text);
    const json connect = json::parse(text);
    BOOST_TEST(connect["schema"]["name"] == "io.tributary.SchemaChangeValue");
    std::string plain;
    writer.WriteSchemaChange(batch, event, plain);
    BOOST_TEST(connect["payload"] == json::parse(plain));
    BOOST_TEST(Problems(connect).empty(), fmt::format("{}", fmt::join(Problems(connect), "; ")));

    std::string key_text;
    writer.WriteConnectSchemaChangeKey(event, key_text);
    const json key = json::parse(key_text);
    BOOST_TEST(key["schema"]["name"] == "io.tributary.SchemaChangeKey");
    std::string plain_key;
    writer.WriteSchemaChangeKey(event, plain_key);
    BOOST_TEST(key["payload"] == json::parse(plain_key));
    BOOST_TEST(Problems(key).empty());
  }
}

// Not a benchmark gate: measures what the Connect form costs per event and checks that both
// forms were written for every event.
BOOST_AUTO_TEST_CASE(connect_form_cost_per_event) {
  Batch batch;
  auto table = Items();
  constexpr int kEvents = 20000;
  for (int i = 0; i < kEvents; ++i) {
    Event event = MakeEvent(batch, table, Op::kCreate);
    event.after = AddImage(batch, FullRow());
    batch.events.push_back(event);
  }
  EnvelopeWriter writer;
  const ConnectSchemas schemas = BuildConnectSchemas(*table, kTopic);
  std::string out;
  auto time = [&](bool connect) {
    size_t lines = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int round = 0; round < 5; ++round) {
      for (const Event& event : batch.events) {
        out.clear();
        if (connect) {
          writer.WriteConnectKey(batch, event, schemas, out);
          writer.WriteConnect(batch, event, kNowUs, schemas, out);
        } else {
          writer.WriteKey(batch, event, out);
          writer.Write(batch, event, kNowUs, out);
        }
        lines += out.empty() ? 0 : 1;
      }
    }
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST(lines == 5u * kEvents);
    return ns / (5.0 * kEvents);
  };
  time(false);  // warm up
  const double plain_ns = time(false);
  const size_t plain_bytes = out.size();
  const double connect_ns = time(true);
  const size_t connect_bytes = out.size();
  BOOST_TEST_MESSAGE(fmt::format(
      "key+value per event ({} columns): plain {:.0f} ns {} bytes, schemas: true {:.0f} ns {} "
      "bytes",
      table->columns.size(), plain_ns, plain_bytes, connect_ns, connect_bytes));
  BOOST_TEST(connect_bytes > plain_bytes);
}

}  // namespace
}  // namespace tributary
