#define BOOST_TEST_MODULE mysql_stream_test
#include <fmt/format.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/mysql_config.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

std::vector<json> WaitForEvents(const std::filesystem::path& topic, size_t count,
                                AgentProcess& agent) {
  std::vector<json> events;
  bool done = WaitFor(
      [&] {
        events = ReadTopicEvents(topic);
        return events.size() >= count;
      },
      seconds(30));
  BOOST_REQUIRE_MESSAGE(done, "got " << events.size() << " events of " << count << "\n"
                                     << agent.Log());
  return events;
}

BOOST_AUTO_TEST_CASE(insert_update_delete_stream_with_the_mysql_source_block) {
  auto server = MariaDbServer::Start();
  TempDir dir;
  server->Exec(
      "CREATE DATABASE shop;"
      "CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(20), amount DECIMAL(10,2));"
      "CREATE TABLE shop.items (id BIGINT UNSIGNED PRIMARY KEY, name TEXT);"
      "CREATE TABLE shop.ignored (id INT PRIMARY KEY);");
  auto config = WriteMysqlFileConfig(dir.path(), *server, "my", R"(["shop.o*", "shop.items"])");
  auto agent = StartStreamingMysqlAgent(config, dir.path() / "agent.log");
  server->Exec(
      "INSERT INTO shop.orders VALUES (1, 'one', 10.50), (2, 'two', NULL);"
      "INSERT INTO shop.ignored VALUES (1);"
      "UPDATE shop.orders SET note = 'uno' WHERE id = 1;"
      "DELETE FROM shop.orders WHERE id = 2;"
      "BEGIN; INSERT INTO shop.items VALUES (18446744073709551615, 'max');"
      "INSERT INTO shop.orders VALUES (3, 'three', -0.01); COMMIT;"
      "UPDATE shop.orders SET id = 30 WHERE id = 3;");
  auto orders = WaitForEvents(TopicDir(dir.path(), "my.shop.orders"), 7, *agent);
  auto items = WaitForEvents(TopicDir(dir.path(), "my.shop.items"), 1, *agent);
  BOOST_TEST(!std::filesystem::exists(TopicDir(dir.path(), "my.shop.ignored")));
  BOOST_REQUIRE(orders.size() == 7u);
  BOOST_TEST(orders[0]["op"] == "c");
  BOOST_TEST(orders[0]["after"] == json::parse(R"({"id":1,"note":"one","amount":"10.50"})"));
  BOOST_TEST(orders[1]["after"] == json::parse(R"({"id":2,"note":"two","amount":null})"));
  BOOST_TEST(orders[2]["op"] == "u");
  BOOST_TEST(orders[2]["before"]["note"] == "one");
  BOOST_TEST(orders[2]["after"]["note"] == "uno");
  BOOST_TEST(orders[3]["op"] == "d");
  BOOST_TEST(orders[3]["before"]["id"] == 2);
  BOOST_TEST(orders[3]["after"].is_null());
  BOOST_TEST(orders[4]["after"]["amount"] == "-0.01");
  BOOST_TEST(items[0]["after"]["id"] == 18446744073709551615ULL);
  // An update of the key: a delete of the old row, then a create of the new one.
  BOOST_TEST(orders[5]["op"] == "d");
  BOOST_TEST(orders[5]["before"] == json::parse(R"({"id":3,"note":"three","amount":"-0.01"})"));
  BOOST_TEST(orders[6]["op"] == "c");
  BOOST_TEST(orders[6]["before"].is_null());
  BOOST_TEST(orders[6]["after"] == json::parse(R"({"id":30,"note":"three","amount":"-0.01"})"));
  BOOST_TEST(orders[6]["source"]["position"] ==
             orders[5]["source"]["position"].get<std::string>() + "+");
  const json& source = orders[0]["source"];
  BOOST_TEST(source["connector"] == "mariadb");
  BOOST_TEST(source["name"] == "my");
  BOOST_TEST(source["db"] == "shop");
  BOOST_TEST(source["table"] == "orders");
  BOOST_TEST(source["server_id"] == 1);
  BOOST_TEST(source["file"].get<std::string>().starts_with("binlog."));
  BOOST_TEST(source["pos"].get<int64_t>() > 4);
  BOOST_TEST(source["row"] == 0);
  BOOST_TEST(orders[1]["source"]["row"] == 1);
  BOOST_TEST(source["gtid"].get<std::string>().starts_with("0-1-"));
  BOOST_TEST(source["snapshot"] == "false");
  // The multi-table transaction shares one GTID.
  BOOST_TEST(orders[4]["source"]["gtid"] == items[0]["source"]["gtid"]);
  BOOST_TEST(FirstOutOfOrder(orders) == -1);
  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
}

}  // namespace
}  // namespace tributary::testing
