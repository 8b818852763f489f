#define BOOST_TEST_MODULE pg_schema_fields_test
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "connectors/postgres/postgres_source.h"
#include "tests/support/pg_server.h"

// What the PostgreSQL source puts in TableSchema for the schema registry: canonical types,
// nullability from the catalog, the event key and the relation id, the same from the snapshot
// and from the stream. Drives PostgresSource directly: the envelope does not print these.

namespace tributary::testing {
namespace {

using std::chrono::seconds;

struct Seen {
  std::vector<std::shared_ptr<const TableSchema>> schemas;  // in event order
  std::vector<Op> ops;
  std::vector<std::map<std::string, std::pair<ValueKind, std::string>>> rows;  // after images
};

// Polls until `done` says the events seen so far are enough; fails after 30 s.
void PollUntil(postgres::PostgresSource& source, std::map<std::string, Seen>& seen,
               const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  Batch batch;
  while (!done()) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "timed out polling");
    batch.Clear();
    Status status = source.Poll(batch, 1 << 20, std::chrono::milliseconds(200));
    BOOST_REQUIRE_MESSAGE(status.ok(), status.ToString());
    for (const Event& event : batch.events) {
      auto schema = std::find_if(batch.tables.begin(), batch.tables.end(),
                                 [&](const auto& s) { return s.get() == event.table; });
      BOOST_REQUIRE(schema != batch.tables.end());
      Seen& table = seen[event.table->table];
      table.schemas.push_back(*schema);
      table.ops.push_back(event.op);
      std::map<std::string, std::pair<ValueKind, std::string>> row;
      if (event.after) {
        for (size_t i = 0; i < event.table->columns.size(); ++i) {
          const Value& value = batch.values[*event.after + i];
          row[event.table->columns[i].name] = {value.kind, std::string(batch.Text(value))};
        }
      }
      table.rows.push_back(std::move(row));
    }
    if (batch.commit_position) {
      Status ack = source.Acknowledge(*batch.commit_position);
      BOOST_REQUIRE_MESSAGE(ack.ok(), ack.ToString());
    }
  }
}

std::vector<std::string> Field(const TableSchema& schema,
                               const std::function<std::string(const ColumnSchema&)>& get) {
  std::vector<std::string> out;
  for (const ColumnSchema& column : schema.columns) out.push_back(column.name + "=" + get(column));
  return out;
}

std::vector<std::string> Keys(const TableSchema& schema) {
  std::vector<std::string> out;
  for (const ColumnSchema& column : schema.columns) {
    if (column.key) out.push_back(column.name);
  }
  return out;
}

// Everything the registry's fingerprint reads, plus the names it shows.
void RequireSameShape(const TableSchema& a, const TableSchema& b) {
  BOOST_TEST(a.relation_id == b.relation_id);
  BOOST_TEST(a.schema == b.schema);
  BOOST_TEST(a.table == b.table);
  BOOST_REQUIRE(a.columns.size() == b.columns.size());
  for (size_t i = 0; i < a.columns.size(); ++i) {
    const ColumnSchema& x = a.columns[i];
    const ColumnSchema& y = b.columns[i];
    BOOST_TEST(x.name == y.name);
    BOOST_TEST(x.type_name == y.type_name, x.name);
    BOOST_TEST(x.canonical_type == y.canonical_type, x.name);
    BOOST_TEST(x.nullable == y.nullable, x.name);
    BOOST_TEST(x.key == y.key, x.name);
  }
}

BOOST_AUTO_TEST_CASE(canonical_types_nullability_keys_and_relation_ids) {
  auto pg = PgServer::Start();
  pg->Exec("CREATE DATABASE fields");
  pg->Exec(
      "CREATE TYPE mood AS ENUM ('sad', 'happy');"
      "CREATE DOMAIN price AS numeric(12,2) CHECK (VALUE >= 0);"
      "CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);"
      // FULL identity and a primary key: the key is the primary key, not every column.
      "CREATE TABLE full_pk (id int PRIMARY KEY, region text NOT NULL, note varchar(20), "
      "  amount numeric(10,2) NOT NULL, cost price, n posint, m mood, tags text[], "
      "  at timestamptz, doc jsonb, span interval);"
      "ALTER TABLE full_pk REPLICA IDENTITY FULL;"
      // FULL without a primary key: every column.
      "CREATE TABLE full_nopk (a int NOT NULL, b text);"
      "ALTER TABLE full_nopk REPLICA IDENTITY FULL;"
      // USING INDEX on a unique index that leaves the primary key out: deletes carry only
      // `code`, so it is the key.
      "CREATE TABLE by_index (id int PRIMARY KEY, code text NOT NULL);"
      "CREATE UNIQUE INDEX by_index_code ON by_index (code);"
      "ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_code;"
      "INSERT INTO full_pk VALUES (1, 'eu', 'first', 12.5, 3.25, 5, 'happy', '{a,b}', "
      "  '2024-01-31 13:45:00+00', '{\"k\": 1}', '1 day');"
      "INSERT INTO full_nopk VALUES (1, 'x');"
      "INSERT INTO by_index VALUES (1, 'c1');",
      "fields");

  postgres::PostgresSourceOptions options;
  options.name = "fields";
  options.dsn = pg->Dsn("fields");
  options.tables = {"public.*"};
  options.slot = "tributary_fields";
  options.publication = "tributary_fields";
  options.initial_snapshot = true;
  postgres::PostgresSource source(options);
  Status opened = source.Open(std::nullopt);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.ToString());

  std::map<std::string, Seen> seen;
  // The snapshot: one row of each table.
  PollUntil(source, seen, [&] {
    return seen["full_pk"].ops.size() == 1 && seen["full_nopk"].ops.size() == 1 &&
           seen["by_index"].ops.size() == 1;
  });
  for (const char* table : {"full_pk", "full_nopk", "by_index"}) {
    BOOST_TEST((seen[table].ops.front() == Op::kRead), table);
  }

  pg->Exec(
      "INSERT INTO full_pk (id, region, amount) VALUES (2, 'us', 1);"
      "UPDATE full_pk SET note = 'second' WHERE id = 2;"
      "DELETE FROM full_pk WHERE id = 1;"
      "INSERT INTO full_nopk VALUES (2, 'y');"
      "DELETE FROM by_index WHERE id = 1;",
      "fields");
  PollUntil(source, seen, [&] {
    return seen["full_pk"].ops.size() == 4 && seen["full_nopk"].ops.size() == 2 &&
           seen["by_index"].ops.size() == 2;
  });

  const TableSchema& snapshot = *seen["full_pk"].schemas.front();
  const TableSchema& stream = *seen["full_pk"].schemas.back();
  BOOST_TEST((seen["full_pk"].ops.back() == Op::kDelete));
  // Built apart (the snapshot's from the catalog, the stream's from its Relation message), yet
  // alike in everything the registry compares.
  BOOST_TEST(seen["full_pk"].schemas.front() != seen["full_pk"].schemas.back());
  RequireSameShape(snapshot, stream);
  BOOST_TEST(stream.relation_id ==
             std::stoull(pg->QueryValue("SELECT 'full_pk'::regclass::oid", "fields")));
  BOOST_TEST(Keys(stream) == std::vector<std::string>{"id"}, boost::test_tools::per_element());
  const std::vector<std::string> canonical = {
      "id=int32",
      "region=string",
      "note=string(20)",
      "amount=decimal(10,2)",
      "cost=decimal(12,2)",
      "n=int32",
      "m=string",
      "tags=array<string>",
      "at=timestamptz",
      "doc=json",
      "span=other:interval",
  };
  BOOST_TEST(Field(stream, [](const ColumnSchema& c) { return c.canonical_type; }) == canonical,
             boost::test_tools::per_element());
  const std::vector<std::string> nullable = {
      "id=0", "region=0", "note=1", "amount=0", "cost=1", "n=1",
      "m=1",  "tags=1",   "at=1",   "doc=1",    "span=1",
  };
  BOOST_TEST(Field(stream, [](const ColumnSchema& c) { return std::to_string(int{c.nullable}); }) ==
                 nullable,
             boost::test_tools::per_element());
  // A domain's values are its base type's: a posint is a JSON number, a price an exact string.
  const auto& first = seen["full_pk"].rows.front();
  BOOST_TEST((first.at("n").first == ValueKind::kRaw));
  BOOST_TEST(first.at("n").second == "5");
  BOOST_TEST((first.at("cost").first == ValueKind::kString));
  BOOST_TEST(first.at("cost").second == "3.25");

  RequireSameShape(*seen["full_nopk"].schemas.front(), *seen["full_nopk"].schemas.back());
  BOOST_TEST((Keys(*seen["full_nopk"].schemas.back()) == std::vector<std::string>{"a", "b"}));
  BOOST_TEST(seen["full_nopk"].schemas.back()->columns[0].nullable == false);
  BOOST_TEST(seen["full_nopk"].schemas.back()->columns[1].nullable == true);

  RequireSameShape(*seen["by_index"].schemas.front(), *seen["by_index"].schemas.back());
  BOOST_TEST((Keys(*seen["by_index"].schemas.back()) == std::vector<std::string>{"code"}));

  // DROP and CREATE under the same name: same columns, another relation id.
  const uint64_t old_id = seen["full_nopk"].schemas.back()->relation_id;
  pg->Exec(
      "DROP TABLE full_nopk;"
      "CREATE TABLE full_nopk (a int NOT NULL, b text);"
      "ALTER TABLE full_nopk REPLICA IDENTITY FULL;"
      "ALTER PUBLICATION tributary_fields ADD TABLE full_nopk;"
      "INSERT INTO full_nopk VALUES (3, 'z');",
      "fields");
  PollUntil(source, seen, [&] { return seen["full_nopk"].ops.size() == 3; });
  const TableSchema& recreated = *seen["full_nopk"].schemas.back();
  BOOST_TEST(recreated.relation_id != old_id);
  BOOST_TEST(recreated.relation_id ==
             std::stoull(pg->QueryValue("SELECT 'full_nopk'::regclass::oid", "fields")));

  // SET NOT NULL: a new Relation message, and the catalog says so.
  pg->Exec(
      "ALTER TABLE full_nopk ALTER COLUMN b SET NOT NULL;"
      "INSERT INTO full_nopk VALUES (4, 'w');",
      "fields");
  PollUntil(source, seen, [&] { return seen["full_nopk"].ops.size() == 4; });
  BOOST_TEST(seen["full_nopk"].schemas.back()->columns[1].nullable == false);
  source.Close();
}

}  // namespace
}  // namespace tributary::testing
