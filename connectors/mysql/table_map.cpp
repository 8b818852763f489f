#include "connectors/mysql/table_map.h"

#include <fmt/format.h>

#include <algorithm>

#include "connectors/mysql/byte_reader.h"

namespace tributary::mysql {

namespace {

// Optional metadata field codes (opt_metadata_field_type).
enum class MetadataField : uint8_t {
  kSignedness = 1,
  kDefaultCharset = 2,
  kColumnCharset = 3,
  kColumnName = 4,
  kSetStrValue = 5,
  kEnumStrValue = 6,
  kGeometryType = 7,
  kSimplePrimaryKey = 8,
  kPrimaryKeyWithPrefix = 9,
  kEnumAndSetDefaultCharset = 10,
  kEnumAndSetColumnCharset = 11,
};

// A table has at most 4096 columns; a count above that is damage, not a table.
constexpr uint64_t kMaxColumns = 4096;

Status Corrupt(std::string_view what) {
  return Status::CorruptData(fmt::format("binlog: malformed TABLE_MAP: {}", what));
}

bool IsEnumOrSet(const ColumnInfo& column) {
  return column.type == ColumnType::kEnum || column.type == ColumnType::kSet;
}

// Reads the per-type metadata of `column` (type already set from the type byte).
void ReadTypeMetadata(ByteReader& reader, ColumnInfo& column) {
  switch (column.type) {
    case ColumnType::kFloat:
    case ColumnType::kDouble:
    case ColumnType::kBlob:
    case ColumnType::kTinyBlob:
    case ColumnType::kMediumBlob:
    case ColumnType::kLongBlob:
    case ColumnType::kGeometry:
    case ColumnType::kJson:
    case ColumnType::kBlobCompressed:
    case ColumnType::kTime2:
    case ColumnType::kDateTime2:
    case ColumnType::kTimestamp2:
      column.length = reader.U8();
      break;
    case ColumnType::kVarchar:
    case ColumnType::kVarString:
    case ColumnType::kVarcharCompressed:
      column.length = reader.U16();
      break;
    case ColumnType::kBit: {
      const uint8_t bits = reader.U8();
      const uint8_t bytes = reader.U8();
      column.bits = static_cast<uint16_t>(bytes * 8 + bits);
      break;
    }
    case ColumnType::kNewDecimal:
      column.precision = reader.U8();
      column.scale = reader.U8();
      break;
    case ColumnType::kString:
    case ColumnType::kEnum:
    case ColumnType::kSet: {
      // Big-endian pair: the real type, then a length whose top bits hide in the real type.
      const uint8_t real_type = reader.U8();
      const uint8_t low = reader.U8();
      if (real_type == static_cast<uint8_t>(ColumnType::kEnum) ||
          real_type == static_cast<uint8_t>(ColumnType::kSet)) {
        column.type = static_cast<ColumnType>(real_type);
        column.length = low;
      } else {
        column.type = ColumnType::kString;
        column.length = (((real_type & 0x30U) ^ 0x30U) << 4U) | low;
      }
      break;
    }
    default:
      break;
  }
}

// Applies a DEFAULT_CHARSET-style field (default collation, then index/collation pairs) or a
// COLUMN_CHARSET-style one (one collation each) to the columns that `applies` selects.
template <typename Pred>
bool ApplyCharsets(std::string_view value, bool with_default, std::vector<ColumnInfo>& columns,
                   Pred applies) {
  std::vector<ColumnInfo*> targets;
  for (ColumnInfo& c : columns) {
    if (applies(c)) targets.push_back(&c);
  }
  ByteReader reader(value);
  if (with_default) {
    const auto fallback = static_cast<uint32_t>(reader.Packed());
    for (ColumnInfo* c : targets) c->collation = fallback;
    while (!reader.failed() && reader.remaining() > 0) {
      const uint64_t index = reader.Packed();
      const auto collation = static_cast<uint32_t>(reader.Packed());
      if (index >= targets.size()) return false;
      targets[index]->collation = collation;
    }
  } else {
    for (ColumnInfo* c : targets) c->collation = static_cast<uint32_t>(reader.Packed());
  }
  return !reader.failed();
}

bool ReadStringLists(std::string_view value, std::vector<ColumnInfo>& columns, ColumnType type) {
  ByteReader reader(value);
  for (ColumnInfo& c : columns) {
    if (c.type != type) continue;
    const uint64_t count = reader.Packed();
    if (count > reader.remaining()) return false;
    c.values.clear();
    for (uint64_t i = 0; i < count; ++i) c.values.emplace_back(reader.PackedBytes());
  }
  return !reader.failed();
}

Status ReadOptionalMetadata(ByteReader& reader, TableMap& out) {
  std::vector<ColumnInfo>& columns = out.columns;
  while (reader.remaining() > 0) {
    const auto field = static_cast<MetadataField>(reader.U8());
    const std::string_view value = reader.PackedBytes();
    if (reader.failed()) return Corrupt("optional metadata overruns the event");
    ByteReader v(value);
    bool ok = true;
    switch (field) {
      case MetadataField::kSignedness: {
        size_t bit = 0;
        for (ColumnInfo& c : columns) {
          if (!c.numeric()) continue;
          if (bit / 8 >= value.size()) return Corrupt("SIGNEDNESS too short");
          c.is_unsigned = (static_cast<unsigned char>(value[bit / 8]) & (0x80U >> (bit % 8))) != 0;
          ++bit;
        }
        break;
      }
      case MetadataField::kDefaultCharset:
      case MetadataField::kColumnCharset:
        ok = ApplyCharsets(value, field == MetadataField::kDefaultCharset, columns,
                           [](const ColumnInfo& c) { return c.character(); });
        break;
      case MetadataField::kEnumAndSetDefaultCharset:
      case MetadataField::kEnumAndSetColumnCharset:
        ok = ApplyCharsets(value, field == MetadataField::kEnumAndSetDefaultCharset, columns,
                           IsEnumOrSet);
        break;
      case MetadataField::kColumnName:
        for (ColumnInfo& c : columns) c.name = std::string(v.PackedBytes());
        ok = !v.failed();
        out.has_names = ok;
        break;
      case MetadataField::kSetStrValue:
        ok = ReadStringLists(value, columns, ColumnType::kSet);
        break;
      case MetadataField::kEnumStrValue:
        ok = ReadStringLists(value, columns, ColumnType::kEnum);
        break;
      case MetadataField::kGeometryType:
        for (ColumnInfo& c : columns) {
          if (c.type == ColumnType::kGeometry) c.geometry_type = static_cast<uint32_t>(v.Packed());
        }
        ok = !v.failed();
        break;
      case MetadataField::kSimplePrimaryKey:
      case MetadataField::kPrimaryKeyWithPrefix:
        while (ok && v.remaining() > 0) {
          const uint64_t index = v.Packed();
          if (field == MetadataField::kPrimaryKeyWithPrefix) (void)v.Packed();  // prefix length
          ok = !v.failed() && index < columns.size();
          if (ok) columns[index].key = true;
        }
        break;
      default:
        break;  // newer fields (e.g. MySQL's column visibility) do not change decoding
    }
    if (!ok) return Corrupt(fmt::format("optional metadata field {}", static_cast<int>(field)));
  }
  return Status::Ok();
}

}  // namespace

bool ColumnInfo::character() const {
  switch (type) {
    case ColumnType::kString:
    case ColumnType::kVarString:
    case ColumnType::kVarchar:
    case ColumnType::kBlob:
    case ColumnType::kTinyBlob:
    case ColumnType::kMediumBlob:
    case ColumnType::kLongBlob:
    case ColumnType::kVarcharCompressed:
    case ColumnType::kBlobCompressed:
      return true;
    default:
      return false;
  }
}

bool ColumnInfo::numeric() const {
  switch (type) {
    case ColumnType::kTiny:
    case ColumnType::kShort:
    case ColumnType::kInt24:
    case ColumnType::kLong:
    case ColumnType::kLongLong:
    case ColumnType::kNewDecimal:
    case ColumnType::kFloat:
    case ColumnType::kDouble:
    case ColumnType::kDecimal:
      return true;
    default:
      return false;
  }
}

Charset CharsetOfCollation(uint32_t id) {
  // Ids as MariaDB 10.11 and MySQL 8 number them (information_schema.COLLATIONS).
  switch (id) {
    case 63:
      return Charset::kBinary;
    case 5:
    case 8:
    case 15:
    case 31:
    case 47:
    case 48:
    case 49:
    case 94:
    case 1032:
    case 1071:
      return Charset::kLatin1;
    case 11:
    case 65:
    case 1035:
    case 1089:
      return Charset::kAscii;
    case 33:
    case 45:
    case 46:
    case 76:
    case 83:
    case 223:
    case 1057:
    case 1069:
    case 1070:
    case 1107:
      return Charset::kUtf8;
    case 35:
    case 90:
    case 159:
      return Charset::kUcs2;
    case 54:
    case 55:
      return Charset::kUtf16;
    case 56:
    case 62:
    case 1080:
    case 1086:
      return Charset::kUtf16le;
    case 60:
    case 61:
      return Charset::kUtf32;
    default:
      break;
  }
  if ((id >= 192 && id <= 215) || (id >= 224 && id <= 247) || (id >= 255 && id <= 323) ||
      (id >= 576 && id <= 578) || (id >= 608 && id <= 610)) {
    return Charset::kUtf8;
  }
  if ((id >= 128 && id <= 151) || (id >= 640 && id <= 642)) return Charset::kUcs2;
  if ((id >= 101 && id <= 124) || (id >= 672 && id <= 674)) return Charset::kUtf16;
  if ((id >= 160 && id <= 183) || (id >= 736 && id <= 738)) return Charset::kUtf32;
  return Charset::kUnknown;
}

uint64_t PeekTableId(std::string_view body, uint8_t post_header_length) {
  ByteReader reader(body);
  return reader.Uint(post_header_length == 6 ? 4 : 6);
}

Status DecodeTableMap(std::string_view body, uint8_t post_header_length, TableMap& out) {
  ByteReader reader(body);
  out.table_id = reader.Uint(post_header_length == 6 ? 4 : 6);
  (void)reader.U16();  // flags
  out.database = std::string(reader.Bytes(reader.U8()));
  reader.Skip(1);
  out.table = std::string(reader.Bytes(reader.U8()));
  reader.Skip(1);
  const uint64_t count = reader.Packed();
  if (reader.failed()) return Corrupt("truncated header");
  if (count > kMaxColumns || count > reader.remaining()) return Corrupt("bad column count");
  std::string_view types = reader.Bytes(count);
  out.columns.assign(count, ColumnInfo{});
  out.has_names = false;
  std::string_view metadata = reader.PackedBytes();
  std::string_view nulls = reader.Bytes((count + 7) / 8);
  if (reader.failed()) return Corrupt("truncated column metadata");
  ByteReader meta(metadata);
  for (size_t i = 0; i < count; ++i) {
    ColumnInfo& column = out.columns[i];
    column.type = static_cast<ColumnType>(static_cast<unsigned char>(types[i]));
    ReadTypeMetadata(meta, column);
    column.nullable = (static_cast<unsigned char>(nulls[i / 8]) & (1U << (i % 8))) != 0;
  }
  if (meta.failed() || meta.remaining() != 0) return Corrupt("type metadata does not match types");
  RETURN_IF_ERROR(ReadOptionalMetadata(reader, out));
  for (ColumnInfo& column : out.columns) {
    if (column.character() || IsEnumOrSet(column)) {
      column.charset =
          column.collation == 0 ? Charset::kUnknown : CharsetOfCollation(column.collation);
    }
  }
  return Status::Ok();
}

std::string TypeName(const ColumnInfo& column) {
  const char* suffix = column.is_unsigned ? " unsigned" : "";
  switch (column.type) {
    case ColumnType::kTiny:
      return fmt::format("tinyint{}", suffix);
    case ColumnType::kShort:
      return fmt::format("smallint{}", suffix);
    case ColumnType::kInt24:
      return fmt::format("mediumint{}", suffix);
    case ColumnType::kLong:
      return fmt::format("int{}", suffix);
    case ColumnType::kLongLong:
      return fmt::format("bigint{}", suffix);
    case ColumnType::kFloat:
      return fmt::format("float{}", suffix);
    case ColumnType::kDouble:
      return fmt::format("double{}", suffix);
    case ColumnType::kNewDecimal:
    case ColumnType::kDecimal:
      return fmt::format("decimal({},{}){}", column.precision, column.scale, suffix);
    case ColumnType::kBit:
      return fmt::format("bit({})", column.bits);
    case ColumnType::kYear:
      return "year";
    case ColumnType::kDate:
    case ColumnType::kNewDate:
      return "date";
    case ColumnType::kTime:
      return "time";
    case ColumnType::kTime2:
      return fmt::format("time({})", column.length);
    case ColumnType::kDateTime:
      return "datetime";
    case ColumnType::kDateTime2:
      return fmt::format("datetime({})", column.length);
    case ColumnType::kTimestamp:
      return "timestamp";
    case ColumnType::kTimestamp2:
      return fmt::format("timestamp({})", column.length);
    case ColumnType::kVarchar:
    case ColumnType::kVarString:
      return fmt::format("{}({})", column.charset == Charset::kBinary ? "varbinary" : "varchar",
                         column.length);
    case ColumnType::kString:
      if (column.logical == Logical::kUuid) return "uuid";
      if (column.logical == Logical::kInet6) return "inet6";
      if (column.logical == Logical::kInet4) return "inet4";
      return fmt::format("{}({})", column.charset == Charset::kBinary ? "binary" : "char",
                         column.length);
    case ColumnType::kBlob:
    case ColumnType::kTinyBlob:
    case ColumnType::kMediumBlob:
    case ColumnType::kLongBlob: {
      static constexpr const char* kSizes[] = {"", "tiny", "", "medium", "long"};
      const char* size = column.length <= 4 ? kSizes[column.length] : "";
      return fmt::format("{}{}", size, column.charset == Charset::kBinary ? "blob" : "text");
    }
    case ColumnType::kJson:
      return "json";
    case ColumnType::kEnum:
      return "enum";
    case ColumnType::kSet:
      return "set";
    case ColumnType::kGeometry:
      return "geometry";
    case ColumnType::kNull:
      return "null";
    default:
      return fmt::format("type{}", static_cast<int>(column.type));
  }
}

std::string CanonicalType(const ColumnInfo& column) {
  const bool is_unsigned = column.is_unsigned;
  const bool binary = column.charset == Charset::kBinary;
  switch (column.type) {
    case ColumnType::kTiny:
    case ColumnType::kYear:
      return "int16";
    case ColumnType::kShort:
      return is_unsigned ? "int32" : "int16";
    case ColumnType::kInt24:
      return "int32";
    case ColumnType::kLong:
      return is_unsigned ? "int64" : "int32";
    case ColumnType::kLongLong:
      return is_unsigned ? "uint64" : "int64";
    case ColumnType::kFloat:
      return "float32";
    case ColumnType::kDouble:
      return "float64";
    case ColumnType::kNewDecimal:
      return fmt::format("decimal({},{})", column.precision, column.scale);
    case ColumnType::kDecimal:
      return "decimal";  // pre-5.0 DECIMAL: the binlog carries no precision for it
    case ColumnType::kBit:
      return column.bits == 1 ? "boolean" : fmt::format("other:bit({})", column.bits);
    case ColumnType::kDate:
    case ColumnType::kNewDate:
      return "date";
    case ColumnType::kTime:
    case ColumnType::kTime2:
      return "time";
    case ColumnType::kDateTime:
    case ColumnType::kDateTime2:
      return "timestamp";
    case ColumnType::kTimestamp:
    case ColumnType::kTimestamp2:
      return "timestamptz";
    case ColumnType::kVarchar:
    case ColumnType::kVarString:
    case ColumnType::kVarcharCompressed:
    case ColumnType::kString:
      if (column.logical == Logical::kUuid) return "uuid";
      if (column.logical == Logical::kInet6 || column.logical == Logical::kInet4) return "string";
      // The binlog gives the most bytes a value may take; characters are what DDL declares.
      if (binary) return fmt::format("bytes({})", column.length);
      if (column.char_bytes == 0) return "string";
      return fmt::format("string({})", column.length / column.char_bytes);
    case ColumnType::kBlob:
    case ColumnType::kTinyBlob:
    case ColumnType::kMediumBlob:
    case ColumnType::kLongBlob:
    case ColumnType::kBlobCompressed:
      return binary ? "bytes" : "string";  // MariaDB's JSON is LONGTEXT: a string
    case ColumnType::kJson:
      return "json";
    case ColumnType::kEnum:
    case ColumnType::kSet:
      return "string";
    case ColumnType::kGeometry:
    case ColumnType::kNull:
      break;
  }
  return fmt::format("other:{}", TypeName(column));
}

}  // namespace tributary::mysql
