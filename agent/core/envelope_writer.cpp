#include "agent/core/envelope_writer.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/text_append.h"

namespace tributary {

// std::string::append of a bare literal calls strlen at run time (libstdc++ instantiates it out
// of line): the writer's literals are string_views, their lengths known when compiled.
using namespace std::string_view_literals;

namespace {

// The source.snapshot member with its neighbours' punctuation, ready to append.
std::string_view SnapshotField(SnapshotMark mark) {
  switch (mark) {
    case SnapshotMark::kFirst:
      return ",\"snapshot\":\"first\",\"db\":";
    case SnapshotMark::kTrue:
      return ",\"snapshot\":\"true\",\"db\":";
    case SnapshotMark::kLast:
      return ",\"snapshot\":\"last\",\"db\":";
    case SnapshotMark::kIncremental:
      return ",\"snapshot\":\"incremental\",\"db\":";
    case SnapshotMark::kFalse:
      break;
  }
  return ",\"snapshot\":\"false\",\"db\":";
}

// Debezium's placeholder for a PostgreSQL TOAST value the server did not send, quoted.
constexpr std::string_view kUnavailableValue = "\"__debezium_unavailable_value\"";
// The same placeholder as bytes (base64), as Debezium writes it in binary columns.
constexpr std::string_view kUnavailableBase64 = "\"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==\"";
constexpr std::string_view kPostgresConnector = "postgresql";
constexpr std::string_view kMysqlConnector = "mysql";
constexpr std::string_view kMariadbConnector = "mariadb";

constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}();

// Whether any byte of `word` is a control character, '"' or '\\' (kNeedsEscape): the
// has-zero-byte and has-less-than tricks, exact for "any".
constexpr bool HasByteToEscape(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  const uint64_t quotes = word ^ (kOnes * '"');
  const uint64_t backslashes = word ^ (kOnes * '\\');
  const uint64_t found = ((word - kOnes * 0x20) & ~word) | ((quotes - kOnes) & ~quotes) |
                         ((backslashes - kOnes) & ~backslashes);
  return (found & kHighs) != 0;
}

constexpr size_t kShortString = 62;

void AppendEscape(unsigned char c, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      out.append("\\\""sv);
      return;
    case '\\':
      out.append("\\\\"sv);
      return;
    case '\b':
      out.append("\\b"sv);
      return;
    case '\f':
      out.append("\\f"sv);
      return;
    case '\n':
      out.append("\\n"sv);
      return;
    case '\r':
      out.append("\\r"sv);
      return;
    case '\t':
      out.append("\\t"sv);
      return;
    default: {
      const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(escaped, sizeof(escaped));
    }
  }
}

// Floor division: a time before the epoch rounds down like any other.
int64_t MicrosToMillis(int64_t micros) { return micros / 1000 - (micros % 1000 < 0 ? 1 : 0); }

// One element of source.sequence, which is itself inside a JSON string: "\"123\"", or null for
// an LSN of 0 (none, e.g. in snapshot reads), as Debezium writes it.
void AppendSequenceLsn(uint64_t lsn, std::string& out) {
  if (lsn == 0) {
    out.append("null"sv);
    return;
  }
  out.append("\\\""sv);
  AppendNumber(lsn, out);
  out.append("\\\""sv);
}

// A text member from Batch::arena, or null.
void AppendOptionalText(const Batch& batch, const Value& value, std::string& out) {
  if (value.kind == ValueKind::kNull) {
    out.append("null"sv);
  } else {
    AppendJsonString(batch.Text(value), out);
  }
}

// Debezium's MySQL / MariaDB source members after `table`, up to the row's number: the
// caller writes the number, then what WriteBinlogSourceTail wrote.
void WriteBinlogSourceHead(const Batch& batch, const SourceMeta& meta, std::string& out) {
  out.append(",\"server_id\":"sv);
  AppendNumber(meta.server_id, out);
  out.append(",\"gtid\":"sv);
  AppendOptionalText(batch, meta.gtid, out);
  out.append(",\"file\":"sv);
  AppendOptionalText(batch, meta.binlog_file, out);
  out.append(",\"pos\":"sv);
  AppendNumber(meta.binlog_pos, out);
  out.append(",\"row\":"sv);
}

void WriteBinlogSourceTail(const SourceMeta& meta, std::string& out) {
  out.append(",\"thread\":"sv);
  if (meta.thread_id != 0) {
    AppendNumber(meta.thread_id, out);
  } else {
    out.append("null"sv);
  }
  out.append(",\"query\":null"sv);
}

// Whether `cached` holds what `value` says: the same text, or no text for a null.
bool SameText(const std::optional<std::string>& cached, const Batch& batch, const Value& value) {
  if (value.kind == ValueKind::kNull) return !cached.has_value();
  return cached.has_value() && *cached == batch.Text(value);
}

// Makes `held` what `value` says, reusing its buffer.
void HoldText(std::optional<std::string>& held, const Batch& batch, const Value& value) {
  if (value.kind == ValueKind::kNull) {
    held.reset();
    return;
  }
  if (!held) held.emplace();
  held->assign(batch.Text(value));
}

// "schema.table" (PostgreSQL) or "db.table" (MySQL): the name schema versions are kept under.
std::string QualifiedName(const TableSchema& table) {
  return (table.schema.empty() ? table.database : table.schema) + "." + table.table;
}

// Debezium's TableId.toDoubleQuotedString(): "db"."schema"."table", or "db"."table".
std::string DebeziumTableId(const TableSchema& table) {
  std::string id = "\"" + table.database + "\".";
  if (!table.schema.empty()) id += "\"" + table.schema + "\".";
  id += "\"" + table.table + "\"";
  return id;
}

void AppendBool(bool value, std::string& out) { out.append(value ? "true"sv : "false"sv); }

// A text member, or null when empty.
void AppendTextOrNull(const std::string& text, std::string& out) {
  if (text.empty()) {
    out.append("null"sv);
  } else {
    AppendJsonString(text, out);
  }
}

void AppendKeyColumnNames(const TableSchema& table, std::string& out) {
  out.push_back('[');
  bool first = true;
  for (const ColumnSchema& column : table.columns) {
    if (!column.key) continue;
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(column.name, out);
  }
  out.push_back(']');
}

// Debezium's transaction metadata schemas (io.debezium.connector.common), with Tributary's
// `position` added to the value.
constexpr std::string_view kTransactionKeySchema =
    "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"id\"}],"
    "\"optional\":false,\"name\":\"io.debezium.connector.common.TransactionMetadataKey\"}";
constexpr std::string_view kTransactionValueSchema =
    "{\"type\":\"struct\",\"fields\":["
    "{\"type\":\"string\",\"optional\":false,\"field\":\"status\"},"
    "{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"
    "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},"
    "{\"type\":\"int64\",\"optional\":true,\"field\":\"event_count\"},"
    "{\"type\":\"array\",\"items\":{\"type\":\"struct\",\"fields\":["
    "{\"type\":\"string\",\"optional\":false,\"field\":\"data_collection\"},"
    "{\"type\":\"int64\",\"optional\":false,\"field\":\"event_count\"}],\"optional\":false},"
    "\"optional\":true,\"field\":\"data_collections\"},"
    "{\"type\":\"string\",\"optional\":false,\"field\":\"position\"}],"
    "\"optional\":false,\"name\":\"io.debezium.connector.common.TransactionMetadataValue\"}";

}  // namespace

void AppendJsonString(std::string_view text, std::string& out) {
  // Most values need no escape and are short: checked eight bytes at a time, and appended
  // quoted in one call.
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    if (HasByteToEscape(word)) break;
  }
  for (; i < text.size(); ++i) {
    if (kNeedsEscape[static_cast<unsigned char>(text[i])]) break;
  }
  if (i == text.size()) {
    if (text.size() <= kShortString) {
      char quoted[kShortString + 2];
      quoted[0] = '"';
      std::memcpy(quoted + 1, text.data(), text.size());
      quoted[text.size() + 1] = '"';
      out.append(quoted, text.size() + 2);
    } else {
      out.push_back('"');
      out.append(text);
      out.push_back('"');
    }
    return;
  }
  out.push_back('"');
  size_t run = 0;
  for (; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (!kNeedsEscape[c]) continue;
    out.append(text.data() + run, i - run);
    AppendEscape(c, out);
    run = i + 1;
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

EnvelopeWriter::EnvelopeWriter() = default;

void EnvelopeWriter::AppendTimestamps(int64_t us, TimestampText& cache, std::string& out) {
  if (cache.us != us) {
    cache.us = us;
    cache.text.assign(",\"ts_ms\":");
    AppendNumber(MicrosToMillis(us), cache.text);
    cache.text.append(",\"ts_us\":"sv);
    AppendNumber(us, cache.text);
  }
  out.append(cache.text);
}

void EnvelopeWriter::Write(const Batch& batch, const Event& event, int64_t now_us,
                           std::string& out) {
  WriteEnvelope(batch, event, now_us, nullptr, out);
}

void EnvelopeWriter::WriteConnect(const Batch& batch, const Event& event, int64_t now_us,
                                  const ConnectSchemas& schemas, std::string& out) {
  out.append("{\"schema\":"sv);
  out.append(schemas.value);
  out.append(",\"payload\":"sv);
  WriteEnvelope(batch, event, now_us, &schemas, out);
  out.push_back('}');
}

void EnvelopeWriter::WriteEnvelope(const Batch& batch, const Event& event, int64_t now_us,
                                   const ConnectSchemas* connect, std::string& out) {
  assert(event.table != nullptr);
  const bool truncate = event.op == Op::kTruncate;
  TableJson& json = JsonFor(batch, *event.table);
  out.append("{\"before\":"sv);
  if (event.before && !truncate) {
    WriteRow(batch, *event.table, json, *event.before, /*keys_only=*/false, connect, out);
  } else {
    out.append("null"sv);
  }
  out.append(",\"after\":"sv);
  if (event.after && !truncate) {
    WriteRow(batch, *event.table, json, *event.after, /*keys_only=*/false, connect, out);
  } else {
    out.append("null"sv);
  }
  out.append(",\"source\":"sv);
  WriteSource(batch, event, json, out);
  out.append(",\"op\":\""sv);
  out.push_back(static_cast<char>(event.op));
  out.push_back('"');
  AppendTimestamps(now_us, written_at_, out);
  if (event.transaction.id.kind == ValueKind::kNull) {
    out.append(",\"transaction\":null}"sv);
    return;
  }
  out.append(",\"transaction\":{\"id\":"sv);
  AppendJsonString(batch.Text(event.transaction.id), out);
  out.append(",\"total_order\":"sv);
  AppendNumber(event.transaction.total_order, out);
  out.append(",\"data_collection_order\":"sv);
  AppendNumber(event.transaction.data_collection_order, out);
  out.append("}}"sv);
}

void EnvelopeWriter::WriteKey(const Batch& batch, const Event& event, std::string& out) {
  assert(event.table != nullptr);
  const std::optional<uint32_t>& image = event.op == Op::kDelete ? event.before : event.after;
  const auto& columns = event.table->columns;
  const bool has_key =
      std::any_of(columns.begin(), columns.end(), [](const ColumnSchema& c) { return c.key; });
  if (event.op == Op::kTruncate || !image || !has_key) {
    out.append("null"sv);
    return;
  }
  WriteRow(batch, *event.table, JsonFor(batch, *event.table), *image, /*keys_only=*/true, nullptr,
           out);
}

void EnvelopeWriter::WriteConnectKey(const Batch& batch, const Event& event,
                                     const ConnectSchemas& schemas, std::string& out) {
  const std::optional<uint32_t>& image = event.op == Op::kDelete ? event.before : event.after;
  if (event.op == Op::kTruncate || !image || schemas.key.empty()) {
    out.append("null"sv);
    return;
  }
  out.append("{\"schema\":"sv);
  out.append(schemas.key);
  out.append(",\"payload\":"sv);
  WriteRow(batch, *event.table, JsonFor(batch, *event.table), *image, /*keys_only=*/true, &schemas,
           out);
  out.push_back('}');
}

void EnvelopeWriter::WriteRow(const Batch& batch, const TableSchema& table, const TableJson& json,
                              uint32_t first, bool keys_only, const ConnectSchemas* connect,
                              std::string& out) {
  assert(first + table.columns.size() <= batch.values.size());
  assert(connect == nullptr || connect->columns.size() == table.columns.size());
  const std::vector<std::string>& names = json.columns;
  out.push_back('{');
  bool empty = true;
  for (size_t i = 0; i < table.columns.size(); ++i) {
    if (keys_only && !table.columns[i].key) continue;
    // Each name comes with a leading comma, which the first one leaves off.
    out.append(std::string_view(names[i]).substr(empty ? 1 : 0));
    empty = false;
    const Value& value = batch.values[first + i];
    switch (value.kind) {
      case ValueKind::kNull:
        out.append("null"sv);
        break;
      case ValueKind::kUnavailable:
        out.append(connect != nullptr && connect->columns[i].bytes ? kUnavailableBase64
                                                                   : kUnavailableValue);
        break;
      case ValueKind::kString:
        AppendJsonString(batch.Text(value), out);
        break;
      case ValueKind::kRaw:
        if (connect != nullptr && connect->columns[i].quote_raw) {
          AppendJsonString(batch.Text(value), out);
        } else {
          out.append(batch.Text(value));
        }
        break;
    }
  }
  out.push_back('}');
}

EnvelopeWriter::TableJson EnvelopeWriter::RenderTableJson(const TableSchema& table) {
  TableJson json;
  if (table.connector == kPostgresConnector) {
    json.source = TableJson::Source::kPostgres;
  } else if (table.connector == kMysqlConnector || table.connector == kMariadbConnector) {
    json.source = TableJson::Source::kBinlog;
  }
  json.head.assign("{\"version\":\"" TRIBUTARY_VERSION "\",\"connector\":"sv);
  AppendJsonString(table.connector, json.head);
  json.head.append(",\"name\":"sv);
  AppendJsonString(table.source, json.head);
  AppendJsonString(table.database, json.database);
  if (json.source == TableJson::Source::kPostgres) {
    json.schema_and_table.assign(",\"schema\":"sv);
    AppendJsonString(table.schema, json.schema_and_table);
  }
  json.schema_and_table.append(",\"table\":"sv);
  AppendJsonString(table.table, json.schema_and_table);
  for (const ColumnSchema& column : table.columns) {
    std::string& name = json.columns.emplace_back(",");
    AppendJsonString(column.name, name);
    name.push_back(':');
  }
  return json;
}

EnvelopeWriter::TableJson& EnvelopeWriter::JsonFor(const Batch& batch, const TableSchema& table) {
  Result<TableJson*> json =
      table_json_.Get("envelope writer", batch, &table,
                      [](const std::shared_ptr<const TableSchema>& schema) -> Result<TableJson> {
                        return RenderTableJson(*schema);
                      });
  if (json.ok()) return **json;
  unheld_table_json_ = RenderTableJson(table);
  return unheld_table_json_;
}

bool EnvelopeWriter::SameSource(const SourceText& text, const Batch& batch,
                                const SourceMeta& meta) {
  const SourceMeta& held = text.meta;
  return text.valid && held.commit_ts_us == meta.commit_ts_us &&
         held.commit_lsn == meta.commit_lsn && held.lsn == meta.lsn && held.txid == meta.txid &&
         held.snapshot == meta.snapshot && held.binlog_pos == meta.binlog_pos &&
         held.server_id == meta.server_id && held.thread_id == meta.thread_id &&
         SameText(text.gtid, batch, meta.gtid) && SameText(text.file, batch, meta.binlog_file);
}

void EnvelopeWriter::RenderSource(const Batch& batch, const Event& event, TableJson& json) {
  const SourceMeta& meta = event.meta;
  SourceText& text = json.source_text;
  std::string& out = text.head;
  out.assign(json.head);
  AppendTimestamps(meta.commit_ts_us, committed_at_, out);
  out.append(SnapshotField(meta.snapshot));
  out.append(json.database);
  std::string* rest = &out;
  if (json.source == TableJson::Source::kPostgres) {
    // Debezium's sequence: a JSON array of the commit and change LSNs, serialized as a string.
    out.append(",\"sequence\":\"["sv);
    AppendSequenceLsn(meta.commit_lsn, out);
    out.push_back(',');
    AppendSequenceLsn(meta.lsn, out);
    out.append("]\""sv);
    out.append(json.schema_and_table);
    out.append(",\"txId\":"sv);
    if (meta.txid != 0) {
      AppendNumber(meta.txid, out);
    } else {
      out.append("null"sv);
    }
    out.append(",\"lsn\":"sv);
    if (meta.lsn != 0) {
      AppendNumber(meta.lsn, out);
    } else {
      out.append("null"sv);
    }
    out.append(",\"xmin\":null"sv);
  } else {
    out.append(json.schema_and_table);
    if (json.source == TableJson::Source::kBinlog) {
      WriteBinlogSourceHead(batch, meta, out);
      text.tail.clear();
      WriteBinlogSourceTail(meta, text.tail);
      rest = &text.tail;
    }
  }
  rest->append(",\"schema_version\":"sv);
  AppendNumber(event.table->version, *rest);
  rest->append(",\"position\":"sv);
  text.meta = meta;
  HoldText(text.gtid, batch, meta.gtid);
  HoldText(text.file, batch, meta.binlog_file);
  text.valid = true;
}

void EnvelopeWriter::WriteSource(const Batch& batch, const Event& event, TableJson& json,
                                 std::string& out) {
  const SourceMeta& meta = event.meta;
  if (!SameSource(json.source_text, batch, meta)) RenderSource(batch, event, json);
  out.append(json.source_text.head);
  if (json.source == TableJson::Source::kBinlog) {
    AppendNumber(meta.binlog_row, out);
    out.append(json.source_text.tail);
  }
  AppendJsonString(batch.Text(event.position), out);
  // Masking covers table columns: a message passes through it unchanged, so names no policy.
  if (batch.masking_policy != nullptr && event.op != Op::kMessage) {
    constexpr std::string_view kPrefix = ",\"masking_policy\":\"";
    const std::string& policy = *batch.masking_policy;
    if (policy_json_.size() != kPrefix.size() + policy.size() + 1 ||
        policy_json_.compare(kPrefix.size(), policy.size(), policy) != 0) {
      policy_json_.assign(",\"masking_policy\":");
      AppendJsonString(policy, policy_json_);
    }
    out.append(policy_json_);
  }
  out.push_back('}');
}

void EnvelopeWriter::WriteSchemaChange(const Batch& batch, const Event& event, std::string& out) {
  assert(event.table != nullptr);
  const TableSchema& table = *event.table;
  out.append("{\"source\":"sv);
  WriteSource(batch, event, JsonFor(batch, *event.table), out);
  out.append(",\"databaseName\":"sv);
  AppendJsonString(table.database, out);
  out.append(",\"schemaName\":"sv);
  AppendTextOrNull(table.schema, out);
  out.append(",\"ddl\":"sv);
  AppendTextOrNull(table.ddl, out);
  // Debezium's part: one table change in its shape.
  out.append(",\"tableChanges\":[{\"type\":"sv);
  out.append(table.dropped ? "\"DROP\"" : table.previous_version == 0 ? "\"CREATE\"" : "\"ALTER\"");
  out.append(",\"id\":"sv);
  AppendJsonString(DebeziumTableId(table), out);
  out.append(",\"table\":{\"primaryKeyColumnNames\":"sv);
  AppendKeyColumnNames(table, out);
  out.append(",\"columns\":["sv);
  for (size_t i = 0; i < table.columns.size(); ++i) {
    const ColumnSchema& column = table.columns[i];
    if (i > 0) out.push_back(',');
    out.append("{\"name\":"sv);
    AppendJsonString(column.name, out);
    out.append(",\"typeName\":"sv);
    AppendJsonString(column.type_name, out);
    out.append(",\"position\":"sv);
    AppendNumber(i + 1, out);
    out.append(",\"optional\":"sv);
    AppendBool(column.nullable, out);
    out.push_back('}');
  }
  out.append("]}}]"sv);
  // Tributary's part: the registry's view of the version.
  out.append(",\"table\":"sv);
  AppendJsonString(QualifiedName(table), out);
  out.append(",\"version\":"sv);
  AppendNumber(table.version, out);
  out.append(",\"previous_version\":"sv);
  AppendNumber(table.previous_version, out);
  out.append(",\"compatible\":"sv);
  AppendBool(table.compatible, out);
  out.append(",\"problems\":["sv);
  for (size_t i = 0; i < table.problems.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(table.problems[i], out);
  }
  out.append("],\"dropped\":"sv);
  AppendBool(table.dropped, out);
  out.append(",\"columns\":["sv);
  for (size_t i = 0; i < table.columns.size(); ++i) {
    const ColumnSchema& column = table.columns[i];
    if (i > 0) out.push_back(',');
    out.append("{\"name\":"sv);
    AppendJsonString(column.name, out);
    out.append(",\"type\":"sv);
    AppendJsonString(column.type_name, out);
    out.append(",\"canonical_type\":"sv);
    AppendJsonString(column.canonical_type, out);
    out.append(",\"nullable\":"sv);
    AppendBool(column.nullable, out);
    out.append(",\"key\":"sv);
    AppendBool(column.key, out);
    out.append(",\"position\":"sv);
    AppendNumber(i + 1, out);
    out.push_back('}');
  }
  out.append("],\"primary_key\":"sv);
  AppendKeyColumnNames(table, out);
  out.append(",\"position\":"sv);
  AppendJsonString(batch.Text(event.position), out);
  out.append(",\"ts_ms\":"sv);
  AppendNumber(MicrosToMillis(event.meta.commit_ts_us), out);
  out.push_back('}');
}

void EnvelopeWriter::WriteSchemaChangeKey(const Event& event, std::string& out) {
  assert(event.table != nullptr);
  out.append("{\"source\":"sv);
  AppendJsonString(event.table->source, out);
  out.append(",\"table\":"sv);
  AppendJsonString(QualifiedName(*event.table), out);
  out.push_back('}');
}

void EnvelopeWriter::WriteConnectSchemaChange(const Batch& batch, const Event& event,
                                              std::string& out) {
  assert(event.table != nullptr);
  auto schema = schema_change_schemas_.find(event.table->connector);
  if (schema == schema_change_schemas_.end()) {
    schema = schema_change_schemas_
                 .emplace(event.table->connector, SchemaChangeValueConnectSchema(*event.table))
                 .first;
  }
  out.append("{\"schema\":"sv);
  out.append(schema->second);
  out.append(",\"payload\":"sv);
  WriteSchemaChange(batch, event, out);
  out.push_back('}');
}

void EnvelopeWriter::WriteConnectSchemaChangeKey(const Event& event, std::string& out) {
  if (schema_change_key_schema_.empty()) schema_change_key_schema_ = SchemaChangeKeyConnectSchema();
  out.append("{\"schema\":"sv);
  out.append(schema_change_key_schema_);
  out.append(",\"payload\":"sv);
  WriteSchemaChangeKey(event, out);
  out.push_back('}');
}

void EnvelopeWriter::WriteTransaction(const Batch& batch, const Event& event, std::string& out) {
  const bool end = event.op == Op::kTransactionEnd;
  assert(end || event.op == Op::kTransactionBegin);
  out.append(end ? "{\"status\":\"END\",\"id\":" : "{\"status\":\"BEGIN\",\"id\":");
  AppendJsonString(batch.Text(event.transaction.id), out);
  out.append(",\"ts_ms\":"sv);
  AppendNumber(MicrosToMillis(event.meta.commit_ts_us), out);
  if (end && event.after && *event.after < batch.values.size()) {
    out.append(",\"event_count\":"sv);
    AppendNumber(event.transaction.total_order, out);
    out.append(",\"data_collections\":"sv);
    out.append(batch.Text(batch.values[*event.after]));
  } else {
    out.append(",\"event_count\":null,\"data_collections\":null"sv);
  }
  out.append(",\"position\":"sv);
  AppendJsonString(batch.Text(event.position), out);
  out.push_back('}');
}

void EnvelopeWriter::WriteTransactionKey(const Batch& batch, const Event& event, std::string& out) {
  out.append("{\"id\":"sv);
  AppendJsonString(batch.Text(event.transaction.id), out);
  out.push_back('}');
}

void EnvelopeWriter::WriteConnectTransaction(const Batch& batch, const Event& event,
                                             std::string& out) {
  out.append("{\"schema\":"sv);
  out.append(kTransactionValueSchema);
  out.append(",\"payload\":"sv);
  WriteTransaction(batch, event, out);
  out.push_back('}');
}

void EnvelopeWriter::WriteConnectTransactionKey(const Batch& batch, const Event& event,
                                                std::string& out) {
  out.append("{\"schema\":"sv);
  out.append(kTransactionKeySchema);
  out.append(",\"payload\":"sv);
  WriteTransactionKey(batch, event, out);
  out.push_back('}');
}

void EnvelopeWriter::WriteMessage(const Batch& batch, const Event& event, int64_t now_us,
                                  std::string& out) {
  assert(event.op == Op::kMessage && event.after && *event.after + 1 < batch.values.size());
  out.append("{\"source\":"sv);
  WriteSource(batch, event, JsonFor(batch, *event.table), out);
  out.append(",\"op\":\"m\""sv);
  AppendTimestamps(now_us, written_at_, out);
  out.append(",\"message\":{\"prefix\":"sv);
  AppendJsonString(batch.Text(batch.values[*event.after]), out);
  out.append(",\"content\":\""sv);
  AppendBase64(batch.Text(batch.values[*event.after + 1]), out);
  out.append("\"}}"sv);
}

void EnvelopeWriter::WriteMessageKey(const Batch& batch, const Event& event, std::string& out) {
  assert(event.op == Op::kMessage && event.after && *event.after < batch.values.size());
  out.append("{\"prefix\":"sv);
  AppendJsonString(batch.Text(batch.values[*event.after]), out);
  out.push_back('}');
}

void EnvelopeWriter::WriteConnectMessage(const Batch& batch, const Event& event, int64_t now_us,
                                         std::string& out) {
  if (message_schema_.empty()) message_schema_ = MessageValueConnectSchema(*event.table);
  out.append("{\"schema\":"sv);
  out.append(message_schema_);
  out.append(",\"payload\":"sv);
  WriteMessage(batch, event, now_us, out);
  out.push_back('}');
}

void EnvelopeWriter::WriteConnectMessageKey(const Batch& batch, const Event& event,
                                            std::string& out) {
  if (message_key_schema_.empty()) message_key_schema_ = MessageKeyConnectSchema(*event.table);
  out.append("{\"schema\":"sv);
  out.append(message_key_schema_);
  out.append(",\"payload\":"sv);
  WriteMessageKey(batch, event, out);
  out.push_back('}');
}

}  // namespace tributary
