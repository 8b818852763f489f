#include "connectors/mysql/mysql_source.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <ma_pvio.h>
#include <mariadb_rpl.h>
#include <mysqld_error.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <iterator>

#include "agent/core/clock.h"
#include "agent/core/logging.h"
#include "connectors/mysql/ddl_tables.h"

namespace tributary::mysql {

namespace {

// With events in hand, how long a pause in the stream may last before the batch is handed
// over: long enough for a run of small transactions to share a batch, short enough not to
// hold a change back for the pipeline's whole poll timeout.
constexpr auto kLinger = std::chrono::milliseconds(10);
// With events coming steadily, how long a batch may keep growing: the pipeline's cadence. The
// caller's timeout only bounds the wait for a first event; it may be shorter (while batches
// wait for acks) and must not cut a flowing stream into batches that small.
constexpr auto kMaxBatchAge = std::chrono::milliseconds(100);

bool MatchesAny(const std::vector<std::string>& globs, const std::string& name) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& glob) {
    return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
  });
}

std::string Text(const std::optional<std::string>& value) { return value.value_or(""); }

Charset CharsetOfName(std::string_view name) {
  if (name == "utf8mb4" || name == "utf8mb3" || name == "utf8") return Charset::kUtf8;
  if (name == "latin1") return Charset::kLatin1;
  if (name == "ascii") return Charset::kAscii;
  if (name == "binary") return Charset::kBinary;
  if (name == "ucs2") return Charset::kUcs2;
  if (name == "utf16") return Charset::kUtf16;
  if (name == "utf16le") return Charset::kUtf16le;
  if (name == "utf32") return Charset::kUtf32;
  return Charset::kOther;
}

bool IsBinary16(const ColumnInfo& c) {
  return c.type == ColumnType::kString && c.charset == Charset::kBinary &&
         (c.length == 16 || c.length == 4);
}

// True when the library has bytes buffered or the socket becomes readable within `wait`.
bool WaitReadable(MYSQL* mysql, std::chrono::milliseconds wait) {
  MARIADB_PVIO* pvio = mysql->net.pvio;
  if (pvio != nullptr && pvio->cache != nullptr &&
      pvio->cache_pos < pvio->cache + pvio->cache_size) {
    return true;
  }
  pollfd fd{static_cast<int>(mysql_get_socket(mysql)), POLLIN, 0};
  const int rc = ::poll(&fd, 1, static_cast<int>(std::max<int64_t>(wait.count(), 0)));
  // An error or hang-up is for the fetch to report.
  return rc != 0;
}

}  // namespace

MysqlSource::MysqlSource(MysqlSourceOptions options) : options_(std::move(options)) {}

MysqlSource::~MysqlSource() { Close(); }

Status MysqlSource::Open(const std::optional<std::string>& checkpoint) {
  Close();
  positions_continue_ = true;
  ASSIGN_OR_RETURN(dsn_, ParseMysqlDsn(options_.dsn));
  spdlog::info("mysql: Connecting source={} host={} port={} user={}", options_.name, dsn_.host,
               dsn_.port, dsn_.user);
  ASSIGN_OR_RETURN(MysqlConnection catalog, MysqlConnection::Open(dsn_, 60));
  catalog_ = std::move(catalog);
  RETURN_IF_ERROR(CheckServer());
  RETURN_IF_ERROR(LoadCollations());
  std::optional<BinlogCheckpoint> parsed;
  std::optional<SnapshotProgress> progress;
  if (checkpoint) {
    std::string stream_text;
    if (SplitSnapshotPosition(*checkpoint, stream_text, progress)) {
      parsed = ParseCheckpoint(stream_text);
    }
    if (!parsed) {
      return Status::CorruptData(fmt::format(
          "mysql: source {}: the checkpoint is not \"file:pos:gtids[|snapshot=...]\"; the state "
          "dir is damaged",
          options_.name));
    }
  }
  if (progress) return BeginSnapshot(parsed, std::move(*progress));
  if (!checkpoint && options_.initial_snapshot) return BeginSnapshot(std::nullopt, {});
  return StartStream(parsed);
}

// MariaDB's consistent snapshot reports the binlog position matching it without a global read
// lock. A resumed snapshot reads its remaining chunks from a new, later snapshot but still
// streams from the first one's position: the changes in between are replayed on top of rows that
// already contain them, which gives the same final state because each event carries the row's
// whole image by key (docs/mysql.md).
Status MysqlSource::BeginSnapshot(std::optional<BinlogCheckpoint> start,
                                  SnapshotProgress progress) {
  if (!mariadb_) {
    return Status::InvalidConfig(fmt::format(
        "mysql: source {}: snapshot: initial needs MariaDB (binlog_snapshot_file); with MySQL "
        "set `snapshot: never`",
        options_.name));
  }
  ASSIGN_OR_RETURN(MysqlConnection snapshot, MysqlConnection::Open(dsn_, 600));
  snapshot_ = std::move(snapshot);
  RETURN_IF_ERROR(snapshot_->Exec("SET SESSION time_zone = '+00:00'"));
  RETURN_IF_ERROR(snapshot_->Exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"));
  RETURN_IF_ERROR(snapshot_->Exec("START TRANSACTION WITH CONSISTENT SNAPSHOT"));
  ASSIGN_OR_RETURN(MysqlRows status, snapshot_->Query("SHOW STATUS LIKE 'binlog_snapshot_%'"));
  std::string file;
  std::string pos;
  for (const auto& row : status) {
    if (Text(row.at(0)) == "Binlog_snapshot_file") file = Text(row.at(1));
    if (Text(row.at(0)) == "Binlog_snapshot_position") pos = Text(row.at(1));
  }
  if (file.empty() || pos.empty()) {
    return Status::InvalidConfig(fmt::format(
        "mysql: source {}: the server reports no binlog_snapshot_file: the initial snapshot "
        "needs log_bin=ON",
        options_.name));
  }
  // Positions of snapshot rows sort after everything an earlier, interrupted run of this
  // snapshot wrote (its consistent snapshot is older, or the same data), so that a sink that
  // drops positions it already holds never drops a row re-read from different data.
  snapshot_version_ = fmt::format("{:010}.{:012}", BinlogFileNumber(file), std::stoull(pos));
  if (!start) {
    ASSIGN_OR_RETURN(MysqlRows gtids,
                     snapshot_->Query(fmt::format("SELECT BINLOG_GTID_POS({}, {})",
                                                  snapshot_->QuoteString(file), pos)));
    start = BinlogCheckpoint{file, std::stoull(pos), Text(gtids.at(0).at(0))};
  }
  snapshot_start_ = std::move(*start);
  snapshot_ts_us_ = UnixMicrosNow();
  ASSIGN_OR_RETURN(
      MysqlRows tables,
      snapshot_->Query("SELECT table_schema, table_name FROM information_schema.tables "
                       "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                       "('mysql', 'information_schema', 'performance_schema', 'sys')"));
  std::vector<std::pair<std::string, std::string>> captured;
  for (const auto& row : tables) {
    const std::string name = Text(row[0]) + "." + Text(row[1]);
    if (MatchesAny(options_.tables, name) && !MatchesAny(options_.exclude_tables, name)) {
      captured.emplace_back(Text(row[0]), Text(row[1]));
    }
  }
  std::sort(captured.begin(), captured.end(), [](const auto& a, const auto& b) {
    return a.first + "." + a.second < b.first + "." + b.second;
  });
  snapshot_tables_.clear();
  for (const auto& [database, table] : captured) {
    RETURN_IF_ERROR(LoadSnapshotTable(database, table));
  }
  // Tables sort by name, so those before the progress's table are done.
  snapshot_index_ = 0;
  while (snapshot_index_ < snapshot_tables_.size() &&
         snapshot_tables_[snapshot_index_].name < progress.table) {
    ++snapshot_index_;
  }
  if (snapshot_index_ < snapshot_tables_.size() &&
      snapshot_tables_[snapshot_index_].name == progress.table && progress.table_done) {
    ++snapshot_index_;
  }
  const bool resumed = !progress.table.empty();
  progress_ = std::move(progress);
  snapshotting_ = true;
  stream_pending_ = false;
  if (resumed) {
    spdlog::info("mysql: Snapshot resumed source={} table={} rows_done={} stream_start={}",
                 options_.name, progress_.table, progress_.rows, FormatCheckpoint(snapshot_start_));
  } else {
    spdlog::info("mysql: Snapshot started source={} tables={} stream_start={}", options_.name,
                 snapshot_tables_.size(), FormatCheckpoint(snapshot_start_));
  }
  return Status::Ok();
}

Status MysqlSource::LoadSnapshotTable(const std::string& database, const std::string& name) {
  const std::string where =
      fmt::format("table_schema = {} AND table_name = {}", snapshot_->QuoteString(database),
                  snapshot_->QuoteString(name));
  ASSIGN_OR_RETURN(MysqlRows keys,
                   snapshot_->Query("SELECT column_name FROM information_schema.statistics WHERE " +
                                    where + " AND index_name = 'PRIMARY' ORDER BY seq_in_index"));
  ASSIGN_OR_RETURN(
      MysqlRows columns,
      snapshot_->Query("SELECT column_name, data_type, column_type, "
                       "coalesce(character_set_name, ''), coalesce(character_octet_length, 0), "
                       "coalesce(numeric_precision, 0), coalesce(numeric_scale, 0), "
                       "coalesce(datetime_precision, 0), is_nullable, "
                       "coalesce((SELECT cs.maxlen FROM information_schema.character_sets cs "
                       "WHERE cs.character_set_name = c.character_set_name), 0) "
                       "FROM information_schema.columns c WHERE " +
                       where + " ORDER BY ordinal_position"));
  SnapshotTable table;
  table.name = database + "." + name;
  table.from = QuoteIdentifier(database) + "." + QuoteIdentifier(name);
  TableMap map;
  map.database = database;
  map.table = name;
  map.has_names = true;
  for (const auto& row : keys) table.key.push_back(QuoteIdentifier(Text(row[0])));
  for (const auto& row : columns) {
    CatalogColumn column{
        .name = Text(row[0]),
        .data_type = Text(row[1]),
        .column_type = Text(row[2]),
        .charset = Text(row[3]),
        .octet_length = std::stoull(Text(row[4])),
        .numeric_precision = static_cast<uint32_t>(std::stoul(Text(row[5]))),
        .numeric_scale = static_cast<uint32_t>(std::stoul(Text(row[6]))),
        .datetime_precision = static_cast<uint32_t>(std::stoul(Text(row[7]))),
        .nullable = Text(row[8]) == "YES",
        .char_bytes = static_cast<uint8_t>(std::stoul(Text(row[9]))),
    };
    column.key = std::any_of(keys.begin(), keys.end(),
                             [&](const auto& key) { return Text(key[0]) == column.name; });
    table.expressions.push_back(SnapshotExpressionOf(column, QuoteIdentifier(column.name)));
    map.columns.push_back(ColumnInfoOf(column));
  }
  table.schema = SchemaFor(map);
  snapshot_tables_.push_back(std::move(table));
  return Status::Ok();
}

// Whether the tables from `index` on hold no rows, to mark the last row of the snapshot.
Result<bool> MysqlSource::TablesEmptyFrom(size_t index) {
  for (; index < snapshot_tables_.size(); ++index) {
    ASSIGN_OR_RETURN(MysqlRows rows, snapshot_->Query("SELECT 1 FROM " +
                                                      snapshot_tables_[index].from + " LIMIT 1"));
    if (!rows.empty()) return false;
  }
  return true;
}

// One chunk per call: a batch whose commit position records the progress after it.
Status MysqlSource::PollSnapshot(Batch& batch) {
  const std::string start_text = FormatCheckpoint(snapshot_start_);
  if (snapshot_index_ < snapshot_tables_.size()) {
    const SnapshotTable& table = snapshot_tables_[snapshot_index_];
    if (progress_.table != table.name)
      progress_ = SnapshotProgress{progress_.rows, table.name, false, {}};
    const size_t chunk = std::max<size_t>(options_.snapshot_chunk_rows, 1);
    std::string sql = "SELECT ";
    for (size_t i = 0; i < table.expressions.size(); ++i) {
      if (i > 0) sql += ", ";
      sql += table.expressions[i].sql;
    }
    for (const std::string& key : table.key) sql += ", " + key;
    sql += " FROM " + table.from;
    if (table.key.empty()) {
      spdlog::info("mysql: Snapshot reads a table without primary key whole source={} table={}",
                   options_.name, table.name);
    } else {
      std::string keys;
      std::string after;
      for (size_t i = 0; i < table.key.size(); ++i) {
        if (i > 0) {
          keys += ", ";
          after += ", ";
        }
        keys += table.key[i];
        if (i < progress_.after.size()) after += snapshot_->QuoteString(progress_.after[i]);
      }
      if (progress_.after.size() == table.key.size()) {
        sql += fmt::format(" WHERE ({}) > ({})", keys, after);
      }
      sql += fmt::format(" ORDER BY {} LIMIT {}", keys, chunk + 1);
    }
    ASSIGN_OR_RETURN(MysqlRows rows, snapshot_->Query(sql));
    const bool more = !table.key.empty() && rows.size() > chunk;
    const size_t emit = more ? chunk : rows.size();
    bool last_table = false;
    if (!more) {
      ASSIGN_OR_RETURN(last_table, TablesEmptyFrom(snapshot_index_ + 1));
    }
    const size_t columns = table.expressions.size();
    const uint64_t file_number = BinlogFileNumber(snapshot_start_.file);
    for (size_t r = 0; r < emit; ++r) {
      const auto& row = rows[r];
      Event event;
      event.op = Op::kRead;
      event.table = batch.Retain(table.schema);
      event.meta.commit_ts_us = snapshot_ts_us_;
      event.meta.binlog_pos = snapshot_start_.pos;
      event.meta.binlog_row = static_cast<uint32_t>(progress_.rows);
      event.meta.binlog_file = batch.AddValue(ValueKind::kString, snapshot_start_.file);
      event.meta.snapshot = SnapshotMark::kTrue;
      if (progress_.rows == 0) event.meta.snapshot = SnapshotMark::kFirst;
      if (last_table && r + 1 == emit) event.meta.snapshot = SnapshotMark::kLast;
      const auto offset = static_cast<uint32_t>(batch.arena.size());
      // Sorts between the stream's events before and after the start position (no rows event
      // starts there: it is a transaction's first event).
      fmt::format_to(std::back_inserter(batch.arena), "{:010}/{:012}/{}.{:012}", file_number,
                     snapshot_start_.pos, snapshot_version_, progress_.rows);
      event.position =
          Value{offset, static_cast<uint32_t>(batch.arena.size() - offset), ValueKind::kString};
      event.after = static_cast<uint32_t>(batch.values.size());
      for (size_t c = 0; c < columns; ++c) {
        batch.values.push_back(row[c] ? batch.AddValue(table.expressions[c].kind, *row[c])
                                      : Value{});
      }
      batch.events.push_back(event);
      ++progress_.rows;
    }
    if (more) {
      const auto& row = rows[emit - 1];
      progress_.after.clear();
      for (size_t k = 0; k < table.key.size(); ++k)
        progress_.after.push_back(Text(row[columns + k]));
    } else {
      progress_.after.clear();
      progress_.table_done = true;
      ++snapshot_index_;
    }
  }
  if (snapshot_index_ < snapshot_tables_.size()) {
    batch.commit_position = FormatSnapshotPosition(start_text, progress_);
    return Status::Ok();
  }
  batch.commit_position = start_text;
  RETURN_IF_ERROR(snapshot_->Exec("COMMIT"));
  snapshot_.reset();
  snapshot_tables_.clear();
  snapshotting_ = false;
  stream_pending_ = true;
  spdlog::info("mysql: Snapshot finished source={} rows={}", options_.name, progress_.rows);
  return Status::Ok();
}

Status MysqlSource::CheckServer() {
  ASSIGN_OR_RETURN(MysqlRows rows,
                   catalog_->Query("SELECT @@version, @@global.log_bin, @@global.binlog_format, "
                                   "@@global.binlog_row_image, @@global.binlog_checksum"));
  const auto& row = rows.at(0);
  const std::string version = Text(row[0]);
  mariadb_ = version.find("MariaDB") != std::string::npos;
  connector_ = mariadb_ ? "mariadb" : "mysql";
  auto require = [&](std::string_view setting, const std::string& have, std::string_view want) {
    if (have == want) return Status::Ok();
    return Status::InvalidConfig(fmt::format(
        "mysql: source {}: the server has {}={}; change data capture needs {}={} (set it in the "
        "server's config and restart it, or SET GLOBAL {}={})",
        options_.name, setting, have, setting, want, setting, want));
  };
  RETURN_IF_ERROR(require("log_bin", Text(row[1]) == "1" ? "ON" : "OFF", "ON"));
  RETURN_IF_ERROR(require("binlog_format", Text(row[2]), "ROW"));
  RETURN_IF_ERROR(require("binlog_row_image", Text(row[3]), "FULL"));
  Result<MysqlRows> metadata = catalog_->Query("SELECT @@global.binlog_row_metadata");
  if (!metadata.ok()) {
    return Status::InvalidConfig(fmt::format(
        "mysql: source {}: the server ({}) has no binlog_row_metadata setting; change data "
        "capture needs binlog_row_metadata=FULL (MariaDB 10.5+, MySQL 8.0.1+)",
        options_.name, version));
  }
  RETURN_IF_ERROR(require("binlog_row_metadata", Text(metadata->at(0).at(0)), "FULL"));
  if (!mariadb_) {
    Result<MysqlRows> compression =
        catalog_->Query("SELECT @@global.binlog_transaction_compression");
    if (compression.ok()) {
      const std::string value = Text(compression->at(0).at(0));
      RETURN_IF_ERROR(
          require("binlog_transaction_compression", value == "1" ? "ON" : "OFF", "OFF"));
    }
  }
  checksum_ = Text(row[4]) == "CRC32" ? ChecksumAlg::kCrc32 : ChecksumAlg::kOff;
  spdlog::info("mysql: Server checked source={} version={} binlog_checksum={}", options_.name,
               version, Text(row[4]));
  return Status::Ok();
}

Status MysqlSource::LoadCollations() {
  ASSIGN_OR_RETURN(MysqlRows rows,
                   catalog_->Query("SELECT co.id, co.character_set_name, cs.maxlen FROM "
                                   "information_schema.collations co "
                                   "JOIN information_schema.character_sets cs "
                                   "ON cs.character_set_name = co.character_set_name "
                                   "WHERE co.id IS NOT NULL"));
  collations_.clear();
  collation_char_bytes_.clear();
  charset_char_bytes_.clear();
  for (const auto& row : rows) {
    if (!row[0] || !row[1] || !row[2]) continue;
    const auto id = static_cast<uint32_t>(std::stoul(*row[0]));
    const auto char_bytes = static_cast<uint8_t>(std::stoul(*row[2]));
    collations_[id] = CharsetOfName(*row[1]);
    collation_char_bytes_[id] = char_bytes;
    charset_char_bytes_[*row[1]] = char_bytes;
  }
  return Status::Ok();
}

Status MysqlSource::StartStream(const std::optional<BinlogCheckpoint>& checkpoint) {
  const auto heartbeat_s = static_cast<unsigned int>(
      std::chrono::duration_cast<std::chrono::seconds>(options_.heartbeat_interval).count());
  ASSIGN_OR_RETURN(MysqlConnection stream,
                   MysqlConnection::Open(dsn_, std::max(30U, 4 * heartbeat_s)));
  stream_ = std::move(stream);
  const auto heartbeat_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.heartbeat_interval).count();
  RETURN_IF_ERROR(stream_->Exec("SET @master_binlog_checksum = @@global.binlog_checksum"));
  RETURN_IF_ERROR(stream_->Exec("SET @mariadb_slave_capability = 4"));
  RETURN_IF_ERROR(stream_->Exec(fmt::format("SET @master_heartbeat_period = {}", heartbeat_ns)));

  std::string start_file;
  uint64_t start_pos = 4;
  bool by_gtid = false;
  gtid_state_.clear();
  if (checkpoint && mariadb_ && !checkpoint->gtids.empty()) {
    std::optional<GtidState> state = ParseGtidState(checkpoint->gtids);
    if (!state) {
      return Status::CorruptData(fmt::format(
          "mysql: source {}: the checkpoint's GTID state is malformed; the state dir is damaged",
          options_.name));
    }
    gtid_state_ = std::move(*state);
    by_gtid = true;
    RETURN_IF_ERROR(CheckGtidContinuity());
    ASSIGN_OR_RETURN(positions_continue_, SameBinlogs(*checkpoint));
  } else if (checkpoint) {
    start_file = checkpoint->file;
    start_pos = checkpoint->pos;
    ASSIGN_OR_RETURN(MysqlRows logs, catalog_->Query("SHOW BINARY LOGS"));
    const bool present = std::any_of(logs.begin(), logs.end(),
                                     [&](const auto& row) { return Text(row[0]) == start_file; });
    if (!present) {
      return Status::ContinuityLost(fmt::format(
          "mysql: source {}: the checkpoint is in binlog {}, which the server no longer has "
          "(purged, or another server): the changes since then cannot be streamed. Re-snapshot, "
          "or delete the source's checkpoint.json in state_dir to start from now",
          options_.name, start_file));
    }
  } else {
    if (mariadb_) {
      ASSIGN_OR_RETURN(MysqlRows pos, catalog_->Query("SELECT @@global.gtid_binlog_pos"));
      std::optional<GtidState> state = ParseGtidState(Text(pos.at(0).at(0)));
      if (state && !state->empty()) {
        gtid_state_ = std::move(*state);
        by_gtid = true;
      }
    }
    if (!by_gtid) {
      ASSIGN_OR_RETURN(MysqlRows status, catalog_->Query("SHOW MASTER STATUS"));
      if (status.empty()) {
        return Status::InvalidConfig(
            fmt::format("mysql: source {}: SHOW MASTER STATUS is empty: the server has no binlog "
                        "(log_bin) or the user lacks BINLOG MONITOR / REPLICATION CLIENT",
                        options_.name));
      }
      start_file = Text(status[0][0]);
      start_pos = std::stoull(Text(status[0][1]));
    }
  }
  if (by_gtid) {
    RETURN_IF_ERROR(stream_->Exec("SET @slave_connect_state = " +
                                  stream_->QuoteString(FormatGtidState(gtid_state_))));
  }
  rpl_ = mariadb_rpl_init(stream_->get());
  if (rpl_ == nullptr) return stream_->LastError("mariadb_rpl_init failed");
  mariadb_rpl_optionsv(rpl_, MARIADB_RPL_FILENAME, start_file.c_str(), start_file.size());
  mariadb_rpl_optionsv(rpl_, MARIADB_RPL_START, static_cast<unsigned long>(start_pos));
  mariadb_rpl_optionsv(rpl_, MARIADB_RPL_SERVER_ID, options_.server_id);
  mariadb_rpl_optionsv(rpl_, MARIADB_RPL_FLAGS, 0U);
  if (mariadb_rpl_open(rpl_) != 0) return FetchError();
  file_ = start_file;
  file_number_ = BinlogFileNumber(file_);
  next_pos_ = start_pos;
  in_transaction_ = false;
  post_header_lengths_.clear();
  spdlog::info("mysql: Streaming source={} server_id={} start={}", options_.name,
               options_.server_id,
               by_gtid ? "gtid " + FormatGtidState(gtid_state_)
                       : fmt::format("{}:{}", start_file, start_pos));
  return Status::Ok();
}

Result<bool> MysqlSource::SameBinlogs(const BinlogCheckpoint& checkpoint) {
  // On the server that wrote the checkpoint, its file and offset are where its GTID state was;
  // on another (a failover by GTID), the file is missing or holds other transactions, and its
  // positions, numbered by its own binlogs, may sort below the checkpoint's.
  Result<MysqlRows> at = catalog_->Query(fmt::format(
      "SELECT BINLOG_GTID_POS({}, {})", catalog_->QuoteString(checkpoint.file), checkpoint.pos));
  if (!at.ok() && at.status().retriable()) return at.status();
  std::optional<GtidState> there =
      at.ok() && !at->empty() ? ParseGtidState(Text(at->at(0).at(0))) : std::nullopt;
  const bool same = there && FormatGtidState(*there) == FormatGtidState(gtid_state_);
  if (!same) {
    spdlog::warn(
        "mysql: Resuming by GTID on a server whose binlogs do not hold the checkpoint's file "
        "and offset (another server after a failover, or purged) source={} checkpoint_file={}",
        options_.name, checkpoint.file);
  }
  return same;
}

// The server only reports a purged GTID position once it cannot find a binlog to start from,
// and MariaDB may keep a binlog it still needs for crash recovery: check explicitly that the
// oldest binlog starts at or before the checkpoint and that the server has reached it.
Status MysqlSource::CheckGtidContinuity() {
  const std::string checkpoint = FormatGtidState(gtid_state_);
  ASSIGN_OR_RETURN(MysqlRows current, catalog_->Query("SELECT @@global.gtid_binlog_pos"));
  std::optional<GtidState> server_state = ParseGtidState(Text(current.at(0).at(0)));
  for (const auto& [domain, gtid] : gtid_state_) {
    if (!server_state) break;
    auto it = server_state->find(domain);
    if (it == server_state->end() || it->second.sequence < gtid.sequence) {
      return Status::ContinuityLost(fmt::format(
          "mysql: source {}: the server's binlog ends at GTID {}, before the checkpoint {}: this "
          "is not the server the checkpoint came from, or it was restored from a backup. "
          "Refusing to stream a different history: re-snapshot, or delete the source's "
          "checkpoint.json in state_dir to start from now",
          options_.name, Text(current.at(0).at(0)), checkpoint));
    }
  }
  ASSIGN_OR_RETURN(MysqlRows logs, catalog_->Query("SHOW BINARY LOGS"));
  if (logs.empty()) return Status::Ok();
  const std::string oldest = Text(logs[0][0]);
  ASSIGN_OR_RETURN(MysqlRows events, catalog_->Query("SHOW BINLOG EVENTS IN " +
                                                     catalog_->QuoteString(oldest) + " LIMIT 4"));
  for (const auto& event : events) {
    if (event.size() < 6 || Text(event[2]) != "Gtid_list") continue;
    std::string info = Text(event[5]);
    std::erase(info, '[');
    std::erase(info, ']');
    std::optional<GtidState> start = ParseGtidState(info);
    if (!start) break;
    for (const auto& [domain, gtid] : *start) {
      auto it = gtid_state_.find(domain);
      if (it == gtid_state_.end() || it->second.sequence < gtid.sequence) {
        return Status::ContinuityLost(fmt::format(
            "mysql: source {}: the oldest binlog the server has ({}) starts after GTID {}, but "
            "the checkpoint is at {}: the transactions in between were purged. Refusing to "
            "skip data: re-snapshot, or delete the source's checkpoint.json in state_dir to "
            "start from now",
            options_.name, oldest, FormatMariaGtid(gtid), checkpoint));
      }
    }
  }
  return Status::Ok();
}

Status MysqlSource::FetchError() {
  const unsigned int code = mysql_errno(stream_->get());
  const std::string message =
      fmt::format("{} (error {})",
                  rpl_ != nullptr && mariadb_rpl_errno(rpl_) != 0 ? mariadb_rpl_error(rpl_)
                                                                  : mysql_error(stream_->get()),
                  code != 0 ? code : (rpl_ != nullptr ? mariadb_rpl_errno(rpl_) : 0));
  // The server cannot send what the position needs: purged binlogs, an unknown GTID.
  if (code == ER_MASTER_FATAL_ERROR_READING_BINLOG) {
    return Status::ContinuityLost(fmt::format(
        "mysql: source {}: the server cannot stream from the checkpoint: {}. Refusing to skip "
        "data: re-snapshot, or delete the source's checkpoint.json in state_dir to start from now",
        options_.name, message));
  }
  if (code == ER_SLAVE_SAME_ID || code == ER_ACCESS_DENIED_ERROR ||
      code == ER_SPECIFIC_ACCESS_DENIED_ERROR) {
    return Status::InvalidConfig(
        fmt::format("mysql: source {}: binlog stream refused: {}", options_.name, message));
  }
  return Status::Retriable(
      fmt::format("mysql: source {}: binlog stream lost: {}", options_.name, message));
}

Status MysqlSource::Poll(Batch& batch, size_t max_bytes, std::chrono::milliseconds timeout) {
  if (snapshotting_) return PollSnapshot(batch);
  if (stream_pending_) {
    stream_pending_ = false;
    RETURN_IF_ERROR(StartStream(snapshot_start_));
  }
  if (rpl_ == nullptr) return Status::Retriable("mysql: source is not open");
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  const auto batch_deadline = start + std::max<std::chrono::milliseconds>(timeout, kMaxBatchAge);
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    // Never block past the deadline between events, so that the pipeline keeps its cadence.
    const bool lingering = !batch.empty() && now + kLinger <= batch_deadline;
    const auto until = batch.empty() ? deadline : std::min(batch_deadline, now + kLinger);
    // Rounded up: a wait of under a millisecond rounded down would not wait at all.
    if (!WaitReadable(stream_->get(), std::chrono::ceil<std::chrono::milliseconds>(until - now))) {
      batch.ends_burst = lingering;
      return Status::Ok();
    }
    MARIADB_RPL_EVENT* event = mariadb_rpl_fetch(rpl_, nullptr);
    if (event == nullptr) return FetchError();
    std::string_view bytes(reinterpret_cast<const char*>(event->raw_data), event->raw_data_size);
    // The network packet's leading OK byte is not part of the event.
    if (bytes.size() == static_cast<size_t>(event->event_length) + 1) bytes.remove_prefix(1);
    bool commit_seen = false;
    Status status = HandleEvent(bytes, batch, commit_seen);
    mariadb_free_rpl_event(event);
    RETURN_IF_ERROR(status);
    if (batch.ByteSize() >= max_bytes) return Status::Ok();
    if (std::chrono::steady_clock::now() >= batch_deadline) return Status::Ok();
  }
}

uint8_t MysqlSource::PostHeaderLength(EventType type, uint8_t fallback) const {
  const auto index = static_cast<size_t>(type) - 1;
  return index < post_header_lengths_.size() ? post_header_lengths_[index] : fallback;
}

Status MysqlSource::HandleEvent(std::string_view bytes, Batch& batch, bool& commit_seen) {
  if (bytes.size() < kEventHeaderSize) return Status::CorruptData("binlog: short event");
  const auto type = static_cast<EventType>(static_cast<unsigned char>(bytes[4]));
  if (type == EventType::kFormatDescription) {
    FormatDescription format;
    RETURN_IF_ERROR(DecodeFormatDescription(bytes, format));
    checksum_ = format.checksum;
    post_header_lengths_ = std::move(format.post_header_lengths);
    return Status::Ok();
  }
  RawEvent event;
  Status decoded = DecodeEvent(bytes, checksum_, event);
  // Artificial events (the first ROTATE, heartbeats) may come without a checksum.
  if (!decoded.ok() && checksum_ == ChecksumAlg::kCrc32 && bytes.size() > kEventHeaderSize &&
      (type == EventType::kRotate || type == EventType::kHeartbeat)) {
    decoded = DecodeEvent(bytes, ChecksumAlg::kOff, event);
  }
  RETURN_IF_ERROR(decoded);
  const EventHeader& header = event.header;
  // Where this event starts: from its end position when the server gives one (MariaDB 11.4
  // writes 0 inside transactions), else from the running offset.
  uint64_t event_pos = next_pos_;
  if (header.log_pos != 0 && type != EventType::kHeartbeat &&
      (header.flags & kArtificialEventFlag) == 0 && header.log_pos >= header.event_size) {
    event_pos = header.log_pos - header.event_size;
    next_pos_ = header.log_pos;
  } else if (type != EventType::kRotate && type != EventType::kHeartbeat &&
             (header.flags & kArtificialEventFlag) == 0) {
    next_pos_ += header.event_size;
  }
  switch (type) {
    case EventType::kRotate: {
      RotateEvent rotate;
      RETURN_IF_ERROR(DecodeRotate(event.body, rotate));
      file_ = std::string(rotate.file);
      file_number_ = BinlogFileNumber(file_);
      next_pos_ = rotate.position;
      return Status::Ok();
    }
    case EventType::kMariaGtid: {
      MariaGtidEvent gtid;
      RETURN_IF_ERROR(DecodeMariaGtid(event.body, gtid));
      txn_gtid_ = MariaGtid{gtid.domain, header.server_id, gtid.sequence};
      txn_gtid_text_ = txn_gtid_.server_id != 0 || txn_gtid_.sequence != 0
                           ? FormatMariaGtid(txn_gtid_)
                           : std::string();
      standalone_ = gtid.standalone();
      in_transaction_ = true;
      txn_thread_ = 0;
      return Status::Ok();
    }
    case EventType::kMysqlGtid:
    case EventType::kMysqlAnonymousGtid:
      RETURN_IF_ERROR(DecodeMysqlGtid(event.body, txn_mysql_gtid_));
      standalone_ = false;
      return Status::Ok();
    case EventType::kQuery: {
      QueryEvent query;
      RETURN_IF_ERROR(DecodeQuery(event.body, query));
      if (query.query == "BEGIN") {
        in_transaction_ = true;
        standalone_ = false;
        txn_thread_ = query.thread_id;
        return Status::Ok();
      }
      if (query.query != "COMMIT") {
        txn_thread_ = query.thread_id;
        HandleDdl(query, event, event_pos, batch);
      }
      // COMMIT ends a non-transactional engine's group; any other statement (DDL) is its own
      // group unless it sits inside one.
      if (query.query == "COMMIT" || standalone_ || !in_transaction_) {
        // A DDL may change any table: decode the next TABLE_MAPs afresh.
        if (query.query != "COMMIT") tables_.clear();
        Commit(next_pos_, batch);
        commit_seen = true;
      }
      return Status::Ok();
    }
    case EventType::kXid:
      Commit(next_pos_, batch);
      commit_seen = true;
      return Status::Ok();
    case EventType::kTableMap:
      return HandleTableMap(event.body);
    case EventType::kWriteRowsCompressedV1:
    case EventType::kUpdateRowsCompressedV1:
    case EventType::kDeleteRowsCompressedV1:
    case EventType::kWriteRowsCompressed:
    case EventType::kUpdateRowsCompressed:
    case EventType::kDeleteRowsCompressed:
    case EventType::kQueryCompressed:
      return Status::InvalidConfig(
          fmt::format("mysql: source {}: the server compresses its binlog; change data capture "
                      "needs log_bin_compress=OFF",
                      options_.name));
    default:
      if (IsRowsEvent(type)) return HandleRows(event, event_pos, batch);
      return Status::Ok();  // heartbeats, annotations, checkpoints, INTVAR, ...
  }
}

void MysqlSource::Commit(uint64_t next_pos, Batch& batch) {
  in_transaction_ = false;
  standalone_ = false;
  std::string gtids;
  if (mariadb_) {
    if (txn_gtid_.server_id != 0 || txn_gtid_.sequence != 0) {
      gtid_state_[txn_gtid_.domain] = txn_gtid_;
    }
    gtids = FormatGtidState(gtid_state_);
  } else {
    gtids = txn_mysql_gtid_;
  }
  batch.commit_position = FormatCheckpoint(BinlogCheckpoint{file_, next_pos, std::move(gtids)});
  batch.ends_inside_transaction = false;
  txn_gtid_ = MariaGtid{};
  txn_gtid_text_.clear();
  txn_mysql_gtid_.clear();
}

Status MysqlSource::HandleTableMap(std::string_view body) {
  const uint8_t post_header = PostHeaderLength(EventType::kTableMap, 8);
  const uint64_t id = PeekTableId(body, post_header);
  auto it = tables_.find(id);
  if (it != tables_.end() && it->second.body == body) return Status::Ok();
  Table table;
  table.body = std::string(body);
  RETURN_IF_ERROR(DecodeTableMap(table.body, post_header, table.map));
  const std::string name = table.map.database + "." + table.map.table;
  table.captured = Captured(name);
  if (table.captured) {
    if (!table.map.has_names) {
      return Status::InvalidConfig(fmt::format(
          "mysql: source {}: the TABLE_MAP of {} has no column names; change data capture "
          "needs binlog_row_metadata=FULL",
          options_.name, name));
    }
    RETURN_IF_ERROR(ResolveCatalogTypes(table.map));
    table.schema = SchemaFor(table.map);
  }
  tables_[id] = std::move(table);
  return Status::Ok();
}

// The binlog says BINARY(16) for MariaDB's UUID and INET6 and gives only a collation id for
// text: the catalog tells them apart.
Status MysqlSource::ResolveCatalogTypes(TableMap& map) {
  bool need_catalog = false;
  for (ColumnInfo& column : map.columns) {
    if (column.charset == Charset::kUnknown && column.collation != 0) {
      auto it = collations_.find(column.collation);
      if (it != collations_.end()) column.charset = it->second;
    }
    if (auto it = collation_char_bytes_.find(column.collation); it != collation_char_bytes_.end()) {
      column.char_bytes = it->second;
    }
    if (IsBinary16(column) || column.charset == Charset::kUnknown) need_catalog = true;
  }
  if (!need_catalog || !mariadb_) return Status::Ok();
  ASSIGN_OR_RETURN(MysqlRows rows,
                   catalog_->Query(fmt::format(
                       "SELECT column_name, data_type, coalesce(character_set_name, '') FROM "
                       "information_schema.columns WHERE table_schema = {} AND table_name = {}",
                       catalog_->QuoteString(map.database), catalog_->QuoteString(map.table))));
  for (const auto& row : rows) {
    const std::string column_name = Text(row[0]);
    const std::string data_type = Text(row[1]);
    for (ColumnInfo& column : map.columns) {
      if (column.name != column_name) continue;
      if (IsBinary16(column)) {
        if (data_type == "uuid" && column.length == 16) column.logical = Logical::kUuid;
        if (data_type == "inet6" && column.length == 16) column.logical = Logical::kInet6;
        if (data_type == "inet4" && column.length == 4) column.logical = Logical::kInet4;
      }
      if (column.charset == Charset::kUnknown && !Text(row[2]).empty()) {
        column.charset = CharsetOfName(Text(row[2]));
        if (auto it = charset_char_bytes_.find(Text(row[2])); it != charset_char_bytes_.end()) {
          column.char_bytes = it->second;
        }
      }
    }
  }
  return Status::Ok();
}

bool MysqlSource::Captured(const std::string& name) const {
  return MatchesAny(options_.tables, name) && !MatchesAny(options_.exclude_tables, name);
}

std::shared_ptr<const TableSchema> MysqlSource::SchemaFor(const TableMap& map) {
  const std::string name = map.database + "." + map.table;
  auto schema = std::make_shared<TableSchema>();
  schema->connector = connector_;
  schema->source = options_.name;
  schema->database = map.database;
  schema->table = map.table;
  for (const ColumnInfo& column : map.columns) {
    schema->columns.push_back(ColumnSchema{.name = column.name,
                                           .type_name = TypeName(column),
                                           .key = column.key,
                                           .nullable = column.nullable,
                                           .canonical_type = CanonicalType(column)});
  }
  // The DDL since the table's last TABLE_MAP is what made this shape, if it changed.
  if (auto ddl = pending_ddl_.find(name); ddl != pending_ddl_.end()) {
    schema->ddl = std::move(ddl->second);
    pending_ddl_.erase(ddl);
  }
  auto& latest = schemas_[name];
  if (latest) {
    const auto same = [](const ColumnSchema& a, const ColumnSchema& b) {
      return a.name == b.name && a.type_name == b.type_name && a.key == b.key &&
             a.nullable == b.nullable && a.canonical_type == b.canonical_type;
    };
    if (std::equal(latest->columns.begin(), latest->columns.end(), schema->columns.begin(),
                   schema->columns.end(), same)) {
      return latest;
    }
  }
  latest = schema;
  return schema;
}

// DDL on captured tables: its text goes with the shape it makes, and a table dropped or renamed
// away gets a schema-change event with `dropped` set, where the statement sits in the stream.
void MysqlSource::HandleDdl(const QueryEvent& query, const RawEvent& raw, uint64_t event_pos,
                            Batch& batch) {
  DdlTables tables = ParseDdlTables(query.query, query.database);
  uint32_t row = 0;
  for (const DdlTable& removed : tables.removed) {
    const std::string name = removed.database + "." + removed.table;
    if (!Captured(name)) continue;
    schemas_.erase(name);
    pending_ddl_.erase(name);
    auto schema = std::make_shared<TableSchema>();
    schema->connector = connector_;
    schema->source = options_.name;
    schema->database = removed.database;
    schema->table = removed.table;
    schema->ddl = std::string(query.query);
    schema->dropped = true;
    Event event;
    event.op = Op::kSchemaChange;
    event.table = batch.Retain(schema);
    StartEvent(event, raw, event_pos, row++, batch);
    batch.events.push_back(event);
  }
  for (const DdlTable& changed : tables.changed) {
    const std::string name = changed.database + "." + changed.table;
    if (Captured(name)) pending_ddl_[name] = std::string(query.query);
  }
}

void MysqlSource::StartEvent(Event& event, const RawEvent& raw, uint64_t event_pos, uint32_t row,
                             Batch& batch) {
  event.meta.commit_ts_us = static_cast<int64_t>(raw.header.timestamp) * 1000000;
  event.meta.binlog_pos = event_pos;
  event.meta.binlog_row = row;
  event.meta.server_id = raw.header.server_id;
  event.meta.thread_id = txn_thread_;
  event.meta.binlog_file = batch.AddValue(ValueKind::kString, file_);
  batch.ends_inside_transaction = in_transaction_;
  if (mariadb_ && !txn_gtid_text_.empty()) {
    event.meta.gtid = batch.AddValue(ValueKind::kString, txn_gtid_text_);
  } else if (!txn_mysql_gtid_.empty()) {
    event.meta.gtid = batch.AddValue(ValueKind::kString, txn_mysql_gtid_);
  }
  const auto offset = static_cast<uint32_t>(batch.arena.size());
  AppendPosition(file_number_, event_pos, row, batch.arena);
  event.position =
      Value{offset, static_cast<uint32_t>(batch.arena.size() - offset), ValueKind::kString};
}

Status MysqlSource::HandleRows(const RawEvent& raw, uint64_t event_pos, Batch& batch) {
  RowsEvent rows;
  const uint8_t fallback = raw.header.type >= EventType::kWriteRowsV2 ? 10 : 8;
  RETURN_IF_ERROR(DecodeRowsEvent(raw.body, raw.header.type,
                                  PostHeaderLength(raw.header.type, fallback), rows));
  auto it = tables_.find(rows.table_id);
  if (it == tables_.end()) {
    return Status::CorruptData(
        fmt::format("binlog: rows event for table id {} without its TABLE_MAP", rows.table_id));
  }
  const Table& table = it->second;
  if (!table.captured) return Status::Ok();
  std::string_view data = rows.rows;
  uint32_t row = 0;
  while (!data.empty()) {
    Event event;
    event.table = batch.Retain(table.schema);
    StartEvent(event, raw, event_pos, row++, batch);
    switch (rows.kind) {
      case RowsKind::kWrite:
        event.op = Op::kCreate;
        event.after = static_cast<uint32_t>(batch.values.size());
        RETURN_IF_ERROR(DecodeRowImage(table.map, rows.present, data, batch));
        break;
      case RowsKind::kUpdate:
        event.op = Op::kUpdate;
        event.before = static_cast<uint32_t>(batch.values.size());
        RETURN_IF_ERROR(DecodeRowImage(table.map, rows.present, data, batch));
        event.after = static_cast<uint32_t>(batch.values.size());
        RETURN_IF_ERROR(DecodeRowImage(table.map, rows.present_after, data, batch));
        break;
      case RowsKind::kDelete:
        event.op = Op::kDelete;
        event.before = static_cast<uint32_t>(batch.values.size());
        RETURN_IF_ERROR(DecodeRowImage(table.map, rows.present, data, batch));
        break;
    }
    batch.events.push_back(event);
  }
  return Status::Ok();
}

Status MysqlSource::Acknowledge(const std::string& /*position*/) {
  // The server keeps binlogs by its own retention; there is nothing to confirm to it.
  return Status::Ok();
}

SourceGauges MysqlSource::Sample() {
  SourceGauges gauges;
  gauges.snapshot_tables_remaining = snapshotting_ ? snapshot_tables_.size() - snapshot_index_ : 0;
  return gauges;
}

void MysqlSource::Close() {
  if (rpl_ != nullptr) {
    mariadb_rpl_close(rpl_);
    rpl_ = nullptr;
  }
  stream_.reset();
  snapshot_.reset();
  snapshotting_ = false;
  stream_pending_ = false;
  snapshot_tables_.clear();
  catalog_.reset();
  tables_.clear();
  in_transaction_ = false;
}

}  // namespace tributary::mysql
