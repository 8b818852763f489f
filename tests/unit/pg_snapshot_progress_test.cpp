#define BOOST_TEST_MODULE pg_snapshot_progress_test
#include <fmt/format.h>

#include <boost/test/unit_test.hpp>

#include "connectors/postgres/snapshot.h"

namespace tributary::postgres {
namespace {

SnapshotProgress TwoTables() {
  SnapshotProgress progress;
  SnapshotTable first;
  first.schema = "public";
  first.table = "orders";
  first.after_key = std::vector<std::string>{"42", "it's \"quoted\" \\ "};
  first.until_key = std::vector<std::string>{"99", "z"};
  first.rows = 8192;
  SnapshotTable second;
  second.schema = "sales";
  second.table = "odd name";
  second.incremental = true;
  progress.tables = {first, second};
  progress.initial_rows = 8192;
  return progress;
}

BOOST_AUTO_TEST_CASE(progress_round_trips_through_a_position) {
  const std::string encoded = EncodeSnapshotProgress(TwoTables());
  const std::string position = FormatPosition(0x16B374D848, encoded);
  BOOST_TEST(position.starts_with("16/B374D848 snapshot={"));

  std::optional<PgPosition> parsed = ParsePosition(position);
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(parsed->lsn == 0x16B374D848u);
  Result<SnapshotProgress> progress = DecodeSnapshotProgress(parsed->snapshot);
  BOOST_REQUIRE(progress.ok());
  BOOST_REQUIRE(progress->tables.size() == 2u);
  const SnapshotTable& first = progress->tables[0];
  BOOST_TEST(first.table == "orders");
  BOOST_TEST(!first.incremental);
  BOOST_TEST(first.rows == 8192u);
  BOOST_REQUIRE(first.after_key.has_value());
  BOOST_TEST((*first.after_key)[1] == "it's \"quoted\" \\ ");
  BOOST_REQUIRE(first.until_key.has_value());
  BOOST_TEST((*first.until_key)[0] == "99");
  const SnapshotTable& second = progress->tables[1];
  BOOST_TEST(second.table == "odd name");
  BOOST_TEST(second.incremental);
  BOOST_TEST(!second.after_key.has_value());
  BOOST_TEST(progress->initial_rows == 8192u);
}

BOOST_AUTO_TEST_CASE(a_position_without_a_snapshot_is_a_plain_lsn) {
  BOOST_TEST(EncodeSnapshotProgress(SnapshotProgress{}).empty());
  BOOST_TEST(FormatPosition(0x1529468, "") == "0/1529468");
  std::optional<PgPosition> parsed = ParsePosition("0/1529468");
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(parsed->lsn == 0x1529468u);
  BOOST_TEST(parsed->snapshot.empty());
}

BOOST_AUTO_TEST_CASE(damaged_positions_and_progress_are_rejected) {
  for (const char* text :
       {"", "nonsense", "0/1529468 ", "0/1529468 other=1", "0/1529468 snapshot="}) {
    BOOST_TEST(!ParsePosition(text).has_value(), text);
  }
  for (const char* text : {"", "{", "[]", "{\"tables\":{}}", "{\"tables\":[{\"schema\":\"a\"}]}",
                           "{\"tables\":[{\"schema\":\"a\",\"table\":\"b\",\"after_key\":[1]}]}",
                           "{\"tables\":[{\"schema\":\"a\",\"table\":\"b\",\"until_key\":[]}]}"}) {
    Result<SnapshotProgress> progress = DecodeSnapshotProgress(text);
    BOOST_TEST(!progress.ok(), text);
    if (!progress.ok()) BOOST_TEST(progress.status().code() == StatusCode::kCorruptData);
  }
}

BOOST_AUTO_TEST_CASE(requests_name_source_and_table) {
  BOOST_TEST(SnapshotRequestMessage("shop", "public", "orders") ==
             R"({"snapshot":{"schema":"public","table":"orders"},"source":"shop"})");
}

// pg_current_snapshot()'s text, and which committed transactions it sees: a chunk read with a
// snapshot that misses one the stream delivered before the chunk's window is read again.
BOOST_AUTO_TEST_CASE(snapshots_parse_and_tell_which_commits_they_see) {
  std::optional<PgSnapshot> snapshot = ParsePgSnapshot("740:745:741,743");
  BOOST_TEST_REQUIRE(snapshot.has_value());
  BOOST_TEST(snapshot->xmin == 740u);
  BOOST_TEST(snapshot->xmax == 745u);
  BOOST_TEST(snapshot->xip == (std::vector<uint64_t>{741, 743}));
  BOOST_TEST(snapshot->Sees(739));
  BOOST_TEST(snapshot->Sees(742));
  BOOST_TEST(snapshot->Sees(744));
  BOOST_TEST(!snapshot->Sees(741));  // in progress when it was taken
  BOOST_TEST(!snapshot->Sees(743));
  BOOST_TEST(!snapshot->Sees(745));  // at or past xmax
  BOOST_TEST(!snapshot->Sees(800));

  std::optional<PgSnapshot> empty = ParsePgSnapshot("750:750:");
  BOOST_TEST_REQUIRE(empty.has_value());
  BOOST_TEST(empty->xip.empty());
  BOOST_TEST(empty->Sees(749));
  BOOST_TEST(!empty->Sees(750));

  // 64-bit ids of a later epoch against pgoutput's 32-bit ones, across the wrap of 2^32.
  const uint64_t epoch = uint64_t{3} << 32;
  std::optional<PgSnapshot> wrapped =
      ParsePgSnapshot(fmt::format("{}:{}:{}", epoch - 5, epoch + 2, epoch - 3));
  BOOST_TEST_REQUIRE(wrapped.has_value());
  BOOST_TEST(wrapped->Sees(0xFFFFFFFFu));
  BOOST_TEST(wrapped->Sees(1));
  BOOST_TEST(!wrapped->Sees(0xFFFFFFFDu));
  BOOST_TEST(!wrapped->Sees(2));

  for (const char* bad : {"", "740", "740:745", "x:745:", "740:745:741,", "740:745:7a"}) {
    BOOST_TEST(!ParsePgSnapshot(bad).has_value(), bad);
  }
}

}  // namespace
}  // namespace tributary::postgres
