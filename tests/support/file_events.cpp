#include "tests/support/file_events.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

namespace tributary::testing {

namespace {

std::string KeyText(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// The segment files of a topic directory in write order.
std::vector<std::filesystem::path> Segments(const std::filesystem::path& topic_dir) {
  std::vector<std::pair<std::string, std::filesystem::path>> segments;
  if (!std::filesystem::exists(topic_dir)) return {};
  for (const auto& entry : std::filesystem::directory_iterator(topic_dir)) {
    std::string name = entry.path().filename().string();
    if (name.ends_with(".jsonl")) {
      segments.emplace_back(name, entry.path());
    } else if (name.ends_with(".jsonl.inprogress")) {
      segments.emplace_back(name.substr(1), entry.path());  // sorts with its number
    }
  }
  std::sort(segments.begin(), segments.end());
  std::vector<std::filesystem::path> paths;
  for (auto& [name, path] : segments) paths.push_back(std::move(path));
  return paths;
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What grows while a sink writes under `dir`: how many files it holds, and the bytes of the
// in-progress segments (completed ones never change). Only those few are stat'ed: a crash test
// leaves thousands of segments, and this is polled every 50 ms beside the agent it waits for.
// Files vanish and appear meanwhile.
std::pair<uintmax_t, uintmax_t> OutputProgress(const std::filesystem::path& dir) {
  std::pair<uintmax_t, uintmax_t> progress;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    ++progress.first;
    if (!it->path().filename().string().ends_with(".jsonl.inprogress")) continue;
    std::error_code size_ec;
    const uintmax_t size = it->file_size(size_ec);
    if (!size_ec) progress.second += size;
  }
  return progress;
}

}  // namespace

std::optional<std::chrono::milliseconds> WaitForMarker(const std::filesystem::path& topic_dir,
                                                       int id, std::chrono::milliseconds stall) {
  const auto started = std::chrono::steady_clock::now();
  auto last_growth = started;
  std::pair<uintmax_t, uintmax_t> progress;
  while (true) {
    const auto last = LastTopicEvent(topic_dir);
    const auto now = std::chrono::steady_clock::now();
    if (last && (*last)["after"].is_object() && (*last)["after"]["id"] == id) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(now - started);
    }
    const auto now_progress = OutputProgress(topic_dir.parent_path());
    if (now_progress != progress) {
      progress = now_progress;
      last_growth = now;
    } else if (now - last_growth > stall) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::optional<nlohmann::json> LastTopicEvent(const std::filesystem::path& topic_dir) {
  const std::vector<std::filesystem::path> segments = Segments(topic_dir);
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    const std::string content = ReadAll(*it);
    const size_t end = content.rfind('\n');  // past it: a torn line of an open segment
    if (end == std::string::npos) continue;
    const size_t start = content.rfind('\n', end == 0 ? 0 : end - 1);
    const size_t from = start == std::string::npos || start == end ? 0 : start + 1;
    return nlohmann::json::parse(content.substr(from, end - from));
  }
  return std::nullopt;
}

std::vector<nlohmann::json> ReadTopicEvents(const std::filesystem::path& topic_dir) {
  std::vector<nlohmann::json> events;
  for (const auto& path : Segments(topic_dir)) {
    const std::string content = ReadAll(path);
    size_t start = 0;
    while (true) {
      size_t end = content.find('\n', start);
      if (end == std::string::npos) break;  // a torn last line of an open segment
      events.push_back(nlohmann::json::parse(content.substr(start, end - start)));
      start = end + 1;
    }
  }
  return events;
}

std::map<std::string, nlohmann::json> ReplayEvents(const std::vector<nlohmann::json>& events,
                                                   const std::string& key_column) {
  std::map<std::string, nlohmann::json> rows;
  for (const auto& event : events) {
    std::string op = event.at("op");
    if (op == "t") {
      rows.clear();
    } else if (op == "d") {
      rows.erase(KeyText(event.at("before").at(key_column)));
    } else if (op == "c" || op == "u" || op == "r") {
      const auto& after = event.at("after");
      if (op == "u" && !event.at("before").is_null()) {
        rows.erase(KeyText(event.at("before").at(key_column)));
      }
      rows[KeyText(after.at(key_column))] = after;
    } else {
      throw std::runtime_error("unexpected op " + op);
    }
  }
  return rows;
}

long FirstOutOfOrder(const std::vector<nlohmann::json>& events) {
  for (size_t i = 1; i < events.size(); ++i) {
    if (!(events[i - 1]["source"]["position"].get<std::string>() <
          events[i]["source"]["position"].get<std::string>())) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

}  // namespace tributary::testing
