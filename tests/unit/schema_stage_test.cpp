#define BOOST_TEST_MODULE schema_stage_test
#include "agent/schema_stage.h"

#include <fmt/format.h>

#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace tributary {
namespace {

using testing::TempDir;

std::shared_ptr<const TableSchema> Table(std::vector<std::string> columns) {
  auto schema = std::make_shared<TableSchema>();
  schema->connector = "postgresql";
  schema->source = "crm";
  schema->database = "app";
  schema->schema = "public";
  schema->table = "t";
  for (size_t i = 0; i < columns.size(); ++i) {
    schema->columns.push_back(ColumnSchema{.name = columns[i],
                                           .type_name = "int8",
                                           .key = i == 0,
                                           .nullable = i != 0,
                                           .canonical_type = "int64"});
  }
  return schema;
}

// Appends a row event of `table` at position `position` (zero-padded so it sorts).
void AddRow(Batch& batch, const std::shared_ptr<const TableSchema>& table, int position) {
  Event event;
  event.op = Op::kCreate;
  event.table = batch.Retain(table);
  event.meta.commit_ts_us = 1700000000000000 + position;
  event.after = static_cast<uint32_t>(batch.values.size());
  for (size_t i = 0; i < table->columns.size(); ++i) {
    batch.values.push_back(batch.AddValue(ValueKind::kRaw, "1"));
  }
  event.position = batch.AddValue(ValueKind::kString, fmt::format("{:08}", position));
  batch.events.push_back(event);
}

std::unique_ptr<SchemaStage> Stage(const TempDir& dir, SchemaPolicy policy = {}) {
  auto registry = SchemaRegistry::Open(dir.path(), "crm", policy);
  BOOST_REQUIRE_MESSAGE(registry.ok(), registry.status().ToString());
  return std::make_unique<SchemaStage>(std::move(registry).value());
}

// "s1 c c s2 c": op codes, with the version after each schema change.
std::string Shape(const Batch& batch) {
  std::string shape;
  for (const Event& event : batch.events) {
    if (!shape.empty()) shape += ' ';
    shape += static_cast<char>(event.op);
    if (event.op == Op::kSchemaChange) shape += std::to_string(event.table->version);
  }
  return shape;
}

BOOST_AUTO_TEST_CASE(a_table_is_announced_once_before_its_first_row) {
  TempDir dir;
  auto stage = Stage(dir);
  auto table = Table({"id", "a"});
  Batch batch;
  AddRow(batch, table, 1);
  AddRow(batch, table, 2);
  BOOST_REQUIRE(stage->Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "s1 c c");
  BOOST_TEST(batch.events[0].table == batch.events[1].table);
  BOOST_TEST(batch.Text(batch.events[0].position) == "00000001");
  BOOST_TEST(batch.events[1].table->version == 1u);

  batch.Clear();
  AddRow(batch, table, 3);
  BOOST_REQUIRE(stage->Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "c");
}

BOOST_AUTO_TEST_CASE(a_new_shape_mid_batch_gets_the_next_version_right_before_its_row) {
  TempDir dir;
  auto stage = Stage(dir);
  Batch batch;
  AddRow(batch, Table({"id", "a"}), 1);
  AddRow(batch, Table({"id", "a"}), 2);  // same shape, another source object: same version
  AddRow(batch, Table({"id", "a", "b"}), 3);
  AddRow(batch, Table({"id", "a", "b"}), 4);
  BOOST_REQUIRE(stage->Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "s1 c c s2 c c");
  const TableSchema& v2 = *batch.events[3].table;
  BOOST_TEST(v2.previous_version == 1u);
  BOOST_TEST(v2.compatible);  // a nullable column added: backward compatible
  BOOST_TEST(batch.events[4].table == &v2);
  BOOST_TEST(batch.Text(batch.events[3].position) == "00000003");
}

BOOST_AUTO_TEST_CASE(fail_policy_refuses_an_incompatible_change_and_records_nothing) {
  TempDir dir;
  {
    auto stage = Stage(dir, {.on_incompatible = OnIncompatible::kFail});
    Batch batch;
    AddRow(batch, Table({"id", "a"}), 1);
    BOOST_REQUIRE(stage->Apply(batch).ok());
    batch.Clear();
    AddRow(batch, Table({"id"}), 2);  // column a dropped
    Status status = stage->Apply(batch);
    BOOST_TEST(status.code() == StatusCode::kIncompatibleSchema);
    BOOST_TEST(status.message().find("public.t") != std::string::npos, status.message());
  }
  auto registry = SchemaRegistry::Open(dir.path(), "crm", {});
  BOOST_REQUIRE(registry.ok());
  BOOST_TEST((*registry)->history().entries().size() == 1u);
}

BOOST_AUTO_TEST_CASE(warn_policy_records_the_change_as_incompatible) {
  TempDir dir;
  auto stage = Stage(dir);
  Batch batch;
  AddRow(batch, Table({"id", "a"}), 1);
  AddRow(batch, Table({"id"}), 2);
  BOOST_REQUIRE(stage->Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "s1 c s2 c");
  BOOST_TEST(!batch.events[2].table->compatible);
  BOOST_TEST(!batch.events[2].table->problems.empty());
}

BOOST_AUTO_TEST_CASE(a_replay_after_restart_keeps_versions_and_announces_again) {
  TempDir dir;
  const auto v1 = Table({"id", "a"});
  const auto v2 = Table({"id", "a", "b"});
  {
    auto stage = Stage(dir);
    Batch batch;
    AddRow(batch, v1, 1);
    AddRow(batch, v2, 5);
    BOOST_REQUIRE(stage->Apply(batch).ok());
    BOOST_REQUIRE(Shape(batch) == "s1 c s2 c");
  }
  // The checkpoint was at 3: the source replays from there with fresh schema objects.
  auto stage = Stage(dir);
  Batch batch;
  AddRow(batch, Table({"id", "a"}), 4);
  AddRow(batch, Table({"id", "a", "b"}), 5);
  AddRow(batch, Table({"id", "a", "b"}), 6);
  BOOST_REQUIRE(stage->Apply(batch).ok());
  // Version 1 took effect at 1, before the replay: not announced again; version 2 is.
  BOOST_TEST(Shape(batch) == "c s2 c c");
  BOOST_TEST(batch.events[0].table->version == 1u);

  // Past where version 2 took effect, a later restart announces nothing.
  auto later = Stage(dir);
  batch.Clear();
  AddRow(batch, Table({"id", "a", "b"}), 7);
  BOOST_REQUIRE(later->Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "c");
  BOOST_TEST(batch.events[0].table->version == 2u);
}

// Within one process: after a sink failed, the pipeline restarts its transforms and replays
// from the checkpoint; the failed write may have dropped the announcement, so it comes again.
BOOST_AUTO_TEST_CASE(a_replay_after_a_pipeline_restart_announces_again) {
  TempDir dir;
  auto stage = Stage(dir);
  Batch batch;
  AddRow(batch, Table({"id", "a"}), 1);
  BOOST_REQUIRE(stage->Apply(batch).ok());
  BOOST_REQUIRE(Shape(batch) == "s1 c");

  // A replay in the same run (no restart) is not announced twice.
  batch.Clear();
  AddRow(batch, Table({"id", "a"}), 1);
  BOOST_REQUIRE(stage->Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "c");

  stage->Restart();
  batch.Clear();
  AddRow(batch, Table({"id", "a"}), 1);
  AddRow(batch, Table({"id", "a"}), 2);
  BOOST_REQUIRE(stage->Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "s1 c c");
}

BOOST_AUTO_TEST_CASE(a_dropped_table_created_again_starts_a_new_version) {
  TempDir dir;
  auto stage = Stage(dir);
  const auto table = Table({"id", "a"});
  Batch batch;
  AddRow(batch, table, 1);
  Event drop;
  drop.op = Op::kSchemaChange;
  auto gone = std::make_shared<TableSchema>(*table);
  gone->columns.clear();
  gone->dropped = true;
  gone->ddl = "DROP TABLE t";
  drop.table = batch.Retain(gone);
  drop.position = batch.AddValue(ValueKind::kString, "00000002");
  batch.events.push_back(drop);
  AddRow(batch, table, 3);  // the source reuses its schema object for the same shape
  BOOST_REQUIRE(stage->Apply(batch).ok());
  BOOST_TEST(Shape(batch) == "s1 c s1 s2 c");
  BOOST_TEST(batch.events[2].table->dropped);
  BOOST_TEST(batch.events[4].table->version == 2u);
  BOOST_TEST(batch.events[4].table->previous_version == 1u);
}

}  // namespace
}  // namespace tributary
