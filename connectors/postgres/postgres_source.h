#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "agent/core/source.h"
#include "connectors/postgres/pg_connection.h"
#include "connectors/postgres/pg_type.h"
#include "connectors/postgres/pgoutput_decoder.h"
#include "connectors/postgres/replication_messages.h"
#include "connectors/postgres/snapshot.h"
#include "connectors/postgres/stream_spool.h"

namespace tributary::postgres {

struct PostgresSourceOptions {
  std::string name;
  std::string dsn;
  std::vector<std::string> tables;          // "schema.table" globs
  std::vector<std::string> exclude_tables;  // likewise
  std::string slot;
  std::string publication;
  // How often a standby status update goes out when nothing else prompts one; keep it well
  // inside the server's wal_sender_timeout (60 s by default).
  std::chrono::milliseconds heartbeat_interval{10000};
  // Snapshot the captured tables when there is no checkpoint (docs/snapshots.md).
  bool initial_snapshot = true;
  size_t snapshot_chunk_rows = 8192;
  // Ask servers that can (PostgreSQL 14+) to stream in-progress transactions (pgoutput
  // proto_version 2), spooled under `state_dir` until they commit.
  bool streaming = false;
  // Prefix globs of the logical decoding messages emitted as events (op "m"); empty: none. The
  // agent's own prefix (kMessagePrefix) is never emitted.
  std::vector<std::string> logical_messages;
  // This source's own directory in the agent's state_dir. Empty: no streaming.
  std::filesystem::path state_dir;
};

// PostgreSQL logical replication with pgoutput, and snapshots read beside the stream
// (snapshot.h). The checkpoint is the end LSN of the last durably delivered commit, in
// PostgreSQL's "X/Y" form, followed by the snapshot's progress while one runs.
//
// With `streaming` on a PostgreSQL 14+ server (proto_version 2), the server sends a large
// transaction in chunks while it is still in progress. Each one's chunks go to a spool file
// (stream_spool.h) and reach the pipeline only at its Stream Commit, replayed through the same
// path as a transaction sent whole, so events, positions and checkpoints do not tell the two
// apart.
class PostgresSource : public Source {
 public:
  explicit PostgresSource(PostgresSourceOptions options);
  ~PostgresSource() override;

  Status Open(const std::optional<std::string>& checkpoint) override;
  Status Poll(Batch& batch, size_t max_bytes, std::chrono::milliseconds timeout) override;
  Status Acknowledge(const std::string& position) override;
  // Asks the catalog connection for the slot's lag: one small query every few seconds.
  SourceGauges Sample() override;
  void Close() override;

 private:
  struct Relation {
    std::shared_ptr<const TableSchema> schema;
    std::vector<PgType> types;  // one per column
  };

  using TableName = std::pair<std::string, std::string>;  // schema, table

  // The tables `tables` and `exclude_tables` match now, with their OIDs.
  Result<std::map<TableName, std::string>> MatchingTables();
  Result<std::vector<TableName>> ResolveTables();
  // Creates the publication, or sets its tables to `tables`; `resuming` when streaming will
  // restart from a checkpoint, in which case tables new to the publication get an on-demand
  // snapshot (with `snapshot: initial`).
  Status EnsurePublication(const std::vector<TableName>& tables, bool resuming);
  // Adds the tables created (or created again) under the globs since Open to the publication.
  Status CaptureNewTables();
  // The LSN to stream from. A slot it creates for an initial snapshot exports its snapshot,
  // named in `exported_snapshot`.
  Result<uint64_t> PrepareSlot(const std::optional<uint64_t>& checkpoint_lsn,
                               std::string& exported_snapshot);
  // Emits the initial snapshot from the slot's exported snapshot, then starts the stream.
  Status PollExported(Batch& batch, std::chrono::milliseconds timeout);
  Status StartStreaming(uint64_t start_lsn);
  Status SendStatus(bool reply_requested);
  std::chrono::milliseconds ReceiveTimeout() const;
  Status HandleCopyData(std::string_view bytes, Batch& batch, bool& commit_seen);
  // Streamed transactions: Stream Start, Stop, Commit and Abort, and the messages in between.
  Status HandleStreamControl();
  Status SpoolStreamed(uint64_t lsn, std::string_view bytes);
  // Replays the committed streamed transaction in replay_ into `batch`, until the batch is
  // full or the transaction ends.
  Status ReplayStreamed(Batch& batch, size_t max_bytes, bool& commit_seen);
  std::filesystem::path SpoolPath(uint32_t xid) const;
  void RemoveSpools();
  Status HandlePgoutput(uint64_t lsn, Batch& batch, bool& commit_seen);
  Status HandleRelation();
  Status HandleRow(uint64_t lsn, Batch& batch);
  Status HandleTruncate(uint64_t lsn, Batch& batch);
  // A logical decoding message: the agent's own go to the snapshotter; others matching
  // `logical_messages` become events.
  Status HandleMessage(uint64_t lsn, Batch& batch);
  Status EmitSnapshotChunk(uint64_t lsn, Batch& batch);
  Result<Relation> MakeRelation(std::string schema, std::string table, uint32_t relation_id,
                                const std::vector<CatalogColumn>& columns);
  std::string PositionText(uint64_t lsn) const {
    return FormatPosition(lsn, snapshotter_.encoded_progress());
  }
  Result<PgType> ResolveType(uint32_t oid);
  Status AppendTuple(const Relation& relation, const std::vector<TupleColumn>& tuple,
                     const std::vector<TupleColumn>* old_full_tuple, Batch& batch);
  void StartEvent(Event& event, uint64_t lsn, Batch& batch);

  PostgresSourceOptions options_;
  std::optional<PgConnection> catalog_;
  std::optional<PgConnection> stream_;
  std::string database_;

  PgoutputMessage message_;
  CopyDataMessage copy_data_;
  std::unordered_map<uint32_t, Relation> relations_;
  std::unordered_map<uint32_t, PgType> custom_types_;
  std::unordered_set<uint32_t> warned_types_;
  // What message events point at as their table: names the source and database; no columns.
  std::shared_ptr<const TableSchema> message_table_;
  Snapshotter snapshotter_;
  bool chunk_in_batch_ = false;  // this Poll put a snapshot chunk into the batch
  // While the initial snapshot is read from the slot's exported snapshot: the slot's
  // consistent point, where the stream starts afterwards.
  uint64_t exported_lsn_ = 0;
  uint32_t exported_chunks_ = 0;  // emitted so far, to order their rows' positions

  // The transaction being decoded.
  uint64_t txn_commit_lsn_ = 0;
  int64_t txn_commit_ts_us_ = 0;
  uint32_t txn_xid_ = 0;
  uint32_t txn_sequence_ = 0;

  bool in_transaction_ = false;  // between Begin and Commit
  uint64_t handed_lsn_ = 0;      // the latest position put into a batch
  uint64_t received_lsn_ = 0;    // furthest WAL position seen
  uint64_t flushed_lsn_ = 0;     // the latest durably checkpointed position
  std::chrono::steady_clock::time_point last_status_{};
  std::chrono::steady_clock::time_point last_receive_{};
  bool sample_failed_ = false;                 // the last slot lag query failed, and said so
  std::map<TableName, std::string> captured_;  // the tables in the publication, with their OIDs
  std::set<std::string> refused_;        // OIDs of tables the role may not add to the publication
  std::set<std::string> unpublishable_;  // OIDs of new tables without a replica identity, warned
  std::chrono::steady_clock::time_point next_table_check_{};

  // A streamed transaction between its first Stream Start and its Stream Commit or Abort.
  struct StreamedTxn {
    StreamSpool spool;
    // Subtransactions that rolled back (Stream Abort with their xid): their changes are
    // skipped at replay. Their Relation and Type messages are not: pgoutput does not send a
    // relation twice in one transaction, whichever subtransaction it went out in.
    std::unordered_set<uint32_t> aborted_subxids;
  };
  bool streaming_ = false;         // negotiated at Open: option on and server 14+
  uint32_t stream_block_xid_ = 0;  // the xid of the open Stream Start block; 0 if none
  std::unordered_map<uint32_t, StreamedTxn> streams_;  // by top-level xid
  struct Replay {
    StreamedTxn txn;
    uint64_t end_lsn = 0;
  };
  std::optional<Replay> replay_;  // a committed streamed transaction not yet all in batches
};

// Asks the source to re-snapshot `schema`.`table` while it streams: a logical decoding message
// that the running agent meets in its stream (or meets when it next runs). The table must exist
// and be captured by the source.
Status RequestSnapshot(const PostgresSourceOptions& options, const std::string& schema,
                       const std::string& table);

}  // namespace tributary::postgres
