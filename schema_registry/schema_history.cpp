// <state_dir>/<source>/schemas.jsonl: the append-only, fsynced record of every version.
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "agent/core/durable_file.h"
#include "schema_registry/schema_registry.h"

namespace tributary {
namespace {

using Json = nlohmann::json;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

// Reads one typed field of a history line; the first failure is kept in `problem`.
class FieldReader {
 public:
  explicit FieldReader(const Json& object) : object_(object) {}

  const std::string& problem() const { return problem_; }

  const Json* Field(const char* key) {
    auto it = object_.find(key);
    if (it == object_.end()) {
      Fail(fmt::format("missing \"{}\"", key));
      return nullptr;
    }
    return &*it;
  }
  std::string String(const char* key) {
    const Json* value = Field(key);
    if (value == nullptr) return {};
    if (!value->is_string()) {
      Fail(fmt::format("\"{}\" is not a string", key));
      return {};
    }
    return value->get<std::string>();
  }
  // A string, or null for none.
  std::string OptionalString(const char* key) {
    const Json* value = Field(key);
    if (value == nullptr || value->is_null()) return {};
    return String(key);
  }
  bool Bool(const char* key) {
    const Json* value = Field(key);
    if (value == nullptr) return false;
    if (!value->is_boolean()) {
      Fail(fmt::format("\"{}\" is not a boolean", key));
      return {};
    }
    return value->get<bool>();
  }
  int64_t Integer(const char* key, int64_t min, int64_t max) {
    const Json* value = Field(key);
    if (value == nullptr) return 0;
    if (!value->is_number_integer() ||
        (value->is_number_unsigned() &&
         value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) ||
        value->get<int64_t>() < min || value->get<int64_t>() > max) {
      Fail(fmt::format("\"{}\" is not an integer in [{}, {}]", key, min, max));
      return {};
    }
    return value->get<int64_t>();
  }
  uint64_t Unsigned(const char* key) {
    const Json* value = Field(key);
    if (value == nullptr) return 0;
    if (!value->is_number_unsigned()) {
      Fail(fmt::format("\"{}\" is not an unsigned integer", key));
      return {};
    }
    return value->get<uint64_t>();
  }

  void Fail(std::string problem) {
    if (problem_.empty()) problem_ = std::move(problem);
  }

 private:
  const Json& object_;
  std::string problem_;
};

// The entry of one line, or why the line is not one.
std::string ParseLine(std::string_view line, SchemaHistoryEntry& entry) {
  const Json doc = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return "not valid JSON";
  if (!doc.is_object()) return "not a JSON object";
  FieldReader reader(doc);
  auto schema = std::make_shared<TableSchema>();
  const std::string table = reader.String("table");
  schema->version = static_cast<uint32_t>(reader.Integer("version", 0, UINT32_MAX));
  schema->previous_version =
      static_cast<uint32_t>(reader.Integer("previous_version", 0, UINT32_MAX));
  schema->dropped = reader.Bool("dropped");
  schema->compatible = reader.Bool("compatible");
  if (const Json* problems = reader.Field("problems")) {
    if (!problems->is_array()) reader.Fail("\"problems\" is not an array");
    for (const Json& problem : problems->is_array() ? *problems : Json::array()) {
      if (!problem.is_string()) reader.Fail("\"problems\" holds a non-string");
      if (problem.is_string()) schema->problems.push_back(problem.get<std::string>());
    }
  }
  entry.fingerprint = reader.String("fingerprint");
  entry.position = reader.String("position");
  entry.ts_ms = reader.Integer("ts_ms", std::numeric_limits<int64_t>::min(),
                               std::numeric_limits<int64_t>::max());
  schema->relation_id = reader.Unsigned("relation_id");
  schema->connector = reader.String("connector");
  schema->source = reader.String("source");
  schema->database = reader.String("database");
  schema->schema = reader.String("schema");
  schema->table = reader.String("name");
  schema->ddl = reader.OptionalString("ddl");
  if (const Json* columns = reader.Field("columns")) {
    if (!columns->is_array()) reader.Fail("\"columns\" is not an array");
    for (const Json& item : columns->is_array() ? *columns : Json::array()) {
      if (!item.is_object()) {
        reader.Fail("\"columns\" holds a non-object");
        break;
      }
      FieldReader column_reader(item);
      ColumnSchema column;
      column.name = column_reader.String("name");
      column.type_name = column_reader.String("type");
      column.canonical_type = column_reader.String("canonical_type");
      column.nullable = column_reader.Bool("nullable");
      column.key = column_reader.Bool("key");
      const int64_t position = column_reader.Integer("position", 1, UINT32_MAX);
      column.type_oid = static_cast<uint32_t>(column_reader.Integer("type_oid", 0, UINT32_MAX));
      column.type_modifier =
          static_cast<int32_t>(column_reader.Integer("type_modifier", INT32_MIN, INT32_MAX));
      if (column_reader.problem().empty() &&
          position != static_cast<int64_t>(schema->columns.size() + 1)) {
        column_reader.Fail(fmt::format("position {} out of order", position));
      }
      if (!column_reader.problem().empty()) {
        reader.Fail(
            fmt::format("column {}: {}", schema->columns.size() + 1, column_reader.problem()));
        break;
      }
      schema->columns.push_back(std::move(column));
    }
  }
  if (!reader.problem().empty()) return reader.problem();
  if (table != QualifiedTableName(*schema)) {
    return fmt::format("\"table\" {} does not match its schema and name ({})", table,
                       QualifiedTableName(*schema));
  }
  if (schema->version == 0 && !schema->dropped) return "version 0 is not a version";
  entry.schema = std::move(schema);
  return {};
}

Status CutOff(const std::filesystem::path& path, size_t length) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("open", path, errno);
  if (::ftruncate(fd.get(), static_cast<off_t>(length)) != 0) {
    return IoError("truncate", path, errno);
  }
  if (::fsync(fd.get()) != 0) return IoError("fsync", path, errno);
  if (fd.Close() != 0) return IoError("close", path, errno);
  return Status::Ok();
}

}  // namespace

std::string SchemaHistoryLine(const SchemaHistoryEntry& entry) {
  const TableSchema& schema = *entry.schema;
  nlohmann::ordered_json line;
  line["table"] = QualifiedTableName(schema);
  line["version"] = schema.version;
  line["previous_version"] = schema.previous_version;
  line["dropped"] = schema.dropped;
  line["compatible"] = schema.compatible;
  line["problems"] = schema.problems;
  line["fingerprint"] = entry.fingerprint;
  line["position"] = entry.position;
  line["ts_ms"] = entry.ts_ms;
  line["relation_id"] = schema.relation_id;
  line["connector"] = schema.connector;
  line["source"] = schema.source;
  line["database"] = schema.database;
  line["schema"] = schema.schema;
  line["name"] = schema.table;
  line["ddl"] =
      schema.ddl.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(schema.ddl);
  line["columns"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    const ColumnSchema& column = schema.columns[i];
    nlohmann::ordered_json item;
    item["name"] = column.name;
    item["type"] = column.type_name;
    item["canonical_type"] = column.canonical_type;
    item["nullable"] = column.nullable;
    item["key"] = column.key;
    item["position"] = i + 1;
    item["type_oid"] = column.type_oid;
    item["type_modifier"] = column.type_modifier;
    line["columns"].push_back(std::move(item));
  }
  // Names and DDL that are not UTF-8 are written with U+FFFD; the fingerprint keeps the
  // original bytes, so the version still matches after a restart.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<SchemaHistory> SchemaHistory::Open(std::filesystem::path path) {
  return Load(std::move(path), /*repair=*/true);
}

Result<SchemaHistory> SchemaHistory::ReadOnly(std::filesystem::path path) {
  return Load(std::move(path), /*repair=*/false);
}

Result<SchemaHistory> SchemaHistory::Load(std::filesystem::path path, bool repair) {
  SchemaHistory history(std::move(path));
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadFileIfExists(history.path_));
  if (!text) return history;
  size_t complete = text->rfind('\n');
  complete = complete == std::string::npos ? 0 : complete + 1;
  if (complete < text->size()) {
    // An append the agent died during: it was never acknowledged, so no event of it was
    // delivered, and the version is registered again when its event is replayed.
    if (repair) {
      spdlog::warn(
          "schema_registry: Cut off an unfinished last line left by a crash path={} "
          "bytes={}",
          history.path_.string(), text->size() - complete);
      RETURN_IF_ERROR(CutOff(history.path_, complete));
    }
    text->resize(complete);
  }
  std::string_view rest = *text;
  for (size_t number = 1; !rest.empty(); ++number) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 1);
    SchemaHistoryEntry entry;
    std::string problem = line.empty() ? "empty line" : ParseLine(line, entry);
    if (problem.empty()) problem = history.SequenceProblem(entry);
    if (!problem.empty()) {
      return Status::CorruptData(fmt::format(
          "schema history {} line {}: {}; it is never reset: restore it from a backup or move "
          "it away to start the history over (versions would then restart at 1)",
          history.path_.string(), number, problem));
    }
    history.Add(std::move(entry));
  }
  return history;
}

std::string SchemaHistory::SequenceProblem(const SchemaHistoryEntry& entry) const {
  const TableSchema& schema = *entry.schema;
  const std::string table = QualifiedTableName(schema);
  auto it = last_version_.find(table);
  const uint32_t last = it == last_version_.end() ? 0 : it->second;
  if (schema.dropped) {
    if (schema.version != last) {
      return fmt::format("drop of {} has version {}, but its last version is {}", table,
                         schema.version, last);
    }
    return {};
  }
  if (schema.version != last + 1) {
    return fmt::format("{} version {} does not follow version {}", table, schema.version, last);
  }
  if (schema.previous_version != last) {
    return fmt::format("{} version {} has previous_version {}, not {}", table, schema.version,
                       schema.previous_version, last);
  }
  return {};
}

void SchemaHistory::Add(SchemaHistoryEntry entry) {
  last_version_[QualifiedTableName(*entry.schema)] = entry.schema->version;
  entries_.push_back(std::move(entry));
}

Status SchemaHistory::Append(SchemaHistoryEntry entry) {
  if (std::string problem = SequenceProblem(entry); !problem.empty()) {
    return Status::Fatal(
        fmt::format("schema history {}: refusing to append: {}", path_.string(), problem));
  }
  const std::string line = SchemaHistoryLine(entry) + "\n";

  const std::filesystem::path dir = path_.parent_path().empty() ? "." : path_.parent_path();
  std::error_code ec;
  const bool dir_created = std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("create directory", dir, ec.value());
  if (dir_created)
    RETURN_IF_ERROR(SyncDirectory(dir.parent_path().empty() ? "." : dir.parent_path()));

  bool created = true;
  int raw = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (raw < 0 && errno == EEXIST) {
    created = false;
    raw = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  }
  if (raw < 0) return IoError("open", path_, errno);
  Fd fd(raw);
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0) return IoError("stat", path_, errno);
  Status status = WriteAll(fd.get(), line, path_);
  if (status.ok() && ::fdatasync(fd.get()) != 0) status = IoError("fdatasync", path_, errno);
  if (!status.ok()) {
    // A partial line must not stay in front of the next append.
    if (::ftruncate(fd.get(), before.st_size) == 0) (void)::fdatasync(fd.get());
    return status;
  }
  if (fd.Close() != 0) return IoError("close", path_, errno);
  if (created) RETURN_IF_ERROR(SyncDirectory(dir));
  Add(std::move(entry));
  return Status::Ok();
}

}  // namespace tributary
