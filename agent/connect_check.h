#pragma once

#include <string>
#include <vector>

#include "agent/config.h"

namespace tributary {

// `tributary validate --connect`: reaches each source and sink and reports, one line each with
// its config path, what would stop it from streaming (docs/operations.md lists the checks):
// for PostgreSQL wal_level, the REPLICATION privilege, replication slots, replica identity; for
// MySQL/MariaDB the binlog settings, replication privileges, server_id; for both the tables its
// globs match; for a file sink a writable directory; for a Kafka sink brokers that answer and
// the topics it will write. Read-only: it creates no slot, publication or topic.
struct ConnectReport {
  std::vector<std::string> problems;
  std::vector<std::string> notes;
};

ConnectReport CheckConnections(const AgentConfig& config);

}  // namespace tributary
