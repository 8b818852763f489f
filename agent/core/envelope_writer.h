#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/core/connect_schema.h"
#include "agent/core/event.h"
#include "agent/core/table_cache.h"

namespace tributary {

// Serializes events as Debezium JSON envelopes (docs/events.md). Hot path: one instance per
// sink, reused for every event, appending straight to the caller's buffer with no allocation
// beyond its growth. The envelope's shape is fixed, so it is written directly rather than through
// RapidJSON's Writer, whose per-character bookkeeping cost more than half the time (measured).
class EnvelopeWriter {
 public:
  EnvelopeWriter();

  // Appends one event's envelope, without a trailing newline, to `out`. `now_us` is the
  // processing time written as the envelope's ts_ms/ts_us (one clock read per batch).
  void Write(const Batch& batch, const Event& event, int64_t now_us, std::string& out);

  // Appends the event's key (the key columns as a JSON object; "null" without key columns).
  void WriteKey(const Batch& batch, const Event& event, std::string& out);

  // The same in Kafka Connect's JsonConverter form, {"schema":…,"payload":…}, with `schemas`
  // built for the event's table and topic (BuildConnectSchemas). The payload is the plain
  // envelope or key, except as ConnectColumn says. A key without key columns is "null".
  void WriteConnect(const Batch& batch, const Event& event, int64_t now_us,
                    const ConnectSchemas& schemas, std::string& out);
  void WriteConnectKey(const Batch& batch, const Event& event, const ConnectSchemas& schemas,
                       std::string& out);

  // A kSchemaChange event's value (docs/events.md, "Schema-change events"): `event.table` is
  // the new version. Its key, {"source":…,"table":…}, keeps one table's changes in order.
  void WriteSchemaChange(const Batch& batch, const Event& event, std::string& out);
  void WriteSchemaChangeKey(const Event& event, std::string& out);
  // The same in Connect form; the schemas are built once per connector.
  void WriteConnectSchemaChange(const Batch& batch, const Event& event, std::string& out);
  void WriteConnectSchemaChangeKey(const Event& event, std::string& out);

  // A kTransactionBegin or kTransactionEnd event's value (docs/events.md, "Transaction
  // metadata"), and its key {"id":…}; the same in Connect form.
  void WriteTransaction(const Batch& batch, const Event& event, std::string& out);
  void WriteTransactionKey(const Batch& batch, const Event& event, std::string& out);
  void WriteConnectTransaction(const Batch& batch, const Event& event, std::string& out);
  void WriteConnectTransactionKey(const Batch& batch, const Event& event, std::string& out);

  // A kMessage event's value (docs/events.md, "Logical decoding messages"): Debezium's message
  // value, {"source","op":"m","ts_ms","ts_us","message":{"prefix","content"}}, the content in
  // base64; and its key {"prefix":…}. The same in Connect form.
  void WriteMessage(const Batch& batch, const Event& event, int64_t now_us, std::string& out);
  void WriteMessageKey(const Batch& batch, const Event& event, std::string& out);
  void WriteConnectMessage(const Batch& batch, const Event& event, int64_t now_us,
                           std::string& out);
  void WriteConnectMessageKey(const Batch& batch, const Event& event, std::string& out);

 private:
  void WriteEnvelope(const Batch& batch, const Event& event, int64_t now_us,
                     const ConnectSchemas* connect, std::string& out);
  // The source block as last written for a table, and what it was written from. A rows event
  // (binlog) or a snapshot chunk shares it all but `row` and `position`, so those events copy
  // it whole: writing it member by member was a third of the writer's time per row (measured).
  struct SourceText {
    bool valid = false;
    // As written; SameSource compares its numbers but binlog_row and sequence. Its gtid and
    // binlog_file point into a batch long gone: their texts are kept below instead.
    SourceMeta meta;
    std::optional<std::string> gtid;
    std::optional<std::string> file;
    std::string head;  // from '{' to "row": (binlog), else to "position":
    std::string tail;  // binlog: from ,"thread": to "position":
  };
  // What every event of one table version repeats, rendered once: escaping names for every
  // row was a tenth of the writer's CPU.
  struct TableJson {
    enum class Source : uint8_t { kPostgres, kBinlog, kOther };
    Source source = Source::kOther;
    std::string head;                  // {"version":…,"connector":…,"name":…
    std::string database;              // the quoted database name
    std::string schema_and_table;      // ,"schema":…,"table":… (PostgreSQL), else ,"table":…
    std::vector<std::string> columns;  // ,"<column>": for each column
    SourceText source_text;
  };
  static TableJson RenderTableJson(const TableSchema& table);
  // Looked up once per event and handed to what writes its parts.
  TableJson& JsonFor(const Batch& batch, const TableSchema& table);

  // Writes the row image at batch.values[first], one value per column, as an object; with
  // `keys_only`, just the key columns; with `connect`, values as its columns say.
  void WriteRow(const Batch& batch, const TableSchema& table, const TableJson& json, uint32_t first,
                bool keys_only, const ConnectSchemas* connect, std::string& out);
  void WriteSource(const Batch& batch, const Event& event, TableJson& json, std::string& out);
  // Renders json.source_text for `event`.
  void RenderSource(const Batch& batch, const Event& event, TableJson& json);
  static bool SameSource(const SourceText& text, const Batch& batch, const SourceMeta& meta);

  // `,"ts_ms":…,"ts_us":…` of `us`. A batch's events share their write time and a transaction's
  // their commit time, so each pair is formatted once: integers were a tenth of the writer's
  // CPU per row.
  struct TimestampText {
    int64_t us = std::numeric_limits<int64_t>::min();
    std::string text;
  };
  static void AppendTimestamps(int64_t us, TimestampText& cache, std::string& out);

  // Connector → the schema-change value schema of its sources.
  std::map<std::string, std::string, std::less<>> schema_change_schemas_;
  std::string schema_change_key_schema_;
  // Message value and key schemas, built on first use (only PostgreSQL sources send messages).
  std::string message_schema_;
  std::string message_key_schema_;
  // `,"masking_policy":"<fingerprint>"` for the last fingerprint seen: a batch's policy rarely
  // changes, and rendering it for every row cost a sixth of what masking adds.
  std::string policy_json_;
  TimestampText written_at_;
  TimestampText committed_at_;
  TableCache<TableJson> table_json_;
  // For a table the batch does not hold (Batch::Retain), rendered for each event.
  TableJson unheld_table_json_;
};

// Appends `text` as a quoted JSON string: escapes '"', '\' and control characters (as RapidJSON
// does), passes UTF-8 through unchanged, so the result never contains a raw newline.
void AppendJsonString(std::string_view text, std::string& out);

}  // namespace tributary
