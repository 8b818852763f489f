#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "agent/core/status.h"

namespace tributary::postgres {

// Unix microseconds of 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp epoch.
inline constexpr int64_t kPostgresEpochOffsetUs = 946684800000000;

// PostgreSQL µs (since 2000-01-01) to Unix µs and back. They saturate instead of overflowing
// because the server sends ±infinity as INT64_MAX / INT64_MIN.
int64_t PostgresToUnixMicros(int64_t pg_us);
int64_t UnixToPostgresMicros(int64_t unix_us);

enum class CopyDataType : char {
  kXLogData = 'w',
  kKeepalive = 'k',
};

// One server-to-client CopyData message of a START_REPLICATION stream. A flat struct rather
// than a variant so that the caller can reuse one; fields the type does not carry are zero.
struct CopyDataMessage {
  CopyDataType type = CopyDataType::kXLogData;
  uint64_t data_start = 0;       // XLogData: WAL start of the payload
  uint64_t wal_end = 0;          // both: the server's current end of WAL
  int64_t send_time_pg_us = 0;   // both: µs since 2000-01-01 (see PostgresToUnixMicros)
  bool reply_requested = false;  // keepalive: answer with a standby status update at once
  // XLogData: the pgoutput message. Points into the decoded bytes: it dangles once they are
  // freed (PQfreemem).
  std::string_view payload;
};

// Decodes a CopyData message ('w' XLogData or 'k' primary keepalive). Anything else,
// truncated or oversized messages give kCorruptData naming the field and its byte offset.
Status DecodeCopyData(std::string_view bytes, CopyDataMessage& out);

inline constexpr size_t kStandbyStatusUpdateSize = 34;

// The client's 'r' standby status update. LSNs are "last byte + 1" positions; only `flushed`
// lets the server recycle WAL, so it must cover durably delivered transactions only.
std::array<char, kStandbyStatusUpdateSize> EncodeStandbyStatusUpdate(uint64_t written,
                                                                     uint64_t flushed,
                                                                     uint64_t applied,
                                                                     int64_t client_time_pg_us,
                                                                     bool reply_requested);

}  // namespace tributary::postgres
