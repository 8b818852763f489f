#pragma once

#include <cstdint>
#include <string_view>

#include "agent/core/event.h"
#include "agent/core/status.h"
#include "connectors/mysql/binlog_event.h"
#include "connectors/mysql/table_map.h"

namespace tributary::mysql {

enum class RowsKind : uint8_t { kWrite, kUpdate, kDelete };

// WRITE/UPDATE/DELETE_ROWS v1 and v2, split up; the rows stay encoded. Views into the input.
struct RowsEvent {
  RowsKind kind = RowsKind::kWrite;
  uint64_t table_id = 0;
  uint16_t flags = 0;
  uint32_t column_count = 0;
  std::string_view present;        // columns in the (before) image, one bit each
  std::string_view present_after;  // UPDATE: columns in the after image
  std::string_view rows;           // the row images, back to back
};

// True for the rows event types this decoder reads (not the MariaDB compressed ones).
bool IsRowsEvent(EventType type);

// Decodes the body (no header, no checksum) of a rows event of `type`. `post_header_length`
// is the format description's for that type (8 for v1, 10 for v2; 6 for 4-byte table ids).
Status DecodeRowsEvent(std::string_view body, EventType type, uint8_t post_header_length,
                       RowsEvent& out);

// Decodes one row image from `rows` (advancing it past the image) into batch.values: one Value
// per column of `map`, canonical text in batch.arena (docs/mysql.md). Columns missing from
// `present` (binlog_row_image other than FULL) are kUnavailable. kCorruptData when the bytes do
// not fit the table map; the message names the column, never the value.
Status DecodeRowImage(const TableMap& map, std::string_view present, std::string_view& rows,
                      Batch& batch);

}  // namespace tributary::mysql
