#define BOOST_TEST_MODULE pg_types_test
#include <fmt/format.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/pg_agent.h"
#include "tests/support/pg_server.h"

// Every type issue 3 lists goes through insert, update and delete (and a snapshot), each value
// checked against the encoding docs/types.md documents: the JSON value and its JSON type.
namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

struct ServerFixture {
  ServerFixture() { server = PgServer::Start(); }
  ~ServerFixture() { server.reset(); }
  static inline std::unique_ptr<PgServer> server;
};
BOOST_TEST_GLOBAL_FIXTURE(ServerFixture);

PgServer& Pg() { return *ServerFixture::server; }

// A SQL literal of a type and the JSON text docs/types.md says the event holds for it.
struct Sample {
  std::string sql;
  std::string event;
};

// A column of `type` and, unless `array` is false, a column of `type`[] holding 2-D arrays of
// its samples with NULL elements (an array element is encoded as the value on its own).
struct TypeCase {
  std::string column;
  std::string type;
  std::string canonical;  // the column's canonical type (docs/types.md)
  std::vector<Sample> samples;
  bool array = true;
};

const std::vector<TypeCase>& Cases() {
  static const std::vector<TypeCase> kCases = {
      // Numbers.
      {"i2", "int2", "int16", {{"-32768", "-32768"}, {"32767", "32767"}, {"0", "0"}}},
      {"i4", "int4", "int32", {{"-2147483648", "-2147483648"}, {"2147483647", "2147483647"}}},
      {"i8",
       "int8",
       "int64",
       {{"-9223372036854775808", "-9223372036854775808"},
        {"9223372036854775807", "9223372036854775807"}}},
      {"num",
       "numeric",
       "decimal",
       {{"'NaN'", R"j("NaN")j"},
        {"'Infinity'", R"j("Infinity")j"},
        {"'-Infinity'", R"j("-Infinity")j"},
        {"'-12345678901234567890.0100'", R"j("-12345678901234567890.0100")j"}}},
      {"num_s",
       "numeric(10,3)",
       "decimal(10,3)",
       {{"1.5", R"j("1.500")j"}, {"-0.0005", R"j("-0.001")j"}}},
      {"f4",
       "float4",
       "float32",
       {{"'NaN'", R"j("NaN")j"},
        {"'Infinity'", R"j("Infinity")j"},
        {"'-Infinity'", R"j("-Infinity")j"},
        {"0.1", "0.1"},
        {"'3.4028235e38'", "3.4028235e+38"}}},
      {"f8",
       "float8",
       "float64",
       {{"'-Infinity'", R"j("-Infinity")j"},
        {"'NaN'", R"j("NaN")j"},
        {"'Infinity'", R"j("Infinity")j"},
        {"'-1.5e-300'", "-1.5e-300"},
        {"0.1", "0.1"}}},
      {"mon",
       "money",
       "other:money",
       {{"-1234.5", R"j("-$1,234.50")j"},
        {"'92233720368547758.07'", R"j("$92,233,720,368,547,758.07")j"},
        {"0", R"j("$0.00")j"}}},
      // Text, binary and the like.
      {"bo", "bool", "boolean", {{"true", "true"}, {"false", "false"}}},
      {"tx",
       "text",
       "string",
       {{R"j('quote " \ and' || chr(10))j", R"j("quote \" \\ and\n")j"},
        {"''", R"j("")j"},
        // Control characters JSON must escape, and `\N`, COPY's text for NULL, as a value.
        {R"j(chr(9) || chr(13) || chr(8) || chr(12) || chr(11) || '\N\')j",
         R"j("\t\r\b\f\u000b\\N\\")j"}}},
      {"vc", "varchar(5)", "string(5)", {{"'héllo'", R"j("héllo")j"}, {"'NULL'", R"j("NULL")j"}}},
      {"bp", "char(3)", "string(3)", {{"'ab'", R"j("ab ")j"}, {"'{,}'", R"j("{,}")j"}}},
      {"nm", "name", "string", {{"'a b'", R"j("a b")j"}}},
      {"ch", "\"char\"", "string", {{"'x'", R"j("x")j"}}},
      {"by", "bytea", "bytes", {{R"j('\x00ff10')j", R"j("AP8Q")j"}, {R"j('\x')j", R"j("")j"}}},
      {"uu",
       "uuid",
       "uuid",
       {{"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", R"j("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")j"}}},
      {"js", "json", "json", {{R"j('{"a": [1, 2.50]}')j", R"j({"a":[1,2.50]})j"}, {"'[]'", "[]"}}},
      {"jb", "jsonb", "json", {{R"j('{"b": null}')j", R"j({"b":null})j"}, {"'\"s\"'", R"j("s")j"}}},
      {"xm",
       "xml",
       "other:xml",
       {{R"j('<a x="1">t &amp; u</a>')j", R"j("<a x=\"1\">t &amp; u</a>")j"},
        {"'plain'", R"j("plain")j"}}},
      {"tv",
       "tsvector",
       "other:tsvector",
       {{"'a fat cat'", R"j("'a' 'cat' 'fat'")j"},
        {R"j('''with space'':1A,3')j", R"j("'with space':1A,3")j"}}},
      {"tq",
       "tsquery",
       "other:tsquery",
       {{"'fat & !rat'", R"j("'fat' & !'rat'")j"}, {"'a <-> b'", R"j("'a' <-> 'b'")j"}}},
      {"bi", "bit(4)", "other:bit", {{"B'1010'", R"j("1010")j"}, {"B'0000'", R"j("0000")j"}}},
      {"vb", "varbit", "other:varbit", {{"B''", R"j("")j"}, {"B'101010101'", R"j("101010101")j"}}},
      // Dates and times.
      {"da",
       "date",
       "date",
       {{"'infinity'", R"j("infinity")j"},
        {"'-infinity'", R"j("-infinity")j"},
        {"'2024-02-29'", R"j("2024-02-29")j"},
        {"'0044-03-15 BC'", R"j("-0043-03-15")j"}}},
      {"ti",
       "time",
       "time",
       {{"'24:00:00'", R"j("24:00:00.000000")j"}, {"'00:00:00.000001'", R"j("00:00:00.000001")j"}}},
      {"tz",
       "timetz",
       "other:timetz",
       {{"'13:45:00.5+02:30'", R"j("13:45:00.5+02:30")j"},
        {"'23:59:59.999999-15:59'", R"j("23:59:59.999999-15:59")j"}}},
      {"ts",
       "timestamp",
       "timestamp",
       {{"'-infinity'", R"j("-infinity")j"},
        {"'infinity'", R"j("infinity")j"},
        {"'2024-02-29 13:45:01.123456'", R"j("2024-02-29T13:45:01.123456")j"},
        {"'294276-12-31 23:59:59.999999'", R"j("+294276-12-31T23:59:59.999999")j"}}},
      {"tt",
       "timestamptz",
       "timestamptz",
       {{"'infinity'", R"j("infinity")j"},
        {"'2024-02-29 13:45:01.5+02'", R"j("2024-02-29T11:45:01.500000Z")j"},
        {"'-infinity'", R"j("-infinity")j"}}},
      {"iv",
       "interval",
       "other:interval",
       {{"'-1 year -2 mons 3 days -04:05:06.5'", R"j("P-1Y-2M3DT-4H-5M-6.5S")j"},
        {"'0'", R"j("PT0S")j"},
        {"'178000000 years'", R"j("P178000000Y")j"}}},
      // Network addresses.
      {"ip",
       "inet",
       "other:inet",
       {{"'2001:db8::1/64'", R"j("2001:db8::1/64")j"},
        {"'::ffff:1.2.3.4'", R"j("::ffff:1.2.3.4")j"},
        {"'10.0.0.1'", R"j("10.0.0.1")j"}}},
      {"cr",
       "cidr",
       "other:cidr",
       {{"'10.0.0.0/8'", R"j("10.0.0.0/8")j"}, {"'2001:db8::/32'", R"j("2001:db8::/32")j"}}},
      {"ma",
       "macaddr",
       "other:macaddr",
       {{"'08:00:2b:01:02:03'", R"j("08:00:2b:01:02:03")j"},
        {"'ff-ff-ff-ff-ff-ff'", R"j("ff:ff:ff:ff:ff:ff")j"}}},
      {"m8",
       "macaddr8",
       "other:macaddr8",
       {{"'08:00:2b:01:02:03:04:05'", R"j("08:00:2b:01:02:03:04:05")j"},
        {"'08002b010203'", R"j("08:00:2b:ff:fe:01:02:03")j"}}},
      // Geometry. box arrays separate their elements with ';'.
      {"pt",
       "point",
       "other:point",
       {{"'(1.5,-2)'", R"j("(1.5,-2)")j"}, {"'(NaN,Infinity)'", R"j("(NaN,Infinity)")j"}}},
      {"li", "line", "other:line", {{"'{1,2,3}'", R"j("{1,2,3}")j"}}},
      {"ls", "lseg", "other:lseg", {{"'[(0,0),(1,1)]'", R"j("[(0,0),(1,1)]")j"}}},
      {"bx",
       "box",
       "other:box",
       {{"'(0,0),(1,1)'", R"j("(1,1),(0,0)")j"}, {"'(2,2),(-1,3)'", R"j("(2,3),(-1,2)")j"}}},
      {"pa",
       "path",
       "other:path",
       {{"'[(0,0),(1,1)]'", R"j("[(0,0),(1,1)]")j"},
        {"'((0,0),(1,1),(2,0))'", R"j("((0,0),(1,1),(2,0))")j"}}},
      {"po", "polygon", "other:polygon", {{"'((0,0),(1,1),(1,0))'", R"j("((0,0),(1,1),(1,0))")j"}}},
      {"ci", "circle", "other:circle", {{"'<(1,1),2>'", R"j("<(1,1),2>")j"}}},
      // Ranges and multiranges.
      {"r4",
       "int4range",
       "other:int4range",
       {{"'empty'", R"j("empty")j"}, {"'[1,5)'", R"j("[1,5)")j"}, {"'[,3]'", R"j("(,4)")j"}}},
      {"r8",
       "int8range",
       "other:int8range",
       {{"'[-9223372036854775808,0)'", R"j("[-9223372036854775808,0)")j"},
        {"'(,)'", R"j("(,)")j"}}},
      {"rn",
       "numrange",
       "other:numrange",
       {{"'[1.50,2.5]'", R"j("[1.50,2.5]")j"}, {"'empty'", R"j("empty")j"}}},
      {"rs",
       "tsrange",
       "other:tsrange",
       {{"'[2024-01-01,infinity)'", R"j("[\"2024-01-01 00:00:00\",infinity)")j"}}},
      {"rz",
       "tstzrange",
       "other:tstzrange",
       {{R"j('[-infinity,"2024-01-01 00:00+02")')j",
         R"j("[-infinity,\"2023-12-31 22:00:00+00\")")j"}}},
      {"rd",
       "daterange",
       "other:daterange",
       {{"'[2024-01-01,2024-01-05]'", R"j("[2024-01-01,2024-01-06)")j"},
        {"'empty'", R"j("empty")j"}}},
      {"m4",
       "int4multirange",
       "other:int4multirange",
       {{"'{[1,3),[5,7)}'", R"j("{[1,3),[5,7)}")j"}, {"'{}'", R"j("{}")j"}}},
      {"mi8", "int8multirange", "other:int8multirange", {{"'{(,0]}'", R"j("{(,1)}")j"}}},
      {"mn", "nummultirange", "other:nummultirange", {{"'{[1.5,2)}'", R"j("{[1.5,2)}")j"}}},
      {"ms",
       "tsmultirange",
       "other:tsmultirange",
       {{"'{[2024-01-01,2024-01-02)}'",
         R"j("{[\"2024-01-01 00:00:00\",\"2024-01-02 00:00:00\")}")j"}}},
      {"mz",
       "tstzmultirange",
       "other:tstzmultirange",
       {{"'{[2024-01-01 00:00+00,)}'", R"j("{[\"2024-01-01 00:00:00+00\",)}")j"}}},
      {"md",
       "datemultirange",
       "other:datemultirange",
       {{"'{[2024-01-01,infinity)}'", R"j("{[2024-01-01,infinity)}")j"}}},
      {"fr", "floatrange", "other:public.floatrange", {{"'[1.5,2.5)'", R"j("[1.5,2.5)")j"}}},
      {"fm",
       "floatmultirange",
       "other:public.floatmultirange",
       {{"'{[1,2), [3,4]}'", R"j("{[1,2),[3,4]}")j"}}},
      // Has a typelem but is no array: its text.
      {"i2v", "int2vector", "other:int2vector", {{"'1 2'", R"j("1 2")j"}, {"''", R"j("")j"}}},
      // User-defined types (created below): domains are their base type, enums their label,
      // composites their text.
      {"dpos", "posint", "int32", {{"1", "1"}, {"2147483647", "2147483647"}}},
      {"dpri", "price", "decimal(12,2)", {{"12.5", R"j("12.50")j"}, {"'NaN'", R"j("NaN")j"}}},
      {"dsho", "short_text", "string(5)", {{"'ab'", R"j("ab")j"}}},
      {"dsta",
       "stamp",
       "timestamptz",
       {{"'2024-01-31 19:15:00.1234+05:30'", R"j("2024-01-31T13:45:00.123400Z")j"},
        {"'infinity'", R"j("infinity")j"}}},
      {"ddur", "dur", "other:public.dur", {{"'-1 day'", R"j("P-1D")j"}}},
      {"en", "mood", "string", {{"'sad'", R"j("sad")j"}, {"'happy'", R"j("happy")j"}}},
      {"co",
       "complex",
       "other:public.complex",
       {{R"j('(1.5,-2,"a b")')j", R"j("(1.5,-2,\"a b\")")j"},
        {"'(,,)'", R"j("(,,)")j"},
        {R"j('(NaN,Infinity,"q""\\")')j", R"j("(NaN,Infinity,\"q\"\"\\\\\")")j"}}},
      // The oid family.
      {"oi", "oid", "int64", {{"4294967295", "4294967295"}, {"0", "0"}}},
      {"rcl", "regclass", "other:regclass", {{"'pg_class'", R"j("pg_class")j"}}},
      {"rty",
       "regtype",
       "other:regtype",
       {{"'int4'", R"j("integer")j"}, {"'int4[]'", R"j("integer[]")j"}}},
      {"rpr", "regproc", "other:regproc", {{"'now'", R"j("now")j"}}},
      {"rpd", "regprocedure", "other:regprocedure", {{"'abs(int4)'", R"j("abs(integer)")j"}}},
      {"rop", "regoper", "other:regoper", {{"'||/'", R"j("||/")j"}}},
      {"rot",
       "regoperator",
       "other:regoperator",
       {{"'+(int4,int4)'", R"j("+(integer,integer)")j"}}},
      {"rcf", "regconfig", "other:regconfig", {{"'english'", R"j("english")j"}}},
      {"rdi", "regdictionary", "other:regdictionary", {{"'simple'", R"j("simple")j"}}},
      {"rns", "regnamespace", "other:regnamespace", {{"'pg_catalog'", R"j("pg_catalog")j"}}},
      {"rro", "regrole", "other:regrole", {{"'pg_monitor'", R"j("pg_monitor")j"}}},
      {"rco", "regcollation", "other:regcollation", {{"'ucs_basic'", R"j("ucs_basic")j"}}},
      {"xi", "xid", "other:xid", {{"'4294967295'", R"j("4294967295")j"}}},
      {"x8", "xid8", "other:xid8", {{"'18446744073709551615'", R"j("18446744073709551615")j"}}},
      {"cid", "cid", "other:cid", {{"'0'", R"j("0")j"}}},
      {"tid", "tid", "other:tid", {{"'(4294967295,65535)'", R"j("(4294967295,65535)")j"}}},
      {"lsn", "pg_lsn", "other:pg_lsn", {{"'FFFFFFFF/FFFFFFFF'", R"j("FFFFFFFF/FFFFFFFF")j"}}},
      // Extensions.
      {"hs",
       "hstore",
       "other:public.hstore",
       {{R"j('a=>1, "b c"=>NULL')j", R"j("\"a\"=>\"1\", \"b c\"=>NULL")j"}, {"''", R"j("")j"}}},
      {"ct", "citext", "other:public.citext", {{"'MiXeD'", R"j("MiXeD")j"}}},
      // A domain over an array is that array.
      {"dar",
       "intarr",
       "array<int32>",
       {{"'{{1,NULL},{3,4}}'", "[[1,null],[3,4]]"}, {"'{}'", "[]"}},
       false},
  };
  return kCases;
}

constexpr size_t kValueRows = 3;  // ids 1..3 hold samples; id 4 is NULL everywhere

const Sample& SampleAt(const TypeCase& c, size_t index) {
  return c.samples[index % c.samples.size()];
}

std::string Cast(const TypeCase& c, size_t index) {
  return fmt::format("({})::{}", SampleAt(c, index).sql, c.type);
}

// [[v(i), NULL], [NULL, v(i+1)]]: two dimensions and NULL elements.
std::string ArraySql(const TypeCase& c, size_t index) {
  return fmt::format("ARRAY[[{}, NULL], [NULL, {}]]", Cast(c, index), Cast(c, index + 1));
}

json ArrayEvent(const TypeCase& c, size_t index) {
  return json::array({json::array({json::parse(SampleAt(c, index).event), nullptr}),
                      json::array({nullptr, json::parse(SampleAt(c, index + 1).event)})});
}

// What an update sets each array to: empty, one dimension with NULL, three dimensions, NULL
// only.
std::string UpdateArraySql(const TypeCase& c, size_t row) {
  switch (row) {
    case 0:
      return fmt::format("'{{}}'::{}[]", c.type);
    case 1:
      return fmt::format("ARRAY[{}, NULL]", Cast(c, row + 1));
    case 2:
      return fmt::format("ARRAY[[[NULL::{}]]]", c.type);
    default:
      return fmt::format("ARRAY[NULL::{}]", c.type);
  }
}

json UpdateArrayEvent(const TypeCase& c, size_t row) {
  switch (row) {
    case 0:
      return json::array();
    case 1:
      return json::array({json::parse(SampleAt(c, row + 1).event), nullptr});
    case 2:
      return json::parse("[[[null]]]");
    default:
      return json::parse("[null]");
  }
}

// Equal values of the same JSON type, recursively (nlohmann's == holds 1 equal to 1.0).
bool SameJson(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!SameJson(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : a.items()) {
      if (!b.contains(key) || !SameJson(value, b[key])) return false;
    }
    return true;
  }
  return a.dump() == b.dump();
}

// Compares two row images column by column, so that a failure names the column.
void CheckRow(const json& actual, const json& expected, const std::string& what) {
  BOOST_REQUIRE_MESSAGE(actual.is_object(), what << " is not an object: " << actual.dump());
  BOOST_TEST(actual.size() == expected.size(), what << " has " << actual.size() << " columns");
  for (const auto& [column, value] : expected.items()) {
    const json got = actual.contains(column) ? actual[column] : json("<missing>");
    BOOST_TEST(SameJson(got, value), what << " column " << column << ": got " << got.dump()
                                          << ", documented " << value.dump());
  }
}

// Creates database `db` with table t holding a column of every type (and an array of each),
// REPLICA IDENTITY FULL so that updates and deletes carry the whole old row.
void CreateTable(const std::string& db) {
  Pg().Exec("CREATE DATABASE " + db);
  // money prints per lc_monetary; the documented example is the C locale's.
  Pg().Exec(fmt::format("ALTER DATABASE {} SET lc_monetary = 'C'", db));
  // The extensions ship with Debian's postgresql-15: failing to create them fails the test.
  Pg().Exec(
      "CREATE EXTENSION hstore; CREATE EXTENSION citext;"
      "CREATE TYPE mood AS ENUM ('sad', 'happy');"
      "CREATE TYPE complex AS (r float8, i float8, label text);"
      "CREATE TYPE floatrange AS RANGE (subtype = float8);"
      "CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);"
      "CREATE DOMAIN price AS numeric(12,2);"
      "CREATE DOMAIN short_text AS varchar(5);"
      "CREATE DOMAIN stamp AS timestamptz;"
      "CREATE DOMAIN dur AS interval;"
      "CREATE DOMAIN intarr AS int4[];",
      db);
  std::string columns = "id int PRIMARY KEY";
  for (const TypeCase& c : Cases()) {
    columns += fmt::format(", {} {}", c.column, c.type);
    if (c.array) columns += fmt::format(", {}_a {}[]", c.column, c.type);
  }
  Pg().Exec(fmt::format("CREATE TABLE t ({}); ALTER TABLE t REPLICA IDENTITY FULL", columns), db);
}

// Per row (ids 1..kValueRows + 1): an insert and an update of every column, as SQL, and the
// after image each must produce.
struct Changes {
  std::vector<std::string> inserts;
  std::vector<std::string> updates;
  std::vector<json> inserted;
  std::vector<json> updated;
};

Changes MakeChanges() {
  Changes changes;
  for (size_t row = 0; row <= kValueRows; ++row) {
    const bool nulls = row == kValueRows;
    std::string names = "id";
    std::string values = std::to_string(row + 1);
    std::string sets;
    json insert_image = {{"id", row + 1}};
    json update_image = {{"id", row + 1}};
    for (const TypeCase& c : Cases()) {
      if (!nulls) {
        names += ", " + c.column;
        values += ", " + Cast(c, row);
      }
      insert_image[c.column] = nulls ? json(nullptr) : json::parse(SampleAt(c, row).event);
      sets += fmt::format("{}{} = {}", sets.empty() ? "" : ", ", c.column, Cast(c, row + 1));
      update_image[c.column] = json::parse(SampleAt(c, row + 1).event);
      if (c.array) {
        const std::string array = c.column + "_a";
        if (!nulls) {
          names += ", " + array;
          values += ", " + ArraySql(c, row);
        }
        insert_image[array] = nulls ? json(nullptr) : ArrayEvent(c, row);
        sets += fmt::format(", {} = {}", array, UpdateArraySql(c, row));
        update_image[array] = UpdateArrayEvent(c, row);
      }
    }
    changes.inserts.push_back(fmt::format("INSERT INTO t ({}) VALUES ({})", names, values));
    changes.updates.push_back(fmt::format("UPDATE t SET {} WHERE id = {}", sets, row + 1));
    changes.inserted.push_back(std::move(insert_image));
    changes.updated.push_back(std::move(update_image));
  }
  return changes;
}

std::vector<json> WaitForEvents(const std::filesystem::path& topic, size_t count,
                                const AgentProcess& agent) {
  std::vector<json> events;
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              events = ReadTopicEvents(topic);
                              return events.size() >= count;
                            },
                            seconds(30)),
                        "expected " << count << " events in " << topic << ", got " << events.size()
                                    << "\n"
                                    << LogOf{agent});
  return events;
}

// The unmapped types are written as text, never dropped, and the schema-change event names each
// column's type: its canonical type says how the values are written.
void CheckColumnTypes(const std::filesystem::path& dir, const std::string& source) {
  const std::vector<json> changes = ReadTopicEvents(TopicDir(dir, source + ".schema-changes"));
  BOOST_REQUIRE(!changes.empty());
  const json& columns = changes.back()["columns"];
  std::map<std::string, std::string> expected = {{"id", "int32"}};
  for (const TypeCase& c : Cases()) {
    expected[c.column] = c.canonical;
    if (c.array) {
      expected[c.column + "_a"] =
          c.column == "en" ? "array<string>" : fmt::format("array<{}>", c.canonical);
    }
  }
  BOOST_TEST(columns.size() == expected.size());
  for (const json& column : columns) {
    const std::string name = column["name"];
    BOOST_TEST(!column["type"].get<std::string>().empty(), name);
    BOOST_TEST(column["canonical_type"] == expected[name],
               name << " (" << column["type"] << "): " << column["canonical_type"]);
  }
}

BOOST_AUTO_TEST_CASE(every_type_round_trips_insert_update_delete) {
  TempDir dir;
  CreateTable("stream");
  const Changes changes = MakeChanges();
  auto config = WritePgFileConfig(dir.path(), Pg(), "stream", "ty", "[public.t]");
  auto agent = StartRunAgent(dir.path(), config, 1);
  WaitForSlotActive(Pg(), *agent, "tributary_ty");

  // Each row inserted and updated, one transaction per statement, then all deleted.
  std::string sql;
  for (size_t row = 0; row < changes.inserts.size(); ++row) {
    sql += changes.inserts[row] + ";" + changes.updates[row] + ";";
  }
  for (size_t row = 0; row < changes.inserts.size(); ++row) {
    sql += fmt::format("DELETE FROM t WHERE id = {};", row + 1);
  }
  Pg().Exec(sql, "stream");

  const size_t rows = changes.inserts.size();
  const std::vector<json> events =
      WaitForEvents(TopicDir(dir.path(), "ty.public.t"), 3 * rows, *agent);
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
  BOOST_REQUIRE(events.size() == 3 * rows);
  for (size_t row = 0; row < rows; ++row) {
    const json& insert = events[2 * row];
    const json& update = events[2 * row + 1];
    const json& remove = events[2 * rows + row];
    const std::string id = std::to_string(row + 1);
    BOOST_TEST(insert["op"] == "c");
    BOOST_TEST(insert["before"].is_null());
    CheckRow(insert["after"], changes.inserted[row], "insert of row " + id);
    BOOST_TEST(update["op"] == "u");
    // The before image is exactly what the insert wrote.
    CheckRow(update["before"], insert["after"], "update before of row " + id);
    CheckRow(update["after"], changes.updated[row], "update of row " + id);
    BOOST_TEST(remove["op"] == "d");
    BOOST_TEST(remove["after"].is_null());
    CheckRow(remove["before"], update["after"], "delete of row " + id);
  }
  CheckColumnTypes(dir.path(), "ty");
}

// The snapshot reads the same values through a query rather than pgoutput: same encoding.
BOOST_AUTO_TEST_CASE(snapshot_encodes_every_type_as_the_stream_does) {
  TempDir dir;
  CreateTable("snap");
  const Changes changes = MakeChanges();
  std::string sql;
  for (const std::string& insert : changes.inserts) sql += insert + ";";
  Pg().Exec(sql, "snap");
  auto config =
      WritePgFileConfig(dir.path(), Pg(), "snap", "ts", "[public.t]", "    snapshot: initial\n");
  auto agent = StartRunAgent(dir.path(), config, 1);
  const size_t rows = changes.inserts.size();
  const std::vector<json> events = WaitForEvents(TopicDir(dir.path(), "ts.public.t"), rows, *agent);
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
  BOOST_REQUIRE(events.size() == rows);
  for (size_t row = 0; row < rows; ++row) {
    BOOST_TEST(events[row]["op"] == "r");
    CheckRow(events[row]["after"], changes.inserted[row],
             "snapshot of row " + std::to_string(row + 1));
  }
  CheckColumnTypes(dir.path(), "ts");
}

}  // namespace
}  // namespace tributary::testing
