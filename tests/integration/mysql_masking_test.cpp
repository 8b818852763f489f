#define BOOST_TEST_MODULE mysql_masking_test
#include <fmt/format.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/masking_checks.h"
#include "tests/support/mysql_config.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

const std::string kKey = "canary-masking-key-mariadb-41d7";

// PII that must not appear anywhere the agent writes: files, state, its log at debug level.
const std::vector<std::string> kCanaries = {"dana.canary@example.com",
                                            "078-05-1120",
                                            "+44 20 7946 0958",
                                            "4111 1111 1111 1111",
                                            "GB82WEST12345698765432",
                                            "erin.canary@example.org",
                                            "219-09-9999"};

std::string Hmac(const std::string& value) { return OpensslHmac(kKey, value); }

BOOST_AUTO_TEST_CASE(pii_never_leaves_the_agent_unmasked) {
  auto server = MariaDbServer::Start();
  TempDir dir;
  server->Exec(
      "CREATE DATABASE shop;"
      "CREATE TABLE shop.customers (id INT PRIMARY KEY, email VARCHAR(100), ssn CHAR(11), "
      "phone VARCHAR(30), notes TEXT, age INT);"
      // Read by the initial snapshot.
      "INSERT INTO shop.customers VALUES (1, 'dana.canary@example.com', '078-05-1120', "
      "'+44 20 7946 0958', 'card 4111 1111 1111 1111', 30)");
  std::ofstream(dir.path() / "mask.key") << kKey << "\n";
  const auto config = WriteMysqlFileConfig(dir.path(), *server, "crm", R"(["shop.customers"])",
                                           "    snapshot: initial\n");
  std::ofstream(config, std::ios::app) << fmt::format(R"(masking:
  key: ${{file:{dir}/mask.key}}
  detect: mask
  rules:
    - {{ columns: "shop.customers.email", action: hash }}
    - {{ columns: "*.*.ssn", action: redact }}
    - {{ columns: "shop.customers.phone", action: keep_last, n: 4 }}
    - {{ columns: "shop.customers.id", action: hash }}
)",
                                                      fmt::arg("dir", dir.path().string()));
  auto agent = StartStreamingMysqlAgent(config, dir.path() / "agent.log");
  server->Exec(
      "INSERT INTO shop.customers VALUES (2, 'erin.canary@example.org', '219-09-9999', NULL, "
      "'iban GB82WEST12345698765432 or erin.canary@example.org', NULL);"
      "UPDATE shop.customers SET age = 31 WHERE id = 1;"
      "DELETE FROM shop.customers WHERE id = 2;");
  const auto topic = TopicDir(dir.path(), "crm.shop.customers");
  std::vector<json> events;
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              events = ReadTopicEvents(topic);
                              return events.size() >= 4;
                            },
                            seconds(30)),
                        LogOf{*agent});
  agent->Signal(SIGTERM);
  BOOST_REQUIRE(agent->Wait(seconds(15)).value_or(-1) == 0);

  std::string ops;
  for (const json& event : events) ops += event["op"].get<std::string>();
  BOOST_TEST(ops == "rcud");
  // The snapshot row, a key column included.
  const json& read = events[0]["after"];
  BOOST_TEST(read["id"] == Hmac("1"));
  BOOST_TEST(read["email"] == Hmac("dana.canary@example.com"));
  BOOST_TEST(read["ssn"] == "[REDACTED]");
  BOOST_TEST(read["phone"] == "************0958");
  BOOST_TEST(read["notes"] == "card [REDACTED]");
  BOOST_TEST(read["age"] == 30);
  BOOST_TEST(events[1]["after"]["notes"] == "iban [REDACTED] or [REDACTED]");
  BOOST_TEST(events[1]["after"]["phone"].is_null());
  // Before images (binlog_row_image=FULL) are masked too.
  BOOST_TEST(events[2]["before"]["email"] == Hmac("dana.canary@example.com"));
  BOOST_TEST(events[2]["after"]["age"] == 31);
  BOOST_TEST(events[3]["before"]["ssn"] == "[REDACTED]");
  BOOST_TEST(events[3]["before"]["email"] == Hmac("erin.canary@example.org"));

  const std::vector<std::string> leaked =
      Leaks(kCanaries, kKey, dir.path() / "out", dir.path() / "state", agent->Log());
  BOOST_TEST(leaked.empty(), "leaked: " << fmt::format("{}", fmt::join(leaked, ", ")));
}

}  // namespace
}  // namespace tributary::testing
