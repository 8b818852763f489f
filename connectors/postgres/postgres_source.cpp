#include "connectors/postgres/postgres_source.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <poll.h>

#include <algorithm>
#include <set>
#include <thread>

#include "agent/core/clock.h"
#include "agent/core/logging.h"
#include "agent/core/text_append.h"
#include "connectors/postgres/lsn.h"
#include "connectors/postgres/value_normalizer.h"

namespace tributary::postgres {

namespace {

// The statement asking source `source` to snapshot `schema`.`table`: a logical decoding message
// it meets in its stream.
std::string SnapshotRequestSql(PgConnection& conn, std::string_view source, std::string_view schema,
                               std::string_view table) {
  return "SELECT pg_logical_emit_message(true, " + conn.QuoteLiteral(kMessagePrefix) + ", " +
         conn.QuoteLiteral(SnapshotRequestMessage(source, schema, table)) + ")";
}

// How long a Poll that has events keeps gathering more, and the step it sleeps in between
// reads. Adds at most kLinger to the latency of a change, far below the sink's flush interval.
constexpr auto kLinger = std::chrono::milliseconds(10);
constexpr auto kLingerStep = std::chrono::milliseconds(1);
// A read that brought at least this much means more is waiting (libpq reads 8 KiB and up).
constexpr size_t kFullRead = 8192;

bool MatchesAny(const std::vector<std::string>& globs, const std::string& name) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& glob) {
    return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
  });
}

int64_t NowPgMicros() { return UnixToPostgresMicros(UnixMicrosNow()); }

// "<order LSN>/<change LSN>/<sequence>", fixed-width hex: sorts lexically in change order.
// Written by hand: fmt's formatting was a fifth of the agent's CPU per row.
Value AppendPosition(uint64_t order_lsn, uint64_t lsn, uint32_t sequence, Batch& batch) {
  char text[16 + 1 + 16 + 1 + 8];
  char* end = WriteHex16(order_lsn, text);
  *end++ = '/';
  end = WriteHex16(lsn, end);
  *end++ = '/';
  end = WriteHex8(sequence, end);
  return batch.AddValue(ValueKind::kString,
                        std::string_view(text, static_cast<size_t>(end - text)));
}

// Half the packaged unit's WatchdogSec: a catalog query on a server that stopped answering
// fails before systemd takes the agent for hung.
constexpr std::chrono::milliseconds kCatalogAnswerTimeout{15000};

}  // namespace

PostgresSource::PostgresSource(PostgresSourceOptions options)
    : options_(std::move(options)),
      snapshotter_(options_.name, options_.dsn, options_.snapshot_chunk_rows) {}

PostgresSource::~PostgresSource() { Close(); }

Status PostgresSource::Open(const std::optional<std::string>& checkpoint) {
  Close();
  spdlog::info("postgres: Connecting source={} dsn=\"{}\"", options_.name, RedactDsn(options_.dsn));
  ASSIGN_OR_RETURN(PgConnection catalog,
                   PgConnection::Open(options_.dsn, PgConnection::Mode::kNormal));
  catalog_ = std::move(catalog);
  ASSIGN_OR_RETURN(TextRows settings,
                   catalog_->Query("SELECT current_setting('wal_level'), current_database(), "
                                   "current_setting('server_version_num')"));
  if (settings[0][0] != "logical") {
    return Status::InvalidConfig(fmt::format(
        "postgres: source {}: the server has wal_level={}; logical replication needs "
        "wal_level=logical (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)",
        options_.name, settings[0][0]));
  }
  database_ = settings[0][1];
  // proto_version 2, which streams in-progress transactions, came with PostgreSQL 14.
  streaming_ = options_.streaming && !options_.state_dir.empty() &&
               std::atoi(settings[0][2].c_str()) >= 140000;
  if (streaming_) {
    std::error_code error;
    std::filesystem::create_directories(options_.state_dir, error);
    if (error) {
      return Status::Fatal(fmt::format("postgres: cannot create {}: {}",
                                       options_.state_dir.string(), error.message()));
    }
  }

  std::optional<PgPosition> position;
  SnapshotProgress progress;
  if (checkpoint) {
    position = ParsePosition(*checkpoint);
    if (!position) {
      return Status::CorruptData(fmt::format(
          "postgres: source {}: the checkpoint is not a position this source wrote; the state "
          "dir is damaged",
          options_.name));
    }
    if (!position->snapshot.empty()) {
      ASSIGN_OR_RETURN(progress, DecodeSnapshotProgress(position->snapshot));
    }
  }
  ASSIGN_OR_RETURN(std::vector<TableName> tables, ResolveTables());
  RETURN_IF_ERROR(EnsurePublication(tables, checkpoint.has_value()));
  if (!checkpoint && options_.initial_snapshot) {
    for (const auto& [schema, table] : tables) {
      SnapshotTable entry;
      entry.schema = schema;
      entry.table = table;
      progress.tables.push_back(std::move(entry));
    }
    spdlog::info("postgres: No checkpoint: snapshotting the captured tables source={} tables={}",
                 options_.name, tables.size());
  } else if (!progress.empty()) {
    spdlog::info("postgres: Resuming the snapshot source={} tables_left={}", options_.name,
                 progress.tables.size());
  }
  snapshotter_.Reset(std::move(progress), tables);

  ASSIGN_OR_RETURN(PgConnection stream,
                   PgConnection::Open(options_.dsn, PgConnection::Mode::kLogicalReplication));
  stream_ = std::move(stream);
  std::string exported_snapshot;
  ASSIGN_OR_RETURN(uint64_t start_lsn,
                   PrepareSlot(position ? std::optional<uint64_t>(position->lsn) : std::nullopt,
                               exported_snapshot));
  if (!exported_snapshot.empty()) {
    Status begun = snapshotter_.BeginExported(exported_snapshot, *catalog_);
    if (begun.ok()) {
      exported_lsn_ = start_lsn;
      exported_chunks_ = 0;
      // Any command ends the export, and with it the transaction the walsender held for it
      // (which idle_in_transaction_session_timeout would end too, with the connection): the
      // reading session has its own copy now.
      RETURN_IF_ERROR(stream_->Query("IDENTIFY_SYSTEM").status());
      catalog_->SetAnswerTimeout(kCatalogAnswerTimeout);
      spdlog::info(
          "postgres: Reading the initial snapshot from the slot's exported snapshot; streaming "
          "starts after it source={} slot={} start_lsn={}",
          options_.name, options_.slot, FormatLsn(start_lsn));
      return Status::Ok();
    }
    spdlog::warn(
        "postgres: Cannot read the slot's exported snapshot; snapshotting with watermarks "
        "while streaming source={} error=\"{}\"",
        options_.name, begun.message());
  }
  return StartStreaming(start_lsn);
}

Result<std::map<PostgresSource::TableName, std::string>> PostgresSource::MatchingTables() {
  ASSIGN_OR_RETURN(TextRows rows,
                   catalog_->Query("SELECT n.nspname, c.relname, c.oid FROM pg_class c "
                                   "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                   "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
                                   "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                                   "AND n.nspname NOT LIKE 'pg_toast%'"));
  std::map<TableName, std::string> tables;
  for (const auto& row : rows) {
    std::string name = row[0] + "." + row[1];
    if (MatchesAny(options_.tables, name) && !MatchesAny(options_.exclude_tables, name)) {
      tables.emplace(TableName{row[0], row[1]}, row[2]);
    }
  }
  return tables;
}

Result<std::vector<PostgresSource::TableName>> PostgresSource::ResolveTables() {
  ASSIGN_OR_RETURN(captured_, MatchingTables());
  std::vector<TableName> tables;
  for (const auto& [name, oid] : captured_) tables.push_back(name);
  if (tables.empty()) {
    return Status::InvalidConfig(
        fmt::format("postgres: source {}: no table in database {} matches `tables` (minus "
                    "`exclude_tables`); check the globs, which are schema.table",
                    options_.name, database_));
  }
  return tables;
}

Status PostgresSource::EnsurePublication(const std::vector<TableName>& tables, bool resuming) {
  std::string name = catalog_->QuoteLiteral(options_.publication);
  ASSIGN_OR_RETURN(TextRows exists,
                   catalog_->Query("SELECT count(*), coalesce(bool_and(pubviaroot), false) "
                                   "FROM pg_publication WHERE pubname = " +
                                   name));
  std::string table_list;
  for (const auto& [schema, table] : tables) {
    if (!table_list.empty()) table_list += ", ";
    table_list += catalog_->QuoteIdentifier(schema) + "." + catalog_->QuoteIdentifier(table);
  }
  std::string ident = catalog_->QuoteIdentifier(options_.publication);
  if (exists[0][0] == "0") {
    spdlog::info("postgres: Creating publication source={} publication={} tables={}", options_.name,
                 options_.publication, tables.size());
    // Changes to a partitioned table's partitions are published as the partitioned table's,
    // the table that was captured, and snapshot chunks are matched against them.
    return catalog_->Command("CREATE PUBLICATION " + ident + " FOR TABLE " + table_list +
                             " WITH (publish_via_partition_root = true)");
  }
  if (exists[0][1] != "t") {
    spdlog::info(
        "postgres: Setting publish_via_partition_root on the publication source={} "
        "publication={}",
        options_.name, options_.publication);
    RETURN_IF_ERROR(catalog_->Command("ALTER PUBLICATION " + ident +
                                      " SET (publish_via_partition_root = true)"));
  }
  ASSIGN_OR_RETURN(TextRows current,
                   catalog_->Query("SELECT schemaname, tablename FROM pg_publication_tables "
                                   "WHERE pubname = " +
                                   name));
  std::set<TableName> have;
  for (const auto& row : current) have.insert({row[0], row[1]});
  if (have == std::set<TableName>(tables.begin(), tables.end())) return Status::Ok();
  // The stream resumes before now, but the publication covers a new table only from now: its
  // rows come from an on-demand snapshot, requested in the same transaction.
  std::string sql;
  for (const TableName& table : tables) {
    if (!resuming || have.contains(table)) continue;
    if (options_.initial_snapshot)
      sql += SnapshotRequestSql(*catalog_, options_.name, table.first, table.second) + "; ";
    spdlog::info("postgres: Table joins the publication source={} table={}.{} snapshot={}",
                 options_.name, table.first, table.second,
                 options_.initial_snapshot ? "requested" : "none (snapshot: never)");
  }
  spdlog::info("postgres: Updating publication tables source={} publication={} tables={}",
               options_.name, options_.publication, tables.size());
  return catalog_->Command(sql + "ALTER PUBLICATION " + ident + " SET TABLE " + table_list);
}

// Statements in one simple query run as one transaction: the table joins the publication and
// its snapshot request enters the WAL together, so a crash cannot leave one without the other.
Status PostgresSource::CaptureNewTables() {
  ASSIGN_OR_RETURN(auto matching, MatchingTables());
  const std::string publication = catalog_->QuoteIdentifier(options_.publication);
  for (const auto& [table, oid] : matching) {
    auto known = captured_.find(table);
    if ((known != captured_.end() && known->second == oid) || refused_.contains(oid)) continue;
    const std::string name = table.first + "." + table.second;
    // Published without a replica identity, the table would refuse UPDATE and DELETE.
    ASSIGN_OR_RETURN(TextRows identity,
                     catalog_->Query("SELECT c.relreplident <> 'n' AND (c.relreplident <> 'd' OR "
                                     "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
                                     "AND i.indisprimary)) FROM pg_class c WHERE c.oid = " +
                                     oid));
    if (identity.empty()) continue;  // dropped meanwhile
    if (identity[0][0] != "t") {
      if (unpublishable_.insert(oid).second) {
        spdlog::warn(
            "postgres: A new table matches `tables` but has no replica identity; it joins once "
            "it has a primary key or REPLICA IDENTITY FULL (publishing it now would make its "
            "UPDATEs and DELETEs fail) source={} table={}",
            options_.name, name);
      }
      continue;
    }
    std::string sql =
        options_.initial_snapshot
            ? SnapshotRequestSql(*catalog_, options_.name, table.first, table.second) + "; "
            : "";
    sql += "ALTER PUBLICATION " + publication + " ADD TABLE " +
           catalog_->QuoteIdentifier(table.first) + "." + catalog_->QuoteIdentifier(table.second);
    Status added = catalog_->Command(sql);
    if (added.code() == StatusCode::kRetriable) return added;
    if (!added.ok()) {
      refused_.insert(oid);
      spdlog::warn(
          "postgres: A new table matches `tables` but cannot join the publication; add it as "
          "its owner (ALTER PUBLICATION {} ADD TABLE {}), then `tributary snapshot --table {}` "
          "source={} error=\"{}\"",
          options_.publication, name, name, options_.name, added.message());
      continue;
    }
    captured_[table] = oid;
    snapshotter_.Capture(table.first, table.second);
    spdlog::info("postgres: New table joins the capture source={} table={} snapshot={}",
                 options_.name, name,
                 options_.initial_snapshot ? "requested" : "none (snapshot: never)");
  }
  return Status::Ok();
}

Result<uint64_t> PostgresSource::PrepareSlot(const std::optional<uint64_t>& checkpoint_lsn,
                                             std::string& exported_snapshot) {
  const std::string checkpoint = checkpoint_lsn ? FormatLsn(*checkpoint_lsn) : "";
  ASSIGN_OR_RETURN(
      TextRows slots,
      catalog_->Query("SELECT plugin, database, coalesce(confirmed_flush_lsn::text, ''), "
                      "coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = " +
                      catalog_->QuoteLiteral(options_.slot)));
  if (slots.empty()) {
    if (checkpoint_lsn) {
      return Status::ContinuityLost(fmt::format(
          "postgres: source {}: replication slot {} is gone, but the checkpoint is at {}: the "
          "changes since then cannot be streamed. To start over, delete the source's "
          "checkpoint.json in state_dir (changes made in between are not captured) and re-run",
          options_.name, options_.slot, checkpoint));
    }
    spdlog::info("postgres: Creating replication slot source={} slot={}", options_.name,
                 options_.slot);
    // The exported snapshot sees exactly what committed before the slot's consistent point,
    // and stays valid until the next command on this connection.
    const bool export_snapshot = snapshotter_.pending();
    ASSIGN_OR_RETURN(
        TextRows created,
        stream_->Query("CREATE_REPLICATION_SLOT " + stream_->QuoteIdentifier(options_.slot) +
                       " LOGICAL pgoutput (SNAPSHOT '" + (export_snapshot ? "export" : "nothing") +
                       "')"));
    std::optional<uint64_t> consistent = ParseLsn(created.at(0).at(1));
    if (!consistent) return Status::Fatal("postgres: CREATE_REPLICATION_SLOT returned no LSN");
    if (export_snapshot) exported_snapshot = created.at(0).at(2);
    return *consistent;
  }
  const auto& slot = slots[0];
  if (slot[0] != "pgoutput" || slot[1] != database_) {
    return Status::InvalidConfig(fmt::format(
        "postgres: source {}: slot {} exists with plugin {} on database {}; it needs plugin "
        "pgoutput on database {}. Choose another `slot` name or drop that slot",
        options_.name, options_.slot, slot[0], slot[1], database_));
  }
  if (slot[3] == "lost") {
    return Status::ContinuityLost(fmt::format(
        "postgres: source {}: slot {} has wal_status=lost: the server removed WAL it still "
        "needed (max_slot_wal_keep_size). Drop the slot and the source's checkpoint to start "
        "over",
        options_.name, options_.slot));
  }
  std::optional<uint64_t> confirmed = ParseLsn(slot[2]);
  if (!confirmed) return Status::Fatal("postgres: slot " + options_.slot + " has no confirmed LSN");
  if (!checkpoint_lsn) {
    spdlog::warn(
        "postgres: No checkpoint, resuming at the slot's position source={} slot={} lsn={}",
        options_.name, options_.slot, slot[2]);
    return *confirmed;
  }
  if (*confirmed > *checkpoint_lsn) {
    return Status::ContinuityLost(fmt::format(
        "postgres: source {}: slot {} is at {} (confirmed_flush_lsn), ahead of the checkpoint "
        "{}: the changes in between were never delivered and the server no longer has them. "
        "Something else consumed or advanced the slot. Refusing to skip data: re-snapshot the "
        "tables, or accept the gap by deleting the source's checkpoint.json in state_dir",
        options_.name, options_.slot, slot[2], checkpoint));
  }
  ASSIGN_OR_RETURN(TextRows wal, catalog_->Query("SELECT pg_current_wal_lsn()::text"));
  std::optional<uint64_t> wal_end = ParseLsn(wal.at(0).at(0));
  if (wal_end && *wal_end < *checkpoint_lsn) {
    return Status::ContinuityLost(fmt::format(
        "postgres: source {}: the server's WAL ends at {}, before the checkpoint {}: this is "
        "not the server the checkpoint came from, or it was restored from a backup. Refusing "
        "to stream a different history: re-snapshot, or delete the source's checkpoint.json "
        "in state_dir to start from the slot",
        options_.name, wal.at(0).at(0), checkpoint));
  }
  flushed_lsn_ = *checkpoint_lsn;
  return *checkpoint_lsn;
}

Status PostgresSource::StartStreaming(uint64_t start_lsn) {
  std::string sql =
      // messages: snapshot watermarks and requests travel as logical decoding messages.
      fmt::format(
          "START_REPLICATION SLOT {} LOGICAL {} (proto_version '{}', publication_names {}, "
          "messages 'true'{})",
          stream_->QuoteIdentifier(options_.slot), FormatLsn(start_lsn), streaming_ ? 2 : 1,
          stream_->QuoteLiteral(stream_->QuoteIdentifier(options_.publication)),
          streaming_ ? ", streaming 'on'" : "");
  ASSIGN_OR_RETURN(PgResult ignored, stream_->Exec(sql, PGRES_COPY_BOTH));
  received_lsn_ = std::max(received_lsn_, start_lsn);
  flushed_lsn_ = std::max(flushed_lsn_, start_lsn);
  last_status_ = last_receive_ = std::chrono::steady_clock::now();
  handed_lsn_ = std::max(handed_lsn_, start_lsn);
  in_transaction_ = false;
  // From here on the catalog is queried from Poll and Sample, on the pipeline's thread.
  catalog_->SetAnswerTimeout(kCatalogAnswerTimeout);
  spdlog::info(
      "postgres: Streaming source={} slot={} publication={} start_lsn={} "
      "in_progress_transactions={}",
      options_.name, options_.slot, options_.publication, FormatLsn(start_lsn),
      streaming_ ? "streamed" : "sent at commit");
  return Status::Ok();
}

std::chrono::milliseconds PostgresSource::ReceiveTimeout() const {
  // Every heartbeat asks for a reply; several missed in a row, and at least a minute of
  // silence, mean the connection is dead even if the socket has not noticed.
  return std::max<std::chrono::milliseconds>(std::chrono::seconds(60),
                                             4 * options_.heartbeat_interval);
}

Status PostgresSource::SendStatus(bool reply_requested) {
  auto update = EncodeStandbyStatusUpdate(received_lsn_, flushed_lsn_, flushed_lsn_, NowPgMicros(),
                                          reply_requested);
  if (PQputCopyData(stream_->get(), update.data(), static_cast<int>(update.size())) != 1 ||
      PQflush(stream_->get()) != 0) {
    return Status::Retriable("postgres: cannot send standby status update: " +
                             stream_->LastError());
  }
  last_status_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

Status PostgresSource::PollExported(Batch& batch, std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(snapshotter_.MaybeStartChunk(*catalog_));
  ASSIGN_OR_RETURN(bool ready, snapshotter_.TakeExportedChunk(timeout));
  if (ready) {
    RETURN_IF_ERROR(EmitSnapshotChunk(exported_lsn_, batch));
    // Its progress is checkpointed with its rows, as a watermark's commit would be.
    batch.commit_position = PositionText(exported_lsn_);
    batch.ends_burst = !snapshotter_.pending();
  }
  if (snapshotter_.exported() && !snapshotter_.pending()) snapshotter_.EndExported();
  if (snapshotter_.exported()) return Status::Ok();
  return StartStreaming(exported_lsn_);
}

Status PostgresSource::Poll(Batch& batch, size_t max_bytes, std::chrono::milliseconds timeout) {
  if (!stream_) return Status::Retriable("postgres: source is not open");
  // A catalog query that got no answer in time closed the connection (Sample's included).
  if (catalog_->get() == nullptr) {
    return Status::Retriable("postgres: the server stopped answering catalog queries");
  }
  if (const auto now = std::chrono::steady_clock::now(); now >= next_table_check_) {
    next_table_check_ = now + options_.heartbeat_interval;
    RETURN_IF_ERROR(CaptureNewTables());
  }
  if (snapshotter_.exported()) return PollExported(batch, timeout);
  if (snapshotter_.pending()) RETURN_IF_ERROR(snapshotter_.MaybeStartChunk(*catalog_));
  chunk_in_batch_ = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto linger_until = std::min(deadline, std::chrono::steady_clock::now() + kLinger);
  size_t bytes_since_read = 0;
  auto last_data = std::chrono::steady_clock::now();
  while (true) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_status_ >= options_.heartbeat_interval) {
      // Asking for a reply makes the server send a keepalive: proof that it is alive, and,
      // when idle, a position to checkpoint.
      RETURN_IF_ERROR(SendStatus(/*reply_requested=*/true));
    }
    if (replay_) {
      // Nothing is read from the server until the committed transaction is all in batches:
      // what follows it in the stream must follow it in the batches too.
      bool commit_seen = false;
      RETURN_IF_ERROR(ReplayStreamed(batch, max_bytes, commit_seen));
      if (!replay_) last_receive_ = std::chrono::steady_clock::now();
      if (batch.ByteSize() >= (commit_seen ? max_bytes : 2 * max_bytes)) return Status::Ok();
      continue;
    }
    if (now - last_receive_ > ReceiveTimeout()) {
      return Status::Retriable(fmt::format(
          "postgres: nothing from the server for {} s, not even a keepalive; reconnecting",
          std::chrono::duration_cast<std::chrono::seconds>(now - last_receive_).count()));
    }
    char* buffer = nullptr;
    int length = PQgetCopyData(stream_->get(), &buffer, /*async=*/1);
    if (length > 0) {
      last_receive_ = now;
      last_data = now;
      // The linger is counted from the batch's first data, not from when the wait began.
      if (batch.empty()) linger_until = std::min(deadline, now + kLinger);
      bytes_since_read += static_cast<size_t>(length);
      bool commit_seen = false;
      Status status = HandleCopyData(std::string_view(buffer, length), batch, commit_seen);
      PQfreemem(buffer);
      RETURN_IF_ERROR(status);
      // A big transaction is cut into several batches; a commit ends a batch once it is full.
      if (batch.ByteSize() >= (commit_seen ? max_bytes : 2 * max_bytes)) return Status::Ok();
      continue;
    }
    if (length == -1) {
      PgResult result(PQgetResult(stream_->get()));
      return ClassifyPgError(stream_->get(), result.get(), "replication stream ended");
    }
    if (length == -2) {
      return Status::Retriable("postgres: replication stream failed: " + stream_->LastError());
    }
    // Nothing buffered. With events in hand: if the last read was full, the server is
    // streaming fast, so read on at once; if it was thin, linger a little so that a stream of
    // small transactions piles up in the socket and one read takes many messages, instead of
    // a wake-up and a read per message. Then hand the batch over.
    now = std::chrono::steady_clock::now();
    if (!batch.empty()) {
      // A snapshot chunk is a batch's worth on its own: no point lingering for more. With
      // nothing more buffered, the last one ends the snapshot's burst.
      if (chunk_in_batch_ && bytes_since_read < kFullRead) {
        batch.ends_burst = !snapshotter_.pending();
        return Status::Ok();
      }
      if (bytes_since_read < kFullRead) {
        if (now >= linger_until) {
          // Only a whole linger without data is a pause: one cut short by the poll's deadline
          // is not, or a stream of transactions a few ms apart would be flushed one by one.
          batch.ends_burst = now - last_data >= kLinger;
          return Status::Ok();
        }
        std::this_thread::sleep_for(kLingerStep);
      }
      if (PQconsumeInput(stream_->get()) != 1) {
        return Status::Retriable("postgres: replication connection lost: " + stream_->LastError());
      }
      bytes_since_read = 0;
      continue;
    }
    if (now >= deadline) return Status::Ok();
    linger_until = std::min(deadline, now + kLinger);
    bytes_since_read = 0;
    pollfd fd{PQsocket(stream_->get()), POLLIN, 0};
    int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    if (::poll(&fd, 1, std::max(wait_ms, 1)) < 0 && errno != EINTR) {
      return Status::Retriable("postgres: poll on the replication socket failed");
    }
    if (PQconsumeInput(stream_->get()) != 1) {
      return Status::Retriable("postgres: replication connection lost: " + stream_->LastError());
    }
  }
}

Status PostgresSource::HandleCopyData(std::string_view bytes, Batch& batch, bool& commit_seen) {
  RETURN_IF_ERROR(DecodeCopyData(bytes, copy_data_));
  received_lsn_ = std::max(received_lsn_, copy_data_.wal_end);
  if (copy_data_.type == CopyDataType::kKeepalive) {
    // Between transactions the keepalive's position says the server has sent every commit
    // before it: checkpointing it lets the slot advance while the captured tables are idle
    // and others are busy, so the server does not retain WAL for us without end.
    // Not while a streamed transaction is open either: only commits are checkpoints, and a
    // position past a streamed transaction's start would not be one.
    if (!in_transaction_ && streams_.empty() && !replay_ && copy_data_.wal_end > handed_lsn_) {
      handed_lsn_ = copy_data_.wal_end;
      batch.commit_position = PositionText(copy_data_.wal_end);
    }
    if (copy_data_.reply_requested) return SendStatus(false);
    return Status::Ok();
  }
  const bool in_block = stream_block_xid_ != 0;
  RETURN_IF_ERROR(DecodePgoutput(copy_data_.payload, message_, in_block));
  // A non-transactional message belongs to no transaction: it is not held back with one.
  const bool non_transactional =
      message_.type == PgoutputType::kMessage && !message_.message.transactional();
  if (in_block && message_.type != PgoutputType::kStreamStop && !non_transactional) {
    return SpoolStreamed(copy_data_.data_start, copy_data_.payload);
  }
  return HandlePgoutput(copy_data_.data_start, batch, commit_seen);
}

Status PostgresSource::HandlePgoutput(uint64_t lsn, Batch& batch, bool& commit_seen) {
  switch (message_.type) {
    case PgoutputType::kBegin:
      txn_commit_lsn_ = message_.begin.final_lsn;
      txn_commit_ts_us_ = PostgresToUnixMicros(message_.begin.commit_ts_pg_us);
      txn_xid_ = message_.begin.xid;
      txn_sequence_ = 0;
      in_transaction_ = true;
      return Status::Ok();
    case PgoutputType::kCommit:
      in_transaction_ = false;
      handed_lsn_ = std::max(handed_lsn_, message_.commit.end_lsn);
      batch.commit_position = PositionText(message_.commit.end_lsn);
      batch.ends_inside_transaction = false;
      commit_seen = true;
      return Status::Ok();
    case PgoutputType::kRelation:
      return HandleRelation();
    case PgoutputType::kType:
      custom_types_.erase(message_.data_type.type_oid);
      return Status::Ok();
    case PgoutputType::kInsert:
    case PgoutputType::kUpdate:
    case PgoutputType::kDelete:
      return HandleRow(lsn, batch);
    case PgoutputType::kTruncate:
      return HandleTruncate(lsn, batch);
    case PgoutputType::kMessage:
      return HandleMessage(lsn, batch);
    case PgoutputType::kOrigin:
      return Status::Ok();
    case PgoutputType::kStreamStart:
    case PgoutputType::kStreamStop:
    case PgoutputType::kStreamCommit:
    case PgoutputType::kStreamAbort:
      if (!streaming_ || in_transaction_ || replay_) {
        return Status::CorruptData(fmt::format(
            "postgres: unexpected pgoutput message '{}'{}", static_cast<char>(message_.type),
            streaming_ ? " inside a transaction" : ": streaming was not requested"));
      }
      return HandleStreamControl();
  }
  return Status::CorruptData(
      fmt::format("postgres: unexpected pgoutput message '{}'", static_cast<char>(message_.type)));
}

std::filesystem::path PostgresSource::SpoolPath(uint32_t xid) const {
  return options_.state_dir / fmt::format("stream-{}.spool", xid);
}

Status PostgresSource::HandleStreamControl() {
  switch (message_.type) {
    case PgoutputType::kStreamStart: {
      const StreamStartMessage& start = message_.stream_start;
      if (start.xid == 0) return Status::CorruptData("postgres: Stream Start without an xid");
      auto it = streams_.find(start.xid);
      if (start.first_segment) {
        // The server starts a transaction over after a reconnect; so does the spool.
        if (it != streams_.end()) {
          it->second.spool.Remove();
          streams_.erase(it);
        }
        ASSIGN_OR_RETURN(StreamSpool spool, StreamSpool::Create(SpoolPath(start.xid)));
        streams_.emplace(start.xid, StreamedTxn{std::move(spool), {}});
        spdlog::debug("postgres: Spooling a streamed transaction source={} xid={} open={}",
                      options_.name, start.xid, streams_.size());
      } else if (it == streams_.end()) {
        return Status::CorruptData(fmt::format(
            "postgres: Stream Start continues transaction {}, whose first segment never came",
            start.xid));
      }
      stream_block_xid_ = start.xid;
      return Status::Ok();
    }
    case PgoutputType::kStreamStop:
      if (stream_block_xid_ == 0) {
        return Status::CorruptData("postgres: Stream Stop without a Stream Start");
      }
      stream_block_xid_ = 0;
      return Status::Ok();
    case PgoutputType::kStreamCommit: {
      const StreamCommitMessage& commit = message_.stream_commit;
      auto it = streams_.find(commit.xid);
      if (it == streams_.end()) {
        return Status::CorruptData(fmt::format(
            "postgres: Stream Commit of transaction {}, which was never streamed", commit.xid));
      }
      RETURN_IF_ERROR(it->second.spool.StartReading());
      spdlog::debug(
          "postgres: Replaying a committed streamed transaction source={} xid={} "
          "messages={}",
          options_.name, commit.xid, it->second.spool.records());
      replay_.emplace(Replay{std::move(it->second), commit.end_lsn});
      streams_.erase(it);
      // As a Begin would have set them: the events cannot tell a streamed transaction apart.
      txn_commit_lsn_ = commit.commit_lsn;
      txn_commit_ts_us_ = PostgresToUnixMicros(commit.commit_ts_pg_us);
      txn_xid_ = commit.xid;
      txn_sequence_ = 0;
      in_transaction_ = true;
      return Status::Ok();
    }
    case PgoutputType::kStreamAbort: {
      const StreamAbortMessage& abort = message_.stream_abort;
      auto it = streams_.find(abort.xid);
      // Nothing of it was spooled: nothing to drop.
      if (it == streams_.end()) return Status::Ok();
      if (abort.subxid == abort.xid) {
        spdlog::debug("postgres: Dropping an aborted streamed transaction source={} xid={}",
                      options_.name, abort.xid);
        it->second.spool.Remove();
        streams_.erase(it);
      } else {
        it->second.aborted_subxids.insert(abort.subxid);
      }
      return Status::Ok();
    }
    default:
      return Status::CorruptData("postgres: not a stream control message");
  }
}

Status PostgresSource::SpoolStreamed(uint64_t lsn, std::string_view bytes) {
  switch (message_.type) {
    case PgoutputType::kOrigin:
      // Sent after Stream Start for a transaction replicated from elsewhere; ignored as in
      // a transaction sent whole.
      return Status::Ok();
    case PgoutputType::kRelation:
    case PgoutputType::kType:
    case PgoutputType::kInsert:
    case PgoutputType::kUpdate:
    case PgoutputType::kDelete:
    case PgoutputType::kTruncate:
    case PgoutputType::kMessage:
      // Relation and Type too: they describe the tables as this transaction sees them, which
      // transactions committed before it must not.
      return streams_.at(stream_block_xid_).spool.Append(lsn, bytes);
    default:
      return Status::CorruptData(
          fmt::format("postgres: unexpected pgoutput message '{}' inside a stream block",
                      static_cast<char>(message_.type)));
  }
}

Status PostgresSource::ReplayStreamed(Batch& batch, size_t max_bytes, bool& commit_seen) {
  while (batch.ByteSize() < 2 * max_bytes) {
    uint64_t lsn = 0;
    std::string_view bytes;
    ASSIGN_OR_RETURN(bool more, replay_->txn.spool.Next(lsn, bytes));
    if (!more) {
      in_transaction_ = false;
      handed_lsn_ = std::max(handed_lsn_, replay_->end_lsn);
      batch.commit_position = PositionText(replay_->end_lsn);
      batch.ends_inside_transaction = false;
      commit_seen = true;
      replay_->txn.spool.Remove();
      replay_.reset();
      return Status::Ok();
    }
    RETURN_IF_ERROR(DecodePgoutput(bytes, message_, /*in_stream=*/true));
    switch (message_.type) {
      case PgoutputType::kInsert:
      case PgoutputType::kUpdate:
      case PgoutputType::kDelete:
      case PgoutputType::kTruncate:
      case PgoutputType::kMessage:
        if (replay_->txn.aborted_subxids.contains(message_.stream_xid)) continue;
        break;
      default:
        break;
    }
    RETURN_IF_ERROR(HandlePgoutput(lsn, batch, commit_seen));
  }
  return Status::Ok();
}

void PostgresSource::RemoveSpools() {
  for (auto& [xid, txn] : streams_) txn.spool.Remove();
  streams_.clear();
  if (replay_) replay_->txn.spool.Remove();
  replay_.reset();
  stream_block_xid_ = 0;
  if (options_.state_dir.empty()) return;
  // Left by a process that stopped mid-transaction: the server sends those again whole.
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(options_.state_dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("stream-") && name.ends_with(".spool")) {
      std::filesystem::remove(entry.path(), error);
    }
  }
}

Result<PgType> PostgresSource::ResolveType(uint32_t oid) {
  if (const PgType* builtin = BuiltinPgType(oid)) return *builtin;
  if (auto it = custom_types_.find(oid); it != custom_types_.end()) return it->second;
  ASSIGN_OR_RETURN(TextRows rows,
                   catalog_->Query(fmt::format(
                       "SELECT t.typtype, t.typcategory, coalesce(e.typtype::text, ''), t.typelem, "
                       "n.nspname || '.' || t.typname, t.typbasetype, t.typtypmod, "
                       "coalesce(e.typarray = t.oid, false), coalesce(e.typdelim::text, ',') "
                       "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                       "LEFT JOIN pg_type e ON e.oid = t.typelem WHERE t.oid = {}",
                       oid)));
  PgType type;
  type.oid = oid;
  type.category = TypeCategory::kUnmapped;
  if (!rows.empty()) {
    type.name = rows[0][4];
    if (rows[0][0] == "e") {
      type.category = TypeCategory::kEnum;
    } else if (rows[0][0] == "d") {
      // A domain's values print as its base type's: decode and describe them as those.
      // Everything but its own OID, name and modifier is the base type's.
      ASSIGN_OR_RETURN(PgType base, ResolveType(static_cast<uint32_t>(std::stoul(rows[0][5]))));
      const int32_t modifier = std::stoi(rows[0][6]);
      const uint32_t base_oid = base.base_oid != 0 ? base.base_oid : base.oid;
      const int32_t base_modifier = modifier != -1 ? modifier : base.base_modifier;
      type = std::move(base);
      type.oid = oid;
      type.name = rows[0][4];
      type.base_oid = base_oid;
      type.base_modifier = base_modifier;
    } else if (rows[0][7] == "t" && !rows[0][8].empty()) {
      // An array (its element's typarray; int2vector, point and the like have a typelem too but
      // print otherwise): a JSON array whose elements are encoded as the element type's values.
      ASSIGN_OR_RETURN(PgType element, ResolveType(static_cast<uint32_t>(std::stoul(rows[0][3]))));
      type.category = TypeCategory::kArray;
      type.element_name = element.name;
      type.delimiter = rows[0][8][0];
      if (element.category == TypeCategory::kArray) {
        // A domain over an array: its values are elements printed as array literals.
        type.element = TypeCategory::kUnmapped;
        type.element_oid = element.oid;
      } else {
        type.element = element.category;
        type.element_oid = element.base_oid != 0 ? element.base_oid : element.oid;
        type.element_modifier = element.base_modifier;
      }
    }
  } else {
    type.name = fmt::format("oid:{}", oid);
  }
  custom_types_[oid] = type;
  return type;
}

namespace {

// Whether a Relation message describes the same columns, by name and type, as `known`.
bool SameColumns(const std::vector<ColumnSchema>& known, const std::vector<RelationColumn>& sent) {
  return std::equal(known.begin(), known.end(), sent.begin(), sent.end(),
                    [](const ColumnSchema& a, const RelationColumn& b) {
                      return a.name == b.name && a.type_oid == b.type_oid &&
                             a.type_modifier == b.type_modifier;
                    });
}

}  // namespace

// pgoutput's Relation message names the columns, their types and the replica identity; whether
// a column is nullable and which columns form the primary key only the catalog knows. It is read
// now, while the message describes the table as of the change that follows: after DDL that the
// stream has not reached yet the two can differ, and then what the catalog cannot vouch for is
// left at its least committal (nullable, key = the replica identity).
Status PostgresSource::HandleRelation() {
  const RelationMessage& rel = message_.relation;
  std::vector<CatalogColumn> now;
  std::vector<size_t> primary_key;
  RETURN_IF_ERROR(ReadCatalogColumns(*catalog_, rel.relation_id, 'n', now, primary_key));
  std::vector<CatalogColumn> columns;
  columns.reserve(rel.columns.size());
  bool matches = true;
  for (const RelationColumn& column : rel.columns) {
    CatalogColumn out{.name = std::string(column.name),
                      .type_oid = column.type_oid,
                      .type_modifier = column.type_modifier,
                      .identity = column.key()};
    auto it = std::find_if(now.begin(), now.end(),
                           [&](const CatalogColumn& c) { return c.name == out.name; });
    if (it != now.end()) {
      out.primary = it->primary;
      out.nullable = it->nullable;
    } else {
      matches = false;
    }
    columns.push_back(std::move(out));
  }
  matches = matches && std::all_of(primary_key.begin(), primary_key.end(), [&](size_t index) {
              return std::any_of(columns.begin(), columns.end(),
                                 [&](const CatalogColumn& c) { return c.name == now[index].name; });
            });
  if (!matches) {
    // Usually a relcache invalidation (autovacuum, say) re-sent an unchanged description of a
    // table that has since been dropped or altered: what was read for it before still holds.
    auto known = relations_.find(rel.relation_id);
    if (known != relations_.end() && SameColumns(known->second.schema->columns, rel.columns)) {
      return Status::Ok();
    }
    spdlog::warn(
        "postgres: The catalog no longer matches the stream's description of a table (altered "
        "or dropped since); its key is the replica identity until the stream catches up "
        "source={} table={}.{} relation_id={}",
        options_.name, rel.schema.empty() ? "pg_catalog" : rel.schema, rel.name, rel.relation_id);
    for (CatalogColumn& column : columns) column.primary = false;
  }
  ASSIGN_OR_RETURN(Relation relation,
                   MakeRelation(rel.schema.empty() ? "pg_catalog" : std::string(rel.schema),
                                std::string(rel.name), rel.relation_id, columns));
  relations_[rel.relation_id] = std::move(relation);
  return Status::Ok();
}

Result<PostgresSource::Relation> PostgresSource::MakeRelation(
    std::string schema_name, std::string table_name, uint32_t relation_id,
    const std::vector<CatalogColumn>& columns) {
  auto schema = std::make_shared<TableSchema>();
  schema->connector = "postgresql";
  schema->source = options_.name;
  schema->database = database_;
  schema->schema = std::move(schema_name);
  schema->table = std::move(table_name);
  schema->relation_id = relation_id;
  const std::vector<bool> key = KeyColumns(columns);
  Relation relation;
  for (size_t i = 0; i < columns.size(); ++i) {
    const CatalogColumn& column = columns[i];
    ASSIGN_OR_RETURN(PgType type, ResolveType(column.type_oid));
    if (type.category == TypeCategory::kUnmapped && warned_types_.insert(type.oid).second) {
      spdlog::warn(
          "postgres: Type has no mapping yet, emitting its text form source={} "
          "table={}.{} column={} type={}",
          options_.name, schema->schema, schema->table, column.name, type.name);
    }
    schema->columns.push_back(
        ColumnSchema{.name = column.name,
                     .type_name = type.name,
                     .type_oid = column.type_oid,
                     .type_modifier = column.type_modifier,
                     .key = key[i],
                     .nullable = column.nullable,
                     .canonical_type = CanonicalType(type, column.type_modifier)});
    relation.types.push_back(std::move(type));
  }
  relation.schema = std::move(schema);
  return relation;
}

Status PostgresSource::EmitSnapshotChunk(uint64_t lsn, Batch& batch) {
  const CatalogTable& table = snapshotter_.chunk_table();
  // The stream's description of the table when it has one with the same columns, so snapshot
  // rows and changes share a schema; else the catalog's.
  auto it = relations_.find(table.oid);
  bool same = it != relations_.end() && it->second.types.size() == table.columns.size();
  for (size_t i = 0; same && i < table.columns.size(); ++i) {
    same = it->second.schema->columns[i].name == table.columns[i].name &&
           it->second.schema->columns[i].type_oid == table.columns[i].type_oid;
  }
  if (!same) {
    ASSIGN_OR_RETURN(Relation relation,
                     MakeRelation(table.schema, table.table, table.oid, table.columns));
    it = relations_.insert_or_assign(table.oid, std::move(relation)).first;
  }
  const Relation& relation = it->second;
  const PGresult* result = snapshotter_.chunk_result();
  const std::vector<int> rows = snapshotter_.RowsToEmit();
  const SnapshotMark mark =
      snapshotter_.incremental() ? SnapshotMark::kIncremental : SnapshotMark::kTrue;
  const bool exported = snapshotter_.exported();
  const int64_t read_us = UnixMicrosNow();
  for (size_t n = 0; n < rows.size(); ++n) {
    const int row = rows[n];
    Event event;
    event.op = Op::kRead;
    event.table = batch.Retain(relation.schema);
    if (exported) {
      // Before every change the slot streams, each committed at or after its consistent point
      // (`lsn`): the rows sort just below it, by chunk and row.
      event.meta.commit_ts_us = read_us;
      event.meta.commit_lsn = lsn;
      event.meta.lsn = lsn;
      event.meta.sequence = static_cast<uint32_t>(n);
      event.position = AppendPosition(lsn - 1, exported_chunks_, static_cast<uint32_t>(n), batch);
    } else {
      StartEvent(event, lsn, batch);
    }
    event.meta.snapshot = mark;
    if (mark == SnapshotMark::kTrue) {
      if (n == 0 && snapshotter_.at_initial_start()) event.meta.snapshot = SnapshotMark::kFirst;
      if (n + 1 == rows.size() && snapshotter_.ends_initial_snapshot()) {
        event.meta.snapshot = SnapshotMark::kLast;
      }
    }
    event.after = static_cast<uint32_t>(batch.values.size());
    for (size_t column = 0; column < relation.types.size(); ++column) {
      const int c = static_cast<int>(column);
      if (PQgetisnull(result, row, c)) {
        batch.values.push_back(Value{0, 0, ValueKind::kNull});
        continue;
      }
      Result<Value> value =
          AppendCanonical(relation.types[column],
                          std::string_view(PQgetvalue(result, row, c),
                                           static_cast<size_t>(PQgetlength(result, row, c))),
                          batch);
      if (!value.ok()) {
        return Status(
            value.status().code(),
            fmt::format("{} (snapshot of table {}.{}, column {})", value.status().message(),
                        table.schema, table.table, relation.schema->columns[column].name));
      }
      batch.values.push_back(*value);
    }
    batch.events.push_back(event);
  }
  if (exported) ++exported_chunks_;
  snapshotter_.FinishChunk(rows.size());
  chunk_in_batch_ = true;
  return Status::Ok();
}

void PostgresSource::StartEvent(Event& event, uint64_t lsn, Batch& batch) {
  event.meta.commit_ts_us = txn_commit_ts_us_;
  event.meta.commit_lsn = txn_commit_lsn_;
  event.meta.lsn = lsn;
  event.meta.txid = txn_xid_;
  event.meta.sequence = txn_sequence_;
  batch.ends_inside_transaction = in_transaction_;
  event.position = AppendPosition(txn_commit_lsn_, lsn, txn_sequence_, batch);
  ++txn_sequence_;
}

Status PostgresSource::AppendTuple(const Relation& relation, const std::vector<TupleColumn>& tuple,
                                   const std::vector<TupleColumn>* old_full_tuple, Batch& batch) {
  if (tuple.size() != relation.types.size()) {
    return Status::CorruptData(fmt::format(
        "postgres: a row of {}.{} has {} columns, its Relation message said {}",
        relation.schema->schema, relation.schema->table, tuple.size(), relation.types.size()));
  }
  for (size_t i = 0; i < tuple.size(); ++i) {
    const TupleColumn* column = &tuple[i];
    // REPLICA IDENTITY FULL still sends 'u' in the new tuple; the old tuple has the value.
    if (column->kind == TupleColumnKind::kUnchangedToast && old_full_tuple != nullptr &&
        (*old_full_tuple)[i].kind == TupleColumnKind::kText) {
      column = &(*old_full_tuple)[i];
    }
    switch (column->kind) {
      case TupleColumnKind::kNull:
        batch.values.push_back(Value{0, 0, ValueKind::kNull});
        break;
      case TupleColumnKind::kUnchangedToast:
        batch.values.push_back(Value{0, 0, ValueKind::kUnavailable});
        break;
      case TupleColumnKind::kText: {
        Result<Value> value = AppendCanonical(relation.types[i], column->data, batch);
        if (!value.ok()) {
          return Status(value.status().code(),
                        fmt::format("{} (table {}.{}, column {})", value.status().message(),
                                    relation.schema->schema, relation.schema->table,
                                    relation.schema->columns[i].name));
        }
        batch.values.push_back(*value);
        break;
      }
      case TupleColumnKind::kBinary:
        return Status::CorruptData("postgres: binary tuple data was not requested");
    }
  }
  return Status::Ok();
}

Status PostgresSource::HandleRow(uint64_t lsn, Batch& batch) {
  const RowChange& change = message_.change;
  auto it = relations_.find(change.relation_id);
  if (it == relations_.end()) {
    return Status::CorruptData(fmt::format(
        "postgres: row for relation {} arrived before its Relation message", change.relation_id));
  }
  const Relation& relation = it->second;
  if (snapshotter_.pending())
    snapshotter_.OnChange(change.relation_id, txn_xid_, relation.schema->columns, change);
  Event event;
  event.table = batch.Retain(relation.schema);
  StartEvent(event, lsn, batch);
  const std::vector<TupleColumn>* old_full =
      change.old_kind == OldTupleKind::kFull ? &change.old_tuple : nullptr;
  if (change.old_kind != OldTupleKind::kNone) {
    event.before = static_cast<uint32_t>(batch.values.size());
    RETURN_IF_ERROR(AppendTuple(relation, change.old_tuple, nullptr, batch));
  }
  switch (message_.type) {
    case PgoutputType::kInsert:
      event.op = Op::kCreate;
      break;
    case PgoutputType::kUpdate:
      event.op = Op::kUpdate;
      break;
    default:
      event.op = Op::kDelete;
      break;
  }
  if (event.op != Op::kDelete) {
    event.after = static_cast<uint32_t>(batch.values.size());
    RETURN_IF_ERROR(AppendTuple(relation, change.new_tuple, old_full, batch));
  }
  batch.events.push_back(event);
  return Status::Ok();
}

Status PostgresSource::HandleTruncate(uint64_t lsn, Batch& batch) {
  for (uint32_t relation_id : message_.truncate.relation_ids) {
    auto it = relations_.find(relation_id);
    if (it == relations_.end()) {
      return Status::CorruptData(fmt::format(
          "postgres: truncate of relation {} arrived before its Relation message", relation_id));
    }
    snapshotter_.OnTruncate(relation_id);
    Event event;
    event.op = Op::kTruncate;
    event.table = batch.Retain(it->second.schema);
    StartEvent(event, lsn, batch);
    batch.events.push_back(event);
  }
  return Status::Ok();
}

// PostgreSQL replays a transaction's messages with its changes at commit, and decodes a
// non-transactional one when it reads it, between the transactions it sends. WAL records start
// and end on 8-byte boundaries, so `lsn - 1` (lsn: where the message's record ends, or starts)
// is no record's LSN yet lies after every record before the message and before every record
// after it: a transactional message's position is its transaction's commit LSN, `lsn - 1` and
// the next change's sequence number, so it sorts between the changes around it without
// renumbering them (rows keep the positions they have with messages off); a non-transactional
// one's is `lsn - 1`, `lsn`, 0, between the transactions committed before and after it.
Status PostgresSource::HandleMessage(uint64_t lsn, Batch& batch) {
  const LogicalMessage& message = message_.message;
  if (message.prefix == kMessagePrefix) {
    if (!message.transactional()) return Status::Ok();
    ASSIGN_OR_RETURN(bool chunk_ready, snapshotter_.OnMessage(message.content));
    return chunk_ready ? EmitSnapshotChunk(lsn, batch) : Status::Ok();
  }
  if (options_.logical_messages.empty() ||
      !MatchesAny(options_.logical_messages, std::string(message.prefix))) {
    return Status::Ok();
  }
  if (message_table_ == nullptr) {
    auto table = std::make_shared<TableSchema>();
    table->connector = "postgresql";
    table->source = options_.name;
    table->database = database_;
    table->version = 0;  // no table, no schema version
    message_table_ = std::move(table);
  }
  Event event;
  event.op = Op::kMessage;
  event.table = batch.Retain(message_table_);
  event.meta.lsn = lsn;
  if (in_transaction_) {
    if (message.transactional()) {
      event.meta.commit_ts_us = txn_commit_ts_us_;
      event.meta.commit_lsn = txn_commit_lsn_;
      event.meta.txid = txn_xid_;
    } else {
      event.meta.commit_ts_us = UnixMicrosNow();
    }
    event.meta.sequence = txn_sequence_;
    event.position = AppendPosition(txn_commit_lsn_, lsn - 1, txn_sequence_, batch);
    batch.ends_inside_transaction = true;
  } else {
    // No commit time: the time it was received.
    event.meta.commit_ts_us = UnixMicrosNow();
    event.position = AppendPosition(lsn - 1, lsn, 0, batch);
  }
  event.after = static_cast<uint32_t>(batch.values.size());
  batch.values.push_back(batch.AddValue(ValueKind::kString, message.prefix));
  batch.values.push_back(batch.AddValue(ValueKind::kString, message.content));
  batch.events.push_back(event);
  // Between transactions the message is as good a checkpoint as a commit: every transaction
  // that commits before it was sent, and a restart at `lsn` sends none of them again.
  if (!in_transaction_ && streams_.empty() && !replay_ && lsn > handed_lsn_) {
    handed_lsn_ = lsn;
    batch.commit_position = PositionText(lsn);
    batch.ends_inside_transaction = false;
  }
  return Status::Ok();
}

Status PostgresSource::Acknowledge(const std::string& position) {
  std::optional<PgPosition> parsed = ParsePosition(position);
  if (!parsed) return Status::Fatal("postgres: acknowledged position is not this source's");
  if (parsed->lsn <= flushed_lsn_ || !stream_) return Status::Ok();
  flushed_lsn_ = parsed->lsn;
  // Before the stream starts there is no one to tell.
  if (snapshotter_.exported()) return Status::Ok();
  return SendStatus(false);
}

SourceGauges PostgresSource::Sample() {
  SourceGauges gauges;
  gauges.snapshot_tables_remaining = snapshotter_.tables_left();
  if (!catalog_) return gauges;
  Result<TextRows> rows = catalog_->Query(
      "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
      "FROM pg_replication_slots WHERE slot_name = " +
      catalog_->QuoteLiteral(options_.slot));
  if (!rows.ok() || rows->empty() || rows->at(0).at(0).empty()) {
    // A metric is not worth failing the stream for; say so once per streak of failures.
    if (!sample_failed_) {
      spdlog::warn("postgres: Cannot measure the slot lag source={} slot={} error=\"{}\"",
                   options_.name, options_.slot,
                   rows.ok() ? "slot not found" : rows.status().message());
    }
    sample_failed_ = true;
    return gauges;
  }
  sample_failed_ = false;
  // Clamped at 0: a keepalive's position, once confirmed, can be past the insert position.
  gauges.slot_lag_bytes =
      static_cast<uint64_t>(std::max<int64_t>(std::stoll(rows->at(0).at(0)), 0));
  return gauges;
}

void PostgresSource::Close() {
  if (stream_) {
    // Tell the server how far we got before leaving; best effort, the checkpoint is saved.
    if (PQstatus(stream_->get()) == CONNECTION_OK && !snapshotter_.exported()) {
      (void)SendStatus(false);
      PQputCopyEnd(stream_->get(), nullptr);
      PQflush(stream_->get());
    }
    stream_.reset();
  }
  snapshotter_.Close();
  catalog_.reset();
  relations_.clear();
  custom_types_.clear();
  RemoveSpools();
  in_transaction_ = false;
}

Status RequestSnapshot(const PostgresSourceOptions& options, const std::string& schema,
                       const std::string& table) {
  const std::string name = schema + "." + table;
  if (!MatchesAny(options.tables, name) || MatchesAny(options.exclude_tables, name)) {
    return Status::InvalidConfig(fmt::format(
        "source {} does not capture table {}: it is not matched by `tables` (or is excluded)",
        options.name, name));
  }
  ASSIGN_OR_RETURN(PgConnection catalog,
                   PgConnection::Open(options.dsn, PgConnection::Mode::kNormal));
  ASSIGN_OR_RETURN(std::optional<CatalogTable> found, ReadCatalogTable(catalog, schema, table));
  if (!found) {
    return Status::InvalidConfig(
        fmt::format("source {}: table {} does not exist in the database", options.name, name));
  }
  return catalog.Query(SnapshotRequestSql(catalog, options.name, schema, table)).status();
}

}  // namespace tributary::postgres
