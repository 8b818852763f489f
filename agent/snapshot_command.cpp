#include "agent/snapshot_command.h"

#include <iostream>

#include "agent/components.h"
#include "agent/config.h"
#include "agent/exit_codes.h"

namespace tributary {

int RequestTableSnapshot(const std::string& config_path, const std::string& table,
                         const std::string& source) {
  Result<AgentConfig> config = LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "tributary: invalid config " << config_path << ":\n"
              << config.status().message() << "\n";
    return kExitConfig;
  }
  int requested = 0;
  for (const SourceConfig& candidate : config->sources) {
    if (!source.empty() && candidate.name != source) continue;
    Status status = RequestSnapshot(candidate, table);
    // Without --source, a source that does not capture the table is simply not asked.
    if (source.empty() && status.code() == StatusCode::kInvalidConfig) continue;
    if (!status.ok()) {
      std::cerr << "tributary: " << status.message() << "\n";
      return ExitCodeFor(status);
    }
    std::cout << "source " << candidate.name << ": snapshot of " << table
              << " requested; the agent runs it beside the stream (progress in its log)\n";
    ++requested;
  }
  if (requested == 0) {
    std::cerr << "tributary: no " << (source.empty() ? "source" : "source named " + source)
              << " in " << config_path << " captures table " << table << "\n";
    return kExitConfig;
  }
  return kExitOk;
}

}  // namespace tributary
