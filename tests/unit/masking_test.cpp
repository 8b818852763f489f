#define BOOST_TEST_MODULE masking_test
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/envelope_writer.h"
#include "agent/transforms/hmac_sha256.h"
#include "agent/transforms/masking_transform.h"

namespace tributary {

std::ostream& operator<<(std::ostream& os, ValueKind kind) {
  static constexpr const char* kNames[] = {"null", "unavailable", "string", "raw"};
  return os << kNames[static_cast<int>(kind)];
}

namespace {

using nlohmann::json;

constexpr std::string_view kKey = "test-masking-key-0123456789";

std::string Hex(const unsigned char* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < size; ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 0xf]);
  }
  return hex;
}

// HMAC-SHA256 through OpenSSL's one-shot HMAC(), independent of HmacSha256.
std::string ReferenceHmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size);
  return Hex(out, size);
}

// The same through the openssl command line. `key` and `data` hold no single quotes.
std::string CliHmac(std::string_view key, std::string_view data) {
  const std::string command = "printf '%s' '" + std::string(data) +
                              "' | openssl dgst -sha256 -hmac '" + std::string(key) + "'";
  FILE* pipe = popen(command.c_str(), "r");
  BOOST_REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[256];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  BOOST_REQUIRE_EQUAL(pclose(pipe), 0);
  // "SHA2-256(stdin)= <hex>\n"
  const size_t space = output.rfind(' ');
  BOOST_REQUIRE(space != std::string::npos);
  return output.substr(space + 1, 64);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), out, &size, EVP_sha256(), nullptr);
  return Hex(out, size);
}

MaskingConfig Config(std::vector<MaskingRule> rules, std::string detect = "off",
                     std::string key = std::string(kKey)) {
  MaskingConfig config;
  config.key = std::move(key);
  config.detect = std::move(detect);
  config.rules = std::move(rules);
  return config;
}

std::unique_ptr<MaskingTransform> Make(const MaskingConfig& config) {
  auto result = MaskingTransform::Create(config);
  BOOST_REQUIRE_MESSAGE(result.ok(), result.status().ToString());
  return std::move(result).value();
}

struct Column {
  std::string name;
  std::string type = "text";
  bool key = false;
};

std::shared_ptr<const TableSchema> Table(std::string schema, std::string table,
                                         const std::vector<Column>& columns,
                                         std::string database = "shopdb", uint32_t version = 1) {
  auto result = std::make_shared<TableSchema>();
  result->connector = schema.empty() ? "mysql" : "postgresql";
  result->source = "shop";
  result->database = std::move(database);
  result->schema = std::move(schema);
  result->table = std::move(table);
  for (const Column& c : columns) {
    ColumnSchema column;
    column.name = c.name;
    column.type_name = c.type;
    column.key = c.key;
    result->columns.push_back(std::move(column));
  }
  result->version = version;
  return result;
}

struct Cell {
  ValueKind kind;
  std::string text;
  bool operator==(const Cell&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Cell& cell) {
  return os << cell.kind << ":" << cell.text;
}

Cell S(std::string text) { return {ValueKind::kString, std::move(text)}; }
Cell R(std::string text) { return {ValueKind::kRaw, std::move(text)}; }
const Cell kNullCell{ValueKind::kNull, ""};
const Cell kUnavailableCell{ValueKind::kUnavailable, ""};

uint32_t AddRow(Batch& batch, const std::vector<Cell>& cells) {
  const auto first = static_cast<uint32_t>(batch.values.size());
  for (const Cell& cell : cells) {
    if (cell.kind == ValueKind::kNull || cell.kind == ValueKind::kUnavailable) {
      batch.values.push_back(Value{0, 0, cell.kind});
    } else {
      batch.values.push_back(batch.AddValue(cell.kind, cell.text));
    }
  }
  return first;
}

Event& AddEvent(Batch& batch, const std::shared_ptr<const TableSchema>& table, Op op,
                const std::vector<Cell>* before, const std::vector<Cell>* after) {
  Event event;
  event.op = op;
  event.table = batch.Retain(table);
  if (before != nullptr) event.before = AddRow(batch, *before);
  if (after != nullptr) event.after = AddRow(batch, *after);
  event.position = batch.AddValue(ValueKind::kString, "00000000000000AA/00000000000000AA/00000000");
  batch.events.push_back(event);
  return batch.events.back();
}

std::vector<Cell> Row(const Batch& batch, const Event& event, bool after) {
  const uint32_t first = after ? event.after.value() : event.before.value();
  std::vector<Cell> cells;
  for (size_t i = 0; i < event.table->columns.size(); ++i) {
    const Value& v = batch.values[first + i];
    cells.push_back({v.kind, std::string(batch.Text(v))});
  }
  return cells;
}

// Captures every log line, at every level, for the test's lifetime.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string Text() const { return out_.str(); }
  size_t Count(std::string_view needle) const {
    const std::string text = Text();
    size_t n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// --- Actions on every kind ------------------------------------------------------------------

std::shared_ptr<const TableSchema> KindsTable() {
  return Table("public", "kinds",
               {{"s"},
                {"num", "int4"},
                {"flag", "bool"},
                {"doc", "jsonb"},
                {"arr", "_text"},
                {"nul"},
                {"toast"}});
}

const std::vector<Cell> kBeforeKinds = {S("ann@example.com"), R("12345"), R("true"),
                                        R(R"({"a":1})"),      R("[1,2]"), kNullCell,
                                        kUnavailableCell};
const std::vector<Cell> kAfterKinds = {S("bob@example.org"), R("-7.5"),     R("false"),
                                       R(R"({"b":"x"})"),    R(R"(["é"])"), kNullCell,
                                       kUnavailableCell};

struct ActionCase {
  std::string action;
  int64_t n;
  std::vector<Cell> before;
  std::vector<Cell> after;
};

BOOST_AUTO_TEST_CASE(every_action_on_every_kind_in_both_images) {
  const std::string marker(kRedactedMarker);
  auto hashed = [](const std::vector<Cell>& row) {
    std::vector<Cell> out;
    out.reserve(row.size());
    for (const Cell& c : row) {
      out.push_back(c.kind == ValueKind::kString || c.kind == ValueKind::kRaw
                        ? S(ReferenceHmac(kKey, c.text))
                        : c);
    }
    return out;
  };
  const std::vector<ActionCase> cases = {
      {"hash", 0, hashed(kBeforeKinds), hashed(kAfterKinds)},
      {"redact",
       0,
       {S(marker), S(marker), S(marker), S(marker), S(marker), kNullCell, kUnavailableCell},
       {S(marker), S(marker), S(marker), S(marker), S(marker), kNullCell, kUnavailableCell}},
      {"null",
       0,
       {kNullCell, kNullCell, kNullCell, kNullCell, kNullCell, kNullCell, kUnavailableCell},
       {kNullCell, kNullCell, kNullCell, kNullCell, kNullCell, kNullCell, kUnavailableCell}},
      {"keep_last",
       2,
       {S("*************om"), S("***45"), S("**ue"), S("*****1}"), S("***2]"), kNullCell,
        kUnavailableCell},
       {S("*************rg"), S("**.5"), S("***se"), S(R"(*******"})"), S(R"(***"])"), kNullCell,
        kUnavailableCell}},
      {"truncate",
       2,
       {S("an"), S("12"), S("tr"), S(R"({")"), S("[1"), kNullCell, kUnavailableCell},
       {S("bo"), S("-7"), S("fa"), S(R"({")"), S(R"([")"), kNullCell, kUnavailableCell}},
      {"email",
       0,
       {S("***@example.com"), S("*****"), S("****"), S("*******"), S("*****"), kNullCell,
        kUnavailableCell},
       {S("***@example.org"), S("****"), S("*****"), S("*********"), S("*****"), kNullCell,
        kUnavailableCell}},
  };
  const auto table = KindsTable();
  for (const ActionCase& c : cases) {
    BOOST_TEST_CONTEXT("action " << c.action) {
      auto masking = Make(Config({{"public.kinds.*", c.action, c.n}}));
      Batch batch;
      AddEvent(batch, table, Op::kUpdate, &kBeforeKinds, &kAfterKinds);
      BOOST_REQUIRE(masking->Apply(batch).ok());
      BOOST_TEST(Row(batch, batch.events[0], false) == c.before, boost::test_tools::per_element());
      BOOST_TEST(Row(batch, batch.events[0], true) == c.after, boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(hmac_matches_independent_implementations) {
  // RFC 4231 test case 2, and test case 6 (a key longer than a block is hashed first).
  BOOST_TEST(HmacSha256("Jefe").Compute("what do ya want for nothing?") == ([] {
               HmacSha256::Digest d{};
               const std::string hex =
                   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
               for (size_t i = 0; i < d.size(); ++i) {
                 d[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
               }
               return d;
             }()));
  char hex[64];
  HmacSha256(std::string(131, '\xaa'))
      .ComputeHex("Test Using Larger Than Block-Size Key - Hash Key First", hex);
  BOOST_TEST(std::string_view(hex, 64) ==
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

  // The transform's output against the openssl command line.
  auto masking = Make(Config({{"*.*.*", "hash", 0}}));
  const auto table = Table("public", "t", {{"a"}, {"b", "int8"}, {"c", "jsonb"}, {"d"}});
  const std::vector<Cell> row = {S("ann@example.com"), R("-9223372036854775808"),
                                 R(R"({"k":[1,2]})"), S("")};
  Batch batch;
  AddEvent(batch, table, Op::kCreate, nullptr, &row);
  BOOST_REQUIRE(masking->Apply(batch).ok());
  const auto masked = Row(batch, batch.events[0], true);
  for (size_t i = 0; i < row.size(); ++i) {
    BOOST_TEST(masked[i].kind == ValueKind::kString);
    BOOST_TEST(masked[i].text == CliHmac(kKey, row[i].text), row[i].text);
  }
  // Deterministic: another instance with the same key gives the same hashes (joins work).
  auto again = Make(Config({{"*.*.*", "hash", 0}}));
  Batch second;
  AddEvent(second, table, Op::kCreate, nullptr, &row);
  BOOST_REQUIRE(again->Apply(second).ok());
  BOOST_TEST(Row(second, second.events[0], true) == masked, boost::test_tools::per_element());
}

// --- Rule matching --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(first_matching_rule_wins) {
  const auto table = Table("public", "customers", {{"id", "int4", true}, {"email"}});
  const std::vector<Cell> row = {R("1"), S("ann@example.com")};
  {
    auto masking = Make(Config(
        {{"public.customers.email", "redact", 0}, {"*.*.email", "hash", 0}, {"*", "null", 0}}));
    Batch batch;
    AddEvent(batch, table, Op::kCreate, nullptr, &row);
    BOOST_REQUIRE(masking->Apply(batch).ok());
    BOOST_TEST(Row(batch, batch.events[0], true) ==
                   (std::vector<Cell>{kNullCell, S(std::string(kRedactedMarker))}),
               boost::test_tools::per_element());
  }
  {
    auto masking =
        Make(Config({{"*.*.email", "hash", 0}, {"public.customers.email", "redact", 0}}));
    Batch batch;
    AddEvent(batch, table, Op::kCreate, nullptr, &row);
    BOOST_REQUIRE(masking->Apply(batch).ok());
    BOOST_TEST(Row(batch, batch.events[0], true) ==
                   (std::vector<Cell>{R("1"), S(ReferenceHmac(kKey, "ann@example.com"))}),
               boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(globs_match_qualified_column_names) {
  auto masking = Make(Config({{"*.*.ssn", "redact", 0},
                              {"public.customers.email", "hash", 0},
                              {"shop.customers.email", "truncate", 1},  // MySQL: db.table.column
                              {"Sales.People.SSN_HINT", "keep_last", 1}}));  // case-insensitive
  const auto customers = Table("public", "customers", {{"id", "int4", true}, {"email"}, {"ssn"}});
  const auto people = Table("sales", "people", {{"ssn"}, {"ssn_hint"}});
  const auto orders = Table("public", "orders", {{"email"}});
  const auto mysql = Table("", "customers", {{"email"}, {"ssn"}}, "shop");
  const std::vector<Cell> customer = {R("1"), S("ann@example.com"), S("078-05-1120")};
  const std::vector<Cell> person = {S("219-09-9999"), S("ends 99")};
  const std::vector<Cell> order = {S("bob@example.org")};
  const std::vector<Cell> mysql_row = {S("cy@example.net"), S("219-09-9999")};
  Batch batch;
  AddEvent(batch, customers, Op::kCreate, nullptr, &customer);
  AddEvent(batch, people, Op::kCreate, nullptr, &person);
  AddEvent(batch, orders, Op::kCreate, nullptr, &order);
  AddEvent(batch, mysql, Op::kCreate, nullptr, &mysql_row);
  const uint32_t id_offset = batch.values[batch.events[0].after.value()].offset;
  BOOST_REQUIRE(masking->Apply(batch).ok());
  const std::string marker(kRedactedMarker);
  BOOST_TEST(Row(batch, batch.events[0], true) ==
                 (std::vector<Cell>{R("1"), S(ReferenceHmac(kKey, "ann@example.com")), S(marker)}),
             boost::test_tools::per_element());
  BOOST_TEST(batch.values[batch.events[0].after.value()].offset == id_offset);  // untouched
  BOOST_TEST(Row(batch, batch.events[1], true) == (std::vector<Cell>{S(marker), S("******9")}),
             boost::test_tools::per_element());
  BOOST_TEST(Row(batch, batch.events[2], true) == order, boost::test_tools::per_element());
  BOOST_TEST(Row(batch, batch.events[3], true) == (std::vector<Cell>{S("c"), S(marker)}),
             boost::test_tools::per_element());
}

// --- Text handling --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(characters_are_utf8_code_points) {
  auto masking = Make(Config({{"*.*.a", "keep_last", 4},
                              {"*.*.b", "truncate", 2},
                              {"*.*.c", "truncate", 1},
                              {"*.*.d", "keep_last", 1},
                              {"*.*.e", "email", 0},
                              {"*.*.f", "keep_last", 10},
                              {"*.*.g", "keep_last", 10},
                              {"*.*.h", "truncate", 100}}));
  const auto table =
      Table("public", "utf", {{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}, {"g", "int4"}, {"h"}});
  const std::vector<Cell> row = {S("héllo wörld"),       S("héllo"), S("😀😀😀"), S("日本語"),
                                 S("jürgen@exämple.de"), S("short"), R("42"),  S("çà")};
  Batch batch;
  AddEvent(batch, table, Op::kUpdate, &row, &row);
  BOOST_REQUIRE(masking->Apply(batch).ok());
  const std::vector<Cell> expected = {S("*******örld"),       S("hé"),    S("😀"),  S("**語"),
                                      S("******@exämple.de"), S("short"), S("42"), S("çà")};
  BOOST_TEST(Row(batch, batch.events[0], false) == expected, boost::test_tools::per_element());
  BOOST_TEST(Row(batch, batch.events[0], true) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(n_zero_hides_everything) {
  auto masking = Make(Config({{"*.*.a", "keep_last", 0}, {"*.*.b", "truncate", 0}}));
  const auto table = Table("public", "t", {{"a"}, {"b", "int4"}});
  const std::vector<Cell> row = {S("héllo"), R("42")};
  Batch batch;
  AddEvent(batch, table, Op::kCreate, nullptr, &row);
  BOOST_REQUIRE(masking->Apply(batch).ok());
  BOOST_TEST(Row(batch, batch.events[0], true) == (std::vector<Cell>{S("*****"), S("")}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(email_masks_the_local_part_before_the_last_at) {
  auto masking = Make(Config({{"*", "email", 0}}));
  const auto table = Table("public", "t", {{"a"}, {"b"}, {"c"}, {"d"}});
  const std::vector<Cell> row = {S("no-at-sign"), S("a@b@example.com"), S("@example.com"), S("")};
  Batch batch;
  AddEvent(batch, table, Op::kCreate, nullptr, &row);
  BOOST_REQUIRE(masking->Apply(batch).ok());
  BOOST_TEST(
      Row(batch, batch.events[0], true) ==
          (std::vector<Cell>{S("**********"), S("***@example.com"), S("@example.com"), S("")}),
      boost::test_tools::per_element());
}

// --- Keys and envelopes ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(keys_and_envelopes_carry_masked_values) {
  auto masking =
      Make(Config({{"public.customers.id", "hash", 0}, {"public.customers.email", "email", 0}}));
  const auto table = Table("public", "customers", {{"id", "int4", true}, {"email"}, {"name"}});
  const std::vector<Cell> row = {R("1"), S("ann@example.com"), S("Ann")};
  Batch batch;
  AddEvent(batch, table, Op::kCreate, nullptr, &row);
  AddEvent(batch, table, Op::kDelete, &row, nullptr);
  BOOST_REQUIRE(masking->Apply(batch).ok());
  BOOST_TEST(batch.masking_policy == &masking->fingerprint());

  EnvelopeWriter writer;
  const std::string hashed_id = ReferenceHmac(kKey, "1");
  for (const Event& event : batch.events) {
    std::string key;
    writer.WriteKey(batch, event, key);
    BOOST_TEST(key == R"({"id":")" + hashed_id + R"("})");
    std::string line;
    writer.Write(batch, event, 1706708700123456, line);
    BOOST_TEST(line.find("ann@") == std::string::npos, line);
    const json envelope = json::parse(line);
    const json& image = event.op == Op::kDelete ? envelope["before"] : envelope["after"];
    BOOST_TEST(image["id"] == hashed_id);
    BOOST_TEST(image["email"] == "***@example.com");
    BOOST_TEST(image["name"] == "Ann");
    BOOST_TEST(envelope["source"]["masking_policy"] == masking->fingerprint());
  }
}

BOOST_AUTO_TEST_CASE(a_shared_image_is_masked_once) {
  auto masking = Make(Config({{"*", "hash", 0}}));
  const auto table = Table("public", "t", {{"a"}});
  const std::vector<Cell> row = {S("x")};
  Batch batch;
  Event& event = AddEvent(batch, table, Op::kUpdate, nullptr, &row);
  event.before = event.after;
  BOOST_REQUIRE(masking->Apply(batch).ok());
  BOOST_TEST(Row(batch, batch.events[0], true)[0] == S(ReferenceHmac(kKey, "x")));
}

// --- Configuration and fingerprint ----------------------------------------------------------

std::string CreateError(const MaskingConfig& config) {
  auto result = MaskingTransform::Create(config);
  BOOST_REQUIRE(!result.ok());
  BOOST_TEST(result.status().code() == StatusCode::kInvalidConfig);
  return result.status().message();
}

BOOST_AUTO_TEST_CASE(masked_events_carry_the_masked_column_types) {
  auto transform = Make(Config({{.columns = "public.people.email", .action = "hash"},
                                {.columns = "public.people.age", .action = "keep_last", .n = 1},
                                {.columns = "public.people.born", .action = "null"}}));
  auto table = std::make_shared<TableSchema>(*Table(
      "public", "people", {{"id", "int4", true}, {"email"}, {"age", "int4"}, {"born", "date"}}));
  for (ColumnSchema& column : table->columns) {
    column.nullable = false;
    column.canonical_type = column.type_name == "int4" ? "int32" : "string";
  }
  table->columns[3].canonical_type = "date";
  Batch batch;
  const std::vector<Cell> row = {R("1"), S("ann@example.com"), R("42"), S("1980-01-02")};
  AddEvent(batch, table, Op::kCreate, nullptr, &row);
  AddEvent(batch, table, Op::kCreate, nullptr, &row);
  BOOST_REQUIRE(transform->Apply(batch).ok());
  const TableSchema& masked = *batch.events[0].table;
  BOOST_TEST(&masked != table.get());
  BOOST_TEST(batch.events[1].table == &masked);              // one masked schema per table version
  BOOST_TEST(masked.columns[0].canonical_type == "int32");   // no rule: untouched
  BOOST_TEST(masked.columns[2].canonical_type == "string");  // keep_last writes a string
  BOOST_TEST(!masked.columns[2].nullable);
  BOOST_TEST(masked.columns[3].canonical_type == "date");  // null keeps the type…
  BOOST_TEST(masked.columns[3].nullable);                  // …but is always null
  BOOST_TEST(masked.columns[1].type_name == "text");       // the source type stays
  // The batch keeps the masked schema alive, without one entry per event.
  BOOST_TEST(batch.tables.size() == 2u);
  // A table without rules keeps its schema.
  Batch plain;
  const auto other = Table("public", "other", {{"id", "int4", true}});
  const std::vector<Cell> one = {R("1")};
  AddEvent(plain, other, Op::kCreate, nullptr, &one);
  BOOST_REQUIRE(transform->Apply(plain).ok());
  BOOST_TEST(plain.events[0].table == other.get());
}

BOOST_AUTO_TEST_CASE(bad_configs_name_the_rule) {
  const std::string contains = "masking.rules[1].action: must be hash, redact";
  BOOST_TEST(CreateError(Config({{"a", "redact", 0}, {"b", "scramble", 0}})).find(contains) == 0u);
  BOOST_TEST(CreateError(Config({{"a", "keep_last", -1}})).starts_with("masking.rules[0].n:"));
  BOOST_TEST(CreateError(Config({{"a", "truncate", -3}})).starts_with("masking.rules[0].n:"));
  BOOST_TEST(CreateError(Config({{"a", "truncate", int64_t{1} << 40}}))
                 .starts_with("masking.rules[0].n:"));
  BOOST_TEST(CreateError(Config({{"a", "redact", 4}})) ==
             "masking.rules[0].n: only keep_last and truncate take n");
  BOOST_TEST(CreateError(Config({{"", "redact", 0}})) == "masking.rules[0].columns: required");
  BOOST_TEST(CreateError(Config({}, "yes")) == "masking.detect: must be off, warn or mask");
  BOOST_TEST(CreateError(Config({{"a", "redact", 0}, {"b", "null", 0}, {"c", "hash", 0}}, "off",
                                "")) == "masking.rules[2]: action hash needs masking.key");
  const std::string short_key = "short-key-15byt";
  BOOST_REQUIRE_EQUAL(short_key.size(), 15u);
  const std::string message = CreateError(
      Config({{"a", "redact", 0}, {"b", "null", 0}, {"c", "hash", 0}}, "off", short_key));
  BOOST_TEST(message == "masking.rules[2]: action hash needs a masking.key of at least 16 bytes");
  BOOST_TEST(message.find(short_key) == std::string::npos);
  // Every problem, one per line.
  BOOST_TEST(CreateError(Config({{"a", "x", 0}, {"b", "truncate", -1}}, "loud")) ==
             "masking.detect: must be off, warn or mask\n"
             "masking.rules[0].action: must be hash, redact, null, keep_last, truncate or email\n"
             "masking.rules[1].n: must be between 0 and 4294967295 for truncate");
  // A short key is fine when nothing hashes; no key at all too.
  BOOST_TEST(MaskingTransform::Create(Config({{"a", "redact", 0}}, "warn", "short")).ok());
  BOOST_TEST(MaskingTransform::Create(Config({}, "mask", "")).ok());
}

BOOST_AUTO_TEST_CASE(fingerprint_is_stable_and_follows_the_documented_recipe) {
  const MaskingConfig base =
      Config({{"*.*.email", "hash", 0}, {"public.users.phone", "keep_last", 4}}, "mask");
  const std::string fingerprint = Make(base)->fingerprint();
  BOOST_TEST(fingerprint.size() == 16u);
  BOOST_TEST(fingerprint.find_first_not_of("0123456789abcdef") == std::string::npos);
  BOOST_TEST(Make(base)->fingerprint() == fingerprint);

  // docs/masking.md: SHA-256 over this text, first 16 hex digits.
  const std::string description =
      "tributary-masking-policy/1\ndetect=mask\nmarker=[REDACTED]\n"
      "rule=9:*.*.email hash 0\nrule=18:public.users.phone keep_last 4\nkey=" +
      ReferenceHmac(kKey, "tributary-masking-policy") + "\n";
  BOOST_TEST(fingerprint == Sha256Hex(description).substr(0, 16));
  BOOST_TEST(Make(Config({}, "off", ""))->fingerprint() ==
             Sha256Hex("tributary-masking-policy/1\ndetect=off\nmarker=[REDACTED]\nkey=-\n")
                 .substr(0, 16));

  std::vector<MaskingConfig> variants(7, base);
  variants[0].key = "another-key-0123456789";
  variants[1].detect = "warn";
  variants[2].rules[0].action = "redact";
  variants[3].rules[1].n = 3;
  variants[4].rules[0].columns = "*.*.mail";
  std::swap(variants[5].rules[0], variants[5].rules[1]);
  variants[6].rules.pop_back();
  for (size_t i = 0; i < variants.size(); ++i) {
    BOOST_TEST(Make(variants[i])->fingerprint() != fingerprint, "variant " << i);
  }
}

// --- Detection ------------------------------------------------------------------------------

std::shared_ptr<const TableSchema> NotesTable() {
  return Table("public", "t",
               {{"id", "int4", true},
                {"notes"},
                {"doc", "jsonb"},
                {"amount", "numeric"},
                {"covered"},
                {"remark", "varchar"}});
}

const std::string kPiiNotes =
    "card 4111 1111 1111 1111, iban GB82WEST12345698765432, mail ann@example.com, "
    "ssn 078-05-1120, tel +1 415 555 0132; bad 4111 1111 1111 1112";

BOOST_AUTO_TEST_CASE(detect_mask_redacts_matches_in_unruled_text_columns) {
  LogCapture log;
  auto masking = Make(Config({{"public.t.covered", "truncate", 100}}, "mask"));
  const std::vector<Cell> row = {R("7"),
                                 S(kPiiNotes),
                                 R(R"({"email":"ann@example.com"})"),
                                 S("4111111111111111"),
                                 S("ann@example.com"),
                                 S("a@b.c")};
  const auto table = NotesTable();
  Batch batch;
  AddEvent(batch, table, Op::kUpdate, &row, &row);
  BOOST_REQUIRE(masking->Apply(batch).ok());
  const std::vector<Cell> expected = {
      R("7"),
      S("card [REDACTED], iban [REDACTED], mail [REDACTED], ssn [REDACTED], tel [REDACTED]; "
        "bad 4111 1111 1111 1112"),
      R(R"({"email":"ann@example.com"})"),  // kRaw: not scanned
      S("4111111111111111"),                // numeric: not free text
      S("ann@example.com"),                 // a rule covers it: the rule decides
      S("a@b.c")};                          // too short
  BOOST_TEST(Row(batch, batch.events[0], false) == expected, boost::test_tools::per_element());
  BOOST_TEST(Row(batch, batch.events[0], true) == expected, boost::test_tools::per_element());
  BOOST_TEST(
      log.Count("masking: Redacting possible PII table=public.t column=notes pattern=card") == 1u,
      log.Text());
}

BOOST_AUTO_TEST_CASE(detect_warn_logs_once_and_changes_nothing) {
  LogCapture log;
  auto masking = Make(Config({}, "warn"));
  auto table = Table("public", "t", {{"id", "int4", true}, {"notes"}, {"ssn"}});
  const std::vector<Cell> row = {R("7"), S(kPiiNotes), S("nothing")};
  for (int round = 0; round < 2; ++round) {
    Batch batch;
    AddEvent(batch, table, Op::kCreate, nullptr, &row);
    AddEvent(batch, table, Op::kCreate, nullptr, &row);
    const std::vector<Value> values = batch.values;
    BOOST_REQUIRE(masking->Apply(batch).ok());
    BOOST_TEST(batch.values.size() == values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      BOOST_TEST(batch.values[i].offset == values[i].offset);
      BOOST_TEST(batch.values[i].length == values[i].length);
      BOOST_TEST(batch.values[i].kind == values[i].kind);
    }
    // A new schema version of the same table does not repeat the warnings.
    table = Table("public", "t", {{"id", "int4", true}, {"notes"}, {"ssn"}}, "shopdb", 2);
  }
  for (const char* pattern : {"email", "ssn", "phone", "card", "iban"}) {
    BOOST_TEST(log.Count(std::string("masking: Possible PII table=public.t column=notes pattern=") +
                         pattern) == 1u,
               pattern << "\n"
                       << log.Text());
  }
  BOOST_TEST(log.Count("masking: Possible PII column not covered by a rule table=public.t "
                       "column=ssn pattern=ssn") == 1u,
             log.Text());
  BOOST_TEST(log.Text().find("4111") == std::string::npos);
  BOOST_TEST(log.Text().find("ann@") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_log_line_at_any_level_holds_a_masked_value) {
  LogCapture log;
  const auto table = Table("public", "users",
                           {{"id", "int4", true},
                            {"email"},
                            {"ssn"},
                            {"phone"},
                            {"card_number"},
                            {"notes"},
                            {"dob", "date"}});
  const std::vector<Cell> row = {R("31337"),
                                 S("canary.ann@example.com"),
                                 S("078-05-1120"),
                                 S("+1 415 555 0132"),
                                 S("4012888888881881"),
                                 S("reach me at canary.bob@example.org or 219-09-9999"),
                                 S("1980-02-29")};
  for (const char* detect : {"off", "warn", "mask"}) {
    auto masking = Make(Config({{"*.*.id", "hash", 0},
                                {"*.*.email", "email", 0},
                                {"*.*.ssn", "redact", 0},
                                {"*.*.phone", "keep_last", 4},
                                {"*.*.card_number", "truncate", 4}},
                               detect));
    for (int i = 0; i < 3; ++i) {
      Batch batch;
      AddEvent(batch, table, Op::kUpdate, &row, &row);
      BOOST_REQUIRE(masking->Apply(batch).ok());
    }
  }
  const std::string text = log.Text();
  BOOST_TEST(log.Count("masking:") >= 4u, text);  // debug plan lines and warnings were logged
  BOOST_TEST(log.Count("pattern=email") >= 1u, text);
  for (const char* secret : {"31337", "canary", "078-05-1120", "415 555", "4012888888881881",
                             "219-09-9999", "1980-02-29", "test-masking-key"}) {
    BOOST_TEST(text.find(secret) == std::string::npos, "leaked " << secret << ":\n" << text);
  }
}

// --- Plans ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(plans_follow_schema_versions) {
  auto masking = Make(Config({{"*.*.email", "redact", 0}}));
  const auto v1 = Table("public", "users", {{"id", "int4", true}, {"email"}}, "db", 1);
  const auto v2 = Table("public", "users", {{"id", "int4", true}, {"name"}, {"email"}}, "db", 2);
  const std::vector<Cell> row1 = {R("1"), S("a@example.com")};
  const std::vector<Cell> row2 = {R("1"), S("Ann"), S("a@example.com")};
  Batch batch;
  AddEvent(batch, v1, Op::kCreate, nullptr, &row1);
  AddEvent(batch, v2, Op::kCreate, nullptr, &row2);
  AddEvent(batch, v1, Op::kCreate, nullptr, &row1);
  BOOST_REQUIRE(masking->Apply(batch).ok());
  const Cell marker = S(std::string(kRedactedMarker));
  BOOST_TEST(Row(batch, batch.events[0], true) == (std::vector<Cell>{R("1"), marker}),
             boost::test_tools::per_element());
  BOOST_TEST(Row(batch, batch.events[1], true) == (std::vector<Cell>{R("1"), S("Ann"), marker}),
             boost::test_tools::per_element());
  BOOST_TEST(Row(batch, batch.events[2], true) == (std::vector<Cell>{R("1"), marker}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(recycled_schema_addresses_never_reuse_a_stale_plan) {
  // Thousands of short-lived schemas: freed ones are evicted and their addresses reused by the
  // allocator; every batch must still be masked by its own table's rules.
  auto masking = Make(Config({{"public.masked.v", "redact", 0}}));
  const std::vector<Cell> row = {S("value")};
  for (int i = 0; i < 3000; ++i) {
    const bool masked = i % 3 == 0;
    auto table = Table("public", masked ? "masked" : "plain", {{"v"}});
    Batch batch;
    AddEvent(batch, table, Op::kCreate, nullptr, &row);
    BOOST_REQUIRE(masking->Apply(batch).ok());
    const Cell got = Row(batch, batch.events[0], true)[0];
    if (got != (masked ? S(std::string(kRedactedMarker)) : S("value"))) {
      BOOST_FAIL("iteration " << i << " got " << got);
    }
  }
}

BOOST_AUTO_TEST_CASE(broken_batches_are_fatal) {
  auto masking = Make(Config({{"*", "redact", 0}}));
  const auto table = Table("public", "t", {{"a"}, {"b"}});
  const std::vector<Cell> row = {S("x"), S("y")};
  {
    Batch batch;
    AddEvent(batch, table, Op::kCreate, nullptr, &row);
    batch.tables.clear();  // the event's table is no longer kept alive by the batch
    const Status status = masking->Apply(batch);
    BOOST_TEST(status.code() == StatusCode::kFatal);
  }
  {
    Batch batch;
    AddEvent(batch, table, Op::kCreate, nullptr, &row);
    batch.events[0].after = 1;  // runs past the end of values
    const Status status = masking->Apply(batch);
    BOOST_TEST(status.code() == StatusCode::kFatal);
  }
}

}  // namespace
}  // namespace tributary
