#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
