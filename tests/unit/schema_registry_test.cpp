#define BOOST_TEST_MODULE schema_registry_test
#include "schema_registry/schema_registry.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/schemas_command.h"
#include "tests/support/temp_dir.h"

namespace tributary {
namespace {

ColumnSchema Column(std::string name, std::string canonical_type, bool nullable = true,
                    bool key = false) {
  ColumnSchema column;
  column.name = std::move(name);
  column.canonical_type = std::move(canonical_type);
  column.type_name = "t_" + column.canonical_type;
  column.nullable = nullable;
  column.key = key;
  return column;
}

TableSchema Table(std::vector<ColumnSchema> columns) {
  TableSchema table;
  table.connector = "postgresql";
  table.source = "crm";
  table.database = "app";
  table.schema = "public";
  table.table = "t";
  table.relation_id = 16384;
  table.columns = std::move(columns);
  return table;
}

// id int32 key NOT NULL, email string(255) nullable
TableSchema Base() {
  return Table({Column("id", "int32", false, true), Column("email", "string(255)")});
}

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

size_t LineCount(const std::filesystem::path& path) {
  const std::string text = ReadText(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::unique_ptr<SchemaRegistry> OpenRegistry(const std::filesystem::path& state_dir,
                                             SchemaPolicy policy = {}) {
  auto registry = SchemaRegistry::Open(state_dir, "crm", policy);
  BOOST_TEST_REQUIRE(registry.ok(), registry.status().ToString());
  return std::move(registry).value();
}

// ---- fingerprint ----

BOOST_AUTO_TEST_CASE(qualified_table_name_is_schema_or_database_dot_table) {
  TableSchema pg = Base();
  BOOST_TEST(QualifiedTableName(pg) == "public.t");
  TableSchema mysql = Base();
  mysql.schema.clear();
  mysql.database = "shop";
  BOOST_TEST(QualifiedTableName(mysql) == "shop.t");
}

BOOST_AUTO_TEST_CASE(fingerprint_is_sha256_of_the_documented_canonical_text) {
  // printf 'tributary schema fingerprint v1\nrelation_id 16384\ncolumn 1 2:id 5:int32 not_null
  // key\ncolumn 2 5:email 11:string(255) nullable -\n' | sha256sum   (docs/schemas.md)
  BOOST_TEST(SchemaFingerprint(Base()) ==
             "926a3a352db529b6a96842e0874ef6309785a12e8f5589cdb1c0440c60f6bb4a");
}

BOOST_AUTO_TEST_CASE(fingerprint_covers_each_field_of_a_version_and_nothing_else) {
  const std::string base = SchemaFingerprint(Base());
  BOOST_TEST(base.size() == 64u);
  BOOST_TEST(base.find_first_not_of("0123456789abcdef") == std::string::npos);
  BOOST_TEST(SchemaFingerprint(Base()) == base);

  std::vector<std::pair<std::string, TableSchema>> changed;
  auto with = [&](const std::string& what, auto change) {
    TableSchema table = Base();
    change(table);
    changed.emplace_back(what, std::move(table));
  };
  with("name", [](TableSchema& t) { t.columns[1].name = "mail"; });
  with("canonical type", [](TableSchema& t) { t.columns[1].canonical_type = "string"; });
  with("nullable", [](TableSchema& t) { t.columns[1].nullable = false; });
  with("key", [](TableSchema& t) { t.columns[1].key = true; });
  with("position", [](TableSchema& t) { std::swap(t.columns[0], t.columns[1]); });
  with("relation id", [](TableSchema& t) { t.relation_id = 16385; });
  with("column added", [](TableSchema& t) { t.columns.push_back(Column("x", "int64")); });
  std::set<std::string> seen{base};
  for (const auto& [what, table] : changed) {
    const std::string fingerprint = SchemaFingerprint(table);
    BOOST_TEST(seen.insert(fingerprint).second, what << " does not change the fingerprint");
  }

  std::vector<std::pair<std::string, TableSchema>> same;
  auto without = [&](const std::string& what, auto change) {
    TableSchema table = Base();
    change(table);
    same.emplace_back(what, std::move(table));
  };
  without("ddl", [](TableSchema& t) { t.ddl = "ALTER TABLE t ADD COLUMN x int"; });
  without("type name", [](TableSchema& t) { t.columns[1].type_name = "varchar"; });
  without("type oid", [](TableSchema& t) { t.columns[1].type_oid = 1043; });
  without("type modifier", [](TableSchema& t) { t.columns[1].type_modifier = 259; });
  without("version", [](TableSchema& t) { t.version = 7; });
  without("previous version", [](TableSchema& t) { t.previous_version = 6; });
  without("compatible", [](TableSchema& t) { t.compatible = false; });
  without("problems", [](TableSchema& t) { t.problems = {"column x dropped"}; });
  without("source", [](TableSchema& t) { t.source = "other"; });
  for (const auto& [what, table] : same) {
    BOOST_TEST(SchemaFingerprint(table) == base, what << " changes the fingerprint");
  }
}

BOOST_AUTO_TEST_CASE(fingerprint_falls_back_to_the_type_name_without_a_canonical_type) {
  TableSchema a = Base();
  a.columns[1].canonical_type.clear();
  a.columns[1].type_name = "text";
  TableSchema b = a;
  b.columns[1].type_name = "varchar";
  BOOST_TEST(SchemaFingerprint(a) != SchemaFingerprint(b));
}

// ---- compatibility ----

struct Change {
  const char* what;
  std::vector<ColumnSchema> previous;
  std::vector<ColumnSchema> next;
  std::vector<std::string> backward;
  std::vector<std::string> forward;
};

std::vector<Change> TypeChange(const char* from, const char* to, const char* kind) {
  std::string problem = std::string("column c ") + kind + " from " + from + " to " + to;
  std::vector<std::string> backward;
  std::vector<std::string> forward;
  if (std::string(kind) != "widened") backward.push_back(problem);
  if (std::string(kind) != "narrowed") forward.push_back(problem);
  return {{from, {Column("c", from)}, {Column("c", to)}, backward, forward}};
}

std::vector<Change> Changes() {
  std::vector<Change> changes = {
      {"identical",
       {Column("id", "int32", false, true)},
       {Column("id", "int32", false, true)},
       {},
       {}},
      {"nullable column added",
       {Column("id", "int32")},
       {Column("id", "int32"), Column("note", "string")},
       {},
       {"column note added"}},
      {"NOT NULL column added",
       {Column("id", "int32")},
       {Column("id", "int32"), Column("note", "string", false)},
       {"column note added as NOT NULL"},
       {"column note added as NOT NULL"}},
      {"nullable column dropped",
       {Column("id", "int32"), Column("email", "string")},
       {Column("id", "int32")},
       {"column email dropped"},
       {}},
      {"NOT NULL column dropped",
       {Column("id", "int32"), Column("email", "string", false)},
       {Column("id", "int32")},
       {"column email dropped"},
       {"column email dropped"}},
      {"renamed",
       {Column("id", "int32"), Column("email", "string")},
       {Column("id", "int32"), Column("mail", "string")},
       {"column email dropped"},
       {"column mail added"}},
      {"nullability relaxed",
       {Column("c", "int32", false)},
       {Column("c", "int32", true)},
       {},
       {"column c made nullable"}},
      {"nullability tightened",
       {Column("c", "int32", true)},
       {Column("c", "int32", false)},
       {"column c made NOT NULL"},
       {}},
      {"primary key changed",
       {Column("id", "int32", false, true), Column("region", "string", false)},
       {Column("id", "int32", false, true), Column("region", "string", false, true)},
       {"primary key changed from (id) to (id, region)"},
       {"primary key changed from (id) to (id, region)"}},
      {"primary key added",
       {Column("id", "int32", false)},
       {Column("id", "int32", false, true)},
       {"primary key changed from () to (id)"},
       {"primary key changed from () to (id)"}},
  };
  const char* types[][3] = {
      {"int16", "int32", "widened"},
      {"int32", "int64", "widened"},
      {"int16", "int64", "widened"},
      {"int64", "int32", "narrowed"},
      {"int32", "int16", "narrowed"},
      {"int16", "decimal(5,0)", "widened"},
      {"int32", "decimal(10,0)", "widened"},
      {"int32", "decimal(12,2)", "widened"},
      {"int32", "decimal(11,2)", "changed"},
      {"int64", "decimal(19,0)", "widened"},
      {"int64", "decimal(18,0)", "changed"},
      {"int64", "decimal", "widened"},
      {"decimal", "int64", "narrowed"},
      {"uint64", "decimal", "widened"},
      {"uint64", "decimal(20,0)", "widened"},
      {"uint64", "decimal(19,0)", "changed"},
      {"int64", "uint64", "changed"},
      {"float32", "float64", "widened"},
      {"float64", "float32", "narrowed"},
      {"int32", "float64", "changed"},
      {"string(10)", "string(20)", "widened"},
      {"string(20)", "string(10)", "narrowed"},
      {"string(10)", "string", "widened"},
      {"string", "string(10)", "narrowed"},
      {"bytes(4)", "bytes(8)", "widened"},
      {"bytes(4)", "bytes", "widened"},
      {"bytes", "bytes(4)", "narrowed"},
      {"string(4)", "bytes(8)", "changed"},
      {"decimal(10,2)", "decimal(12,2)", "widened"},
      {"decimal(10,2)", "decimal(12,4)", "widened"},
      {"decimal(10,2)", "decimal(10,4)", "changed"},
      {"decimal(12,4)", "decimal(10,2)", "narrowed"},
      {"decimal(10,2)", "decimal", "widened"},
      {"decimal", "decimal(10,2)", "narrowed"},
      {"timestamp", "timestamptz", "changed"},
      {"timestamptz", "timestamp", "changed"},
      {"array<int32>", "array<int64>", "widened"},
      {"array<int64>", "array<int32>", "narrowed"},
      {"array<string(5)>", "array<string>", "widened"},
      {"array<int32>", "array<string>", "changed"},
      {"array<int32>", "int32", "changed"},
      {"int32", "string", "changed"},
      {"json", "string", "changed"},
      {"other:public.mood", "string", "changed"},
  };
  for (const auto& type : types) {
    for (Change& change : TypeChange(type[0], type[1], type[2])) changes.push_back(change);
  }
  // A column the source has not classified compares by its type name.
  Change untyped{"untyped", {Column("c", "")}, {Column("c", "")}, {}, {}};
  untyped.previous[0].type_name = "text";
  untyped.next[0].type_name = "citext";
  untyped.backward = untyped.forward = {"column c changed from other:text to other:citext"};
  changes.push_back(untyped);
  return changes;
}

BOOST_AUTO_TEST_CASE(compatibility_rules_in_every_mode) {
  for (const Change& change : Changes()) {
    BOOST_TEST_CONTEXT(change.what << " " << change.previous[0].canonical_type << " -> "
                                   << change.next[0].canonical_type) {
      const TableSchema previous = Table(change.previous);
      const TableSchema next = Table(change.next);
      BOOST_TEST(
          CompatibilityProblems(previous, next, CompatibilityMode::kBackward) == change.backward,
          boost::test_tools::per_element());
      BOOST_TEST(
          CompatibilityProblems(previous, next, CompatibilityMode::kForward) == change.forward,
          boost::test_tools::per_element());
      std::set<std::string> both(change.backward.begin(), change.backward.end());
      both.insert(change.forward.begin(), change.forward.end());
      const auto full = CompatibilityProblems(previous, next, CompatibilityMode::kFull);
      BOOST_TEST(std::set<std::string>(full.begin(), full.end()) == both);
      BOOST_TEST(full.size() == both.size());
      BOOST_TEST(CompatibilityProblems(previous, next, CompatibilityMode::kNone).empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(compatibility_lists_every_problem_of_a_change) {
  TableSchema previous = Table(
      {Column("id", "int64", false, true), Column("email", "string"), Column("n", "int32", true)});
  TableSchema next = Table({Column("id", "int32", false, true), Column("n", "int32", false),
                            Column("region", "string", false, true)});
  std::vector<std::string> expected = {
      "column id narrowed from int64 to int32", "column email dropped", "column n made NOT NULL",
      "column region added as NOT NULL", "primary key changed from (id) to (id, region)"};
  BOOST_TEST(CompatibilityProblems(previous, next, CompatibilityMode::kBackward) == expected,
             boost::test_tools::per_element());
}

// ---- resolve ----

BOOST_AUTO_TEST_CASE(first_version_is_registered_and_persisted) {
  testing::TempDir dir;
  auto registry = OpenRegistry(dir.path());
  TableSchema observed = Base();
  observed.columns[0].type_name = "int4";
  observed.columns[0].type_oid = 23;
  auto resolved = registry->Resolve(observed, "0000000001/0000000001", 1714566896789);
  BOOST_TEST_REQUIRE(resolved.ok(), resolved.status().ToString());
  BOOST_TEST(resolved->announce);
  const TableSchema& schema = *resolved->schema;
  BOOST_TEST(schema.version == 1u);
  BOOST_TEST(schema.previous_version == 0u);
  BOOST_TEST(schema.compatible);
  BOOST_TEST(schema.problems.empty());
  BOOST_TEST(schema.columns.size() == 2u);

  const std::filesystem::path path = dir.path() / "crm" / "schemas.jsonl";
  BOOST_TEST(registry->history().path() == path);
  BOOST_TEST(registry->history().entries().size() == 1u);
  struct stat info {};
  BOOST_TEST_REQUIRE(::stat(path.c_str(), &info) == 0);
  BOOST_TEST((info.st_mode & 0777) == 0600u);

  const std::string text = ReadText(path);
  BOOST_TEST_REQUIRE(text.back() == '\n');
  const auto line = nlohmann::json::parse(text);
  BOOST_TEST(line["table"] == "public.t");
  BOOST_TEST(line["version"] == 1);
  BOOST_TEST(line["previous_version"] == 0);
  BOOST_TEST(line["dropped"] == false);
  BOOST_TEST(line["compatible"] == true);
  BOOST_TEST(line["problems"].empty());
  BOOST_TEST(line["fingerprint"] == SchemaFingerprint(observed));
  BOOST_TEST(line["position"] == "0000000001/0000000001");
  BOOST_TEST(line["ts_ms"] == 1714566896789);
  BOOST_TEST(line["relation_id"] == 16384);
  BOOST_TEST(line["connector"] == "postgresql");
  BOOST_TEST(line["source"] == "crm");
  BOOST_TEST(line["database"] == "app");
  BOOST_TEST(line["schema"] == "public");
  BOOST_TEST(line["name"] == "t");
  BOOST_TEST(line["ddl"].is_null());
  BOOST_TEST(line["columns"][0]["name"] == "id");
  BOOST_TEST(line["columns"][0]["type"] == "int4");
  BOOST_TEST(line["columns"][0]["canonical_type"] == "int32");
  BOOST_TEST(line["columns"][0]["nullable"] == false);
  BOOST_TEST(line["columns"][0]["key"] == true);
  BOOST_TEST(line["columns"][0]["position"] == 1);
  BOOST_TEST(line["columns"][0]["type_oid"] == 23);
  BOOST_TEST(line["columns"][0]["type_modifier"] == -1);
  BOOST_TEST(line["columns"][1]["position"] == 2);
}

BOOST_AUTO_TEST_CASE(same_shape_resolves_to_the_same_version_and_pointer) {
  testing::TempDir dir;
  auto registry = OpenRegistry(dir.path());
  auto first = registry->Resolve(Base(), "p10", 1);
  BOOST_TEST_REQUIRE(first.ok());
  TableSchema cosmetic = Base();
  cosmetic.ddl = "ALTER TABLE t ALTER COLUMN email TYPE varchar(255)";
  cosmetic.columns[1].type_name = "varchar";
  for (const TableSchema& observed : {Base(), cosmetic}) {
    auto again = registry->Resolve(observed, "p11", 2);
    BOOST_TEST_REQUIRE(again.ok());
    BOOST_TEST(again->schema == first->schema);
    BOOST_TEST(!again->announce);
  }
  BOOST_TEST(registry->history().entries().size() == 1u);
}

BOOST_AUTO_TEST_CASE(new_shape_is_the_next_version_with_its_compatibility) {
  testing::TempDir dir;
  auto registry = OpenRegistry(dir.path());  // backward, warn
  auto v1 = registry->Resolve(Base(), "p10", 1);
  BOOST_TEST_REQUIRE(v1.ok());

  TableSchema added = Base();
  added.columns.push_back(Column("note", "string"));
  auto v2 = registry->Resolve(added, "p20", 2);
  BOOST_TEST_REQUIRE(v2.ok());
  BOOST_TEST(v2->announce);
  BOOST_TEST(v2->schema != v1->schema);
  BOOST_TEST(v2->schema->version == 2u);
  BOOST_TEST(v2->schema->previous_version == 1u);
  BOOST_TEST(v2->schema->compatible);

  TableSchema dropped = Table({Column("id", "int32", false, true), Column("note", "string")});
  auto v3 = registry->Resolve(dropped, "p30", 3);
  BOOST_TEST_REQUIRE(v3.ok());
  BOOST_TEST(v3->announce);
  BOOST_TEST(v3->schema->version == 3u);
  BOOST_TEST(v3->schema->previous_version == 2u);
  BOOST_TEST(!v3->schema->compatible);  // warn: recorded as incompatible
  BOOST_TEST(v3->schema->problems == std::vector<std::string>{"column email dropped"},
             boost::test_tools::per_element());

  // Going back to an older shape is a new version too.
  auto v4 = registry->Resolve(Base(), "p40", 4);
  BOOST_TEST_REQUIRE(v4.ok());
  BOOST_TEST(v4->schema->version == 4u);
  BOOST_TEST(v4->schema->previous_version == 3u);
  BOOST_TEST(LineCount(registry->history().path()) == 4u);

  const auto line =
      nlohmann::json::parse(ReadText(registry->history().path())
                                .substr(0, ReadText(registry->history().path()).find('\n')));
  BOOST_TEST(line["version"] == 1);

  // Another table has versions of its own.
  TableSchema other = Base();
  other.table = "u";
  auto u1 = registry->Resolve(other, "p50", 5);
  BOOST_TEST_REQUIRE(u1.ok());
  BOOST_TEST(u1->schema->version == 1u);
}

BOOST_AUTO_TEST_CASE(fail_policy_refuses_an_incompatible_change_and_records_nothing) {
  testing::TempDir dir;
  auto registry = OpenRegistry(dir.path(), {CompatibilityMode::kBackward, OnIncompatible::kFail});
  BOOST_TEST_REQUIRE(registry->Resolve(Base(), "p10", 1).ok());
  TableSchema narrowed =
      Table({Column("id", "int16", false, true), Column("email", "string(255)")});
  auto refused = registry->Resolve(narrowed, "p20", 2);
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.status().code() == StatusCode::kIncompatibleSchema);
  const std::string& message = refused.status().message();
  BOOST_TEST(message.find("public.t") != std::string::npos, message);
  BOOST_TEST(message.find("source crm") != std::string::npos, message);
  BOOST_TEST(message.find("from version 1 to 2") != std::string::npos, message);
  BOOST_TEST(message.find("column id narrowed from int32 to int16") != std::string::npos, message);
  BOOST_TEST(message.find("on_incompatible: warn") != std::string::npos, message);
  BOOST_TEST(registry->history().entries().size() == 1u);
  BOOST_TEST(LineCount(registry->history().path()) == 1u);

  // A compatible change still goes through, as version 2.
  TableSchema added = Base();
  added.columns.push_back(Column("note", "string"));
  auto v2 = registry->Resolve(added, "p30", 3);
  BOOST_TEST_REQUIRE(v2.ok());
  BOOST_TEST(v2->schema->version == 2u);

  // schema_compatibility: none accepts anything, as compatible.
  testing::TempDir other;
  auto lenient = OpenRegistry(other.path(), {CompatibilityMode::kNone, OnIncompatible::kFail});
  BOOST_TEST_REQUIRE(lenient->Resolve(Base(), "p10", 1).ok());
  auto accepted = lenient->Resolve(narrowed, "p20", 2);
  BOOST_TEST_REQUIRE(accepted.ok());
  BOOST_TEST(accepted->schema->compatible);
}

BOOST_AUTO_TEST_CASE(restart_keeps_versions_and_announces_replays) {
  testing::TempDir dir;
  TableSchema added = Base();
  added.columns.push_back(Column("note", "string"));
  std::shared_ptr<const TableSchema> v1;
  {
    auto registry = OpenRegistry(dir.path());
    BOOST_TEST_REQUIRE(registry->Resolve(Base(), "p10", 1).ok());
    BOOST_TEST_REQUIRE(registry->Resolve(added, "p20", 2).ok());
  }
  auto registry = OpenRegistry(dir.path());
  BOOST_TEST(registry->history().entries().size() == 2u);

  auto at10 = registry->Resolve(Base(), "p10", 1);
  BOOST_TEST_REQUIRE(at10.ok());
  BOOST_TEST(at10->schema->version == 1u);
  BOOST_TEST(at10->announce);  // the point where it took effect is replayed
  auto at15 = registry->Resolve(Base(), "p15", 1);
  BOOST_TEST_REQUIRE(at15.ok());
  BOOST_TEST(at15->schema == at10->schema);
  BOOST_TEST(!at15->announce);

  auto at20 = registry->Resolve(added, "p20", 2);
  BOOST_TEST_REQUIRE(at20.ok());
  BOOST_TEST(at20->schema->version == 2u);
  BOOST_TEST(at20->schema->previous_version == 1u);
  BOOST_TEST(at20->announce);
  auto at25 = registry->Resolve(added, "p25", 2);
  BOOST_TEST_REQUIRE(at25.ok());
  BOOST_TEST(at25->schema == at20->schema);
  BOOST_TEST(!at25->announce);

  // The latest version matches too when the replay starts before it took effect.
  auto early = registry->Resolve(added, "p05", 2);
  BOOST_TEST_REQUIRE(early.ok());
  BOOST_TEST(early->schema == at20->schema);
  BOOST_TEST(early->announce);
  BOOST_TEST(registry->history().entries().size() == 2u);

  // The reloaded copy holds everything the original had.
  const TableSchema& reloaded = *at10->schema;
  BOOST_TEST(reloaded.connector == "postgresql");
  BOOST_TEST(reloaded.source == "crm");
  BOOST_TEST(reloaded.database == "app");
  BOOST_TEST(reloaded.relation_id == 16384u);
  BOOST_TEST(reloaded.columns[0].type_name == "t_int32");
  BOOST_TEST(!reloaded.columns[0].nullable);
  BOOST_TEST(reloaded.columns[0].key);
  BOOST_TEST(SchemaFingerprint(reloaded) == SchemaFingerprint(Base()));

  // New versions continue the sequence.
  TableSchema third = added;
  third.columns.push_back(Column("x", "int64"));
  auto v3 = registry->Resolve(third, "p30", 3);
  BOOST_TEST_REQUIRE(v3.ok());
  BOOST_TEST(v3->schema->version == 3u);
}

BOOST_AUTO_TEST_CASE(drop_then_the_same_shape_is_a_new_version) {
  testing::TempDir dir;
  auto registry = OpenRegistry(dir.path());
  auto v1 = registry->Resolve(Base(), "p10", 1);
  BOOST_TEST_REQUIRE(v1.ok());
  TableSchema gone = Base();
  gone.dropped = true;
  gone.ddl = "DROP TABLE t";
  auto drop = registry->RecordDrop(gone, "p20", 2);
  BOOST_TEST_REQUIRE(drop.ok());
  BOOST_TEST((*drop)->dropped);
  BOOST_TEST((*drop)->version == 1u);
  BOOST_TEST((*drop)->ddl == "DROP TABLE t");

  // Replayed: the same record, nothing appended.
  auto replayed = registry->RecordDrop(gone, "p20", 2);
  BOOST_TEST_REQUIRE(replayed.ok());
  BOOST_TEST(*replayed == *drop);
  BOOST_TEST(LineCount(registry->history().path()) == 2u);

  auto v2 = registry->Resolve(Base(), "p30", 3);
  BOOST_TEST_REQUIRE(v2.ok());
  BOOST_TEST(v2->announce);
  BOOST_TEST(v2->schema->version == 2u);
  BOOST_TEST(v2->schema->previous_version == 1u);
  BOOST_TEST(v2->schema->compatible);

  // After a restart the drop is still replay-safe and the versions hold.
  auto reopened = OpenRegistry(dir.path());
  auto drop_again = reopened->RecordDrop(gone, "p20", 2);
  BOOST_TEST_REQUIRE(drop_again.ok());
  BOOST_TEST((*drop_again)->version == 1u);
  auto at10 = reopened->Resolve(Base(), "p10", 1);
  BOOST_TEST_REQUIRE(at10.ok());
  BOOST_TEST(at10->schema->version == 1u);
  auto at30 = reopened->Resolve(Base(), "p30", 3);
  BOOST_TEST_REQUIRE(at30.ok());
  BOOST_TEST(at30->schema->version == 2u);
  BOOST_TEST(at30->announce);
  BOOST_TEST(reopened->history().entries().size() == 3u);

  // A table never seen is dropped at version 0; its first version is still 1.
  TableSchema unknown = Base();
  unknown.table = "never";
  auto drop_unknown = reopened->RecordDrop(unknown, "p40", 4);
  BOOST_TEST_REQUIRE(drop_unknown.ok());
  BOOST_TEST((*drop_unknown)->version == 0u);
  auto first = reopened->Resolve(unknown, "p50", 5);
  BOOST_TEST_REQUIRE(first.ok());
  BOOST_TEST(first->schema->version == 1u);
  BOOST_TEST(first->schema->previous_version == 0u);
  BOOST_TEST(OpenRegistry(dir.path())->history().entries().size() == 5u);
}

BOOST_AUTO_TEST_CASE(a_new_relation_id_is_a_new_version) {
  testing::TempDir dir;
  auto registry = OpenRegistry(dir.path());
  BOOST_TEST_REQUIRE(registry->Resolve(Base(), "p10", 1).ok());
  TableSchema recreated = Base();
  recreated.relation_id = 16400;
  auto v2 = registry->Resolve(recreated, "p20", 2);
  BOOST_TEST_REQUIRE(v2.ok());
  BOOST_TEST(v2->schema->version == 2u);
  BOOST_TEST(v2->schema->compatible);
  BOOST_TEST(v2->schema->relation_id == 16400u);
}

// ---- history file ----

std::string HistoryLine(uint32_t version, uint32_t previous, const std::string& position) {
  SchemaHistoryEntry entry;
  auto schema = std::make_shared<TableSchema>(Base());
  schema->version = version;
  schema->previous_version = previous;
  entry.schema = schema;
  entry.fingerprint = SchemaFingerprint(*schema);
  entry.position = position;
  entry.ts_ms = 1;
  return SchemaHistoryLine(entry) + "\n";
}

void ExpectCorrupt(const std::string& text, const std::string& line, const std::string& what) {
  testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "crm" / "schemas.jsonl";
  WriteText(path, text);
  auto registry = SchemaRegistry::Open(dir.path(), "crm", {});
  BOOST_TEST_REQUIRE(!registry.ok());
  BOOST_TEST(registry.status().code() == StatusCode::kCorruptData);
  const std::string& message = registry.status().message();
  BOOST_TEST(message.find(path.string() + " line " + line + ": ") != std::string::npos, message);
  BOOST_TEST(message.find(what) != std::string::npos, message);
  BOOST_TEST(message.find("restore it from a backup") != std::string::npos, message);
  BOOST_TEST(ReadText(path) == text);  // never reset
}

BOOST_AUTO_TEST_CASE(corrupt_history_is_an_error_naming_file_and_line) {
  const std::string v1 = HistoryLine(1, 0, "p1");
  const std::string v2 = HistoryLine(2, 1, "p2");
  ExpectCorrupt(v1 + "{not json\n" + v2, "2", "not valid JSON");
  ExpectCorrupt(v1 + HistoryLine(3, 2, "p3"), "2", "public.t version 3 does not follow version 1");
  ExpectCorrupt(v1 + HistoryLine(2, 0, "p2"), "2", "previous_version 0");
  ExpectCorrupt(HistoryLine(2, 1, "p2"), "1", "does not follow version 0");
  ExpectCorrupt(v1 + "\n" + v2, "2", "empty line");
  ExpectCorrupt(v1 + "[1]\n", "2", "not a JSON object");

  auto without = [&](const std::string& field) {
    auto line = nlohmann::ordered_json::parse(v2);
    line.erase(field);
    return line.dump() + "\n";
  };
  ExpectCorrupt(v1 + without("position"), "2", "missing \"position\"");
  ExpectCorrupt(v1 + without("columns"), "2", "missing \"columns\"");
  auto bad_column = nlohmann::ordered_json::parse(v2);
  bad_column["columns"][1]["nullable"] = "yes";
  ExpectCorrupt(v1 + bad_column.dump() + "\n", "2", "column 2: \"nullable\" is not a boolean");
  auto bad_table = nlohmann::ordered_json::parse(v2);
  bad_table["table"] = "public.other";
  ExpectCorrupt(v1 + bad_table.dump() + "\n", "2", "does not match");
}

BOOST_AUTO_TEST_CASE(torn_last_line_is_cut_off_and_the_rest_loads) {
  testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "crm" / "schemas.jsonl";
  const std::string complete = HistoryLine(1, 0, "p1") + HistoryLine(2, 1, "p2");
  const std::string torn = HistoryLine(3, 2, "p3");
  WriteText(path, complete + torn.substr(0, torn.size() / 2));

  // Reading beside a running agent repairs nothing.
  auto read_only = SchemaHistory::ReadOnly(path);
  BOOST_TEST_REQUIRE(read_only.ok(), read_only.status().ToString());
  BOOST_TEST(read_only->entries().size() == 2u);
  BOOST_TEST(ReadText(path).size() > complete.size());

  auto registry = OpenRegistry(dir.path());
  BOOST_TEST(registry->history().entries().size() == 2u);
  BOOST_TEST(ReadText(path) == complete);
  // The next version follows the last complete one and lands on a line of its own.
  TableSchema added = Base();
  added.columns.push_back(Column("note", "string"));
  auto v3 = registry->Resolve(added, "p3", 3);
  BOOST_TEST_REQUIRE(v3.ok());
  BOOST_TEST(v3->schema->version == 3u);
  BOOST_TEST(OpenRegistry(dir.path())->history().entries().size() == 3u);

  // A file that is all torn line is an empty history.
  WriteText(path, "{\"table\":");
  BOOST_TEST(OpenRegistry(dir.path())->history().entries().empty());
  BOOST_TEST(ReadText(path).empty());
}

BOOST_AUTO_TEST_CASE(history_line_round_trips_every_field) {
  testing::TempDir dir;
  TableSchema mysql = Table({Column("id", "int64", false, true), Column("name", "string(64)")});
  mysql.connector = "mariadb";
  mysql.schema.clear();
  mysql.database = "shop";
  mysql.relation_id = 0;
  mysql.ddl = "ALTER TABLE t ADD COLUMN name varchar(64) \"quoted\"\n";
  mysql.columns[1].type_modifier = 68;
  mysql.columns[1].type_oid = 0;
  auto registry = OpenRegistry(dir.path(), {CompatibilityMode::kFull, OnIncompatible::kWarn});
  BOOST_TEST_REQUIRE(registry->Resolve(mysql, "00000001/0000000004/0001", 77).ok());
  auto reopened = OpenRegistry(dir.path());
  const SchemaHistoryEntry& entry = reopened->history().entries().at(0);
  BOOST_TEST(entry.position == "00000001/0000000004/0001");
  BOOST_TEST(entry.ts_ms == 77);
  BOOST_TEST(entry.fingerprint == SchemaFingerprint(mysql));
  BOOST_TEST(QualifiedTableName(*entry.schema) == "shop.t");
  BOOST_TEST(entry.schema->connector == "mariadb");
  BOOST_TEST(entry.schema->ddl == mysql.ddl);
  BOOST_TEST(entry.schema->columns[1].type_modifier == 68);
  BOOST_TEST(entry.schema->columns[1].canonical_type == "string(64)");
  BOOST_TEST(LineCount(reopened->history().path()) == 1u);  // the DDL's newline is escaped
}

// ---- tributary schemas ----

AgentConfig ConfigFor(const std::filesystem::path& state_dir) {
  AgentConfig config;
  config.state_dir = state_dir.string();
  SourceConfig crm;
  crm.name = "crm";
  crm.type = "postgres";
  SourceConfig empty;
  empty.name = "empty";
  empty.type = "mysql";
  config.sources = {crm, empty};
  return config;
}

BOOST_AUTO_TEST_CASE(schemas_command_prints_the_history) {
  testing::TempDir dir;
  {
    auto registry = OpenRegistry(dir.path());
    TableSchema v1 = Base();
    v1.columns[0].type_name = "int4";
    BOOST_TEST_REQUIRE(registry->Resolve(v1, "p10", 1714566896789).ok());
    TableSchema v2 = Table({Column("id", "int32", false, true)});
    v2.ddl = "ALTER TABLE t DROP COLUMN email";
    BOOST_TEST_REQUIRE(registry->Resolve(v2, "p20", 1714566900000).ok());
    TableSchema gone = v2;
    gone.dropped = true;
    BOOST_TEST_REQUIRE(registry->RecordDrop(gone, "p30", 1714566901000).ok());
  }
  const AgentConfig config = ConfigFor(dir.path());
  std::ostringstream out;
  std::ostringstream err;
  BOOST_TEST(PrintSchemas(config, "", "", false, out, err) == 0);
  const std::string text = out.str();
  BOOST_TEST_MESSAGE(text);
  for (const char* expected : {
           "source crm (postgres): ",
           "public.t version 1 (first)\n  compatible  yes\n  position    p10\n"
           "  time        2024-05-01T12:34:56.789Z\n  relation    16384\n",
           "    NAME   TYPE           CANONICAL    NULLABLE  KEY\n"
           "    id     int4           int32        no        yes\n"
           "    email  t_string(255)  string(255)  yes       no\n",
           "public.t version 2 (previous 1)\n  compatible  NO: column email dropped\n",
           "  ddl         ALTER TABLE t DROP COLUMN email\n",
           "public.t version 2 DROPPED\n  position    p30\n",
           "source empty (mysql): ",
           "  no schema history yet\n",
       }) {
    BOOST_TEST(text.find(expected) != std::string::npos, "missing: " << expected);
  }
  BOOST_TEST(err.str().empty());

  std::ostringstream json;
  BOOST_TEST(PrintSchemas(config, "crm", "public.t", true, json, err) == 0);
  std::istringstream lines(json.str());
  std::string line;
  std::vector<int> versions;
  while (std::getline(lines, line)) versions.push_back(nlohmann::json::parse(line)["version"]);
  BOOST_TEST(versions == (std::vector<int>{1, 2, 2}), boost::test_tools::per_element());

  std::ostringstream ignored;
  std::ostringstream unknown_source;
  BOOST_TEST(PrintSchemas(config, "nope", "", false, ignored, unknown_source) == 78);
  BOOST_TEST(unknown_source.str().find("no source named nope") != std::string::npos);
  std::ostringstream unknown_table;
  BOOST_TEST(PrintSchemas(config, "", "public.nope", false, ignored, unknown_table) == 78);
  BOOST_TEST(unknown_table.str().find("no schema history of table public.nope") !=
             std::string::npos);

  WriteText(dir.path() / "empty" / "schemas.jsonl", "garbage\n");
  std::ostringstream corrupt;
  BOOST_TEST(PrintSchemas(config, "", "", false, ignored, corrupt) == 65);
  BOOST_TEST(corrupt.str().find("line 1: not valid JSON") != std::string::npos, corrupt.str());
}

}  // namespace
}  // namespace tributary
