#define BOOST_TEST_MODULE value_normalizer_test
#include "connectors/postgres/value_normalizer.h"

#include <boost/test/unit_test.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/core/envelope_writer.h"
#include "agent/core/event.h"
#include "connectors/postgres/pg_type.h"

namespace tributary::postgres {
namespace {

using nlohmann::json;

const PgType& Builtin(uint32_t oid) {
  const PgType* type = BuiltinPgType(oid);
  BOOST_REQUIRE_MESSAGE(type != nullptr, "no builtin type " << oid);
  return *type;
}

// The canonical text and kind, as AppendCanonical leaves them in the arena.
std::pair<std::string, ValueKind> Canonical(const PgType& type, std::string_view text) {
  Batch batch;
  batch.arena = "prefix";
  Result<Value> value = AppendCanonical(type, text, batch);
  BOOST_REQUIRE_MESSAGE(value.ok(), value.status().ToString());
  BOOST_TEST(value->offset == 6u);
  BOOST_TEST(batch.arena.size() == 6u + value->length);
  return {std::string(batch.Text(*value)), value->kind};
}

// The value as a consumer sees it: normalized, written in an envelope, parsed back.
json Normalize(const PgType& type, std::string_view text) {
  Batch batch;
  auto schema = std::make_shared<TableSchema>();
  schema->connector = "postgresql";
  schema->columns.push_back(ColumnSchema{.name = "v",
                                         .type_name = type.name,
                                         .type_oid = type.oid,
                                         .canonical_type = CanonicalType(type, -1)});
  Result<Value> value = AppendCanonical(type, text, batch);
  BOOST_REQUIRE_MESSAGE(value.ok(), value.status().ToString());
  batch.values.push_back(*value);
  Event event;
  event.table = batch.Retain(schema);
  event.after = 0;
  event.position = batch.AddValue(ValueKind::kString, "p");
  EnvelopeWriter writer;
  std::string line;
  writer.Write(batch, event, 0, line);
  BOOST_REQUIRE(line.find('\n') == std::string::npos);
  BOOST_REQUIRE(line.find('\r') == std::string::npos);
  return json::parse(line).at("after").at("v");
}

json NormalizeBuiltin(uint32_t oid, std::string_view text) { return Normalize(Builtin(oid), text); }

BOOST_AUTO_TEST_CASE(builtin_table_matches_the_catalog) {
  const std::vector<std::pair<uint32_t, std::string>> scalars = {
      {16, "bool"},        {17, "bytea"},         {18, "char"},      {19, "name"},
      {20, "int8"},        {21, "int2"},          {23, "int4"},      {25, "text"},
      {26, "oid"},         {114, "json"},         {700, "float4"},   {701, "float8"},
      {1042, "bpchar"},    {1043, "varchar"},     {1082, "date"},    {1083, "time"},
      {1114, "timestamp"}, {1184, "timestamptz"}, {1700, "numeric"}, {2950, "uuid"},
      {3802, "jsonb"}};
  const std::vector<std::pair<uint32_t, uint32_t>> arrays = {
      {1000, 16},   {1005, 21},   {1007, 23},   {1016, 20},   {1028, 26},   {1021, 700},
      {1022, 701},  {1231, 1700}, {1009, 25},   {1015, 1043}, {1014, 1042}, {1003, 19},
      {1002, 18},   {1001, 17},   {1182, 1082}, {1183, 1083}, {1115, 1114}, {1185, 1184},
      {2951, 2950}, {199, 114},   {3807, 3802}};
  for (const auto& [oid, name] : scalars) {
    const PgType& type = Builtin(oid);
    BOOST_TEST(type.oid == oid);
    BOOST_TEST(type.name == name);
    BOOST_TEST((type.category != TypeCategory::kArray && type.category != TypeCategory::kUnmapped));
  }
  for (const auto& [oid, element_oid] : arrays) {
    const PgType& type = Builtin(oid);
    const PgType& element = Builtin(element_oid);
    BOOST_TEST(type.oid == oid);
    BOOST_TEST((type.category == TypeCategory::kArray));
    BOOST_TEST(type.element_oid == element_oid);
    BOOST_TEST((type.element == element.category));
    BOOST_TEST(type.name == "_" + element.name);
  }
  BOOST_TEST(BuiltinPgType(0) == nullptr);
  BOOST_TEST(BuiltinPgType(1186) == nullptr);  // interval: unmapped
  BOOST_TEST(BuiltinPgType(99999) == nullptr);
}

BOOST_AUTO_TEST_CASE(bool_becomes_json_boolean) {
  BOOST_TEST(NormalizeBuiltin(16, "t") == json(true));
  BOOST_TEST(NormalizeBuiltin(16, "f") == json(false));
  BOOST_TEST((Canonical(Builtin(16), "t").second == ValueKind::kRaw));
}

BOOST_AUTO_TEST_CASE(integers_become_json_numbers) {
  BOOST_TEST(NormalizeBuiltin(21, "-32768") == json(-32768));
  BOOST_TEST(NormalizeBuiltin(23, "0") == json(0));
  BOOST_TEST(NormalizeBuiltin(23, "2147483647") == json(2147483647));
  BOOST_TEST(NormalizeBuiltin(20, "-9223372036854775808") == json(INT64_MIN));
  BOOST_TEST(NormalizeBuiltin(20, "9223372036854775807") == json(INT64_MAX));
  BOOST_TEST(NormalizeBuiltin(26, "4294967295") == json(4294967295u));
  BOOST_TEST(Canonical(Builtin(20), "-17").first == "-17");
}

BOOST_AUTO_TEST_CASE(finite_floats_become_json_numbers_and_specials_strings) {
  BOOST_TEST(NormalizeBuiltin(701, "1.5") == json(1.5));
  BOOST_TEST(NormalizeBuiltin(701, "1e+30") == json(1e30));
  BOOST_TEST(NormalizeBuiltin(701, "1e-07") == json(1e-7));
  BOOST_TEST(NormalizeBuiltin(701, "1.2345678901234568e+17") == json(1.2345678901234568e+17));
  BOOST_TEST(NormalizeBuiltin(700, "3.4e+38") == json(3.4e38));
  BOOST_TEST(NormalizeBuiltin(700, "1e-45").get<double>() == 1e-45);
  BOOST_TEST(NormalizeBuiltin(701, "-0").is_number());
  BOOST_TEST(Canonical(Builtin(701), "-0").first == "-0");
  BOOST_TEST(NormalizeBuiltin(701, "NaN") == json("NaN"));
  BOOST_TEST(NormalizeBuiltin(701, "Infinity") == json("Infinity"));
  BOOST_TEST(NormalizeBuiltin(700, "-Infinity") == json("-Infinity"));
  BOOST_TEST((Canonical(Builtin(701), "NaN").second == ValueKind::kString));
  BOOST_TEST((Canonical(Builtin(701), "1.5").second == ValueKind::kRaw));
}

BOOST_AUTO_TEST_CASE(numeric_keeps_exact_digits_as_string) {
  BOOST_TEST(NormalizeBuiltin(1700, "12345.6700") == json("12345.6700"));
  BOOST_TEST(NormalizeBuiltin(1700, "-0.00000000000000000001") == json("-0.00000000000000000001"));
  BOOST_TEST(NormalizeBuiltin(1700, "100000000000000000000000000000000000001") ==
             json("100000000000000000000000000000000000001"));
  BOOST_TEST(NormalizeBuiltin(1700, "NaN") == json("NaN"));
  BOOST_TEST(NormalizeBuiltin(1700, "Infinity") == json("Infinity"));
  BOOST_TEST(NormalizeBuiltin(1700, "-Infinity") == json("-Infinity"));
}

BOOST_AUTO_TEST_CASE(text_types_become_strings) {
  BOOST_TEST(NormalizeBuiltin(25, "hello") == json("hello"));
  BOOST_TEST(NormalizeBuiltin(1043, "") == json(""));
  BOOST_TEST(NormalizeBuiltin(1042, "a  ") == json("a  "));
  BOOST_TEST(NormalizeBuiltin(19, "pg_class") == json("pg_class"));
  BOOST_TEST(NormalizeBuiltin(18, "a") == json("a"));
  const std::string nasty = "q\"uote \\ back\nnew\rret\ttab\x01\x1f é 😀 \u2028";
  BOOST_TEST(NormalizeBuiltin(25, nasty) == json(nasty));
  // Stored unescaped: masking hashes this text.
  BOOST_TEST(Canonical(Builtin(25), nasty).first == nasty);
}

BOOST_AUTO_TEST_CASE(bytea_becomes_padded_base64) {
  BOOST_TEST(NormalizeBuiltin(17, "\\x0102ff") == json("AQL/"));
  BOOST_TEST(NormalizeBuiltin(17, "\\x") == json(""));
  BOOST_TEST(NormalizeBuiltin(17, "\\x01") == json("AQ=="));
  BOOST_TEST(NormalizeBuiltin(17, "\\x0102") == json("AQI="));
  BOOST_TEST(NormalizeBuiltin(17, "\\x68656c6c6f") == json("aGVsbG8="));
  BOOST_TEST(NormalizeBuiltin(17, "\\xFBFF") == json("+/8="));
}

BOOST_AUTO_TEST_CASE(date_becomes_iso_date) {
  BOOST_TEST(NormalizeBuiltin(1082, "2024-01-31") == json("2024-01-31"));
  BOOST_TEST(NormalizeBuiltin(1082, "0001-01-01") == json("0001-01-01"));
  // Astronomical years: 1 BC is year 0.
  BOOST_TEST(NormalizeBuiltin(1082, "0001-01-01 BC") == json("0000-01-01"));
  BOOST_TEST(NormalizeBuiltin(1082, "4713-01-01 BC") == json("-4712-01-01"));
  BOOST_TEST(NormalizeBuiltin(1082, "10000-01-01") == json("+10000-01-01"));
  BOOST_TEST(NormalizeBuiltin(1082, "5874897-12-31") == json("+5874897-12-31"));
  BOOST_TEST(NormalizeBuiltin(1082, "infinity") == json("infinity"));
  BOOST_TEST(NormalizeBuiltin(1082, "-infinity") == json("-infinity"));
}

BOOST_AUTO_TEST_CASE(time_always_has_six_fractional_digits) {
  BOOST_TEST(NormalizeBuiltin(1083, "13:45:00") == json("13:45:00.000000"));
  BOOST_TEST(NormalizeBuiltin(1083, "13:45:00.123456") == json("13:45:00.123456"));
  BOOST_TEST(NormalizeBuiltin(1083, "13:45:01.5") == json("13:45:01.500000"));
  BOOST_TEST(NormalizeBuiltin(1083, "00:00:00.000001") == json("00:00:00.000001"));
  BOOST_TEST(NormalizeBuiltin(1083, "24:00:00") == json("24:00:00.000000"));
}

BOOST_AUTO_TEST_CASE(timestamp_becomes_iso_local_date_time) {
  BOOST_TEST(NormalizeBuiltin(1114, "2024-01-31 13:45:00") == json("2024-01-31T13:45:00.000000"));
  BOOST_TEST(NormalizeBuiltin(1114, "2024-01-31 13:45:00.123456") ==
             json("2024-01-31T13:45:00.123456"));
  BOOST_TEST(NormalizeBuiltin(1114, "2024-01-31 13:45:00.1234") ==
             json("2024-01-31T13:45:00.123400"));
  BOOST_TEST(NormalizeBuiltin(1114, "0044-03-15 12:00:00 BC") ==
             json("-0043-03-15T12:00:00.000000"));
  BOOST_TEST(NormalizeBuiltin(1114, "12345-01-01 00:00:00") ==
             json("+12345-01-01T00:00:00.000000"));
  BOOST_TEST(NormalizeBuiltin(1114, "infinity") == json("infinity"));
  BOOST_TEST(NormalizeBuiltin(1114, "-infinity") == json("-infinity"));
}

BOOST_AUTO_TEST_CASE(timestamptz_becomes_utc_with_z) {
  BOOST_TEST(NormalizeBuiltin(1184, "2024-01-31 13:45:00.1234+00") ==
             json("2024-01-31T13:45:00.123400Z"));
  BOOST_TEST(NormalizeBuiltin(1184, "2024-01-31 13:45:00+00:00") ==
             json("2024-01-31T13:45:00.000000Z"));
  BOOST_TEST(NormalizeBuiltin(1184, "2024-01-31 19:15:00.1234+05:30") ==
             json("2024-01-31T13:45:00.123400Z"));
  BOOST_TEST(NormalizeBuiltin(1184, "2024-01-31 10:15:00.1234-03:30") ==
             json("2024-01-31T13:45:00.123400Z"));
  // Local mean time offsets carry seconds.
  BOOST_TEST(NormalizeBuiltin(1184, "1850-01-01 05:53:28+05:53:28") ==
             json("1850-01-01T00:00:00.000000Z"));
  // Offsets that cross midnight, a leap day and a year end.
  BOOST_TEST(NormalizeBuiltin(1184, "2024-03-01 02:00:00.5+05") ==
             json("2024-02-29T21:00:00.500000Z"));
  BOOST_TEST(NormalizeBuiltin(1184, "2023-12-31 22:00:00-03") ==
             json("2024-01-01T01:00:00.000000Z"));
  BOOST_TEST(NormalizeBuiltin(1184, "0044-03-15 12:00:00+00 BC") ==
             json("-0043-03-15T12:00:00.000000Z"));
  BOOST_TEST(NormalizeBuiltin(1184, "0001-01-01 01:00:00+02") ==
             json("0000-12-31T23:00:00.000000Z"));
  BOOST_TEST(NormalizeBuiltin(1184, "infinity") == json("infinity"));
  BOOST_TEST(NormalizeBuiltin(1184, "-infinity") == json("-infinity"));
}

BOOST_AUTO_TEST_CASE(uuid_becomes_string) {
  BOOST_TEST(NormalizeBuiltin(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11") ==
             json("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
}

BOOST_AUTO_TEST_CASE(json_is_embedded_on_one_line) {
  const std::string entered =
      "{ \"a\" : [1, 2],\n\t\"b c\": \"x\\ny  z\",\r\n \"d\": 1.000000000000000000001 }";
  BOOST_TEST(Canonical(Builtin(114), entered).first ==
             "{\"a\":[1,2],\"b c\":\"x\\ny  z\",\"d\":1.000000000000000000001}");
  BOOST_TEST(NormalizeBuiltin(114, entered) ==
             json::parse("{\"a\":[1,2],\"b c\":\"x\\ny  z\",\"d\":1.000000000000000000001}"));
  BOOST_TEST(NormalizeBuiltin(114, " \"s\" ") == json("s"));
  BOOST_TEST(NormalizeBuiltin(114, "42") == json(42));
  BOOST_TEST(NormalizeBuiltin(114, "[ ]") == json::array());
  BOOST_TEST(NormalizeBuiltin(114, "{ }") == json::object());
  BOOST_TEST(NormalizeBuiltin(114, "null") == json(nullptr));
  const std::string nested =
      R"([ {"k" : "\" \\ \/ \b\f\n\r\t \u00e9"}, [true, false, null], -1.5e-3 ])";
  BOOST_TEST(Canonical(Builtin(114), nested).first ==
             R"([{"k":"\" \\ \/ \b\f\n\r\t \u00e9"},[true,false,null],-1.5e-3])");
  BOOST_TEST(NormalizeBuiltin(114, nested) == json::parse(nested));
  const std::string jsonb = "{\"a\": \"\xc3\xa9 \\\"\", \"b\": null, \"n\": [1, 2]}";
  // jsonb_out's blanks after ':' and ',' go too: one canonical JSON form.
  BOOST_TEST(Canonical(Builtin(3802), jsonb).first ==
             "{\"a\":\"\xc3\xa9 \\\"\",\"b\":null,\"n\":[1,2]}");
  BOOST_TEST(NormalizeBuiltin(3802, jsonb) == json::parse(jsonb));
  BOOST_TEST((Canonical(Builtin(3802), jsonb).second == ValueKind::kRaw));
}

BOOST_AUTO_TEST_CASE(enum_and_unmapped_become_strings) {
  const PgType mood{16385, "public.mood", TypeCategory::kEnum, TypeCategory::kUnmapped, 0};
  BOOST_TEST(Normalize(mood, "happy") == json("happy"));
  const PgType moods{16384, "public._mood", TypeCategory::kArray, TypeCategory::kEnum, 16385};
  BOOST_TEST(Normalize(moods, "{happy,\"very sad\",NULL}") ==
             json::parse(R"(["happy","very sad",null])"));
  const PgType interval{1186, "interval", TypeCategory::kUnmapped, TypeCategory::kUnmapped, 0};
  BOOST_TEST(Normalize(interval, "P1Y2M3DT4H5M6S") == json("P1Y2M3DT4H5M6S"));
  const PgType intervals{1187, "_interval", TypeCategory::kArray, TypeCategory::kUnmapped, 1186};
  BOOST_TEST(Normalize(intervals, "{P1D,\"a\\\"b\"}") == json::parse(R"(["P1D","a\"b"])"));
}

BOOST_AUTO_TEST_CASE(arrays_become_json_arrays) {
  BOOST_TEST(NormalizeBuiltin(1007, "{1,2,NULL}") == json::parse("[1,2,null]"));
  BOOST_TEST(NormalizeBuiltin(1007, "{}") == json::array());
  BOOST_TEST(NormalizeBuiltin(1007, "{NULL}") == json::parse("[null]"));
  BOOST_TEST(NormalizeBuiltin(1007, "{{1,2},{3,4}}") == json::parse("[[1,2],[3,4]]"));
  BOOST_TEST(NormalizeBuiltin(1007, "[0:1]={1,2}") == json::parse("[1,2]"));
  BOOST_TEST(NormalizeBuiltin(1007, "[0:1][-1:0]={{1,2},{3,4}}") == json::parse("[[1,2],[3,4]]"));
  BOOST_TEST(NormalizeBuiltin(1007, "{{{1},{2}},{{3},{4}}}") ==
             json::parse("[[[1],[2]],[[3],[4]]]"));
  BOOST_TEST(NormalizeBuiltin(1009, R"({"a b","c\"d",NULL,"NULL","","x\\y","{}",null})") ==
             json::parse(R"(["a b","c\"d",null,"NULL","","x\\y","{}",null])"));
  BOOST_TEST(NormalizeBuiltin(1009, "{\"line\nbreak\ttab \xc3\xa9 \\\"q\\\" \\\\ b\",\x01}") ==
             json::array({"line\nbreak\ttab \xc3\xa9 \"q\" \\ b", "\x01"}));
  BOOST_TEST(NormalizeBuiltin(1000, "{t,f,NULL}") == json::parse("[true,false,null]"));
  BOOST_TEST(NormalizeBuiltin(1005, "{-1}") == json::parse("[-1]"));
  BOOST_TEST(NormalizeBuiltin(1016, "{-9223372036854775808}") == json::array({INT64_MIN}));
  BOOST_TEST(NormalizeBuiltin(1028, "{26}") == json::parse("[26]"));
  BOOST_TEST(NormalizeBuiltin(1022, "{1.5,NaN,Infinity,-Infinity,1e+30}") ==
             json::parse(R"([1.5,"NaN","Infinity","-Infinity",1e30])"));
  BOOST_TEST(NormalizeBuiltin(1021, "{0.1}") == json::parse("[0.1]"));
  BOOST_TEST(NormalizeBuiltin(1231, "{12345.6700,NaN}") == json::parse(R"(["12345.6700","NaN"])"));
  BOOST_TEST(NormalizeBuiltin(1015, "{\"x y\"}") == json::parse(R"(["x y"])"));
  BOOST_TEST(NormalizeBuiltin(1014, "{\"a  \"}") == json::parse(R"(["a  "])"));
  BOOST_TEST(NormalizeBuiltin(1003, "{pg_class}") == json::parse(R"(["pg_class"])"));
  BOOST_TEST(NormalizeBuiltin(1002, "{a}") == json::parse(R"(["a"])"));
  BOOST_TEST(NormalizeBuiltin(1001, R"({"\\x0102","\\x",NULL})") ==
             json::parse(R"(["AQI=","",null])"));
  BOOST_TEST(NormalizeBuiltin(1182, "{2024-01-31,\"0001-01-01 BC\",infinity}") ==
             json::parse(R"(["2024-01-31","0000-01-01","infinity"])"));
  BOOST_TEST(NormalizeBuiltin(1183, "{13:45:00}") == json::parse(R"(["13:45:00.000000"])"));
  BOOST_TEST(NormalizeBuiltin(1115, "{\"2024-01-31 13:45:00\"}") ==
             json::parse(R"(["2024-01-31T13:45:00.000000"])"));
  BOOST_TEST(NormalizeBuiltin(1185, "{\"2024-01-31 13:45:00.1234+00\",-infinity}") ==
             json::parse(R"(["2024-01-31T13:45:00.123400Z","-infinity"])"));
  BOOST_TEST(NormalizeBuiltin(2951, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}") ==
             json::parse(R"(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"])"));
  BOOST_TEST(NormalizeBuiltin(199, R"({"{\"k\": \"v\\\"w\", \"n\": [1, 2]}","{\"nl\":
 1}"})") == json::parse(R"([{"k":"v\"w","n":[1,2]},{"nl":1}])"));
  BOOST_TEST(NormalizeBuiltin(3807, R"({"{\"a\": \"b,c\"}","null",NULL})") ==
             json::parse(R"([{"a":"b,c"},null,null])"));
}

// What PostgresSource::ResolveType builds for an array of a type outside the built-in table.
PgType ArrayOf(TypeCategory element, uint32_t element_oid, std::string element_name,
               char delimiter = ',', int32_t element_modifier = -1) {
  return PgType{.oid = 16500,
                .name = "public._x",
                .category = TypeCategory::kArray,
                .element = element,
                .element_oid = element_oid,
                .element_name = std::move(element_name),
                .element_modifier = element_modifier,
                .delimiter = delimiter};
}

BOOST_AUTO_TEST_CASE(arrays_of_any_type_are_arrays_of_the_element_encoding) {
  // Elements written as text: each the string its type would be on its own.
  const PgType intervals = ArrayOf(TypeCategory::kUnmapped, 1186, "pg_catalog.interval");
  BOOST_TEST(Normalize(intervals, "{{P-1D,NULL},{NULL,PT0S}}") ==
             json::parse(R"([["P-1D",null],[null,"PT0S"]])"));
  BOOST_TEST(CanonicalType(intervals, -1) == "array<other:interval>");
  const PgType money = ArrayOf(TypeCategory::kUnmapped, 790, "pg_catalog.money");
  BOOST_TEST(Normalize(money, R"({"-$1,234.50",NULL})") == json::parse(R"j(["-$1,234.50",null])j"));
  // Composites and ranges are quoted, with their quotes and backslashes escaped.
  const PgType complex = ArrayOf(TypeCategory::kUnmapped, 16400, "public.complex");
  BOOST_TEST(Normalize(complex, R"j({"(1.5,-2,\"a b\")","(,,)",NULL})j") ==
             json::parse(R"j(["(1.5,-2,\"a b\")","(,,)",null])j"));
  BOOST_TEST(CanonicalType(complex, -1) == "array<other:public.complex>");
  // box separates elements (and sub-arrays) with ';': its values hold commas unquoted.
  const PgType boxes = ArrayOf(TypeCategory::kUnmapped, 603, "pg_catalog.box", ';');
  BOOST_TEST(Normalize(boxes, "{{(1,1),(0,0);NULL};{NULL;(3,3),(2,2)}}") ==
             json::parse(R"j([["(1,1),(0,0)",null],[null,"(3,3),(2,2)"]])j"));
  BOOST_TEST(Normalize(boxes, "{}") == json::array());
  // A ';' is just a character under the ',' delimiter.
  BOOST_TEST(Normalize(intervals, "{a;b}") == json::parse(R"(["a;b"])"));
  // Arrays of domains: elements as the base type, described under the domain's modifier.
  const PgType prices =
      ArrayOf(TypeCategory::kNumeric, 1700, "public.price", ',', (12 << 16 | 2) + 4);
  BOOST_TEST(Normalize(prices, "{{12.50,NULL},{NaN,-1.00}}") ==
             json::parse(R"([["12.50",null],["NaN","-1.00"]])"));
  BOOST_TEST(CanonicalType(prices, -1) == "array<decimal(12,2)>");
  const PgType positives = ArrayOf(TypeCategory::kInteger, 23, "public.posint");
  BOOST_TEST(Normalize(positives, "{1,NULL}") == json::parse("[1,null]"));
  BOOST_TEST(CanonicalType(positives, -1) == "array<int32>");
  const PgType moods = ArrayOf(TypeCategory::kEnum, 16390, "public.mood_domain");
  BOOST_TEST(CanonicalType(moods, -1) == "array<string>");
}

BOOST_AUTO_TEST_CASE(box_arrays_split_only_at_semicolons) {
  const PgType boxes = ArrayOf(TypeCategory::kUnmapped, 603, "pg_catalog.box", ';');
  // Under ';' a comma is part of the element: one element, and not the NULL literal.
  BOOST_TEST(Normalize(boxes, "{NULL,NULL}") == json::parse(R"(["NULL,NULL"])"));
  Batch batch;
  BOOST_TEST(AppendCanonical(boxes, "{(1,1),(0,0);NULL", batch).status().code() ==
             StatusCode::kCorruptData);
  BOOST_TEST(AppendCanonical(boxes, "{(1,1),(0,0);;NULL}", batch).status().code() ==
             StatusCode::kCorruptData);
  BOOST_TEST(batch.arena.empty());
}

BOOST_AUTO_TEST_CASE(malformed_values_are_corrupt_data_naming_the_type) {
  const std::vector<std::pair<uint32_t, std::string>> cases = {
      {16, "true"},
      {16, "T"},
      {16, ""},
      {23, "abc"},
      {23, ""},
      {23, "-"},
      {23, "1.5"},
      {23, "01"},
      {23, "+1"},
      {23, " 1"},
      {20, "1e5"},
      {701, ".5"},
      {701, "1."},
      {701, "1e"},
      {701, "nan"},
      {701, "inf"},
      {701, "1,5"},
      {701, "--1"},
      {700, "0x10"},
      {1700, "1e5"},
      {1700, ""},
      {1700, "1."},
      {1700, ".5"},
      {1700, "abc"},
      {17, "0102"},
      {17, "\\x0"},
      {17, "\\xzz"},
      {17, "\\x01g2"},
      {1082, "2024-1-31"},
      {1082, "2024-13-01"},
      {1082, "2024-01-32"},
      {1082, "24-01-31"},
      {1082, "0000-01-01"},
      {1082, "2024-01-31 AD"},
      {1082, "2024-01-31 BC "},
      {1082, "Infinity"},
      {1083, "25:00:00"},
      {1083, "13:45"},
      {1083, "13:45:00."},
      {1083, "13:45:00.1234567"},
      {1083, "24:00:01"},
      {1083, "13:60:00"},
      {1114, "2024-01-31T13:45:00"},
      {1114, "2024-01-31 13:45:00+00"},
      {1114, "2024-01-31"},
      {1114, "2024-01-31 24:00:00"},
      {1184, "2024-01-31 13:45:00"},
      {1184, "2024-01-31 13:45:00+0"},
      {1184, "2024-01-31 13:45:00+00:0"},
      {1184, "2024-01-31 13:45:00 UTC"},
      {1184, "2024-01-31 13:45:00+00 AD"},
      {2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"},
      {2950, "a0eebc999c0b4ef8bb6d6bb9bd380a11aaaa"},
      {2950, "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
      {114, "{\"a\": 1"},
      {114, "\"unterminated"},
      {114, "}"},
      {114, ""},
      {114, "[1]]"},
      {114, "{\"a\":\"x\ny\"}"},
      {114, "\"a\\"},
      {114, "hunter2"},
      {114, "tru"},
      {114, "[1,]"},
      {114, "{\"a\" 1}"},
      {114, "{\"a\":1,}"},
      {114, "{1:2}"},
      {114, "01"},
      {114, "1 2"},
      {114, "{\"a\":1}x"},
      {114, "\"\\x\""},
      {114, "\"\\u12\""},
      {114, "[1}"},
      {3802, ""},
      {3802, "{\"a\": l}"},
      {3802, "{\"a\": 1"},
      {3802, "{\"a\n\": 1}"},
      {3802, "{\"a\": 1}}"},
      {25, "\xff"},
      {25, "\xc0\x80"},
      {25, "\xed\xa0\x80"},
      {25, "\xf4\x90\x80\x80"},
      {25, "abc\xe2\x82"},
      {1007, "{1,2"},
      {1007, "1,2}"},
      {1007, "{1,,2}"},
      {1007, "{1,2}x"},
      {1007, "{{1,2},3}"},
      {1007, "{1,{2}}"},
      {1007, "[0:1]{1,2}"},
      {1007, "[0:1={1,2}"},
      {1007, "{abc}"},
      {1007, "{\"1}"},
      {1007, ""},
      {1007, "{}}"},
      {1007, "{{{{{{{1}}}}}}}"},
      {1009, "{\"a\"b}"},
      {1009, "{a"},
      {1009, "{\"\xff\"}"},
      {1001, R"({"\\xzz"})"},
      {1000, "{true}"},
      {1185, "{\"2024-01-31 13:45:00\"}"},
      {199, R"({"{\"a\": 1"})"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const PgType& type = Builtin(cases[i].first);
    Batch batch;
    batch.arena = "kept";
    Result<Value> value = AppendCanonical(type, cases[i].second, batch);
    BOOST_TEST_CONTEXT("type " << type.name << ", case #" << i) {
      BOOST_TEST(!value.ok());
      if (!value.ok()) {
        BOOST_TEST(value.status().code() == StatusCode::kCorruptData);
        BOOST_TEST(value.status().message().find(type.name) != std::string::npos);
      }
      BOOST_TEST(batch.arena == "kept");
    }
  }
}

BOOST_AUTO_TEST_CASE(errors_never_carry_the_value) {
  const std::string secret = "hunter2-secret-4111111111111111";
  for (uint32_t oid :
       {16u, 23u, 701u, 1700u, 17u, 1082u, 1083u, 1114u, 1184u, 2950u, 114u, 1007u}) {
    Batch batch;
    Result<Value> value = AppendCanonical(Builtin(oid), secret, batch);
    BOOST_REQUIRE(!value.ok());
    BOOST_TEST(value.status().ToString().find("secret") == std::string::npos);
    BOOST_TEST(value.status().ToString().find("4111") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(values_append_after_each_other_in_the_arena) {
  Batch batch;
  Result<Value> first = AppendCanonical(Builtin(23), "7", batch);
  Result<Value> failed = AppendCanonical(Builtin(23), "x", batch);
  Result<Value> second = AppendCanonical(Builtin(1082), "2024-01-31", batch);
  BOOST_REQUIRE(first.ok());
  BOOST_REQUIRE(!failed.ok());
  BOOST_REQUIRE(second.ok());
  BOOST_TEST(batch.Text(*first) == "7");
  BOOST_TEST(batch.Text(*second) == "2024-01-31");
  BOOST_TEST(second->offset == 1u);
  BOOST_TEST(batch.arena == "72024-01-31");
}

}  // namespace
}  // namespace tributary::postgres
