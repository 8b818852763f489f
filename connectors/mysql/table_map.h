#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace tributary::mysql {

// Column type codes on the wire (enum_field_types).
enum class ColumnType : uint8_t {
  kDecimal = 0,
  kTiny = 1,
  kShort = 2,
  kLong = 3,
  kFloat = 4,
  kDouble = 5,
  kNull = 6,
  kTimestamp = 7,
  kLongLong = 8,
  kInt24 = 9,
  kDate = 10,
  kTime = 11,
  kDateTime = 12,
  kYear = 13,
  kNewDate = 14,
  kVarchar = 15,
  kBit = 16,
  kTimestamp2 = 17,
  kDateTime2 = 18,
  kTime2 = 19,
  kVarcharCompressed = 140,  // MariaDB
  kBlobCompressed = 141,     // MariaDB
  kJson = 245,               // MySQL binary JSON
  kNewDecimal = 246,
  kEnum = 247,
  kSet = 248,
  kTinyBlob = 249,
  kMediumBlob = 250,
  kLongBlob = 251,
  kBlob = 252,
  kVarString = 253,
  kString = 254,
  kGeometry = 255,
};

// How a character column's bytes become UTF-8.
enum class Charset : uint8_t {
  kUnknown,  // collation id not known here: the source asks the server
  kUtf8,     // utf8mb3, utf8mb4
  kLatin1,   // MySQL's latin1, which is Windows-1252
  kAscii,
  kBinary,  // base64
  kUcs2,
  kUtf16,
  kUtf16le,
  kUtf32,
  kOther,  // known to the server but not convertible here
};

// The character set of a MariaDB / MySQL collation id, for the ids both servers ship.
Charset CharsetOfCollation(uint32_t collation_id);

// What the binlog cannot say but the catalog can: a BINARY(16) that is really a MariaDB UUID.
enum class Logical : uint8_t { kNone, kUuid, kInet6, kInet4 };

struct ColumnInfo {
  ColumnType type = ColumnType::kNull;  // after resolving STRING's real type (ENUM, SET)
  // Type metadata: max bytes (VARCHAR, STRING), length-prefix bytes (BLOB, JSON, GEOMETRY),
  // fractional digits (TIME2, DATETIME2, TIMESTAMP2), bytes (FLOAT, DOUBLE, ENUM, SET).
  uint32_t length = 0;
  uint8_t precision = 0;  // NEWDECIMAL
  uint8_t scale = 0;      // NEWDECIMAL
  uint16_t bits = 0;      // BIT
  bool nullable = true;
  bool is_unsigned = false;
  bool key = false;
  uint32_t collation = 0;  // character, ENUM and SET columns; 0 when not given
  Charset charset = Charset::kUnknown;
  // Most bytes one character takes in the column's character set (utf8mb4 4, utf8mb3 3,
  // latin1 1): what turns `length` into characters. 0 when not known; the source fills it in
  // from the server's information_schema.CHARACTER_SETS.
  uint8_t char_bytes = 0;
  Logical logical = Logical::kNone;
  uint32_t geometry_type = 0;
  std::string name;
  std::vector<std::string> values;  // ENUM and SET labels, in order

  bool character() const;  // a column that has a charset in the optional metadata
  bool numeric() const;    // a column that has a bit in SIGNEDNESS
};

// TABLE_MAP_EVENT with its optional metadata (binlog_row_metadata=FULL).
struct TableMap {
  uint64_t table_id = 0;
  std::string database;
  std::string table;
  std::vector<ColumnInfo> columns;
  bool has_names = false;  // COLUMN_NAME was present (binlog_row_metadata=FULL)
};

// Decodes the body (no header, no checksum) of a TABLE_MAP_EVENT. `post_header_length` is the
// format description's for TABLE_MAP (8 with 6-byte table ids, 6 with 4-byte ones).
Status DecodeTableMap(std::string_view body, uint8_t post_header_length, TableMap& out);

// The table id alone, to look a cached map up before decoding the rest.
uint64_t PeekTableId(std::string_view body, uint8_t post_header_length);

// A readable type name ("int unsigned", "varchar(255)", "enum", "datetime(6)").
std::string TypeName(const ColumnInfo& column);

// The engine-neutral type the schema registry compares (ColumnSchema::canonical_type,
// docs/types.md). It follows how values are encoded (docs/mysql.md): "int64" for INT UNSIGNED,
// "string(n)" with n in characters, "boolean" for BIT(1), "other:bit(n)" for wider BITs.
std::string CanonicalType(const ColumnInfo& column);

}  // namespace tributary::mysql
