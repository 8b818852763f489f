#define BOOST_TEST_MODULE mysql_continuity_test
#include <fmt/format.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/mysql_config.h"

namespace tributary::testing {
namespace {

using std::chrono::seconds;

constexpr int kExitConfig = 78;
constexpr int kExitContinuityLost = 65;

// Runs the agent of `config` (source `source`, tables shop.*) until it has written row 1 of
// shop.t, inserted now, and checkpointed it, then stops it.
void StreamFirstRow(const MariaDbServer& server, const std::filesystem::path& config,
                    const std::filesystem::path& dir, const std::string& source) {
  AgentProcess agent({"run", "--config", config.string()}, dir / "agent1.log");
  BOOST_REQUIRE(WaitFor([&] { return agent.Log().find("mysql: Streaming") != std::string::npos; },
                        seconds(30)));
  server.Exec("INSERT INTO shop.t VALUES (1)");
  const auto checkpoint = dir / "state" / source / "checkpoint.json";
  BOOST_REQUIRE(WaitFor(
      [&] {
        return ReadTopicEvents(TopicDir(dir, source + ".shop.t")).size() == 1 &&
               std::filesystem::exists(checkpoint) &&
               ReadFile(checkpoint).find("0-1-") != std::string::npos;
      },
      seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the checkpoint lands
  agent.Signal(SIGTERM);
  BOOST_REQUIRE(agent.Wait(seconds(15)).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(wrong_binlog_settings_exit_78_naming_the_setting) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--binlog-format=STATEMENT", "binlog_format=ROW"},
      {"--binlog-row-image=MINIMAL", "binlog_row_image=FULL"},
      {"--binlog-row-metadata=MINIMAL", "binlog_row_metadata=FULL"},
  };
  for (const auto& [option, named] : cases) {
    auto server = MariaDbServer::Start({option});
    TempDir dir;
    auto config = WriteMysqlFileConfig(dir.path(), *server, "bad", R"(["shop.*"])");
    const int code = RunAgent({"run", "--config", config.string()}, dir.path() / "agent.log");
    const std::string log = ReadFile(dir.path() / "agent.log");
    BOOST_TEST(code == kExitConfig, option << "\n" << log);
    BOOST_TEST(log.find(named) != std::string::npos, option << "\n" << log);
    // The password never reaches the log.
    BOOST_TEST(log.find("cdc-pass") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(bad_credentials_exit_78) {
  auto server = MariaDbServer::Start();
  TempDir dir;
  auto config = WriteMysqlFileConfig(dir.path(), *server, "bad", R"(["shop.*"])");
  EditConfig(config, "cdc-pass", "wrong-pass");
  const int code = RunAgent({"run", "--config", config.string()}, dir.path() / "agent.log");
  const std::string log = ReadFile(dir.path() / "agent.log");
  BOOST_TEST(code == kExitConfig, log);
  BOOST_TEST(log.find("wrong-pass") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(purged_binlog_exits_65_and_skips_nothing) {
  auto server = MariaDbServer::Start();
  TempDir dir;
  server->Exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
  auto config = WriteMysqlFileConfig(dir.path(), *server, "pu", R"(["shop.*"])");
  StreamFirstRow(*server, config, dir.path(), "pu");
  // Changes the agent has not seen go into a binlog that is then purged.
  server->Exec("FLUSH BINARY LOGS; INSERT INTO shop.t VALUES (2); FLUSH BINARY LOGS;");
  // Every binlog before the fresh one must go, the one holding id 2 included; MariaDB keeps a
  // binlog until its transactions are durable in InnoDB, so retry the purge.
  const std::string fresh = server->Query("SHOW BINARY LOGS").back()[0];
  BOOST_REQUIRE(WaitFor(
      [&] {
        server->Exec(fmt::format("PURGE BINARY LOGS TO '{}'", fresh));
        return server->Query("SHOW BINARY LOGS").front()[0] == fresh;
      },
      seconds(30)));
  const int code = RunAgent({"run", "--config", config.string()}, dir.path() / "agent2.log");
  const std::string log = ReadFile(dir.path() / "agent2.log");
  BOOST_TEST(code == kExitContinuityLost, log);
  BOOST_TEST(log.find("Refusing to skip") != std::string::npos, log);
  BOOST_TEST(ReadTopicEvents(TopicDir(dir.path(), "pu.shop.t")).size() == 1u);
}

// A failover by GTID to a server whose binlogs number lower: its positions sort below what the
// sink holds. Played on one server: the checkpoint names a binlog this server does not have
// (the old server's), and the topic's watermark a position past this server's.
BOOST_AUTO_TEST_CASE(resuming_on_another_servers_binlogs_starts_a_new_lineage) {
  auto server = MariaDbServer::Start();
  TempDir dir;
  server->Exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
  auto config = WriteMysqlFileConfig(dir.path(), *server, "fo", R"(["shop.*"])");
  const auto topic = TopicDir(dir.path(), "fo.shop.t");
  const auto checkpoint = dir.path() / "state" / "fo" / "checkpoint.json";
  StreamFirstRow(*server, config, dir.path(), "fo");
  nlohmann::json saved = nlohmann::json::parse(ReadFile(checkpoint));
  const std::string lineage = saved["lineage"];
  std::string position = saved["position"];
  position.replace(0, position.find(':'), "old-server-bin.000900");
  saved["position"] = position;
  std::ofstream(checkpoint) << saved.dump() << "\n";
  nlohmann::json watermark = nlohmann::json::parse(ReadFile(topic / "_watermark.json"));
  watermark["position"] = "0000000900/000000000004/00000000";
  std::ofstream(topic / "_watermark.json") << watermark.dump() << "\n";

  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent2.log");
  BOOST_REQUIRE(WaitFor([&] { return agent.Log().find("mysql: Streaming") != std::string::npos; },
                        seconds(30)));
  server->Exec("INSERT INTO shop.t VALUES (2)");
  BOOST_TEST(WaitFor([&] { return ReadTopicEvents(topic).size() == 2; }, seconds(30)), agent.Log());
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
  BOOST_TEST(agent.Log().find("start a new lineage") != std::string::npos, agent.Log());
  const std::string now = nlohmann::json::parse(ReadFile(checkpoint))["lineage"];
  BOOST_TEST(now != lineage);
}

}  // namespace
}  // namespace tributary::testing
