#define BOOST_TEST_MODULE mysql_snapshot_position_test
#include <boost/test/unit_test.hpp>
#include <string>

#include "connectors/mysql/binlog_position.h"
#include "connectors/mysql/snapshot.h"

namespace tributary::mysql {
namespace {

BOOST_AUTO_TEST_CASE(progress_round_trips) {
  SnapshotProgress progress;
  progress.rows = 8192;
  progress.table = "shop.odd:name|x";
  progress.after = {"42", "", std::string("a\0,:|b", 6)};
  const std::string text = FormatSnapshotPosition("binlog.000002:4468:0-1-10", progress);
  std::string checkpoint;
  std::optional<SnapshotProgress> parsed;
  BOOST_REQUIRE(SplitSnapshotPosition(text, checkpoint, parsed));
  BOOST_TEST(checkpoint == "binlog.000002:4468:0-1-10");
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(parsed->rows == 8192u);
  BOOST_TEST(parsed->table == progress.table);
  BOOST_TEST(!parsed->table_done);
  BOOST_TEST(parsed->after == progress.after);

  progress.table_done = true;
  progress.after.clear();
  BOOST_REQUIRE(
      SplitSnapshotPosition(FormatSnapshotPosition("f.000001:4:", progress), checkpoint, parsed));
  BOOST_TEST(checkpoint == "f.000001:4:");
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(parsed->table_done);
  BOOST_TEST(parsed->after.empty());
}

BOOST_AUTO_TEST_CASE(plain_checkpoint_has_no_progress) {
  std::string checkpoint;
  std::optional<SnapshotProgress> parsed;
  BOOST_REQUIRE(SplitSnapshotPosition("binlog.000002:4468:0-1-10", checkpoint, parsed));
  BOOST_TEST(checkpoint == "binlog.000002:4468:0-1-10");
  BOOST_TEST(!parsed.has_value());
}

BOOST_AUTO_TEST_CASE(malformed_progress_is_rejected) {
  std::string checkpoint;
  std::optional<SnapshotProgress> parsed;
  for (const char* bad :
       {"b.1:4:|snapshot=", "b.1:4:|snapshot=x:00:*", "b.1:4:|snapshot=1:0g:*",
        "b.1:4:|snapshot=1:61:", "b.1:4:|snapshot=1:61:42", "b.1:4:|snapshot=1:61:x4"}) {
    BOOST_TEST(!SplitSnapshotPosition(bad, checkpoint, parsed), bad);
  }
}

BOOST_AUTO_TEST_CASE(column_expressions_and_types) {
  CatalogColumn bit1;
  bit1.data_type = "bit";
  bit1.numeric_precision = 1;
  BOOST_TEST(SnapshotExpressionOf(bit1, "`b`").sql == "ELT(`b` + 1, 'false', 'true')");
  BOOST_TEST((SnapshotExpressionOf(bit1, "`b`").kind == ValueKind::kRaw));
  CatalogColumn blob;
  blob.data_type = "blob";
  BOOST_TEST(SnapshotExpressionOf(blob, "`bl`").sql == "REPLACE(TO_BASE64(`bl`), '\\n', '')");
  CatalogColumn text;
  text.data_type = "text";
  text.charset = "utf8mb4";
  BOOST_TEST(SnapshotExpressionOf(text, "`t`").sql == "`t`");
  BOOST_TEST(TypeName(ColumnInfoOf(text)) == "text");
  CatalogColumn vc;
  vc.data_type = "varchar";
  vc.charset = "utf8mb4";
  vc.octet_length = 40;
  BOOST_TEST(TypeName(ColumnInfoOf(vc)) == "varchar(40)");
  CatalogColumn u;
  u.data_type = "int";
  u.column_type = "int(10) unsigned";
  BOOST_TEST(TypeName(ColumnInfoOf(u)) == "int unsigned");
  BOOST_TEST(QuoteIdentifier("a`b") == "`a``b`");
}

// source.position: fixed widths so that positions sort as the changes do; a number wider than
// its field keeps every digit.
BOOST_AUTO_TEST_CASE(positions_are_zero_padded_and_keep_wider_numbers_whole) {
  const auto position = [](uint64_t file, uint64_t pos, uint32_t row) {
    std::string out = "x";
    AppendPosition(file, pos, row, out);
    return out.substr(1);
  };
  BOOST_TEST(position(0, 0, 0) == "0000000000/000000000000/00000000");
  BOOST_TEST(position(1, 123456789, 42) == "0000000001/000123456789/00000042");
  BOOST_TEST(position(9999999999, 999999999999, 99999999) == "9999999999/999999999999/99999999");
  BOOST_TEST(position(12345678901, 7, 5) == "12345678901/000000000007/00000005");
  BOOST_TEST(position(3, 1234567890123, 4294967295) == "0000000003/1234567890123/4294967295");
  BOOST_TEST(position(1, 4, 9) < position(1, 4, 10));
  BOOST_TEST(position(1, 99, 0) < position(1, 100, 0));
  BOOST_TEST(position(1, 999999, 0) < position(2, 4, 0));
}

}  // namespace
}  // namespace tributary::mysql
