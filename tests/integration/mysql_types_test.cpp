#define BOOST_TEST_MODULE mysql_types_test
#include <fmt/format.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <map>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/mysql_config.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// Column, and the SQL that prints what the server holds in the event's canonical form.
const std::vector<std::pair<std::string, std::string>> kColumns = {
    {"id", "CAST(id AS CHAR)"},
    {"ti", "CAST(ti AS CHAR)"},
    {"tiu", "CAST(tiu AS CHAR)"},
    {"si", "CAST(si AS CHAR)"},
    {"mi", "CAST(mi AS CHAR)"},
    {"mu", "CAST(mu AS CHAR)"},
    {"i4", "CAST(i4 AS CHAR)"},
    {"iu", "CAST(iu AS CHAR)"},
    {"bi", "CAST(bi AS CHAR)"},
    {"bu", "CAST(bu AS CHAR)"},
    {"de", "CAST(de AS CHAR)"},
    {"de0", "CAST(de0 AS CHAR)"},
    {"fl", "CAST(fl AS CHAR)"},
    {"db", "CAST(db AS CHAR)"},
    {"b1", "IF(b1 IS NULL, NULL, IF(b1 + 0 = 1, 'true', 'false'))"},
    {"b10", "LPAD(BIN(b10), 10, '0')"},
    {"yr", "CAST(yr AS CHAR)"},
    {"dt", "CAST(dt AS CHAR)"},
    {"tm", "TIME_FORMAT(tm, '%H:%i:%s.%f')"},
    {"tm3", "TIME_FORMAT(tm3, '%H:%i:%s.%f')"},
    {"tm6", "TIME_FORMAT(tm6, '%H:%i:%s.%f')"},
    {"dtm", "REPLACE(CAST(CAST(dtm AS DATETIME(6)) AS CHAR), ' ', 'T')"},
    {"dtm6", "REPLACE(CAST(dtm6 AS CHAR), ' ', 'T')"},
    // TIMESTAMP 0 is the zero value, which the event keeps as such.
    {"ts",
     "IF(UNIX_TIMESTAMP(ts) = 0, '0000-00-00T00:00:00.000000Z', "
     "CONCAT(REPLACE(CAST(CAST(ts AS DATETIME(6)) AS CHAR), ' ', 'T'), 'Z'))"},
    {"ts3", "CONCAT(REPLACE(CAST(CAST(ts3 AS DATETIME(6)) AS CHAR), ' ', 'T'), 'Z')"},
    {"c5", "CONVERT(c5 USING utf8mb4)"},
    {"vc", "CONVERT(vc USING utf8mb4)"},
    {"l1", "CONVERT(l1 USING utf8mb4)"},
    {"tx", "CONVERT(tx USING utf8mb4)"},
    {"lt", "CONVERT(lt USING utf8mb4)"},
    {"bn", "TO_BASE64(bn)"},
    {"vb", "TO_BASE64(vb)"},
    {"bl", "TO_BASE64(bl)"},
    {"en", "CAST(en AS CHAR)"},
    {"st", "CAST(st AS CHAR)"},
    {"js", "CAST(js AS CHAR)"},
    {"g", "CONCAT('{\"wkb\":\"', TO_BASE64(ST_AsWKB(g)), '\",\"srid\":', ST_SRID(g), '}')"},
    {"u", "CAST(u AS CHAR)"},
    {"ip", "CAST(ip AS CHAR)"},
};

const char* const kInsert = R"(SET time_zone = '+00:00'; SET sql_mode = '';
INSERT INTO shop.types VALUES
 (1, -128, 255, -32768, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808,
  18446744073709551615, '-12345678901234567890.0123456789', 99999, 1.5, -2.25e-300, b'1',
  b'1010101010', 2155, '2024-01-31', '-838:59:59', '12:34:56.789', '-00:00:01.000001',
  '2024-01-31 13:45:00', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07',
  '1970-01-01 00:00:01.123', 'ab', 'héllo 🌍 "q" \\ \n\t', _latin1 x'636166e98061e962',
  REPEAT('x', 70000), 'ok', x'00ff0000', REPEAT(x'ab', 300), x'deadbeef', 'medium', 'a,c',
  '{"k": [1, 2.5, "x"], "n": null}', ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326),
  '01234567-89ab-4def-8123-456789abcdef', '2001:db8::1'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.0, b'0', b'0', 0, '0000-00-00', '00:00:00',
  '00:00:00', '00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00',
  '1970-01-01 00:00:01', '', '', '', '', '', '', '', '', '', '', '[]',
  ST_GeomFromText('POINT(0 0)'), '00000000-0000-0000-0000-000000000000', '::'))";

const char* const kUpdate = R"(SET time_zone = '+00:00'; SET sql_mode = '';
UPDATE shop.types SET ti = 127, tiu = 1, si = 32767, mi = 8388607, mu = 1, i4 = 2147483647,
  iu = 1, bi = 9223372036854775807, bu = 1, de = '0.0000000001', de0 = -99999, fl = -3.25,
  db = 1e300, b1 = b'0', b10 = b'1111111111', yr = 1901, dt = '1000-01-01', tm = '838:59:59',
  tm3 = '-12:00:00.5', tm6 = '23:59:59.999999', dtm = '1000-01-01 00:00:00',
  dtm6 = '2000-02-29 12:00:00.000001', ts = '2000-01-01 00:00:00',
  ts3 = '2020-02-02 02:02:02.999', c5 = 'ñññññ', vc = '', l1 = 'Ææ', tx = 'short',
  lt = 'ümlaut', bn = x'01020304', vb = '', bl = '', en = 'large', st = 'a,b,c',
  js = '"str"', g = ST_GeomFromText('LINESTRING(0 0,1 1)', 3857),
  u = 'ffffffff-ffff-ffff-ffff-ffffffffffff', ip = '::ffff:192.0.2.1')";

// The server's rows as column -> canonical text ("\N" for NULL), by id.
std::map<std::string, std::map<std::string, std::string>> ServerRows(const MariaDbServer& server) {
  std::string select = "SELECT ";
  for (size_t i = 0; i < kColumns.size(); ++i) {
    select += (i ? ", " : "") + kColumns[i].second;
  }
  // The server runs in UTC (--default-time-zone), so TIMESTAMPs print as the event has them.
  std::map<std::string, std::map<std::string, std::string>> out;
  const std::string query = select + " FROM shop.types ORDER BY id";
  for (const auto& row : server.Query(query)) {
    auto& columns = out[row[0]];
    for (size_t i = 0; i < kColumns.size(); ++i) columns[kColumns[i].first] = row[i];
  }
  return out;
}

std::string EventText(const json& value) {
  if (value.is_null()) return "\\N";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// Compares an event image with the server's row; floats by value, the rest as text.
void ExpectImage(const json& image, const std::map<std::string, std::string>& row,
                 const std::string& what) {
  BOOST_REQUIRE_MESSAGE(image.is_object(), what);
  for (const auto& [column, expected] : row) {
    std::string got = EventText(image.at(column));
    if ((column == "fl" || column == "db") && expected != "\\N" && got != "\\N") {
      BOOST_TEST(std::stod(got) == std::stod(expected), what << " column " << column);
      continue;
    }
    if (column == "yr" && expected != "\\N" && got != "\\N") {
      BOOST_TEST(std::stoi(got) == std::stoi(expected), what << " column " << column);
      continue;
    }
    if (column == "g" && expected != "\\N") {
      std::string compact = expected;
      std::erase(compact, '\n');
      BOOST_TEST(image.at(column) == json::parse(compact), what << " column " << column);
      continue;
    }
    std::string want = expected;
    if (column == "bn" || column == "vb" || column == "bl") std::erase(want, '\n');
    BOOST_TEST(got == want, what << " column " << column << ": got " << got << ", server " << want);
  }
}

BOOST_AUTO_TEST_CASE(every_type_round_trips_through_insert_update_and_delete) {
  auto server = MariaDbServer::Start({"--default-time-zone=+00:00"});
  TempDir dir;
  server->Exec("CREATE DATABASE shop");
  server->Exec(kMysqlTypesTable);
  auto config = WriteMysqlFileConfig(dir.path(), *server, "ty", R"(["shop.types"])");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  BOOST_REQUIRE(WaitFor([&] { return agent.Log().find("mysql: Streaming") != std::string::npos; },
                        seconds(30)));
  server->Exec(kInsert);
  auto inserted = ServerRows(*server);
  server->Exec(kUpdate);
  auto updated = ServerRows(*server);
  server->Exec("DELETE FROM shop.types");
  const auto topic = TopicDir(dir.path(), "ty.shop.types");
  std::vector<json> events;
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              events = ReadTopicEvents(topic);
                              return events.size() >= 9;
                            },
                            seconds(30)),
                        LogOf{agent});
  BOOST_REQUIRE(events.size() == 9u);
  for (size_t i = 0; i < 3; ++i) {
    const std::string id = std::to_string(i + 1);
    BOOST_TEST(events[i]["op"] == "c");
    ExpectImage(events[i]["after"], inserted.at(id), "insert " + id);
    BOOST_TEST(events[3 + i]["op"] == "u");
    ExpectImage(events[3 + i]["before"], inserted.at(id), "update before " + id);
    ExpectImage(events[3 + i]["after"], updated.at(id), "update after " + id);
    BOOST_TEST(events[6 + i]["op"] == "d");
    ExpectImage(events[6 + i]["before"], updated.at(id), "delete " + id);
  }
  BOOST_TEST(FirstOutOfOrder(events) == -1);
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
}

}  // namespace
}  // namespace tributary::testing
