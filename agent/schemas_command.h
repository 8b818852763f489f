#pragma once

#include <ostream>
#include <string>

#include "agent/config.h"

namespace tributary {

// `tributary schemas --config F [--source S] [--table T] [--json]`: prints each source's schema
// history from the state dir, one block per table version (or drop); with `json`, the history
// lines as stored. Reads only: safe beside a running agent. Returns the exit code: 0, 65 when a
// history is damaged, 78 when no source is named S or no history holds T.
int PrintSchemas(const AgentConfig& config, const std::string& source, const std::string& table,
                 bool json, std::ostream& out, std::ostream& err);

}  // namespace tributary
