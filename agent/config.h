#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/status.h"

namespace tributary {

// The YAML config of docs/config.md (DESIGN.md §4). Only the keys implemented so far exist;
// any other key is an error.
struct LogConfig {
  std::string level = "info";   // trace|debug|info|warn|error
  std::string format = "text";  // text|json
};

struct SourceConfig {
  std::string name;
  std::string type;                 // postgres | mysql
  std::string dsn;                  // libpq conninfo, or mysql://user:pass@host:port; expanded
  std::vector<std::string> tables;  // include globs, "schema.table"
  std::vector<std::string> exclude_tables;  // exclude globs
  std::string snapshot = "initial";         // initial | never
  int64_t snapshot_chunk_rows = 8192;       // rows per snapshot chunk (and checkpoint)
  std::string slot;                         // default "tributary_<name>", '-' as '_'
  std::string publication;                  // default "tributary_<name>", '-' as '_'
  int64_t server_id = 0;                    // mysql: replica id, required
  int64_t heartbeat_interval_ms = 10000;
  std::vector<std::string> sinks;
  std::string schema_compatibility = "backward";  // none | backward | forward | full
  std::string on_incompatible = "warn";           // warn | fail
  bool streaming = false;  // postgres: pgoutput streaming of in-progress transactions (PG14+)
  bool transaction_metadata = false;  // BEGIN/END events and the envelope's transaction block
  std::vector<std::string> logical_messages;  // postgres: message prefix globs emitted as op "m"
  std::string state_dir;  // not a source key: the agent's state_dir, copied by the loader
};

struct SinkConfig {
  std::string name;
  std::string type;  // file | kafka
  std::string path;  // file: output directory
  std::string topic = "{source}.{schema}.{table}";
  int64_t rotate_bytes = 134217728;  // file: segment size that triggers rotation
  int64_t flush_interval_ms = 200;   // file: fsync and ack; kafka exactly_once: commit
  bool flush_when_quiet = true;      // file: also flush as soon as the source falls quiet
  std::string brokers;               // kafka: bootstrap servers, host:port[,host:port...]
  bool tombstones = true;            // kafka: a null-value record after each delete
  bool exactly_once = false;         // kafka: transactional producer
  std::string dlq_topic;             // kafka: for records rejected for good; empty: fatal
  bool schemas = false;              // file, kafka: Kafka Connect {"schema","payload"} form
  // kafka: librdkafka properties, in file order; values already expanded (may be secrets).
  std::vector<std::pair<std::string, std::string>> librdkafka;
  // kafka, exactly_once: where each transaction's checkpoint goes.
  std::string offsets_topic = "tributary.offsets";
};

// Column masking and PII detection (docs/masking.md).
struct MaskingRule {
  std::string columns;  // glob over "schema.table.column" (MySQL: "db.table.column")
  std::string action;   // hash | redact | null | keep_last | truncate | email
  int64_t n = 0;        // keep_last, truncate: how many characters
};

struct MaskingConfig {
  std::string key;             // HMAC-SHA256 key; required (≥ 16 bytes) when a rule hashes
  std::string detect = "off";  // off | warn | mask
  std::vector<MaskingRule> rules;
};

// The HTTP endpoint: /metrics, /healthz, /readyz, /status (docs/operations.md).
struct HttpConfig {
  std::string host = "127.0.0.1";  // loopback unless the operator says otherwise
  uint16_t port = 9187;
};

struct AgentConfig {
  std::string state_dir;
  LogConfig log;
  std::optional<HttpConfig> http;              // absent: no HTTP endpoint
  std::string on_source_failure = "stop_all";  // stop_all | isolate
  std::vector<SourceConfig> sources;
  std::vector<SinkConfig> sinks;
  std::optional<MaskingConfig> masking;  // absent: no masking stage
};

// Loads and validates a config file. On failure the Status is kInvalidConfig and its message
// lists every problem found, one per line in file order, each starting with its path:
//   sources[0].dsn: required key is missing
// Expands ${ENV} and ${file:PATH} in every scalar value ($${ is a literal ${). A relative PATH
// is resolved against $CREDENTIALS_DIRECTORY when set, else against the config file's
// directory. Messages never contain expanded values, nor the dsn.
Result<AgentConfig> LoadConfig(const std::string& path);

// Same, from YAML text (tests). `origin` names the text in messages and stands for its file:
// relative ${file:} paths resolve against origin's directory.
Result<AgentConfig> ParseConfig(const std::string& yaml_text, const std::string& origin);

}  // namespace tributary
