#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/core/event.h"
#include "connectors/mysql/binlog_event.h"
#include "connectors/mysql/mysql_json.h"
#include "connectors/mysql/rows_event.h"
#include "connectors/mysql/table_map.h"

namespace {

namespace my = tributary::mysql;

// Values must point inside the arena.
void CheckBatch(const tributary::Batch& batch) {
  for (const tributary::Value& v : batch.values) {
    if (v.kind == tributary::ValueKind::kNull || v.kind == tributary::ValueKind::kUnavailable) {
      continue;
    }
    if (static_cast<size_t>(v.offset) + v.length > batch.arena.size()) __builtin_trap();
  }
}

// Input: a two-byte length, that many bytes of TABLE_MAP body, one byte choosing the rows event
// type, then the rows event body. Every row image is decoded until the first error.
void FuzzRows(std::string_view input) {
  if (input.size() < 3) return;
  const size_t map_size = static_cast<uint8_t>(input[0]) | (static_cast<uint8_t>(input[1]) << 8);
  input.remove_prefix(2);
  if (map_size + 1 > input.size()) return;
  my::TableMap map;
  if (!my::DecodeTableMap(input.substr(0, map_size), 8, map).ok()) return;
  for (my::ColumnInfo& column : map.columns) {
    // The source fills these in from the catalog; let the fuzzer reach those paths too.
    if (column.charset == my::Charset::kUnknown) column.charset = my::Charset::kUtf8;
    if (column.type == my::ColumnType::kString && column.length == 16 && column.key) {
      column.logical = my::Logical::kUuid;
    }
  }
  static constexpr my::EventType kTypes[] = {
      my::EventType::kWriteRowsV1, my::EventType::kUpdateRowsV1, my::EventType::kDeleteRowsV1,
      my::EventType::kWriteRowsV2, my::EventType::kUpdateRowsV2, my::EventType::kDeleteRowsV2};
  const my::EventType type = kTypes[static_cast<uint8_t>(input[map_size]) % 6];
  std::string_view body = input.substr(map_size + 1);
  my::RowsEvent rows;
  if (!my::DecodeRowsEvent(body, type, type >= my::EventType::kWriteRowsV2 ? 10 : 8, rows).ok()) {
    return;
  }
  tributary::Batch batch;
  std::string_view data = rows.rows;
  while (!data.empty()) {
    const size_t before = data.size();
    if (!my::DecodeRowImage(map, rows.present, data, batch).ok()) break;
    if (rows.kind == my::RowsKind::kUpdate &&
        !my::DecodeRowImage(map, rows.present_after, data, batch).ok()) {
      break;
    }
    if (data.size() >= before) __builtin_trap();  // no progress would loop forever
  }
  CheckBatch(batch);
}

void FuzzEvents(std::string_view input) {
  my::RawEvent event;
  for (my::ChecksumAlg alg : {my::ChecksumAlg::kOff, my::ChecksumAlg::kCrc32}) {
    if (!my::DecodeEvent(input, alg, event).ok()) continue;
    my::RotateEvent rotate;
    (void)my::DecodeRotate(event.body, rotate);
    my::MariaGtidEvent gtid;
    (void)my::DecodeMariaGtid(event.body, gtid);
    std::vector<my::MariaGtid> list;
    (void)my::DecodeMariaGtidList(event.body, list);
    std::string mysql_gtid;
    (void)my::DecodeMysqlGtid(event.body, mysql_gtid);
    my::QueryEvent query;
    (void)my::DecodeQuery(event.body, query);
  }
  my::FormatDescription format;
  (void)my::DecodeFormatDescription(input, format);
  std::string json;
  (void)my::AppendMysqlJson(input, json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FuzzRows(bytes);
  FuzzEvents(bytes);
  return 0;
}
