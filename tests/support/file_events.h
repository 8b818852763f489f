#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tributary::testing {

// Every event of a file-sink topic directory, in write order: completed segments, then the
// in-progress one (only up to its last complete line).
std::vector<nlohmann::json> ReadTopicEvents(const std::filesystem::path& topic_dir);

// The last complete event of a file-sink topic directory, without parsing the others: for
// polling until a marker row arrives.
std::optional<nlohmann::json> LastTopicEvent(const std::filesystem::path& topic_dir);

// Replays c/u/r/d/t events into the table they describe, keyed by the text of `key_column`;
// each row is its `after` image dumped as JSON.
std::map<std::string, nlohmann::json> ReplayEvents(const std::vector<nlohmann::json>& events,
                                                   const std::string& key_column);

// Checks that source.position strictly increases; returns the first offending index or -1.
long FirstOutOfOrder(const std::vector<nlohmann::json>& events);

}  // namespace tributary::testing
