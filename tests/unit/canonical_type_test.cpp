#define BOOST_TEST_MODULE canonical_type_test
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/mysql/binlog_event.h"
#include "connectors/mysql/table_map.h"
#include "connectors/postgres/pg_type.h"
#include "connectors/postgres/snapshot.h"

namespace tributary {
namespace {

// ---- PostgreSQL ----

using postgres::BuiltinPgType;
using postgres::CatalogColumn;
using postgres::PgType;
using postgres::TypeCategory;

// varchar(n), bpchar(n) and numeric(p,s) as pg_attribute.atttypmod stores them.
constexpr int32_t Chars(int32_t n) { return n + 4; }
constexpr int32_t Numeric(int32_t precision, int32_t scale) {
  return ((precision << 16) | (scale & 0x7FF)) + 4;
}

struct PgCase {
  uint32_t oid;
  int32_t modifier;
  std::string_view canonical;
};

BOOST_AUTO_TEST_CASE(postgres_builtin_types) {
  const std::vector<PgCase> cases = {
      {16, -1, "boolean"},
      {21, -1, "int16"},
      {23, -1, "int32"},
      {20, -1, "int64"},
      {26, -1, "int64"},  // oid: unsigned 32 bits
      {700, -1, "float32"},
      {701, -1, "float64"},
      {1700, Numeric(10, 2), "decimal(10,2)"},
      {1700, Numeric(38, 0), "decimal(38,0)"},
      {1700, Numeric(5, -3), "decimal(5,-3)"},  // PostgreSQL 15 allows negative scales
      {1700, -1, "decimal"},
      {1043, Chars(255), "string(255)"},
      {1043, -1, "string"},
      {1042, Chars(1), "string(1)"},
      {25, -1, "string"},
      {18, -1, "string"},
      {19, -1, "string"},
      {17, -1, "bytes"},
      {1082, -1, "date"},
      {1083, -1, "time"},
      {1083, 3, "time"},
      {1114, 6, "timestamp"},
      {1184, -1, "timestamptz"},
      {114, -1, "json"},
      {3802, -1, "json"},
      {2950, -1, "uuid"},
      {1007, -1, "array<int32>"},
      {1015, Chars(10), "array<string(10)>"},
      {1231, Numeric(12, 4), "array<decimal(12,4)>"},
      {1185, -1, "array<timestamptz>"},
      {3807, -1, "array<json>"},
      {1001, -1, "array<bytes>"},
  };
  for (const PgCase& c : cases) {
    const PgType* type = BuiltinPgType(c.oid);
    BOOST_REQUIRE_MESSAGE(type != nullptr, "no builtin type " << c.oid);
    BOOST_TEST(postgres::CanonicalType(*type, c.modifier) == c.canonical,
               type->name << " with modifier " << c.modifier);
  }
}

BOOST_AUTO_TEST_CASE(postgres_types_resolved_from_the_catalog) {
  // What PostgresSource::ResolveType builds for types outside the built-in table.
  const PgType mood{.oid = 16390, .name = "public.mood", .category = TypeCategory::kEnum};
  BOOST_TEST(postgres::CanonicalType(mood, -1) == "string");
  const PgType moods{.oid = 16389,
                     .name = "public._mood",
                     .category = TypeCategory::kArray,
                     .element = TypeCategory::kEnum,
                     .element_oid = 16390};
  BOOST_TEST(postgres::CanonicalType(moods, -1) == "array<string>");
  // Written as PostgreSQL's text: the canonical type says so, without pg_catalog.
  const PgType interval{.oid = 1186, .name = "pg_catalog.interval"};
  BOOST_TEST(postgres::CanonicalType(interval, -1) == "other:interval");
  const PgType timetz{.oid = 1266, .name = "pg_catalog.timetz"};
  BOOST_TEST(postgres::CanonicalType(timetz, -1) == "other:timetz");
  const PgType money{.oid = 790, .name = "pg_catalog.money"};
  BOOST_TEST(postgres::CanonicalType(money, -1) == "other:money");
  const PgType point{.oid = 16400, .name = "geo.point3"};
  BOOST_TEST(postgres::CanonicalType(point, -1) == "other:geo.point3");
  // Domains: their base type's, under the domain's modifier (the column's is -1).
  const PgType price{.oid = 16410,
                     .name = "public.price",
                     .category = TypeCategory::kNumeric,
                     .base_oid = 1700,
                     .base_modifier = Numeric(12, 2)};
  BOOST_TEST(postgres::CanonicalType(price, -1) == "decimal(12,2)");
  const PgType positive{
      .oid = 16411, .name = "public.positive", .category = TypeCategory::kInteger, .base_oid = 21};
  BOOST_TEST(postgres::CanonicalType(positive, -1) == "int16");
  const PgType code{.oid = 16412,
                    .name = "public.code",
                    .category = TypeCategory::kText,
                    .base_oid = 1043,
                    .base_modifier = Chars(8)};
  BOOST_TEST(postgres::CanonicalType(code, -1) == "string(8)");
}

std::vector<bool> Keys(const std::vector<CatalogColumn>& columns) {
  return postgres::KeyColumns(columns);
}

CatalogColumn Column(bool identity, bool primary) {
  return CatalogColumn{.name = "c", .identity = identity, .primary = primary};
}

BOOST_AUTO_TEST_CASE(postgres_event_key_is_the_primary_key_when_identity_carries_it) {
  // DEFAULT: identity = primary key.
  BOOST_TEST((Keys({Column(true, true), Column(false, false)}) == std::vector<bool>{true, false}));
  // FULL with a primary key: pgoutput flags every column; the key stays the primary key.
  BOOST_TEST((Keys({Column(true, false), Column(true, true), Column(true, false)}) ==
              std::vector<bool>{false, true, false}));
  // FULL without a primary key: every column, as before.
  BOOST_TEST((Keys({Column(true, false), Column(true, false)}) == std::vector<bool>{true, true}));
  // USING INDEX (a, b) covering the primary key (a).
  BOOST_TEST((Keys({Column(true, true), Column(true, false), Column(false, false)}) ==
              std::vector<bool>{true, false, false}));
  // USING INDEX (b) not covering the primary key (a): deletes carry only b, so b is the key.
  BOOST_TEST((Keys({Column(false, true), Column(true, false)}) == std::vector<bool>{false, true}));
  // NOTHING, or DEFAULT without a primary key: no key.
  BOOST_TEST(
      (Keys({Column(false, false), Column(false, false)}) == std::vector<bool>{false, false}));
}

// ---- MySQL / MariaDB ----

using mysql::Charset;
using mysql::ColumnInfo;
using mysql::ColumnType;
using mysql::Logical;

ColumnInfo Mysql(ColumnType type, bool is_unsigned = false) {
  ColumnInfo c;
  c.type = type;
  c.is_unsigned = is_unsigned;
  return c;
}

ColumnInfo Text(ColumnType type, uint32_t length, Charset charset, uint8_t char_bytes) {
  ColumnInfo c = Mysql(type);
  c.length = length;
  c.charset = charset;
  c.char_bytes = char_bytes;
  return c;
}

BOOST_AUTO_TEST_CASE(mysql_types) {
  ColumnInfo decimal = Mysql(ColumnType::kNewDecimal);
  decimal.precision = 30;
  decimal.scale = 10;
  ColumnInfo bit1 = Mysql(ColumnType::kBit);
  bit1.bits = 1;
  ColumnInfo bit10 = Mysql(ColumnType::kBit);
  bit10.bits = 10;
  ColumnInfo uuid = Text(ColumnType::kString, 16, Charset::kBinary, 1);
  uuid.logical = Logical::kUuid;
  ColumnInfo inet6 = Text(ColumnType::kString, 16, Charset::kBinary, 1);
  inet6.logical = Logical::kInet6;
  const std::vector<std::pair<ColumnInfo, std::string_view>> cases = {
      {Mysql(ColumnType::kTiny), "int16"},
      {Mysql(ColumnType::kTiny, true), "int16"},
      {Mysql(ColumnType::kShort), "int16"},
      {Mysql(ColumnType::kShort, true), "int32"},
      {Mysql(ColumnType::kInt24), "int32"},
      {Mysql(ColumnType::kInt24, true), "int32"},
      {Mysql(ColumnType::kLong), "int32"},
      {Mysql(ColumnType::kLong, true), "int64"},
      {Mysql(ColumnType::kLongLong), "int64"},
      {Mysql(ColumnType::kLongLong, true), "uint64"},
      {decimal, "decimal(30,10)"},
      {Mysql(ColumnType::kFloat), "float32"},
      {Mysql(ColumnType::kDouble), "float64"},
      {bit1, "boolean"},
      {bit10, "other:bit(10)"},
      {Mysql(ColumnType::kYear), "int16"},
      {Mysql(ColumnType::kDate), "date"},
      {Mysql(ColumnType::kTime2), "time"},
      {Mysql(ColumnType::kDateTime2), "timestamp"},
      {Mysql(ColumnType::kTimestamp2), "timestamptz"},
      {Mysql(ColumnType::kTimestamp), "timestamptz"},
      // The binlog gives bytes; the canonical type counts characters.
      {Text(ColumnType::kVarchar, 1200, Charset::kUtf8, 4), "string(300)"},
      {Text(ColumnType::kVarchar, 30, Charset::kUtf8, 3), "string(10)"},
      {Text(ColumnType::kVarchar, 10, Charset::kLatin1, 1), "string(10)"},
      {Text(ColumnType::kString, 20, Charset::kUtf8, 4), "string(5)"},
      {Text(ColumnType::kVarchar, 300, Charset::kBinary, 1), "bytes(300)"},
      {Text(ColumnType::kString, 4, Charset::kBinary, 1), "bytes(4)"},
      {Text(ColumnType::kBlob, 2, Charset::kUtf8, 4), "string"},
      {Text(ColumnType::kBlob, 4, Charset::kUtf8, 4), "string"},  // MariaDB JSON
      {Text(ColumnType::kBlob, 2, Charset::kBinary, 1), "bytes"},
      {Mysql(ColumnType::kEnum), "string"},
      {Mysql(ColumnType::kSet), "string"},
      {Mysql(ColumnType::kJson), "json"},  // MySQL binary JSON
      {Mysql(ColumnType::kGeometry), "other:geometry"},
      {uuid, "uuid"},
      {inet6, "string"},
  };
  for (const auto& [column, canonical] : cases) {
    BOOST_TEST(mysql::CanonicalType(column) == canonical, mysql::TypeName(column));
  }
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(TRIBUTARY_SOURCE_DIR) + "/tests/fixtures/mysql/" + name,
                   std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "missing fixture " << name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last TABLE_MAP of a binlog file.
mysql::TableMap LastTableMap(const std::string& file) {
  using mysql::EventType;
  mysql::TableMap map;
  mysql::FormatDescription format;
  mysql::ChecksumAlg alg = mysql::ChecksumAlg::kOff;
  size_t at = 4;
  while (at + mysql::kEventHeaderSize <= file.size()) {
    const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(file[i])); };
    const uint32_t size = b(at + 9) | b(at + 10) << 8 | b(at + 11) << 16 | b(at + 12) << 24;
    BOOST_REQUIRE(at + size <= file.size());
    const std::string_view bytes(file.data() + at, size);
    at += size;
    if (static_cast<EventType>(bytes[4]) == EventType::kFormatDescription) {
      BOOST_REQUIRE(mysql::DecodeFormatDescription(bytes, format).ok());
      alg = format.checksum;
      continue;
    }
    mysql::RawEvent event;
    BOOST_REQUIRE(mysql::DecodeEvent(bytes, alg, event).ok());
    if (event.header.type == EventType::kTableMap) {
      BOOST_REQUIRE(mysql::DecodeTableMap(event.body, format.post_header_lengths[18], map).ok());
    }
  }
  return map;
}

// shop.types of tests/fixtures/mysql/types.binlog (MariaDB 10.11, binlog_row_metadata=FULL):
// `id INT PRIMARY KEY` then 35 nullable columns, one per type.
BOOST_AUTO_TEST_CASE(mysql_table_map_of_a_real_binlog) {
  mysql::TableMap map = LastTableMap(ReadFixture("types.binlog"));
  BOOST_REQUIRE(map.columns.size() == 36u);
  // The null bitmap: only the primary key is NOT NULL.
  BOOST_TEST(!map.columns[0].nullable);
  for (size_t i = 1; i < map.columns.size(); ++i) {
    BOOST_TEST(map.columns[i].nullable, map.columns[i].name);
  }
  // What the source adds from the server's catalog: bytes per character of each collation
  // (45 utf8mb4_general_ci, 46 utf8mb4_bin, 8 latin1_swedish_ci, 63 binary), and that u and ip
  // are MariaDB's UUID and INET6.
  for (ColumnInfo& c : map.columns) {
    c.char_bytes = c.collation == 45 || c.collation == 46 ? 4 : c.collation != 0 ? 1 : 0;
  }
  map.columns[34].logical = Logical::kUuid;
  map.columns[35].logical = Logical::kInet6;
  std::vector<std::string> canonical;
  for (const ColumnInfo& c : map.columns) canonical.push_back(c.name + " " + CanonicalType(c));
  const std::vector<std::string> expected = {
      "id int32",         "ti int16",          "tiu int16",       "si int16",
      "mi int32",         "mu int32",          "bi int64",        "bu uint64",
      "de decimal(20,6)", "de0 decimal(5,0)",  "fl float32",      "db float64",
      "b1 boolean",       "b10 other:bit(10)", "yr int16",        "dt date",
      "tm time",          "tm3 time",          "tm6 time",        "dtm timestamp",
      "dtm6 timestamp",   "ts timestamptz",    "ts3 timestamptz", "c5 string(5)",
      "vc string(300)",   "l1 string(10)",     "bn bytes(4)",     "vb bytes(10)",
      "tx string",        "bl bytes",          "en string",       "st string",
      "js string",        "g other:geometry",  "u uuid",          "ip string",
  };
  BOOST_TEST(canonical == expected, boost::test_tools::per_element());
}

}  // namespace
}  // namespace tributary
