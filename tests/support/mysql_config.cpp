#include "tests/support/mysql_config.h"

#include <fmt/format.h>

#include "tests/support/agent_config.h"

namespace tributary::testing {

std::filesystem::path WriteMysqlFileConfig(const std::filesystem::path& dir,
                                           const MariaDbServer& server, const std::string& source,
                                           const std::string& tables_yaml,
                                           const std::string& extra_source_yaml) {
  return WriteFileSinkConfig(dir, source,
                             fmt::format("    type: mysql\n    dsn: \"{}\"\n    tables: {}\n"
                                         "    server_id: 4242\n    heartbeat_interval_ms: 1000\n",
                                         server.Dsn(), tables_yaml),
                             extra_source_yaml);
}

}  // namespace tributary::testing
