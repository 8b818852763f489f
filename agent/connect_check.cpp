#include "agent/connect_check.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>

#include "agent/components.h"
#include "connectors/mysql/mysql_connection.h"
#include "connectors/postgres/pg_connection.h"
#include "sinks/kafka/kafka_check.h"

namespace tributary {

namespace {

using mysql::MysqlConnection;
using mysql::MysqlRows;
using postgres::PgConnection;
using postgres::TextRows;

// How long a Kafka sink's brokers get to answer.
constexpr std::chrono::seconds kKafkaTimeout{10};

bool Matches(const std::string& glob, const std::string& name) {
  return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

bool Captured(const SourceConfig& source, const std::string& name) {
  return std::any_of(source.tables.begin(), source.tables.end(),
                     [&](const std::string& g) { return Matches(g, name); }) &&
         std::none_of(source.exclude_tables.begin(), source.exclude_tables.end(),
                      [&](const std::string& g) { return Matches(g, name); });
}

// One catalog table as the check sees it.
struct CatalogTable {
  std::string database;
  std::string schema;  // empty for MySQL
  std::string table;
  bool has_key = false;          // a primary key
  std::string replica_identity;  // PostgreSQL's relreplident
};

std::string QualifiedName(const CatalogTable& t) {
  return (t.schema.empty() ? t.database : t.schema) + "." + t.table;
}

// Reports each include glob that matches no table, and returns the tables the source captures.
std::vector<CatalogTable> MatchTables(const SourceConfig& source, const std::string& path,
                                      const std::vector<CatalogTable>& catalog,
                                      ConnectReport& report) {
  std::vector<CatalogTable> captured;
  for (const CatalogTable& table : catalog) {
    if (Captured(source, QualifiedName(table))) captured.push_back(table);
  }
  for (size_t i = 0; i < source.tables.size(); ++i) {
    const std::string& glob = source.tables[i];
    if (std::none_of(captured.begin(), captured.end(),
                     [&](const CatalogTable& t) { return Matches(glob, QualifiedName(t)); })) {
      report.problems.push_back(
          fmt::format("{}.tables[{}]: \"{}\" matches no table", path, i, glob));
    }
  }
  return captured;
}

// "sources[i].tables[j]" for the first include glob that captures `table`.
std::string TablePath(const SourceConfig& source, const std::string& path,
                      const CatalogTable& table) {
  const std::string name = QualifiedName(table);
  for (size_t i = 0; i < source.tables.size(); ++i) {
    if (Matches(source.tables[i], name)) return fmt::format("{}.tables[{}]", path, i);
  }
  return path + ".tables";
}

TableSchema TopicTable(const SourceConfig& source, const CatalogTable& table) {
  TableSchema schema;
  schema.source = source.name;
  schema.database = table.database;
  schema.schema = table.schema;
  schema.table = table.table;
  return schema;
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

std::vector<CatalogTable> CheckPostgres(const SourceConfig& source, const std::string& path,
                                        ConnectReport& report) {
  auto& problems = report.problems;
  Result<PgConnection> opened = PgConnection::Open(source.dsn, PgConnection::Mode::kNormal);
  if (!opened.ok()) {
    problems.push_back(path + ".dsn: " + opened.status().message());
    return {};
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
      "SELECT current_database(), n.nspname, c.relname, c.relreplident, "
      "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
      "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
      "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 2, 3");
  if (!tables.ok()) {
    problems.push_back(path + ": " + tables.status().message());
    return {};
  }
  std::vector<CatalogTable> catalog;
  for (const auto& row : *tables) {
    catalog.push_back({.database = row[0],
                       .schema = row[1],
                       .table = row[2],
                       .has_key = row[4] == "t",
                       .replica_identity = row[3]});
  }
  std::vector<CatalogTable> captured = MatchTables(source, path, catalog, report);
  for (const CatalogTable& table : captured) {
    // UPDATE and DELETE fail on the primary for such a table once it is published.
    if (table.replica_identity == "n" || (table.replica_identity == "d" && !table.has_key)) {
      problems.push_back(
          fmt::format("{}: table {} has no replica identity (no primary key, or REPLICA IDENTITY "
                      "NOTHING); add a primary key or set REPLICA IDENTITY FULL",
                      TablePath(source, path, table), QualifiedName(table)));
    }
  }
  return captured;
}

// The first row of a MySQL query, or the problem it ran into.
std::optional<std::vector<std::string>> FirstRow(MysqlConnection& conn, const std::string& sql,
                                                 const std::string& path, ConnectReport& report) {
  Result<MysqlRows> rows = conn.Query(sql);
  if (!rows.ok()) {
    report.problems.push_back(path + ": " + rows.status().message());
    return std::nullopt;
  }
  std::vector<std::string> out;
  if (!rows->empty()) {
    for (const auto& value : rows->front()) out.push_back(value.value_or(""));
  }
  return out;
}

std::vector<CatalogTable> CheckMysql(const SourceConfig& source, const std::string& path,
                                     ConnectReport& report) {
  auto& problems = report.problems;
  Result<mysql::MysqlDsn> dsn = mysql::ParseMysqlDsn(source.dsn);
  if (!dsn.ok()) {
    problems.push_back(path + ".dsn: " + dsn.status().message());
    return {};
  }
  Result<MysqlConnection> opened = MysqlConnection::Open(*dsn, 30);
  if (!opened.ok()) {
    problems.push_back(path + ".dsn: " + opened.status().message());
    return {};
  }
  MysqlConnection conn = std::move(opened).value();
  auto server = FirstRow(conn,
                         "SELECT @@version, @@global.log_bin, @@global.binlog_format, "
                         "@@global.binlog_row_image, @@server_id",
                         path, report);
  if (!server || server->size() < 5) return {};
  const std::string& version = (*server)[0];
  const bool mariadb = version.find("MariaDB") != std::string::npos;
  auto require = [&](std::string_view setting, const std::string& have, std::string_view want) {
    if (have == want) return;
    problems.push_back(fmt::format(
        "{}: the server has {}={}; change data capture needs {}={} (set it in the server's "
        "config and restart it)",
        path, setting, have, setting, want));
  };
  require("log_bin", (*server)[1] == "1" ? "ON" : "OFF", "ON");
  require("binlog_format", (*server)[2], "ROW");
  require("binlog_row_image", (*server)[3], "FULL");
  if (Result<MysqlRows> metadata = conn.Query("SELECT @@global.binlog_row_metadata");
      !metadata.ok()) {
    problems.push_back(fmt::format(
        "{}: the server ({}) has no binlog_row_metadata setting; change data capture needs "
        "binlog_row_metadata=FULL (MariaDB 10.5+, MySQL 8.0.1+)",
        path, version));
  } else {
    require("binlog_row_metadata", metadata->at(0).at(0).value_or(""), "FULL");
  }
  if (!mariadb) {
    if (Result<MysqlRows> compression =
            conn.Query("SELECT @@global.binlog_transaction_compression");
        compression.ok()) {
      require("binlog_transaction_compression",
              compression->at(0).at(0).value_or("") == "1" ? "ON" : "OFF", "OFF");
    }
    if (source.snapshot == "initial") {
      problems.push_back(fmt::format(
          "{}.snapshot: snapshot: initial needs MariaDB (binlog_snapshot_file); this server is "
          "{}: set `snapshot: never`",
          path, version));
    }
  }
  if (std::to_string(source.server_id) == (*server)[4]) {
    problems.push_back(
        fmt::format("{}.server_id: {} is the server's own server_id; pick an id that neither the "
                    "server nor any of its replicas uses",
                    path, source.server_id));
  }

  // The binlog stream needs REPLICATION SLAVE; finding where to start needs the binlog list.
  Result<MysqlRows> grants = conn.Query("SHOW GRANTS");
  if (grants.ok()) {
    std::string text;
    for (const auto& row : *grants) text += row.at(0).value_or("") + "\n";
    const bool all = text.find("GRANT ALL PRIVILEGES ON *.*") != std::string::npos;
    if (!all && text.find("REPLICATION SLAVE") == std::string::npos &&
        text.find("REPLICATION REPLICA") == std::string::npos) {
      problems.push_back(
          fmt::format("{}: the user {} lacks the REPLICATION SLAVE privilege (GRANT REPLICATION "
                      "SLAVE ON *.* TO …)",
                      path, dsn->user));
    }
  }
  if (Result<MysqlRows> logs = conn.Query("SHOW BINARY LOGS"); !logs.ok()) {
    problems.push_back(fmt::format(
        "{}: SHOW BINARY LOGS fails: the user needs BINLOG MONITOR (MariaDB) or REPLICATION "
        "CLIENT (MySQL) ({})",
        path, logs.status().message()));
  }
  if (Result<MysqlRows> expiry = conn.Query("SELECT @@global.binlog_expire_logs_seconds");
      expiry.ok()) {
    const std::string seconds = expiry->at(0).at(0).value_or("0");
    report.notes.push_back(
        seconds == "0"
            ? fmt::format("{}: binlogs are kept until purged (binlog_expire_logs_seconds=0)", path)
            : fmt::format("{}: binlogs expire after {} s (binlog_expire_logs_seconds): an agent "
                          "stopped longer than that must re-snapshot",
                          path, seconds));
  }

  Result<MysqlRows> tables = conn.Query(
      "SELECT t.table_schema, t.table_name, EXISTS (SELECT 1 FROM "
      "information_schema.table_constraints c WHERE c.table_schema = t.table_schema AND "
      "c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY') "
      "FROM information_schema.tables t WHERE t.table_type = 'BASE TABLE' AND t.table_schema "
      "NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1, 2");
  if (!tables.ok()) {
    problems.push_back(path + ": " + tables.status().message());
    return {};
  }
  std::vector<CatalogTable> catalog;
  for (const auto& row : *tables) {
    catalog.push_back({.database = row.at(0).value_or(""),
                       .schema = "",
                       .table = row.at(1).value_or(""),
                       .has_key = row.at(2).value_or("0") == "1",
                       .replica_identity = ""});
  }
  std::vector<CatalogTable> captured = MatchTables(source, path, catalog, report);
  for (const CatalogTable& table : captured) {
    if (!table.has_key) {
      report.notes.push_back(fmt::format(
          "{}: table {} has no primary key: its events carry no key, and its snapshot reads it "
          "whole",
          TablePath(source, path, table), QualifiedName(table)));
    }
  }
  return captured;
}

void CheckFileSink(const SinkConfig& sink, const std::string& path, ConnectReport& report) {
  // The sink creates missing directories: what matters is the nearest existing one.
  std::filesystem::path dir = sink.path;
  std::error_code ec;
  while (!std::filesystem::exists(dir, ec) && dir.has_parent_path() && dir != dir.parent_path()) {
    dir = dir.parent_path();
  }
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    report.problems.push_back(
        fmt::format("{}.path: {} is not writable by this user", path, dir.string()));
  }
}

}  // namespace

ConnectReport CheckConnections(const AgentConfig& config) {
  ConnectReport report;
  // The tables each sink will get events of, for the topics a Kafka sink writes.
  std::map<std::string, std::vector<TableSchema>> tables_by_sink;
  // Topics of a source rather than of a table: transaction metadata, logical decoding messages.
  std::map<std::string, std::vector<std::string>> source_topics_by_sink;
  for (size_t i = 0; i < config.sources.size(); ++i) {
    const SourceConfig& source = config.sources[i];
    const std::string path = fmt::format("sources[{}]", i);
    std::vector<CatalogTable> captured;
    if (source.type == "postgres") {
      captured = CheckPostgres(source, path, report);
    } else if (source.type == "mysql") {
      captured = CheckMysql(source, path, report);
    }
    for (const std::string& sink : source.sinks) {
      for (const CatalogTable& table : captured) {
        tables_by_sink[sink].push_back(TopicTable(source, table));
      }
      if (source.transaction_metadata)
        source_topics_by_sink[sink].push_back(source.name + ".transaction");
      if (!source.logical_messages.empty())
        source_topics_by_sink[sink].push_back(source.name + ".message");
    }
  }
  for (size_t i = 0; i < config.sinks.size(); ++i) {
    const SinkConfig& sink = config.sinks[i];
    const std::string path = fmt::format("sinks[{}]", i);
    if (sink.type == "file") {
      CheckFileSink(sink, path, report);
    } else if (sink.type == "kafka") {
      KafkaClusterReport kafka =
          CheckKafkaCluster(KafkaOptionsFor(sink), tables_by_sink[sink.name],
                            source_topics_by_sink[sink.name], path, kKafkaTimeout);
      report.problems.insert(report.problems.end(), kafka.problems.begin(), kafka.problems.end());
      report.notes.insert(report.notes.end(), kafka.notes.begin(), kafka.notes.end());
    }
  }
  return report;
}

}  // namespace tributary
