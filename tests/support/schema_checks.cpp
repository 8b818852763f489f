#include "tests/support/schema_checks.h"

#include <fmt/format.h>

#include <boost/test/unit_test.hpp>
#include <set>

#include "tests/support/agent_config.h"
#include "tests/support/file_events.h"

namespace tributary::testing {

using nlohmann::json;

std::vector<json> DdlTopics::Changes() const { return ReadTopicEvents(changes); }
std::vector<json> DdlTopics::Rows() const { return ReadTopicEvents(rows); }

bool DdlTopics::HasVersion(int version) const {
  bool announced = false;
  for (const json& change : Changes()) announced |= change["version"] == version;
  if (!announced) return false;
  for (const json& row : Rows()) {
    if (row["source"]["schema_version"] == version) return true;
  }
  return false;
}

DdlRun::DdlRun(const std::string& changes_topic, const std::string& rows_topic)
    : topics{TopicDir(dir.path(), changes_topic), TopicDir(dir.path(), rows_topic)} {}

void DdlRun::Start() {
  agent =
      std::make_unique<AgentProcess>(std::vector<std::string>{"run", "--config", config.string()},
                                     dir.path() / fmt::format("agent{}.log", ++starts));
}

void DdlRun::AwaitVersion(int version) {
  BOOST_REQUIRE_MESSAGE(
      WaitFor([&] { return topics.HasVersion(version); }, std::chrono::seconds(60)),
      "version " << version << " never showed up\n"
                 << DescribeChanges(topics.Changes()) << "\n"
                 << LogOf{*agent});
}

bool DdlTopics::HasRowWithId(int id) const {
  for (const json& row : Rows()) {
    if (row["after"]["id"] == id) return true;
  }
  return false;
}

std::string DescribeChanges(const std::vector<json>& changes) {
  std::string out;
  for (const json& change : changes) {
    out += fmt::format("\nv{} prev {} compatible {} dropped {} at {}:", change["version"].dump(),
                       change["previous_version"].dump(), change["compatible"].dump(),
                       change["dropped"].dump(), change["position"].dump());
    for (const json& column : change["columns"]) {
      // Appended piecewise: " " + dump() trips GCC 12's false -Wrestrict at -O3.
      out += ' ';
      out += column.dump();
    }
  }
  return out;
}

std::map<int, std::vector<std::string>> CheckDdlRun(const DdlTopics& topics,
                                                    const std::string& table,
                                                    const std::map<int, bool>& expected_compatible,
                                                    int last_id, int& drops) {
  drops = 0;
  const std::vector<json> changes = topics.Changes();
  std::map<int, std::vector<std::string>> columns;
  std::map<int, std::string> announced_at;  // first announcement's position
  for (const json& change : changes) {
    const int version = change["version"];
    BOOST_TEST(change["table"] == table);
    if (change["dropped"] == true) {
      ++drops;
      continue;
    }
    BOOST_TEST_CONTEXT("version " << version) {
      BOOST_TEST(change["previous_version"] == version - 1);
      BOOST_TEST_REQUIRE(expected_compatible.contains(version), DescribeChanges(changes));
      BOOST_TEST(change["compatible"] == expected_compatible.at(version));
      std::vector<std::string> names;
      for (const json& column : change["columns"]) names.push_back(column["name"]);
      if (columns.contains(version)) BOOST_TEST((columns[version] == names));
      columns[version] = names;
      announced_at.try_emplace(version, change["position"]);
    }
  }
  BOOST_TEST(columns.size() == expected_compatible.size(), DescribeChanges(changes));

  std::map<int, std::string> first_row_at;
  std::set<int> ids;
  for (const json& row : topics.Rows()) {
    const int version = row["source"]["schema_version"];
    std::vector<std::string> names;
    for (const auto& [name, value] : row["after"].items()) names.push_back(name);
    std::vector<std::string> expected = columns[version];
    std::sort(expected.begin(), expected.end());  // nlohmann sorts an object's members
    BOOST_TEST_CONTEXT("row " << row["after"].dump()) { BOOST_TEST((names == expected)); }
    first_row_at.try_emplace(version, row["source"]["position"]);
    ids.insert(row["after"]["id"].get<int>());
  }
  for (const auto& [version, position] : first_row_at) {
    BOOST_TEST(announced_at.contains(version));
    BOOST_TEST(announced_at[version] <= position, "version " << version);
  }
  // The writer inserted ids 1, 2, … in order: all of them arrived.
  BOOST_TEST(ids.size() == static_cast<size_t>(last_id));
  return columns;
}

}  // namespace tributary::testing
