#include "agent/config.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

namespace tributary {
namespace {

namespace fs = std::filesystem;

// A ${file:} target bigger than this is a mistake (a log, a device), not a secret.
constexpr size_t kMaxSecretFileBytes = 1 << 20;
constexpr size_t kMaxPgIdentifierLength = 63;
constexpr size_t kMaxQuotedLength = 80;

constexpr size_t kMaxConfigFileBytes = 16 << 20;

// HMAC-SHA256 keys shorter than this are too easy to brute-force over low-entropy PII.
constexpr size_t kMinMaskingKeyBytes = 16;
const std::initializer_list<std::string_view> kMaskingActions = {"hash",      "redact",   "null",
                                                                 "keep_last", "truncate", "email"};

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// Reads a whole file into `out`; returns 0 or an errno value (EFBIG above `limit` bytes).
int ReadWholeFile(const char* path, size_t limit, std::string& out) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) {
      err = EFBIG;
      break;
    }
  }
  ::close(fd);
  return err;
}

enum class IntParse { kOk, kNotAnInteger, kOutOfRange };

// Decimal with an optional sign, as YAML's core schema reads an int.
IntParse ParseDecimal(std::string_view s, int64_t& value) {
  if (s.starts_with('+')) s.remove_prefix(1);
  const std::string_view digits = s.starts_with('-') ? s.substr(1) : s;
  if (digits.empty() || !std::ranges::all_of(digits, [](char c) { return c >= '0' && c <= '9'; })) {
    return IntParse::kNotAnInteger;
  }
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() ? IntParse::kOk : IntParse::kOutOfRange;
}

// The message form of a value: quoted, escaped, and cut short.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == kMaxQuotedLength) {
      out += "...";
      break;
    }
    const unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool IsValidName(std::string_view s) { return !s.empty() && std::ranges::all_of(s, IsNameChar); }

bool IsValidPgIdentifier(std::string_view s) {
  return !s.empty() && s.size() <= kMaxPgIdentifierLength && std::ranges::all_of(s, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool IsValidEnvName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::ranges::all_of(s, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Keys are printed as written unless that would make the path ambiguous.
std::string KeyText(std::string_view key) {
  return IsValidName(key) ? std::string(key) : Quote(key);
}

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? KeyText(key) : path + "." + KeyText(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string DescribeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "a string";
    default:
      return "null";
  }
}

std::string OneOf(std::initializer_list<std::string_view> values) {
  std::string out = "must be one of ";
  for (const std::string_view* v = values.begin(); v != values.end(); ++v) {
    if (v != values.begin()) out += ", ";
    out += *v;
  }
  return out;
}

bool Contains(std::initializer_list<std::string_view> values, std::string_view v) {
  return std::ranges::find(values, v) != values.end();
}

// A scalar after expansion. `shown` is how a message may refer to it: the quoted value when the
// raw scalar had no ${ and is not secret, else empty, because expanded values may be secrets.
struct Scalar {
  std::string value;
  std::string shown;
  YAML::Mark mark;
};

// The value for a message when it may be shown, with a space after (Lead) or before (Spliced).
std::string Lead(const Scalar& s) { return s.shown.empty() ? "" : s.shown + " "; }
std::string Spliced(const Scalar& s) { return s.shown.empty() ? "" : " " + s.shown; }

// A key/value pair of a mapping; the key's mark orders problems about the value.
struct Entry {
  YAML::Node value;
  YAML::Mark mark;
};

std::optional<Entry> Find(const YAML::Node& map, std::string_view key) {
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return Entry{kv.second, kv.first.Mark()};
  }
  return std::nullopt;
}

enum class Presence { kOptional, kRequired };
enum class Secrecy { kPlain, kSecret };

class Parser {
 public:
  Parser(std::string origin, fs::path base_dir)
      : origin_(std::move(origin)), base_dir_(std::move(base_dir)) {}

  Result<AgentConfig> Parse(const std::string& text) {
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
      return Status::InvalidConfig(origin_ + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    if (docs.size() > 1) {
      return Status::InvalidConfig(origin_ + ": holds " + std::to_string(docs.size()) +
                                   " YAML documents, expected one");
    }
    // An empty file is an empty mapping, so it gets the missing-key problems.
    const YAML::Node root =
        docs.empty() || docs[0].IsNull() ? YAML::Node(YAML::NodeType::Map) : docs[0];
    AgentConfig config;
    if (root.IsMap()) {
      ParseRoot(root, config);
    } else {
      AddProblem(root.Mark(), origin_,
                 "expected a mapping at the top level, got " + DescribeKind(root));
    }
    if (problems_.empty()) return config;
    // Parse order differs from file order (sinks go first so sources can refer to them).
    std::ranges::stable_sort(problems_, [](const Problem& a, const Problem& b) {
      return std::tie(a.mark.line, a.mark.column) < std::tie(b.mark.line, b.mark.column);
    });
    std::string message;
    for (const Problem& p : problems_) {
      if (!message.empty()) message += '\n';
      message += p.text;
    }
    return Status::InvalidConfig(std::move(message));
  }

 private:
  struct Problem {
    YAML::Mark mark;
    std::string text;
  };

  void AddProblem(const YAML::Mark& mark, const std::string& path, const std::string& what) {
    problems_.push_back({mark, path + ": " + what});
  }

  void ParseRoot(const YAML::Node& root, AgentConfig& config) {
    CheckKeys(root, "",
              {"state_dir", "log", "http", "on_source_failure", "sources", "sinks", "masking"});
    if (auto dir = GetString(root, "", "state_dir", Presence::kRequired)) {
      if (dir->value.empty()) AddProblem(dir->mark, "state_dir", "must not be empty");
      config.state_dir = std::move(dir->value);
    }
    if (auto log = GetMapping(root, "", "log")) ParseLog(*log, config.log);
    if (auto http = GetMapping(root, "", "http")) ParseHttp(*http, config.http);
    GetEnum(root, "", "on_source_failure", {"stop_all", "isolate"}, config.on_source_failure);
    if (auto sinks = GetSequence(root, "", "sinks")) {
      for (size_t i = 0; i < sinks->size(); ++i) {
        const YAML::Node item = (*sinks)[i];
        if (ExpectMapping(item, item.Mark(), Index("sinks", i))) {
          ParseSink(item, Index("sinks", i), config.sinks);
        }
      }
    }
    if (auto sources = GetSequence(root, "", "sources")) {
      for (size_t i = 0; i < sources->size(); ++i) {
        const YAML::Node item = (*sources)[i];
        if (ExpectMapping(item, item.Mark(), Index("sources", i))) {
          ParseSource(item, Index("sources", i), config.sources);
        }
      }
    }
    for (SourceConfig& source : config.sources) source.state_dir = config.state_dir;
    if (auto masking = GetMapping(root, "", "masking")) ParseMasking(*masking, config.masking);
  }

  void ParseMasking(const YAML::Node& map, std::optional<MaskingConfig>& out) {
    MaskingConfig masking;
    CheckKeys(map, "masking", {"key", "detect", "rules"});
    // The key is a secret even when written inline: no message ever shows it, nor part of it.
    const bool key_present = Find(map, "key").has_value();
    std::optional<Scalar> key =
        GetString(map, "masking", "key", Presence::kOptional, Secrecy::kSecret);
    if (key && key->value.size() < kMinMaskingKeyBytes) {
      AddProblem(key->mark, "masking.key",
                 "must be at least " + std::to_string(kMinMaskingKeyBytes) + " bytes (got " +
                     std::to_string(key->value.size()) + ")");
    }
    if (key) masking.key = std::move(key->value);
    GetEnum(map, "masking", "detect", {"off", "warn", "mask"}, masking.detect);
    std::optional<std::string> first_hash;  // path of the first rule that hashes
    if (auto rules = GetSequence(map, "masking", "rules")) {
      for (size_t i = 0; i < rules->size(); ++i) {
        const YAML::Node item = (*rules)[i];
        const std::string path = Index("masking.rules", i);
        if (!ExpectMapping(item, item.Mark(), path)) continue;
        MaskingRule rule = ParseMaskingRule(item, path);
        if (rule.action == "hash" && !first_hash) first_hash = path;
        masking.rules.push_back(std::move(rule));
      }
    }
    if (first_hash && !key_present) {
      AddProblem(map.Mark(), "masking.key",
                 "required key is missing (" + *first_hash + " has action hash)");
    }
    out = std::move(masking);
  }

  // The rule's action is left empty when it is missing or bad.
  MaskingRule ParseMaskingRule(const YAML::Node& map, const std::string& path) {
    MaskingRule rule;
    CheckKeys(map, path, {"columns", "action", "n"});
    if (auto columns = GetString(map, path, "columns", Presence::kRequired)) {
      const std::string& glob = columns->value;
      const size_t first = glob.find('.');
      const size_t second = first == std::string::npos ? first : glob.find('.', first + 1);
      if (second == std::string::npos || first == 0 || second == first + 1 ||
          second + 1 == glob.size() || glob.find('.', second + 1) != std::string::npos) {
        AddProblem(columns->mark, Join(path, "columns"),
                   Lead(*columns) +
                       "must be \"schema.table.column\": exactly two dots, all three parts "
                       "non-empty");
      }
      rule.columns = std::move(columns->value);
    }
    // Plain `action: null` is a YAML null, not the string; say how to write the action.
    const std::optional<Entry> action_entry = Find(map, "action");
    if (action_entry && action_entry->value.IsNull()) {
      AddProblem(action_entry->mark, Join(path, "action"),
                 "expected a string, got null (write \"null\", quoted, for the null action)");
    } else if (auto action = GetString(map, path, "action", Presence::kRequired)) {
      if (Contains(kMaskingActions, action->value)) {
        rule.action = std::move(action->value);
      } else {
        AddProblem(action->mark, Join(path, "action"), OneOf(kMaskingActions));
      }
    }
    const bool takes_n = rule.action == "keep_last" || rule.action == "truncate";
    const std::optional<Entry> n_entry = Find(map, "n");
    if (n_entry && !rule.action.empty() && !takes_n) {
      AddProblem(n_entry->mark, Join(path, "n"), "only allowed with action keep_last or truncate");
    } else if (auto n = GetInt(map, path, "n")) {
      if (*n < 0) AddProblem(n_entry->mark, Join(path, "n"), "must not be negative");
      rule.n = *n;
    } else if (!n_entry && takes_n) {
      AddProblem(map.Mark(), Join(path, "n"),
                 "required key is missing (action " + rule.action + ")");
    }
    return rule;
  }

  // `listen: host:port`, IPv6 as [addr]:port; `http: {}` listens on the loopback default.
  void ParseHttp(const YAML::Node& map, std::optional<HttpConfig>& out) {
    HttpConfig http;
    CheckKeys(map, "http", {"listen"});
    if (auto listen = GetString(map, "http", "listen", Presence::kOptional)) {
      const std::string& text = listen->value;
      const size_t colon = text.rfind(':');
      int64_t port = 0;
      std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      if (colon == std::string::npos || host.empty() ||
          ParseDecimal(std::string_view(text).substr(colon + 1), port) != IntParse::kOk ||
          port < 1 || port > 65535) {
        AddProblem(listen->mark, "http.listen",
                   Lead(*listen) + "must be host:port, e.g. 127.0.0.1:9187 or [::1]:9187");
      } else {
        http.host = std::move(host);
        http.port = static_cast<uint16_t>(port);
      }
    }
    out = std::move(http);
  }

  void ParseLog(const YAML::Node& map, LogConfig& log) {
    CheckKeys(map, "log", {"level", "format"});
    GetEnum(map, "log", "level", {"trace", "debug", "info", "warn", "error"}, log.level);
    GetEnum(map, "log", "format", {"text", "json"}, log.format);
  }

  void ParseSource(const YAML::Node& map, const std::string& path,
                   std::vector<SourceConfig>& sources) {
    SourceConfig source;
    std::optional<Scalar> name = GetName(map, path, source_names_);
    std::optional<Scalar> type = GetString(map, path, "type", Presence::kRequired);
    if (type && !CheckType(*type, Join(path, "type"), {"postgres", "mysql"}, {})) return;
    const bool mysql = type && type->value == "mysql";
    if (mysql) {
      CheckKeys(
          map, path,
          {"name", "type", "dsn", "tables", "exclude_tables", "snapshot", "snapshot_chunk_rows",
           "server_id", "heartbeat_interval_ms", "sinks", "schema_compatibility", "on_incompatible",
           "transaction_metadata", "logical_messages"});
    } else {
      CheckKeys(
          map, path,
          {"name", "type", "dsn", "tables", "exclude_tables", "snapshot", "snapshot_chunk_rows",
           "slot", "publication", "heartbeat_interval_ms", "sinks", "schema_compatibility",
           "on_incompatible", "streaming", "transaction_metadata", "logical_messages"});
    }
    if (name) source.name = name->value;
    if (type) source.type = type->value;
    // The dsn usually carries a password, so it is never shown even when written inline.
    if (auto dsn = GetString(map, path, "dsn", Presence::kRequired, Secrecy::kSecret)) {
      if (dsn->value.empty()) AddProblem(dsn->mark, Join(path, "dsn"), "must not be empty");
      if (mysql && !dsn->value.empty() && !dsn->value.starts_with("mysql://")) {
        AddProblem(dsn->mark, Join(path, "dsn"), "must be \"mysql://user:password@host:port\"");
      }
      source.dsn = std::move(dsn->value);
    }
    if (auto tables = GetStringList(map, path, "tables", Presence::kRequired)) {
      if (tables->empty()) {
        AddProblem(Find(map, "tables")->mark, Join(path, "tables"), "must not be empty");
      }
      source.tables = TableGlobs(*tables, Join(path, "tables"));
    }
    if (auto excluded = GetStringList(map, path, "exclude_tables", Presence::kOptional)) {
      source.exclude_tables = TableGlobs(*excluded, Join(path, "exclude_tables"));
    }
    GetEnum(map, path, "snapshot", {"initial", "never"}, source.snapshot);
    if (auto rows = GetInt(map, path, "snapshot_chunk_rows")) {
      if (*rows < 1 || *rows > 1000000) {
        AddProblem(Find(map, "snapshot_chunk_rows")->mark, Join(path, "snapshot_chunk_rows"),
                   "must be between 1 and 1000000");
      }
      source.snapshot_chunk_rows = *rows;
    }
    if (mysql) {
      ParseServerId(map, path, source);
      // Known to mysql sources only to say why it does not apply.
      if (std::optional<Entry> messages = Find(map, "logical_messages")) {
        AddProblem(messages->mark, Join(path, "logical_messages"),
                   "logical decoding messages exist in PostgreSQL only; remove the key from this "
                   "mysql source");
      }
    } else {
      if (auto prefixes = GetStringList(map, path, "logical_messages", Presence::kOptional)) {
        for (size_t i = 0; i < prefixes->size(); ++i) {
          const Scalar& prefix = (*prefixes)[i];
          if (prefix.value.empty()) {
            AddProblem(prefix.mark, Index(Join(path, "logical_messages"), i),
                       "must not be empty (a prefix glob such as \"audit\" or \"app.*\")");
          }
          source.logical_messages.push_back(prefix.value);
        }
      }
      source.slot = PgIdentifier(map, path, "slot", name);
      source.publication = PgIdentifier(map, path, "publication", name);
      if (auto streaming = GetBool(map, path, "streaming")) source.streaming = *streaming;
    }
    if (auto ms = GetInt(map, path, "heartbeat_interval_ms")) {
      if (*ms <= 0) {
        AddProblem(Find(map, "heartbeat_interval_ms")->mark, Join(path, "heartbeat_interval_ms"),
                   "must be positive");
      }
      source.heartbeat_interval_ms = *ms;
    }
    GetEnum(map, path, "schema_compatibility", {"none", "backward", "forward", "full"},
            source.schema_compatibility);
    GetEnum(map, path, "on_incompatible", {"warn", "fail"}, source.on_incompatible);
    if (auto metadata = GetBool(map, path, "transaction_metadata")) {
      source.transaction_metadata = *metadata;
    }
    if (auto sinks = GetStringList(map, path, "sinks", Presence::kRequired)) {
      if (sinks->empty()) {
        AddProblem(Find(map, "sinks")->mark, Join(path, "sinks"), "must not be empty");
      }
      std::set<std::string> seen;
      for (size_t i = 0; i < sinks->size(); ++i) {
        const Scalar& ref = (*sinks)[i];
        const std::string ref_path = Index(Join(path, "sinks"), i);
        if (!sink_names_.contains(ref.value)) {
          AddProblem(ref.mark, ref_path, "unknown sink" + Spliced(ref));
        } else if (!seen.insert(ref.value).second) {
          AddProblem(ref.mark, ref_path, "sink" + Spliced(ref) + " is listed twice");
        }
        source.sinks.push_back(ref.value);
      }
    }
    sources.push_back(std::move(source));
  }

  // MySQL's replica id: unique among the server's replicas, which it disconnects on a clash.
  void ParseServerId(const YAML::Node& map, const std::string& path, SourceConfig& source) {
    std::optional<Entry> entry = Find(map, "server_id");
    if (!entry) {
      AddProblem(map.Mark(), Join(path, "server_id"), "required key is missing (type mysql)");
      return;
    }
    if (auto id = GetInt(map, path, "server_id")) {
      if (*id < 1 || *id > 4294967295) {
        AddProblem(entry->mark, Join(path, "server_id"), "must be between 1 and 4294967295");
      }
      source.server_id = *id;
    }
  }

  void ParseSink(const YAML::Node& map, const std::string& path, std::vector<SinkConfig>& sinks) {
    SinkConfig sink;
    std::optional<Scalar> name = GetName(map, path, sink_names_);
    std::optional<Scalar> type = GetString(map, path, "type", Presence::kRequired);
    if (type && !CheckType(*type, Join(path, "type"), {"file", "kafka"}, {})) return;
    if (name) sink.name = name->value;
    if (type) sink.type = type->value;
    if (sink.type == "kafka") {
      ParseKafkaSink(map, path, sink);
      sinks.push_back(std::move(sink));
      return;
    }
    CheckKeys(map, path,
              {"name", "type", "path", "topic", "rotate_bytes", "flush_interval_ms",
               "flush_when_quiet", "schemas"});
    if (auto schemas = GetBool(map, path, "schemas")) sink.schemas = *schemas;
    if (auto quiet = GetBool(map, path, "flush_when_quiet")) sink.flush_when_quiet = *quiet;
    if (auto dir = GetString(map, path, "path", Presence::kRequired)) {
      if (dir->value.empty()) AddProblem(dir->mark, Join(path, "path"), "must not be empty");
      sink.path = std::move(dir->value);
    }
    if (auto topic = GetString(map, path, "topic", Presence::kOptional)) {
      CheckTopic(*topic, Join(path, "topic"));
      sink.topic = std::move(topic->value);
    }
    if (auto bytes = GetInt(map, path, "rotate_bytes")) {
      if (*bytes < 1024) {
        AddProblem(Find(map, "rotate_bytes")->mark, Join(path, "rotate_bytes"),
                   "must be at least 1024");
      }
      sink.rotate_bytes = *bytes;
    }
    if (auto ms = GetInt(map, path, "flush_interval_ms")) {
      if (*ms < 1 || *ms > 60000) {
        AddProblem(Find(map, "flush_interval_ms")->mark, Join(path, "flush_interval_ms"),
                   "must be between 1 and 60000");
      }
      sink.flush_interval_ms = *ms;
    }
    sinks.push_back(std::move(sink));
  }

  // The kafka sink's own keys (docs/kafka-sink.md). Whether librdkafka takes the `librdkafka`
  // entries is checked by the sink (CheckKafkaSinkOptions), which knows librdkafka.
  void ParseKafkaSink(const YAML::Node& map, const std::string& path, SinkConfig& sink) {
    CheckKeys(map, path,
              {"name", "type", "brokers", "topic", "tombstones", "exactly_once", "dlq_topic",
               "librdkafka", "schemas", "offsets_topic", "flush_interval_ms"});
    if (auto schemas = GetBool(map, path, "schemas")) sink.schemas = *schemas;
    if (auto brokers = GetString(map, path, "brokers", Presence::kRequired)) {
      if (brokers->value.empty()) {
        AddProblem(brokers->mark, Join(path, "brokers"), "must not be empty");
      }
      sink.brokers = std::move(brokers->value);
    }
    if (auto topic = GetString(map, path, "topic", Presence::kOptional)) {
      CheckTopic(*topic, Join(path, "topic"));
      sink.topic = std::move(topic->value);
    }
    if (auto tombstones = GetBool(map, path, "tombstones")) sink.tombstones = *tombstones;
    if (auto exactly_once = GetBool(map, path, "exactly_once")) sink.exactly_once = *exactly_once;
    for (const char* key : {"dlq_topic", "offsets_topic"}) {
      auto topic = GetString(map, path, key, Presence::kOptional);
      if (!topic) continue;
      const bool legal =
          !topic->value.empty() && topic->value.size() <= 249 && topic->value != "." &&
          topic->value != ".." &&
          std::ranges::all_of(topic->value, [](char c) { return IsNameChar(c) || c == '.'; });
      if (!legal) {
        AddProblem(topic->mark, Join(path, key),
                   Lead(*topic) + "must be a Kafka topic name: 1 to 249 of [A-Za-z0-9._-]");
      }
      (std::string_view(key) == "dlq_topic" ? sink.dlq_topic : sink.offsets_topic) =
          std::move(topic->value);
    }
    if (auto ms = GetInt(map, path, "flush_interval_ms")) {
      if (*ms < 1 || *ms > 60000) {
        AddProblem(Find(map, "flush_interval_ms")->mark, Join(path, "flush_interval_ms"),
                   "must be between 1 and 60000");
      }
      sink.flush_interval_ms = *ms;
    }
    if (auto settings = GetMapping(map, path, "librdkafka")) {
      const std::string settings_path = Join(path, "librdkafka");
      std::set<std::string> seen;
      for (const auto& kv : *settings) {
        if (!kv.first.IsScalar()) {
          AddProblem(kv.first.Mark(), settings_path,
                     "keys must be strings, got " + DescribeKind(kv.first));
          continue;
        }
        const std::string key_path = Join(settings_path, kv.first.Scalar());
        if (!seen.insert(kv.first.Scalar()).second) {
          AddProblem(kv.first.Mark(), key_path, "duplicate key");
          continue;
        }
        // Values may be credentials (sasl.password): never shown.
        if (auto value = ScalarString(kv.second, kv.first.Mark(), key_path, Secrecy::kSecret)) {
          sink.librdkafka.emplace_back(kv.first.Scalar(), std::move(value->value));
        }
      }
    }
  }

  // Reads `name` and registers it in `names` (name -> path) for duplicate and reference checks,
  // even when its charset is wrong, so references to it do not add noise. Returns only a valid
  // name.
  std::optional<Scalar> GetName(const YAML::Node& map, const std::string& path,
                                std::map<std::string, std::string>& names) {
    std::optional<Scalar> name = GetString(map, path, "name", Presence::kRequired);
    if (!name) return std::nullopt;
    const std::string name_path = Join(path, "name");
    auto [it, inserted] = names.emplace(name->value, path);
    if (!inserted) {
      AddProblem(name->mark, name_path,
                 "duplicate name" + Spliced(*name) + " (also " + it->second + ")");
    }
    if (name->value.empty()) {
      AddProblem(name->mark, name_path, "must not be empty");
      return std::nullopt;
    }
    if (!IsValidName(name->value)) {
      AddProblem(name->mark, name_path,
                 Lead(*name) + "must contain only letters, digits, '_' and '-'");
      return std::nullopt;
    }
    return name;
  }

  // Reports a type outside `supported`. Returns false for a `planned` type: its keys are not
  // known yet, so the caller skips the rest of the entry rather than call them unknown.
  bool CheckType(const Scalar& type, const std::string& path,
                 std::initializer_list<std::string_view> supported,
                 std::initializer_list<std::string_view> planned) {
    if (Contains(supported, type.value)) return true;
    if (!Contains(planned, type.value)) {
      AddProblem(type.mark, path, OneOf(supported));
      return true;
    }
    AddProblem(type.mark, path, Lead(type) + "is not supported yet; " + OneOf(supported));
    return false;
  }

  std::vector<std::string> TableGlobs(const std::vector<Scalar>& globs, const std::string& path) {
    std::vector<std::string> out;
    for (size_t i = 0; i < globs.size(); ++i) {
      const std::string& glob = globs[i].value;
      const size_t dot = glob.find('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == glob.size() ||
          glob.find('.', dot + 1) != std::string::npos) {
        AddProblem(
            globs[i].mark, Index(path, i),
            Lead(globs[i]) + "must be \"schema.table\": exactly one dot, both parts non-empty");
      }
      out.push_back(glob);
    }
    return out;
  }

  // Slot and publication default to tributary_<name> with '-' turned into '_'.
  std::string PgIdentifier(const YAML::Node& map, const std::string& path, std::string_view key,
                           const std::optional<Scalar>& name) {
    constexpr std::string_view kRule =
        "must be 1 to 63 lowercase letters, digits or '_' (a PostgreSQL identifier)";
    if (auto value = GetString(map, path, key, Presence::kOptional)) {
      if (!IsValidPgIdentifier(value->value)) {
        AddProblem(value->mark, Join(path, key), Lead(*value) + std::string(kRule));
      }
      return value->value;
    }
    if (!name) return "";
    std::string value = "tributary_" + name->value;
    std::ranges::replace(value, '-', '_');
    if (!IsValidPgIdentifier(value)) {
      const std::string shown = name->shown.empty() ? "" : " " + Quote(value);
      AddProblem(name->mark, Join(path, key),
                 "the default" + shown + " derived from the name " + std::string(kRule) + "; set " +
                     std::string(key) + " explicitly");
    }
    return value;
  }

  void CheckTopic(const Scalar& topic, const std::string& path) {
    if (topic.value.empty()) {
      AddProblem(topic.mark, path, "must not be empty");
      return;
    }
    for (size_t i = 0; i < topic.value.size(); ++i) {
      if (topic.value[i] == '}') {
        AddProblem(topic.mark, path, "'}' without a matching '{'");
        return;
      }
      if (topic.value[i] != '{') continue;
      const size_t end = topic.value.find('}', i);
      if (end == std::string::npos) {
        AddProblem(topic.mark, path, "'{' without a matching '}'");
        return;
      }
      const std::string_view placeholder = std::string_view(topic.value).substr(i, end - i + 1);
      if (!Contains({"{source}", "{schema}", "{table}"}, placeholder)) {
        const std::string shown = topic.shown.empty() ? "" : " " + std::string(placeholder);
        AddProblem(topic.mark, path,
                   "unknown placeholder" + shown + "; use {source}, {schema}, {table}");
      }
      i = end;
    }
  }

  // Reports keys outside `known`; those in `planned` are recognized but not implemented.
  void CheckKeys(const YAML::Node& map, const std::string& path,
                 std::initializer_list<std::string_view> known,
                 std::initializer_list<std::string_view> planned = {}) {
    std::set<std::string> seen;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) {
        AddProblem(kv.first.Mark(), path.empty() ? origin_ : path,
                   "keys must be strings, got " + DescribeKind(kv.first));
        continue;
      }
      const std::string& key = kv.first.Scalar();
      const std::string key_path = Join(path, key);
      if (!seen.insert(key).second) {
        AddProblem(kv.first.Mark(), key_path, "duplicate key");
      } else if (Contains(planned, key)) {
        AddProblem(kv.first.Mark(), key_path, "not supported yet");
      } else if (!Contains(known, key)) {
        AddProblem(kv.first.Mark(), key_path, "unknown key");
      }
    }
  }

  bool ExpectMapping(const YAML::Node& node, const YAML::Mark& mark, const std::string& path) {
    if (node.IsMap()) return true;
    AddProblem(mark, path, "expected a mapping, got " + DescribeKind(node));
    return false;
  }

  std::optional<YAML::Node> GetMapping(const YAML::Node& map, const std::string& path,
                                       std::string_view key) {
    std::optional<Entry> entry = Find(map, key);
    if (!entry || !ExpectMapping(entry->value, entry->mark, Join(path, key))) return std::nullopt;
    return entry->value;
  }

  std::optional<YAML::Node> GetSequence(const YAML::Node& map, const std::string& path,
                                        std::string_view key,
                                        Presence presence = Presence::kOptional) {
    std::optional<Entry> entry = Find(map, key);
    if (!entry) {
      if (presence == Presence::kRequired) {
        AddProblem(map.Mark(), Join(path, key), "required key is missing");
      }
      return std::nullopt;
    }
    if (!entry->value.IsSequence()) {
      AddProblem(entry->mark, Join(path, key),
                 "expected a list, got " + DescribeKind(entry->value));
      return std::nullopt;
    }
    return entry->value;
  }

  // A scalar as a string, expanded. Any non-null scalar is a string, `name: 2024` included.
  std::optional<Scalar> ScalarString(const YAML::Node& node, const YAML::Mark& mark,
                                     const std::string& path, Secrecy secrecy) {
    if (!node.IsScalar()) {
      AddProblem(mark, path, "expected a string, got " + DescribeKind(node));
      return std::nullopt;
    }
    const std::string& raw = node.Scalar();
    std::optional<std::string> value = Expand(raw, mark, path, secrecy);
    if (!value) return std::nullopt;
    const bool shown = secrecy == Secrecy::kPlain && raw.find("${") == std::string::npos;
    return Scalar{std::move(*value), shown ? Quote(raw) : "", mark};
  }

  std::optional<Scalar> GetString(const YAML::Node& map, const std::string& path,
                                  std::string_view key, Presence presence,
                                  Secrecy secrecy = Secrecy::kPlain) {
    std::optional<Entry> entry = Find(map, key);
    if (!entry) {
      if (presence == Presence::kRequired) {
        AddProblem(map.Mark(), Join(path, key), "required key is missing");
      }
      return std::nullopt;
    }
    return ScalarString(entry->value, entry->mark, Join(path, key), secrecy);
  }

  // nullopt when the key is absent or any element is bad (each bad element is reported).
  std::optional<std::vector<Scalar>> GetStringList(const YAML::Node& map, const std::string& path,
                                                   std::string_view key, Presence presence) {
    std::optional<YAML::Node> seq = GetSequence(map, path, key, presence);
    if (!seq) return std::nullopt;
    std::vector<Scalar> out;
    bool ok = true;
    for (size_t i = 0; i < seq->size(); ++i) {
      const YAML::Node item = (*seq)[i];
      if (auto s = ScalarString(item, item.Mark(), Index(Join(path, key), i), Secrecy::kPlain)) {
        out.push_back(std::move(*s));
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // Leaves `out` at its default when the key is absent or bad.
  void GetEnum(const YAML::Node& map, const std::string& path, std::string_view key,
               std::initializer_list<std::string_view> values, std::string& out) {
    std::optional<Scalar> s = GetString(map, path, key, Presence::kOptional);
    if (!s) return;
    if (!Contains(values, s->value)) {
      AddProblem(s->mark, Join(path, key), OneOf(values));
      return;
    }
    out = std::move(s->value);
  }

  // Only plain (unquoted) decimal scalars are integers, as in YAML's core schema; a quoted "10"
  // is a string. Expansion happens first, so `key: ${ENV}` can be an integer.
  std::optional<int64_t> GetInt(const YAML::Node& map, const std::string& path,
                                std::string_view key) {
    std::optional<Entry> entry = Find(map, key);
    if (!entry) return std::nullopt;
    const std::string key_path = Join(path, key);
    const YAML::Node& node = entry->value;
    if (!node.IsScalar()) {
      AddProblem(entry->mark, key_path, "expected an integer, got " + DescribeKind(node));
      return std::nullopt;
    }
    std::optional<Scalar> s = ScalarString(node, entry->mark, key_path, Secrecy::kPlain);
    if (!s) return std::nullopt;
    const bool plain = node.Tag() == "?" || node.Tag() == "tag:yaml.org,2002:int";
    int64_t value = 0;
    const IntParse parsed = plain ? ParseDecimal(s->value, value) : IntParse::kNotAnInteger;
    if (parsed == IntParse::kOutOfRange) {
      AddProblem(entry->mark, key_path, "integer out of range");
      return std::nullopt;
    }
    if (parsed == IntParse::kNotAnInteger) {
      const std::string got = s->shown.empty() ? "a string"
                              : plain          ? s->shown
                                               : "the string " + s->shown;
      AddProblem(entry->mark, key_path, "expected an integer, got " + got);
      return std::nullopt;
    }
    return value;
  }

  // `true` or `false`, plain, as YAML's core schema reads a bool (after expansion).
  std::optional<bool> GetBool(const YAML::Node& map, const std::string& path,
                              std::string_view key) {
    std::optional<Entry> entry = Find(map, key);
    if (!entry) return std::nullopt;
    const std::string key_path = Join(path, key);
    std::optional<Scalar> s = ScalarString(entry->value, entry->mark, key_path, Secrecy::kPlain);
    if (!s) return std::nullopt;
    const bool plain = entry->value.Tag() == "?" || entry->value.Tag() == "tag:yaml.org,2002:bool";
    if (plain && (s->value == "true" || s->value == "false")) return s->value == "true";
    AddProblem(entry->mark, key_path, "expected true or false");
    return std::nullopt;
  }

  // Expands ${NAME}, ${file:PATH} and $${ in `raw`. Reports each bad reference; the
  // messages name the reference, never what it expands to. In a secret, a malformed reference
  // is not named either: it may be part of the secret, written without $${.
  std::optional<std::string> Expand(std::string_view raw, const YAML::Mark& mark,
                                    const std::string& path, Secrecy secrecy) {
    std::string out;
    bool ok = true;
    size_t i = 0;
    while (i < raw.size()) {
      if (raw.substr(i).starts_with("$${")) {
        out += "${";
        i += 3;
        continue;
      }
      if (!raw.substr(i).starts_with("${")) {
        out += raw[i++];
        continue;
      }
      const size_t end = raw.find('}', i + 2);
      if (end == std::string_view::npos) {
        AddProblem(mark, path, "unterminated ${ (write $${ for a literal ${)");
        return std::nullopt;
      }
      const std::string_view ref = raw.substr(i + 2, end - i - 2);
      i = end + 1;
      if (ref.starts_with("file:")) {
        ok = ReadSecretFile(ref.substr(5), mark, path, out) && ok;
      } else if (!IsValidEnvName(ref)) {
        const std::string shown = secrecy == Secrecy::kPlain ? " ${" + std::string(ref) + "}" : "";
        AddProblem(mark, path, "bad reference" + shown + ": expected ${NAME} or ${file:PATH}");
        ok = false;
      } else if (const char* env = std::getenv(std::string(ref).c_str())) {
        out += env;
      } else {
        AddProblem(mark, path, "environment variable " + std::string(ref) + " is not set");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // Appends the file's contents minus one trailing newline to `out`.
  bool ReadSecretFile(std::string_view file, const YAML::Mark& mark, const std::string& path,
                      std::string& out) {
    if (file.empty()) {
      AddProblem(mark, path, "${file:} needs a path");
      return false;
    }
    fs::path resolved(file);
    if (resolved.is_relative()) {
      const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
      resolved = (credentials && *credentials ? fs::path(credentials) : base_dir_) / resolved;
    }
    std::string contents;
    if (const int err = ReadWholeFile(resolved.c_str(), kMaxSecretFileBytes, contents)) {
      AddProblem(mark, path, "cannot read " + resolved.string() + ": " + ErrnoText(err));
      return false;
    }
    if (contents.ends_with('\n')) contents.pop_back();
    out += contents;
    return true;
  }

  std::string origin_;
  fs::path base_dir_;
  std::vector<Problem> problems_;
  std::map<std::string, std::string> source_names_;  // name -> path of its first use
  std::map<std::string, std::string> sink_names_;
};

}  // namespace

Result<AgentConfig> ParseConfig(const std::string& yaml_text, const std::string& origin) {
  return Parser(origin, fs::path(origin).parent_path()).Parse(yaml_text);
}

Result<AgentConfig> LoadConfig(const std::string& path) {
  std::string text;
  if (const int err = ReadWholeFile(path.c_str(), kMaxConfigFileBytes, text)) {
    return Status::InvalidConfig(path + ": cannot read config file: " + ErrnoText(err));
  }
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  return Parser(path, (ec ? fs::path(path) : absolute).parent_path()).Parse(text);
}

}  // namespace tributary
