#pragma once

#include <filesystem>
#include <string>

#include "tests/support/agent_process.h"
#include "tests/support/mariadb_server.h"

namespace tributary::testing {

// Writes a config for one mysql source named `source` (snapshot: never, server_id 4242) feeding
// one file sink under `dir`/out, and returns its path. `extra_source_yaml` is appended to the
// source's mapping.
std::filesystem::path WriteMysqlFileConfig(const std::filesystem::path& dir,
                                           const MariaDbServer& server, const std::string& source,
                                           const std::string& tables_yaml,
                                           const std::string& extra_source_yaml = "");

// Starts `tributary run --config` and waits until its source streams, so that changes made
// after this are captured; fails the test if it exits instead.
std::unique_ptr<AgentProcess> StartStreamingMysqlAgent(const std::filesystem::path& config,
                                                       const std::filesystem::path& log);

// shop.types: one column of every type the MySQL source maps (the types and snapshot tests).
extern const char* const kMysqlTypesTable;

}  // namespace tributary::testing
