#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "agent/core/status.h"

namespace tributary {

// A source's checkpoint: the last commit position every sink holds durably, kept in
// <state_dir>/<source>/checkpoint.json as {"source", "position", "saved_at", "lineage"};
// "position" is absent until the first one, while the file holds the lineage alone.
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
  // never a silent restart from scratch. Sets lineage(): the file's, or a new one without a
  // file.
  Result<std::optional<std::string>> Load();

  // Durably replaces the checkpoint: after a crash the file holds this position or the
  // previous one.
  Status Save(const std::string& position);

  const std::filesystem::path& path() const { return path_; }
  // The lineage Save writes, as Load set it.
  const std::string& lineage() const { return lineage_; }
  // Draws a new lineage, for positions that do not continue the checkpoint's.
  void StartNewLineage();
  // After a Load that found no file: saves the new lineage alone, before the source writes
  // anything, so that a crash before the first Save resumes in that lineage (sinks drop what
  // they already hold) instead of starting another. Moving the file away still starts over.
  Status SaveLineage();

 private:
  Status Corrupt(const std::string& problem) const;

  std::string source_;
  std::filesystem::path dir_;
  std::filesystem::path path_;
  Status Write(const std::optional<std::string>& position);

  std::string lineage_;
  bool lineage_saved_ = false;  // the file holds lineage_
};

}  // namespace tributary
