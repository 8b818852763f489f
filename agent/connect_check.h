#pragma once

#include <string>
#include <vector>

#include "agent/config.h"

namespace tributary {

// `tributary validate --connect`: reaches each source and reports, one line each with the
// source's path, what would stop it from streaming: no connection, wal_level, the REPLICATION
// privilege, replication slots, tables its globs match, replica identity. Read-only: it never
// creates a slot or a publication. Source types it cannot check yet get a note, not a problem.
struct ConnectReport {
  std::vector<std::string> problems;
  std::vector<std::string> notes;
};

ConnectReport CheckConnections(const AgentConfig& config);

}  // namespace tributary
