#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/core/source.h"
#include "connectors/mysql/binlog_event.h"
#include "connectors/mysql/binlog_position.h"
#include "connectors/mysql/mysql_connection.h"
#include "connectors/mysql/rows_event.h"
#include "connectors/mysql/snapshot.h"
#include "connectors/mysql/table_map.h"

struct st_mariadb_rpl;

namespace tributary::mysql {

struct MysqlSourceOptions {
  std::string name;
  std::string dsn;                          // mysql://user:password@host:port
  std::vector<std::string> tables;          // "db.table" globs
  std::vector<std::string> exclude_tables;  // likewise
  uint32_t server_id = 0;                   // our replica id
  // How often an idle server sends a heartbeat: bounds how long a Poll blocks, and a silence
  // several times longer means the connection is dead.
  std::chrono::milliseconds heartbeat_interval{10000};
  // Without a checkpoint, first emit every captured table's rows (op "r") from one consistent
  // snapshot, then stream from the binlog position matching it (MariaDB only).
  bool initial_snapshot = false;
  size_t snapshot_chunk_rows = 8192;  // rows per snapshot query, batch and checkpoint
};

// MySQL / MariaDB binlog streaming through MariaDB Connector/C's replication API, with our own
// event and row decoders. The checkpoint is "<file>:<pos>:<gtid state>" (binlog_position.h).
class MysqlSource : public Source {
 public:
  explicit MysqlSource(MysqlSourceOptions options);
  ~MysqlSource() override;

  Status Open(const std::optional<std::string>& checkpoint) override;
  bool PositionsContinueCheckpoint() const override { return positions_continue_; }
  Status Poll(Batch& batch, size_t max_bytes, std::chrono::milliseconds timeout) override;
  Status Acknowledge(const std::string& position) override;
  SourceGauges Sample() override;
  void Close() override;

 private:
  struct Table {
    std::string body;  // the TABLE_MAP body it was decoded from, to skip decoding repeats
    bool captured = false;
    TableMap map;
    std::shared_ptr<const TableSchema> schema;
  };

  // A captured table as the snapshot reads it.
  struct SnapshotTable {
    std::string name;  // "db.table"
    std::string from;  // quoted `db`.`table`
    std::vector<SnapshotExpression> expressions;
    std::vector<std::string> key;  // quoted primary key columns, in index order; empty: none
    std::shared_ptr<const TableSchema> schema;
  };

  Status CheckServer();
  Status BeginSnapshot(std::optional<BinlogCheckpoint> start, SnapshotProgress progress);
  Status LoadSnapshotTable(const std::string& database, const std::string& name);
  Status PollSnapshot(Batch& batch);
  Result<bool> TablesEmptyFrom(size_t index);
  Status LoadCollations();
  Status StartStream(const std::optional<BinlogCheckpoint>& checkpoint);
  Status CheckGtidContinuity();
  // Whether the server's binlogs hold the checkpoint's file and offset at its GTID state.
  Result<bool> SameBinlogs(const BinlogCheckpoint& checkpoint);
  Status HandleEvent(std::string_view bytes, Batch& batch, bool& commit_seen);
  Status HandleTableMap(std::string_view body);
  Status ResolveCatalogTypes(TableMap& map);
  std::shared_ptr<const TableSchema> SchemaFor(const TableMap& map);
  void HandleDdl(const QueryEvent& query, const RawEvent& raw, uint64_t event_pos, Batch& batch);
  bool Captured(const std::string& name) const;
  Status HandleRows(const RawEvent& event, uint64_t event_pos, Batch& batch);
  void Commit(uint64_t next_pos, Batch& batch);
  void StartEvent(Event& event, const RawEvent& raw, uint64_t event_pos, uint32_t row,
                  Batch& batch);
  uint8_t PostHeaderLength(EventType type, uint8_t fallback) const;
  Status FetchError();

  MysqlSourceOptions options_;
  MysqlDsn dsn_;
  std::optional<MysqlConnection> catalog_;
  std::optional<MysqlConnection> stream_;
  st_mariadb_rpl* rpl_ = nullptr;
  bool mariadb_ = true;
  std::string connector_ = "mariadb";

  ChecksumAlg checksum_ = ChecksumAlg::kOff;
  std::vector<uint8_t> post_header_lengths_;
  std::unordered_map<uint32_t, Charset> collations_;
  // Most bytes per character, by collation id and by character set name (CHARACTER_SETS).
  std::unordered_map<uint32_t, uint8_t> collation_char_bytes_;
  std::unordered_map<std::string, uint8_t> charset_char_bytes_;
  std::unordered_map<uint64_t, Table> tables_;  // by table id
  // Latest schema of each captured "db.table": a TABLE_MAP of the same shape reuses it.
  std::unordered_map<std::string, std::shared_ptr<const TableSchema>> schemas_;
  // The latest DDL statement that gave a captured "db.table" its shape, until the table's next
  // TABLE_MAP builds a schema.
  std::unordered_map<std::string, std::string> pending_ddl_;

  // The initial snapshot, while one is in progress: its transaction, where the stream starts
  // after it, the tables in the order they are read and how far it got.
  std::optional<MysqlConnection> snapshot_;
  bool snapshotting_ = false;
  bool stream_pending_ = false;
  BinlogCheckpoint snapshot_start_;
  int64_t snapshot_ts_us_ = 0;
  std::string snapshot_version_;  // "<file number>.<position>" of this run's snapshot
  std::vector<SnapshotTable> snapshot_tables_;
  size_t snapshot_index_ = 0;
  SnapshotProgress progress_;

  // Stream position: the file, and the offset where the next event starts.
  std::string file_;
  uint64_t file_number_ = 0;
  uint64_t next_pos_ = 4;
  GtidState gtid_state_;
  bool positions_continue_ = true;  // PositionsContinueCheckpoint

  // The transaction being read.
  bool in_transaction_ = false;
  bool standalone_ = false;
  MariaGtid txn_gtid_;
  std::string txn_gtid_text_;  // txn_gtid_ formatted, once per transaction; empty: none
  std::string txn_mysql_gtid_;
  uint32_t txn_thread_ = 0;
};

}  // namespace tributary::mysql
