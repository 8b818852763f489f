#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

// Log lines: "component: Capitalised message key=value ...", to stderr for journald.
// Never row values, never passwords: DSNs go through RedactDsn first.
namespace tributary {

// `level`: trace|debug|info|warn|error; `format`: text|json.
void SetupLogging(std::string_view level, std::string_view format);

// A DSN (libpq key=value or URI, or mysql://) with its password replaced by "***".
std::string RedactDsn(std::string_view dsn);

}  // namespace tributary
