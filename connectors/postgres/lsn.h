#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tributary::postgres {

// PostgreSQL's "16/B374D848" text form of a WAL position.
std::string FormatLsn(uint64_t lsn);
std::optional<uint64_t> ParseLsn(std::string_view text);

}  // namespace tributary::postgres
