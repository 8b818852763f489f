#define BOOST_TEST_MODULE binlog_decoder_test
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "agent/core/envelope_writer.h"
#include "connectors/mysql/binlog_event.h"
#include "connectors/mysql/mysql_json.h"
#include "connectors/mysql/rows_event.h"
#include "connectors/mysql/table_map.h"

namespace tributary::mysql {
namespace {

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(TRIBUTARY_SOURCE_DIR) + "/tests/fixtures/mysql/" + name,
                   std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "missing fixture " << name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The events of a binlog file, each as its whole bytes (header to checksum).
std::vector<std::string_view> SplitEvents(std::string_view file) {
  BOOST_REQUIRE(file.substr(0, 4) == std::string_view("\xfe"
                                                      "bin",
                                                      4));
  std::vector<std::string_view> events;
  size_t at = 4;
  while (at + kEventHeaderSize <= file.size()) {
    const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(file[i])); };
    const uint32_t size = b(at + 9) | b(at + 10) << 8 | b(at + 11) << 16 | b(at + 12) << 24;
    BOOST_REQUIRE(at + size <= file.size());
    events.push_back(file.substr(at, size));
    at += size;
  }
  return events;
}

// A decoded row as column name -> the JSON the envelope would hold.
std::map<std::string, std::string> RowJson(const TableMap& map, const Batch& batch, size_t first) {
  std::map<std::string, std::string> row;
  for (size_t i = 0; i < map.columns.size(); ++i) {
    const Value& v = batch.values[first + i];
    std::string text;
    switch (v.kind) {
      case ValueKind::kNull:
        text = "null";
        break;
      case ValueKind::kUnavailable:
        text = "unavailable";
        break;
      case ValueKind::kString:
        AppendJsonString(batch.Text(v), text);
        break;
      case ValueKind::kRaw:
        text = std::string(batch.Text(v));
        break;
    }
    row[map.columns[i].name] = text;
  }
  return row;
}

struct Decoded {
  FormatDescription format;
  std::vector<std::string> gtids;
  std::vector<MariaGtid> gtid_list;
  std::vector<uint64_t> xids;
  std::vector<std::string> queries;
  TableMap map;
  std::vector<RowsEvent> rows_events;
  std::vector<std::string> rows_bodies;  // owned copies the RowsEvent views point into
  std::string rotate_file;               // copied: the event bytes do not outlive DecodeFile
  uint64_t rotate_position = 0;
};

Decoded DecodeFile(const std::string& file) {
  Decoded d;
  d.rows_bodies.reserve(64);
  ChecksumAlg alg = ChecksumAlg::kOff;
  for (std::string_view bytes : SplitEvents(file)) {
    RawEvent event;
    if (static_cast<EventType>(bytes[4]) == EventType::kFormatDescription) {
      BOOST_REQUIRE(DecodeFormatDescription(bytes, d.format).ok());
      alg = d.format.checksum;
      continue;
    }
    Status st = DecodeEvent(bytes, alg, event);
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    switch (event.header.type) {
      case EventType::kMariaGtid: {
        MariaGtidEvent gtid;
        BOOST_REQUIRE(DecodeMariaGtid(event.body, gtid).ok());
        d.gtids.push_back(FormatMariaGtid({gtid.domain, event.header.server_id, gtid.sequence}));
        break;
      }
      case EventType::kMariaGtidList:
        BOOST_REQUIRE(DecodeMariaGtidList(event.body, d.gtid_list).ok());
        break;
      case EventType::kXid: {
        uint64_t xid = 0;
        BOOST_REQUIRE(DecodeXid(event.body, xid).ok());
        d.xids.push_back(xid);
        break;
      }
      case EventType::kQuery: {
        QueryEvent query;
        BOOST_REQUIRE(DecodeQuery(event.body, query).ok());
        d.queries.emplace_back(query.query);
        break;
      }
      case EventType::kTableMap:
        BOOST_REQUIRE(DecodeTableMap(event.body, d.format.post_header_lengths[18], d.map).ok());
        break;
      case EventType::kRotate: {
        RotateEvent rotate;
        BOOST_REQUIRE(DecodeRotate(event.body, rotate).ok());
        d.rotate_file = std::string(rotate.file);
        d.rotate_position = rotate.position;
        break;
      }
      default:
        if (IsRowsEvent(event.header.type)) {
          d.rows_bodies.emplace_back(event.body);
          RowsEvent rows;
          const auto type_index = static_cast<size_t>(event.header.type) - 1;
          BOOST_REQUIRE(DecodeRowsEvent(d.rows_bodies.back(), event.header.type,
                                        d.format.post_header_lengths[type_index], rows)
                            .ok());
          d.rows_events.push_back(rows);
        }
        break;
    }
  }
  return d;
}

BOOST_AUTO_TEST_CASE(crc32_matches_the_standard_check_value) {
  BOOST_TEST(Crc32("123456789") == 0xCBF43926U);
  BOOST_TEST(Crc32("") == 0U);
}

BOOST_AUTO_TEST_CASE(events_of_a_real_binlog_decode) {
  Decoded d = DecodeFile(ReadFixture("types.binlog"));
  BOOST_TEST(d.format.binlog_version == 4);
  BOOST_TEST(d.format.server_version.starts_with("10.11."));
  BOOST_TEST((d.format.checksum == ChecksumAlg::kCrc32));
  BOOST_TEST(d.gtid_list.size() == 1u);
  BOOST_TEST(FormatMariaGtid(d.gtid_list.at(0)) == "0-1-4");
  BOOST_TEST(
      (d.gtids == std::vector<std::string>{"0-1-5", "0-1-6", "0-1-7", "0-1-8", "0-1-9", "0-1-10"}));
  BOOST_TEST((d.xids == std::vector<uint64_t>{25, 26, 27, 28}));
  BOOST_TEST(d.queries.at(0) == "CREATE DATABASE IF NOT EXISTS shop");
  BOOST_TEST(d.rotate_file == "binlog.000003");
  BOOST_TEST(d.rotate_position == 4u);
  BOOST_TEST(d.rows_events.size() == 4u);
}

BOOST_AUTO_TEST_CASE(table_map_optional_metadata) {
  Decoded d = DecodeFile(ReadFixture("types.binlog"));
  const TableMap& map = d.map;
  BOOST_TEST(map.database == "shop");
  BOOST_TEST(map.table == "types");
  BOOST_TEST(map.has_names);
  BOOST_REQUIRE(map.columns.size() == 36u);
  std::vector<std::string> names;
  for (const auto& c : map.columns) names.push_back(c.name);
  BOOST_TEST(names.front() == "id");
  BOOST_TEST(names.back() == "ip");
  BOOST_TEST(map.columns[0].key);
  BOOST_TEST(!map.columns[0].nullable);
  BOOST_TEST(!map.columns[1].key);
  BOOST_TEST(!map.columns[1].is_unsigned);  // ti
  BOOST_TEST(map.columns[2].is_unsigned);   // tiu
  BOOST_TEST(map.columns[7].is_unsigned);   // bu
  BOOST_TEST(map.columns[8].precision == 20);
  BOOST_TEST(map.columns[8].scale == 6);
  BOOST_TEST(map.columns[13].bits == 10);
  BOOST_TEST((map.columns[23].charset == Charset::kUtf8));    // c5
  BOOST_TEST((map.columns[25].charset == Charset::kLatin1));  // l1
  BOOST_TEST((map.columns[26].charset == Charset::kBinary));  // bn
  BOOST_TEST(map.columns[26].length == 4u);
  BOOST_TEST((map.columns[30].type == ColumnType::kEnum));
  BOOST_TEST((map.columns[30].values == std::vector<std::string>{"small", "medium", "large"}));
  BOOST_TEST((map.columns[31].values == std::vector<std::string>{"a", "b", "c"}));
  BOOST_TEST((map.columns[33].type == ColumnType::kGeometry));
  BOOST_TEST(TypeName(map.columns[7]) == "bigint unsigned");
  BOOST_TEST(TypeName(map.columns[20]) == "datetime(6)");
}

BOOST_AUTO_TEST_CASE(every_type_decodes_to_its_canonical_text) {
  Decoded d = DecodeFile(ReadFixture("types.binlog"));
  TableMap map = d.map;
  // What the catalog tells the source; the binlog says BINARY(16) for both.
  map.columns[34].logical = Logical::kUuid;
  map.columns[35].logical = Logical::kInet6;
  Batch batch;
  std::string_view rows = d.rows_events.at(0).rows;
  Status st = DecodeRowImage(map, d.rows_events[0].present, rows, batch);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(rows.empty());
  const std::map<std::string, std::string> expected = {
      {"id", "1"},
      {"ti", "-128"},
      {"tiu", "255"},
      {"si", "-32768"},
      {"mi", "-8388608"},
      {"mu", "16777215"},
      {"bi", "-9223372036854775808"},
      {"bu", "18446744073709551615"},
      {"de", R"("-12345678901234.567890")"},
      {"de0", R"("99999")"},
      {"fl", "1.5"},
      {"db", "-2.25e-300"},
      {"b1", "true"},
      {"b10", R"("1010101010")"},
      {"yr", "2024"},
      {"dt", R"("2024-01-31")"},
      {"tm", R"("-838:59:59.000000")"},
      {"tm3", R"("12:34:56.789000")"},
      {"tm6", R"("-00:00:01.000001")"},
      {"dtm", R"("2024-01-31T13:45:00.000000")"},
      {"dtm6", R"("9999-12-31T23:59:59.999999")"},
      {"ts", R"("2024-01-31T13:45:00.000000Z")"},
      {"ts3", R"("1970-01-01T00:00:01.123000Z")"},
      {"c5", R"("ab")"},
      {"vc", "\"h\xc3\xa9llo \xf0\x9f\x8c\x8d\""},
      {"l1", "\"caf\xc3\xa9\xe2\x82\xac\""},
      {"bn", R"("YWIAAA==")"},
      {"vb", R"("AP8=")"},
      {"tx", R"("line\nbreak \"q\"")"},
      {"bl", R"("3q2+7w==")"},
      {"en", R"("medium")"},
      {"st", R"("a,c")"},
      {"js", R"("{\"k\": [1, 2.5, \"x\"]}")"},
      {"g", R"({"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":4326})"},
      {"u", R"("01234567-89ab-4def-8123-456789abcdef")"},
      {"ip", R"("2001:db8::1")"},
  };
  auto row = RowJson(map, batch, 0);
  for (const auto& [name, json] : expected) BOOST_TEST(row[name] == json, name);
}

BOOST_AUTO_TEST_CASE(nulls_updates_and_deletes) {
  Decoded d = DecodeFile(ReadFixture("types.binlog"));
  Batch batch;
  // Row 2: every column but id is NULL.
  std::string_view rows = d.rows_events.at(1).rows;
  BOOST_REQUIRE(DecodeRowImage(d.map, d.rows_events[1].present, rows, batch).ok());
  auto row = RowJson(d.map, batch, 0);
  BOOST_TEST(row["id"] == "2");
  for (const auto& [name, json] : row) {
    if (name != "id") BOOST_TEST(json == "null", name);
  }
  // The update carries the before and after images back to back.
  const RowsEvent& update = d.rows_events.at(2);
  BOOST_TEST((update.kind == RowsKind::kUpdate));
  rows = update.rows;
  const size_t before = batch.values.size();
  BOOST_REQUIRE(DecodeRowImage(d.map, update.present, rows, batch).ok());
  const size_t after = batch.values.size();
  BOOST_REQUIRE(DecodeRowImage(d.map, update.present_after, rows, batch).ok());
  BOOST_TEST(rows.empty());
  BOOST_TEST(RowJson(d.map, batch, before)["ti"] == "-128");
  BOOST_TEST(RowJson(d.map, batch, after)["ti"] == "7");
  BOOST_TEST(RowJson(d.map, batch, after)["vc"] == "\"upd\"");
  BOOST_TEST((d.rows_events.at(3).kind == RowsKind::kDelete));
}

BOOST_AUTO_TEST_CASE(absent_columns_are_unavailable_not_null) {
  Decoded d = DecodeFile(ReadFixture("types.binlog"));
  // Row 2 again, but claim only column 0 is present (binlog_row_image=MINIMAL shape): the
  // image then holds one null bit and the id.
  std::string present(d.rows_events.at(1).present);
  std::string image = std::string(1, '\0') + std::string("\x02\x00\x00\x00", 4);
  for (char& c : present) c = 0;
  present[0] = 1;
  std::string_view rows = image;
  Batch batch;
  BOOST_REQUIRE(DecodeRowImage(d.map, present, rows, batch).ok());
  auto row = RowJson(d.map, batch, 0);
  BOOST_TEST(row["id"] == "2");
  BOOST_TEST(row["ti"] == "unavailable");
}

BOOST_AUTO_TEST_CASE(uuid_and_inet6_as_the_binlog_carries_them) {
  Decoded d = DecodeFile(ReadFixture("uuid_inet6.binlog"));
  TableMap map = d.map;
  BOOST_TEST(map.table == "t");
  // UUID and INET6 are BINARY(16) on the wire, charset binary.
  BOOST_TEST((map.columns[1].type == ColumnType::kString));
  BOOST_TEST(map.columns[1].length == 16u);
  BOOST_TEST((map.columns[1].charset == Charset::kBinary));
  map.columns[1].logical = Logical::kUuid;
  map.columns[2].logical = Logical::kInet6;
  Batch batch;
  std::string_view rows = d.rows_events.at(0).rows;
  BOOST_REQUIRE(DecodeRowImage(map, d.rows_events[0].present, rows, batch).ok());
  auto row = RowJson(map, batch, 0);
  BOOST_TEST(row["u"] == R"("c8c7979a-eab5-11f1-a120-02fc00000001")");
  BOOST_TEST(row["i"] == R"("::1")");
  BOOST_TEST(row["c"] == R"("ab")");
  BOOST_TEST(row["e"] == R"("b")");
  BOOST_TEST(row["s"] == R"("x,y")");
}

BOOST_AUTO_TEST_CASE(corrupt_input_is_an_error_never_a_crash) {
  const std::string file = ReadFixture("types.binlog");
  Decoded d = DecodeFile(file);
  // Every truncation of a row image fails cleanly.
  const RowsEvent& insert = d.rows_events.at(0);
  for (size_t n = 0; n < insert.rows.size(); ++n) {
    std::string_view rows = insert.rows.substr(0, n);
    Batch batch;
    Status st = DecodeRowImage(d.map, insert.present, rows, batch);
    BOOST_TEST((st.code() == StatusCode::kCorruptData), "length " << n);
    BOOST_TEST(batch.values.empty());
    BOOST_TEST(batch.arena.empty());
  }
  // A flipped byte fails the CRC.
  auto events = SplitEvents(file);
  std::string damaged(events.at(5));
  damaged[25] = static_cast<char>(damaged[25] ^ 1);
  RawEvent raw;
  BOOST_TEST((DecodeEvent(damaged, ChecksumAlg::kCrc32, raw).code() == StatusCode::kCorruptData));
  // Wrong sizes and truncated bodies.
  BOOST_TEST((DecodeEvent(events.at(5).substr(0, 10), ChecksumAlg::kCrc32, raw).code() ==
              StatusCode::kCorruptData));
  BOOST_TEST((DecodeEvent(events.at(5).substr(0, 30), ChecksumAlg::kOff, raw).code() ==
              StatusCode::kCorruptData));
  TableMap map;
  std::string_view table_map_event = events.at(10);
  RawEvent tm;
  BOOST_REQUIRE(DecodeEvent(table_map_event, ChecksumAlg::kCrc32, tm).ok());
  BOOST_REQUIRE((tm.header.type == EventType::kTableMap));
  for (size_t n = 0; n < tm.body.size(); ++n) {
    Status st = DecodeTableMap(tm.body.substr(0, n), 8, map);
    // A cut inside the optional metadata can still parse as fewer fields; never a crash.
    if (!st.ok()) BOOST_TEST((st.code() == StatusCode::kCorruptData));
  }
  RowsEvent rows;
  BOOST_TEST((DecodeRowsEvent("\x01\x02", EventType::kWriteRowsV1, 8, rows).code() ==
              StatusCode::kCorruptData));
  BOOST_TEST((DecodeRowsEvent(std::string(12, '\0'), EventType::kWriteRowsV2, 10, rows).code() ==
              StatusCode::kCorruptData));
}

BOOST_AUTO_TEST_CASE(mysql_binary_json) {
  auto json = [](std::string_view bytes) {
    std::string out;
    Status st = AppendMysqlJson(bytes, out);
    return st.ok() ? out : "error: " + st.message();
  };
  // {"a": 1, "b": [true, "x"]} as MySQL 8 writes it (small object, inlined int16 and literal).
  const std::string object(
      "\x00\x02\x00\x21\x00"  // small object: 2 members, 33 bytes
      "\x12\x00\x01\x00"      // key "a" at 18
      "\x13\x00\x01\x00"      // key "b" at 19
      "\x05\x01\x00"          // int16 1, inline
      "\x02\x14\x00"          // small array at 20
      "ab"                    // the keys
      "\x02\x00\x0d\x00"      // array: 2 elements, 13 bytes
      "\x04\x01\x00"          // true, inline
      "\x0c\x0a\x00"          // string at 10
      "\x01x",                // length 1, "x"
      34);
  BOOST_TEST(json(object) == R"({"a":1,"b":[true,"x"]})");
  BOOST_TEST(json(std::string("\x04\x00", 2)) == "null");
  BOOST_TEST(json(std::string("\x0b\x00\x00\x00\x00\x00\x00\xf8\x3f", 9)) == "1.5");
  BOOST_TEST(json(std::string("\x0c\x03\x61\x22\x62", 5)) == R"("a\"b")");
  BOOST_TEST(json(std::string("\x09\xff\xff\xff\xff\xff\xff\xff\xff", 9)) == "-1");
  BOOST_TEST(json("") == "null");
  // Truncations and bad offsets are errors.
  for (size_t n = 1; n < object.size(); ++n) {
    BOOST_TEST(json(object.substr(0, n)).starts_with("error"), "length " << n);
  }
  BOOST_TEST(json(std::string("\x02\xff\xff\x04\x00", 5)).starts_with("error"));
}

}  // namespace
}  // namespace tributary::mysql
