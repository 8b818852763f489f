#define BOOST_TEST_MODULE metrics_pipeline_test
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "agent/http_server.h"
#include "agent/metrics.h"
#include "agent/secret_check.h"
#include "agent/systemd_notify.h"
#include "tests/support/temp_dir.h"

namespace tributary {
namespace {

std::map<std::string, double> Samples(Metrics& metrics) {
  std::map<std::string, double> samples;
  std::istringstream in(metrics.Serialize());
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

std::shared_ptr<const TableSchema> Table(const std::string& name, int columns) {
  auto table = std::make_shared<TableSchema>();
  table->schema = "public";
  table->table = name;
  for (int i = 0; i < columns; ++i) {
    ColumnSchema column;
    column.name = std::string(1, static_cast<char>('a' + i));
    table->columns.push_back(column);
  }
  return table;
}

// Appends an event whose images hold `columns` values of `value_bytes` bytes each.
void AddEvent(Batch& batch, const std::shared_ptr<const TableSchema>& table, Op op,
              int64_t commit_ts_us, size_t value_bytes) {
  Event event;
  event.op = op;
  event.table = batch.Retain(table);
  event.meta.commit_ts_us = commit_ts_us;
  auto image = [&] {
    const auto at = static_cast<uint32_t>(batch.values.size());
    for (size_t i = 0; i < table->columns.size(); ++i) {
      batch.values.push_back(batch.AddValue(ValueKind::kString, std::string(value_bytes, 'x')));
    }
    return at;
  };
  if (op != Op::kCreate) event.before = image();
  if (op != Op::kDelete) event.after = image();
  batch.events.push_back(event);
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

BOOST_AUTO_TEST_CASE(counts_events_and_bytes_per_table_and_op) {
  Metrics metrics;
  PipelineMetrics& pipeline = metrics.AddPipeline("shop", "postgres", {"files"}, 1000);
  auto orders = Table("orders", 2);
  auto items = Table("items", 3);
  Batch batch;
  // Runs interleave: c c u (orders), d (items), c (orders), u u (items).
  const int64_t ts = NowUs() - 2'000'000;
  AddEvent(batch, orders, Op::kCreate, ts, 4);
  AddEvent(batch, orders, Op::kCreate, ts, 4);
  AddEvent(batch, orders, Op::kUpdate, ts, 4);
  AddEvent(batch, items, Op::kDelete, ts, 1);
  AddEvent(batch, orders, Op::kCreate, ts, 4);
  AddEvent(batch, items, Op::kUpdate, ts, 1);
  AddEvent(batch, items, Op::kUpdate, ts, 1);
  batch.commit_position = "0001";
  pipeline.CountBatch(batch);

  auto s = Samples(metrics);
  BOOST_TEST(s[R"(tributary_events_total{op="c",source="shop",table="public.orders"})"] == 3);
  BOOST_TEST(s[R"(tributary_events_total{op="u",source="shop",table="public.orders"})"] == 1);
  BOOST_TEST(s[R"(tributary_events_total{op="d",source="shop",table="public.items"})"] == 1);
  BOOST_TEST(s[R"(tributary_events_total{op="u",source="shop",table="public.items"})"] == 2);
  BOOST_TEST(s[R"(tributary_source_bytes_total{source="shop"})"] ==
             static_cast<double>(batch.arena.size()));
  BOOST_TEST(s[R"(tributary_batches_total{source="shop"})"] == 1);

  // No lag until the checkpoint passes the batch; then commit time → now, about 2 s.
  BOOST_TEST(!pipeline.Snapshot().lag_seconds.has_value());
  pipeline.OnCheckpoint("0000");
  BOOST_TEST(!pipeline.Snapshot().lag_seconds.has_value());
  pipeline.OnCheckpoint("0001");
  const double lag = pipeline.Snapshot().lag_seconds.value();
  BOOST_TEST(lag >= 2.0);
  BOOST_TEST(lag < 5.0);
  BOOST_TEST(Samples(metrics)[R"(tributary_source_lag_seconds{source="shop"})"] == lag);
  BOOST_TEST(pipeline.Snapshot().checkpoint.value() == "0001");
  BOOST_TEST(pipeline.Snapshot().events == 7u);
}

BOOST_AUTO_TEST_CASE(readiness_queue_fill_and_status_json) {
  Metrics metrics;
  PipelineMetrics& a = metrics.AddPipeline("a", "postgres", {"s1", "s2"}, 1000);
  PipelineMetrics& b = metrics.AddPipeline("b", "postgres", {"s1"}, 1000);
  std::string why;
  BOOST_TEST(!metrics.Ready(why));
  BOOST_TEST(why == "source a is starting\nsource b is starting\n");
  a.SetState(PipelineState::kStreaming);
  b.SetState(PipelineState::kStreaming);
  BOOST_TEST(metrics.Ready(why));
  a.OnSinkError(1);
  BOOST_TEST(!metrics.Ready(why));
  BOOST_TEST(why == "sink s2 of source a is failing\n");
  a.OnSinkHealthy(1);
  b.SetState(PipelineState::kReconnecting, "postgres: cannot connect");
  b.OnRestart();
  BOOST_TEST(!metrics.Ready(why));
  BOOST_TEST(why == "source b is reconnecting\n");

  a.SetPendingBytes(0, 250);
  a.SetPendingBytes(1, 500);
  auto s = Samples(metrics);
  BOOST_TEST(s[R"(tributary_queue_fill_ratio{source="a"})"] == 0.5);
  BOOST_TEST(s[R"(tributary_sink_pending_bytes{sink="s1",source="a"})"] == 250);
  BOOST_TEST(s[R"(tributary_sink_delivery_errors_total{sink="s2",source="a"})"] == 1);
  BOOST_TEST(s[R"(tributary_pipeline_restarts_total{source="b"})"] == 1);
  BOOST_TEST(s[R"(tributary_source_up{source="a"})"] == 1);
  BOOST_TEST(s[R"(tributary_source_up{source="b"})"] == 0);

  const std::string json = StatusJson(metrics.Snapshot());
  BOOST_TEST(json.find(R"("state": "reconnecting")") != std::string::npos, json);
  BOOST_TEST(json.find(R"("last_error": "postgres: cannot connect")") != std::string::npos, json);
}

BOOST_AUTO_TEST_CASE(snapshot_rows_slot_lag_and_sink_counters) {
  Metrics metrics;
  PipelineMetrics& pipeline = metrics.AddPipeline("shop", "postgres", {"events", "files"}, 1000);
  auto orders = Table("orders", 1);
  Batch batch;
  AddEvent(batch, orders, Op::kRead, 0, 2);
  AddEvent(batch, orders, Op::kRead, 0, 2);
  AddEvent(batch, orders, Op::kCreate, 0, 2);
  AddEvent(batch, orders, Op::kRead, 0, 2);
  pipeline.CountBatch(batch);
  auto s = Samples(metrics);
  BOOST_TEST(s[R"(tributary_snapshot_rows_total{source="shop",table="public.orders"})"] == 3);
  BOOST_TEST(s.count(R"(tributary_source_slot_lag_bytes{source="shop"})") == 0u);

  pipeline.SetSourceGauges({.slot_lag_bytes = 123456, .snapshot_tables_remaining = 2});
  s = Samples(metrics);
  BOOST_TEST(s[R"(tributary_source_slot_lag_bytes{source="shop"})"] == 123456);
  BOOST_TEST(s[R"(tributary_snapshot_tables_remaining{source="shop"})"] == 2);
  BOOST_TEST(pipeline.Snapshot().slot_lag_bytes.value() == 123456u);
  BOOST_TEST(StatusJson(metrics.Snapshot()).find(R"("slot_lag_bytes": 123456)") !=
             std::string::npos);
  // A failed measurement drops the series rather than keep a stale value.
  pipeline.SetSourceGauges({.slot_lag_bytes = std::nullopt, .snapshot_tables_remaining = 0});
  s = Samples(metrics);
  BOOST_TEST(s.count(R"(tributary_source_slot_lag_bytes{source="shop"})") == 0u);
  BOOST_TEST(s[R"(tributary_snapshot_tables_remaining{source="shop"})"] == 0);
  BOOST_TEST(!pipeline.Snapshot().slot_lag_bytes.has_value());

  // Sinks report totals; the counters grow by the difference.
  pipeline.SetSinkCounters(0, {.dead_letters = 2, .retries = 5});
  pipeline.SetSinkCounters(0, {.dead_letters = 3, .retries = 5});
  pipeline.SetSinkCounters(1, {});
  s = Samples(metrics);
  BOOST_TEST(s[R"(tributary_sink_dead_letters_total{sink="events",source="shop"})"] == 3);
  BOOST_TEST(s[R"(tributary_sink_retries_total{sink="events",source="shop"})"] == 5);
  BOOST_TEST(s[R"(tributary_sink_dead_letters_total{sink="files",source="shop"})"] == 0);
}

// Counting is per run of same-table, same-op events: a 10000-event batch costs little.
BOOST_AUTO_TEST_CASE(count_batch_is_cheap) {
  Metrics metrics;
  PipelineMetrics& pipeline = metrics.AddPipeline("shop", "postgres", {"files"}, 1000);
  auto orders = Table("orders", 6);
  Batch batch;
  for (int i = 0; i < 10000; ++i) AddEvent(batch, orders, Op::kUpdate, NowUs(), 8);
  const int kRounds = 200;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) pipeline.CountBatch(batch);
  const double ns_per_event =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      (kRounds * 10000.0);
  BOOST_TEST_MESSAGE("CountBatch: " << ns_per_event << " ns per event (6 columns, two images)");
#ifndef TRIBUTARY_SANITIZED  // instrumented code is an order of magnitude slower
  BOOST_TEST(ns_per_event < 20.0);
#endif
  BOOST_TEST(pipeline.Snapshot().events == 2'000'000u);
}

BOOST_AUTO_TEST_CASE(watchdog_pings_only_when_every_pipeline_beats) {
  testing::TempDir dir;
  const auto socket_path = dir.path() / "notify.sock";
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  setenv("NOTIFY_SOCKET", socket_path.c_str(), 1);
  setenv("WATCHDOG_USEC", "200000", 1);
  Watchdog watchdog(2);
  unsetenv("WATCHDOG_USEC");
  BOOST_REQUIRE(watchdog.enabled());

  auto pings = [&](auto beat) {
    int count = 0;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
    while (std::chrono::steady_clock::now() < until) {
      beat();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      pollfd p{fd, POLLIN, 0};
      while (poll(&p, 1, 0) > 0) {
        char buf[64];
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0 && std::string(buf, static_cast<size_t>(n)) == "WATCHDOG=1") ++count;
      }
    }
    return count;
  };
  // Only pipeline 0 beats: pipeline 1 is stalled, so no ping at all.
  BOOST_TEST(pings([&] { watchdog.Beat(0); }) == 0);
  // Both beat: a ping every 100 ms, about six in 600 ms.
  const int both = pings([&] {
    watchdog.Beat(0);
    watchdog.Beat(1);
  });
  BOOST_TEST(both >= 4);
  BOOST_TEST(both <= 7);
  // A retired pipeline no longer holds pings back.
  watchdog.Retire(1);
  BOOST_TEST(pings([&] { watchdog.Beat(0); }) >= 4);
  unsetenv("NOTIFY_SOCKET");
  close(fd);
}

BOOST_AUTO_TEST_CASE(literal_secrets_are_told_from_references) {
  BOOST_TEST(HoldsLiteralSecret("dsn: \"host=db password=hunter2\"\n"));
  BOOST_TEST(HoldsLiteralSecret("dsn: \"host=db password = 'hunter2'\"\n"));
  BOOST_TEST(HoldsLiteralSecret("dsn: \"mysql://cdc:hunter2@db:3306\"\n"));
  BOOST_TEST(HoldsLiteralSecret("masking:\n  key: 0123456789abcdef\n"));
  BOOST_TEST(HoldsLiteralSecret("librdkafka: {sasl.password: hunter2}\n"));
  BOOST_TEST(!HoldsLiteralSecret("dsn: \"host=db password=${file:pg.pass}\"\n"));
  BOOST_TEST(!HoldsLiteralSecret("dsn: \"mysql://cdc:${PW}@db:3306\"\n"));
  BOOST_TEST(!HoldsLiteralSecret("masking:\n  key: ${file:/etc/tributary/mask.key}\n"));
  BOOST_TEST(!HoldsLiteralSecret("# password=example in a comment\ndsn: \"host=db\"\n"));
}

}  // namespace
}  // namespace tributary
