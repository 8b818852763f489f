#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// schema_compatibility: which changes a new version may make (docs/schemas.md).
//   backward: every row of the previous version is still a valid row of the new one
//   forward:  every row of the new version is a valid row of the previous one
//   full:     both; none: nothing is checked
enum class CompatibilityMode { kNone, kBackward, kForward, kFull };
enum class OnIncompatible { kWarn, kFail };

struct SchemaPolicy {
  CompatibilityMode mode = CompatibilityMode::kBackward;
  OnIncompatible on_incompatible = OnIncompatible::kWarn;
};

// "schema.table" (PostgreSQL) or "db.table" (MySQL): the name versions are kept under.
std::string QualifiedTableName(const TableSchema& schema);

// Lowercase hex SHA-256 over what makes a version: each column's name, canonical type,
// nullability, position and key membership, plus the relation id. Not the DDL text, the
// source type names or the version fields.
std::string SchemaFingerprint(const TableSchema& schema);

// Each problem names the column and the change, e.g. "column email dropped",
// "column id narrowed from int64 to int32", "primary key changed from (id) to (id, region)".
// Empty when `next` is compatible with `previous` under `mode`.
std::vector<std::string> CompatibilityProblems(const TableSchema& previous, const TableSchema& next,
                                               CompatibilityMode mode);

// One line of the history: a table's version, or its drop (schema->dropped).
struct SchemaHistoryEntry {
  // version, previous_version, compatible, problems, ddl, dropped set
  std::shared_ptr<const TableSchema> schema;
  std::string fingerprint;
  std::string position;  // source.position of the first event of this version (or the drop)
  int64_t ts_ms = 0;     // source commit time of that event
};

// <state_dir>/<source>/schemas.jsonl: one JSON object a line, append-only; each append is
// fsynced before it returns. Read back in full at open.
class SchemaHistory {
 public:
  // A missing file is an empty history. A final line without its newline is an append the
  // agent died during (never acknowledged, so no event of it was delivered): it is cut off
  // with a warning. Anything else that does not parse or breaks the version sequence is
  // CorruptData naming the file and line; it is never reset silently.
  static Result<SchemaHistory> Open(std::filesystem::path path);

  // Reads without repairing anything, for `tributary schemas` beside a running agent: a final
  // line without its newline may be an append in progress, so it is skipped, not cut off.
  static Result<SchemaHistory> ReadOnly(std::filesystem::path path);

  Status Append(SchemaHistoryEntry entry);

  const std::vector<SchemaHistoryEntry>& entries() const { return entries_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit SchemaHistory(std::filesystem::path path) : path_(std::move(path)) {}
  static Result<SchemaHistory> Load(std::filesystem::path path, bool repair);
  // Whether `entry` continues its table's version sequence (docs/schemas.md); empty if it does.
  std::string SequenceProblem(const SchemaHistoryEntry& entry) const;
  void Add(SchemaHistoryEntry entry);

  std::filesystem::path path_;
  std::vector<SchemaHistoryEntry> entries_;
  std::map<std::string, uint32_t, std::less<>> last_version_;  // per table
};

// One line of the history file for `entry`, without its newline.
std::string SchemaHistoryLine(const SchemaHistoryEntry& entry);

// Versions per table for one source, persisted in its SchemaHistory.
class SchemaRegistry {
 public:
  static Result<std::unique_ptr<SchemaRegistry>> Open(const std::filesystem::path& state_dir,
                                                      const std::string& source,
                                                      SchemaPolicy policy);

  struct Resolution {
    std::shared_ptr<const TableSchema> schema;  // the registered copy: version fields set
    // The schema-change event for this version must (again) precede the row at `position`:
    // the version was just registered, or `position` is not past where it took effect
    // (a replay after a restart, when its schema-change event may not have been delivered).
    bool announce = false;
  };

  // Gives `observed` (as the source built it) its version, as of the event at `position`:
  // the version in effect at `position` or the latest version when the fingerprint matches
  // either, else a new version (max + 1) checked against the previous one and appended to the
  // history before this returns. An incompatible change under on_incompatible: fail is
  // IncompatibleSchema, naming the table, the problems and how to accept the change, and is
  // not recorded.
  Result<Resolution> Resolve(const TableSchema& observed, std::string_view position, int64_t ts_ms);

  // Records that the table is gone (its next appearance starts a new version). Returns the
  // registered drop record (dropped set, version = the table's last version).
  Result<std::shared_ptr<const TableSchema>> RecordDrop(const TableSchema& dropped,
                                                        std::string_view position, int64_t ts_ms);

  const SchemaHistory& history() const { return history_; }

 private:
  SchemaRegistry(SchemaHistory history, SchemaPolicy policy);
  SchemaHistory history_;
  SchemaPolicy policy_;
  std::map<std::string, std::vector<size_t>, std::less<>> by_table_;  // entries per table
};

}  // namespace tributary
