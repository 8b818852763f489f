#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/agent_process.h"
#include "tests/support/temp_dir.h"

namespace tributary::testing {

// The topics of a source whose table went through DDL under a write workload (file sink).
struct DdlTopics {
  std::filesystem::path changes;  // <source>.schema-changes
  std::filesystem::path rows;     // the table's topic

  std::vector<nlohmann::json> Changes() const;
  std::vector<nlohmann::json> Rows() const;
  // Whether `version` is announced and a row of it is written.
  bool HasVersion(int version) const;
  // Whether a row whose `after.id` is `id` is written.
  bool HasRowWithId(int id) const;
};

// An agent run over a table that goes through DDL: the file sink's topics under `dir`, the
// agent restarted as the test needs. The server is the test's own.
struct DdlRun {
  DdlRun(const std::string& changes_topic, const std::string& rows_topic);

  TempDir dir;
  std::filesystem::path config;
  std::unique_ptr<AgentProcess> agent;
  int starts = 0;
  DdlTopics topics;

  // Starts the agent on `config`, logging to agent<N>.log.
  void Start();
  // Waits until version `version` is announced and a row of it is written.
  void AwaitVersion(int version);
};

// One line per schema-change event (version, compatibility, position, columns): for failure
// messages.
std::string DescribeChanges(const std::vector<nlohmann::json>& changes);

// Checks what a DDL run wrote, as Boost.Test assertions: every version of `expected_compatible`
// (and no other) announced for `table` with previous_version = version - 1 and that
// compatibility (drops aside, which `drops` counts); each row's columns exactly those of its
// version; no row before its version's first announcement; ids 1…`last_id` all present.
// Returns the column names of each version.
std::map<int, std::vector<std::string>> CheckDdlRun(const DdlTopics& topics,
                                                    const std::string& table,
                                                    const std::map<int, bool>& expected_compatible,
                                                    int last_id, int& drops);

}  // namespace tributary::testing
