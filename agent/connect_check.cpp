#include "agent/connect_check.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "connectors/postgres/pg_connection.h"

namespace tributary {

namespace {

using postgres::PgConnection;
using postgres::TextRows;

bool Matches(const std::string& glob, const std::string& name) {
  return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

// One query's first value, or the problem it ran into.
std::optional<std::string> Value(PgConnection& conn, const std::string& sql,
                                 std::vector<std::string>& problems, const std::string& path) {
  Result<TextRows> rows = conn.Query(sql);
  if (!rows.ok()) {
    problems.push_back(path + ": " + rows.status().message());
    return std::nullopt;
  }
  if (rows->empty() || rows->front().empty()) return std::string();
  return rows->front().front();
}

void CheckPostgres(const SourceConfig& source, const std::string& path, ConnectReport& report) {
  auto& problems = report.problems;
  Result<PgConnection> opened = PgConnection::Open(source.dsn, PgConnection::Mode::kNormal);
  if (!opened.ok()) {
    problems.push_back(path + ".dsn: " + opened.status().message());
    return;
  }
  PgConnection conn = std::move(opened).value();
  if (auto level = Value(conn, "SHOW wal_level", problems, path); level && *level != "logical") {
    problems.push_back(fmt::format(
        "{}: the server has wal_level={}; logical decoding needs wal_level=logical (set it in "
        "postgresql.conf and restart the server)",
        path, *level));
  }
  if (auto can = Value(conn,
                       "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = "
                       "current_user",
                       problems, path);
      can && *can != "t") {
    problems.push_back(path +
                       ": the role lacks the REPLICATION attribute (ALTER ROLE … REPLICATION)");
  }
  const std::string slot = conn.QuoteLiteral(source.slot);
  auto slot_exists = Value(
      conn, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = " + slot, problems, path);
  auto free_slots = Value(conn,
                          "SELECT current_setting('max_replication_slots')::int - "
                          "(SELECT count(*) FROM pg_replication_slots)",
                          problems, path);
  if (slot_exists && *slot_exists == "0" && free_slots && std::stoi(*free_slots) <= 0) {
    problems.push_back(path + ".slot: slot " + source.slot +
                       " does not exist and max_replication_slots is used up");
  } else if (slot_exists) {
    report.notes.push_back(fmt::format("{}.slot: {} {}", path, source.slot,
                                       *slot_exists == "0" ? "will be created" : "exists"));
  }

  Result<TextRows> tables = conn.Query(
      "SELECT n.nspname, c.relname, c.relreplident, "
      "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
      "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
      "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2");
  if (!tables.ok()) {
    problems.push_back(path + ": " + tables.status().message());
    return;
  }
  for (size_t i = 0; i < source.tables.size(); ++i) {
    const std::string& glob = source.tables[i];
    bool any = false;
    for (const auto& row : *tables) {
      const std::string name = row[0] + "." + row[1];
      if (!Matches(glob, name)) continue;
      if (std::any_of(source.exclude_tables.begin(), source.exclude_tables.end(),
                      [&](const std::string& g) { return Matches(g, name); })) {
        continue;
      }
      any = true;
      // UPDATE and DELETE fail on the primary for such a table once it is published.
      if (row[2] == "n" || (row[2] == "d" && row[3] != "t")) {
        problems.push_back(fmt::format(
            "{}.tables[{}]: table {} has no replica identity (no primary key, or REPLICA "
            "IDENTITY NOTHING); add a primary key or set REPLICA IDENTITY FULL",
            path, i, name));
      }
    }
    if (!any) {
      problems.push_back(fmt::format("{}.tables[{}]: \"{}\" matches no table", path, i, glob));
    }
  }
}

}  // namespace

ConnectReport CheckConnections(const AgentConfig& config) {
  ConnectReport report;
  for (size_t i = 0; i < config.sources.size(); ++i) {
    const SourceConfig& source = config.sources[i];
    const std::string path = fmt::format("sources[{}]", i);
    if (source.type == "postgres") {
      CheckPostgres(source, path, report);
    } else {
      report.notes.push_back(
          fmt::format("{}: --connect does not check type {} yet", path, source.type));
    }
  }
  for (size_t i = 0; i < config.sinks.size(); ++i) {
    if (config.sinks[i].type == "file") {
      // The sink creates missing directories: what matters is the nearest existing one.
      std::filesystem::path dir = config.sinks[i].path;
      std::error_code ec;
      while (!std::filesystem::exists(dir, ec) && dir.has_parent_path() &&
             dir != dir.parent_path()) {
        dir = dir.parent_path();
      }
      if (access(dir.c_str(), W_OK | X_OK) != 0) {
        report.problems.push_back(
            fmt::format("sinks[{}].path: {} is not writable by this user", i, dir.string()));
      }
    } else {
      report.notes.push_back(
          fmt::format("sinks[{}]: --connect does not check type {} yet", i, config.sinks[i].type));
    }
  }
  return report;
}

}  // namespace tributary
