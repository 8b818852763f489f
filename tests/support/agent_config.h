#pragma once

#include <filesystem>
#include <string>

#include "tests/support/pg_server.h"

namespace tributary::testing {

// Writes `dir`/tributary.yaml: state in `dir`/state, debug logs, one source named `source`
// whose keys other than its name are `source_keys_yaml` (each line indented by four) plus
// `extra_source_yaml`, with snapshot: never unless the extra sets it, feeding one file sink
// under `dir`/out. Returns its path.
std::filesystem::path WriteFileSinkConfig(const std::filesystem::path& dir,
                                          const std::string& source,
                                          const std::string& source_keys_yaml,
                                          const std::string& extra_source_yaml);

// Writes a config for one postgres source named `source` (snapshot: never, unless
// `extra_source_yaml` sets it) feeding one file sink, and returns its path.
// `extra_source_yaml` is appended to the source's mapping.
std::filesystem::path WritePgFileConfig(const std::filesystem::path& dir, const PgServer& pg,
                                        const std::string& dbname, const std::string& source,
                                        const std::string& tables_yaml,
                                        const std::string& extra_source_yaml = "");

// Replaces the first `from` in the config at `path` with `to`, for a setting the writers above
// do not take. Throws when `from` is not there: the test would otherwise run with the default.
void EditConfig(const std::filesystem::path& path, const std::string& from, const std::string& to);

// The directory of a topic written by that config.
std::filesystem::path TopicDir(const std::filesystem::path& dir, const std::string& topic);

}  // namespace tributary::testing
