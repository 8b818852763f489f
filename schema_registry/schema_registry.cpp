#include "schema_registry/schema_registry.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <utility>

namespace tributary {
namespace {

const char* ModeName(CompatibilityMode mode) {
  switch (mode) {
    case CompatibilityMode::kNone:
      return "none";
    case CompatibilityMode::kBackward:
      return "backward";
    case CompatibilityMode::kForward:
      return "forward";
    case CompatibilityMode::kFull:
      return "full";
  }
  return "?";
}

// Whether the two have the same fingerprint, without hashing: exactly what it covers.
bool SameShape(const TableSchema& a, const TableSchema& b) {
  if (a.relation_id != b.relation_id || a.columns.size() != b.columns.size()) return false;
  for (size_t i = 0; i < a.columns.size(); ++i) {
    const ColumnSchema& x = a.columns[i];
    const ColumnSchema& y = b.columns[i];
    if (x.name != y.name || x.canonical_type != y.canonical_type || x.nullable != y.nullable ||
        x.key != y.key) {
      return false;
    }
    // Without a canonical type the fingerprint falls back to the source's type name.
    if (x.canonical_type.empty() && x.type_name != y.type_name) return false;
  }
  return true;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string text;
  for (const std::string& part : parts) {
    if (!text.empty()) text += "; ";
    text += part;
  }
  return text;
}

}  // namespace

SchemaRegistry::SchemaRegistry(SchemaHistory history, SchemaPolicy policy)
    : history_(std::move(history)), policy_(policy) {
  for (size_t i = 0; i < history_.entries().size(); ++i) {
    by_table_[QualifiedTableName(*history_.entries()[i].schema)].push_back(i);
  }
}

Result<std::unique_ptr<SchemaRegistry>> SchemaRegistry::Open(const std::filesystem::path& state_dir,
                                                             const std::string& source,
                                                             SchemaPolicy policy) {
  ASSIGN_OR_RETURN(SchemaHistory history,
                   SchemaHistory::Open(state_dir / source / "schemas.jsonl"));
  return std::unique_ptr<SchemaRegistry>(new SchemaRegistry(std::move(history), policy));
}

Result<SchemaRegistry::Resolution> SchemaRegistry::Resolve(const TableSchema& observed,
                                                           std::string_view position,
                                                           int64_t ts_ms) {
  const std::string table = QualifiedTableName(observed);
  const std::vector<SchemaHistoryEntry>& entries = history_.entries();
  // The version in effect at `position`: the newest record at or before it, unless that is a
  // drop (then none is).
  const SchemaHistoryEntry* in_effect = nullptr;
  bool in_effect_found = false;
  const SchemaHistoryEntry* latest = nullptr;  // the newest version
  const SchemaHistoryEntry* last = nullptr;    // the newest record, version or drop
  auto indexes = by_table_.find(table);
  if (indexes != by_table_.end()) {
    last = &entries[indexes->second.back()];
    for (auto it = indexes->second.rbegin(); it != indexes->second.rend(); ++it) {
      const SchemaHistoryEntry& entry = entries[*it];
      if (!in_effect_found && entry.position <= position) {
        in_effect_found = true;
        if (!entry.schema->dropped) in_effect = &entry;
      }
      if (latest == nullptr && !entry.schema->dropped) latest = &entry;
      if (in_effect_found && latest != nullptr) break;
    }
  }

  std::optional<std::string> fingerprint;
  auto matches = [&](const SchemaHistoryEntry& entry) {
    if (SameShape(*entry.schema, observed)) return true;
    // The stored copy may differ in bytes the history file cannot hold (non-UTF-8 names);
    // the fingerprint was taken from the original.
    if (!fingerprint) fingerprint = SchemaFingerprint(observed);
    return *fingerprint == entry.fingerprint;
  };
  if (in_effect != nullptr && matches(*in_effect)) {
    return Resolution{in_effect->schema, position <= in_effect->position};
  }
  if (latest != nullptr && !last->schema->dropped && matches(*latest)) {
    return Resolution{latest->schema, position <= latest->position};
  }

  auto registered = std::make_shared<TableSchema>(observed);
  registered->dropped = false;
  registered->previous_version = last == nullptr ? 0 : last->schema->version;
  registered->version = registered->previous_version + 1;
  // After a drop the table is compared with its last version before the drop.
  registered->problems = latest == nullptr
                             ? std::vector<std::string>()
                             : CompatibilityProblems(*latest->schema, observed, policy_.mode);
  registered->compatible = registered->problems.empty();
  if (!registered->compatible) {
    if (policy_.on_incompatible == OnIncompatible::kFail) {
      return Status::IncompatibleSchema(fmt::format(
          "source {}: table {} changed from version {} to {} incompatibly under "
          "schema_compatibility: {}: {}. Nothing was recorded in {}. To accept the change, set "
          "on_incompatible: warn (or schema_compatibility: none) for this source and restart; "
          "the change is then recorded as incompatible",
          observed.source, table, registered->previous_version, registered->version,
          ModeName(policy_.mode), Join(registered->problems), history_.path().string()));
    }
    spdlog::warn(
        "schema_registry: Incompatible schema change source={} table={} previous_version={} "
        "version={} schema_compatibility={} problems=\"{}\"",
        observed.source, table, registered->previous_version, registered->version,
        ModeName(policy_.mode), Join(registered->problems));
  } else {
    spdlog::info("schema_registry: New schema version source={} table={} version={}",
                 observed.source, table, registered->version);
  }
  if (!fingerprint) fingerprint = SchemaFingerprint(observed);
  std::shared_ptr<const TableSchema> schema = std::move(registered);
  RETURN_IF_ERROR(history_.Append(
      SchemaHistoryEntry{schema, std::move(*fingerprint), std::string(position), ts_ms}));
  by_table_[table].push_back(history_.entries().size() - 1);
  return Resolution{std::move(schema), true};
}

Result<std::shared_ptr<const TableSchema>> SchemaRegistry::RecordDrop(const TableSchema& dropped,
                                                                      std::string_view position,
                                                                      int64_t ts_ms) {
  const std::string table = QualifiedTableName(dropped);
  const std::vector<SchemaHistoryEntry>& entries = history_.entries();
  const SchemaHistoryEntry* last = nullptr;
  auto indexes = by_table_.find(table);
  if (indexes != by_table_.end()) {
    // A replayed drop is the one already recorded at its position.
    for (size_t index : indexes->second) {
      const SchemaHistoryEntry& entry = entries[index];
      if (entry.schema->dropped && entry.position == position) return entry.schema;
    }
    last = &entries[indexes->second.back()];
  }
  auto registered = std::make_shared<TableSchema>(dropped);
  registered->dropped = true;
  // The drop carries the version that is gone (0 for a table never seen with a version).
  registered->version = last == nullptr ? 0 : last->schema->version;
  registered->previous_version = last == nullptr ? 0 : last->schema->previous_version;
  registered->compatible = true;
  registered->problems.clear();
  spdlog::info("schema_registry: Table dropped source={} table={} version={}", dropped.source,
               table, registered->version);
  std::string fingerprint = SchemaFingerprint(*registered);
  std::shared_ptr<const TableSchema> schema = std::move(registered);
  RETURN_IF_ERROR(history_.Append(
      SchemaHistoryEntry{schema, std::move(fingerprint), std::string(position), ts_ms}));
  by_table_[table].push_back(history_.entries().size() - 1);
  return schema;
}

}  // namespace tributary
