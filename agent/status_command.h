#pragma once

#include <ostream>

#include "agent/config.h"

namespace tributary {

// `tributary status`: each source's checkpoint from the state dir and, when the config has an
// HTTP endpoint that answers, the running agent's state and lag for it. Returns the exit code:
// 0, or 65 when a checkpoint file is damaged.
int PrintStatus(const AgentConfig& config, std::ostream& out);

}  // namespace tributary
