#define BOOST_TEST_MODULE core_test
#include <fmt/format.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string_view>
#include <vector>

#include "agent/core/logging.h"
#include "agent/core/status.h"
#include "agent/core/table_cache.h"
#include "agent/core/text_append.h"
#include "agent/core/topic_name.h"
#include "agent/transforms/key_change_split.h"
#include "connectors/postgres/lsn.h"
#include "tests/support/agent_process.h"
#include "tests/support/temp_dir.h"

namespace tributary {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::CorruptData("odd");
  return x / 2;
}

Status Quarter(int x, int& out) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(out, Half(half));
  return Status::Ok();
}

BOOST_AUTO_TEST_CASE(result_carries_value_or_status) {
  int out = 0;
  BOOST_TEST(Quarter(8, out).ok());
  BOOST_TEST(out == 2);
  Status st = Quarter(6, out);
  BOOST_TEST(st.code() == StatusCode::kCorruptData);
  BOOST_TEST(st.ToString() == "CORRUPT_DATA: odd");
}

BOOST_AUTO_TEST_CASE(lsn_round_trips) {
  BOOST_TEST(postgres::FormatLsn(0x16B374D848ULL) == "16/B374D848");
  BOOST_TEST(*postgres::ParseLsn("16/B374D848") == 0x16B374D848ULL);
  BOOST_TEST(!postgres::ParseLsn("16B374D848").has_value());
  BOOST_TEST(!postgres::ParseLsn("1/x").has_value());
  BOOST_TEST(!postgres::ParseLsn("/1").has_value());
}

BOOST_AUTO_TEST_CASE(hex_digits_match_printf_for_every_nibble_at_every_place) {
  std::vector<uint64_t> values = {
      0,    1, 0x9, 0xA, 0xF, 0x10, 0xFFFFFFFF, 0x100000000, 0x0123456789ABCDEF, 0xFEDCBA9876543210,
      ~0ULL};
  for (int place = 0; place < 16; ++place) {
    for (uint64_t nibble = 0; nibble < 16; ++nibble) values.push_back(nibble << (4 * place));
  }
  std::mt19937_64 random(7);
  for (int i = 0; i < 1000; ++i) values.push_back(random());
  for (uint64_t value : values) {
    char text[16];
    BOOST_TEST(std::string_view(text, WriteHex16(value, text)) == fmt::format("{:016X}", value));
    const auto low = static_cast<uint32_t>(value);
    BOOST_TEST(std::string_view(text, WriteHex8(low, text)) == fmt::format("{:08X}", low));
  }
}

BOOST_AUTO_TEST_CASE(dsn_password_is_redacted) {
  BOOST_TEST(RedactDsn("host=h password=s3cret user=u") == "host=h password=*** user=u");
  BOOST_TEST(RedactDsn("host=h password='s e c' user=u") == "host=h password=*** user=u");
  BOOST_TEST(RedactDsn("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db");
  BOOST_TEST(RedactDsn("postgresql://h/db?user=u&password=s3cret&x=1") ==
             "postgresql://h/db?user=u&password=***&x=1");
  BOOST_TEST(RedactDsn("mysql://u:pw@127.0.0.1:3306") == "mysql://u:***@127.0.0.1:3306");
}

BOOST_AUTO_TEST_CASE(json_log_lines_stay_one_json_object) {
  testing::TempDir dir;
  auto path = dir.path() / "log";
  std::fflush(stderr);
  int saved = dup(STDERR_FILENO);
  std::FILE* file = std::fopen(path.c_str(), "w");
  dup2(fileno(file), STDERR_FILENO);
  SetupLogging("info", "json");
  spdlog::info("test: Quote \" backslash \\ newline \n tab \t error=\"{}\"", "x");
  spdlog::debug("test: Not shown at info");
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::fclose(file);
  spdlog::drop_all();

  std::istringstream lines(testing::ReadFile(path));
  std::string line;
  std::vector<nlohmann::json> entries;
  while (std::getline(lines, line)) entries.push_back(nlohmann::json::parse(line));
  BOOST_TEST_REQUIRE(entries.size() == 1u);
  BOOST_TEST(entries[0]["level"] == "info");
  BOOST_TEST(entries[0]["msg"] == "test: Quote \" backslash \\ newline \n tab \t error=\"x\"");
  BOOST_TEST(entries[0]["ts"].get<std::string>().ends_with("Z"));
}

BOOST_AUTO_TEST_CASE(table_cache_builds_once_per_schema_and_forgets_unheld_ones) {
  TableCache<int> cache;
  int builds = 0;
  auto make = [&](const std::shared_ptr<const TableSchema>& schema) -> Result<int> {
    ++builds;
    return static_cast<int>(schema->version);
  };
  Batch batch;
  auto v1 = std::make_shared<TableSchema>();
  v1->version = 1;
  auto v2 = std::make_shared<TableSchema>();
  v2->version = 2;
  const TableSchema* t1 = batch.Retain(v1);
  const TableSchema* t2 = batch.Retain(v2);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(**cache.Get("test", batch, t1, make) == 1);
    BOOST_TEST(**cache.Get("test", batch, t2, make) == 2);
  }
  BOOST_TEST(builds == 2);

  // A schema the batch does not retain is a bug in the source, reported, never cached.
  auto stray = std::make_shared<TableSchema>();
  Result<int*> missing = cache.Get("test", batch, stray.get(), make);
  BOOST_TEST(!missing.ok());
  BOOST_TEST(missing.status().message().find("test: batch") == 0u);

  // Once nothing but the cache holds v1, Prune forgets it; v2 is still held and stays.
  batch.Clear();
  v1.reset();
  const TableSchema* v2_address = v2.get();
  cache.Prune();
  batch.Retain(v2);
  BOOST_TEST(**cache.Get("test", batch, v2_address, make) == 2);
  BOOST_TEST(builds == 2);
}

BOOST_AUTO_TEST_CASE(topic_templates_expand_and_report_mistakes) {
  TableSchema table;
  table.source = "shop";
  table.database = "crm";
  table.table = "order items";
  Result<std::string> mysql_style =
      ExpandTopicTemplate("sink s", "{source}.{schema}.{table}", table);
  BOOST_REQUIRE(mysql_style.ok());
  BOOST_TEST(*mysql_style == "shop.crm.order_items");
  table.schema = "public";
  BOOST_TEST(*ExpandTopicTemplate("sink s", "{database}-{schema}", table) == "crm-public");
  Result<std::string> unknown = ExpandTopicTemplate("sink s", "{nope}", table);
  BOOST_TEST(unknown.status().code() == StatusCode::kInvalidConfig);
  BOOST_TEST(unknown.status().message().find("sink s: topic template") == 0u);
  BOOST_TEST(!ExpandTopicTemplate("sink s", "{table", table).ok());
}

// A batch of table (id key, name): events built from (op, before, after, position), an image
// given as {id, name} texts with "?" for a value the source did not send and "-" for none.
struct SplitFixture {
  using Image = std::optional<std::pair<std::string, std::string>>;

  explicit SplitFixture(bool keyed = true) {
    auto table = std::make_shared<TableSchema>();
    table->schema = "public";
    table->table = "t";
    ColumnSchema id;
    id.name = "id";
    id.key = keyed;
    ColumnSchema name;
    name.name = "name";
    table->columns = {id, name};
    schema = table;
  }

  void Add(Op op, const Image& before, const Image& after, const std::string& position) {
    Event event;
    event.op = op;
    event.table = batch.Retain(schema);
    event.position = batch.AddValue(ValueKind::kString, position);
    for (auto [image, slot] :
         {std::pair{&before, &event.before}, std::pair{&after, &event.after}}) {
      if (!*image) continue;
      *slot = static_cast<uint32_t>(batch.values.size());
      for (const std::string& text : {(*image)->first, (*image)->second}) {
        batch.values.push_back(text == "?" ? Value{0, 0, ValueKind::kUnavailable}
                                           : batch.AddValue(ValueKind::kRaw, text));
      }
    }
    batch.events.push_back(event);
  }

  std::string Ops() const {
    std::string ops;
    for (const Event& event : batch.events) ops += static_cast<char>(event.op);
    return ops;
  }

  std::string Id(std::optional<uint32_t> image) const {
    return image ? std::string(batch.Text(batch.values[*image])) : "-";
  }

  std::shared_ptr<const TableSchema> schema;
  Batch batch;
};

BOOST_AUTO_TEST_CASE(an_update_of_the_key_becomes_delete_then_create) {
  SplitFixture f;
  f.Add(Op::kCreate, std::nullopt, std::pair{"1", "a"}, "p1");
  f.Add(Op::kUpdate, std::pair{"1", "a"}, std::pair{"1", "b"}, "p2");
  f.Add(Op::kUpdate, std::pair{"2", "x"}, std::pair{"20", "x"}, "p3");
  f.Add(Op::kUpdate, std::pair{"?", "x"}, std::pair{"5", "y"}, "p4");
  f.Add(Op::kDelete, std::pair{"1", "b"}, std::nullopt, "p5");
  KeyChangeSplit split;
  BOOST_REQUIRE(split.Apply(f.batch).ok());
  BOOST_TEST(f.Ops() == "cudcud");
  const Event& removed = f.batch.events[2];
  const Event& created = f.batch.events[3];
  BOOST_TEST(f.Id(removed.before) == "2");
  BOOST_TEST(!removed.after.has_value());
  BOOST_TEST(f.batch.Text(removed.position) == "p3");
  BOOST_TEST(!created.before.has_value());
  BOOST_TEST(f.Id(created.after) == "20");
  BOOST_TEST(f.batch.Text(created.position) == "p3+");
  // Positions still sort in change order.
  for (size_t i = 1; i < f.batch.events.size(); ++i) {
    BOOST_TEST(
        (f.batch.Text(f.batch.events[i - 1].position) < f.batch.Text(f.batch.events[i].position)));
  }
  // A key the source did not send counts as unchanged: the update stays one event.
  BOOST_TEST((f.batch.values[*f.batch.events[4].before].kind == ValueKind::kUnavailable));

  // Applying it again changes nothing: there is no update of a key left.
  BOOST_REQUIRE(split.Apply(f.batch).ok());
  BOOST_TEST(f.Ops() == "cudcud");
}

BOOST_AUTO_TEST_CASE(updates_of_tables_without_key_stay_updates_and_bad_images_are_fatal) {
  SplitFixture unkeyed(/*keyed=*/false);
  unkeyed.Add(Op::kUpdate, std::pair{"2", "x"}, std::pair{"20", "y"}, "p1");
  KeyChangeSplit split;
  BOOST_REQUIRE(split.Apply(unkeyed.batch).ok());
  BOOST_TEST(unkeyed.Ops() == "u");

  SplitFixture broken;
  broken.Add(Op::kUpdate, std::pair{"2", "x"}, std::pair{"20", "x"}, "p1");
  broken.batch.events[0].after = 7;
  Status status = split.Apply(broken.batch);
  BOOST_TEST(status.code() == StatusCode::kFatal);
  BOOST_TEST(status.message().find("public.t") != std::string::npos, status.message());
}

}  // namespace
}  // namespace tributary
