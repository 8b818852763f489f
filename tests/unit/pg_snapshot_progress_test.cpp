#define BOOST_TEST_MODULE pg_snapshot_progress_test
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

}  // namespace
}  // namespace tributary::postgres
