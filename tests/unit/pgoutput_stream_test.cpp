#define BOOST_TEST_MODULE pgoutput_stream_test
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "agent/core/status.h"
#include "connectors/postgres/pgoutput_decoder.h"
#include "connectors/postgres/stream_spool.h"
#include "tests/support/pgoutput_bytes.h"
#include "tests/support/temp_dir.h"

// pgoutput proto_version 2: the streaming messages and the xid that row, relation, type,
// truncate and logical messages carry inside a stream block; and the spool that keeps a
// streamed transaction on disk until it commits.

namespace tributary::postgres {
namespace {

using testing::Bytes;

constexpr uint32_t kXid = 0x00000386;     // 902
constexpr uint32_t kSubxid = 0x00000387;  // 903
constexpr uint64_t kCommitLsn = 0x000000000163A2F8ULL;
constexpr uint64_t kEndLsn = 0x000000000163A328ULL;
constexpr int64_t kTs = 774000000123456;

PgoutputMessage Decode(std::string bytes, bool in_stream) {
  static std::deque<std::string> kept;  // decoded views point into these
  kept.push_back(std::move(bytes));
  PgoutputMessage message;
  Status st = DecodePgoutput(kept.back(), message, in_stream);
  BOOST_TEST_REQUIRE(st.ok(), st.ToString());
  return message;
}

Status DecodeStatus(const std::string& bytes, bool in_stream) {
  PgoutputMessage message;
  return DecodePgoutput(bytes, message, in_stream);
}

// The byte fixtures below were laid out from the PostgreSQL 15 message formats
// (protocol-logicalrep-message-formats), field by field.
BOOST_AUTO_TEST_CASE(stream_start_first_and_later_segments) {
  // 'S', xid 902, first segment 1.
  PgoutputMessage first = Decode(std::string("S\x00\x00\x03\x86\x01", 6), false);
  BOOST_TEST((first.type == PgoutputType::kStreamStart));
  BOOST_TEST(first.stream_start.xid == kXid);
  BOOST_TEST(first.stream_start.first_segment);
  PgoutputMessage later = Decode(std::string("S\x00\x00\x03\x86\x00", 6), false);
  BOOST_TEST(!later.stream_start.first_segment);
}

BOOST_AUTO_TEST_CASE(stream_commit_fields) {
  std::string bytes =
      Bytes().Byte('c').Int32(kXid).Byte(0).Int64(kCommitLsn).Int64(kEndLsn).Int64(kTs).str();
  BOOST_TEST(bytes.size() == 1u + 4 + 1 + 8 + 8 + 8);
  PgoutputMessage m = Decode(bytes, false);
  BOOST_TEST((m.type == PgoutputType::kStreamCommit));
  BOOST_TEST(m.stream_commit.xid == kXid);
  BOOST_TEST(m.stream_commit.commit_lsn == kCommitLsn);
  BOOST_TEST(m.stream_commit.end_lsn == kEndLsn);
  BOOST_TEST(m.stream_commit.commit_ts_pg_us == kTs);
}

BOOST_AUTO_TEST_CASE(stream_abort_of_a_transaction_and_of_a_subtransaction) {
  // PostgreSQL 15 (proto_version 2): xid and subxid only.
  PgoutputMessage whole = Decode(Bytes().Byte('A').Int32(kXid).Int32(kXid).str(), false);
  BOOST_TEST((whole.type == PgoutputType::kStreamAbort));
  BOOST_TEST(whole.stream_abort.xid == whole.stream_abort.subxid);
  PgoutputMessage sub = Decode(Bytes().Byte('A').Int32(kXid).Int32(kSubxid).str(), false);
  BOOST_TEST(sub.stream_abort.subxid == kSubxid);
  BOOST_TEST(sub.stream_abort.abort_lsn == 0u);
  // Bytes after the subxid that are not a whole abort LSN and time (proto_version 4) are
  // corrupt, not ignored.
  for (size_t extra = 1; extra < 16; ++extra) {
    std::string bytes = Bytes().Byte('A').Int32(kXid).Int32(kSubxid).str() + std::string(extra, 0);
    Status st = DecodeStatus(bytes, false);
    BOOST_TEST(st.code() == StatusCode::kCorruptData, extra);
    BOOST_TEST(st.message().find("Stream Abort") != std::string::npos, st.message());
  }
}

BOOST_AUTO_TEST_CASE(stream_stop_has_no_body) {
  PgoutputMessage m = Decode("E", true);
  BOOST_TEST((m.type == PgoutputType::kStreamStop));
  Status st = DecodeStatus(std::string("E\x00", 2), true);
  BOOST_TEST(st.code() == StatusCode::kCorruptData);
  BOOST_TEST(st.message().find("trailing") != std::string::npos, st.message());
}

BOOST_AUTO_TEST_CASE(every_transactional_message_carries_the_subtransaction_xid_in_a_stream) {
  const std::string insert =
      Bytes().Byte('I').Int32(kSubxid).Int32(16385).Byte('N').Int16(1).Text("7").str();
  PgoutputMessage m = Decode(insert, true);
  BOOST_TEST(m.stream_xid == kSubxid);
  BOOST_TEST(m.change.new_tuple.at(0).data == "7");

  m = Decode(Bytes().Byte('U').Int32(kXid).Int32(16385).Byte('N').Int16(1).Text("8").str(), true);
  BOOST_TEST(m.stream_xid == kXid);
  m = Decode(Bytes().Byte('D').Int32(kXid).Int32(16385).Byte('K').Int16(1).Text("8").str(), true);
  BOOST_TEST((m.change.old_kind == OldTupleKind::kKey));
  m = Decode(Bytes().Byte('T').Int32(kSubxid).Int32(1).Byte(2).Int32(16385).str(), true);
  BOOST_TEST(m.stream_xid == kSubxid);
  BOOST_TEST(m.truncate.restart_identity());
  BOOST_TEST(m.truncate.relation_ids.at(0) == 16385u);
  m = Decode(Bytes().Byte('Y').Int32(kXid).Int32(16400).String("public").String("mood").str(),
             true);
  BOOST_TEST(m.data_type.name == "mood");
  m = Decode(Bytes()
                 .Byte('R')
                 .Int32(kXid)
                 .Int32(16385)
                 .String("public")
                 .String("big")
                 .Byte('d')
                 .Int16(1)
                 .Byte(1)
                 .String("id")
                 .Int32(23)
                 .Int32(-1)
                 .str(),
             true);
  BOOST_TEST(m.stream_xid == kXid);
  BOOST_TEST(m.relation.columns.at(0).key());
  m = Decode(
      Bytes().Byte('M').Int32(kXid).Byte(1).Int64(kCommitLsn).String("p").Int32(1).str() + "x",
      true);
  BOOST_TEST(m.message.content == "x");

  // A stream xid cut short names the field.
  Status st = DecodeStatus(std::string("I\x00\x00", 3), true);
  BOOST_TEST(st.code() == StatusCode::kCorruptData);
  BOOST_TEST(st.message().find("stream xid") != std::string::npos, st.message());
  // Origin is not a transactional message: no xid in a stream either.
  m = Decode(Bytes().Byte('O').Int64(kCommitLsn).String("node1").str(), true);
  BOOST_TEST(m.origin.name == "node1");
}

BOOST_AUTO_TEST_CASE(fixture_files_decode) {
  const std::filesystem::path dir =
      std::filesystem::path(TRIBUTARY_SOURCE_DIR) / "tests" / "fixtures" / "pgoutput";
  auto read = [&](const char* name) {
    std::ifstream in(dir / name, std::ios::binary);
    BOOST_TEST_REQUIRE(in.good(), name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  BOOST_TEST(Decode(read("stream_start.bin"), false).stream_start.xid == kXid);
  BOOST_TEST(Decode(read("stream_commit.bin"), false).stream_commit.end_lsn == kEndLsn);
  BOOST_TEST(Decode(read("stream_abort.bin"), false).stream_abort.subxid == kSubxid);
  BOOST_TEST(Decode(read("stream_insert.bin"), true).stream_xid != 0u);
}

BOOST_AUTO_TEST_CASE(spool_replays_what_was_appended_in_order) {
  testing::TempDir dir;
  auto spool = StreamSpool::Create(dir.path() / "stream-902.spool");
  BOOST_TEST_REQUIRE(spool.ok(), spool.status().ToString());
  // Enough records to cross the write and read buffers several times, and a large one.
  const size_t kRecords = 20000;
  for (size_t i = 0; i < kRecords; ++i) {
    std::string message(i == 777 ? 1000000 : 1 + i % 300, static_cast<char>('a' + i % 26));
    BOOST_TEST_REQUIRE(spool->Append(1000 + i, message).ok());
  }
  BOOST_TEST(spool->records() == kRecords);
  BOOST_TEST_REQUIRE(spool->StartReading().ok());
  size_t bad = 0;
  for (size_t i = 0; i < kRecords; ++i) {
    uint64_t lsn = 0;
    std::string_view message;
    Result<bool> more = spool->Next(lsn, message);
    BOOST_TEST_REQUIRE(more.ok(), more.status().ToString());
    BOOST_TEST_REQUIRE(*more);
    if (lsn != 1000 + i || message.size() != (i == 777 ? 1000000 : 1 + i % 300) ||
        message.find_first_not_of(static_cast<char>('a' + i % 26)) != std::string_view::npos) {
      ++bad;
    }
  }
  BOOST_TEST(bad == 0u);
  uint64_t lsn = 0;
  std::string_view message;
  Result<bool> end = spool->Next(lsn, message);
  BOOST_TEST_REQUIRE(end.ok());
  BOOST_TEST(!*end);
  BOOST_TEST(std::filesystem::exists(spool->path()));
  spool->Remove();
  BOOST_TEST(!std::filesystem::exists(dir.path() / "stream-902.spool"));
}

BOOST_AUTO_TEST_CASE(spool_cut_short_is_corrupt_data) {
  testing::TempDir dir;
  auto spool = StreamSpool::Create(dir.path() / "stream-1.spool");
  BOOST_TEST_REQUIRE(spool.ok());
  BOOST_TEST_REQUIRE(spool->Append(5, "hello").ok());
  BOOST_TEST_REQUIRE(spool->StartReading().ok());
  std::filesystem::resize_file(spool->path(), 12 + 2);
  uint64_t lsn = 0;
  std::string_view message;
  Result<bool> next = spool->Next(lsn, message);
  BOOST_TEST(next.status().code() == StatusCode::kCorruptData);
  BOOST_TEST(next.status().message().find("partial record") != std::string::npos);
}

}  // namespace
}  // namespace tributary::postgres
