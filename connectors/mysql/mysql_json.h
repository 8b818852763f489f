#pragma once

#include <string>
#include <string_view>

#include "agent/core/status.h"

namespace tributary::mysql {

// Appends MySQL's binary JSON (the JSON column type, 245, in MySQL 5.7+ binlogs) to `out` as
// compact JSON text: objects keep the server's key order, DECIMALs are exact numbers, dates and
// times are ISO strings, other opaque values base64 strings. An empty value is JSON null.
// kCorruptData on malformed input; `out` may then hold a partial value.
Status AppendMysqlJson(std::string_view bytes, std::string& out);

}  // namespace tributary::mysql
