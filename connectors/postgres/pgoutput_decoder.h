#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

// Decoding of pgoutput logical replication messages (proto_version 1 and the streaming
// messages of 2): bytes in, structs out, no I/O.
//
// Every std::string_view in a decoded message points into the bytes that were decoded: it
// dangles once those bytes are freed (PQfreemem) or reused.
//
// Timestamps are raw PostgreSQL microseconds since 2000-01-01; see PostgresToUnixMicros in
// replication_messages.h.

namespace tributary::postgres {

enum class PgoutputType : char {
  kBegin = 'B',
  kCommit = 'C',
  kOrigin = 'O',
  kRelation = 'R',
  kType = 'Y',
  kInsert = 'I',
  kUpdate = 'U',
  kDelete = 'D',
  kTruncate = 'T',
  kMessage = 'M',
  kStreamStart = 'S',
  kStreamStop = 'E',
  kStreamCommit = 'c',
  kStreamAbort = 'A',
};

struct BeginMessage {
  uint64_t final_lsn = 0;
  int64_t commit_ts_pg_us = 0;
  uint32_t xid = 0;
};

struct CommitMessage {
  uint8_t flags = 0;  // unused by the server so far
  uint64_t commit_lsn = 0;
  uint64_t end_lsn = 0;  // what to report as flushed once the transaction is durable
  int64_t commit_ts_pg_us = 0;
};

struct OriginMessage {
  uint64_t commit_lsn = 0;  // the commit's LSN on the origin server
  std::string_view name;
};

enum class ReplicaIdentity : char {
  kDefault = 'd',  // primary key
  kNothing = 'n',
  kFull = 'f',
  kIndex = 'i',
};

struct RelationColumn {
  uint8_t flags = 0;
  std::string_view name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;

  // Part of the replica identity: present in 'K' old tuples.
  bool key() const { return (flags & 1) != 0; }
};

struct RelationMessage {
  uint32_t relation_id = 0;
  std::string_view schema;  // the namespace; empty stands for pg_catalog
  std::string_view name;
  ReplicaIdentity replica_identity = ReplicaIdentity::kDefault;
  std::vector<RelationColumn> columns;
};

// Sent before the first use of a non-builtin type in a relation.
struct TypeMessage {
  uint32_t type_oid = 0;
  std::string_view schema;
  std::string_view name;
};

enum class TupleColumnKind : char {
  kNull = 'n',
  kUnchangedToast = 'u',  // an out-of-line value the server did not send: unknown, not null
  kText = 't',
  kBinary = 'b',
};

struct TupleColumn {
  TupleColumnKind kind = TupleColumnKind::kNull;
  std::string_view data;  // kText and kBinary only
};

enum class OldTupleKind : char {
  kNone = 0,
  kKey = 'K',   // replica identity columns only; the others are kNull
  kFull = 'O',  // the whole old row (REPLICA IDENTITY FULL)
};

// Insert, Update and Delete share one struct so their vectors share capacity.
struct RowChange {
  uint32_t relation_id = 0;
  OldTupleKind old_kind = OldTupleKind::kNone;
  std::vector<TupleColumn> old_tuple;  // empty unless old_kind != kNone
  std::vector<TupleColumn> new_tuple;  // empty for Delete
};

struct TruncateMessage {
  uint8_t options = 0;
  std::vector<uint32_t> relation_ids;

  bool cascade() const { return (options & 1) != 0; }
  bool restart_identity() const { return (options & 2) != 0; }
};

// pg_logical_emit_message().
struct LogicalMessage {
  uint8_t flags = 0;
  uint64_t lsn = 0;
  std::string_view prefix;
  std::string_view content;

  bool transactional() const { return (flags & 1) != 0; }
};

struct StreamStartMessage {
  uint32_t xid = 0;
  bool first_segment = false;
};

struct StreamCommitMessage {
  uint32_t xid = 0;
  uint8_t flags = 0;
  uint64_t commit_lsn = 0;
  uint64_t end_lsn = 0;
  int64_t commit_ts_pg_us = 0;
};

struct StreamAbortMessage {
  uint32_t xid = 0;
  uint32_t subxid = 0;  // equals xid when the whole transaction aborts
  // Only sent with proto_version 4 and streaming 'parallel'; zero otherwise.
  uint64_t abort_lsn = 0;
  int64_t abort_ts_pg_us = 0;
};

// A decoded message. Keep one and pass it to every DecodePgoutput call: only the member that
// `type` names is meaningful, and the vectors keep their capacity, so that a warm decoder does
// not allocate. After an error its contents are unspecified.
struct PgoutputMessage {
  PgoutputType type = PgoutputType::kBegin;
  // Relation, Type, row changes, Truncate and Message decoded with `in_stream`: the xid of
  // the streamed transaction they belong to. 0 (InvalidTransactionId) otherwise.
  uint32_t stream_xid = 0;
  BeginMessage begin;
  CommitMessage commit;
  OriginMessage origin;
  RelationMessage relation;
  TypeMessage data_type;
  RowChange change;  // Insert, Update, Delete
  TruncateMessage truncate;
  LogicalMessage message;
  StreamStartMessage stream_start;
  StreamCommitMessage stream_commit;
  StreamAbortMessage stream_abort;
};

// Decodes one pgoutput message, the payload of an XLogData. `in_stream` is true between a
// Stream Start and its Stream Stop, where the messages that can belong to a streamed
// transaction carry its xid first. Malformed bytes (truncation, unknown message or column
// kinds, negative lengths, impossible counts, trailing bytes) give kCorruptData
// "pgoutput: <what> at offset N".
Status DecodePgoutput(std::string_view bytes, PgoutputMessage& out, bool in_stream = false);

}  // namespace tributary::postgres
