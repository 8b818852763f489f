#define BOOST_TEST_MODULE envelope_writer_test
#include "agent/core/envelope_writer.h"

#include <boost/test/unit_test.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "agent/core/event.h"
#include "agent/transforms/masking_transform.h"

namespace tributary {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr int64_t kNowUs = 1706708700123456;
constexpr int64_t kCommitUs = 1706708700000789;

std::shared_ptr<TableSchema> Customers() {
  auto schema = std::make_shared<TableSchema>();
  schema->connector = "postgresql";
  schema->source = "shop";
  schema->database = "shopdb";
  schema->schema = "public";
  schema->table = "customers";
  schema->columns = {
      {.name = "id", .type_name = "int4", .type_oid = 23, .key = true, .canonical_type = "int32"},
      {.name = "name", .type_name = "text", .type_oid = 25, .canonical_type = "string"},
      {.name = "doc", .type_name = "jsonb", .type_oid = 3802, .canonical_type = "json"}};
  schema->version = 3;
  return schema;
}

struct Row {
  Value id;
  Value name;
  Value doc;
};

uint32_t AddRow(Batch& batch, const Row& row) {
  const auto first = static_cast<uint32_t>(batch.values.size());
  batch.values.push_back(row.id);
  batch.values.push_back(row.name);
  batch.values.push_back(row.doc);
  return first;
}

Event MakeEvent(Batch& batch, const std::shared_ptr<TableSchema>& schema, Op op) {
  Event event;
  event.op = op;
  event.table = batch.Retain(schema);
  event.meta.commit_ts_us = kCommitUs;
  event.meta.commit_lsn = 23803720;
  event.meta.lsn = 23803584;
  event.meta.txid = 771;
  event.meta.sequence = 0;
  event.position = batch.AddValue(ValueKind::kString, "00000000016B3748/00000000016B36C0/00000000");
  return event;
}

std::string WriteLine(const Batch& batch, const Event& event) {
  EnvelopeWriter writer;
  std::string line;
  writer.Write(batch, event, kNowUs, line);
  BOOST_REQUIRE(line.find('\n') == std::string::npos);
  return line;
}

std::string WriteKeyText(const Batch& batch, const Event& event) {
  EnvelopeWriter writer;
  std::string key;
  writer.WriteKey(batch, event, key);
  return key;
}

BOOST_AUTO_TEST_CASE(insert_envelope_is_exactly_debezium_shaped) {
  Batch batch;
  auto schema = Customers();
  Event event = MakeEvent(batch, schema, Op::kCreate);
  event.after = AddRow(
      batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "Ann"),
              batch.AddValue(ValueKind::kRaw, "{\"a\": [1, 2]}")});
  const std::string line = WriteLine(batch, event);
  const std::string expected =
      R"({"before":null,"after":{"id":1,"name":"Ann","doc":{"a": [1, 2]}},)"
      R"("source":{"version":")" TRIBUTARY_VERSION
      R"(","connector":"postgresql","name":"shop","ts_ms":1706708700000,)"
      R"("ts_us":1706708700000789,"snapshot":"false","db":"shopdb",)"
      R"("sequence":"[\"23803720\",\"23803584\"]","schema":"public","table":"customers",)"
      R"("txId":771,"lsn":23803584,"xmin":null,"schema_version":3,)"
      R"("position":"00000000016B3748/00000000016B36C0/00000000"},)"
      R"("op":"c","ts_ms":1706708700123,"ts_us":1706708700123456,"transaction":null})";
  BOOST_TEST(line == expected);

  // Field order is part of the contract: check it independently of the golden text.
  const ordered_json parsed = ordered_json::parse(line);
  std::vector<std::string> keys;
  for (const auto& item : parsed.items()) keys.push_back(item.key());
  BOOST_TEST(keys == (std::vector<std::string>{"before", "after", "source", "op", "ts_ms", "ts_us",
                                               "transaction"}),
             boost::test_tools::per_element());
  std::vector<std::string> source_keys;
  for (const auto& item : parsed["source"].items()) source_keys.push_back(item.key());
  BOOST_TEST(source_keys ==
                 (std::vector<std::string>{"version", "connector", "name", "ts_ms", "ts_us",
                                           "snapshot", "db", "sequence", "schema", "table", "txId",
                                           "lsn", "xmin", "schema_version", "position"}),
             boost::test_tools::per_element());
  BOOST_TEST(json::parse(parsed["source"]["sequence"].get<std::string>()) ==
             json::parse(R"(["23803720","23803584"])"));
}

BOOST_AUTO_TEST_CASE(update_and_delete_carry_their_images) {
  Batch batch;
  auto schema = Customers();
  Event update = MakeEvent(batch, schema, Op::kUpdate);
  update.before = AddRow(
      batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "Ann"),
              batch.AddValue(ValueKind::kNull, "")});
  update.after = AddRow(
      batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "Bea"),
              batch.AddValue(ValueKind::kUnavailable, "")});
  const json u = json::parse(WriteLine(batch, update));
  BOOST_TEST(u["op"] == "u");
  BOOST_TEST(u["before"] == json::parse(R"({"id":1,"name":"Ann","doc":null})"));
  BOOST_TEST(u["after"] ==
             json::parse(R"({"id":1,"name":"Bea","doc":"__debezium_unavailable_value"})"));

  Event del = MakeEvent(batch, schema, Op::kDelete);
  del.before =
      AddRow(batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kNull, ""),
                     batch.AddValue(ValueKind::kNull, "")});
  const json d = json::parse(WriteLine(batch, del));
  BOOST_TEST(d["op"] == "d");
  BOOST_TEST(d["before"] == json::parse(R"({"id":1,"name":null,"doc":null})"));
  BOOST_TEST(d["after"].is_null());
}

BOOST_AUTO_TEST_CASE(truncate_has_no_images) {
  Batch batch;
  auto schema = Customers();
  Event event = MakeEvent(batch, schema, Op::kTruncate);
  event.after =
      AddRow(batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "x"),
                     batch.AddValue(ValueKind::kNull, "")});
  const json t = json::parse(WriteLine(batch, event));
  BOOST_TEST(t["op"] == "t");
  BOOST_TEST(t["before"].is_null());
  BOOST_TEST(t["after"].is_null());
  BOOST_TEST(t["source"]["table"] == "customers");
  BOOST_TEST(WriteKeyText(batch, event) == "null");
}

BOOST_AUTO_TEST_CASE(snapshot_reads_say_so_and_missing_lsns_are_null) {
  Batch batch;
  auto schema = Customers();
  Event event = MakeEvent(batch, schema, Op::kRead);
  event.meta.commit_lsn = 0;
  event.meta.lsn = 0;
  event.meta.txid = 0;
  event.meta.snapshot = SnapshotMark::kTrue;
  event.after =
      AddRow(batch, {batch.AddValue(ValueKind::kRaw, "2"), batch.AddValue(ValueKind::kString, "y"),
                     batch.AddValue(ValueKind::kNull, "")});
  const json r = json::parse(WriteLine(batch, event));
  BOOST_TEST(r["op"] == "r");
  BOOST_TEST(r["source"]["snapshot"] == "true");
  BOOST_TEST(r["source"]["sequence"] == "[null,null]");
  BOOST_TEST(r["source"]["lsn"].is_null());
  BOOST_TEST(r["source"]["txId"].is_null());

  const std::pair<SnapshotMark, const char*> marks[] = {{SnapshotMark::kFirst, "first"},
                                                        {SnapshotMark::kLast, "last"},
                                                        {SnapshotMark::kIncremental, "incremental"},
                                                        {SnapshotMark::kFalse, "false"}};
  for (const auto& [mark, text] : marks) {
    event.meta.snapshot = mark;
    BOOST_TEST(json::parse(WriteLine(batch, event))["source"]["snapshot"] == text);
  }
}

BOOST_AUTO_TEST_CASE(strings_stay_valid_json_on_one_line) {
  const std::vector<std::string> texts = {
      "say \"hi\"",
      "back\\slash",
      "line\nbreak\r\n",
      std::string("nul\0byte", 8),
      "\x01\x02\x1f\x7f",
      "tab\there",
      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
      "\xe2\x80\xa8 line separator",
      "</script>",
  };
  auto schema = Customers();
  for (const std::string& text : texts) {
    Batch batch;
    Event event = MakeEvent(batch, schema, Op::kCreate);
    event.after = AddRow(
        batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, text),
                batch.AddValue(ValueKind::kNull, "")});
    const std::string line = WriteLine(batch, event);
    BOOST_TEST(line.find('\r') == std::string::npos);
    BOOST_TEST(json::parse(line)["after"]["name"].get<std::string>() == text);
  }
}

BOOST_AUTO_TEST_CASE(json_strings_escape_only_what_json_requires) {
  static constexpr char kText[] = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk\0l";
  std::string out = "x";
  AppendJsonString(std::string_view(kText, sizeof(kText) - 1), out);
  BOOST_TEST(out == "x\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\x7fk\\u0000l\"");
  out.clear();
  AppendJsonString("\xc3\xa9/\xf0\x9f\x98\x80", out);
  BOOST_TEST(out == "\"\xc3\xa9/\xf0\x9f\x98\x80\"");
  out.clear();
  AppendJsonString("", out);
  BOOST_TEST(out == "\"\"");
}

// The writer checks eight bytes at a time: every byte value, at every place in strings of
// every length around the word and short-string boundaries, is escaped exactly when JSON
// requires it, and round-trips.
BOOST_AUTO_TEST_CASE(json_strings_escape_every_byte_at_every_offset) {
  std::string out;
  for (size_t length : {1u, 7u, 8u, 9u, 16u, 23u, 62u, 63u, 70u}) {
    for (size_t at = 0; at < length; ++at) {
      for (int byte = 0; byte < 0x80; ++byte) {
        std::string text(length, 'a');
        text[at] = static_cast<char>(byte);
        out.clear();
        AppendJsonString(text, out);
        const bool escaped = byte < 0x20 || byte == '"' || byte == '\\';
        BOOST_TEST_REQUIRE(
            (out.size() == length + 2 +
                               (escaped ? (byte < 0x20 && byte != '\b' && byte != '\f' &&
                                                   byte != '\n' && byte != '\r' && byte != '\t'
                                               ? 5
                                               : 1)
                                        : 0)),
            "length " << length << " at " << at << " byte " << byte);
        BOOST_TEST_REQUIRE(json::parse(out).get<std::string>() == text);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(column_names_are_escaped) {
  Batch batch;
  auto schema = Customers();
  schema->columns[1].name = "we\"ird\nname";
  Event event = MakeEvent(batch, schema, Op::kCreate);
  event.after =
      AddRow(batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "v"),
                     batch.AddValue(ValueKind::kNull, "")});
  BOOST_TEST(json::parse(WriteLine(batch, event))["after"]["we\"ird\nname"] == "v");
}

BOOST_AUTO_TEST_CASE(keys_are_the_key_columns) {
  Batch batch;
  auto schema = Customers();
  Event insert = MakeEvent(batch, schema, Op::kCreate);
  insert.after = AddRow(
      batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "Ann"),
              batch.AddValue(ValueKind::kNull, "")});
  BOOST_TEST(WriteKeyText(batch, insert) == R"({"id":1})");

  Event del = MakeEvent(batch, schema, Op::kDelete);
  del.before =
      AddRow(batch, {batch.AddValue(ValueKind::kRaw, "9"), batch.AddValue(ValueKind::kNull, ""),
                     batch.AddValue(ValueKind::kNull, "")});
  BOOST_TEST(WriteKeyText(batch, del) == R"({"id":9})");

  auto composite = Customers();
  composite->columns[1].key = true;
  Event both = MakeEvent(batch, composite, Op::kUpdate);
  both.after = AddRow(
      batch, {batch.AddValue(ValueKind::kRaw, "2"), batch.AddValue(ValueKind::kString, "k\"2"),
              batch.AddValue(ValueKind::kRaw, "{}")});
  BOOST_TEST(WriteKeyText(batch, both) == R"({"id":2,"name":"k\"2"})");

  auto keyless = Customers();
  keyless->columns[0].key = false;
  Event none = MakeEvent(batch, keyless, Op::kCreate);
  none.after = insert.after;
  BOOST_TEST(WriteKeyText(batch, none) == "null");
}

BOOST_AUTO_TEST_CASE(writer_is_reusable_and_appends) {
  Batch batch;
  auto schema = Customers();
  Event first = MakeEvent(batch, schema, Op::kCreate);
  first.after =
      AddRow(batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "a"),
                     batch.AddValue(ValueKind::kNull, "")});
  Event second = MakeEvent(batch, schema, Op::kCreate);
  second.after =
      AddRow(batch, {batch.AddValue(ValueKind::kRaw, "2"), batch.AddValue(ValueKind::kString, "b"),
                     batch.AddValue(ValueKind::kNull, "")});
  EnvelopeWriter writer;
  std::string out = "head|";
  writer.Write(batch, first, kNowUs, out);
  out.push_back('\n');
  writer.WriteKey(batch, second, out);
  out.push_back('\n');
  writer.Write(batch, second, kNowUs, out);
  BOOST_REQUIRE(out.rfind("head|", 0) == 0);
  const std::string body = out.substr(5);
  const size_t first_newline = body.find('\n');
  const size_t second_newline = body.find('\n', first_newline + 1);
  BOOST_REQUIRE(second_newline != std::string::npos);
  BOOST_TEST(json::parse(body.substr(0, first_newline))["after"]["id"] == 1);
  BOOST_TEST(body.substr(first_newline + 1, second_newline - first_newline - 1) == R"({"id":2})");
  BOOST_TEST(json::parse(body.substr(second_newline + 1))["after"]["id"] == 2);
}

// Table and column names are rendered once per table version and kept: one writer serves
// events of many versions, alternating, and of a version the batch does not hold.
BOOST_AUTO_TEST_CASE(each_table_version_keeps_its_own_names) {
  Batch batch;
  auto customers = Customers();
  auto renamed = Customers();
  renamed->table = "clients";
  renamed->columns[1].name = "full \"name\"";
  renamed->version = 4;
  auto add_event = [&](const std::shared_ptr<TableSchema>& schema, const char* id) {
    Event event = MakeEvent(batch, schema, Op::kCreate);
    event.after =
        AddRow(batch, {batch.AddValue(ValueKind::kRaw, id), batch.AddValue(ValueKind::kString, "n"),
                       batch.AddValue(ValueKind::kNull, "")});
    return event;
  };
  std::vector<Event> events = {add_event(customers, "1"), add_event(renamed, "2"),
                               add_event(customers, "3")};
  Event unheld = add_event(renamed, "4");
  TableSchema copy = *renamed;
  copy.table = "not_held";
  unheld.table = &copy;
  events.push_back(unheld);
  events.push_back(add_event(renamed, "5"));

  EnvelopeWriter writer;
  std::vector<std::string> tables;
  std::vector<bool> renamed_column;
  for (const Event& event : events) {
    std::string line;
    writer.Write(batch, event, kNowUs, line);
    const json envelope = json::parse(line);
    tables.push_back(envelope["source"]["table"]);
    renamed_column.push_back(envelope["after"].contains("full \"name\""));
    BOOST_TEST(envelope["after"].contains("name") != renamed_column.back());
  }
  BOOST_TEST(tables == (std::vector<std::string>{"customers", "clients", "customers", "not_held",
                                                 "clients"}),
             boost::test_tools::per_element());
  BOOST_TEST(renamed_column == (std::vector<bool>{false, true, false, true, true}),
             boost::test_tools::per_element());
}

// The writer keeps each table's last source block and reuses it while the next event's source
// members match: a reused writer must write every event exactly as a fresh one does, whichever
// member changes between events, and across batches whose texts sit at the same offsets.
BOOST_AUTO_TEST_CASE(a_reused_writer_writes_each_source_block_afresh_when_it_changes) {
  auto binlog = Customers();
  binlog->connector = "mariadb";
  binlog->schema.clear();
  auto postgres = Customers();
  using Change = std::function<void(Batch&, Event&)>;
  // What changes, which connectors write it ("" for both, or none for "nothing"), and how.
  struct Case {
    std::string name;
    std::string written_by;
    Change change;
  };
  const std::vector<Case> changes = {
      {"nothing", "none", [](Batch&, Event&) {}},
      {"row", "mariadb", [](Batch&, Event& e) { e.meta.binlog_row = 7; }},
      {"pos", "mariadb", [](Batch&, Event& e) { e.meta.binlog_pos = 4096; }},
      {"server_id", "mariadb", [](Batch&, Event& e) { e.meta.server_id = 2; }},
      {"thread", "mariadb", [](Batch&, Event& e) { e.meta.thread_id = 0; }},
      {"gtid text", "mariadb",
       [](Batch& b, Event& e) { e.meta.gtid = b.AddValue(ValueKind::kString, "0-1-8"); }},
      {"gtid null", "mariadb", [](Batch&, Event& e) { e.meta.gtid = Value{}; }},
      {"file", "mariadb",
       [](Batch& b, Event& e) { e.meta.binlog_file = b.AddValue(ValueKind::kString, "b.2"); }},
      {"commit time", "", [](Batch&, Event& e) { e.meta.commit_ts_us += 1000; }},
      {"snapshot", "", [](Batch&, Event& e) { e.meta.snapshot = SnapshotMark::kLast; }},
      {"lsn", "postgresql", [](Batch&, Event& e) { e.meta.lsn += 8; }},
      {"commit lsn", "postgresql", [](Batch&, Event& e) { e.meta.commit_lsn += 8; }},
      {"txid", "postgresql", [](Batch&, Event& e) { e.meta.txid = 0; }},
      {"position", "",
       [](Batch& b, Event& e) { e.position = b.AddValue(ValueKind::kString, "p2"); }},
  };
  for (const auto& schema : {binlog, postgres}) {
    EnvelopeWriter reused;
    for (const auto& [name, written_by, change] : changes) {
      BOOST_TEST_CONTEXT(schema->connector << ", " << name << " changed") {
        // A batch of its own each time, filled the same way: the same texts at the same offsets
        // unless the change adds one.
        Batch batch;
        Event event = MakeEvent(batch, schema, Op::kCreate);
        event.meta.server_id = 1;
        event.meta.thread_id = 12;
        event.meta.binlog_pos = 1198;
        event.meta.binlog_row = 3;
        event.meta.gtid = batch.AddValue(ValueKind::kString, "0-1-5");
        event.meta.binlog_file = batch.AddValue(ValueKind::kString, "b.1");
        event.after = AddRow(
            batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "a"),
                    batch.AddValue(ValueKind::kNull, "")});
        std::string before_change;
        reused.Write(batch, event, kNowUs, before_change);
        BOOST_TEST(before_change == WriteLine(batch, event));
        change(batch, event);
        std::string after_change;
        reused.Write(batch, event, kNowUs, after_change);
        BOOST_TEST(after_change == WriteLine(batch, event));
        const bool written = written_by.empty() || written_by == schema->connector;
        BOOST_TEST((after_change != before_change) == written);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(other_connectors_get_common_source_fields) {
  Batch batch;
  auto schema = Customers();
  schema->connector = "mysql";
  schema->schema.clear();
  Event event = MakeEvent(batch, schema, Op::kCreate);
  event.after =
      AddRow(batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "a"),
                     batch.AddValue(ValueKind::kNull, "")});
  const json source = json::parse(WriteLine(batch, event))["source"];
  BOOST_TEST(source["connector"] == "mysql");
  BOOST_TEST(source["db"] == "shopdb");
  BOOST_TEST(source["table"] == "customers");
  BOOST_TEST(source["schema_version"] == 3);
  BOOST_TEST(!source.contains("lsn"));
  BOOST_TEST(!source.contains("sequence"));
}

// A registered version of Customers(): what the schema registry hands the pipeline.
std::shared_ptr<TableSchema> CustomersVersion(uint32_t version, uint32_t previous_version) {
  auto schema = Customers();
  schema->columns[0].nullable = false;
  schema->columns[0].canonical_type = "int32";
  schema->columns[1].canonical_type = "string";
  schema->columns[2].canonical_type = "json";
  schema->relation_id = 16384;
  schema->version = version;
  schema->previous_version = previous_version;
  return schema;
}

Event MakeSchemaChange(Batch& batch, const std::shared_ptr<TableSchema>& schema) {
  Event event = MakeEvent(batch, schema, Op::kSchemaChange);
  return event;
}

std::string WriteSchemaChangeText(const Batch& batch, const Event& event) {
  EnvelopeWriter writer;
  std::string line;
  writer.WriteSchemaChange(batch, event, line);
  BOOST_REQUIRE(line.find('\n') == std::string::npos);
  return line;
}

BOOST_AUTO_TEST_CASE(schema_change_event_carries_debezium_and_registry_fields) {
  Batch batch;
  auto schema = CustomersVersion(2, 1);
  schema->compatible = false;
  schema->problems = {"column email dropped", "column \"x\" narrowed from int64 to int32"};
  const Event event = MakeSchemaChange(batch, schema);
  const ordered_json change = ordered_json::parse(WriteSchemaChangeText(batch, event));

  std::vector<std::string> keys;
  for (const auto& item : change.items()) keys.push_back(item.key());
  BOOST_TEST(keys == (std::vector<std::string>{
                         "source", "databaseName", "schemaName", "ddl", "tableChanges", "table",
                         "version", "previous_version", "compatible", "problems", "dropped",
                         "columns", "primary_key", "position", "ts_ms"}),
             boost::test_tools::per_element());
  // The source block is the row events' one, with the new version.
  BOOST_TEST(change["source"]["connector"] == "postgresql");
  BOOST_TEST(change["source"]["name"] == "shop");
  BOOST_TEST(change["source"]["db"] == "shopdb");
  BOOST_TEST(change["source"]["schema"] == "public");
  BOOST_TEST(change["source"]["table"] == "customers");
  BOOST_TEST(change["source"]["schema_version"] == 2);
  BOOST_TEST(change["source"]["position"] == "00000000016B3748/00000000016B36C0/00000000");
  BOOST_TEST(change["databaseName"] == "shopdb");
  BOOST_TEST(change["schemaName"] == "public");
  BOOST_TEST(change["ddl"].is_null());

  BOOST_TEST_REQUIRE(change["tableChanges"].size() == 1u);
  const ordered_json& table_change = change["tableChanges"][0];
  BOOST_TEST(table_change["type"] == "ALTER");
  BOOST_TEST(table_change["id"] == R"("shopdb"."public"."customers")");
  BOOST_TEST(table_change["table"]["primaryKeyColumnNames"] == json::parse(R"(["id"])"));
  BOOST_TEST(json(table_change["table"]["columns"]) == json::parse(R"([
      {"name":"id","typeName":"int4","position":1,"optional":false},
      {"name":"name","typeName":"text","position":2,"optional":true},
      {"name":"doc","typeName":"jsonb","position":3,"optional":true}])"));

  BOOST_TEST(change["table"] == "public.customers");
  BOOST_TEST(change["version"] == 2);
  BOOST_TEST(change["previous_version"] == 1);
  BOOST_TEST(change["compatible"] == false);
  BOOST_TEST(
      json(change["problems"]) ==
      json::parse(R"(["column email dropped","column \"x\" narrowed from int64 to int32"])"));
  BOOST_TEST(change["dropped"] == false);
  BOOST_TEST(json(change["columns"]) == json::parse(R"([
      {"name":"id","type":"int4","canonical_type":"int32","nullable":false,"key":true,"position":1},
      {"name":"name","type":"text","canonical_type":"string","nullable":true,"key":false,"position":2},
      {"name":"doc","type":"jsonb","canonical_type":"json","nullable":true,"key":false,"position":3}])"));
  BOOST_TEST(change["primary_key"] == json::parse(R"(["id"])"));
  BOOST_TEST(change["position"] == "00000000016B3748/00000000016B36C0/00000000");
  BOOST_TEST(change["ts_ms"] == kCommitUs / 1000);
}

BOOST_AUTO_TEST_CASE(schema_change_type_follows_the_version) {
  Batch batch;
  auto first = CustomersVersion(1, 0);
  auto second = CustomersVersion(2, 1);
  auto dropped = CustomersVersion(3, 2);
  dropped->dropped = true;
  BOOST_TEST(json::parse(WriteSchemaChangeText(
                 batch, MakeSchemaChange(batch, first)))["tableChanges"][0]["type"] == "CREATE");
  BOOST_TEST(json::parse(WriteSchemaChangeText(
                 batch, MakeSchemaChange(batch, second)))["tableChanges"][0]["type"] == "ALTER");
  const json drop = json::parse(WriteSchemaChangeText(batch, MakeSchemaChange(batch, dropped)));
  BOOST_TEST(drop["tableChanges"][0]["type"] == "DROP");
  BOOST_TEST(drop["dropped"] == true);
  BOOST_TEST(drop["version"] == 3);
}

BOOST_AUTO_TEST_CASE(mysql_schema_change_has_no_schema_and_keeps_the_ddl_text) {
  Batch batch;
  auto schema = CustomersVersion(4, 3);
  schema->connector = "mariadb";
  schema->schema.clear();
  schema->ddl = "ALTER TABLE `customers`\n  ADD COLUMN \"note\" TEXT COMMENT 'a\\\\b\t\x01'";
  Event event = MakeSchemaChange(batch, schema);
  event.meta.server_id = 1;
  event.meta.binlog_file = batch.AddValue(ValueKind::kString, "binlog.000042");
  event.meta.binlog_pos = 1931;
  const std::string line = WriteSchemaChangeText(batch, event);
  const json change = json::parse(line);
  BOOST_TEST(change["ddl"] == schema->ddl);  // every byte survives the escaping
  BOOST_TEST(change["schemaName"].is_null());
  BOOST_TEST(change["databaseName"] == "shopdb");
  BOOST_TEST(change["table"] == "shopdb.customers");
  BOOST_TEST(change["tableChanges"][0]["id"] == R"("shopdb"."customers")");
  BOOST_TEST(change["source"]["connector"] == "mariadb");
  BOOST_TEST(change["source"]["file"] == "binlog.000042");
  BOOST_TEST(change["source"]["schema_version"] == 4);

  EnvelopeWriter writer;
  std::string key;
  writer.WriteSchemaChangeKey(event, key);
  BOOST_TEST(key == R"({"source":"shop","table":"shopdb.customers"})");
}

BOOST_AUTO_TEST_CASE(schema_change_key_names_source_and_table) {
  Batch batch;
  auto schema = CustomersVersion(1, 0);
  schema->source = "sh\"op";
  const Event event = MakeSchemaChange(batch, schema);
  EnvelopeWriter writer;
  std::string key;
  writer.WriteSchemaChangeKey(event, key);
  BOOST_TEST(json::parse(key) == json::parse(R"({"source":"sh\"op","table":"public.customers"})"));
}

BOOST_AUTO_TEST_CASE(masking_leaves_schema_change_events_alone) {
  MaskingConfig config;
  config.detect = "mask";
  config.rules = {{.columns = "*", .action = "redact"}};
  auto masking = MaskingTransform::Create(config);
  BOOST_REQUIRE(masking.ok());

  Batch batch;
  // A dropped table's schema change may carry no columns at all.
  auto dropped = CustomersVersion(2, 1);
  dropped->dropped = true;
  dropped->columns.clear();
  batch.events.push_back(MakeSchemaChange(batch, dropped));
  auto version = CustomersVersion(3, 2);
  batch.events.push_back(MakeSchemaChange(batch, version));
  Event insert = MakeEvent(batch, version, Op::kCreate);
  insert.after = AddRow(
      batch, {batch.AddValue(ValueKind::kRaw, "1"), batch.AddValue(ValueKind::kString, "Ann"),
              batch.AddValue(ValueKind::kNull, "")});
  batch.events.push_back(insert);
  BOOST_REQUIRE((*masking)->Apply(batch).ok());

  const json change = json::parse(WriteSchemaChangeText(batch, batch.events[1]));
  BOOST_TEST(change["columns"][1]["name"] == "name");
  BOOST_TEST(change["source"]["masking_policy"] == (*masking)->fingerprint());
  BOOST_TEST(json::parse(WriteSchemaChangeText(batch, batch.events[0]))["columns"].empty());
  // The row after them is masked as usual.
  BOOST_TEST(json::parse(WriteLine(batch, batch.events[2]))["after"]["name"] == "[REDACTED]");
}

}  // namespace
}  // namespace tributary
