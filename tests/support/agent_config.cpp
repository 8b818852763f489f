#include "tests/support/agent_config.h"

#include <fmt/format.h>

#include <fstream>
#include <stdexcept>

#include "tests/support/agent_process.h"

namespace tributary::testing {

std::filesystem::path WriteFileSinkConfig(const std::filesystem::path& dir,
                                          const std::string& source,
                                          const std::string& source_keys_yaml,
                                          const std::string& extra_source_yaml) {
  std::filesystem::path path = dir / "tributary.yaml";
  std::ofstream out(path);
  out << fmt::format(R"(state_dir: {state}
log: {{ level: debug }}
sources:
  - name: {source}
{keys}{snapshot}    sinks: [files]
{extra}
sinks:
  - name: files
    type: file
    path: {out}
    rotate_bytes: 1048576
    flush_interval_ms: 100
)",
                     fmt::arg("state", (dir / "state").string()), fmt::arg("source", source),
                     fmt::arg("keys", source_keys_yaml),
                     fmt::arg("snapshot", extra_source_yaml.find("snapshot:") == std::string::npos
                                              ? "    snapshot: never\n"
                                              : ""),
                     fmt::arg("extra", extra_source_yaml), fmt::arg("out", (dir / "out").string()));
  return path;
}

std::filesystem::path WritePgFileConfig(const std::filesystem::path& dir, const PgServer& pg,
                                        const std::string& dbname, const std::string& source,
                                        const std::string& tables_yaml,
                                        const std::string& extra_source_yaml) {
  return WriteFileSinkConfig(dir, source,
                             fmt::format("    type: postgres\n    dsn: \"{}\"\n    tables: {}\n",
                                         pg.Dsn(dbname), tables_yaml),
                             extra_source_yaml);
}

void EditConfig(const std::filesystem::path& path, const std::string& from, const std::string& to) {
  std::string text = ReadFile(path);
  const size_t at = text.find(from);
  if (at == std::string::npos) {
    throw std::runtime_error("config " + path.string() + " has no \"" + from + "\" to replace");
  }
  text.replace(at, from.size(), to);
  std::ofstream(path, std::ios::trunc) << text;
}

std::filesystem::path TopicDir(const std::filesystem::path& dir, const std::string& topic) {
  return dir / "out" / topic;
}

}  // namespace tributary::testing
