#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tributary {

// True when YAML text writes a secret inline (a dsn password, a password in a mysql:// URL, a
// masking key, a librdkafka *.password) rather than through ${ENV} or ${file:}.
bool HoldsLiteralSecret(std::string_view yaml_text);

// A warning when the config file at `path` holds a literal secret and group or others may read
// it; nullopt when all is well (or the file cannot be read: loading reports that).
std::optional<std::string> ExposedSecretWarning(const std::string& path);

}  // namespace tributary
