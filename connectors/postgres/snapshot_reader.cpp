#include "connectors/postgres/snapshot_reader.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <array>
#include <utility>

#include "agent/core/logging.h"

namespace tributary::postgres {

namespace {

// Chunks read but not yet taken. Two keep the server busy while the source emits one; each
// holds chunk_rows rows in memory.
constexpr size_t kReadAhead = 2;

// How often the watcher looks for sessions waiting for the exported snapshot's locks: about as
// long as an ALTER TABLE, and the queries queued behind it, may wait.
constexpr std::chrono::milliseconds kWaiterCheckInterval{250};
// Like the source's catalog queries: a server that stopped answering fails the check in time.
constexpr std::chrono::milliseconds kWatchAnswerTimeout{15000};

}  // namespace

SnapshotReader::SnapshotReader(std::string source_name, std::string dsn)
    : source_name_(std::move(source_name)), dsn_(std::move(dsn)) {}

SnapshotReader::~SnapshotReader() { Close(); }

void SnapshotReader::Start(SnapshotReadJob job) {
  Stop();
  {
    std::lock_guard lock(mutex_);
    running_ = true;
    stop_ = false;
    failure_ = Status::Ok();
  }
  thread_ = std::thread([this, job = std::move(job)] { Run(job); });
}

void SnapshotReader::Stop() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      // An exported snapshot's session cannot be replaced: its chunk is let finish instead.
      if (running_ && cancel_ != nullptr && !exported_session_) {
        cancelled_ = true;
        // A chunk's SELECT of a large keyless table can take long; stopping should not.
        std::array<char, 256> error{};
        PQcancel(cancel_, error.data(), static_cast<int>(error.size()));
      }
    }
    changed_.notify_all();
    thread_.join();
  }
  std::lock_guard lock(mutex_);
  // The session may be inside the interrupted chunk's transaction.
  if (cancelled_) conn_.reset();
  cancelled_ = false;
  ready_.clear();
  running_ = false;
  failure_ = Status::Ok();
}

void SnapshotReader::Close() {
  {
    std::lock_guard lock(watch_mutex_);
    watch_stop_ = true;
  }
  watch_changed_.notify_all();
  {
    // The session goes anyway: a chunk still being read is cut short, even from a server that
    // stopped answering. An idle one is closed the polite way below.
    std::lock_guard lock(mutex_);
    if (running_) EndExportedSession();
    exported_session_ = false;
  }
  Stop();
  if (watcher_.joinable()) watcher_.join();
  conn_.reset();
  exported_ended_ = false;
}

Result<std::optional<SnapshotChunk>> SnapshotReader::Next(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, wait, [&] { return !ready_.empty() || !running_; });
  if (!ready_.empty()) {
    SnapshotChunk chunk = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return std::optional<SnapshotChunk>(std::move(chunk));
  }
  if (!failure_.ok()) return failure_;
  return std::optional<SnapshotChunk>();
}

Status SnapshotReader::Connect() {
  if (conn_) return Status::Ok();
  ASSIGN_OR_RETURN(PgConnection conn, PgConnection::Open(dsn_, PgConnection::Mode::kNormal));
  // The walsender sends only flushed WAL: after an asynchronous commit a watermark would wait
  // for the WAL writer (up to wal_writer_delay), and every chunk with it.
  RETURN_IF_ERROR(conn.Command("SET synchronous_commit = local"));
  // A SQL_ASCII database sends its bytes unconverted, UTF-8 or not, and would refuse them back
  // in the next chunk's key literal from a UTF-8 client, before the values are checked (which
  // names the column).
  if (const char* encoding = PQparameterStatus(conn.get(), "server_encoding");
      encoding != nullptr && std::string_view(encoding) == "SQL_ASCII") {
    RETURN_IF_ERROR(conn.Command("SET client_encoding = 'SQL_ASCII'"));
  }
  conn_ = std::move(conn);
  return Status::Ok();
}

Status SnapshotReader::BeginExported(const std::string& snapshot_name, const std::string& tables) {
  RETURN_IF_ERROR(Connect());
  // lock_timeout: a table held by an ALTER now is better read with watermarks than waited for.
  Status begun = conn_->Command(
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT " +
      conn_->QuoteLiteral(snapshot_name) + "; SET LOCAL lock_timeout = '5s'; LOCK TABLE " + tables +
      " IN ACCESS SHARE MODE");
  if (!begun.ok()) {
    conn_.reset();
    return begun;
  }
  {
    std::lock_guard lock(mutex_);
    exported_session_ = true;
  }
  {
    std::lock_guard lock(watch_mutex_);
    watch_stop_ = false;
  }
  watcher_ = std::thread([this, pid = PQbackendPID(conn_->get())] { WatchForWaiters(pid); });
  return Status::Ok();
}

void SnapshotReader::WatchForWaiters(int pid) {
  Result<PgConnection> conn = PgConnection::Open(dsn_, PgConnection::Mode::kNormal);
  if (conn.ok()) conn->SetAnswerTimeout(kWatchAnswerTimeout);
  // pg_locks, not pg_stat_activity: the wait of another role's session shows there without
  // pg_read_all_stats.
  const std::string check = fmt::format(
      "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND {} = "
      "ANY(pg_blocking_pids(pid))",
      pid);
  while (true) {
    Result<TextRows> waiting = conn.ok() ? conn->Query(check) : Result<TextRows>(conn.status());
    if (waiting.ok() && waiting->at(0).at(0) == "0") {
      std::unique_lock lock(watch_mutex_);
      if (watch_changed_.wait_for(lock, kWaiterCheckInterval, [&] { return watch_stop_; })) return;
      continue;
    }
    if (waiting.ok()) {
      spdlog::info(
          "postgres: Another session waits for a lock the initial snapshot holds: ending its "
          "session, reading on with watermarks source={} waiting_sessions={}",
          source_name_, waiting->at(0).at(0));
    } else {
      spdlog::warn(
          "postgres: Cannot look for sessions waiting for the initial snapshot's locks: ending "
          "its session, reading on with watermarks source={} error=\"{}\"",
          source_name_, waiting.status().message());
    }
    exported_ended_ = true;
    std::lock_guard lock(mutex_);
    EndExportedSession();
    return;
  }
}

void SnapshotReader::EndExportedSession() {
  // The server ends a session whose client hung up, its transaction and locks with it, as soon
  // as it reads or writes the socket; a reader waiting for the chunk's rows gets an error at
  // once. The descriptor stays open until conn_ is closed, so it is never another's.
  if (exported_session_ && conn_ && conn_->get() != nullptr) {
    shutdown(PQsocket(conn_->get()), SHUT_RDWR);
  }
}

void SnapshotReader::Run(const SnapshotReadJob& job) {
  Status status;
  if (!job.exported) {
    status = Connect();
  } else if (std::lock_guard lock(mutex_); !conn_ || !exported_session_) {
    status = Status::Retriable("postgres: the session holding the exported snapshot is gone");
  }
  if (status.ok()) {
    std::lock_guard lock(mutex_);
    cancel_ = PQgetCancel(conn_->get());
  }
  std::optional<std::vector<std::string>> after_key = job.after_key;
  for (uint64_t serial = 0; status.ok(); ++serial) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || ready_.size() < kReadAhead; });
      if (stop_) break;
    }
    Result<SnapshotChunk> chunk = ReadChunk(job, serial, after_key);
    if (!chunk.ok()) {
      status = chunk.status();
      break;
    }
    const bool last = chunk->changed || !chunk->more;
    {
      std::lock_guard lock(mutex_);
      ready_.push_back(std::move(*chunk));
    }
    changed_.notify_all();
    if (last) break;
  }
  std::lock_guard lock(mutex_);
  if (cancel_ != nullptr) {
    PQfreeCancel(cancel_);
    cancel_ = nullptr;
  }
  // After a failure the session may be inside the chunk's transaction.
  if (!status.ok()) conn_.reset();
  if (!status.ok() && !stop_) {
    spdlog::debug("postgres: Snapshot reader failed source={} error=\"{}\"", source_name_,
                  status.message());
    failure_ = std::move(status);
  }
  running_ = false;
  changed_.notify_all();
}

Result<SnapshotChunk> SnapshotReader::ReadChunk(
    const SnapshotReadJob& job, uint64_t serial,
    std::optional<std::vector<std::string>>& after_key) {
  PgConnection& conn = *conn_;
  const CatalogTable& table = job.table;
  SnapshotChunk chunk;
  chunk.serial = serial;
  // One round trip: the chunk's transaction, then its high watermark in a transaction of its
  // own, after the SELECT's snapshot. Within the chunk's transaction, after the SELECT (whose
  // lock keeps ALTER TABLE out until COMMIT):
  // - the columns as the catalog has them now, to compare with those reading began with;
  // - the snapshot itself: a transaction the stream delivered before the chunk's window may
  //   still be invisible to it (its backend still finishing the commit, e.g. waiting for a
  //   synchronous standby), and then the chunk is read again (Snapshotter::TakeChunk);
  // - whether the table (or a partition) was rewritten after the snapshot was taken: its file
  //   as the snapshot sees pg_class against the one the server uses now. A rewrite (ALTER
  //   TABLE … TYPE, even to the same type) is not MVCC-safe: an older snapshot sees the new
  //   file's rows as not yet committed, the table as empty. It can commit between the
  //   snapshot and the lock the SELECT waits for; for an exported snapshot, between the slot's
  //   creation and the lock taken when reading began. (Written as one index lookup per
  //   relation: the chunk's planner settings would make a scan of pg_class cost enough to be
  //   compiled, about 90 ms a chunk.)
  //
  // An exported job reads in the transaction of the slot's snapshot, which locked the table
  // before the catalog was read: the columns are compared as that snapshot has them, so that
  // an ALTER between the slot's creation and the lock is caught.
  const std::string check = fmt::format(
      "; SELECT (SELECT string_agg(octet_length(a.attname) || ':' || a.attname || ':' || "
      "a.atttypid || ':' || a.atttypmod, ',' ORDER BY a.attnum) FROM pg_attribute a "
      "WHERE a.attrelid = {0} AND a.attnum > 0 AND NOT a.attisdropped AND "
      "a.attgenerated = ''), pg_current_snapshot()::text, EXISTS (SELECT FROM (SELECT "
      "{0}::oid AS relid UNION ALL SELECT relid FROM pg_partition_tree({0})) t WHERE (SELECT "
      "NULLIF(c.relfilenode, 0) FROM pg_class c WHERE c.oid = t.relid) <> "
      "pg_relation_filenode(t.relid))",
      table.oid);
  const std::string select = ChunkQuery(conn, table, after_key, job.until_key, job.chunk_rows + 1);
  // Once locked in the exported snapshot's transaction, the table cannot change: only its first
  // chunk is checked.
  const bool checked = !job.exported || serial == 0;
  const std::string sql =
      job.exported
          ? select + (checked ? check : "")
          : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; " + select + check + "; COMMIT; " +
                "SELECT pg_logical_emit_message(true, " + conn.QuoteLiteral(kMessagePrefix) + ", " +
                conn.QuoteLiteral(WatermarkMessage(source_name_, "high",
                                                   job.chunk_id_prefix + std::to_string(serial))) +
                ")";
  const size_t expected = job.exported ? (checked ? 2 : 1) : 3;
  if (PQsendQuery(conn.get(), sql.c_str()) != 1) {
    return ClassifyPgError(conn.get(), nullptr, "snapshot chunk query failed");
  }
  std::vector<PgResult> tuples;  // the chunk's rows, the check, the watermark (if any)
  Status failure;
  bool changed = false;
  while (PgResult result{PQgetResult(conn.get())}) {
    const ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_TUPLES_OK) {
      tuples.push_back(std::move(result));
    } else if (status != PGRES_COMMAND_OK && failure.ok() && !changed) {
      const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
      // undefined_table, undefined_column: dropped or altered since reading began.
      changed = state != nullptr &&
                (std::string_view(state) == "42P01" || std::string_view(state) == "42703");
      if (!changed) failure = ClassifyPgError(conn.get(), result.get(), "snapshot chunk failed");
    }
  }
  RETURN_IF_ERROR(failure);
  if (!changed && tuples.size() != expected) {
    return Status::Fatal(
        fmt::format("postgres: the snapshot chunk query returned {} row sets, expected {} (a bug)",
                    tuples.size(), expected));
  }
  if (!changed && checked) {
    std::string columns;
    for (const CatalogColumn& column : table.columns) {
      if (!columns.empty()) columns += ',';
      columns += fmt::format("{}:{}:{}:{}", column.name.size(), column.name, column.type_oid,
                             column.type_modifier);
    }
    changed = columns != PQgetvalue(tuples[1].get(), 0, 0) ||
              std::string_view(PQgetvalue(tuples[1].get(), 0, 2)) == "t";
  }
  if (changed) {
    // A failed statement left the chunk's transaction open, aborted; else it committed. An
    // exported job's transaction is the caller's to end.
    if (!job.exported && tuples.size() != expected) {
      PgResult ended(PQexec(conn.get(), "ROLLBACK"));
    }
    chunk.changed = true;
    return chunk;
  }
  PgResult& rows = tuples[0];
  const int count = PQntuples(rows.get());
  chunk.more = !table.primary_key.empty() && static_cast<size_t>(count) > job.chunk_rows;
  chunk.row_count = chunk.more ? static_cast<int>(job.chunk_rows) : count;
  // Watermark chunks only: the exported snapshot's chunks are emitted before any streamed
  // transaction, so none can be missing from them.
  if (!job.exported) {
    std::optional<PgSnapshot> snapshot = ParsePgSnapshot(PQgetvalue(tuples[1].get(), 0, 1));
    if (!snapshot) {
      return Status::Fatal(fmt::format("postgres: the server wrote a snapshot as \"{}\" (a bug)",
                                       PQgetvalue(tuples[1].get(), 0, 1)));
    }
    chunk.snapshot = std::move(*snapshot);
  }
  if (chunk.more) {
    std::vector<std::string> key;
    key.reserve(table.primary_key.size());
    for (size_t column : table.primary_key) {
      key.emplace_back(PQgetvalue(rows.get(), chunk.row_count - 1, static_cast<int>(column)));
    }
    after_key = std::move(key);
  }
  chunk.rows = std::move(rows);
  return chunk;
}

}  // namespace tributary::postgres
