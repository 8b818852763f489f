#include "agent/schemas_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <vector>

#include "agent/core/civil_date.h"
#include "agent/exit_codes.h"
#include "schema_registry/schema_registry.h"

namespace tributary {
namespace {

// "2024-05-01T12:34:56.789Z"
std::string UtcTime(int64_t ts_ms) {
  constexpr int64_t kDayMs = 86400000;
  int64_t days = ts_ms / kDayMs;
  int64_t ms_of_day = ts_ms % kDayMs;
  if (ms_of_day < 0) {
    ms_of_day += kDayMs;
    --days;
  }
  const CivilDate date = CivilFromDays(days);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", date.year, date.month, date.day,
                     ms_of_day / 3600000, ms_of_day / 60000 % 60, ms_of_day / 1000 % 60,
                     ms_of_day % 1000);
}

void PrintEntry(const SchemaHistoryEntry& entry, std::ostream& out) {
  const TableSchema& schema = *entry.schema;
  const std::string table = QualifiedTableName(schema);
  if (schema.dropped) {
    out << fmt::format("{} version {} DROPPED\n", table, schema.version);
  } else if (schema.previous_version == 0) {
    out << fmt::format("{} version {} (first)\n", table, schema.version);
  } else {
    out << fmt::format("{} version {} (previous {})\n", table, schema.version,
                       schema.previous_version);
  }
  if (!schema.dropped) {
    std::string compatible = schema.compatible ? "yes" : "NO";
    for (size_t i = 0; i < schema.problems.size(); ++i) {
      compatible += (i == 0 ? ": " : "; ") + schema.problems[i];
    }
    out << fmt::format("  compatible  {}\n", compatible);
  }
  out << fmt::format("  position    {}\n", entry.position);
  out << fmt::format("  time        {}\n", UtcTime(entry.ts_ms));
  if (schema.relation_id != 0) out << fmt::format("  relation    {}\n", schema.relation_id);
  if (!schema.ddl.empty()) out << fmt::format("  ddl         {}\n", schema.ddl);
  if (schema.columns.empty()) return;
  size_t name_width = 4;
  size_t type_width = 4;
  size_t canonical_width = 9;
  for (const ColumnSchema& column : schema.columns) {
    name_width = std::max(name_width, column.name.size());
    type_width = std::max(type_width, column.type_name.size());
    canonical_width = std::max(canonical_width, column.canonical_type.size());
  }
  out << "  columns\n";
  out << fmt::format("    {:<{}}  {:<{}}  {:<{}}  {:<8}  {}\n", "NAME", name_width, "TYPE",
                     type_width, "CANONICAL", canonical_width, "NULLABLE", "KEY");
  for (const ColumnSchema& column : schema.columns) {
    out << fmt::format("    {:<{}}  {:<{}}  {:<{}}  {:<8}  {}\n", column.name, name_width,
                       column.type_name, type_width, column.canonical_type, canonical_width,
                       column.nullable ? "yes" : "no", column.key ? "yes" : "no");
  }
}

}  // namespace

int PrintSchemas(const AgentConfig& config, const std::string& source, const std::string& table,
                 bool json, std::ostream& out, std::ostream& err) {
  if (!source.empty() && std::none_of(config.sources.begin(), config.sources.end(),
                                      [&](const SourceConfig& s) { return s.name == source; })) {
    err << "tributary: the config has no source named " << source << "\n";
    return kExitConfig;
  }
  int exit_code = kExitOk;
  bool table_found = false;
  bool first_block = true;
  for (const SourceConfig& source_config : config.sources) {
    if (!source.empty() && source_config.name != source) continue;
    const std::filesystem::path path =
        std::filesystem::path(config.state_dir) / source_config.name / "schemas.jsonl";
    // Read-only: the agent may be appending while this runs.
    Result<SchemaHistory> history = SchemaHistory::ReadOnly(path);
    if (!history.ok()) {
      err << "tributary: " << history.status().message() << "\n";
      exit_code = kExitContinuityLost;
      continue;
    }
    std::map<std::string, std::vector<const SchemaHistoryEntry*>> by_table;
    for (const SchemaHistoryEntry& entry : history->entries()) {
      const std::string name = QualifiedTableName(*entry.schema);
      if (table.empty() || name == table) by_table[name].push_back(&entry);
    }
    if (!by_table.empty()) table_found = true;
    if (json) {
      for (const auto& [name, entries] : by_table) {
        for (const SchemaHistoryEntry* entry : entries) out << SchemaHistoryLine(*entry) << "\n";
      }
      continue;
    }
    if (!table.empty() && by_table.empty()) continue;
    if (!first_block) out << "\n";
    first_block = false;
    out << fmt::format("source {} ({}): {}\n", source_config.name, source_config.type,
                       path.string());
    if (by_table.empty()) {
      out << "  no schema history yet\n";
      continue;
    }
    for (const auto& [name, entries] : by_table) {
      for (const SchemaHistoryEntry* entry : entries) {
        out << "\n";
        PrintEntry(*entry, out);
      }
    }
  }
  if (!table.empty() && !table_found && exit_code == kExitOk) {
    err << "tributary: no schema history of table " << table
        << (source.empty() ? std::string() : " in source " + source)
        << " (is it captured, and has the agent seen it yet?)\n";
    return kExitConfig;
  }
  return exit_code;
}

}  // namespace tributary
