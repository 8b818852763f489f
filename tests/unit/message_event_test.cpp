#define BOOST_TEST_MODULE message_event_test
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "agent/core/envelope_writer.h"
#include "agent/core/event.h"
#include "agent/transforms/masking_transform.h"
#include "agent/transforms/transaction_metadata.h"

namespace tributary {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr int64_t kNowUs = 1706708700123456;
constexpr int64_t kCommitUs = 1706708700000789;
// Bytes no JSON string could carry raw: NUL, a byte that is not UTF-8, a newline.
constexpr std::string_view kContent("\0\xff\nhi", 5);
constexpr std::string_view kContentBase64 = "AP8KaGk=";

// The pseudo-table a PostgreSQL source gives its message events.
std::shared_ptr<TableSchema> MessageTable() {
  auto table = std::make_shared<TableSchema>();
  table->connector = "postgresql";
  table->source = "shop";
  table->database = "shopdb";
  table->version = 0;
  return table;
}

std::shared_ptr<TableSchema> Orders() {
  auto table = std::make_shared<TableSchema>();
  table->connector = "postgresql";
  table->source = "shop";
  table->database = "shopdb";
  table->schema = "public";
  table->table = "orders";
  table->columns = {{.name = "id", .type_name = "int4", .key = true, .canonical_type = "int32"},
                    {.name = "note", .type_name = "text", .canonical_type = "string"}};
  return table;
}

// A message as PostgresSource emits it: transactional ones carry the transaction's commit LSN,
// time and xid; non-transactional ones none of these.
Event MakeMessage(Batch& batch, bool transactional, std::string_view position) {
  Event event;
  event.op = Op::kMessage;
  event.table = batch.Retain(MessageTable());
  event.meta.lsn = 23803584;
  event.meta.commit_ts_us = kCommitUs;
  if (transactional) {
    event.meta.commit_lsn = 23803720;
    event.meta.txid = 771;
  }
  event.position = batch.AddValue(ValueKind::kString, position);
  event.after = static_cast<uint32_t>(batch.values.size());
  batch.values.push_back(batch.AddValue(ValueKind::kString, "audit"));
  batch.values.push_back(batch.AddValue(ValueKind::kString, kContent));
  return event;
}

Event MakeRow(Batch& batch, const std::shared_ptr<TableSchema>& table, int id,
              std::string_view position) {
  Event event;
  event.op = Op::kCreate;
  event.table = batch.Retain(table);
  event.meta.commit_ts_us = kCommitUs;
  event.meta.commit_lsn = 23803720;
  event.meta.txid = 771;
  event.position = batch.AddValue(ValueKind::kString, position);
  event.after = static_cast<uint32_t>(batch.values.size());
  batch.values.push_back(batch.AddValue(ValueKind::kRaw, std::to_string(id)));
  batch.values.push_back(batch.AddValue(ValueKind::kString, "secret"));
  return event;
}

BOOST_AUTO_TEST_CASE(transactional_message_is_debezium_shaped) {
  Batch batch;
  const Event event = MakeMessage(batch, true, "00000000016B3748/00000000016B36BF/00000001");
  EnvelopeWriter writer;
  std::string line;
  writer.WriteMessage(batch, event, kNowUs, line);
  BOOST_TEST(line.find('\n') == std::string::npos);
  BOOST_TEST(line == std::string(R"({"source":{"version":")") + TRIBUTARY_VERSION +
                         R"(","connector":"postgresql","name":"shop","ts_ms":1706708700000,)"
                         R"("ts_us":1706708700000789,"snapshot":"false","db":"shopdb",)"
                         R"("sequence":"[\"23803720\",\"23803584\"]","schema":"","table":"",)"
                         R"("txId":771,"lsn":23803584,"xmin":null,"schema_version":0,)"
                         R"("position":"00000000016B3748/00000000016B36BF/00000001"},"op":"m",)"
                         R"("ts_ms":1706708700123,"ts_us":1706708700123456,)"
                         R"("message":{"prefix":"audit","content":"AP8KaGk="}})");
  const ordered_json value = ordered_json::parse(line);
  BOOST_TEST(!value.contains("before"));
  BOOST_TEST(!value.contains("after"));
  BOOST_TEST(!value.contains("transaction"));
  BOOST_TEST(value["message"]["content"] == kContentBase64);

  std::string key;
  writer.WriteMessageKey(batch, event, key);
  BOOST_TEST(key == R"({"prefix":"audit"})");
}

BOOST_AUTO_TEST_CASE(non_transactional_message_has_no_transaction) {
  Batch batch;
  const Event event = MakeMessage(batch, false, "00000000016B36BF/00000000016B36C0/00000000");
  EnvelopeWriter writer;
  std::string line;
  writer.WriteMessage(batch, event, kNowUs, line);
  const json value = json::parse(line);
  BOOST_TEST(value["op"] == "m");
  BOOST_TEST(value["source"]["txId"].is_null());
  BOOST_TEST(value["source"]["sequence"] == R"([null,"23803584"])");
  BOOST_TEST(value["source"]["lsn"] == 23803584);
  BOOST_TEST(value["source"]["position"] == "00000000016B36BF/00000000016B36C0/00000000");
}

BOOST_AUTO_TEST_CASE(connect_form_describes_the_message) {
  Batch batch;
  const Event event = MakeMessage(batch, true, "00000000016B3748/00000000016B36BF/00000001");
  EnvelopeWriter writer;
  std::string plain;
  writer.WriteMessage(batch, event, kNowUs, plain);
  std::string line;
  writer.WriteConnectMessage(batch, event, kNowUs, line);
  const json value = json::parse(line);
  BOOST_TEST(value["payload"] == json::parse(plain));
  const json& schema = value["schema"];
  BOOST_TEST(schema["name"] == "io.debezium.connector.postgresql.MessageValue");
  std::vector<std::string> fields;
  for (const json& field : schema["fields"]) fields.push_back(field["field"]);
  BOOST_TEST(fields == (std::vector<std::string>{"source", "op", "ts_ms", "ts_us", "message"}),
             boost::test_tools::per_element());
  const json& message = schema["fields"][4];
  BOOST_TEST(message["name"] == "io.debezium.connector.postgresql.Message");
  BOOST_TEST(message["fields"][1]["field"] == "content");
  BOOST_TEST(message["fields"][1]["type"] == "bytes");
  // Every source field written is declared.
  std::vector<std::string> declared;
  for (const json& field : schema["fields"][0]["fields"]) declared.push_back(field["field"]);
  for (const auto& item : value["payload"]["source"].items()) {
    BOOST_TEST((std::find(declared.begin(), declared.end(), item.key()) != declared.end()),
               item.key());
  }

  std::string key;
  writer.WriteConnectMessageKey(batch, event, key);
  const json key_json = json::parse(key);
  BOOST_TEST(key_json["payload"] == json::parse(R"({"prefix":"audit"})"));
  BOOST_TEST(key_json["schema"]["name"] == "io.debezium.connector.postgresql.MessageKey");
}

// Masking applies to table columns: a message passes through unchanged and names no policy,
// while the row beside it is masked.
BOOST_AUTO_TEST_CASE(masking_passes_messages_through) {
  MaskingConfig config;
  config.detect = "mask";
  config.rules = {{.columns = "*", .action = "redact"}};
  auto masking = MaskingTransform::Create(config);
  BOOST_REQUIRE(masking.ok());
  Batch batch;
  batch.events.push_back(MakeRow(batch, Orders(), 1, "00000000016B3748/00000000016B3600/00000000"));
  batch.events.push_back(MakeMessage(batch, true, "00000000016B3748/00000000016B36BF/00000001"));
  BOOST_REQUIRE((*masking)->Apply(batch).ok());

  EnvelopeWriter writer;
  std::string row;
  writer.Write(batch, batch.events[0], kNowUs, row);
  BOOST_TEST(json::parse(row)["after"]["note"] == "[REDACTED]");
  std::string line;
  writer.WriteMessage(batch, batch.events[1], kNowUs, line);
  const json message = json::parse(line);
  BOOST_TEST(message["message"]["prefix"] == "audit");
  BOOST_TEST(message["message"]["content"] == kContentBase64);
  BOOST_TEST(!message["source"].contains("masking_policy"));
}

// Transaction metadata counts changes only: a transactional message gets no block and is not
// in event_count, as Debezium's data_collections does not list it.
BOOST_AUTO_TEST_CASE(transaction_metadata_does_not_count_messages) {
  Batch batch;
  auto orders = Orders();
  batch.events.push_back(MakeRow(batch, orders, 1, "00000000016B3748/00000000016B3600/00000000"));
  batch.events.push_back(MakeMessage(batch, true, "00000000016B3748/00000000016B36BF/00000001"));
  batch.events.push_back(MakeRow(batch, orders, 2, "00000000016B3748/00000000016B3700/00000001"));
  batch.commit_position = "0/16B3780";
  TransactionMetadata transform;
  BOOST_REQUIRE(transform.Apply(batch).ok());
  std::vector<char> ops;
  for (const Event& event : batch.events) ops.push_back(static_cast<char>(event.op));
  BOOST_TEST(ops == (std::vector<char>{'B', 'c', 'm', 'c', 'E'}), boost::test_tools::per_element());
  BOOST_TEST((batch.events[2].transaction.id.kind == ValueKind::kNull));
  BOOST_TEST(batch.events[3].transaction.total_order == 2u);
  EnvelopeWriter writer;
  std::string end;
  writer.WriteTransaction(batch, batch.events[4], end);
  BOOST_TEST(json::parse(end)["event_count"] == 2);
}

const std::string kSinks = "sinks:\n  - {name: events, type: file, path: /out}\n";

BOOST_AUTO_TEST_CASE(config_lists_prefix_globs_for_postgres_only) {
  const std::string pg = "state_dir: /s\n" + kSinks +
                         "sources:\n  - {name: shop, type: postgres, dsn: x, tables: [public.a], "
                         "sinks: [events], logical_messages: [audit, \"app.*\"]}\n";
  Result<AgentConfig> ok = ParseConfig(pg, "config.yaml");
  BOOST_TEST_REQUIRE(ok.ok(), ok.status().ToString());
  BOOST_TEST(ok->sources[0].logical_messages == (std::vector<std::string>{"audit", "app.*"}),
             boost::test_tools::per_element());

  Result<AgentConfig> off = ParseConfig("state_dir: /s\n" + kSinks +
                                            "sources:\n  - {name: shop, type: postgres, dsn: x, "
                                            "tables: [public.a], sinks: [events]}\n",
                                        "config.yaml");
  BOOST_TEST_REQUIRE(off.ok(), off.status().ToString());
  BOOST_TEST(off->sources[0].logical_messages.empty());

  Result<AgentConfig> empty = ParseConfig(
      "state_dir: /s\n" + kSinks +
          "sources:\n  - {name: shop, type: postgres, dsn: x, tables: [public.a], sinks: [events], "
          "logical_messages: [audit, \"\"]}\n",
      "config.yaml");
  BOOST_TEST_REQUIRE(!empty.ok());
  BOOST_TEST(empty.status().message().find("sources[0].logical_messages[1]: must not be empty") !=
                 std::string::npos,
             empty.status().message());

  Result<AgentConfig> mysql = ParseConfig(
      "state_dir: /s\n" + kSinks +
          "sources:\n  - {name: legacy, type: mysql, dsn: \"mysql://cdc:secret@db:3306\", "
          "tables: [\"crm.*\"], sinks: [events], server_id: 7, logical_messages: [audit]}\n",
      "config.yaml");
  BOOST_TEST_REQUIRE(!mysql.ok());
  BOOST_TEST(mysql.status().code() == StatusCode::kInvalidConfig);
  const std::string& message = mysql.status().message();
  BOOST_TEST(message.find("sources[0].logical_messages: logical decoding messages exist in "
                          "PostgreSQL only") != std::string::npos,
             message);
  BOOST_TEST(message.find("unknown key") == std::string::npos, message);
}

}  // namespace
}  // namespace tributary
