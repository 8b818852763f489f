#pragma once

#include <chrono>
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

// Waits until the last event of `topic_dir` inserts the row whose `id` is `id` (a marker
// committed after a workload) and returns how long that took. Gives up (nullopt) only once the
// sink's output (the parent of `topic_dir`: no new segment, no in-progress segment grown) has not
// changed for `stall`: how long a backlog takes depends on the machine's fsync latency, which
// tiny segments make the bottleneck, not on the agent being stuck.
std::optional<std::chrono::milliseconds> WaitForMarker(const std::filesystem::path& topic_dir,
                                                       int id, std::chrono::milliseconds stall);

// Replays c/u/r/d/t events into the table they describe, keyed by the text of `key_column`;
// each row is its `after` image dumped as JSON.
std::map<std::string, nlohmann::json> ReplayEvents(const std::vector<nlohmann::json>& events,
                                                   const std::string& key_column);

// Checks that source.position strictly increases; returns the first offending index or -1.
long FirstOutOfOrder(const std::vector<nlohmann::json>& events);

}  // namespace tributary::testing
