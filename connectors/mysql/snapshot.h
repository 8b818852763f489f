#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/event.h"
#include "connectors/mysql/table_map.h"

namespace tributary::mysql {

// Where an initial snapshot is: it travels in the checkpoint after the stream's start position
// ("<file>:<pos>:<gtids>|snapshot=<rows>:<table hex>:<after>"), so a crash resumes at the next
// chunk. `after` is the last primary key emitted in `table` (one value per key column), or
// empty with `table_done` once the whole table is emitted.
struct SnapshotProgress {
  uint64_t rows = 0;  // rows emitted so far, numbering source.position
  std::string table;  // "db.table"; empty before the first chunk
  bool table_done = false;
  std::vector<std::string> after;
};

// Splits a source position into its stream checkpoint text and its snapshot progress, if any.
// Returns false for malformed progress.
bool SplitSnapshotPosition(std::string_view position, std::string& checkpoint,
                           std::optional<SnapshotProgress>& progress);
std::string FormatSnapshotPosition(std::string_view checkpoint, const SnapshotProgress& progress);

// One column of a table as information_schema.COLUMNS describes it.
struct CatalogColumn {
  std::string name;
  std::string data_type;    // DATA_TYPE: "int", "varchar", "datetime", "uuid", ...
  std::string column_type;  // COLUMN_TYPE: "int(10) unsigned", "bit(5)", "enum('a','b')"
  std::string charset;      // CHARACTER_SET_NAME, or ""
  uint64_t octet_length = 0;
  uint32_t numeric_precision = 0;
  uint32_t numeric_scale = 0;
  uint32_t datetime_precision = 0;
  bool key = false;        // part of the primary key
  bool nullable = true;    // IS_NULLABLE
  uint8_t char_bytes = 0;  // the character set's MAXLEN; 0 without one
};

// The ColumnInfo a TABLE_MAP would carry for this column, so that snapshot and stream rows share
// one schema (type names) where the catalog allows.
ColumnInfo ColumnInfoOf(const CatalogColumn& column);

// A SELECT expression that yields the column's canonical text as the binlog decoder writes it,
// and the kind of JSON value that text is. `quoted` is the column's quoted identifier. The
// session must use time_zone '+00:00' for TIMESTAMP columns.
struct SnapshotExpression {
  std::string sql;
  ValueKind kind = ValueKind::kString;
};
SnapshotExpression SnapshotExpressionOf(const CatalogColumn& column, const std::string& quoted);

// `name` quoted as a MySQL identifier.
std::string QuoteIdentifier(std::string_view name);

}  // namespace tributary::mysql
