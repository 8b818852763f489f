#define BOOST_TEST_MODULE pg_schema_test
#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/pg_server.h"
#include "tests/support/schema_checks.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Inserts rows with increasing ids into `t`, one transaction each, until stopped. A statement
// that fails (it raced a DDL) is retried with the same id.
void RunInserts(const PgServer& pg, const std::atomic<bool>& stop, std::atomic<int>& last_id) {
  PGconn* conn = PQconnectdb(pg.Dsn("ddl").c_str());
  BOOST_REQUIRE(PQstatus(conn) == CONNECTION_OK);
  int id = 1;
  while (!stop.load()) {
    PGresult* result = PQexec(conn, fmt::format("INSERT INTO t (id) VALUES ({})", id).c_str());
    if (PQresultStatus(result) == PGRES_COMMAND_OK) last_id.store(id++);
    PQclear(result);
    std::this_thread::sleep_for(milliseconds(2));
  }
  PQfinish(conn);
}

struct Run : DdlRun {
  Run() : DdlRun("dd.schema-changes", "dd.public.t") {}
  std::unique_ptr<PgServer> pg = PgServer::Start();
};

BOOST_AUTO_TEST_CASE(ddl_under_writes_versions_every_row_and_announces_each_change_first) {
  Run run;
  run.pg->Exec("CREATE DATABASE ddl");
  run.pg->Exec("CREATE TABLE t (id int PRIMARY KEY, r int NOT NULL DEFAULT 0, a text, b int)",
               "ddl");
  run.config = WritePgFileConfig(run.dir.path(), *run.pg, "ddl", "dd", "[public.t]");
  run.Start();
  BOOST_REQUIRE(WaitFor(
      [&] {
        return run.pg->QueryValue("SELECT count(*) FROM pg_replication_slots WHERE active") == "1";
      },
      seconds(30)));
  std::atomic<bool> stop{false};
  std::atomic<int> last_id{0};
  std::thread writer([&] { RunInserts(*run.pg, stop, last_id); });

  run.AwaitVersion(1);
  run.pg->Exec("ALTER TABLE t ADD COLUMN c int", "ddl");
  run.AwaitVersion(2);
  // A clean restart between changes.
  run.agent->Signal(SIGTERM);
  BOOST_REQUIRE(run.agent->Wait(seconds(20)).value_or(-1) == 0);
  run.Start();
  run.pg->Exec("ALTER TABLE t DROP COLUMN b", "ddl");
  run.AwaitVersion(3);
  run.pg->Exec("ALTER TABLE t ALTER COLUMN c TYPE bigint", "ddl");
  run.AwaitVersion(4);
  run.pg->Exec("ALTER TABLE t RENAME COLUMN a TO a2", "ddl");
  run.AwaitVersion(5);
  // A crash between changes: what was not checkpointed is replayed.
  run.agent->Signal(SIGKILL);
  run.agent->Wait(seconds(10));
  run.Start();
  run.pg->Exec("ALTER TABLE t DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (id, r)", "ddl");
  run.AwaitVersion(6);
  // The same table again under the same name; the publication lists tables, so the new one
  // joins it in the same transaction (docs/schemas.md).
  run.pg->Exec(
      "BEGIN; DROP TABLE t;"
      "CREATE TABLE t (id int, r int NOT NULL DEFAULT 0, a2 text, c bigint, PRIMARY KEY (id, r));"
      "ALTER PUBLICATION tributary_dd ADD TABLE t; COMMIT;",
      "ddl");
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
  auto columns = CheckDdlRun(run.topics, "public.t", expected_compatible, last, drops);
  BOOST_TEST(drops == 0);  // PostgreSQL's stream has no DDL: a new relation id tells
  BOOST_TEST((columns[3] == std::vector<std::string>{"id", "r", "a", "c"}));
  BOOST_TEST((columns[5] == std::vector<std::string>{"id", "r", "a2", "c"}));

  // `tributary schemas` prints the same history.
  const std::string printed =
      RunCommand(fmt::format("{} schemas --config {}", TRIBUTARY_BINARY, run.config.string()));
  for (int version = 1; version <= 7; ++version) {
    BOOST_TEST(printed.find(fmt::format("version {}", version)) != std::string::npos, printed);
  }
}

BOOST_AUTO_TEST_CASE(fail_policy_stops_before_the_first_row_of_an_incompatible_version) {
  Run run;
  run.pg->Exec("CREATE DATABASE ddl");
  run.pg->Exec("CREATE TABLE t (id int PRIMARY KEY, a text)", "ddl");
  run.config = WritePgFileConfig(run.dir.path(), *run.pg, "ddl", "dd", "[public.t]",
                                 "    on_incompatible: fail\n");
  run.Start();
  BOOST_REQUIRE(WaitFor(
      [&] {
        return run.pg->QueryValue("SELECT count(*) FROM pg_replication_slots WHERE active") == "1";
      },
      seconds(30)));
  run.pg->Exec("INSERT INTO t VALUES (1, 'x'), (2, 'y')", "ddl");
  run.AwaitVersion(1);
  run.pg->Exec("ALTER TABLE t DROP COLUMN a; INSERT INTO t VALUES (3)", "ddl");
  const std::optional<int> code = run.agent->Wait(seconds(30));
  const std::string log = run.agent->Log();
  BOOST_TEST(code.value_or(-1) == 65, log);
  BOOST_TEST(log.find("column a dropped") != std::string::npos, log);
  BOOST_TEST(log.find("on_incompatible: warn") != std::string::npos, log);
  for (const json& row : run.topics.Rows()) BOOST_TEST(row["source"]["schema_version"] == 1);
  BOOST_TEST(run.topics.Changes().size() == 1u);

  // Accepting the change: the row that waited arrives under version 2, flagged incompatible.
  std::string yaml = ReadFile(run.config);
  yaml.replace(yaml.find("on_incompatible: fail"), 21, "on_incompatible: warn");
  std::ofstream(run.config) << yaml;
  run.Start();
  run.AwaitVersion(2);
  const std::vector<json> changes = run.topics.Changes();
  BOOST_TEST(changes.back()["compatible"] == false);
  BOOST_TEST(changes.back()["problems"][0] == "column a dropped");
  run.agent->Signal(SIGTERM);
  BOOST_TEST(run.agent->Wait(seconds(20)).value_or(-1) == 0);
}

}  // namespace
}  // namespace tributary::testing
