#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace tributary::mysql {

// Event type codes from the servers' log_event.h (MySQL below 160, MariaDB from 160).
enum class EventType : uint8_t {
  kUnknown = 0,
  kQuery = 2,
  kStop = 3,
  kRotate = 4,
  kIntvar = 5,
  kRand = 13,
  kUserVar = 14,
  kFormatDescription = 15,
  kXid = 16,
  kTableMap = 19,
  kWriteRowsV1 = 23,
  kUpdateRowsV1 = 24,
  kDeleteRowsV1 = 25,
  kIncident = 26,
  kHeartbeat = 27,
  kIgnorable = 28,
  kRowsQuery = 29,
  kWriteRowsV2 = 30,
  kUpdateRowsV2 = 31,
  kDeleteRowsV2 = 32,
  kMysqlGtid = 33,
  kMysqlAnonymousGtid = 34,
  kMysqlPreviousGtids = 35,
  kXaPrepare = 38,
  kAnnotateRows = 160,
  kBinlogCheckpoint = 161,
  kMariaGtid = 162,
  kMariaGtidList = 163,
  kStartEncryption = 164,
  kQueryCompressed = 165,
  kWriteRowsCompressedV1 = 166,
  kUpdateRowsCompressedV1 = 167,
  kDeleteRowsCompressedV1 = 168,
  kWriteRowsCompressed = 169,
  kUpdateRowsCompressed = 170,
  kDeleteRowsCompressed = 171,
};

constexpr size_t kEventHeaderSize = 19;
constexpr size_t kChecksumSize = 4;
constexpr uint16_t kArtificialEventFlag = 0x20;  // LOG_EVENT_ARTIFICIAL_F

enum class ChecksumAlg : uint8_t { kOff = 0, kCrc32 = 1 };

// The 19-byte v4 header every event starts with.
struct EventHeader {
  uint32_t timestamp = 0;
  EventType type = EventType::kUnknown;
  uint32_t server_id = 0;
  uint32_t event_size = 0;  // header, body and checksum
  uint32_t log_pos = 0;     // end of the event in its file; 0 for artificial events
  uint16_t flags = 0;
};

// One event split into its parts. `body` excludes header and checksum; views into the input.
struct RawEvent {
  EventHeader header;
  std::string_view body;
};

// CRC-32 (ISO-HDLC, zlib's) as binlog_checksum=CRC32 uses it.
uint32_t Crc32(std::string_view bytes);

// Splits `bytes` (exactly one event) into header and body. With `alg` kCrc32 the last four
// bytes are verified as the CRC-32 of the rest. kCorruptData on any mismatch.
Status DecodeEvent(std::string_view bytes, ChecksumAlg alg, RawEvent& out);

// The body of FORMAT_DESCRIPTION_EVENT, which also names the checksum algorithm of the events
// after it. Decode it from the whole event: its checksum is known only once it is parsed.
struct FormatDescription {
  uint16_t binlog_version = 0;
  std::string server_version;
  uint8_t header_length = 0;
  std::vector<uint8_t> post_header_lengths;  // index: event type - 1
  ChecksumAlg checksum = ChecksumAlg::kOff;
};
Status DecodeFormatDescription(std::string_view event_bytes, FormatDescription& out);

struct RotateEvent {
  uint64_t position = 0;
  std::string_view file;
};
Status DecodeRotate(std::string_view body, RotateEvent& out);

// MariaDB GTID_EVENT: starts a transaction (or a standalone statement).
struct MariaGtidEvent {
  uint64_t sequence = 0;
  uint32_t domain = 0;
  uint8_t flags = 0;
  bool standalone() const { return (flags & 0x01) != 0; }  // FL_STANDALONE: no COMMIT follows
};
Status DecodeMariaGtid(std::string_view body, MariaGtidEvent& out);

struct MariaGtid {
  uint32_t domain = 0;
  uint32_t server_id = 0;
  uint64_t sequence = 0;
  bool operator==(const MariaGtid&) const = default;
};
// "0-1-100"
std::string FormatMariaGtid(const MariaGtid& gtid);
// GTID_LIST_EVENT: the binlog state at the start of a file.
Status DecodeMariaGtidList(std::string_view body, std::vector<MariaGtid>& out);

// MySQL GTID_LOG_EVENT / ANONYMOUS_GTID_LOG_EVENT; gtid is "uuid:n", empty when anonymous.
Status DecodeMysqlGtid(std::string_view body, std::string& gtid);

Status DecodeXid(std::string_view body, uint64_t& xid);

struct QueryEvent {
  uint32_t thread_id = 0;
  std::string_view database;
  std::string_view query;
};
Status DecodeQuery(std::string_view body, QueryEvent& out);

// HEARTBEAT_LOG_EVENT: the binlog file the server is at; its position is the header's log_pos.
Status DecodeHeartbeat(std::string_view body, std::string_view& file);

}  // namespace tributary::mysql
