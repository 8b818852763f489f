#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/core/event.h"
#include "agent/core/status.h"
#include "connectors/postgres/pg_connection.h"
#include "connectors/postgres/pgoutput_decoder.h"

namespace tributary::postgres {

// Snapshots run beside the stream, one primary-key chunk at a time, with DBLog's watermark
// method (docs/snapshots.md): the chunk's SELECT, then a high watermark message. A chunk's
// window opens at the previous chunk's high watermark (the first chunk's when reading begins),
// which committed before the SELECT's snapshot was taken: stream changes to the chunk's keys in
// the window are newer than or equal to the chunk's rows, so those rows are dropped; the rest
// are emitted where the high watermark sits in the stream. A reader thread reads the chunks
// ahead of the stream (SnapshotReader). No locks, and a crash resumes at the next chunk.
//
// The initial snapshot of a new slot reads the slot's exported snapshot instead, before the
// stream starts (BeginExported): the same chunks, emitted as they come, with no watermarks.
// Whatever ends that early (another session waiting for its locks, a table altered before they
// were taken, a crash) leaves the progress so far, and the rest is read with watermarks.

// One table waiting to be snapshotted, or being snapshotted (the front of the queue).
struct SnapshotTable {
  std::string schema;
  std::string table;
  bool incremental = false;  // requested while streaming, not part of the initial snapshot
  // The primary key of the last row done, as column texts; absent before the first chunk.
  std::optional<std::vector<std::string>> after_key;
  // The largest primary key when the table's snapshot began: rows beyond it were inserted since,
  // and the stream carries them, so a busy table's snapshot still ends.
  std::optional<std::vector<std::string>> until_key;
  uint64_t rows = 0;  // rows emitted so far
};

// What is left to snapshot. Travels in the checkpointed position, so it is durable exactly when
// the rows emitted before it are.
struct SnapshotProgress {
  std::deque<SnapshotTable> tables;
  uint64_t initial_rows = 0;  // rows of the initial snapshot emitted so far

  bool empty() const { return tables.empty(); }
};

// "" when there is nothing left; else compact JSON.
std::string EncodeSnapshotProgress(const SnapshotProgress& progress);
Result<SnapshotProgress> DecodeSnapshotProgress(std::string_view text);

// A source position: the LSN to resume streaming from, then, while a snapshot is in progress,
// " snapshot=" and its progress: "0/1529468" or "0/1529468 snapshot={...}".
struct PgPosition {
  uint64_t lsn = 0;
  std::string snapshot;  // encoded SnapshotProgress, or ""
};
std::string FormatPosition(uint64_t lsn, std::string_view snapshot);
std::optional<PgPosition> ParsePosition(std::string_view text);

// The prefix of Tributary's logical decoding messages, and the content of the one that asks a
// running source to re-snapshot a table.
inline constexpr std::string_view kMessagePrefix = "tributary";
std::string SnapshotRequestMessage(std::string_view source, std::string_view schema,
                                   std::string_view table);

// A table's columns as the catalog describes them, in the order pgoutput sends them.
struct CatalogColumn {
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;
  bool identity = false;  // part of the replica identity, as pgoutput flags it
  bool primary = false;   // part of the primary key (pg_index.indisprimary)
  bool nullable = true;   // not pg_attribute.attnotnull
};

// Which columns make the event key (ColumnSchema::key): the primary key when the table has one
// and its replica identity carries all of it (DEFAULT, FULL, or USING INDEX on an index that
// covers it), so that delete events can fill it in; else the replica identity columns.
std::vector<bool> KeyColumns(const std::vector<CatalogColumn>& columns);

struct CatalogTable {
  uint32_t oid = 0;
  std::string schema;
  std::string table;
  std::vector<CatalogColumn> columns;
  std::vector<size_t> primary_key;  // indexes into columns; empty without a primary key
  double estimated_rows = 0;        // pg_class.reltuples
  // A partitioned table (relkind 'p'): its rows are its partitions'. A plain one's are its own,
  // not those of tables that inherit from it, which are captured, and streamed, on their own.
  bool partitioned = false;
};

// Reads a table's description; nullopt when the table no longer exists.
Result<std::optional<CatalogTable>> ReadCatalogTable(PgConnection& catalog,
                                                     const std::string& schema,
                                                     const std::string& table);

// The columns of relation `oid` as the catalog describes them now (identity as for
// REPLICA IDENTITY `replica_identity`, 'd', 'f', 'i' or 'n'), and its primary key as indexes
// into them in key order. Both empty when the relation no longer exists.
Status ReadCatalogColumns(PgConnection& catalog, uint32_t oid, char replica_identity,
                          std::vector<CatalogColumn>& columns, std::vector<size_t>& primary_key);

// The chunk's SELECT: the rows after `after_key` up to `until_key` in primary-key order, `limit`
// of them, or the whole table when it has no primary key.
std::string ChunkQuery(const PgConnection& catalog, const CatalogTable& table,
                       const std::optional<std::vector<std::string>>& after_key,
                       const std::optional<std::vector<std::string>>& until_key, size_t limit);

// SELECT of the table's largest primary key.
std::string LastKeyQuery(const PgConnection& catalog, const CatalogTable& table);

// A PostgreSQL snapshot as pg_current_snapshot() writes it: "xmin:xmax:xip,xip,…" (64-bit
// transaction ids).
struct PgSnapshot {
  uint64_t xmin = 0;
  uint64_t xmax = 0;
  std::vector<uint64_t> xip;  // in progress when it was taken

  // Whether a transaction that committed, known by its 32-bit id as pgoutput sends it, is
  // visible to the snapshot: it finished before xmax and was not in progress.
  bool Sees(uint32_t xid) const;
};
std::optional<PgSnapshot> ParsePgSnapshot(std::string_view text);

// One chunk of a table as the reader read it.
struct SnapshotChunk {
  uint64_t serial = 0;  // within its reading: 0, 1, 2, …
  // The table was dropped or its columns changed since reading began: read it again from the
  // catalog. Nothing else is set.
  bool changed = false;
  PgResult rows;      // the chunk's rows, plus one look-ahead row when `more`
  int row_count = 0;  // rows of the chunk, without the look-ahead row
  bool more = false;  // rows remain after this chunk
  // The SELECT's snapshot, to check that every transaction the stream delivered before the
  // chunk's window is visible to it.
  PgSnapshot snapshot;
};

// A watermark message's content: names the source and the chunk.
std::string WatermarkMessage(std::string_view source, std::string_view kind,
                             std::string_view chunk_id);

class SnapshotReader;

class Snapshotter {
 public:
  // `dsn` is for the reader's connection.
  Snapshotter(std::string source_name, std::string dsn, size_t chunk_rows);
  ~Snapshotter();
  Snapshotter(const Snapshotter&) = delete;
  Snapshotter& operator=(const Snapshotter&) = delete;

  // Starts from `progress` (from the checkpoint, or a fresh initial snapshot); `captured` are
  // the tables a request may name. Drops any chunk in flight.
  void Reset(SnapshotProgress progress, std::vector<std::pair<std::string, std::string>> captured);
  // A table that joined the capture while streaming: requests may name it from now on.
  void Capture(const std::string& schema, const std::string& table);
  // Stops reading and closes the reader's connection.
  void Close();

  // Reads the initial snapshot from the slot's exported snapshot `snapshot_name`, with the
  // stream not yet started; locks the tables left. On failure nothing changed.
  Status BeginExported(const std::string& snapshot_name, PgConnection& catalog);
  // Ends reading the exported snapshot: what is left is read with watermarks.
  void EndExported();
  bool exported() const { return exported_; }
  // While exported(): takes the next chunk, waiting up to `wait`; true when there is one to
  // emit. A table altered before it was locked, another session waiting for the locks, or a
  // failure of the reading session ends reading the exported snapshot.
  Result<bool> TakeExportedChunk(std::chrono::milliseconds wait);

  // Encoded progress after the last chunk emitted: what positions carry.
  const std::string& encoded_progress() const { return encoded_; }
  bool pending() const { return !progress_.empty(); }
  size_t tables_left() const { return progress_.tables.size(); }

  // Starts reading the next table when none is being read, takes a chunk the reader has ready,
  // and reports the reader's failure.
  Status MaybeStartChunk(PgConnection& catalog);

  // A Tributary message from the stream. Returns true when it is the high watermark of the
  // chunk whose window is open: the caller then emits rows() and calls FinishChunk().
  Result<bool> OnMessage(std::string_view content);

  // A streamed change of relation `relation_id`, whose columns are `columns`, by transaction
  // `xid` (committed: pgoutput sends a transaction's changes when it commits).
  void OnChange(uint32_t relation_id, uint32_t xid, const std::vector<ColumnSchema>& columns,
                const RowChange& change);

  // A streamed truncate of relation `relation_id`: rows read before it must not follow it.
  void OnTruncate(uint32_t relation_id) {
    if (reading_ && relation_id == table_.oid) conflict_ = true;
  }

  // The chunk at its high watermark.
  const CatalogTable& chunk_table() const { return table_; }
  const PGresult* chunk_result() const;
  // Row indexes of chunk_result() to emit, in key order.
  std::vector<int> RowsToEmit() const;
  bool incremental() const { return progress_.tables.front().incremental; }
  // Whether emitted rows are the first, or include the last, of the initial snapshot.
  bool at_initial_start() const { return progress_.initial_rows == 0; }
  bool ends_initial_snapshot() const;

  // Advances past the chunk; `emitted` rows were emitted.
  void FinishChunk(size_t emitted);

 private:
  // Keys of the chunk's rows and of changes are the primary key's column texts, each as
  // "<length>:<text>" so that no separator can be forged by a value.
  static void AppendKeyPart(std::string_view text, std::string& key);
  // Takes the next chunk from the reader into chunk_, waiting for it when `wait`.
  Status TakeChunk(bool wait);
  // Marks the chunk's row with key_, when there is one, as dropped.
  void DropKey();
  // Stops reading the table; the next MaybeStartChunk reads on from the progress.
  void StopReading();
  // Opens the next chunk's window: nothing seen in it yet.
  void OpenWindow();

  std::string source_name_;
  size_t chunk_rows_;
  SnapshotProgress progress_;
  std::string encoded_;
  std::vector<std::pair<std::string, std::string>> captured_;
  std::unique_ptr<SnapshotReader> reader_;
  bool exported_ = false;

  // The table being read (the front of the queue), as the catalog described it when reading
  // began; the reader walks it a few chunks ahead.
  bool reading_ = false;
  CatalogTable table_;
  // Chunk ids are this process's nonce, a serial per reading and the chunk's serial, so the
  // watermarks of an earlier run or reading, met again in the stream, never match.
  uint64_t nonce_;
  uint64_t reading_serial_ = 0;
  std::string chunk_id_prefix_;
  // The chunk whose window is open: the first not yet emitted. Its window opened at the
  // previous chunk's high watermark (or when reading began), and may open before the reader
  // has delivered it.
  uint64_t window_serial_ = 0;
  std::optional<SnapshotChunk> chunk_;
  bool conflict_ = false;  // a change in the window could not be matched to a key
  // Transactions that changed a table, by the stream, in the window open now, and before it.
  // A transaction is in the stream once its commit record is flushed, but becomes visible to
  // other sessions only when its backend finishes the commit (after a synchronous standby
  // confirmed it, say): one delivered before a chunk's window whose changes the chunk's
  // SELECT did not see would be overwritten by the chunk's older rows. Such a chunk is read
  // again, a little later. Those visible to a chunk's snapshot are forgotten, since every later
  // snapshot sees them too.
  struct StreamedChange {
    uint32_t xid;
    uint32_t relation_id;
    bool operator==(const StreamedChange&) const = default;
  };
  std::vector<StreamedChange> in_window_;
  std::vector<StreamedChange> before_window_;
  bool invisible_commit_ = false;  // the chunk missed one of before_window_
  bool awaiting_commit_ = false;   // said so, and no chunk emitted since
  std::chrono::steady_clock::time_point read_not_before_{};
  bool columns_checked_ = false;
  // Keys changed in the window before the chunk arrived.
  std::vector<std::string> early_keys_;
  // Built on the first change in the window that needs it: a quiet table never pays for it.
  std::unordered_map<std::string, int> row_by_key_;
  bool keys_indexed_ = false;
  std::string key_;  // reused to build keys
  std::vector<bool> dropped_;
  int attempts_ = 0;  // chunks of the current table discarded in a row
  std::chrono::steady_clock::time_point last_progress_log_{};
};

}  // namespace tributary::postgres
