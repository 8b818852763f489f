#include "tests/support/agent_config.h"

#include <fmt/format.h>

#include <fstream>

namespace tributary::testing {

std::filesystem::path WritePgFileConfig(const std::filesystem::path& dir, const PgServer& pg,
                                        const std::string& dbname, const std::string& source,
                                        const std::string& tables_yaml,
                                        const std::string& extra_source_yaml) {
  std::filesystem::path path = dir / "tributary.yaml";
  std::ofstream out(path);
  out << fmt::format(R"(state_dir: {state}
log: {{ level: debug }}
sources:
  - name: {source}
    type: postgres
    dsn: "{dsn}"
    tables: {tables}
{snapshot}    sinks: [files]
{extra}
sinks:
  - name: files
    type: file
    path: {out}
    rotate_bytes: 1048576
    flush_interval_ms: 100
)",
                     fmt::arg("state", (dir / "state").string()), fmt::arg("source", source),
                     fmt::arg("dsn", pg.Dsn(dbname)), fmt::arg("tables", tables_yaml),
                     fmt::arg("snapshot", extra_source_yaml.find("snapshot:") == std::string::npos
                                              ? "    snapshot: never\n"
                                              : ""),
                     fmt::arg("extra", extra_source_yaml), fmt::arg("out", (dir / "out").string()));
  return path;
}

std::filesystem::path TopicDir(const std::filesystem::path& dir, const std::string& topic) {
  return dir / "out" / topic;
}

}  // namespace tributary::testing
