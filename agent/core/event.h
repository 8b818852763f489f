#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tributary {

// Debezium's op codes.
enum class Op : char {
  kCreate = 'c',
  kUpdate = 'u',
  kDelete = 'd',
  kRead = 'r',
  kTruncate = 't',
  // Not a row change: a table's new schema version (`table` is that version), written to
  // `{source}.schema-changes` before the version's first row. Sources emit one with
  // TableSchema::dropped set when a table is dropped or renamed away.
  kSchemaChange = 's',
  // Not row changes: Debezium's transaction metadata (docs/events.md), written to
  // `{source}.transaction` by the transaction-metadata transform. `table` is the table of the
  // transaction's first change (for the source's name); `transaction` carries the id and, for
  // kTransactionEnd, the event count in total_order and the data_collections JSON array as the
  // one value at Batch::values[*after].
  kTransactionBegin = 'B',
  kTransactionEnd = 'E',
  // Not a row change: a PostgreSQL logical decoding message (pg_logical_emit_message), written
  // to `{source}.message` (docs/events.md). `table` is the source's message pseudo-table (no
  // columns, schema version 0); Batch::values[*after] is the prefix and [*after + 1] the
  // content's raw bytes. meta.txid is 0 for a non-transactional message.
  kMessage = 'm',
};

// How a value's canonical text is written into JSON.
enum class ValueKind : uint8_t {
  kNull,
  kUnavailable,  // PostgreSQL unchanged TOAST: the server did not send it; never null
  kString,       // the text, as a JSON string
  kRaw,          // the text is already JSON (numbers, booleans, json/jsonb, arrays)
};

// A value's canonical text lives in Batch::arena; values are never allocated one by one.
struct Value {
  uint32_t offset = 0;
  uint32_t length = 0;
  ValueKind kind = ValueKind::kNull;
};

struct ColumnSchema {
  std::string name;
  std::string type_name;  // the source's type name, e.g. "int4", "_text", "public.mood"
  uint32_t type_oid = 0;  // PostgreSQL type OID (0 elsewhere)
  int32_t type_modifier = -1;
  bool key = false;  // part of the primary key (the replica identity when there is none)
  bool nullable = true;
  // The engine-neutral type the schema registry compares (docs/schemas.md): "int16", "int32",
  // "int64", "uint64", "float32", "float64", "boolean", "decimal(p,s)", "decimal",
  // "string(n)" (n characters at most), "string", "bytes(n)", "bytes", "date", "time",
  // "timestamp", "timestamptz", "json", "uuid", "array<T>", or "other:<source type>".
  std::string canonical_type;
};

// One version of a table's shape. Immutable once built; shared by the events that use it.
struct TableSchema {
  std::string connector;  // Debezium's connector name: "postgresql", "mysql", "mariadb"
  std::string source;     // the configured source name (Debezium's topic prefix)
  std::string database;   // PostgreSQL database, MySQL database
  std::string schema;     // PostgreSQL schema; empty for MySQL
  std::string table;
  std::vector<ColumnSchema> columns;
  // Identifies one incarnation of the table: PostgreSQL's relation OID, so that a table dropped
  // and created again under the same name gets a new version even when its columns match.
  uint64_t relation_id = 0;
  // MySQL: the DDL statement that produced this shape, when the binlog carried it.
  std::string ddl;
  // A kSchemaChange event from a source with this set says the table is gone (DROP/RENAME).
  bool dropped = false;

  // Set by the schema registry on the copy it registers; sources leave them alone.
  uint32_t version = 1;
  uint32_t previous_version = 0;      // 0 for a table's first version
  bool compatible = true;             // under the source's compatibility policy
  std::vector<std::string> problems;  // why it is not compatible, when it is not
};

// source.snapshot, as Debezium writes it: which part of a snapshot a row belongs to.
enum class SnapshotMark : uint8_t {
  kFalse,        // a streamed change
  kFirst,        // the first row of an initial snapshot
  kTrue,         // a row of an initial snapshot
  kLast,         // the last row of an initial snapshot
  kIncremental,  // a row of an on-demand re-snapshot
};

// Where an event came from, in the source's own terms.
struct SourceMeta {
  int64_t commit_ts_us = 0;  // commit time, microseconds since the Unix epoch
  uint64_t commit_lsn = 0;   // PostgreSQL: LSN of the commit record
  uint64_t lsn = 0;          // PostgreSQL: LSN of this change
  int64_t txid = 0;
  uint32_t sequence = 0;  // index of the change within its transaction
  SnapshotMark snapshot = SnapshotMark::kFalse;
  // MySQL / MariaDB: where the rows event starts, the row within it, and who wrote it. The
  // file name and GTID are text in Batch::arena (kNull when there is none).
  uint64_t binlog_pos = 0;
  uint32_t binlog_row = 0;
  uint32_t server_id = 0;
  uint32_t thread_id = 0;
  Value binlog_file{};
  Value gtid{};
};

// Debezium's `transaction` block of a streamed change (transaction metadata on).
struct TransactionMeta {
  Value id{};  // text in Batch::arena; kNull: no block (the envelope's "transaction":null)
  uint32_t total_order = 0;            // 1-based place among the transaction's changes
  uint32_t data_collection_order = 0;  // 1-based place among its changes of the same table
};

struct Event {
  Op op = Op::kCreate;
  const TableSchema* table = nullptr;  // kept alive by Batch::tables
  // Row images: `table->columns.size()` consecutive entries of Batch::values starting here.
  std::optional<uint32_t> before;
  std::optional<uint32_t> after;
  SourceMeta meta;
  // source.position: fixed-width text that sorts lexically in change order within a source.
  Value position;
  TransactionMeta transaction;
};

// The unit that flows from a source to its sinks, and whose delivery is acknowledged.
struct Batch {
  uint64_t sequence = 0;  // assigned by the pipeline, increasing
  std::vector<Event> events;
  std::vector<Value> values;
  std::string arena;
  std::vector<std::shared_ptr<const TableSchema>> tables;
  // Set when the batch ends a source transaction: the source's resumable position of that
  // commit. Only these are ever checkpointed.
  std::optional<std::string> commit_position;
  // Set by the source when the batch's last event belongs to a transaction whose commit is not
  // in the batch (it continues in the next one); clear when the batch ends at or after a commit.
  bool ends_inside_transaction = false;
  // Set by the source when it handed the batch over with nothing more to read: nothing came for
  // its linger, or the batch ends the snapshot. The sinks that flush when the source is quiet
  // hear it at once, not a poll later.
  bool ends_burst = false;
  // Set by the pipeline: the source's lineage, the checkpoint history its positions belong to
  // (CheckpointStore::lineage). Positions compare only within one lineage: a source that starts
  // without a checkpoint (a new slot, a server restored from a backup) starts a new one, and may
  // number its changes below what an earlier lineage wrote. Points into the pipeline, which
  // outlives the batch.
  std::string_view lineage;
  // Set by the masking transform: the fingerprint of the policy that produced these events,
  // written as source.masking_policy. Points into the transform, which outlives the batch.
  const std::string* masking_policy = nullptr;

  std::string_view Text(const Value& value) const {
    return {arena.data() + value.offset, value.length};
  }
  Value AddValue(ValueKind kind, std::string_view text) {
    Value value{static_cast<uint32_t>(arena.size()), static_cast<uint32_t>(text.size()), kind};
    arena.append(text);
    return value;
  }
  // Keeps `schema` alive for the batch's lifetime and returns the pointer events store.
  // Stages that swap an event's schema (masking, the registry) retain theirs after the
  // source's, so a batch of one table cycles through a few: the last few are checked.
  const TableSchema* Retain(const std::shared_ptr<const TableSchema>& schema) {
    const size_t checked = std::min<size_t>(tables.size(), 4);
    if (std::find(tables.end() - static_cast<ptrdiff_t>(checked), tables.end(), schema) ==
        tables.end()) {
      tables.push_back(schema);
    }
    return schema.get();
  }
  size_t ByteSize() const {
    return arena.size() + values.size() * sizeof(Value) + events.size() * sizeof(Event);
  }
  bool empty() const { return events.empty() && !commit_position; }
  void Clear() {
    events.clear();
    values.clear();
    arena.clear();
    tables.clear();
    commit_position.reset();
    ends_inside_transaction = false;
    ends_burst = false;
    lineage = {};
    masking_policy = nullptr;
  }
};

}  // namespace tributary
