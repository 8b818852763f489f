#include "tests/support/mysql_config.h"

#include <fmt/format.h>

#include <fstream>

namespace tributary::testing {

std::filesystem::path WriteMysqlFileConfig(const std::filesystem::path& dir,
                                           const MariaDbServer& server, const std::string& source,
                                           const std::string& tables_yaml,
                                           const std::string& extra_source_yaml) {
  std::filesystem::path path = dir / "tributary.yaml";
  std::ofstream out(path);
  out << fmt::format(R"(state_dir: {state}
log: {{ level: debug }}
sources:
  - name: {source}
    type: mysql
    dsn: "{dsn}"
    tables: {tables}
    server_id: 4242
    snapshot: never
    heartbeat_interval_ms: 1000
    sinks: [files]
{extra}
sinks:
  - name: files
    type: file
    path: {out}
    rotate_bytes: 1048576
    flush_interval_ms: 100
)",
                     fmt::arg("state", (dir / "state").string()), fmt::arg("source", source),
                     fmt::arg("dsn", server.Dsn()), fmt::arg("tables", tables_yaml),
                     fmt::arg("extra", extra_source_yaml), fmt::arg("out", (dir / "out").string()));
  return path;
}

}  // namespace tributary::testing
