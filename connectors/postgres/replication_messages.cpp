#include "connectors/postgres/replication_messages.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace tributary::postgres {
namespace {

// 'w' + dataStart + walEnd + sendTime, then the payload.
constexpr size_t kXLogDataHeaderSize = 1 + 8 + 8 + 8;
// 'k' + walEnd + sendTime + replyRequested.
constexpr size_t kKeepaliveSize = 1 + 8 + 8 + 1;

uint64_t LoadBigEndian64(const char* p) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

void StoreBigEndian64(uint64_t value, char* p) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
}

[[gnu::cold]] Status Corrupt(std::string_view what, size_t offset) {
  return Status::CorruptData(fmt::format("replication: {} at offset {}", what, offset));
}

[[gnu::cold]] Status WrongSize(const char* name, size_t expected, size_t actual) {
  return Status::CorruptData(fmt::format("replication: {} of {} bytes, expected {} at offset {}",
                                         name, actual, expected, std::min(actual, expected)));
}

}  // namespace

int64_t PostgresToUnixMicros(int64_t pg_us) {
  int64_t unix_us = 0;
  if (__builtin_add_overflow(pg_us, kPostgresEpochOffsetUs, &unix_us)) {
    return std::numeric_limits<int64_t>::max();
  }
  return unix_us;
}

int64_t UnixToPostgresMicros(int64_t unix_us) {
  int64_t pg_us = 0;
  if (__builtin_sub_overflow(unix_us, kPostgresEpochOffsetUs, &pg_us)) {
    return std::numeric_limits<int64_t>::min();
  }
  return pg_us;
}

Status DecodeCopyData(std::string_view bytes, CopyDataMessage& out) {
  if (bytes.empty()) return Corrupt("empty CopyData message", 0);
  const char* p = bytes.data();
  switch (p[0]) {
    case 'w':
      if (bytes.size() < kXLogDataHeaderSize) {
        return WrongSize("truncated XLogData", kXLogDataHeaderSize, bytes.size());
      }
      out.type = CopyDataType::kXLogData;
      out.data_start = LoadBigEndian64(p + 1);
      out.wal_end = LoadBigEndian64(p + 9);
      out.send_time_pg_us = static_cast<int64_t>(LoadBigEndian64(p + 17));
      out.reply_requested = false;
      out.payload = bytes.substr(kXLogDataHeaderSize);
      return Status::Ok();
    case 'k':
      if (bytes.size() != kKeepaliveSize) {
        return WrongSize(bytes.size() < kKeepaliveSize ? "truncated keepalive" : "keepalive",
                         kKeepaliveSize, bytes.size());
      }
      out.type = CopyDataType::kKeepalive;
      out.data_start = 0;
      out.wal_end = LoadBigEndian64(p + 1);
      out.send_time_pg_us = static_cast<int64_t>(LoadBigEndian64(p + 9));
      out.reply_requested = p[17] != 0;
      out.payload = {};
      return Status::Ok();
    default:
      return Corrupt(
          fmt::format("unknown CopyData message type 0x{:02x}", static_cast<uint8_t>(p[0])), 0);
  }
}

std::array<char, kStandbyStatusUpdateSize> EncodeStandbyStatusUpdate(uint64_t written,
                                                                     uint64_t flushed,
                                                                     uint64_t applied,
                                                                     int64_t client_time_pg_us,
                                                                     bool reply_requested) {
  std::array<char, kStandbyStatusUpdateSize> message{};
  message[0] = 'r';
  StoreBigEndian64(written, &message[1]);
  StoreBigEndian64(flushed, &message[9]);
  StoreBigEndian64(applied, &message[17]);
  StoreBigEndian64(static_cast<uint64_t>(client_time_pg_us), &message[25]);
  message[33] = reply_requested ? 1 : 0;
  return message;
}

}  // namespace tributary::postgres
