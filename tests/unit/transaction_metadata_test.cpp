#define BOOST_TEST_MODULE transaction_metadata_test
#include "agent/transforms/transaction_metadata.h"

#include <fmt/format.h>

#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <vector>

#include "agent/core/envelope_writer.h"

namespace tributary {
namespace {

std::shared_ptr<const TableSchema> Table(const std::string& name,
                                         const std::string& connector = "postgresql") {
  auto schema = std::make_shared<TableSchema>();
  schema->connector = connector;
  schema->source = "shop";
  schema->database = "app";
  if (connector == "postgresql") schema->schema = "public";
  schema->table = name;
  schema->columns.push_back(ColumnSchema{.name = "id",
                                         .type_name = "int8",
                                         .key = true,
                                         .nullable = false,
                                         .canonical_type = "int64"});
  return schema;
}

// Appends a PostgreSQL change as the source writes it: transaction id and commit LSN, change
// LSN, sequence in the transaction; `suffix` "+" for the create half of a split update.
void Add(Batch& batch, const std::shared_ptr<const TableSchema>& table, uint32_t txid,
         uint64_t commit_lsn, uint64_t lsn, uint32_t sequence,
         SnapshotMark snapshot = SnapshotMark::kFalse, const char* suffix = "") {
  Event event;
  event.op = snapshot == SnapshotMark::kFalse ? Op::kCreate : Op::kRead;
  event.table = batch.Retain(table);
  event.meta.commit_ts_us = 1706708700123456 + static_cast<int64_t>(commit_lsn);
  event.meta.commit_lsn = commit_lsn;
  event.meta.lsn = lsn;
  event.meta.txid = txid;
  event.meta.sequence = sequence;
  event.meta.snapshot = snapshot;
  event.after = static_cast<uint32_t>(batch.values.size());
  batch.values.push_back(batch.AddValue(ValueKind::kRaw, std::to_string(lsn)));
  event.position =
      batch.AddValue(ValueKind::kString,
                     fmt::format("{:016X}/{:016X}/{:08X}{}", commit_lsn, lsn, sequence, suffix));
  batch.events.push_back(event);
}

// "B c c E": op codes of the batch's events.
std::string Shape(const Batch& batch) {
  std::string shape;
  for (const Event& event : batch.events) {
    if (!shape.empty()) shape += ' ';
    shape += static_cast<char>(event.op);
  }
  return shape;
}

// Every event as the file sink writes it (fixed processing time), one line each.
std::vector<std::string> Lines(const Batch& batch) {
  EnvelopeWriter writer;
  std::vector<std::string> lines;
  for (const Event& event : batch.events) {
    std::string line = std::string(batch.Text(event.position)) + " ";
    if (event.op == Op::kTransactionBegin || event.op == Op::kTransactionEnd) {
      writer.WriteTransactionKey(batch, event, line);
      line += ' ';
      writer.WriteTransaction(batch, event, line);
    } else {
      writer.Write(batch, event, 1, line);
    }
    lines.push_back(line);
  }
  return lines;
}

std::string Block(const Batch& batch, const Event& event) {
  if (event.transaction.id.kind == ValueKind::kNull) return "null";
  return fmt::format("{}/{}/{}", batch.Text(event.transaction.id), event.transaction.total_order,
                     event.transaction.data_collection_order);
}

BOOST_AUTO_TEST_CASE(transactions_get_begin_end_and_blocks_counted_per_table) {
  auto a = Table("a");
  auto b = Table("b");
  TransactionMetadata transform;
  Batch batch;
  Add(batch, a, 771, 0x500, 0x100, 0);
  Add(batch, b, 771, 0x500, 0x200, 1);
  Add(batch, a, 771, 0x500, 0x300, 2);
  Add(batch, b, 772, 0x900, 0x600, 0);
  batch.commit_position = "x";
  BOOST_REQUIRE(transform.Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "B c c c E B c E");
  BOOST_TEST(Block(batch, batch.events[1]) == "771:1280/1/1");
  BOOST_TEST(Block(batch, batch.events[2]) == "771:1280/2/1");
  BOOST_TEST(Block(batch, batch.events[3]) == "771:1280/3/2");
  BOOST_TEST(Block(batch, batch.events[6]) == "772:2304/1/1");

  const std::vector<std::string> lines = Lines(batch);
  BOOST_TEST(lines[0] ==
             "0000000000000500/0000000000000100/00000000( {\"id\":\"771:1280\"} "
             "{\"status\":\"BEGIN\",\"id\":\"771:1280\",\"ts_ms\":1706708700124,"
             "\"event_count\":null,\"data_collections\":null,"
             "\"position\":\"0000000000000500/0000000000000100/00000000(\"}");
  BOOST_TEST(lines[4] ==
             "0000000000000500/0000000000000300/00000002) {\"id\":\"771:1280\"} "
             "{\"status\":\"END\",\"id\":\"771:1280\",\"ts_ms\":1706708700124,\"event_count\":3,"
             "\"data_collections\":[{\"data_collection\":\"public.a\",\"event_count\":2},"
             "{\"data_collection\":\"public.b\",\"event_count\":1}],"
             "\"position\":\"0000000000000500/0000000000000300/00000002)\"}");
  BOOST_TEST(lines[2].find(",\"transaction\":{\"id\":\"771:1280\",\"total_order\":2,"
                           "\"data_collection_order\":1}}") != std::string::npos);
  // BEGIN and END positions sort in stream order, so the file sink's check keeps them all.
  for (size_t i : {0, 4, 5}) {
    const size_t next = i == 0 ? 4 : i == 4 ? 5 : 7;
    BOOST_TEST(batch.Text(batch.events[i].position) < batch.Text(batch.events[next].position));
  }
}

BOOST_AUTO_TEST_CASE(a_transaction_spanning_batches_keeps_its_counters) {
  auto a = Table("a");
  auto b = Table("b");
  TransactionMetadata transform;
  Batch first;
  Add(first, a, 5, 0x900, 0x100, 0);
  Add(first, b, 5, 0x900, 0x200, 1);
  first.ends_inside_transaction = true;
  BOOST_REQUIRE(transform.Apply(first).ok());
  BOOST_TEST(Shape(first) == "B c c");

  Batch second;
  Add(second, b, 5, 0x900, 0x300, 2);
  second.ends_inside_transaction = true;
  BOOST_REQUIRE(transform.Apply(second).ok());
  BOOST_TEST(Shape(second) == "c");
  BOOST_TEST(Block(second, second.events[0]) == "5:2304/3/2");

  // The commit comes alone: END goes into its batch, the one that checkpoints it.
  Batch third;
  third.commit_position = "commit";
  BOOST_REQUIRE(transform.Apply(third).ok());
  BOOST_REQUIRE(Shape(third) == "E");
  BOOST_TEST(third.events[0].table->table == "a");
  BOOST_TEST(Lines(third)[0].find("\"event_count\":3,\"data_collections\":[{\"data_collection\":"
                                  "\"public.a\",\"event_count\":1},{\"data_collection\":"
                                  "\"public.b\",\"event_count\":2}]") != std::string::npos);
  BOOST_TEST(third.Text(third.events[0].position) == "0000000000000900/0000000000000300/00000002)");
}

BOOST_AUTO_TEST_CASE(replays_give_identical_events) {
  auto a = Table("a");
  auto b = Table("b");
  Batch first;
  Add(first, a, 7, 0x900, 0x100, 0);
  Add(first, b, 7, 0x900, 0x200, 1);
  first.ends_inside_transaction = true;
  Batch second;
  Add(second, a, 7, 0x900, 0x300, 2);
  Add(second, a, 8, 0xA00, 0x950, 0);
  second.commit_position = "commit";

  // A fresh agent after a crash.
  TransactionMetadata once;
  Batch copy1 = first;
  Batch copy2 = second;
  BOOST_REQUIRE(once.Apply(copy1).ok());
  BOOST_REQUIRE(once.Apply(copy2).ok());
  TransactionMetadata again;
  Batch replay1 = first;
  Batch replay2 = second;
  BOOST_REQUIRE(again.Apply(replay1).ok());
  BOOST_REQUIRE(again.Apply(replay2).ok());
  BOOST_TEST(Lines(copy1) == Lines(replay1), boost::test_tools::per_element());
  BOOST_TEST(Lines(copy2) == Lines(replay2), boost::test_tools::per_element());
  BOOST_TEST(Shape(copy2) == "c E B c E");

  // The same transform after the source reconnected mid-transaction: it goes back to the
  // checkpoint and the open transaction is counted afresh, without an END for the lost part.
  TransactionMetadata reconnected;
  Batch lost = first;
  BOOST_REQUIRE(reconnected.Apply(lost).ok());
  Batch replayed1 = first;
  Batch replayed2 = second;
  BOOST_REQUIRE(reconnected.Apply(replayed1).ok());
  BOOST_REQUIRE(reconnected.Apply(replayed2).ok());
  BOOST_TEST(Lines(replayed1) == Lines(copy1), boost::test_tools::per_element());
  BOOST_TEST(Lines(replayed2) == Lines(copy2), boost::test_tools::per_element());

  // Going back to a transaction already ended repeats it whole, END included.
  Batch back = second;
  BOOST_REQUIRE(reconnected.Apply(back).ok());
  BOOST_TEST(Shape(back) == "B c E B c E");
}

BOOST_AUTO_TEST_CASE(snapshot_rows_and_schema_changes_are_not_counted) {
  auto a = Table("a");
  TransactionMetadata transform;
  Batch batch;
  Add(batch, a, 0, 0, 0, 0, SnapshotMark::kFirst);
  Event change;
  change.op = Op::kSchemaChange;
  change.table = batch.Retain(a);
  change.meta.txid = 9;
  change.meta.commit_lsn = 0x900;
  change.position =
      batch.AddValue(ValueKind::kString, "0000000000000900/0000000000000100/00000000");
  batch.events.push_back(change);
  Add(batch, a, 9, 0x900, 0x100, 0);
  // A transaction with only snapshot rows (an incremental snapshot chunk): no BEGIN, no END.
  Add(batch, a, 10, 0xA00, 0x980, 0, SnapshotMark::kIncremental);
  BOOST_REQUIRE(transform.Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "r s B c E r");
  BOOST_TEST(Block(batch, batch.events[0]) == "null");
  BOOST_TEST(Block(batch, batch.events[3]) == "9:2304/1/1");
  BOOST_TEST(Block(batch, batch.events[5]) == "null");
  BOOST_TEST(Lines(batch)[0].ends_with(",\"transaction\":null}"));
}

BOOST_AUTO_TEST_CASE(split_updates_sort_between_begin_and_end) {
  auto a = Table("a");
  TransactionMetadata transform;
  Batch batch;
  Add(batch, a, 3, 0x900, 0x100, 0);
  Add(batch, a, 3, 0x900, 0x100, 0, SnapshotMark::kFalse, "+");
  BOOST_REQUIRE(transform.Apply(batch).ok());
  BOOST_REQUIRE(Shape(batch) == "B c c E");
  BOOST_TEST(batch.Text(batch.events[0].position) < batch.Text(batch.events[3].position));
  BOOST_TEST(batch.Text(batch.events[3].position) ==
             "0000000000000900/0000000000000100/00000000+)");
  BOOST_TEST(Block(batch, batch.events[2]) == "3:2304/2/2");
}

BOOST_AUTO_TEST_CASE(binlog_transactions_are_named_by_gtid) {
  auto t = Table("orders", "mariadb");
  TransactionMetadata transform;
  Batch batch;
  for (const char* gtid : {"0-1-5", "0-1-5", "0-1-6"}) {
    Event event;
    event.op = Op::kCreate;
    event.table = batch.Retain(t);
    event.meta.gtid = batch.AddValue(ValueKind::kString, gtid);
    event.after = static_cast<uint32_t>(batch.values.size());
    batch.values.push_back(batch.AddValue(ValueKind::kRaw, "1"));
    event.position =
        batch.AddValue(ValueKind::kString, fmt::format("{}/{:08}", gtid, batch.events.size()));
    batch.events.push_back(event);
  }
  batch.commit_position = "commit";
  BOOST_REQUIRE(transform.Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "B c c E B c E");
  BOOST_TEST(Block(batch, batch.events[2]) == "0-1-5/2/2");
  BOOST_TEST(Lines(batch)[3].find("\"data_collections\":[{\"data_collection\":\"app.orders\","
                                  "\"event_count\":2}]") != std::string::npos);
}

}  // namespace
}  // namespace tributary
