#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "agent/core/status.h"

namespace tributary {

// A source's checkpoint: the last commit position every sink holds durably, kept in
// <state_dir>/<source>/checkpoint.json as {"source", "position", "saved_at"}.
class CheckpointStore {
 public:
  CheckpointStore(const std::filesystem::path& state_dir, std::string source);

  // The saved position, or nullopt when none was ever saved. A damaged file is kCorruptData,
  // never a silent restart from scratch.
  Result<std::optional<std::string>> Load();

  // Durably replaces the checkpoint: after a crash the file holds this position or the
  // previous one.
  Status Save(const std::string& position);

  const std::filesystem::path& path() const { return path_; }

 private:
  Status Corrupt(const std::string& problem) const;

  std::string source_;
  std::filesystem::path dir_;
  std::filesystem::path path_;
};

}  // namespace tributary
