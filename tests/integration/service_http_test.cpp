#define BOOST_TEST_MODULE service_http_test
#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/file_events.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// Samples of a Prometheus text exposition: `name{labels}` → value.
std::map<std::string, double> ParseSamples(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

double Sample(const std::map<std::string, double>& samples, const std::string& key) {
  auto it = samples.find(key);
  BOOST_TEST_REQUIRE((it != samples.end()), "missing sample " << key);
  return it->second;
}

// Appends `http: { listen }` to a config written by WritePgFileConfig.
void AddHttp(const std::filesystem::path& config, int port) {
  std::ofstream(config, std::ios::app)
      << fmt::format("http: {{ listen: \"127.0.0.1:{}\" }}\n", port);
}

BOOST_AUTO_TEST_CASE(metrics_health_and_status_of_a_live_agent) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY, note text)", "shop");
  pg->Exec("CREATE TABLE items (id int PRIMARY KEY, qty int)", "shop");
  auto config = WritePgFileConfig(dir.path(), *pg, "shop", "svc", "[public.orders, public.items]");
  const int port = FreeLoopbackPort();
  AddHttp(config, port);

  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  httplib::Client client("127.0.0.1", port);
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              auto r = client.Get("/readyz");
                              return r && r->status == 200;
                            },
                            seconds(30)),
                        agent.Log());
  auto healthz = client.Get("/healthz");
  BOOST_REQUIRE(healthz);
  BOOST_TEST(healthz->status == 200);

  // 300 inserts and 40 updates into orders, 50 inserts and 20 deletes in items.
  for (int t = 0; t < 10; ++t) {
    pg->Exec(fmt::format("INSERT INTO orders SELECT g, 'n' || g FROM generate_series({}, {}) g",
                         t * 30 + 1, t * 30 + 30),
             "shop");
  }
  pg->Exec("UPDATE orders SET note = note || 'u' WHERE id <= 40", "shop");
  pg->Exec("INSERT INTO items SELECT g, g FROM generate_series(1, 50) g", "shop");
  pg->Exec("DELETE FROM items WHERE id <= 20", "shop");

  const auto orders_dir = TopicDir(dir.path(), "svc.public.orders");
  const auto items_dir = TopicDir(dir.path(), "svc.public.items");
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              return ReadTopicEvents(orders_dir).size() == 340 &&
                                     ReadTopicEvents(items_dir).size() == 70;
                            },
                            seconds(30)),
                        agent.Log());
  // Events reach the files before the checkpoint moves; wait for it so that lag is measured.
  json status;
  BOOST_REQUIRE(WaitFor(
      [&] {
        auto r = client.Get("/status");
        if (!r || r->status != 200) return false;
        status = json::parse(r->body);
        return status["sources"][0]["lag_seconds"].is_number();
      },
      seconds(10)));

  auto metrics = client.Get("/metrics");
  BOOST_REQUIRE(metrics);
  BOOST_TEST(metrics->status == 200);
  BOOST_TEST(metrics->get_header_value("Content-Type").starts_with("text/plain; version=0.0.4"));
  std::ofstream(dir.path() / "metrics.txt") << metrics->body;
  // promtool exits non-zero on a malformed exposition or a naming-lint problem.
  std::string lint =
      RunCommand("promtool check metrics < " + (dir.path() / "metrics.txt").string() + " 2>&1");
  BOOST_TEST(lint.empty(), "promtool: " << lint);

  auto samples = ParseSamples(metrics->body);
  BOOST_TEST(Sample(samples,
                    R"(tributary_events_total{op="c",source="svc",table="public.orders"})") == 300);
  BOOST_TEST(Sample(samples,
                    R"(tributary_events_total{op="u",source="svc",table="public.orders"})") == 40);
  BOOST_TEST(
      Sample(samples, R"(tributary_events_total{op="c",source="svc",table="public.items"})") == 50);
  BOOST_TEST(
      Sample(samples, R"(tributary_events_total{op="d",source="svc",table="public.items"})") == 20);
  BOOST_TEST(Sample(samples, R"(tributary_schema_version{source="svc",table="public.orders"})") ==
             1);
  // Decoded text: every value and position of 410 events, so at least a few bytes each.
  const double bytes = Sample(samples, R"(tributary_source_bytes_total{source="svc"})");
  BOOST_TEST(bytes > 410 * 10);
  BOOST_TEST(bytes < 410 * 200);
  BOOST_TEST(Sample(samples, R"(tributary_source_up{source="svc"})") == 1);
  BOOST_TEST(Sample(samples, R"(tributary_pipeline_restarts_total{source="svc"})") == 0);
  BOOST_TEST(
      Sample(samples, R"(tributary_sink_delivery_errors_total{sink="files",source="svc"})") == 0);
  BOOST_TEST(Sample(samples, R"(tributary_checkpoints_total{source="svc"})") >= 1);
  const double lag = Sample(samples, R"(tributary_source_lag_seconds{source="svc"})");
  BOOST_TEST(lag >= 0);
  BOOST_TEST(lag < 10);
  BOOST_TEST(Sample(samples, R"(tributary_checkpoint_age_seconds{source="svc"})") < 30);
  BOOST_TEST(Sample(samples, R"(tributary_build_info{version=")" TRIBUTARY_VERSION R"("})") == 1);
  BOOST_TEST(Sample(samples, R"(tributary_sink_dead_letters_total{sink="files",source="svc"})") ==
             0);
  BOOST_TEST(Sample(samples, R"(tributary_sink_retries_total{sink="files",source="svc"})") == 0);
  BOOST_TEST(Sample(samples, R"(tributary_snapshot_tables_remaining{source="svc"})") == 0);
  // Measured when the source opened; what it is now is the other test's business.
  BOOST_TEST(Sample(samples, R"(tributary_source_slot_lag_bytes{source="svc"})") >= 0);

  const json& source = status["sources"][0];
  BOOST_TEST(source["name"] == "svc");
  BOOST_TEST(source["state"] == "streaming");
  BOOST_TEST(source["events"] == 410);
  BOOST_TEST(source["checkpoint"].is_string());
  // The checkpoint /status shows is the one in the state dir, or an older one than a later save.
  const json saved = json::parse(ReadFile(dir.path() / "state" / "svc" / "checkpoint.json"));
  BOOST_TEST(source["checkpoint"].get<std::string>() <= saved["position"].get<std::string>());

  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
}

// The slot lag is what the server holds for the slot: large when the agent comes back to inserts
// made while it was stopped, small once it has caught up. Snapshot rows count what was read.
BOOST_AUTO_TEST_CASE(slot_lag_and_snapshot_progress) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE DATABASE shop");
  pg->Exec("CREATE TABLE orders (id int PRIMARY KEY, note text)", "shop");
  pg->Exec("CREATE TABLE items (id int PRIMARY KEY, qty int)", "shop");
  pg->Exec("INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 3000) g", "shop");
  pg->Exec("INSERT INTO items SELECT g, g FROM generate_series(1, 1200) g", "shop");
  auto config = WritePgFileConfig(dir.path(), *pg, "shop", "svc", "[public.orders, public.items]",
                                  "    snapshot: initial\n    snapshot_chunk_rows: 500\n");
  const int port = FreeLoopbackPort();
  AddHttp(config, port);
  httplib::Client client("127.0.0.1", port);
  const std::string lag_key = R"(tributary_source_slot_lag_bytes{source="svc"})";
  auto scrape = [&] {
    auto r = client.Get("/metrics");
    return r && r->status == 200 ? ParseSamples(r->body) : std::map<std::string, double>{};
  };

  auto agent = std::make_unique<AgentProcess>(
      std::vector<std::string>{"run", "--config", config.string()}, dir.path() / "agent1.log");
  const auto orders_dir = TopicDir(dir.path(), "svc.public.orders");
  BOOST_REQUIRE_MESSAGE(
      WaitFor(
          [&] {
            return ReadTopicEvents(orders_dir).size() == 3000 &&
                   ReadTopicEvents(TopicDir(dir.path(), "svc.public.items")).size() == 1200;
          },
          seconds(60)),
      agent->Log());
  // Gauges are sampled every 5 s; the counters are exact at once.
  std::map<std::string, double> samples;
  BOOST_REQUIRE_MESSAGE(
      WaitFor(
          [&] {
            samples = scrape();
            auto it = samples.find(R"(tributary_snapshot_tables_remaining{source="svc"})");
            return it != samples.end() && it->second == 0;
          },
          seconds(20)),
      agent->Log());
  BOOST_TEST(
      Sample(samples, R"(tributary_snapshot_rows_total{source="svc",table="public.orders"})") ==
      3000);
  BOOST_TEST(Sample(samples,
                    R"(tributary_snapshot_rows_total{source="svc",table="public.items"})") == 1200);
  BOOST_TEST(
      Sample(samples, R"(tributary_events_total{op="r",source="svc",table="public.orders"})") ==
      3000);
  BOOST_TEST(Sample(samples, lag_key) >= 0);
  agent->Signal(SIGTERM);
  BOOST_REQUIRE_MESSAGE(agent->Wait(seconds(15)).value_or(-1) == 0, agent->Log());

  // While it is stopped, inserts pile up behind the slot: at least this much WAL.
  const std::string before = pg->QueryValue("SELECT pg_current_wal_lsn()::text");
  pg->Exec("INSERT INTO orders SELECT g, repeat('x', 100) FROM generate_series(3001, 23000) g",
           "shop");
  const double written = std::stod(pg->QueryValue("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '" +
                                                  before + "'::pg_lsn)::bigint"));
  BOOST_TEST_MESSAGE("WAL written while stopped: " << written);
  BOOST_REQUIRE(written > 1e6);

  agent = std::make_unique<AgentProcess>(
      std::vector<std::string>{"run", "--config", config.string()}, dir.path() / "agent2.log");
  // The first sample is taken as the source opens, before it reads anything, and holds for 5 s.
  double first_lag = -1;
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              auto now = scrape();
                              auto it = now.find(lag_key);
                              if (it == now.end()) return false;
                              first_lag = it->second;
                              return true;
                            },
                            seconds(30)),
                        agent->Log());
  BOOST_TEST_MESSAGE("slot lag at restart: " << first_lag);
  BOOST_TEST(first_lag >= written);
  BOOST_TEST(first_lag < written + 1e6);

  // Caught up: the slot is confirmed up to the last commit, and the lag falls to what little
  // WAL the idle server writes.
  BOOST_REQUIRE_MESSAGE(
      WaitFor([&] { return ReadTopicEvents(orders_dir).size() == 23000; }, seconds(60)),
      agent->Log());
  double caught_up = -1;
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              auto now = scrape();
                              auto it = now.find(lag_key);
                              caught_up = it == now.end() ? -1 : it->second;
                              return caught_up >= 0 && caught_up < 64 * 1024;
                            },
                            seconds(30)),
                        agent->Log() << "\nslot lag " << caught_up);
  auto status = json::parse(client.Get("/status")->body);
  BOOST_TEST(status["sources"][0]["slot_lag_bytes"].is_number_unsigned());
  BOOST_TEST(status["sources"][0]["slot_lag_bytes"].get<double>() < written);
  // `tributary status` shows it in its SLOT_LAG column (the fifth), e.g. "3.2KiB".
  const std::string cli =
      RunCommand(std::string(TRIBUTARY_BINARY) + " status --config " + config.string() + " 2>&1");
  BOOST_TEST(cli.find("SLOT_LAG") != std::string::npos, cli);
  std::istringstream lines(cli);
  std::string slot_lag_column;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::vector<std::string> columns{std::istream_iterator<std::string>(fields), {}};
    if (columns.size() >= 5 && columns[0] == "svc") slot_lag_column = columns[4];
  }
  BOOST_TEST(slot_lag_column.ends_with("B"), cli);
  // Resumed from the checkpoint: the snapshot is not read again.
  BOOST_TEST(
      scrape().count(R"(tributary_snapshot_rows_total{source="svc",table="public.orders"})") == 0u);

  agent->Signal(SIGTERM);
  BOOST_TEST(agent->Wait(seconds(15)).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(readyz_is_503_while_a_source_cannot_connect) {
  TempDir dir;
  // A port nobody listens on: the source keeps reconnecting.
  const int dead_port = FreeLoopbackPort();
  const int port = FreeLoopbackPort();
  auto config = dir.path() / "tributary.yaml";
  std::ofstream(config) << fmt::format(R"(state_dir: {state}
http: {{ listen: "127.0.0.1:{port}" }}
sources:
  - name: down
    type: postgres
    dsn: "host=127.0.0.1 port={dead} dbname=x user=x"
    tables: [public.t]
    snapshot: never
    sinks: [files]
sinks:
  - name: files
    type: file
    path: {out}
)",
                                       fmt::arg("state", (dir.path() / "state").string()),
                                       fmt::arg("port", port), fmt::arg("dead", dead_port),
                                       fmt::arg("out", (dir.path() / "out").string()));
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  httplib::Client client("127.0.0.1", port);
  BOOST_REQUIRE_MESSAGE(
      WaitFor(
          [&] {
            auto r = client.Get("/metrics");
            if (!r) return false;
            auto samples = ParseSamples(r->body);
            auto it = samples.find(R"(tributary_pipeline_restarts_total{source="down"})");
            return it != samples.end() && it->second >= 1;
          },
          seconds(30)),
      agent.Log());
  auto readyz = client.Get("/readyz");
  BOOST_REQUIRE(readyz);
  BOOST_TEST(readyz->status == 503);
  BOOST_TEST(readyz->body == "source down is reconnecting\n");
  auto healthz = client.Get("/healthz");
  BOOST_REQUIRE(healthz);
  BOOST_TEST(healthz->status == 200);
  auto status = json::parse(client.Get("/status")->body);
  BOOST_TEST(status["sources"][0]["state"] == "reconnecting");
  BOOST_TEST(status["sources"][0]["last_error"].get<std::string>().find("cannot connect") !=
             std::string::npos);
  BOOST_TEST(status["sources"][0]["checkpoint"].is_null());
  agent.Signal(SIGTERM);
  BOOST_TEST(agent.Wait(seconds(15)).value_or(-1) == 0);
}

}  // namespace
}  // namespace tributary::testing
