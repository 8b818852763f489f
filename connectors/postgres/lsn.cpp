#include "connectors/postgres/lsn.h"

#include <fmt/format.h>

#include <charconv>

namespace tributary::postgres {

std::string FormatLsn(uint64_t lsn) {
  return fmt::format("{:X}/{:X}", static_cast<uint32_t>(lsn >> 32), static_cast<uint32_t>(lsn));
}

std::optional<uint64_t> ParseLsn(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) {
    return std::nullopt;
  }
  uint32_t high = 0;
  uint32_t low = 0;
  const char* end = text.data() + slash;
  auto [p1, e1] = std::from_chars(text.data(), end, high, 16);
  if (e1 != std::errc() || p1 != end) return std::nullopt;
  end = text.data() + text.size();
  auto [p2, e2] = std::from_chars(text.data() + slash + 1, end, low, 16);
  if (e2 != std::errc() || p2 != end) return std::nullopt;
  return (static_cast<uint64_t>(high) << 32) | low;
}

}  // namespace tributary::postgres
