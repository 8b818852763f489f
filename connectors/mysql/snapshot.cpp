#include "connectors/mysql/snapshot.h"

#include <fmt/format.h>

#include <charconv>

namespace tributary::mysql {

namespace {

constexpr std::string_view kMarker = "|snapshot=";

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool Unhex(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int high = HexDigit(hex[i]);
    const int low = HexDigit(hex[i + 1]);
    if (high < 0 || low < 0) return false;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return true;
}

}  // namespace

bool SplitSnapshotPosition(std::string_view position, std::string& checkpoint,
                           std::optional<SnapshotProgress>& progress) {
  progress.reset();
  const size_t marker = position.rfind(kMarker);
  if (marker == std::string_view::npos) {
    checkpoint = std::string(position);
    return true;
  }
  checkpoint = std::string(position.substr(0, marker));
  std::string_view rest = position.substr(marker + kMarker.size());
  const size_t first = rest.find(':');
  const size_t second = first == std::string_view::npos ? first : rest.find(':', first + 1);
  if (second == std::string_view::npos) return false;
  SnapshotProgress out;
  const std::string_view rows = rest.substr(0, first);
  const auto [end, ec] = std::from_chars(rows.data(), rows.data() + rows.size(), out.rows);
  if (ec != std::errc() || end != rows.data() + rows.size()) return false;
  if (!Unhex(rest.substr(first + 1, second - first - 1), out.table)) return false;
  std::string_view after = rest.substr(second + 1);
  if (after == "*") {
    out.table_done = true;
  } else {
    // Each key value is "x<hex>", comma-separated, so that an empty value stays visible.
    while (!after.empty()) {
      const size_t comma = after.find(',');
      const std::string_view item = after.substr(0, comma);
      if (item.empty() || item[0] != 'x') return false;
      std::string value;
      if (!Unhex(item.substr(1), value)) return false;
      out.after.push_back(std::move(value));
      after = comma == std::string_view::npos ? std::string_view() : after.substr(comma + 1);
    }
    if (out.after.empty()) return false;
  }
  progress = std::move(out);
  return true;
}

std::string FormatSnapshotPosition(std::string_view checkpoint, const SnapshotProgress& progress) {
  std::string out(checkpoint);
  out += kMarker;
  out += std::to_string(progress.rows);
  out.push_back(':');
  out += Hex(progress.table);
  out.push_back(':');
  if (progress.table_done) {
    out.push_back('*');
    return out;
  }
  for (size_t i = 0; i < progress.after.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('x');
    out += Hex(progress.after[i]);
  }
  return out;
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "`";
  for (const char c : name) {
    if (c == '`') out.push_back('`');
    out.push_back(c);
  }
  out.push_back('`');
  return out;
}

ColumnInfo ColumnInfoOf(const CatalogColumn& c) {
  ColumnInfo info;
  info.name = c.name;
  info.key = c.key;
  info.nullable = c.nullable;
  info.char_bytes = c.char_bytes;
  info.is_unsigned = c.column_type.find("unsigned") != std::string::npos;
  const std::string& t = c.data_type;
  const bool binary = c.charset.empty();
  info.charset = binary ? Charset::kBinary : Charset::kUtf8;
  const auto bytes = static_cast<uint32_t>(c.octet_length);
  if (t == "tinyint") {
    info.type = ColumnType::kTiny;
  } else if (t == "smallint") {
    info.type = ColumnType::kShort;
  } else if (t == "mediumint") {
    info.type = ColumnType::kInt24;
  } else if (t == "int") {
    info.type = ColumnType::kLong;
  } else if (t == "bigint") {
    info.type = ColumnType::kLongLong;
  } else if (t == "float") {
    info.type = ColumnType::kFloat;
  } else if (t == "double") {
    info.type = ColumnType::kDouble;
  } else if (t == "decimal") {
    info.type = ColumnType::kNewDecimal;
    info.precision = static_cast<uint8_t>(c.numeric_precision);
    info.scale = static_cast<uint8_t>(c.numeric_scale);
  } else if (t == "bit") {
    info.type = ColumnType::kBit;
    info.bits = static_cast<uint16_t>(c.numeric_precision);
  } else if (t == "year") {
    info.type = ColumnType::kYear;
  } else if (t == "date") {
    info.type = ColumnType::kDate;
  } else if (t == "time") {
    info.type = ColumnType::kTime2;
    info.length = c.datetime_precision;
  } else if (t == "datetime") {
    info.type = ColumnType::kDateTime2;
    info.length = c.datetime_precision;
  } else if (t == "timestamp") {
    info.type = ColumnType::kTimestamp2;
    info.length = c.datetime_precision;
  } else if (t == "varchar" || t == "varbinary") {
    info.type = ColumnType::kVarchar;
    info.length = bytes;
  } else if (t == "char" || t == "binary") {
    info.type = ColumnType::kString;
    info.length = bytes;
  } else if (t == "uuid" || t == "inet6" || t == "inet4") {
    info.type = ColumnType::kString;
    info.charset = Charset::kBinary;
    info.length = t == "inet4" ? 4 : 16;
    info.logical = t == "uuid" ? Logical::kUuid : t == "inet6" ? Logical::kInet6 : Logical::kInet4;
  } else if (t.ends_with("blob") || t.ends_with("text")) {
    info.type = ColumnType::kBlob;
    info.length = t.starts_with("tiny")     ? 1
                  : t.starts_with("medium") ? 3
                  : t.starts_with("long")   ? 4
                                            : 2;
  } else if (t == "json") {
    info.type = ColumnType::kBlob;  // MariaDB's JSON is LONGTEXT
    info.length = 4;
  } else if (t == "enum") {
    info.type = ColumnType::kEnum;
  } else if (t == "set") {
    info.type = ColumnType::kSet;
  } else {
    info.type = ColumnType::kGeometry;
  }
  return info;
}

SnapshotExpression SnapshotExpressionOf(const CatalogColumn& c, const std::string& q) {
  const std::string& t = c.data_type;
  if (t == "tinyint" || t == "smallint" || t == "mediumint" || t == "int" || t == "bigint" ||
      t == "float" || t == "double") {
    return {q, ValueKind::kRaw};
  }
  if (t == "year") return {fmt::format("{} + 0", q), ValueKind::kRaw};
  if (t == "bit") {
    if (c.numeric_precision == 1) {
      return {fmt::format("ELT({} + 1, 'false', 'true')", q), ValueKind::kRaw};  // NULL stays
    }
    return {fmt::format("LPAD(BIN({} + 0), {}, '0')", q, c.numeric_precision), ValueKind::kString};
  }
  if (t == "time") return {fmt::format("TIME_FORMAT({}, '%H:%i:%s.%f')", q), ValueKind::kString};
  if (t == "datetime") {
    return {fmt::format("DATE_FORMAT({}, '%Y-%m-%dT%H:%i:%s.%f')", q), ValueKind::kString};
  }
  if (t == "timestamp") {
    return {fmt::format("DATE_FORMAT({}, '%Y-%m-%dT%H:%i:%s.%fZ')", q), ValueKind::kString};
  }
  const bool binary_string =
      c.charset.empty() && (t == "binary" || t == "varbinary" || t.ends_with("blob"));
  if (binary_string) {
    return {fmt::format("REPLACE(TO_BASE64({}), '\\n', '')", q), ValueKind::kString};
  }
  if (t == "geometry" || t == "point" || t == "linestring" || t == "polygon" || t == "multipoint" ||
      t == "multilinestring" || t == "multipolygon" || t == "geometrycollection") {
    return {fmt::format("CONCAT('{{\"wkb\":\"', REPLACE(TO_BASE64(ST_AsWKB({0})), '\\n', ''), "
                        "'\",\"srid\":', ST_SRID({0}), '}}')",
                        q),
            ValueKind::kRaw};
  }
  // Decimals, dates, text, ENUM, SET, UUID, INET: the server's text is the canonical form.
  return {q, ValueKind::kString};
}

}  // namespace tributary::mysql
