#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/agent_process.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {

// `tributary run --config config`, logging to dir/agent<n>.log.
std::unique_ptr<AgentProcess> StartRunAgent(const std::filesystem::path& dir,
                                            const std::filesystem::path& config, int n);

// Waits (30 s at most, else the test fails with the agent's log) until the replication slot
// `slot` is in use: changes committed after that are captured.
void WaitForSlotActive(const PgServer& pg, const AgentProcess& agent, const std::string& slot);

}  // namespace tributary::testing
