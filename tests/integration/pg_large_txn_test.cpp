#define BOOST_TEST_MODULE pg_large_txn_test
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "tests/support/agent_config.h"
#include "tests/support/agent_process.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {
namespace {

using std::chrono::seconds;

size_t CountLines(const std::filesystem::path& topic_dir) {
  size_t lines = 0;
  if (!std::filesystem::exists(topic_dir)) return 0;
  for (const auto& entry : std::filesystem::directory_iterator(topic_dir)) {
    if (entry.path().filename() == "_watermark.json") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string chunk(1 << 16, '\0');
    while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
      lines += std::count(chunk.begin(), chunk.begin() + in.gcount(), '\n');
    }
  }
  return lines;
}

// Inserts a million ~100-byte rows in one transaction while the agent runs with
// `extra_source_yaml`, waits until the slot has confirmed the commit (the agent saves its
// checkpoint, and tells the server, only once the files hold everything before it), and checks
// that every row arrived once and the agent's peak memory stayed flat.
void RunMillionRowTransaction(const std::string& extra_source_yaml, bool expect_streamed) {
  auto pg = PgServer::Start();
  TempDir dir;
  pg->Exec("CREATE TABLE big (id int PRIMARY KEY, payload text)");
  auto config =
      WritePgFileConfig(dir.path(), *pg, "postgres", "lg", "[public.big]", extra_source_yaml);
  AgentProcess agent({"run", "--config", config.string()}, dir.path() / "agent.log");
  BOOST_REQUIRE(WaitFor(
      [&] {
        return pg->QueryValue("SELECT count(*) FROM pg_replication_slots WHERE active") == "1";
      },
      seconds(30)));
  constexpr size_t kRows = 1000000;
  pg->Exec("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g");
  // The insert position: with synchronous_commit off, the write position may not have reached
  // the commit record yet.
  const std::string commit_lsn = pg->QueryValue("SELECT pg_current_wal_insert_lsn()");
  bool done = WaitFor(
      [&] {
        return pg->QueryValue("SELECT confirmed_flush_lsn >= '" + commit_lsn +
                              "' FROM pg_replication_slots WHERE slot_name = 'tributary_lg'") ==
               "t";
      },
      seconds(600));
  BOOST_REQUIRE_MESSAGE(done, agent.Log());
  agent.Signal(SIGTERM);
  BOOST_REQUIRE(agent.Wait(seconds(30)).value_or(-1) == 0);
  BOOST_TEST(CountLines(TopicDir(dir.path(), "lg.public.big")) == kRows);
  const std::string streamed = pg->QueryValue(
      "SELECT coalesce(max(stream_txns), 0) FROM pg_stat_replication_slots "
      "WHERE slot_name = 'tributary_lg'");
  BOOST_TEST((streamed != "0") == expect_streamed, "streamed transactions: " << streamed);
  long rss_mb = agent.max_rss_kb() / 1024;
  BOOST_TEST_MESSAGE("peak RSS MiB: " << rss_mb);
#ifndef TRIBUTARY_SANITIZED
  // The transaction is ~150 MB of JSON; holding it whole would show here.
  BOOST_TEST(rss_mb < 64, "peak RSS " << rss_mb << " MiB");
#endif
}

BOOST_AUTO_TEST_CASE(a_million_row_transaction_streams_with_flat_memory) {
  RunMillionRowTransaction("", /*expect_streamed=*/false);
}

// With pgoutput streaming the server sends the transaction while it runs (past
// logical_decoding_work_mem, 64 MB by default) and the agent spools it to disk until the commit.
BOOST_AUTO_TEST_CASE(a_streamed_million_row_transaction_keeps_memory_flat) {
  RunMillionRowTransaction("    streaming: true\n", /*expect_streamed=*/true);
}

}  // namespace
}  // namespace tributary::testing
