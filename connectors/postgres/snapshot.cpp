#include "connectors/postgres/snapshot.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <random>

#include "agent/core/logging.h"
#include "agent/core/text_append.h"
#include "connectors/postgres/lsn.h"
#include "connectors/postgres/snapshot_reader.h"

namespace tributary::postgres {

namespace {

using nlohmann::json;

constexpr std::string_view kSnapshotMarker = " snapshot=";
// A keyless table, or a change the window cannot match to a key, makes a chunk start over; a
// table that keeps changing that fast cannot be snapshotted this way.
constexpr int kMaxAttempts = 50;
// Before reading a chunk again that missed a transaction the stream had delivered: long enough
// for its backend to finish the commit most of the time, short against a chunk's read.
constexpr std::chrono::milliseconds kInvisibleCommitRetryDelay{20};
constexpr auto kProgressLogInterval = std::chrono::seconds(10);
// A chunk whose high watermark arrived was read already: it is at most a moment away, unless
// the reader is stuck.
constexpr std::chrono::milliseconds kChunkDueWait = std::chrono::minutes(10);

// A member's string value, or "" when it is absent or not a string: messages come from any
// database user and must never stop the source.
std::string StringMember(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string TableName(const std::string& schema, const std::string& table) {
  return schema + "." + table;
}

}  // namespace

std::string EncodeSnapshotProgress(const SnapshotProgress& progress) {
  if (progress.empty()) return "";
  json tables = json::array();
  for (const SnapshotTable& t : progress.tables) {
    json entry = {
        {"schema", t.schema}, {"table", t.table}, {"incremental", t.incremental}, {"rows", t.rows}};
    entry["after_key"] = t.after_key ? json(*t.after_key) : json(nullptr);
    entry["until_key"] = t.until_key ? json(*t.until_key) : json(nullptr);
    tables.push_back(std::move(entry));
  }
  return json{{"tables", std::move(tables)}, {"initial_rows", progress.initial_rows}}.dump();
}

Result<SnapshotProgress> DecodeSnapshotProgress(std::string_view text) {
  auto corrupt = [](std::string_view what) {
    return Status::CorruptData(
        fmt::format("postgres: the checkpoint's snapshot progress is damaged ({}); the state dir "
                    "is damaged",
                    what));
  };
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("tables") || !doc["tables"].is_array()) {
    return corrupt("no table list");
  }
  SnapshotProgress progress;
  if (doc.contains("initial_rows") && doc["initial_rows"].is_number_unsigned()) {
    progress.initial_rows = doc["initial_rows"].get<uint64_t>();
  }
  for (const json& entry : doc["tables"]) {
    if (!entry.is_object() || !entry.contains("schema") || !entry["schema"].is_string() ||
        !entry.contains("table") || !entry["table"].is_string()) {
      return corrupt("a table without a name");
    }
    SnapshotTable table;
    table.schema = entry["schema"].get<std::string>();
    table.table = entry["table"].get<std::string>();
    table.incremental = entry.contains("incremental") && entry["incremental"].is_boolean() &&
                        entry["incremental"].get<bool>();
    if (entry.contains("rows") && entry["rows"].is_number_unsigned()) {
      table.rows = entry["rows"].get<uint64_t>();
    }
    for (const char* name : {"after_key", "until_key"}) {
      if (!entry.contains(name) || entry[name].is_null()) continue;
      const json& key = entry[name];
      if (!key.is_array() || key.empty() ||
          !std::all_of(key.begin(), key.end(), [](const json& v) { return v.is_string(); })) {
        return corrupt("a key that is not a list of strings");
      }
      (std::string_view(name) == "after_key" ? table.after_key : table.until_key) =
          key.get<std::vector<std::string>>();
    }
    progress.tables.push_back(std::move(table));
  }
  return progress;
}

std::string FormatPosition(uint64_t lsn, std::string_view snapshot) {
  std::string out = FormatLsn(lsn);
  if (!snapshot.empty()) {
    out += kSnapshotMarker;
    out += snapshot;
  }
  return out;
}

std::optional<PgPosition> ParsePosition(std::string_view text) {
  size_t space = text.find(' ');
  std::optional<uint64_t> lsn = ParseLsn(text.substr(0, space));
  if (!lsn) return std::nullopt;
  PgPosition position{*lsn, ""};
  if (space != std::string_view::npos) {
    std::string_view rest = text.substr(space);
    if (!rest.starts_with(kSnapshotMarker) || rest.size() == kSnapshotMarker.size()) {
      return std::nullopt;
    }
    position.snapshot = rest.substr(kSnapshotMarker.size());
  }
  return position;
}

std::string SnapshotRequestMessage(std::string_view source, std::string_view schema,
                                   std::string_view table) {
  return json{{"source", source}, {"snapshot", {{"schema", schema}, {"table", table}}}}.dump();
}

Result<std::optional<CatalogTable>> ReadCatalogTable(PgConnection& catalog,
                                                     const std::string& schema,
                                                     const std::string& table) {
  ASSIGN_OR_RETURN(TextRows rel,
                   catalog.Query("SELECT c.oid, c.relreplident, c.reltuples, c.relkind "
                                 "FROM pg_class c "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE n.nspname = " +
                                 catalog.QuoteLiteral(schema) + " AND c.relname = " +
                                 catalog.QuoteLiteral(table) + " AND c.relkind IN ('r', 'p')"));
  if (rel.empty()) return std::optional<CatalogTable>();
  CatalogTable out;
  out.oid = static_cast<uint32_t>(std::stoul(rel[0][0]));
  out.schema = schema;
  out.table = table;
  out.estimated_rows = std::max(0.0, std::stod(rel[0][2]));
  out.partitioned = rel[0][3] == "p";
  const char identity = rel[0][1].empty() ? 'd' : rel[0][1][0];
  RETURN_IF_ERROR(ReadCatalogColumns(catalog, out.oid, identity, out.columns, out.primary_key));
  return std::optional<CatalogTable>(std::move(out));
}

Status ReadCatalogColumns(PgConnection& catalog, uint32_t oid, char replica_identity,
                          std::vector<CatalogColumn>& columns, std::vector<size_t>& primary_key) {
  columns.clear();
  primary_key.clear();
  // pgoutput sends every column that is neither dropped nor generated, in attnum order.
  ASSIGN_OR_RETURN(
      TextRows rows,
      catalog.Query(fmt::format(
          "SELECT a.attname, a.atttypid, a.atttypmod, "
          "coalesce((SELECT n FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS u(k, n) "
          "WHERE i.indrelid = a.attrelid AND i.indisprimary AND u.k = a.attnum "
          "AND u.n <= i.indnkeyatts), 0), "
          "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND "
          "i.indisreplident AND a.attnum = ANY (i.indkey)), a.attnotnull "
          "FROM pg_attribute a WHERE a.attrelid = {} AND a.attnum > 0 AND NOT a.attisdropped "
          "AND a.attgenerated = '' ORDER BY a.attnum",
          oid)));
  std::vector<std::pair<int, size_t>> key_order;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    const int key_position = std::stoi(row[3]);
    if (key_position > 0) key_order.emplace_back(key_position, i);
    bool identity_column = false;
    switch (replica_identity) {
      case 'f':
        identity_column = true;
        break;
      case 'i':
        identity_column = row[4] == "t";
        break;
      case 'd':
        identity_column = key_position > 0;
        break;
      default:
        break;
    }
    columns.push_back(CatalogColumn{.name = row[0],
                                    .type_oid = static_cast<uint32_t>(std::stoul(row[1])),
                                    .type_modifier = std::stoi(row[2]),
                                    .identity = identity_column,
                                    .primary = key_position > 0,
                                    .nullable = row[5] != "t"});
  }
  std::sort(key_order.begin(), key_order.end());
  for (const auto& [position, index] : key_order) primary_key.push_back(index);
  return Status::Ok();
}

std::vector<bool> KeyColumns(const std::vector<CatalogColumn>& columns) {
  const bool has_primary =
      std::any_of(columns.begin(), columns.end(), [](const CatalogColumn& c) { return c.primary; });
  const bool identity_has_primary =
      std::all_of(columns.begin(), columns.end(),
                  [](const CatalogColumn& c) { return !c.primary || c.identity; });
  std::vector<bool> key;
  key.reserve(columns.size());
  for (const CatalogColumn& c : columns) {
    key.push_back(has_primary && identity_has_primary ? c.primary : c.identity);
  }
  return key;
}

namespace {

std::string KeyList(const PgConnection& catalog, const CatalogTable& table, const char* order) {
  std::string list;
  for (size_t index : table.primary_key) {
    if (!list.empty()) list += ", ";
    list += catalog.QuoteIdentifier(table.columns[index].name);
    list += order;
  }
  return list;
}

std::string RowOfLiterals(const PgConnection& catalog, const std::vector<std::string>& values) {
  std::string row = "ROW(";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) row += ", ";
    row += catalog.QuoteLiteral(values[i]);
  }
  return row + ")";
}

std::string TableRef(const PgConnection& catalog, const CatalogTable& table) {
  return (table.partitioned ? "" : "ONLY ") + catalog.QuoteIdentifier(table.schema) + "." +
         catalog.QuoteIdentifier(table.table);
}

}  // namespace

std::string LastKeyQuery(const PgConnection& catalog, const CatalogTable& table) {
  return fmt::format("SELECT {} FROM {} ORDER BY {} LIMIT 1", KeyList(catalog, table, ""),
                     TableRef(catalog, table), KeyList(catalog, table, " DESC"));
}

std::string ChunkQuery(const PgConnection& catalog, const CatalogTable& table,
                       const std::optional<std::vector<std::string>>& after_key,
                       const std::optional<std::vector<std::string>>& until_key, size_t limit) {
  std::string sql = "SELECT ";
  for (size_t i = 0; i < table.columns.size(); ++i) {
    if (i > 0) sql += ", ";
    sql += catalog.QuoteIdentifier(table.columns[i].name);
  }
  sql += " FROM " + TableRef(catalog, table);
  if (table.primary_key.empty()) return sql;
  // Row comparisons walk the primary key index in order; the literals take the columns' types.
  const std::string key_row = "ROW(" + KeyList(catalog, table, "") + ")";
  const char* glue = " WHERE ";
  if (after_key) {
    sql += glue + key_row + " > " + RowOfLiterals(catalog, *after_key);
    glue = " AND ";
  }
  if (until_key) sql += glue + key_row + " <= " + RowOfLiterals(catalog, *until_key);
  sql += fmt::format(" ORDER BY {} LIMIT {}", KeyList(catalog, table, ""), limit);
  // Walk the primary key index: without fresh statistics (a table just loaded) the planner
  // prefers a bitmap scan and sorts the whole remaining range for every chunk, 40x slower.
  return "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; SET LOCAL "
         "enable_seqscan = off; " +
         sql;
}

bool PgSnapshot::Sees(uint32_t xid) const {
  // Transaction ids within a snapshot's reach are less than 2^31 apart: compare them modulo
  // 2^32, as PostgreSQL does.
  if (static_cast<int32_t>(xid - static_cast<uint32_t>(xmax)) >= 0) return false;
  return std::none_of(xip.begin(), xip.end(),
                      [&](uint64_t running) { return static_cast<uint32_t>(running) == xid; });
}

std::optional<PgSnapshot> ParsePgSnapshot(std::string_view text) {
  auto number = [](std::string_view digits, uint64_t& out) {
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return error == std::errc() && end == digits.data() + digits.size() && !digits.empty();
  };
  const size_t first = text.find(':');
  const size_t second = first == std::string_view::npos ? first : text.find(':', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  PgSnapshot snapshot;
  if (!number(text.substr(0, first), snapshot.xmin) ||
      !number(text.substr(first + 1, second - first - 1), snapshot.xmax)) {
    return std::nullopt;
  }
  std::string_view list = text.substr(second + 1);
  while (!list.empty()) {
    const size_t comma = list.find(',');
    uint64_t xid = 0;
    if (!number(list.substr(0, comma), xid)) return std::nullopt;
    snapshot.xip.push_back(xid);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
    if (list.empty()) return std::nullopt;  // a trailing comma
  }
  return snapshot;
}

std::string WatermarkMessage(std::string_view source, std::string_view kind,
                             std::string_view chunk_id) {
  return json{{"source", source}, {"watermark", kind}, {"chunk", chunk_id}}.dump();
}

Snapshotter::Snapshotter(std::string source_name, std::string dsn, size_t chunk_rows)
    : source_name_(std::move(source_name)),
      chunk_rows_(std::max<size_t>(chunk_rows, 1)),
      reader_(std::make_unique<SnapshotReader>(source_name_, std::move(dsn))),
      nonce_((uint64_t{std::random_device()()} << 32) | std::random_device()()) {}

Snapshotter::~Snapshotter() = default;

void Snapshotter::Reset(SnapshotProgress progress,
                        std::vector<std::pair<std::string, std::string>> captured) {
  captured_ = std::move(captured);
  // A table no longer captured has no stream to fix up its chunks: leave it.
  std::erase_if(progress.tables, [&](const SnapshotTable& t) {
    return std::find(captured_.begin(), captured_.end(), std::make_pair(t.schema, t.table)) ==
           captured_.end();
  });
  progress_ = std::move(progress);
  encoded_ = EncodeSnapshotProgress(progress_);
  attempts_ = 0;
  StopReading();
}

void Snapshotter::Capture(const std::string& schema, const std::string& table) {
  if (std::find(captured_.begin(), captured_.end(), std::make_pair(schema, table)) ==
      captured_.end()) {
    captured_.emplace_back(schema, table);
  }
}

void Snapshotter::Close() {
  // Closing first interrupts a chunk still being read from an exported snapshot.
  reader_->Close();
  StopReading();
  exported_ = false;
}

Status Snapshotter::BeginExported(const std::string& snapshot_name, PgConnection& catalog) {
  std::string tables;
  for (const SnapshotTable& table : progress_.tables) {
    if (!tables.empty()) tables += ", ";
    tables += catalog.QuoteIdentifier(table.schema) + "." + catalog.QuoteIdentifier(table.table);
  }
  RETURN_IF_ERROR(reader_->BeginExported(snapshot_name, tables));
  exported_ = true;
  return Status::Ok();
}

void Snapshotter::EndExported() {
  // Closing the connection ends the transaction, its snapshot and its locks.
  Close();
  // Its chunks' windows, had there been any, are of no use to the watermarks' chunks.
  before_window_.clear();
}

Result<bool> Snapshotter::TakeExportedChunk(std::chrono::milliseconds wait) {
  // Chunks read before the session ended are still the exported snapshot's: they go first.
  Result<std::optional<SnapshotChunk>> next =
      reading_ ? reader_->Next(wait) : std::optional<SnapshotChunk>();
  if (!next.ok()) {
    if (!reader_->exported_ended()) {
      spdlog::info(
          "postgres: The session reading the initial snapshot failed: reading on with "
          "watermarks source={} error=\"{}\"",
          source_name_, next.status().message());
    }
    EndExported();
    return false;
  }
  std::optional<SnapshotChunk>& chunk = *next;
  if (!chunk) {
    if (reader_->exported_ended()) EndExported();
    return false;
  }
  if (chunk->changed) {
    spdlog::info(
        "postgres: Table altered after the slot's snapshot was exported: reading on with "
        "watermarks source={} table={}",
        source_name_, TableName(table_.schema, table_.table));
    EndExported();
    return false;
  }
  dropped_.assign(static_cast<size_t>(chunk->row_count), false);
  chunk_ = std::move(chunk);
  return true;
}

void Snapshotter::StopReading() {
  reader_->Stop();
  reading_ = false;
  OpenWindow();
}

void Snapshotter::OpenWindow() {
  before_window_.insert(before_window_.end(), in_window_.begin(), in_window_.end());
  in_window_.clear();
  invisible_commit_ = false;
  chunk_.reset();
  conflict_ = false;
  columns_checked_ = false;
  early_keys_.clear();
  row_by_key_.clear();
  keys_indexed_ = false;
  dropped_.clear();
}

void Snapshotter::AppendKeyPart(std::string_view text, std::string& key) {
  AppendNumber(text.size(), key);
  key.push_back(':');
  key.append(text);
}

const PGresult* Snapshotter::chunk_result() const { return chunk_->rows.get(); }

Status Snapshotter::MaybeStartChunk(PgConnection& catalog) {
  if (!reading_ && std::chrono::steady_clock::now() < read_not_before_) return Status::Ok();
  while (!reading_ && !progress_.empty()) {
    SnapshotTable& current = progress_.tables.front();
    ASSIGN_OR_RETURN(std::optional<CatalogTable> table,
                     ReadCatalogTable(catalog, current.schema, current.table));
    if (!table) {
      spdlog::warn("postgres: Table to snapshot no longer exists, skipping it source={} table={}",
                   source_name_, TableName(current.schema, current.table));
      progress_.tables.pop_front();
      attempts_ = 0;  // they were this table's
      encoded_ = EncodeSnapshotProgress(progress_);
      continue;
    }
    if (current.rows == 0 && !current.after_key && attempts_ == 0) {
      if (table->primary_key.empty()) {
        spdlog::info(
            "postgres: Table has no primary key: snapshotting it whole in one chunk, held in "
            "memory, and starting over if it changes meanwhile source={} table={} "
            "estimated_rows={:.0f}",
            source_name_, TableName(current.schema, current.table), table->estimated_rows);
      } else {
        spdlog::info("postgres: Snapshotting table source={} table={} estimated_rows={:.0f}",
                     source_name_, TableName(current.schema, current.table), table->estimated_rows);
      }
    }
    // An exported snapshot does not change: its rows end where the table does.
    if (!exported_ && !table->primary_key.empty() && !current.until_key) {
      ASSIGN_OR_RETURN(TextRows last, catalog.Query(LastKeyQuery(catalog, *table)));
      if (last.empty()) {
        spdlog::info("postgres: Snapshot of table done, it is empty source={} table={}",
                     source_name_, TableName(current.schema, current.table));
        progress_.tables.pop_front();
        attempts_ = 0;  // they were this table's
        encoded_ = EncodeSnapshotProgress(progress_);
        continue;
      }
      current.until_key = last[0];
    }
    // The first chunk's window opens now, before the reader takes its snapshot: every change
    // committed after that snapshot reaches the stream from here on.
    table_ = std::move(*table);
    OpenWindow();
    window_serial_ = 0;
    chunk_id_prefix_ = fmt::format("{:016x}-{}-", nonce_, ++reading_serial_);
    reader_->Start(SnapshotReadJob{.table = table_,
                                   .after_key = current.after_key,
                                   .until_key = current.until_key,
                                   .chunk_rows = chunk_rows_,
                                   .chunk_id_prefix = chunk_id_prefix_,
                                   .exported = exported_});
    reading_ = true;
  }
  if (reading_ && !chunk_ && !exported_) return TakeChunk(/*wait=*/false);
  return Status::Ok();
}

Status Snapshotter::TakeChunk(bool wait) {
  ASSIGN_OR_RETURN(std::optional<SnapshotChunk> chunk,
                   reader_->Next(wait ? kChunkDueWait : std::chrono::milliseconds(0)));
  if (!chunk) {
    return wait ? Status::Retriable(
                      "postgres: the snapshot reader stopped, or stalled, before the chunk")
                : Status::Ok();
  }
  if (chunk->changed) {
    // Read the table again from the catalog: the next MaybeStartChunk skips it if it is gone.
    const std::string name = TableName(table_.schema, table_.table);
    StopReading();
    if (++attempts_ >= kMaxAttempts) {
      return Status::Fatal(fmt::format(
          "postgres: source {}: table {} was altered during each of {} attempts to snapshot a "
          "chunk of it",
          source_name_, name, attempts_));
    }
    spdlog::debug(
        "postgres: Table altered while being snapshotted, reading it again source={} "
        "table={}",
        source_name_, name);
    return Status::Ok();
  }
  if (chunk->serial != window_serial_) {
    return Status::Fatal(fmt::format("postgres: snapshot chunk {} arrived when {} was due (a bug)",
                                     chunk->serial, window_serial_));
  }
  for (const StreamedChange& change : before_window_) {
    if (change.relation_id == table_.oid && !chunk->snapshot.Sees(change.xid)) {
      invisible_commit_ = true;
      conflict_ = true;
    }
  }
  std::erase_if(before_window_,
                [&](const StreamedChange& change) { return chunk->snapshot.Sees(change.xid); });
  dropped_.assign(static_cast<size_t>(chunk->row_count), false);
  chunk_ = std::move(chunk);
  for (std::string& key : early_keys_) {
    key_ = std::move(key);
    DropKey();
  }
  early_keys_.clear();
  return Status::Ok();
}

void Snapshotter::DropKey() {
  if (!keys_indexed_) {
    keys_indexed_ = true;
    std::string key;
    const PGresult* rows = chunk_->rows.get();
    row_by_key_.reserve(static_cast<size_t>(chunk_->row_count));
    for (int row = 0; !table_.primary_key.empty() && row < chunk_->row_count; ++row) {
      key.clear();
      for (size_t column : table_.primary_key) {
        const int c = static_cast<int>(column);
        AppendKeyPart(std::string_view(PQgetvalue(rows, row, c),
                                       static_cast<size_t>(PQgetlength(rows, row, c))),
                      key);
      }
      row_by_key_.emplace(key, row);
    }
  }
  if (auto it = row_by_key_.find(key_); it != row_by_key_.end()) {
    dropped_[static_cast<size_t>(it->second)] = true;
  }
}

Result<bool> Snapshotter::OnMessage(std::string_view content) {
  json doc = json::parse(content, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || StringMember(doc, "source") != source_name_) return false;
  if (doc.contains("snapshot") && doc["snapshot"].is_object()) {
    const json& request = doc["snapshot"];
    const std::string schema = StringMember(request, "schema");
    const std::string table = StringMember(request, "table");
    const std::string name = TableName(schema, table);
    if (std::find(captured_.begin(), captured_.end(), std::make_pair(schema, table)) ==
        captured_.end()) {
      spdlog::warn(
          "postgres: Ignoring a snapshot request for a table this source does not capture "
          "source={} table={}",
          source_name_, name);
      return false;
    }
    for (const SnapshotTable& queued : progress_.tables) {
      if (queued.schema == schema && queued.table == table) {
        spdlog::info(
            "postgres: Snapshot request for a table already being snapshotted source={} "
            "table={}",
            source_name_, name);
        return false;
      }
    }
    spdlog::info("postgres: Snapshot requested source={} table={}", source_name_, name);
    SnapshotTable entry;
    entry.schema = schema;
    entry.table = table;
    entry.incremental = true;
    progress_.tables.push_back(std::move(entry));
    encoded_ = EncodeSnapshotProgress(progress_);
    return false;
  }
  if (!reading_ || StringMember(doc, "watermark") != "high" ||
      StringMember(doc, "chunk") != chunk_id_prefix_ + std::to_string(window_serial_)) {
    return false;
  }
  // The reader wrote this watermark after it had read the chunk: it is at most a moment away.
  if (!chunk_) RETURN_IF_ERROR(TakeChunk(/*wait=*/true));
  if (!reading_) return false;  // the table changed: it is read again
  if (!conflict_) return true;
  const std::string name = TableName(table_.schema, table_.table);
  if (invisible_commit_) {
    // Not the table's fault, and over once the transaction's backend finishes its commit: no
    // attempt counted, and the next read a little later.
    StopReading();
    read_not_before_ = std::chrono::steady_clock::now() + kInvisibleCommitRetryDelay;
    if (!awaiting_commit_) {
      spdlog::info(
          "postgres: Snapshot chunk read again: a transaction already streamed was not yet "
          "visible to its SELECT (committed, its backend still finishing the commit, e.g. "
          "waiting for a synchronous standby); reading it every {} ms until it is source={} "
          "table={}",
          kInvisibleCommitRetryDelay.count(), source_name_, name);
      awaiting_commit_ = true;
    }
    return false;
  }
  StopReading();
  if (++attempts_ >= kMaxAttempts) {
    return Status::Fatal(fmt::format(
        "postgres: source {}: table {} changed during each of {} attempts to snapshot a chunk "
        "of it, in ways that cannot be matched to primary keys (it has none, or its replica "
        "identity does not include the primary key). Give it a primary key, or snapshot it at "
        "a quieter time",
        source_name_, name, attempts_));
  }
  spdlog::debug("postgres: Snapshot chunk changed meanwhile, reading it again source={} table={}",
                source_name_, name);
  return false;
}

void Snapshotter::OnChange(uint32_t relation_id, uint32_t xid,
                           const std::vector<ColumnSchema>& columns, const RowChange& change) {
  // Once per transaction and table: their changes come together.
  if (in_window_.empty() || !(in_window_.back() == StreamedChange{xid, relation_id})) {
    in_window_.push_back({xid, relation_id});
  }
  // From the moment the window opened, which is before the chunk's snapshot: a transaction can
  // write its commit record before the previous watermark yet become visible only after the
  // SELECT's snapshot (its backend still finishing the commit), and then arrive here outside
  // the window proper, newer than the chunk. Dropping a row for an older change is harmless:
  // the change carries the whole row, and any later one follows it in the stream.
  if (!reading_ || conflict_ || relation_id != table_.oid) return;
  if (!columns_checked_) {
    // A column added or dropped since reading began: start the chunk over.
    bool same = columns.size() == table_.columns.size();
    for (size_t i = 0; same && i < columns.size(); ++i) {
      same = columns[i].name == table_.columns[i].name;
    }
    conflict_ = !same;
    columns_checked_ = true;
  }
  const std::vector<size_t>& primary_key = table_.primary_key;
  if (conflict_ || primary_key.empty()) {
    conflict_ = true;
    return;
  }
  // Per change during a window: builds the key in a reused buffer.
  auto drop = [&](const std::vector<TupleColumn>& tuple) {
    key_.clear();
    for (size_t column : primary_key) {
      if (column >= tuple.size() || tuple[column].kind != TupleColumnKind::kText) return false;
      AppendKeyPart(tuple[column].data, key_);
    }
    if (chunk_) {
      DropKey();
    } else {
      early_keys_.push_back(key_);
    }
    return true;
  };
  const bool old_matched = change.old_kind == OldTupleKind::kNone || drop(change.old_tuple);
  const bool new_matched = change.new_tuple.empty() || drop(change.new_tuple);
  if (!old_matched || !new_matched) conflict_ = true;
}

std::vector<int> Snapshotter::RowsToEmit() const {
  std::vector<int> rows;
  rows.reserve(static_cast<size_t>(chunk_->row_count));
  for (int row = 0; row < chunk_->row_count; ++row) {
    if (!dropped_[static_cast<size_t>(row)]) rows.push_back(row);
  }
  return rows;
}

bool Snapshotter::ends_initial_snapshot() const {
  if (chunk_->more || progress_.tables.front().incremental) return false;
  return std::none_of(progress_.tables.begin() + 1, progress_.tables.end(),
                      [](const SnapshotTable& t) { return !t.incremental; });
}

void Snapshotter::FinishChunk(size_t emitted) {
  awaiting_commit_ = false;
  SnapshotTable& current = progress_.tables.front();
  current.rows += emitted;
  if (!current.incremental) progress_.initial_rows += emitted;
  const std::string name = TableName(current.schema, current.table);
  attempts_ = 0;
  if (chunk_->more) {
    std::vector<std::string> key;
    for (size_t column : table_.primary_key) {
      key.emplace_back(
          PQgetvalue(chunk_->rows.get(), chunk_->row_count - 1, static_cast<int>(column)));
    }
    current.after_key = std::move(key);
    auto now = std::chrono::steady_clock::now();
    if (now - last_progress_log_ >= kProgressLogInterval) {
      last_progress_log_ = now;
      spdlog::info("postgres: Snapshot progress source={} table={} rows={} estimated_rows={:.0f}",
                   source_name_, name, current.rows, table_.estimated_rows);
    }
    encoded_ = EncodeSnapshotProgress(progress_);
    // The next chunk's window opens at this chunk's high watermark.
    OpenWindow();
    ++window_serial_;
    return;
  }
  spdlog::info("postgres: Snapshot of table done source={} table={} rows={}", source_name_, name,
               current.rows);
  progress_.tables.pop_front();
  if (progress_.empty()) spdlog::info("postgres: Snapshot done source={}", source_name_);
  encoded_ = EncodeSnapshotProgress(progress_);
  StopReading();
}

}  // namespace tributary::postgres
