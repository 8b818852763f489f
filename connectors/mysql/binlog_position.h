#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "connectors/mysql/binlog_event.h"

namespace tributary::mysql {

// MariaDB's GTID state: the last GTID of each replication domain.
using GtidState = std::map<uint32_t, MariaGtid>;

// "0-1-100,1-2-5" (domain order); empty for no GTIDs.
std::string FormatGtidState(const GtidState& state);
std::optional<GtidState> ParseGtidState(std::string_view text);

// A checkpoint: the binlog coordinates just after a committed transaction, and the GTID state
// including it (MariaDB) or the transaction's GTID (MySQL, for information).
// Text form: "<file>:<pos>:<gtids>", e.g. "binlog.000002:4468:0-1-10".
struct BinlogCheckpoint {
  std::string file;
  uint64_t pos = 0;
  std::string gtids;
};

std::string FormatCheckpoint(const BinlogCheckpoint& checkpoint);
std::optional<BinlogCheckpoint> ParseCheckpoint(std::string_view text);

// The sequence number of a binlog file: "binlog.000012" -> 12; 0 without one.
uint64_t BinlogFileNumber(std::string_view file);

// source.position: "<file number>/<event position>/<row>", zero-padded to 10, 12 and 8 digits
// so that it sorts lexically in change order. Appended to `out`.
void AppendPosition(uint64_t file_number, uint64_t pos, uint32_t row, std::string& out);

}  // namespace tributary::mysql
