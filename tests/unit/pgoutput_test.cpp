#define BOOST_TEST_MODULE pgoutput_test
#include <array>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "agent/core/status.h"
#include "connectors/postgres/pgoutput_decoder.h"
#include "connectors/postgres/replication_messages.h"
#include "tests/support/pgoutput_bytes.h"

namespace tributary::postgres {

// Boost.Test prints the operands of failed checks.
template <typename E>
requires std::is_enum_v<E> std::ostream& operator<<(std::ostream& os, E value) {
  return os << static_cast<int>(value);
}

namespace {

using testing::Bytes;

constexpr uint64_t kLsn = 0x16B374D848ULL;
constexpr int64_t kTs = 774000000123456;  // 2024-07-11 in PostgreSQL µs

std::string BeginBytes() { return Bytes().Byte('B').Int64(kLsn).Int64(kTs).Int32(741).str(); }

std::string CommitBytes() {
  return Bytes().Byte('C').Byte(0).Int64(kLsn).Int64(kLsn + 48).Int64(kTs).str();
}

std::string RelationBytes() {
  return Bytes()
      .Byte('R')
      .Int32(16385)
      .String("public")
      .String("orders")
      .Byte('d')
      .Int16(3)
      .Byte(1)
      .String("id")
      .Int32(23)
      .Int32(-1)
      .Byte(0)
      .String("note")
      .Int32(25)
      .Int32(-1)
      .Byte(0)
      .String("price")
      .Int32(1700)
      .Int32(655366)
      .str();
}

std::string InsertBytes() {
  return Bytes()
      .Byte('I')
      .Int32(16385)
      .Byte('N')
      .Int16(4)
      .Text("42")
      .Byte('n')
      .Byte('u')
      .Binary(std::string_view("\x00\x01", 2))
      .str();
}

std::string UpdateWithKeyBytes() {
  return Bytes()
      .Byte('U')
      .Int32(16385)
      .Byte('K')
      .Int16(2)
      .Text("41")
      .Byte('n')
      .Byte('N')
      .Int16(2)
      .Text("42")
      .Byte('u')
      .str();
}

std::string UpdateWithOldBytes() {
  return Bytes()
      .Byte('U')
      .Int32(16385)
      .Byte('O')
      .Int16(2)
      .Text("42")
      .Text("old")
      .Byte('N')
      .Int16(2)
      .Text("42")
      .Text("new")
      .str();
}

std::string UpdateBytes() {
  return Bytes().Byte('U').Int32(16385).Byte('N').Int16(2).Text("42").Text("").str();
}

std::string DeleteBytes(char old_kind) {
  return Bytes().Byte('D').Int32(16385).Byte(old_kind).Int16(2).Text("42").Byte('n').str();
}

std::string TruncateBytes() {
  return Bytes().Byte('T').Int32(2).Byte(3).Int32(16385).Int32(16390).str();
}

std::string MessageBytes() {
  return Bytes()
      .Byte('M')
      .Byte(1)
      .Int64(kLsn)
      .String("tributary")
      .Int32(3)
      .Raw(std::string_view("a\0b", 3))
      .str();
}

// Decodes bytes that stay alive for the whole run, since the message's strings view into them.
PgoutputMessage Decode(std::string bytes, bool in_stream = false) {
  static std::deque<std::string> kept;
  kept.push_back(std::move(bytes));
  PgoutputMessage message;
  Status st = DecodePgoutput(kept.back(), message, in_stream);
  BOOST_TEST_REQUIRE(st.ok(), st.ToString());
  return message;
}

Status DecodeStatus(std::string_view bytes, bool in_stream = false) {
  PgoutputMessage message;
  return DecodePgoutput(bytes, message, in_stream);
}

BOOST_AUTO_TEST_CASE(begin_and_commit) {
  PgoutputMessage begin = Decode(BeginBytes());
  BOOST_TEST(begin.type == PgoutputType::kBegin);
  BOOST_TEST(begin.begin.final_lsn == kLsn);
  BOOST_TEST(begin.begin.commit_ts_pg_us == kTs);
  BOOST_TEST(begin.begin.xid == 741u);

  PgoutputMessage commit = Decode(CommitBytes());
  BOOST_TEST(commit.type == PgoutputType::kCommit);
  BOOST_TEST(commit.commit.flags == 0);
  BOOST_TEST(commit.commit.commit_lsn == kLsn);
  BOOST_TEST(commit.commit.end_lsn == kLsn + 48);
  BOOST_TEST(commit.commit.commit_ts_pg_us == kTs);
}

BOOST_AUTO_TEST_CASE(origin) {
  PgoutputMessage m = Decode(Bytes().Byte('O').Int64(kLsn).String("pg_17001").str());
  BOOST_TEST(m.type == PgoutputType::kOrigin);
  BOOST_TEST(m.origin.commit_lsn == kLsn);
  BOOST_TEST(m.origin.name == "pg_17001");
}

BOOST_AUTO_TEST_CASE(relation) {
  std::string bytes = RelationBytes();
  PgoutputMessage m;
  BOOST_TEST_REQUIRE(DecodePgoutput(bytes, m).ok());
  BOOST_TEST(m.type == PgoutputType::kRelation);
  BOOST_TEST(m.relation.relation_id == 16385u);
  BOOST_TEST(m.relation.schema == "public");
  BOOST_TEST(m.relation.name == "orders");
  BOOST_TEST(m.relation.replica_identity == ReplicaIdentity::kDefault);
  BOOST_TEST_REQUIRE(m.relation.columns.size() == 3u);
  BOOST_TEST(m.relation.columns[0].key());
  BOOST_TEST(m.relation.columns[0].name == "id");
  BOOST_TEST(m.relation.columns[0].type_oid == 23u);
  BOOST_TEST(m.relation.columns[0].type_modifier == -1);
  BOOST_TEST(!m.relation.columns[1].key());
  BOOST_TEST(m.relation.columns[1].name == "note");
  BOOST_TEST(m.relation.columns[2].type_oid == 1700u);
  BOOST_TEST(m.relation.columns[2].type_modifier == 655366);
  // Strings are views into the input, not copies.
  BOOST_TEST((m.relation.name.data() == bytes.data() + 12));
}

BOOST_AUTO_TEST_CASE(relation_in_pg_catalog_with_full_identity_and_no_columns) {
  PgoutputMessage m =
      Decode(Bytes().Byte('R').Int32(7).String("").String("t").Byte('f').Int16(0).str());
  BOOST_TEST(m.relation.schema.empty());
  BOOST_TEST(m.relation.replica_identity == ReplicaIdentity::kFull);
  BOOST_TEST(m.relation.columns.empty());
}

BOOST_AUTO_TEST_CASE(type) {
  PgoutputMessage m = Decode(Bytes().Byte('Y').Int32(16400).String("public").String("mood").str());
  BOOST_TEST(m.type == PgoutputType::kType);
  BOOST_TEST(m.data_type.type_oid == 16400u);
  BOOST_TEST(m.data_type.schema == "public");
  BOOST_TEST(m.data_type.name == "mood");
}

BOOST_AUTO_TEST_CASE(insert_with_text_null_unchanged_toast_and_binary) {
  PgoutputMessage m = Decode(InsertBytes());
  BOOST_TEST(m.type == PgoutputType::kInsert);
  BOOST_TEST(m.change.relation_id == 16385u);
  BOOST_TEST(m.change.old_kind == OldTupleKind::kNone);
  BOOST_TEST(m.change.old_tuple.empty());
  const auto& cols = m.change.new_tuple;
  BOOST_TEST_REQUIRE(cols.size() == 4u);
  BOOST_TEST(cols[0].kind == TupleColumnKind::kText);
  BOOST_TEST(cols[0].data == "42");
  BOOST_TEST(cols[1].kind == TupleColumnKind::kNull);
  BOOST_TEST(cols[2].kind == TupleColumnKind::kUnchangedToast);
  BOOST_TEST(cols[3].kind == TupleColumnKind::kBinary);
  BOOST_TEST(cols[3].data == std::string_view("\x00\x01", 2));
}

BOOST_AUTO_TEST_CASE(update_without_old_tuple) {
  PgoutputMessage m = Decode(UpdateBytes());
  BOOST_TEST(m.type == PgoutputType::kUpdate);
  BOOST_TEST(m.change.old_kind == OldTupleKind::kNone);
  BOOST_TEST(m.change.old_tuple.empty());
  BOOST_TEST_REQUIRE(m.change.new_tuple.size() == 2u);
  BOOST_TEST(m.change.new_tuple[1].kind == TupleColumnKind::kText);
  BOOST_TEST(m.change.new_tuple[1].data.empty());
}

BOOST_AUTO_TEST_CASE(update_with_key_old_tuple) {
  PgoutputMessage m = Decode(UpdateWithKeyBytes());
  BOOST_TEST(m.change.old_kind == OldTupleKind::kKey);
  BOOST_TEST_REQUIRE(m.change.old_tuple.size() == 2u);
  BOOST_TEST(m.change.old_tuple[0].data == "41");
  BOOST_TEST(m.change.old_tuple[1].kind == TupleColumnKind::kNull);
  BOOST_TEST_REQUIRE(m.change.new_tuple.size() == 2u);
  BOOST_TEST(m.change.new_tuple[0].data == "42");
  BOOST_TEST(m.change.new_tuple[1].kind == TupleColumnKind::kUnchangedToast);
}

BOOST_AUTO_TEST_CASE(update_with_full_old_tuple) {
  PgoutputMessage m = Decode(UpdateWithOldBytes());
  BOOST_TEST(m.change.old_kind == OldTupleKind::kFull);
  BOOST_TEST_REQUIRE(m.change.old_tuple.size() == 2u);
  BOOST_TEST(m.change.old_tuple[1].data == "old");
  BOOST_TEST_REQUIRE(m.change.new_tuple.size() == 2u);
  BOOST_TEST(m.change.new_tuple[1].data == "new");
}

BOOST_AUTO_TEST_CASE(delete_with_key_and_full_old_tuple) {
  for (char kind : {'K', 'O'}) {
    PgoutputMessage m = Decode(DeleteBytes(kind));
    BOOST_TEST(m.type == PgoutputType::kDelete);
    BOOST_TEST(m.change.relation_id == 16385u);
    BOOST_TEST(static_cast<char>(m.change.old_kind) == kind);
    BOOST_TEST_REQUIRE(m.change.old_tuple.size() == 2u);
    BOOST_TEST(m.change.old_tuple[0].data == "42");
    BOOST_TEST(m.change.old_tuple[1].kind == TupleColumnKind::kNull);
    BOOST_TEST(m.change.new_tuple.empty());
  }
}

BOOST_AUTO_TEST_CASE(truncate) {
  PgoutputMessage m = Decode(TruncateBytes());
  BOOST_TEST(m.type == PgoutputType::kTruncate);
  BOOST_TEST(m.truncate.cascade());
  BOOST_TEST(m.truncate.restart_identity());
  BOOST_TEST(m.truncate.relation_ids == (std::vector<uint32_t>{16385, 16390}));

  PgoutputMessage plain = Decode(Bytes().Byte('T').Int32(1).Byte(0).Int32(5).str());
  BOOST_TEST(!plain.truncate.cascade());
  BOOST_TEST(!plain.truncate.restart_identity());
  BOOST_TEST(plain.truncate.relation_ids == (std::vector<uint32_t>{5}));
}

BOOST_AUTO_TEST_CASE(logical_message) {
  PgoutputMessage m = Decode(MessageBytes());
  BOOST_TEST(m.type == PgoutputType::kMessage);
  BOOST_TEST(m.message.transactional());
  BOOST_TEST(m.message.lsn == kLsn);
  BOOST_TEST(m.message.prefix == "tributary");
  BOOST_TEST(m.message.content == std::string_view("a\0b", 3));

  PgoutputMessage empty = Decode(Bytes().Byte('M').Byte(0).Int64(1).String("hb").Int32(0).str());
  BOOST_TEST(!empty.message.transactional());
  BOOST_TEST(empty.message.content.empty());
}

BOOST_AUTO_TEST_CASE(stream_control_messages) {
  PgoutputMessage start = Decode(Bytes().Byte('S').Int32(900).Byte(1).str());
  BOOST_TEST(start.type == PgoutputType::kStreamStart);
  BOOST_TEST(start.stream_start.xid == 900u);
  BOOST_TEST(start.stream_start.first_segment);

  PgoutputMessage stop = Decode("E", true);
  BOOST_TEST(stop.type == PgoutputType::kStreamStop);

  PgoutputMessage commit =
      Decode(Bytes().Byte('c').Int32(900).Byte(0).Int64(kLsn).Int64(kLsn + 8).Int64(kTs).str());
  BOOST_TEST(commit.type == PgoutputType::kStreamCommit);
  BOOST_TEST(commit.stream_commit.xid == 900u);
  BOOST_TEST(commit.stream_commit.commit_lsn == kLsn);
  BOOST_TEST(commit.stream_commit.end_lsn == kLsn + 8);
  BOOST_TEST(commit.stream_commit.commit_ts_pg_us == kTs);

  PgoutputMessage abort = Decode(Bytes().Byte('A').Int32(900).Int32(901).str());
  BOOST_TEST(abort.type == PgoutputType::kStreamAbort);
  BOOST_TEST(abort.stream_abort.xid == 900u);
  BOOST_TEST(abort.stream_abort.subxid == 901u);
  BOOST_TEST(abort.stream_abort.abort_lsn == 0u);

  PgoutputMessage parallel_abort =
      Decode(Bytes().Byte('A').Int32(900).Int32(900).Int64(kLsn).Int64(kTs).str());
  BOOST_TEST(parallel_abort.stream_abort.abort_lsn == kLsn);
  BOOST_TEST(parallel_abort.stream_abort.abort_ts_pg_us == kTs);
}

BOOST_AUTO_TEST_CASE(stream_xid_prefixes_transactional_messages_in_a_stream) {
  std::string insert = InsertBytes();
  std::string streamed = Bytes().Byte('I').Int32(900).Raw(insert.substr(1)).str();
  PgoutputMessage m = Decode(streamed, true);
  BOOST_TEST(m.stream_xid == 900u);
  BOOST_TEST(m.change.relation_id == 16385u);
  BOOST_TEST(m.change.new_tuple.size() == 4u);

  std::string relation = RelationBytes();
  m = Decode(Bytes().Byte('R').Int32(901).Raw(relation.substr(1)).str(), true);
  BOOST_TEST(m.stream_xid == 901u);
  BOOST_TEST(m.relation.name == "orders");

  // Without the flag the same bytes misparse and fail rather than pass.
  BOOST_TEST(DecodeStatus(streamed).code() == StatusCode::kCorruptData);
  // Outside a stream the field is reset.
  m = Decode(insert);
  BOOST_TEST(m.stream_xid == 0u);
  // Stream control messages carry their xid themselves, never a prefix.
  m = Decode(Bytes().Byte('c').Int32(900).Byte(0).Int64(1).Int64(2).Int64(3).str(), true);
  BOOST_TEST(m.stream_commit.xid == 900u);
}

BOOST_AUTO_TEST_CASE(reused_message_keeps_capacity_and_resets_stale_tuples) {
  PgoutputMessage m;
  BOOST_TEST_REQUIRE(DecodePgoutput(UpdateWithOldBytes(), m).ok());
  BOOST_TEST(m.change.old_tuple.size() == 2u);
  const TupleColumn* old_data = m.change.old_tuple.data();
  std::string insert = InsertBytes();
  BOOST_TEST_REQUIRE(DecodePgoutput(insert, m).ok());
  const TupleColumn* new_data = m.change.new_tuple.data();
  BOOST_TEST(m.change.old_kind == OldTupleKind::kNone);
  BOOST_TEST(m.change.old_tuple.empty());
  BOOST_TEST(m.change.old_tuple.capacity() >= 2u);

  // A warm struct decodes the same shapes again without reallocating.
  BOOST_TEST_REQUIRE(DecodePgoutput(UpdateWithOldBytes(), m).ok());
  BOOST_TEST(m.change.old_tuple.data() == old_data);
  BOOST_TEST_REQUIRE(DecodePgoutput(insert, m).ok());
  BOOST_TEST(m.change.new_tuple.data() == new_data);
  BOOST_TEST(m.change.new_tuple[0].data == "42");

  // A Delete drops the new tuple left by the Insert.
  BOOST_TEST_REQUIRE(DecodePgoutput(DeleteBytes('K'), m).ok());
  BOOST_TEST(m.change.new_tuple.empty());
}

// Every message the decoder accepts; each of their proper prefixes must be rejected.
std::vector<std::pair<std::string, bool>> ValidMessages() {
  std::string insert = InsertBytes();
  return {
      {BeginBytes(), false},
      {CommitBytes(), false},
      {Bytes().Byte('O').Int64(kLsn).String("origin").str(), false},
      {RelationBytes(), false},
      {Bytes().Byte('Y').Int32(16400).String("public").String("mood").str(), false},
      {insert, false},
      {UpdateBytes(), false},
      {UpdateWithKeyBytes(), false},
      {UpdateWithOldBytes(), false},
      {DeleteBytes('K'), false},
      {DeleteBytes('O'), false},
      {TruncateBytes(), false},
      {MessageBytes(), false},
      {Bytes().Byte('S').Int32(900).Byte(0).str(), false},
      {Bytes().Byte('c').Int32(900).Byte(0).Int64(1).Int64(2).Int64(3).str(), false},
      {Bytes().Byte('A').Int32(900).Int32(901).str(), false},
      {Bytes().Byte('I').Int32(900).Raw(insert.substr(1)).str(), true},
  };
}

BOOST_AUTO_TEST_CASE(every_truncation_is_corrupt_data) {
  for (const auto& [bytes, in_stream] : ValidMessages()) {
    BOOST_TEST_REQUIRE(DecodeStatus(bytes, in_stream).ok());
    // Views into the whole buffer, so that reading past the end would find real bytes and
    // show up as a wrong success.
    std::string_view whole(bytes);
    for (size_t size = 0; size < bytes.size(); ++size) {
      Status st = DecodeStatus(whole.substr(0, size), in_stream);
      BOOST_TEST(st.code() == StatusCode::kCorruptData,
                 "message '" << bytes[0] << "' cut to " << size << " bytes: " << st.ToString());
    }
  }
}

BOOST_AUTO_TEST_CASE(trailing_bytes_are_corrupt_data) {
  for (const auto& [bytes, in_stream] : ValidMessages()) {
    Status st = DecodeStatus(bytes + '\0', in_stream);
    BOOST_TEST(st.code() == StatusCode::kCorruptData, "message '" << bytes[0] << "'");
  }
  Status st = DecodeStatus(InsertBytes() + "xy");
  BOOST_TEST(st.message() == "pgoutput: 2 trailing bytes in Insert at offset 24");
}

BOOST_AUTO_TEST_CASE(errors_name_what_and_where) {
  BOOST_TEST(DecodeStatus("").message() == "pgoutput: empty message at offset 0");
  BOOST_TEST(DecodeStatus("Z").message() ==
             "pgoutput: unknown message type 'Z' (0x5a) at offset 0");
  BOOST_TEST(DecodeStatus(std::string_view("\x01", 1)).message() ==
             "pgoutput: unknown message type 0x01 at offset 0");
  BOOST_TEST(DecodeStatus(InsertBytes().substr(0, 3)).message() ==
             "pgoutput: truncated relation id in Insert at offset 1");
  BOOST_TEST(
      DecodeStatus(Bytes().Byte('R').Int32(1).String("public").Raw("orde").str()).message() ==
      "pgoutput: truncated relation name in Relation at offset 12");
}

BOOST_AUTO_TEST_CASE(bad_tuple_column_kind) {
  std::string bytes = Bytes().Byte('I').Int32(1).Byte('N').Int16(2).Text("1").Byte('x').str();
  Status st = DecodeStatus(bytes);
  BOOST_TEST(st.code() == StatusCode::kCorruptData);
  BOOST_TEST(st.message() ==
             "pgoutput: unknown tuple column kind 'x' (0x78) in Insert at offset 14");
}

BOOST_AUTO_TEST_CASE(negative_lengths_and_absurd_counts) {
  auto corrupt = [](const std::string& bytes) {
    Status st = DecodeStatus(bytes);
    BOOST_TEST(st.code() == StatusCode::kCorruptData, st.ToString());
    return st.message();
  };
  BOOST_TEST(corrupt(Bytes().Byte('I').Int32(1).Byte('N').Int16(1).Byte('t').Int32(-1).str()) ==
             "pgoutput: negative tuple column length -1 in Insert at offset 9");
  BOOST_TEST(corrupt(Bytes().Byte('I').Int32(1).Byte('N').Int16(-3).str()) ==
             "pgoutput: negative tuple column count -3 in Insert at offset 6");
  BOOST_TEST(corrupt(Bytes().Byte('I').Int32(1).Byte('N').Int16(32000).Byte('n').str()) ==
             "pgoutput: tuple column count 32000 exceeds the 1 bytes left in Insert at offset 6");
  BOOST_TEST(
      corrupt(Bytes().Byte('T').Int32(1 << 30).Byte(0).Int32(1).str()) ==
      "pgoutput: relation count 1073741824 exceeds the 4 bytes left in Truncate at offset 1");
  corrupt(Bytes().Byte('T').Int32(-1).Byte(0).str());
  corrupt(Bytes().Byte('M').Byte(0).Int64(1).String("p").Int32(-2).str());
  corrupt(Bytes().Byte('M').Byte(0).Int64(1).String("p").Int32(1000).Raw("abc").str());
  corrupt(Bytes().Byte('R').Int32(1).String("s").String("t").Byte('d').Int16(-1).str());
  corrupt(Bytes().Byte('R').Int32(1).String("s").String("t").Byte('d').Int16(2).Raw("abc").str());
  corrupt(Bytes().Byte('I').Int32(1).Byte('N').Int16(1).Byte('b').Int32(5).Raw("ab").str());
}

BOOST_AUTO_TEST_CASE(bad_markers_and_replica_identity) {
  auto corrupt = [](const std::string& bytes) {
    return DecodeStatus(bytes).code() == StatusCode::kCorruptData;
  };
  BOOST_TEST(corrupt(Bytes().Byte('R').Int32(1).String("s").String("t").Byte('x').Int16(0).str()));
  BOOST_TEST(corrupt(Bytes().Byte('I').Int32(1).Byte('K').Int16(0).str()));
  BOOST_TEST(corrupt(Bytes().Byte('U').Int32(1).Byte('X').Int16(0).str()));
  BOOST_TEST(corrupt(Bytes().Byte('U').Int32(1).Byte('K').Int16(0).Byte('K').Int16(0).str()));
  BOOST_TEST(corrupt(Bytes().Byte('D').Int32(1).Byte('N').Int16(0).str()));
  BOOST_TEST(DecodeStatus(Bytes().Byte('U').Int32(1).Byte('X').Int16(0).str()).message() ==
             "pgoutput: tuple marker 'X' (0x58), expected 'K', 'O' or 'N' in Update at offset 5");
}

std::string XLogDataBytes(std::string_view payload) {
  return Bytes().Byte('w').Int64(kLsn).Int64(kLsn + 100).Int64(kTs).Raw(payload).str();
}

BOOST_AUTO_TEST_CASE(xlogdata) {
  std::string insert = InsertBytes();
  std::string bytes = XLogDataBytes(insert);
  CopyDataMessage m;
  BOOST_TEST_REQUIRE(DecodeCopyData(bytes, m).ok());
  BOOST_TEST(m.type == CopyDataType::kXLogData);
  BOOST_TEST(m.data_start == kLsn);
  BOOST_TEST(m.wal_end == kLsn + 100);
  BOOST_TEST(m.send_time_pg_us == kTs);
  BOOST_TEST(!m.reply_requested);
  BOOST_TEST(m.payload == insert);
  BOOST_TEST((m.payload.data() == bytes.data() + 25));
  PgoutputMessage row;
  BOOST_TEST(DecodePgoutput(m.payload, row).ok());
  BOOST_TEST(row.change.new_tuple.size() == 4u);
}

BOOST_AUTO_TEST_CASE(keepalive) {
  CopyDataMessage m;
  m.payload = "stale";
  std::string bytes = Bytes().Byte('k').Int64(kLsn).Int64(kTs).Byte(1).str();
  BOOST_TEST_REQUIRE(DecodeCopyData(bytes, m).ok());
  BOOST_TEST(m.type == CopyDataType::kKeepalive);
  BOOST_TEST(m.wal_end == kLsn);
  BOOST_TEST(m.send_time_pg_us == kTs);
  BOOST_TEST(m.reply_requested);
  BOOST_TEST(m.payload.empty());

  bytes.back() = 0;
  BOOST_TEST_REQUIRE(DecodeCopyData(bytes, m).ok());
  BOOST_TEST(!m.reply_requested);
}

BOOST_AUTO_TEST_CASE(copydata_malformed) {
  CopyDataMessage m;
  std::string xlog = XLogDataBytes("");
  std::string keepalive = Bytes().Byte('k').Int64(1).Int64(2).Byte(0).str();
  BOOST_TEST_REQUIRE(DecodeCopyData(xlog, m).ok());
  BOOST_TEST(m.payload.empty());
  for (const std::string& bytes : {xlog, keepalive}) {
    for (size_t size = 0; size < bytes.size(); ++size) {
      BOOST_TEST(DecodeCopyData(std::string_view(bytes).substr(0, size), m).code() ==
                 StatusCode::kCorruptData);
    }
  }
  BOOST_TEST(DecodeCopyData(keepalive + 'x', m).message() ==
             "replication: keepalive of 19 bytes, expected 18 at offset 18");
  BOOST_TEST(DecodeCopyData(xlog.substr(0, 10), m).message() ==
             "replication: truncated XLogData of 10 bytes, expected 25 at offset 10");
  BOOST_TEST(DecodeCopyData("r", m).message() ==
             "replication: unknown CopyData message type 0x72 at offset 0");
}

BOOST_AUTO_TEST_CASE(standby_status_update_bytes) {
  std::array<char, 34> update = EncodeStandbyStatusUpdate(
      0x0102030405060708ULL, 0x1112131415161718ULL, 0x2122232425262728ULL, -2, true);
  std::string expected = Bytes()
                             .Byte('r')
                             .Raw("\x01\x02\x03\x04\x05\x06\x07\x08")
                             .Raw("\x11\x12\x13\x14\x15\x16\x17\x18")
                             .Raw("\x21\x22\x23\x24\x25\x26\x27\x28")
                             .Raw("\xff\xff\xff\xff\xff\xff\xff\xfe")
                             .Byte(1)
                             .str();
  BOOST_TEST(std::string(update.data(), update.size()) == expected);
  BOOST_TEST(EncodeStandbyStatusUpdate(1, 2, 3, 4, false)[33] == 0);
}

BOOST_AUTO_TEST_CASE(postgres_epoch_conversion) {
  BOOST_TEST(kPostgresEpochOffsetUs == 946684800LL * 1000000);
  BOOST_TEST(PostgresToUnixMicros(0) == kPostgresEpochOffsetUs);
  BOOST_TEST(UnixToPostgresMicros(PostgresToUnixMicros(kTs)) == kTs);
  BOOST_TEST(PostgresToUnixMicros(INT64_MAX) == INT64_MAX);
  BOOST_TEST(UnixToPostgresMicros(INT64_MIN) == INT64_MIN);
}

}  // namespace
}  // namespace tributary::postgres
