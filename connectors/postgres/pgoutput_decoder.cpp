#include "connectors/postgres/pgoutput_decoder.h"

#include <fmt/format.h>

#include <string>
#include <type_traits>

namespace tributary::postgres {
namespace {

// The smallest encodings, used to reject counts the remaining bytes cannot hold before
// sizing vectors by them: a tuple column is at least its kind byte; a relation column is
// flags, an empty name's NUL, type OID and typmod.
constexpr size_t kMinTupleColumnSize = 1;
constexpr size_t kMinRelationColumnSize = 1 + 1 + 4 + 4;

// For error messages only.
const char* MessageName(char type) {
  switch (type) {
    case 'B':
      return "Begin";
    case 'C':
      return "Commit";
    case 'O':
      return "Origin";
    case 'R':
      return "Relation";
    case 'Y':
      return "Type";
    case 'I':
      return "Insert";
    case 'U':
      return "Update";
    case 'D':
      return "Delete";
    case 'T':
      return "Truncate";
    case 'M':
      return "Message";
    case 'S':
      return "Stream Start";
    case 'E':
      return "Stream Stop";
    case 'c':
      return "Stream Commit";
    case 'A':
      return "Stream Abort";
    default:
      return "unknown message";
  }
}

// Messages that belong to a transaction and so carry its xid inside a stream.
bool CarriesStreamXid(char type) {
  switch (type) {
    case 'R':
    case 'Y':
    case 'I':
    case 'U':
    case 'D':
    case 'T':
    case 'M':
      return true;
    default:
      return false;
  }
}

std::string DescribeByte(uint8_t byte) {
  if (byte >= 0x20 && byte < 0x7f) {
    return fmt::format("'{}' (0x{:02x})", static_cast<char>(byte), byte);
  }
  return fmt::format("0x{:02x}", byte);
}

// Bounds-checked big-endian reads over one message. Every read either succeeds whole or
// consumes nothing and returns false.
class Reader {
 public:
  // Starts after the type byte, which names the message in errors.
  explicit Reader(std::string_view bytes) : bytes_(bytes), pos_(1) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  bool Read(T& value) {
    static_assert(std::is_integral_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::make_unsigned_t<T> bits = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      bits = static_cast<decltype(bits)>((bits << 8) | static_cast<uint8_t>(bytes_[pos_ + i]));
    }
    value = static_cast<T>(bits);
    pos_ += sizeof(T);
    return true;
  }

  bool ReadBytes(size_t size, std::string_view& value) {
    if (remaining() < size) return false;
    value = bytes_.substr(pos_, size);
    pos_ += size;
    return true;
  }

  // A NUL-terminated string, without its NUL.
  bool ReadString(std::string_view& value) {
    size_t end = bytes_.find('\0', pos_);
    if (end == std::string_view::npos) return false;
    value = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }

  [[gnu::cold]] Status Corrupt(std::string_view what, size_t offset) const {
    return Status::CorruptData(
        fmt::format("pgoutput: {} in {} at offset {}", what, MessageName(bytes_[0]), offset));
  }

  // `field` could not be read whole at the current offset.
  [[gnu::cold]] Status Truncated(std::string_view field) const {
    return Corrupt(fmt::format("truncated {}", field), pos_);
  }

 private:
  std::string_view bytes_;
  size_t pos_;
};

// Reads a non-negative count whose elements take at least `min_element_size` bytes each.
template <typename T>
Status ReadCount(Reader& r, const char* field, size_t min_element_size, size_t& count) {
  size_t at = r.offset();
  T value = 0;
  if (!r.Read(value)) return r.Truncated(field);
  if (value < 0) return r.Corrupt(fmt::format("negative {} {}", field, value), at);
  count = static_cast<size_t>(value);
  if (count * min_element_size > r.remaining()) {
    return r.Corrupt(fmt::format("{} {} exceeds the {} bytes left", field, count, r.remaining()),
                     at);
  }
  return Status::Ok();
}

Status DecodeTuple(Reader& r, std::vector<TupleColumn>& columns) {
  size_t count = 0;
  RETURN_IF_ERROR(ReadCount<int16_t>(r, "tuple column count", kMinTupleColumnSize, count));
  columns.resize(count);
  for (TupleColumn& column : columns) {
    size_t kind_at = r.offset();
    uint8_t kind = 0;
    if (!r.Read(kind)) return r.Truncated("tuple column kind");
    switch (kind) {
      case 'n':
        column = {TupleColumnKind::kNull, {}};
        break;
      case 'u':
        column = {TupleColumnKind::kUnchangedToast, {}};
        break;
      case 't':
      case 'b': {
        column.kind = static_cast<TupleColumnKind>(kind);
        size_t length_at = r.offset();
        int32_t length = 0;
        if (!r.Read(length)) return r.Truncated("tuple column length");
        if (length < 0) {
          return r.Corrupt(fmt::format("negative tuple column length {}", length), length_at);
        }
        if (!r.ReadBytes(static_cast<size_t>(length), column.data)) {
          return r.Truncated("tuple column value");
        }
        break;
      }
      default:
        return r.Corrupt(fmt::format("unknown tuple column kind {}", DescribeByte(kind)), kind_at);
    }
  }
  return Status::Ok();
}

Status DecodeBegin(Reader& r, BeginMessage& out) {
  if (!r.Read(out.final_lsn)) return r.Truncated("final lsn");
  if (!r.Read(out.commit_ts_pg_us)) return r.Truncated("commit timestamp");
  if (!r.Read(out.xid)) return r.Truncated("xid");
  return Status::Ok();
}

Status DecodeCommit(Reader& r, CommitMessage& out) {
  if (!r.Read(out.flags)) return r.Truncated("flags");
  if (!r.Read(out.commit_lsn)) return r.Truncated("commit lsn");
  if (!r.Read(out.end_lsn)) return r.Truncated("end lsn");
  if (!r.Read(out.commit_ts_pg_us)) return r.Truncated("commit timestamp");
  return Status::Ok();
}

Status DecodeOrigin(Reader& r, OriginMessage& out) {
  if (!r.Read(out.commit_lsn)) return r.Truncated("origin commit lsn");
  if (!r.ReadString(out.name)) return r.Truncated("origin name");
  return Status::Ok();
}

Status DecodeRelation(Reader& r, RelationMessage& out) {
  if (!r.Read(out.relation_id)) return r.Truncated("relation id");
  if (!r.ReadString(out.schema)) return r.Truncated("namespace");
  if (!r.ReadString(out.name)) return r.Truncated("relation name");
  size_t identity_at = r.offset();
  uint8_t identity = 0;
  if (!r.Read(identity)) return r.Truncated("replica identity");
  switch (identity) {
    case 'd':
    case 'n':
    case 'f':
    case 'i':
      out.replica_identity = static_cast<ReplicaIdentity>(identity);
      break;
    default:
      return r.Corrupt(fmt::format("unknown replica identity {}", DescribeByte(identity)),
                       identity_at);
  }
  size_t count = 0;
  RETURN_IF_ERROR(ReadCount<int16_t>(r, "column count", kMinRelationColumnSize, count));
  out.columns.resize(count);
  for (RelationColumn& column : out.columns) {
    if (!r.Read(column.flags)) return r.Truncated("column flags");
    if (!r.ReadString(column.name)) return r.Truncated("column name");
    if (!r.Read(column.type_oid)) return r.Truncated("column type oid");
    if (!r.Read(column.type_modifier)) return r.Truncated("column type modifier");
  }
  return Status::Ok();
}

Status DecodeType(Reader& r, TypeMessage& out) {
  if (!r.Read(out.type_oid)) return r.Truncated("type oid");
  if (!r.ReadString(out.schema)) return r.Truncated("namespace");
  if (!r.ReadString(out.name)) return r.Truncated("type name");
  return Status::Ok();
}

// Reads the byte that introduces a tuple: 'N' new, 'K' key, 'O' old.
Status ReadTupleMarker(Reader& r, uint8_t& marker) {
  if (!r.Read(marker)) return r.Truncated("tuple marker");
  return Status::Ok();
}

[[gnu::cold]] Status UnexpectedMarker(const Reader& r, uint8_t marker, const char* expected) {
  return r.Corrupt(fmt::format("tuple marker {}, expected {}", DescribeByte(marker), expected),
                   r.offset() - 1);
}

Status DecodeInsert(Reader& r, RowChange& out) {
  if (!r.Read(out.relation_id)) return r.Truncated("relation id");
  uint8_t marker = 0;
  RETURN_IF_ERROR(ReadTupleMarker(r, marker));
  if (marker != 'N') return UnexpectedMarker(r, marker, "'N'");
  out.old_kind = OldTupleKind::kNone;
  out.old_tuple.clear();
  return DecodeTuple(r, out.new_tuple);
}

Status DecodeUpdate(Reader& r, RowChange& out) {
  if (!r.Read(out.relation_id)) return r.Truncated("relation id");
  uint8_t marker = 0;
  RETURN_IF_ERROR(ReadTupleMarker(r, marker));
  if (marker == 'K' || marker == 'O') {
    out.old_kind = static_cast<OldTupleKind>(marker);
    RETURN_IF_ERROR(DecodeTuple(r, out.old_tuple));
    RETURN_IF_ERROR(ReadTupleMarker(r, marker));
    if (marker != 'N') return UnexpectedMarker(r, marker, "'N'");
  } else if (marker == 'N') {
    out.old_kind = OldTupleKind::kNone;
    out.old_tuple.clear();
  } else {
    return UnexpectedMarker(r, marker, "'K', 'O' or 'N'");
  }
  return DecodeTuple(r, out.new_tuple);
}

Status DecodeDelete(Reader& r, RowChange& out) {
  if (!r.Read(out.relation_id)) return r.Truncated("relation id");
  uint8_t marker = 0;
  RETURN_IF_ERROR(ReadTupleMarker(r, marker));
  if (marker != 'K' && marker != 'O') return UnexpectedMarker(r, marker, "'K' or 'O'");
  out.old_kind = static_cast<OldTupleKind>(marker);
  out.new_tuple.clear();
  return DecodeTuple(r, out.old_tuple);
}

Status DecodeTruncate(Reader& r, TruncateMessage& out) {
  size_t count_at = r.offset();
  int32_t count = 0;
  if (!r.Read(count)) return r.Truncated("relation count");
  if (!r.Read(out.options)) return r.Truncated("options");
  if (count < 0) return r.Corrupt(fmt::format("negative relation count {}", count), count_at);
  if (static_cast<size_t>(count) * sizeof(uint32_t) > r.remaining()) {
    return r.Corrupt(
        fmt::format("relation count {} exceeds the {} bytes left", count, r.remaining()), count_at);
  }
  out.relation_ids.resize(static_cast<size_t>(count));
  for (uint32_t& relation_id : out.relation_ids) {
    if (!r.Read(relation_id)) return r.Truncated("relation id");
  }
  return Status::Ok();
}

Status DecodeMessage(Reader& r, LogicalMessage& out) {
  if (!r.Read(out.flags)) return r.Truncated("flags");
  if (!r.Read(out.lsn)) return r.Truncated("lsn");
  if (!r.ReadString(out.prefix)) return r.Truncated("prefix");
  size_t length_at = r.offset();
  int32_t length = 0;
  if (!r.Read(length)) return r.Truncated("content length");
  if (length < 0) return r.Corrupt(fmt::format("negative content length {}", length), length_at);
  if (!r.ReadBytes(static_cast<size_t>(length), out.content)) return r.Truncated("content");
  return Status::Ok();
}

Status DecodeStreamStart(Reader& r, StreamStartMessage& out) {
  if (!r.Read(out.xid)) return r.Truncated("xid");
  uint8_t first_segment = 0;
  if (!r.Read(first_segment)) return r.Truncated("first segment flag");
  out.first_segment = first_segment != 0;
  return Status::Ok();
}

Status DecodeStreamCommit(Reader& r, StreamCommitMessage& out) {
  if (!r.Read(out.xid)) return r.Truncated("xid");
  if (!r.Read(out.flags)) return r.Truncated("flags");
  if (!r.Read(out.commit_lsn)) return r.Truncated("commit lsn");
  if (!r.Read(out.end_lsn)) return r.Truncated("end lsn");
  if (!r.Read(out.commit_ts_pg_us)) return r.Truncated("commit timestamp");
  return Status::Ok();
}

Status DecodeStreamAbort(Reader& r, StreamAbortMessage& out) {
  if (!r.Read(out.xid)) return r.Truncated("xid");
  if (!r.Read(out.subxid)) return r.Truncated("subtransaction xid");
  out.abort_lsn = 0;
  out.abort_ts_pg_us = 0;
  // The parallel-apply fields exist only in proto_version 4; the length tells them apart.
  if (r.remaining() == 0) return Status::Ok();
  if (!r.Read(out.abort_lsn)) return r.Truncated("abort lsn");
  if (!r.Read(out.abort_ts_pg_us)) return r.Truncated("abort timestamp");
  return Status::Ok();
}

Status DecodeBody(char type, Reader& r, PgoutputMessage& out) {
  switch (type) {
    case 'B':
      return DecodeBegin(r, out.begin);
    case 'C':
      return DecodeCommit(r, out.commit);
    case 'O':
      return DecodeOrigin(r, out.origin);
    case 'R':
      return DecodeRelation(r, out.relation);
    case 'Y':
      return DecodeType(r, out.data_type);
    case 'I':
      return DecodeInsert(r, out.change);
    case 'U':
      return DecodeUpdate(r, out.change);
    case 'D':
      return DecodeDelete(r, out.change);
    case 'T':
      return DecodeTruncate(r, out.truncate);
    case 'M':
      return DecodeMessage(r, out.message);
    case 'S':
      return DecodeStreamStart(r, out.stream_start);
    case 'E':
      return Status::Ok();
    case 'c':
      return DecodeStreamCommit(r, out.stream_commit);
    case 'A':
      return DecodeStreamAbort(r, out.stream_abort);
    default:
      return Status::CorruptData(fmt::format("pgoutput: unknown message type {} at offset 0",
                                             DescribeByte(static_cast<uint8_t>(type))));
  }
}

}  // namespace

Status DecodePgoutput(std::string_view bytes, PgoutputMessage& out, bool in_stream) {
  if (bytes.empty()) return Status::CorruptData("pgoutput: empty message at offset 0");
  const char type = bytes[0];
  Reader r(bytes);
  out.stream_xid = 0;
  if (in_stream && CarriesStreamXid(type) && !r.Read(out.stream_xid)) {
    return r.Truncated("stream xid");
  }
  RETURN_IF_ERROR(DecodeBody(type, r, out));
  if (r.remaining() != 0) {
    return r.Corrupt(fmt::format("{} trailing bytes", r.remaining()), r.offset());
  }
  out.type = static_cast<PgoutputType>(type);
  return Status::Ok();
}

}  // namespace tributary::postgres
