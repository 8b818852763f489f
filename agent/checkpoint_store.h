#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "agent/core/status.h"

namespace tributary {

// A source's checkpoint: the last commit position every sink holds durably, kept in
// <state_dir>/<source>/checkpoint.json as {"source", "position", "saved_at", "lineage"}.
//
// The lineage names the history of checkpoints a position belongs to: a random id drawn when
// the source starts without a checkpoint, kept by every checkpoint after. Positions of two
// lineages do not compare (a new slot, or a server restored from a backup, may number its
// changes below an earlier lineage's), so sinks skip replays only within one. Checkpoints
// written before lineages came in have none ("").
class CheckpointStore {
 public:
  CheckpointStore(const std::filesystem::path& state_dir, std::string source);

  // The saved position, or nullopt when none was ever saved. A damaged file is kCorruptData,
  // never a silent restart from scratch. Sets lineage(): the checkpoint's, or when there is
  // none a new one, kept for this store's life (a reconnect before the first Save replays the
  // same lineage).
  Result<std::optional<std::string>> Load();

  // Durably replaces the checkpoint: after a crash the file holds this position or the
  // previous one.
  Status Save(const std::string& position);

  const std::filesystem::path& path() const { return path_; }
  // The lineage Save writes, as Load set it.
  const std::string& lineage() const { return lineage_; }
  // Draws a new lineage, for positions that do not continue the checkpoint's.
  void StartNewLineage();

 private:
  Status Corrupt(const std::string& problem) const;

  std::string source_;
  std::filesystem::path dir_;
  std::filesystem::path path_;
  std::string lineage_;
};

}  // namespace tributary
