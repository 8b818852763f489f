#pragma once

#include <string>

namespace tributary {

// `tributary snapshot --config F --table T [--source S]`: asks every source capturing T (or
// just S) to re-snapshot it while streaming goes on. Returns the process exit code.
int RequestTableSnapshot(const std::string& config_path, const std::string& table,
                         const std::string& source);

}  // namespace tributary
