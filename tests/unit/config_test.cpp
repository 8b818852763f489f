#define BOOST_TEST_MODULE config_test
#include "agent/config.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/temp_dir.h"

namespace tributary {
namespace {

namespace fs = std::filesystem;

// Sets (or with nullopt unsets) an environment variable for one scope.
class EnvGuard {
 public:
  EnvGuard(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~EnvGuard() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  BOOST_REQUIRE(out.good());
}

// A valid config; tests append or substitute lines to break it.
const std::string kSinkBlock =
    "sinks:\n"
    "  - name: events\n"
    "    type: file\n"
    "    path: /var/lib/tributary/out\n";

std::string SourceBlock(const std::string& extra = "") {
  return "sources:\n"
         "  - name: shop\n"
         "    type: postgres\n"
         "    dsn: \"host=db dbname=shop\"\n"
         "    tables: [public.orders]\n"
         "    sinks: [events]\n" +
         extra;
}

std::string Minimal(const std::string& source_extra = "") {
  return "state_dir: /var/lib/tributary\n" + SourceBlock(source_extra) + kSinkBlock;
}

// `text` with its only occurrence of `from` replaced by `to`.
std::string With(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  BOOST_REQUIRE(at != std::string::npos);
  BOOST_REQUIRE(text.find(from, at + 1) == std::string::npos);
  return text.replace(at, from.size(), to);
}

const std::string kDsnLine = "    dsn: \"host=db dbname=shop\"\n";
const std::string kPathLine = "    path: /var/lib/tributary/out\n";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The problem lines for a config that must be rejected.
std::vector<std::string> Problems(const std::string& yaml) {
  Result<AgentConfig> config = ParseConfig(yaml, "/etc/tributary/config.yaml");
  BOOST_REQUIRE(!config.ok());
  BOOST_TEST(config.status().code() == StatusCode::kInvalidConfig);
  return Lines(config.status().message());
}

// Problems() when exactly one problem is expected.
std::string OnlyProblem(const std::string& yaml) {
  std::vector<std::string> lines = Problems(yaml);
  BOOST_TEST_REQUIRE(lines.size() == 1u, "problems: " << lines.size());
  return lines[0];
}

bool Has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

BOOST_AUTO_TEST_CASE(full_config_round_trips) {
  const std::string yaml = R"(
state_dir: /var/lib/tributary
log: {level: debug, format: json}
sources:
  - name: shop-eu
    type: postgres
    dsn: "host=127.0.0.1 port=5432 dbname=shop user=cdc"
    tables: [public.orders, "public.customer*"]
    exclude_tables: ["public.customer_tmp*"]
    snapshot: never
    slot: shop_slot
    publication: shop_pub
    heartbeat_interval_ms: 5000
    sinks: [events, archive]
sinks:
  - name: events
    type: file
    path: /out/events
    topic: "cdc.{source}.{schema}.{table}"
    rotate_bytes: 1048576
    flush_interval_ms: 50
    flush_when_quiet: false
  - name: archive
    type: file
    path: /out/archive
)";
  Result<AgentConfig> config = ParseConfig(yaml, "config.yaml");
  BOOST_TEST_REQUIRE(config.ok(), config.status().ToString());
  BOOST_TEST(config->state_dir == "/var/lib/tributary");
  BOOST_TEST(config->log.level == "debug");
  BOOST_TEST(config->log.format == "json");
  BOOST_TEST_REQUIRE(config->sources.size() == 1u);
  const SourceConfig& source = config->sources[0];
  BOOST_TEST(source.name == "shop-eu");
  BOOST_TEST(source.type == "postgres");
  BOOST_TEST(source.dsn == "host=127.0.0.1 port=5432 dbname=shop user=cdc");
  BOOST_TEST(source.tables == (std::vector<std::string>{"public.orders", "public.customer*"}));
  BOOST_TEST(source.exclude_tables == (std::vector<std::string>{"public.customer_tmp*"}));
  BOOST_TEST(source.snapshot == "never");
  BOOST_TEST(source.slot == "shop_slot");
  BOOST_TEST(source.publication == "shop_pub");
  BOOST_TEST(source.heartbeat_interval_ms == 5000);
  BOOST_TEST(source.sinks == (std::vector<std::string>{"events", "archive"}));
  BOOST_TEST_REQUIRE(config->sinks.size() == 2u);
  const SinkConfig& sink = config->sinks[0];
  BOOST_TEST(sink.name == "events");
  BOOST_TEST(sink.type == "file");
  BOOST_TEST(sink.path == "/out/events");
  BOOST_TEST(sink.topic == "cdc.{source}.{schema}.{table}");
  BOOST_TEST(sink.rotate_bytes == 1048576);
  BOOST_TEST(sink.flush_interval_ms == 50);
  BOOST_TEST(!sink.flush_when_quiet);
  BOOST_TEST(config->sinks[1].name == "archive");
}

BOOST_AUTO_TEST_CASE(defaults_apply) {
  Result<AgentConfig> config = ParseConfig(
      "state_dir: /s\n"
      "sources:\n"
      "  - {name: shop-eu, type: postgres, dsn: x, tables: [public.a], sinks: [events]}\n" +
          kSinkBlock,
      "config.yaml");
  BOOST_TEST_REQUIRE(config.ok(), config.status().ToString());
  BOOST_TEST(config->log.level == "info");
  BOOST_TEST(config->log.format == "text");
  const SourceConfig& source = config->sources.at(0);
  BOOST_TEST(source.exclude_tables.empty());
  BOOST_TEST(source.snapshot == "initial");
  BOOST_TEST(source.slot == "tributary_shop_eu");
  BOOST_TEST(source.publication == "tributary_shop_eu");
  BOOST_TEST(source.heartbeat_interval_ms == 10000);
  BOOST_TEST(!source.streaming);
  BOOST_TEST(!source.transaction_metadata);
  BOOST_TEST(source.state_dir == "/s");
  const SinkConfig& sink = config->sinks.at(0);
  BOOST_TEST(sink.topic == "{source}.{schema}.{table}");
  BOOST_TEST(sink.rotate_bytes == 134217728);
  BOOST_TEST(sink.flush_interval_ms == 200);
  BOOST_TEST(sink.flush_when_quiet);
}

BOOST_AUTO_TEST_CASE(unknown_keys_top_level_and_nested) {
  std::vector<std::string> lines =
      Problems(Minimal("    colour: red\n") + "log: {level: info, colour: blue}\ncolour: 1\n");
  BOOST_TEST(lines.size() == 3u);
  BOOST_TEST(Has(lines, "sources[0].colour: unknown key"));
  BOOST_TEST(Has(lines, "log.colour: unknown key"));
  BOOST_TEST(Has(lines, "colour: unknown key"));
}

BOOST_AUTO_TEST_CASE(planned_keys_and_types_are_not_supported_yet) {
  BOOST_TEST(OnlyProblem("state_dir: /s\n" + kSinkBlock + "  - {name: k, type: s3, path: /x}\n") ==
             "sinks[1].type: must be one of file, kafka");
  // Kafka keys are the kafka sink's (kafka_sink_options_test); file keys are unknown there.
  BOOST_TEST(OnlyProblem("state_dir: /s\n" + kSinkBlock +
                         "  - {name: k, type: kafka, brokers: 'b:9092', path: /x}\n") ==
             "sinks[1].path: unknown key");
}

BOOST_AUTO_TEST_CASE(mysql_source_keys) {
  const std::string mysql =
      "state_dir: /s\n" + kSinkBlock +
      "sources:\n  - {name: legacy, type: mysql, dsn: \"mysql://cdc:secret@db:3306\", "
      "tables: [\"crm.*\"], sinks: [events], server_id: 4242}\n";
  Result<AgentConfig> ok = ParseConfig(mysql, "config.yaml");
  BOOST_TEST_REQUIRE(ok.ok(), ok.status().ToString());
  BOOST_TEST(ok->sources[0].type == "mysql");
  BOOST_TEST(ok->sources[0].server_id == 4242);
  BOOST_TEST(ok->sources[0].slot.empty());
  BOOST_TEST(OnlyProblem(With(mysql, ", server_id: 4242", "")) ==
             "sources[0].server_id: required key is missing (type mysql)");
  BOOST_TEST(OnlyProblem(With(mysql, "server_id: 4242", "server_id: 0")) ==
             "sources[0].server_id: must be between 1 and 4294967295");
  BOOST_TEST(OnlyProblem(With(mysql, "server_id: 4242", "server_id: 1, slot: s")) ==
             "sources[0].slot: unknown key");
  // The dsn is never shown: it holds the password.
  BOOST_TEST(OnlyProblem(With(mysql, "mysql://cdc:secret@db:3306", "cdc:secret@db")) ==
             "sources[0].dsn: must be \"mysql://user:password@host:port\"");
}

BOOST_AUTO_TEST_CASE(streaming_and_transaction_metadata) {
  const std::string pg =
      "state_dir: /s\n" + kSinkBlock +
      "sources:\n  - {name: shop, type: postgres, dsn: x, tables: [public.a], sinks: [events], "
      "streaming: true, transaction_metadata: true}\n";
  Result<AgentConfig> ok = ParseConfig(pg, "config.yaml");
  BOOST_TEST_REQUIRE(ok.ok(), ok.status().ToString());
  BOOST_TEST(ok->sources[0].streaming);
  BOOST_TEST(ok->sources[0].transaction_metadata);
  BOOST_TEST(OnlyProblem(With(pg, "transaction_metadata: true", "transaction_metadata: maybe"))
                 .find("sources[0].transaction_metadata") != std::string::npos);
  // pgoutput streaming is PostgreSQL's; transaction metadata is both sources'.
  const std::string mysql =
      "state_dir: /s\n" + kSinkBlock +
      "sources:\n  - {name: legacy, type: mysql, dsn: \"mysql://cdc:secret@db:3306\", "
      "tables: [\"crm.*\"], sinks: [events], server_id: 7, transaction_metadata: true}\n";
  Result<AgentConfig> my = ParseConfig(mysql, "config.yaml");
  BOOST_TEST_REQUIRE(my.ok(), my.status().ToString());
  BOOST_TEST(my->sources[0].transaction_metadata);
  BOOST_TEST(OnlyProblem(With(mysql, "server_id: 7", "server_id: 7, streaming: true")) ==
             "sources[0].streaming: unknown key");
}

BOOST_AUTO_TEST_CASE(http_and_on_source_failure) {
  Result<AgentConfig> plain = ParseConfig(Minimal(), "config.yaml");
  BOOST_TEST_REQUIRE(plain.ok(), plain.status().ToString());
  BOOST_TEST(!plain->http.has_value());
  BOOST_TEST(plain->on_source_failure == "stop_all");
  Result<AgentConfig> loopback = ParseConfig(Minimal() + "http: {}\n", "config.yaml");
  BOOST_TEST_REQUIRE(loopback.ok(), loopback.status().ToString());
  BOOST_TEST(loopback->http->host == "127.0.0.1");
  BOOST_TEST(loopback->http->port == 9187);
  Result<AgentConfig> v6 = ParseConfig(
      Minimal() + "http: {listen: \"[::1]:9000\"}\non_source_failure: isolate\n", "config.yaml");
  BOOST_TEST_REQUIRE(v6.ok(), v6.status().ToString());
  BOOST_TEST(v6->http->host == "::1");
  BOOST_TEST(v6->http->port == 9000);
  BOOST_TEST(v6->on_source_failure == "isolate");
  BOOST_TEST(OnlyProblem(Minimal() + "http: {listen: localhost}\n") ==
             "http.listen: \"localhost\" must be host:port, e.g. 127.0.0.1:9187 or [::1]:9187");
  BOOST_TEST(OnlyProblem(Minimal() + "http: {listen: \"1.2.3.4:70000\"}\n") ==
             "http.listen: \"1.2.3.4:70000\" must be host:port, e.g. 127.0.0.1:9187 or "
             "[::1]:9187");
  BOOST_TEST(OnlyProblem(Minimal() + "on_source_failure: ignore\n") ==
             "on_source_failure: must be one of stop_all, isolate");
}

BOOST_AUTO_TEST_CASE(wrong_types) {
  BOOST_TEST(
      OnlyProblem("state_dir: /s\n"
                  "sources:\n"
                  "  - {name: a, type: postgres, dsn: x, tables: public.a, sinks: [events]}\n" +
                  kSinkBlock) == "sources[0].tables: expected a list, got a string");
  BOOST_TEST(OnlyProblem(Minimal() + "    rotate_bytes: big\n") ==
             "sinks[0].rotate_bytes: expected an integer, got \"big\"");
  BOOST_TEST(OnlyProblem(Minimal() + "    flush_interval_ms: \"10\"\n") ==
             "sinks[0].flush_interval_ms: expected an integer, got the string \"10\"");
  BOOST_TEST(OnlyProblem(Minimal() + "    flush_interval_ms: 1.5\n") ==
             "sinks[0].flush_interval_ms: expected an integer, got \"1.5\"");
  BOOST_TEST(OnlyProblem(Minimal() + "    rotate_bytes: 99999999999999999999\n") ==
             "sinks[0].rotate_bytes: integer out of range");
  BOOST_TEST(OnlyProblem(Minimal("    heartbeat_interval_ms: [1]\n")) ==
             "sources[0].heartbeat_interval_ms: expected an integer, got a list");
  BOOST_TEST(OnlyProblem(Minimal() + "log: text\n") == "log: expected a mapping, got a string");
  BOOST_TEST(OnlyProblem(With(Minimal(), kDsnLine, "    dsn: {host: db}\n")) ==
             "sources[0].dsn: expected a string, got a mapping");
  BOOST_TEST(OnlyProblem("state_dir: /s\nsources: {name: a}\n") ==
             "sources: expected a list, got a mapping");
  BOOST_TEST(OnlyProblem("state_dir: /s\nsinks: [events]\n") ==
             "sinks[0]: expected a mapping, got a string");
  BOOST_TEST(OnlyProblem("- a\n") ==
             "/etc/tributary/config.yaml: expected a mapping at the top level, got a list");
}

BOOST_AUTO_TEST_CASE(missing_required_keys) {
  std::vector<std::string> lines = Problems(
      "sources:\n  - {type: postgres, tables: [public.a]}\nsinks:\n  - {name: events, type: "
      "file}\n");
  BOOST_TEST(lines == (std::vector<std::string>{
                          "state_dir: required key is missing",
                          "sources[0].name: required key is missing",
                          "sources[0].dsn: required key is missing",
                          "sources[0].sinks: required key is missing",
                          "sinks[0].path: required key is missing",
                      }),
             boost::test_tools::per_element());
  BOOST_TEST(OnlyProblem("") == "state_dir: required key is missing");
}

BOOST_AUTO_TEST_CASE(empty_values_are_rejected) {
  std::vector<std::string> lines = Problems(
      "state_dir: ''\nsources:\n  - {name: a, type: postgres, dsn: '', tables: [], "
      "sinks: []}\n");
  BOOST_TEST(lines == (std::vector<std::string>{
                          "state_dir: must not be empty",
                          "sources[0].dsn: must not be empty",
                          "sources[0].tables: must not be empty",
                          "sources[0].sinks: must not be empty",
                      }),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(duplicate_names) {
  const std::string yaml = "state_dir: /s\n" + SourceBlock() + SourceBlock().substr(9) +
                           kSinkBlock + kSinkBlock.substr(7);
  std::vector<std::string> lines = Problems(yaml);
  BOOST_TEST(lines == (std::vector<std::string>{
                          "sources[1].name: duplicate name \"shop\" (also sources[0])",
                          "sinks[1].name: duplicate name \"events\" (also sinks[0])",
                      }),
             boost::test_tools::per_element());
  BOOST_TEST(OnlyProblem(Minimal("    dsn: y\n")) == "sources[0].dsn: duplicate key");
}

BOOST_AUTO_TEST_CASE(unknown_sink_reference) {
  BOOST_TEST(OnlyProblem("state_dir: /s\nsources:\n"
                         "  - {name: a, type: postgres, dsn: x, tables: [p.t], sinks: [evnts]}\n" +
                         kSinkBlock) == "sources[0].sinks[0]: unknown sink \"evnts\"");
  BOOST_TEST(OnlyProblem("state_dir: /s\nsources:\n"
                         "  - {name: a, type: postgres, dsn: x, tables: [p.t], "
                         "sinks: [events, events]}\n" +
                         kSinkBlock) == "sources[0].sinks[1]: sink \"events\" is listed twice");
}

BOOST_AUTO_TEST_CASE(bad_enum_values) {
  BOOST_TEST(OnlyProblem(Minimal() + "log: {level: verbose}\n") ==
             "log.level: must be one of trace, debug, info, warn, error");
  BOOST_TEST(OnlyProblem(Minimal() + "log: {format: xml}\n") ==
             "log.format: must be one of text, json");
  BOOST_TEST(OnlyProblem(Minimal("    snapshot: always\n")) ==
             "sources[0].snapshot: must be one of initial, never");
}

BOOST_AUTO_TEST_CASE(bad_names_and_identifiers) {
  BOOST_TEST(OnlyProblem(Minimal("    slot: Shop-Slot\n")) ==
             "sources[0].slot: \"Shop-Slot\" must be 1 to 63 lowercase letters, digits or '_' (a "
             "PostgreSQL identifier)");
  std::vector<std::string> lines = Problems(
      "state_dir: /s\nsources:\n"
      "  - {name: Shop, type: postgres, dsn: x, "
      "tables: [p.t], sinks: [my sink]}\n"
      "sinks:\n  - {name: my sink, type: file, path: /o}\n");
  BOOST_TEST(Has(lines,
                 "sources[0].slot: the default \"tributary_Shop\" derived from the name must be 1 "
                 "to 63 lowercase letters, digits or '_' (a PostgreSQL identifier); set slot "
                 "explicitly"));
  BOOST_TEST(Has(lines,
                 "sinks[0].name: \"my sink\" must contain only letters, digits, '_' and "
                 "'-'"));
  // The bad sink name still counts as defined, so the reference adds no noise.
  BOOST_TEST(lines.size() == 3u);
}

BOOST_AUTO_TEST_CASE(integer_ranges) {
  std::vector<std::string> lines =
      Problems(Minimal("    heartbeat_interval_ms: 0\n") +
               "    rotate_bytes: 1023\n    flush_interval_ms: 60001\n");
  BOOST_TEST(lines == (std::vector<std::string>{
                          "sources[0].heartbeat_interval_ms: must be positive",
                          "sinks[0].rotate_bytes: must be at least 1024",
                          "sinks[0].flush_interval_ms: must be between 1 and 60000",
                      }),
             boost::test_tools::per_element());
  Result<AgentConfig> ok =
      ParseConfig(Minimal() + "    rotate_bytes: 1024\n    flush_interval_ms: 60000\n", "c");
  BOOST_TEST(ok.ok());
}

BOOST_AUTO_TEST_CASE(bad_table_globs) {
  std::vector<std::string> lines =
      Problems(Minimal("    exclude_tables: [orders, public.a.b, .x, 'y.', 'public.*']\n"));
  const std::string rule = " must be \"schema.table\": exactly one dot, both parts non-empty";
  BOOST_TEST(lines == (std::vector<std::string>{
                          "sources[0].exclude_tables[0]: \"orders\"" + rule,
                          "sources[0].exclude_tables[1]: \"public.a.b\"" + rule,
                          "sources[0].exclude_tables[2]: \".x\"" + rule,
                          "sources[0].exclude_tables[3]: \"y.\"" + rule,
                      }),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(topic_placeholders) {
  BOOST_TEST(OnlyProblem(Minimal() + "    topic: \"{source}.{db}.{table}\"\n") ==
             "sinks[0].topic: unknown placeholder {db}; use {source}, {schema}, {table}");
  BOOST_TEST(OnlyProblem(Minimal() + "    topic: \"x.{source\"\n") ==
             "sinks[0].topic: '{' without a matching '}'");
  Result<AgentConfig> fixed = ParseConfig(Minimal() + "    topic: all-changes\n", "c");
  BOOST_TEST_REQUIRE(fixed.ok(), fixed.status().ToString());
  BOOST_TEST(fixed->sinks[0].topic == "all-changes");
}

BOOST_AUTO_TEST_CASE(bad_yaml_syntax_gives_position) {
  BOOST_TEST(OnlyProblem("state_dir: /s\nsources: [a, b\nsinks: []\n") ==
             "/etc/tributary/config.yaml:3:6: end of sequence flow not found");
}

BOOST_AUTO_TEST_CASE(unreadable_config_file_is_named) {
  Result<AgentConfig> config = LoadConfig("/nonexistent/tributary.yaml");
  BOOST_REQUIRE(!config.ok());
  BOOST_TEST(config.status().code() == StatusCode::kInvalidConfig);
  BOOST_TEST(config.status().message() ==
             "/nonexistent/tributary.yaml: cannot read config file: No such file or directory");
}

BOOST_AUTO_TEST_CASE(many_problems_reported_at_once_in_file_order) {
  std::vector<std::string> lines = Problems(R"(
log: {level: loud}
sources:
  - name: shop
    type: postgres
    tables: [orders]
    colour: red
    sinks: [evnts]
sinks:
  - name: events
    type: file
    path: /o
    rotate_bytes: big
)");
  BOOST_TEST(lines == (std::vector<std::string>{
                          "state_dir: required key is missing",
                          "log.level: must be one of trace, debug, info, warn, error",
                          "sources[0].dsn: required key is missing",
                          "sources[0].tables[0]: \"orders\" must be \"schema.table\": exactly "
                          "one dot, both parts non-empty",
                          "sources[0].colour: unknown key",
                          "sources[0].sinks[0]: unknown sink \"evnts\"",
                          "sinks[0].rotate_bytes: expected an integer, got \"big\"",
                      }),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(env_expansion) {
  EnvGuard pw("TRIBUTARY_TEST_PW", "s3cret");
  EnvGuard hb("TRIBUTARY_TEST_HB", "2500");
  const std::string yaml =
      "state_dir: /s\nsources:\n"
      "  - name: shop\n"
      "    type: postgres\n"
      "    dsn: \"password=${TRIBUTARY_TEST_PW} x=$${LITERAL} y=$5\"\n"
      "    tables: [public.a]\n"
      "    heartbeat_interval_ms: ${TRIBUTARY_TEST_HB}\n"
      "    sinks: [events]\n" +
      kSinkBlock;
  Result<AgentConfig> config = ParseConfig(yaml, "c");
  BOOST_TEST_REQUIRE(config.ok(), config.status().ToString());
  BOOST_TEST(config->sources[0].dsn == "password=s3cret x=${LITERAL} y=$5");
  BOOST_TEST(config->sources[0].heartbeat_interval_ms == 2500);
}

BOOST_AUTO_TEST_CASE(unset_env_and_bad_references) {
  EnvGuard unset("TRIBUTARY_TEST_UNSET", std::nullopt);
  BOOST_TEST(OnlyProblem(With(Minimal(), kPathLine, "    path: /o/${TRIBUTARY_TEST_UNSET}\n")) ==
             "sinks[0].path: environment variable TRIBUTARY_TEST_UNSET is not set");
  BOOST_TEST(OnlyProblem(With(Minimal(), kPathLine, "    path: /o/${not a name}\n")) ==
             "sinks[0].path: bad reference ${not a name}: expected ${NAME} or ${file:PATH}");
  BOOST_TEST(OnlyProblem(With(Minimal(), kPathLine, "    path: /o/${OOPS\n")) ==
             "sinks[0].path: unterminated ${ (write $${ for a literal ${)");
  // In a secret, a malformed reference may be part of the secret, so it is not quoted.
  BOOST_TEST(OnlyProblem(With(Minimal(), kDsnLine, "    dsn: \"password=x${y z}\"\n")) ==
             "sources[0].dsn: bad reference: expected ${NAME} or ${file:PATH}");
}

BOOST_AUTO_TEST_CASE(unreadable_file_reference) {
  BOOST_TEST(OnlyProblem(With(Minimal(), kPathLine, "    path: ${file:/nonexistent/secret}\n")) ==
             "sinks[0].path: cannot read /nonexistent/secret: No such file or directory");
  testing::TempDir dir;
  EnvGuard creds("CREDENTIALS_DIRECTORY", std::nullopt);
  const fs::path config_path = dir.path() / "config.yaml";
  WriteFile(config_path, With(Minimal(), kPathLine, "    path: ${file:missing.txt}\n"));
  Result<AgentConfig> config = LoadConfig(config_path.string());
  BOOST_REQUIRE(!config.ok());
  BOOST_TEST(config.status().message() == "sinks[0].path: cannot read " +
                                              (dir.path() / "missing.txt").string() +
                                              ": No such file or directory");
}

BOOST_AUTO_TEST_CASE(file_expansion_strips_one_newline_and_resolves_relative_paths) {
  testing::TempDir dir;
  fs::create_directory(dir.path() / "creds");
  WriteFile(dir.path() / "pw", "beside-config\n\n");
  WriteFile(dir.path() / "creds" / "pw", "from-credentials\n");
  WriteFile(dir.path() / "abs", "absolute");
  const fs::path config_path = dir.path() / "config.yaml";
  const std::string yaml =
      "state_dir: /s\nsources:\n"
      "  - name: shop\n"
      "    type: postgres\n"
      "    dsn: \"password=${file:pw} x=${file:" +
      (dir.path() / "abs").string() +
      "}\"\n"
      "    tables: [public.a]\n"
      "    sinks: [events]\n" +
      kSinkBlock;
  WriteFile(config_path, yaml);
  {
    EnvGuard creds("CREDENTIALS_DIRECTORY", std::nullopt);
    Result<AgentConfig> config = LoadConfig(config_path.string());
    BOOST_TEST_REQUIRE(config.ok(), config.status().ToString());
    BOOST_TEST(config->sources[0].dsn == "password=beside-config\n x=absolute");
  }
  {
    EnvGuard creds("CREDENTIALS_DIRECTORY", (dir.path() / "creds").string());
    Result<AgentConfig> config = LoadConfig(config_path.string());
    BOOST_TEST_REQUIRE(config.ok(), config.status().ToString());
    BOOST_TEST(config->sources[0].dsn == "password=from-credentials x=absolute");
  }
}

BOOST_AUTO_TEST_CASE(expanded_values_never_appear_in_messages) {
  testing::TempDir dir;
  WriteFile(dir.path() / "pw", "FILESECRET\n");
  EnvGuard creds("CREDENTIALS_DIRECTORY", dir.path().string());
  EnvGuard hb("TRIBUTARY_TEST_HB", "ENVSECRET1");
  EnvGuard name("TRIBUTARY_TEST_NAME", "ENV SECRET2");
  EnvGuard glob("TRIBUTARY_TEST_GLOB", "ENVSECRET3");
  EnvGuard topic("TRIBUTARY_TEST_TOPIC", "{ENVSECRET4}");
  EnvGuard sink("TRIBUTARY_TEST_SINK", "ENVSECRET5");
  EnvGuard rot("TRIBUTARY_TEST_ROT", "\"ENVSECRET6\"");
  const std::string yaml = R"(
state_dir: /s
sources:
  - name: ${TRIBUTARY_TEST_NAME}
    type: [postgres]
    dsn: "password=${file:pw}"
    tables: ["${TRIBUTARY_TEST_GLOB}"]
    heartbeat_interval_ms: ${TRIBUTARY_TEST_HB}
    snapshot: ${TRIBUTARY_TEST_HB}
    sinks: ["${TRIBUTARY_TEST_SINK}"]
  - name: inline
    type: postgress
    dsn: [password=INLINESECRET]
    tables: [a.b]
    sinks: [events]
sinks:
  - name: events
    type: file
    path: /o
    topic: ${TRIBUTARY_TEST_TOPIC}
    rotate_bytes: ${TRIBUTARY_TEST_ROT}
)";
  Result<AgentConfig> config = ParseConfig(yaml, (dir.path() / "config.yaml").string());
  BOOST_REQUIRE(!config.ok());
  const std::string& message = config.status().message();
  BOOST_TEST_MESSAGE(message);
  for (const char* secret : {"FILESECRET", "ENVSECRET", "ENV SECRET", "INLINESECRET"}) {
    BOOST_TEST(message.find(secret) == std::string::npos, secret << " leaked: " << message);
  }
  std::vector<std::string> lines = Lines(message);
  BOOST_TEST(lines == (std::vector<std::string>{
                          "sources[0].name: must contain only letters, digits, '_' and '-'",
                          "sources[0].type: expected a string, got a list",
                          "sources[0].tables[0]: must be \"schema.table\": exactly one dot, both "
                          "parts non-empty",
                          "sources[0].heartbeat_interval_ms: expected an integer, got a string",
                          "sources[0].snapshot: must be one of initial, never",
                          "sources[0].sinks[0]: unknown sink",
                          "sources[1].type: must be one of postgres, mysql",
                          "sources[1].dsn: expected a string, got a list",
                          "sinks[0].topic: unknown placeholder; use {source}, {schema}, {table}",
                          "sinks[0].rotate_bytes: expected an integer, got a string",
                      }),
             boost::test_tools::per_element());
}

// A key long enough for masking.key (16 bytes).
const std::string kKey = "0123456789abcdef";

BOOST_AUTO_TEST_CASE(masking_section_parses) {
  const std::string yaml = Minimal() + R"(masking:
  key: ")" + kKey + R"("
  detect: warn
  rules:
    - { columns: "public.customers.email", action: hash }
    - { columns: "*.*.ssn",                action: redact }
    - { columns: "public.customers.phone", action: keep_last, n: 4 }
    - { columns: "crm.notes.body",         action: truncate, n: 0 }
    - { columns: "crm.*.fax",              action: "null" }
    - { columns: "crm.users.mail*",        action: email }
)";
  Result<AgentConfig> config = ParseConfig(yaml, "c");
  BOOST_TEST_REQUIRE(config.ok(), config.status().ToString());
  BOOST_TEST_REQUIRE(config->masking.has_value());
  const MaskingConfig& masking = *config->masking;
  BOOST_TEST(masking.key == kKey);
  BOOST_TEST(masking.detect == "warn");
  BOOST_TEST_REQUIRE(masking.rules.size() == 6u);
  BOOST_TEST(masking.rules[0].columns == "public.customers.email");
  BOOST_TEST(masking.rules[0].action == "hash");
  BOOST_TEST(masking.rules[1].columns == "*.*.ssn");
  BOOST_TEST(masking.rules[1].action == "redact");
  BOOST_TEST(masking.rules[2].columns == "public.customers.phone");
  BOOST_TEST(masking.rules[2].action == "keep_last");
  BOOST_TEST(masking.rules[2].n == 4);
  BOOST_TEST(masking.rules[3].action == "truncate");
  BOOST_TEST(masking.rules[3].n == 0);
  BOOST_TEST(masking.rules[4].action == "null");
  BOOST_TEST(masking.rules[5].action == "email");
}

BOOST_AUTO_TEST_CASE(masking_defaults_and_absence) {
  Result<AgentConfig> none = ParseConfig(Minimal(), "c");
  BOOST_TEST_REQUIRE(none.ok(), none.status().ToString());
  BOOST_TEST(!none->masking.has_value());

  // No rule hashes, so no key is needed; rules may be empty or absent.
  for (const std::string section : {"masking: {}\n", "masking: {rules: []}\n",
                                    "masking: {rules: [{columns: a.b.c, action: "
                                    "redact}]}\n"}) {
    Result<AgentConfig> config = ParseConfig(Minimal() + section, "c");
    BOOST_TEST_REQUIRE(config.ok(), config.status().ToString());
    BOOST_TEST_REQUIRE(config->masking.has_value());
    BOOST_TEST(config->masking->key.empty());
    BOOST_TEST(config->masking->detect == "off");
  }
}

BOOST_AUTO_TEST_CASE(masking_errors_have_paths) {
  std::vector<std::string> lines = Problems(Minimal() + R"(masking:
  key: ")" + kKey + R"("
  detect: always
  colour: red
  rules:
    - { columns: public.customers, action: hash }
    - { columns: "a.b.c", action: scramble }
    - { columns: "a..c", action: redact, n: 4 }
    - { columns: "a.b.c", action: keep_last }
    - { columns: "a.b.c", action: truncate, n: -1 }
    - { columns: "a.b.c", action: keep_last, n: "4" }
    - { columns: ".b.c.d", action: keep_last, n: 1.5 }
    - { action: hash, extra: 1 }
    - { columns: "a.b.c" }
    - redact
    - { columns: [a.b.c], action: [hash] }
)");
  const std::string glob =
      " must be \"schema.table.column\": exactly two dots, all three parts "
      "non-empty";
  BOOST_TEST(lines == (std::vector<std::string>{
                          "masking.detect: must be one of off, warn, mask",
                          "masking.colour: unknown key",
                          "masking.rules[0].columns: \"public.customers\"" + glob,
                          "masking.rules[1].action: must be one of hash, redact, null, keep_last, "
                          "truncate, email",
                          "masking.rules[2].columns: \"a..c\"" + glob,
                          "masking.rules[2].n: only allowed with action keep_last or truncate",
                          "masking.rules[3].n: required key is missing (action keep_last)",
                          "masking.rules[4].n: must not be negative",
                          "masking.rules[5].n: expected an integer, got the string \"4\"",
                          "masking.rules[6].columns: \".b.c.d\"" + glob,
                          "masking.rules[6].n: expected an integer, got \"1.5\"",
                          "masking.rules[7].columns: required key is missing",
                          "masking.rules[7].extra: unknown key",
                          "masking.rules[8].action: required key is missing",
                          "masking.rules[9]: expected a mapping, got a string",
                          "masking.rules[10].columns: expected a string, got a list",
                          "masking.rules[10].action: expected a string, got a list",
                      }),
             boost::test_tools::per_element());

  BOOST_TEST(OnlyProblem(Minimal() + "masking: {rules: [{columns: a.b.c, action: null}]}\n") ==
             "masking.rules[0].action: expected a string, got null (write \"null\", quoted, for "
             "the null action)");
  BOOST_TEST(OnlyProblem(Minimal() + "masking: [a]\n") ==
             "masking: expected a mapping, got a list");
  BOOST_TEST(OnlyProblem(Minimal() + "masking: {rules: {columns: a.b.c}}\n") ==
             "masking.rules: expected a list, got a mapping");
  BOOST_TEST(OnlyProblem(Minimal() + "masking: {detect: mask, detect: off}\n") ==
             "masking.detect: duplicate key");
}

BOOST_AUTO_TEST_CASE(masking_hash_needs_a_key) {
  BOOST_TEST(OnlyProblem(Minimal() + "masking:\n  rules:\n"
                                     "    - {columns: a.b.c, action: redact}\n"
                                     "    - {columns: a.b.d, action: hash}\n"
                                     "    - {columns: a.b.e, action: hash}\n") ==
             "masking.key: required key is missing (masking.rules[1] has action hash)");
  // A key that is present but bad is reported as bad, not as missing.
  BOOST_TEST(OnlyProblem(Minimal() + "masking: {key: [x], rules: [{columns: a.b.c, action: "
                                     "hash}]}\n") == "masking.key: expected a string, got a list");
}

BOOST_AUTO_TEST_CASE(masking_key_from_file_strips_newline) {
  testing::TempDir dir;
  EnvGuard creds("CREDENTIALS_DIRECTORY", std::nullopt);
  WriteFile(dir.path() / "mask.key", kKey + "\n");
  WriteFile(dir.path() / "short.key", "0123456789abcde\n");  // 15 bytes once stripped
  const std::string rules = "  rules: [{columns: public.customers.email, action: hash}]\n";
  {
    const fs::path config_path = dir.path() / "config.yaml";
    WriteFile(config_path, Minimal() + "masking:\n  key: ${file:mask.key}\n" + rules);
    Result<AgentConfig> config = LoadConfig(config_path.string());
    BOOST_TEST_REQUIRE(config.ok(), config.status().ToString());
    BOOST_TEST_REQUIRE(config->masking.has_value());
    BOOST_TEST(config->masking->key == kKey);
  }
  {
    const fs::path config_path = dir.path() / "short.yaml";
    WriteFile(config_path, Minimal() + "masking:\n  key: ${file:short.key}\n" + rules);
    Result<AgentConfig> config = LoadConfig(config_path.string());
    BOOST_REQUIRE(!config.ok());
    BOOST_TEST(config.status().message() == "masking.key: must be at least 16 bytes (got 15)");
  }
}

BOOST_AUTO_TEST_CASE(masking_short_key) {
  BOOST_TEST(OnlyProblem(Minimal() + "masking: {key: '0123456789abcde'}\n") ==
             "masking.key: must be at least 16 bytes (got 15)");
  BOOST_TEST(OnlyProblem(Minimal() + "masking: {key: ''}\n") ==
             "masking.key: must be at least 16 bytes (got 0)");
  Result<AgentConfig> ok = ParseConfig(Minimal() + "masking: {key: '" + kKey + "'}\n", "c");
  BOOST_TEST(ok.ok(), ok.status().ToString());
}

BOOST_AUTO_TEST_CASE(masking_key_never_appears_in_messages) {
  testing::TempDir dir;
  WriteFile(dir.path() / "short.key", "FILEKEYSECRET\n");
  EnvGuard creds("CREDENTIALS_DIRECTORY", dir.path().string());
  EnvGuard env("TRIBUTARY_TEST_KEY", "ENVKEYSECRET");
  const std::string rules = "  rules: [{columns: a.b.c, action: hash}]\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  key: [LISTKEYSECRET]\n", "masking.key: expected a string, got a list"},
      {"  key: {MAPKEYSECRET: MAPVALUESECRET}\n", "masking.key: expected a string, got a mapping"},
      {"  key: SHORTSECRET\n", "masking.key: must be at least 16 bytes (got 11)"},
      {"  key: 12345678\n", "masking.key: must be at least 16 bytes (got 8)"},
      {"  key: ${file:short.key}\n", "masking.key: must be at least 16 bytes (got 13)"},
      {"  key: ${TRIBUTARY_TEST_KEY}\n", "masking.key: must be at least 16 bytes (got 12)"},
      {"  key: \"LITERALSECRET${BRACESECRET 1}\"\n",
       "masking.key: bad reference: expected ${NAME} or ${file:PATH}"},
      {"  key: \"LITERALSECRET${UNTERMINATEDSECRET\"\n",
       "masking.key: unterminated ${ (write $${ for a literal ${)"},
      {"  key: LITERALSECRET\n  key: OTHERLITERALSECRET\n",
       "masking.key: must be at least 16 bytes (got 13)\nmasking.key: duplicate key"},
  };
  for (const auto& [key, expected] : cases) {
    Result<AgentConfig> config =
        ParseConfig(Minimal() + "masking:\n" + key + rules, (dir.path() / "config.yaml").string());
    BOOST_REQUIRE(!config.ok());
    const std::string& message = config.status().message();
    BOOST_TEST(message == expected);
    for (const char* secret : {"SECRET", "12345678"}) {
      BOOST_TEST(message.find(secret) == std::string::npos, secret << " leaked: " << message);
    }
  }
}

}  // namespace
}  // namespace tributary
