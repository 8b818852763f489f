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
#include "tests/support/schema_checks.h"

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

struct Run : DdlRun {
  Run() : DdlRun("my.schema-changes", "my.ddl.t") {}
  std::unique_ptr<MariaDbServer> db = MariaDbServer::Start();
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
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return run.topics.HasRowWithId(last); }, seconds(60)),
                        LogOf{*run.agent});
  run.agent->Signal(SIGTERM);
  BOOST_REQUIRE(run.agent->Wait(seconds(20)).value_or(-1) == 0);

  // Versions 1..7, each once per announcement, with the compatibility the default (backward)
  // policy gives: adding a nullable column and widening are compatible; dropping, renaming and
  // changing the key are not; the re-created table matches its predecessor.
  const std::map<int, bool> expected_compatible = {{1, true},  {2, true},  {3, false}, {4, true},
                                                   {5, false}, {6, false}, {7, true}};
  int drops = 0;
  auto columns = CheckDdlRun(run.topics, "ddl.t", expected_compatible, last, drops);
  BOOST_TEST(drops == 1);
  BOOST_TEST((columns[3] == std::vector<std::string>{"id", "r", "a", "c"}));
  BOOST_TEST((columns[5] == std::vector<std::string>{"id", "r", "a2", "c"}));
  // The binlog carries the statement behind each version after the first, and the drop.
  for (const json& change : run.topics.Changes()) {
    if (change["version"] == 1 && change["dropped"] == false) continue;
    BOOST_TEST(change["ddl"].is_string(), change.dump());
    if (change["dropped"] == true) {
      BOOST_TEST(change["ddl"].get<std::string>().find("DROP TABLE") != std::string::npos);
    }
  }

  // `tributary schemas` prints the same history.
  const std::string printed =
      RunCommand(fmt::format("{} schemas --config {}", TRIBUTARY_BINARY, run.config.string()));
  for (int version = 1; version <= 7; ++version) {
    BOOST_TEST(printed.find(fmt::format("version {}", version)) != std::string::npos, printed);
  }
}

}  // namespace
}  // namespace tributary::testing
