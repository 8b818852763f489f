#define BOOST_TEST_MODULE mysql_schema_test
#include <fmt/format.h>
#include <mysql.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <map>
#include <set>
#include <thread>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/mysql_config.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Inserts rows with increasing ids into `t`, one transaction each, until stopped. A statement
// that fails (it raced a DDL) is retried with the same id.
void RunInserts(const MariaDbServer& server, const std::atomic<bool>& stop,
                std::atomic<int>& last_id) {
  MYSQL* conn = mysql_init(nullptr);
  BOOST_REQUIRE(mysql_real_connect(conn, "127.0.0.1", "app", "app-pass", nullptr,
                                   static_cast<unsigned>(server.port()), nullptr, 0) != nullptr);
  int id = 1;
  while (!stop.load()) {
    const std::string sql = fmt::format("INSERT INTO ddl.t (id) VALUES ({})", id);
    if (mysql_query(conn, sql.c_str()) == 0) last_id.store(id++);
    std::this_thread::sleep_for(milliseconds(2));
  }
  mysql_close(conn);
}

struct Run {
  TempDir dir;
  std::unique_ptr<MariaDbServer> db = MariaDbServer::Start();
  std::filesystem::path config;
  std::unique_ptr<AgentProcess> agent;
  int starts = 0;

  void Start() {
    agent =
        std::make_unique<AgentProcess>(std::vector<std::string>{"run", "--config", config.string()},
                                       dir.path() / fmt::format("agent{}.log", ++starts));
  }
  std::vector<json> Changes() const {
    return ReadTopicEvents(TopicDir(dir.path(), "my.schema-changes"));
  }
  std::vector<json> Rows() const { return ReadTopicEvents(TopicDir(dir.path(), "my.ddl.t")); }
  // Waits until version `version` is announced and a row of it is written.
  void AwaitVersion(int version) {
    bool seen = WaitFor(
        [&] {
          bool announced = false;
          for (const json& change : Changes()) announced |= change["version"] == version;
          if (!announced) return false;
          for (const json& row : Rows()) {
            if (row["source"]["schema_version"] == version) return true;
          }
          return false;
        },
        seconds(60));
    BOOST_REQUIRE_MESSAGE(seen, "version " << version << " never showed up\n" << agent->Log());
  }
};

BOOST_AUTO_TEST_CASE(ddl_under_writes_versions_every_row_and_announces_each_change_first) {
  Run run;
  run.db->Exec(
      "CREATE DATABASE ddl; CREATE TABLE ddl.t (id INT PRIMARY KEY, r INT NOT NULL DEFAULT 0, "
      "a VARCHAR(20), b INT)");
  run.config = WriteMysqlFileConfig(run.dir.path(), *run.db, "my", R"(["ddl.*"])");
  run.agent = StartStreamingMysqlAgent(run.config, run.dir.path() / "agent0.log");
  std::atomic<bool> stop{false};
  std::atomic<int> last_id{0};
  std::thread writer([&] { RunInserts(*run.db, stop, last_id); });

  run.AwaitVersion(1);
  run.db->Exec("ALTER TABLE ddl.t ADD COLUMN c INT");
  run.AwaitVersion(2);
  // A clean restart between changes.
  run.agent->Signal(SIGTERM);
  BOOST_REQUIRE(run.agent->Wait(seconds(20)).value_or(-1) == 0);
  run.Start();
  run.db->Exec("ALTER TABLE ddl.t DROP COLUMN b");
  run.AwaitVersion(3);
  run.db->Exec("ALTER TABLE ddl.t MODIFY c BIGINT");
  run.AwaitVersion(4);
  run.db->Exec("ALTER TABLE ddl.t RENAME COLUMN a TO a2");
  run.AwaitVersion(5);
  // A crash between changes: what was not checkpointed is replayed.
  run.agent->Signal(SIGKILL);
  run.agent->Wait(seconds(10));
  run.Start();
  run.db->Exec("ALTER TABLE ddl.t DROP PRIMARY KEY, ADD PRIMARY KEY (id, r)");
  run.AwaitVersion(6);
  // The same table again under the same name.
  run.db->Exec(
      "DROP TABLE ddl.t; CREATE TABLE ddl.t (id INT, r INT NOT NULL DEFAULT 0, a2 VARCHAR(20), "
      "c BIGINT, PRIMARY KEY (id, r))");
  run.AwaitVersion(7);
  stop.store(true);
  writer.join();
  // Everything written arrives.
  const int last = last_id.load();
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              for (const json& row : run.Rows()) {
                                if (row["after"]["id"] == last) return true;
                              }
                              return false;
                            },
                            seconds(60)),
                        run.agent->Log());
  run.agent->Signal(SIGTERM);
  BOOST_REQUIRE(run.agent->Wait(seconds(20)).value_or(-1) == 0);

  // Versions 1..7, each once per announcement, with the compatibility the default (backward)
  // policy gives: adding a nullable column and widening are compatible; dropping, renaming and
  // changing the key are not; the re-created table matches its predecessor.
  const std::map<int, bool> expected_compatible = {{1, true},  {2, true},  {3, false}, {4, true},
                                                   {5, false}, {6, false}, {7, true}};
  std::map<int, std::set<std::string>> columns;
  std::map<int, std::string> announced_at;  // first announcement's position
  bool drop_announced = false;
  for (const json& change : run.Changes()) {
    const int version = change["version"];
    if (change["dropped"] == true) {
      drop_announced = true;
      BOOST_TEST(change["ddl"].get<std::string>().find("DROP TABLE") != std::string::npos);
      continue;
    }
    // The binlog carries the statement that made each version after the first.
    if (version > 1) BOOST_TEST(change["ddl"].is_string(), change.dump());
    BOOST_TEST_CONTEXT("version " << version) {
      BOOST_TEST(change["table"] == "ddl.t");
      BOOST_TEST(change["previous_version"] == version - 1);
      BOOST_TEST(expected_compatible.contains(version));
      BOOST_TEST(change["compatible"] == expected_compatible.at(version));
      std::set<std::string> names;
      for (const json& column : change["columns"]) names.insert(column["name"]);
      if (columns.contains(version)) BOOST_TEST((columns[version] == names));
      columns[version] = names;
      announced_at.try_emplace(version, change["position"]);
    }
  }
  BOOST_TEST(drop_announced);
  BOOST_TEST(columns.size() == 7u);
  BOOST_TEST((columns[3] == std::set<std::string>{"id", "r", "a", "c"}));
  BOOST_TEST((columns[5] == std::set<std::string>{"id", "r", "a2", "c"}));

  // Every row carries a version whose columns are exactly its columns, and no row of a
  // version comes before the version's announcement.
  std::map<int, std::string> first_row_at;
  std::set<int> ids;
  for (const json& row : run.Rows()) {
    const int version = row["source"]["schema_version"];
    std::set<std::string> names;
    for (const auto& [name, value] : row["after"].items()) names.insert(name);
    BOOST_TEST_CONTEXT("row " << row["after"].dump()) { BOOST_TEST((names == columns[version])); }
    first_row_at.try_emplace(version, row["source"]["position"]);
    ids.insert(row["after"]["id"].get<int>());
  }
  for (const auto& [version, position] : first_row_at) {
    BOOST_TEST(announced_at.contains(version));
    BOOST_TEST(announced_at[version] <= position, "version " << version);
  }
  // Ids were inserted in order: all of them arrived.
  BOOST_TEST(ids.size() == static_cast<size_t>(last));

  // `tributary schemas` prints the same history.
  const std::string printed =
      RunCommand(fmt::format("{} schemas --config {}", TRIBUTARY_BINARY, run.config.string()));
  for (int version = 1; version <= 7; ++version) {
    BOOST_TEST(printed.find(fmt::format("version {}", version)) != std::string::npos, printed);
  }
}

}  // namespace
}  // namespace tributary::testing
