#include "connectors/mysql/binlog_position.h"

#include <charconv>

#include "agent/core/text_append.h"

namespace tributary::mysql {

namespace {

template <typename Integer>
bool ParseNumber(std::string_view text, Integer& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

std::string FormatGtidState(const GtidState& state) {
  std::string out;
  for (const auto& [domain, gtid] : state) {
    if (!out.empty()) out.push_back(',');
    out += FormatMariaGtid(gtid);
  }
  return out;
}

std::optional<GtidState> ParseGtidState(std::string_view text) {
  GtidState state;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const size_t d1 = item.find('-');
    const size_t d2 = d1 == std::string_view::npos ? d1 : item.find('-', d1 + 1);
    if (d2 == std::string_view::npos) return std::nullopt;
    MariaGtid gtid;
    if (!ParseNumber(item.substr(0, d1), gtid.domain) ||
        !ParseNumber(item.substr(d1 + 1, d2 - d1 - 1), gtid.server_id) ||
        !ParseNumber(item.substr(d2 + 1), gtid.sequence)) {
      return std::nullopt;
    }
    state[gtid.domain] = gtid;
  }
  return state;
}

std::string FormatCheckpoint(const BinlogCheckpoint& checkpoint) {
  std::string out = checkpoint.file;
  out.push_back(':');
  out += std::to_string(checkpoint.pos);
  out.push_back(':');
  out += checkpoint.gtids;
  return out;
}

std::optional<BinlogCheckpoint> ParseCheckpoint(std::string_view text) {
  const size_t first = text.find(':');
  if (first == std::string_view::npos || first == 0) return std::nullopt;
  const size_t second = text.find(':', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  BinlogCheckpoint checkpoint;
  checkpoint.file = std::string(text.substr(0, first));
  if (!ParseNumber(text.substr(first + 1, second - first - 1), checkpoint.pos)) {
    return std::nullopt;
  }
  checkpoint.gtids = std::string(text.substr(second + 1));
  return checkpoint;
}

uint64_t BinlogFileNumber(std::string_view file) {
  const size_t dot = file.rfind('.');
  uint64_t number = 0;
  if (dot == std::string_view::npos || !ParseNumber(file.substr(dot + 1), number)) return 0;
  return number;
}

void AppendPosition(uint64_t file_number, uint64_t pos, uint32_t row, std::string& out) {
  // Written whole from the stack, once per row: appended a part at a time it took twice as long.
  char text[64];  // at most 20 digits a number
  char* end = WritePadded(text, file_number, 10);
  *end++ = '/';
  end = WritePadded(end, pos, 12);
  *end++ = '/';
  end = WritePadded(end, row, 8);
  out.append(text, end);
}

}  // namespace tributary::mysql
