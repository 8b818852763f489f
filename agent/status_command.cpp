#include "agent/status_command.h"

#include <fmt/format.h>
#include <httplib.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/checkpoint_store.h"
#include "agent/exit_codes.h"

namespace tributary {

namespace {

// The running agent's /status by source name; empty when it does not answer.
std::map<std::string, nlohmann::json> LiveStatus(const HttpConfig& http, std::string& note) {
  httplib::Client client(http.host, http.port);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(5));
  const std::string where = fmt::format("http://{}:{}/status", http.host, http.port);
  auto response = client.Get("/status");
  if (!response || response->status != 200) {
    note = "agent: not answering at " + where + " (not running?)";
    return {};
  }
  std::map<std::string, nlohmann::json> by_name;
  const auto doc = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc["sources"].is_array()) {
    note = "agent: unexpected answer from " + where;
    return {};
  }
  for (const auto& source : doc["sources"]) by_name[source.value("name", "")] = source;
  note = "agent: running, version " + doc.value("version", "?") + ", live state from " + where;
  return by_name;
}

// "512B", "3.4KiB", "12.0MiB", "1.5GiB".
std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{}B", bytes);
  double value = static_cast<double>(bytes) / 1024;
  const char* unit = "KiB";
  for (const char* next : {"MiB", "GiB", "TiB"}) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return fmt::format("{:.1f}{}", value, unit);
}

std::string SavedAt(const std::filesystem::path& path) {
  std::ifstream in(path);
  const auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return doc.is_object() && doc["saved_at"].is_string() ? doc["saved_at"].get<std::string>() : "";
}

}  // namespace

int PrintStatus(const AgentConfig& config, std::ostream& out) {
  std::string note = "agent: no http endpoint configured; showing the state dir only";
  std::map<std::string, nlohmann::json> live;
  if (config.http) live = LiveStatus(*config.http, note);
  out << note << "\n";
  int exit_code = kExitOk;
  out << fmt::format("{:<20} {:<9} {:<14} {:>10} {:>10}  {:<34} {}\n", "SOURCE", "TYPE", "STATE",
                     "LAG", "SLOT_LAG", "CHECKPOINT", "SAVED_AT");
  for (const SourceConfig& source : config.sources) {
    CheckpointStore store(config.state_dir, source.name);
    Result<std::optional<std::string>> checkpoint = store.Load();
    std::string position = "none";
    std::string saved_at;
    if (!checkpoint.ok()) {
      position = "DAMAGED: " + checkpoint.status().message();
      exit_code = kExitContinuityLost;
    } else if (*checkpoint) {
      position = **checkpoint;
      saved_at = SavedAt(store.path());
    }
    std::string state = "-";
    std::string lag = "-";
    std::string slot_lag = "-";
    if (auto it = live.find(source.name); it != live.end()) {
      state = it->second.value("state", "?");
      if (it->second["lag_seconds"].is_number()) {
        lag = fmt::format("{:.3f}s", it->second["lag_seconds"].get<double>());
      }
      if (it->second["slot_lag_bytes"].is_number_unsigned()) {
        slot_lag = HumanBytes(it->second["slot_lag_bytes"].get<uint64_t>());
      }
    } else if (!live.empty()) {
      state = "not running";
    }
    out << fmt::format("{:<20} {:<9} {:<14} {:>10} {:>10}  {:<34} {}\n", source.name, source.type,
                       state, lag, slot_lag, position, saved_at);
  }
  return exit_code;
}

}  // namespace tributary
