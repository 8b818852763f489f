#define BOOST_TEST_MODULE pg_masking_test
#include <fmt/format.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/masking_checks.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

const std::string kKey = "canary-masking-key-7f3a9c2e";

// PII that must not appear anywhere the agent writes: files, state, its log at debug level.
const std::vector<std::string> kCanaries = {"ann.canary@example.com",
                                            "078-05-1120",
                                            "+1 415 555 0132",
                                            "4111 1111 1111 1111",
                                            "GB82WEST12345698765432",
                                            "bob.canary@example.org",
                                            "219-09-9999",
                                            "5500-0000-0000-0004",
                                            "carol.canary@example.net",
                                            "536-90-4399"};

std::string Hmac(const std::string& value) { return OpensslHmac(kKey, value); }

BOOST_AUTO_TEST_CASE(pii_never_leaves_the_agent_unmasked) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec(
      "CREATE TABLE customers (id int PRIMARY KEY, email text, ssn text, phone text, "
      "notes text, age int);"
      // FULL identity: updates and deletes carry before images full of PII.
      "ALTER TABLE customers REPLICA IDENTITY FULL;"
      // Read by the initial snapshot.
      "INSERT INTO customers VALUES (0, 'carol.canary@example.net', '536-90-4399', NULL, "
      "'reach me at carol.canary@example.net', 39)");
  std::ofstream(dir.path() / "mask.key") << kKey << "\n";
  std::filesystem::path config = dir.path() / "tributary.yaml";
  std::ofstream(config) << fmt::format(R"(state_dir: {dir}/state
log: {{ level: debug }}
sources:
  - name: crm
    type: postgres
    dsn: "{dsn}"
    tables: [public.customers]
    snapshot: initial
    sinks: [files]
sinks:
  - name: files
    type: file
    path: {dir}/out
    flush_interval_ms: 100
masking:
  key: ${{file:{dir}/mask.key}}
  detect: mask
  rules:
    - {{ columns: "public.customers.email", action: hash }}
    - {{ columns: "*.*.ssn", action: redact }}
    - {{ columns: "public.customers.phone", action: keep_last, n: 4 }}
    - {{ columns: "public.customers.id", action: hash }}
)",
                                       fmt::arg("dir", dir.path().string()),
                                       fmt::arg("dsn", pg->Dsn()));
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  BOOST_REQUIRE(WaitFor(
      [&] {
        return pg->QueryValue("SELECT count(*) FROM pg_replication_slots WHERE active") == "1";
      },
      seconds(30)));
  pg->Exec(
      "INSERT INTO customers VALUES (1, 'ann.canary@example.com', '078-05-1120', "
      "'+1 415 555 0132', 'card 4111 1111 1111 1111, iban GB82WEST12345698765432', 41);"
      "INSERT INTO customers VALUES (2, 'bob.canary@example.org', '219-09-9999', NULL, "
      "'mail bob.canary@example.org or card 5500-0000-0000-0004', NULL);"
      "UPDATE customers SET age = 42 WHERE id = 1;"
      "DELETE FROM customers WHERE id = 2;");
  auto topic = TopicDir(dir.path(), "crm.public.customers");
  std::vector<json> events;
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              events = ReadTopicEvents(topic);
                              return events.size() >= 5;
                            },
                            seconds(30)),
                        LogOf{agent});
  agent.Signal(SIGTERM);
  BOOST_REQUIRE(agent.Wait(seconds(15)).value_or(-1) == 0);

  // The snapshot may read its row before or after the first changes stream: find by op.
  const auto find = [&](const std::string& op, size_t nth = 0) -> const json& {
    for (const json& event : events) {
      if (event["op"] == op && nth-- == 0) return event;
    }
    BOOST_FAIL("no " << op << " event");
    return events.front();
  };
  // The snapshot row is masked like a streamed one.
  BOOST_TEST(find("r")["after"]["email"] == Hmac("carol.canary@example.net"));
  BOOST_TEST(find("r")["after"]["notes"] == "reach me at [REDACTED]");
  const json& after = find("c")["after"];
  BOOST_TEST(after["email"] == Hmac("ann.canary@example.com"));
  BOOST_TEST(after["id"] == Hmac("1"));  // a key column, masked like any other
  BOOST_TEST(after["ssn"].is_string());
  BOOST_TEST(after["ssn"] != "078-05-1120");
  BOOST_TEST(after["phone"] == "***********0132");
  BOOST_TEST(after["age"] == 41);  // no rule, not text: untouched
  std::string notes = after["notes"];
  BOOST_TEST(notes.starts_with("card "), notes);
  BOOST_TEST(notes.find("iban ") != std::string::npos, notes);
  BOOST_TEST(find("c", 1)["after"]["email"] == Hmac("bob.canary@example.org"));
  // Masked before images of the update and the delete.
  BOOST_TEST(find("u")["before"]["email"] == Hmac("ann.canary@example.com"));
  BOOST_TEST(find("d")["before"]["email"] == Hmac("bob.canary@example.org"));
  BOOST_TEST(find("d")["before"]["phone"].is_null());
  std::string policy = events[0]["source"]["masking_policy"];
  BOOST_TEST(policy.size() == 16u);

  const std::vector<std::string> leaked =
      Leaks(kCanaries, kKey, dir.path() / "out", dir.path() / "state", agent.Log());
  BOOST_TEST(leaked.empty(), "leaked: " << fmt::format("{}", fmt::join(leaked, ", ")));
}

}  // namespace
}  // namespace tributary::testing
