#define BOOST_TEST_MODULE service_cli_test
#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A config with one file sink and the given sources block; `top` goes at the top level.
fs::path WriteConfig(const fs::path& dir, const std::string& sources, const std::string& top = "") {
  const fs::path path = dir / "tributary.yaml";
  std::ofstream(path) << fmt::format(
      "state_dir: {}\n{}sources:\n{}sinks:\n  - {{name: files, type: file, path: {}, "
      "flush_interval_ms: 50}}\n",
      (dir / "state").string(), top, sources, (dir / "out").string());
  chmod(path.c_str(), 0600);
  return path;
}

struct Outcome {
  int code;
  std::string out;  // stdout and stderr
};

// Runs the CLI once with a log file of its own (AgentProcess appends to its log).
Outcome RunCli(const fs::path& dir, const std::vector<std::string>& args) {
  static int runs = 0;
  const fs::path log = dir / fmt::format("cli{}.log", ++runs);
  const int code = RunAgent(args, log);
  return {code, ReadFile(log)};
}

std::string Source(const std::string& name, const std::string& dsn, const std::string& tables) {
  return fmt::format(
      "  - {{name: {}, type: postgres, dsn: \"{}\", tables: {}, snapshot: never, sinks: "
      "[files]}}\n",
      name, dsn, tables);
}

BOOST_AUTO_TEST_CASE(validate_connect_reports_what_is_missing_and_changes_nothing) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE log (line text)", "shop");
  pg->Exec("CREATE ROLE weak LOGIN");
  const std::string weak_dsn = pg->Dsn("shop") + " user=weak";
  auto config =
      WriteConfig(dir.path(), Source("shop", weak_dsn, "[public.orders, public.log, \"audit.*\"]"));
  auto [code, out] = RunCli(dir.path(), {"validate", "--connect", "--config", config.string()});
  BOOST_TEST(code == 78);
  BOOST_TEST(Contains(out, "sources[0]: the role lacks the REPLICATION attribute"), out);
  BOOST_TEST(Contains(out, "sources[0].tables[1]: table public.log has no replica identity"), out);
  BOOST_TEST(Contains(out, "sources[0].tables[2]: \"audit.*\" matches no table"), out);
  BOOST_TEST(!Contains(out, "tables[0]"), out);

  config = WriteConfig(dir.path(), Source("shop", pg->Dsn("shop"), "[public.orders]"));
  Outcome good = RunCli(dir.path(), {"validate", "--connect", "--config", config.string()});
  BOOST_TEST(good.code == 0, good.out);
  BOOST_TEST(Contains(good.out, "sources[0].slot: tributary_shop will be created"), good.out);

  config = WriteConfig(dir.path(), Source("shop", pg->Dsn("shop") + " port=1", "[public.orders]"));
  Outcome down = RunCli(dir.path(), {"validate", "--connect", "--config", config.string()});
  BOOST_TEST(down.code == 78);
  BOOST_TEST(Contains(down.out, "sources[0].dsn: postgres: cannot connect"), down.out);

  // Read-only: no slot, no publication.
  BOOST_TEST(pg->QueryValue("SELECT count(*) FROM pg_replication_slots") == "0");
  BOOST_TEST(pg->QueryValue("SELECT count(*) FROM pg_publication", "shop") == "0");
}

BOOST_AUTO_TEST_CASE(wal_level_replica_is_reported) {
  auto pg = PgServer::Start({"wal_level=replica"});
  TempDir dir;
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY)");
  auto config = WriteConfig(dir.path(), Source("shop", pg->Dsn(), "[public.orders]"));
  auto [code, out] = RunCli(dir.path(), {"validate", "--connect", "--config", config.string()});
  BOOST_TEST(code == 78);
  BOOST_TEST(Contains(out, "sources[0]: the server has wal_level=replica"), out);
}

std::string MysqlSource(const std::string& dsn, int server_id, const std::string& tables) {
  return fmt::format(
      "  - {{name: shop, type: mysql, dsn: \"{}\", server_id: {}, tables: {}, snapshot: never, "
      "sinks: [files]}}\n",
      dsn, server_id, tables);
}

BOOST_AUTO_TEST_CASE(validate_connect_checks_a_mariadb_source) {
  auto db = MariaDbServer::Start({"--binlog-format=MIXED"});
  TempDir dir;
  db->Exec(
      "CREATE DATABASE shop; CREATE TABLE shop.orders (id int PRIMARY KEY); "
      "CREATE TABLE shop.log (line text); "
      "CREATE USER weak@'%' IDENTIFIED BY 'weak-pass'; GRANT SELECT ON shop.* TO weak@'%'");
  const std::string weak_dsn = fmt::format("mysql://weak:weak-pass@127.0.0.1:{}", db->port());
  auto config =
      WriteConfig(dir.path(), MysqlSource(weak_dsn, 1, "[shop.orders, shop.log, \"audit.*\"]"));
  auto [code, out] = RunCli(dir.path(), {"validate", "--connect", "--config", config.string()});
  BOOST_TEST(code == 78);
  BOOST_TEST(Contains(out, "sources[0]: the server has binlog_format=MIXED"), out);
  BOOST_TEST(Contains(out, "sources[0]: the user weak lacks the REPLICATION SLAVE privilege"), out);
  BOOST_TEST(Contains(out, "sources[0]: SHOW BINARY LOGS fails"), out);
  BOOST_TEST(Contains(out, "sources[0].server_id: 1 is the server's own server_id"), out);
  BOOST_TEST(Contains(out, "sources[0].tables[2]: \"audit.*\" matches no table"), out);
  BOOST_TEST(Contains(out, "sources[0].tables[1]: table shop.log has no primary key"), out);
  BOOST_TEST(!Contains(out, "weak-pass"), out);

  db->Exec("SET GLOBAL binlog_format = 'ROW'");
  config = WriteConfig(dir.path(), MysqlSource(db->Dsn(), 4242, "[shop.orders, shop.log]"));
  Outcome good = RunCli(dir.path(), {"validate", "--connect", "--config", config.string()});
  BOOST_TEST(good.code == 0, good.out);
  BOOST_TEST(Contains(good.out, "sources[0]: binlogs "), good.out);

  config =
      WriteConfig(dir.path(), MysqlSource(fmt::format("mysql://cdc:wrong@127.0.0.1:{}", db->port()),
                                          4242, "[shop.orders]"));
  Outcome denied = RunCli(dir.path(), {"validate", "--connect", "--config", config.string()});
  BOOST_TEST(denied.code == 78);
  BOOST_TEST(Contains(denied.out, "sources[0].dsn: mysql: cannot connect to 127.0.0.1:"),
             denied.out);
}

BOOST_AUTO_TEST_CASE(validate_connect_checks_kafka_brokers_and_topics) {
  auto pg = PgServer::Start();
  auto kafka = MockKafka::Start();
  kafka->CreateTopic("shop.public.orders", 3);
  TempDir dir;
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE items (id int PRIMARY KEY)");
  auto write = [&](const std::string& brokers) {
    const fs::path path = dir.path() / "kafka.yaml";
    std::ofstream(path) << fmt::format(
        "state_dir: {}\nsources:\n  - {{name: shop, type: postgres, dsn: \"{}\", tables: "
        "[public.orders, public.items], snapshot: never, transaction_metadata: true, "
        "logical_messages: [audit], sinks: [bus]}}\nsinks:\n  - {{name: "
        "bus, type: kafka, brokers: \"{}\", dlq_topic: shop.dlq, exactly_once: true}}\n",
        (dir.path() / "state").string(), pg->Dsn(), brokers);
    chmod(path.c_str(), 0600);
    return path;
  };
  auto [code, out] =
      RunCli(dir.path(), {"validate", "--connect", "--config", write(kafka->bootstrap()).string()});
  BOOST_TEST(code == 0, out);
  BOOST_TEST(Contains(out, "sinks[0].brokers: 3 broker(s) answered"), out);
  BOOST_TEST(Contains(out, "sinks[0]: topic shop.public.items does not exist yet"), out);
  BOOST_TEST(Contains(out, "sinks[0]: topic shop.schema-changes does not exist yet"), out);
  BOOST_TEST(Contains(out, "sinks[0]: topic shop.dlq does not exist yet"), out);
  BOOST_TEST(Contains(out, "sinks[0]: topic tributary.offsets does not exist yet"), out);
  BOOST_TEST(Contains(out, "sinks[0]: topic shop.transaction does not exist yet"), out);
  BOOST_TEST(Contains(out, "sinks[0]: topic shop.message does not exist yet"), out);
  BOOST_TEST(!Contains(out, "topic shop.public.orders"), out);

  Outcome down =
      RunCli(dir.path(), {"validate", "--connect", "--config", write("127.0.0.1:1").string()});
  BOOST_TEST(down.code == 78);
  BOOST_TEST(Contains(down.out, "sinks[0].brokers: no metadata from 127.0.0.1:1 within 10 s"),
             down.out);
}

BOOST_AUTO_TEST_CASE(literal_password_in_a_readable_config_warns) {
  TempDir dir;
  auto config = WriteConfig(
      dir.path(), Source("shop", "host=127.0.0.1 user=cdc password=hunter2", "[public.orders]"));
  Outcome quiet = RunCli(dir.path(), {"validate", "--config", config.string()});
  BOOST_TEST(quiet.code == 0);
  BOOST_TEST(!Contains(quiet.out, "warning"), quiet.out);  // mode 0600
  chmod(config.c_str(), 0640);
  auto [code, out] = RunCli(dir.path(), {"validate", "--config", config.string()});
  BOOST_TEST(code == 0);
  BOOST_TEST(Contains(out, "warning: config " + config.string() +
                               " holds a literal password or key and is readable by group or "
                               "others (mode 0640)"),
             out);
  BOOST_TEST(!Contains(out, "hunter2"));
  // A reference is no literal secret.
  setenv("CLI_TEST_PW", "hunter2", 1);
  config = WriteConfig(dir.path(),
                       Source("shop", "host=127.0.0.1 password=${CLI_TEST_PW}", "[public.orders]"));
  chmod(config.c_str(), 0644);
  Outcome referenced = RunCli(dir.path(), {"validate", "--config", config.string()});
  BOOST_TEST(referenced.code == 0);
  BOOST_TEST(!Contains(referenced.out, "warning"), referenced.out);
}

BOOST_AUTO_TEST_CASE(status_shows_checkpoints_and_live_state) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY)", "shop");
  const int port = FreeLoopbackPort();
  auto config = WriteConfig(dir.path(), Source("shop", pg->Dsn("shop"), "[public.orders]"),
                            fmt::format("http: {{listen: \"127.0.0.1:{}\"}}\n", port));
  Outcome before = RunCli(dir.path(), {"status", "--config", config.string()});
  BOOST_TEST(before.code == 0);
  BOOST_TEST(Contains(before.out, "agent: not answering at http://127.0.0.1:"), before.out);
  BOOST_TEST(Contains(before.out, " none"), before.out);

  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  httplib::Client client("127.0.0.1", port);
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              auto r = client.Get("/readyz");
                              return r && r->status == 200;
                            },
                            seconds(30)),
                        LogOf{agent});
  pg->Exec("INSERT INTO orders VALUES (1)", "shop");
  const fs::path checkpoint = dir.path() / "state" / "shop" / "checkpoint.json";
  // The file holds the source's lineage alone until the first checkpoint.
  BOOST_REQUIRE(WaitFor(
      [&] {
        return fs::exists(checkpoint) &&
               ReadFile(checkpoint).find("\"position\"") != std::string::npos;
      },
      seconds(20)));
  BOOST_REQUIRE(WaitFor(
      [&] {
        auto r = client.Get("/status");
        return r && nlohmann::json::parse(r->body)["sources"][0]["lag_seconds"].is_number();
      },
      seconds(10)));
  Outcome live = RunCli(dir.path(), {"status", "--config", config.string()});
  BOOST_TEST(live.code == 0);
  BOOST_TEST(Contains(live.out, "agent: running, version"), live.out);
  BOOST_TEST(Contains(live.out, "streaming"), live.out);
  const auto saved = nlohmann::json::parse(ReadFile(checkpoint));
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);

  // Stopped: the state dir still tells where each source stands.
  auto [code, out] = RunCli(dir.path(), {"status", "--config", config.string()});
  BOOST_TEST(code == 0);
  BOOST_TEST(Contains(out, "agent: not answering"), out);
  const auto final_checkpoint = nlohmann::json::parse(ReadFile(checkpoint));
  BOOST_TEST(Contains(out, final_checkpoint["position"].get<std::string>()), out);
  BOOST_TEST(Contains(out, final_checkpoint["saved_at"].get<std::string>()), out);
  BOOST_TEST(saved["position"].get<std::string>() <=
             final_checkpoint["position"].get<std::string>());
}

// One source fails for good (its table glob matches nothing: exit 78). Under isolate the other
// goes on streaming; under stop_all the agent stops. The exit code is the worst either way.
BOOST_AUTO_TEST_CASE(on_source_failure_isolate_and_stop_all) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY)", "shop");
  const std::string sources = Source("good", pg->Dsn("shop"), "[public.orders]") +
                              Source("bad", pg->Dsn("shop"), "[public.missing]");
  auto config = WriteConfig(dir.path(), sources, "on_source_failure: isolate\n");
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  BOOST_REQUIRE_MESSAGE(
      WaitFor([&] { return Contains(agent.Log(), "Source stopped source=bad"); }, seconds(30)),
      LogOf{agent});
  BOOST_REQUIRE(WaitFor(
      [&] {
        return pg->QueryValue("SELECT count(*) FROM pg_replication_slots WHERE active") == "1";
      },
      seconds(30)));
  pg->Exec("INSERT INTO orders VALUES (7)", "shop");
  BOOST_TEST(
      WaitFor(
          [&] { return ReadTopicEvents(dir.path() / "out" / "good.public.orders").size() == 1; },
          seconds(20)),
      agent.Log());
  BOOST_TEST(agent.running());
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 78);

  config = WriteConfig(dir.path(), sources, "on_source_failure: stop_all\n");
  const int code =
      RunAgent({"run", "--config", config.string()}, dir.path() / "agent2.log", seconds(30));
  BOOST_TEST(code == 78, ReadFile(dir.path() / "agent2.log"));
}

}  // namespace
}  // namespace tributary::testing
