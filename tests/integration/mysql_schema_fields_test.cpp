#define BOOST_TEST_MODULE mysql_schema_fields_test
#include <fmt/format.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "connectors/mysql/mysql_source.h"
#include "tests/support/mariadb_server.h"

// What the MySQL source puts in TableSchema for the schema registry against a real MariaDB:
// canonical types, nullability and key from the TABLE_MAP (and the catalog for the snapshot),
// the DDL that made a shape, and schema-change events for tables dropped or renamed away.
// Drives MysqlSource directly: the envelope does not print these. Also how Poll's timeout cuts
// batches, which only the source itself shows.

namespace tributary::testing {
namespace {

struct Seen {
  std::shared_ptr<const TableSchema> schema;
  Op op = Op::kCreate;
  std::string position;
  std::string file;
};

void PollUntil(mysql::MysqlSource& source, std::vector<Seen>& seen,
               const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
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
      seen.push_back(Seen{*schema, event.op, std::string(batch.Text(event.position)),
                          std::string(batch.Text(event.meta.binlog_file))});
    }
  }
}

// A source capturing shop.*, opened without a checkpoint.
std::unique_ptr<mysql::MysqlSource> OpenShopSource(const MariaDbServer& server,
                                                   bool initial_snapshot) {
  mysql::MysqlSourceOptions options;
  options.name = "fields";
  options.dsn = server.Dsn();
  options.tables = {"shop.*"};
  options.server_id = 4242;
  options.initial_snapshot = initial_snapshot;
  auto source = std::make_unique<mysql::MysqlSource>(options);
  Status opened = source->Open(std::nullopt);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.ToString());
  return source;
}

std::vector<std::string> Describe(const TableSchema& schema) {
  std::vector<std::string> out;
  for (const ColumnSchema& c : schema.columns) {
    out.push_back(c.name + " " + c.canonical_type + (c.nullable ? " null" : " not null") +
                  (c.key ? " key" : ""));
  }
  return out;
}

BOOST_AUTO_TEST_CASE(canonical_types_nullability_ddl_and_drops) {
  auto server = MariaDbServer::Start();
  server->Exec(
      "CREATE DATABASE shop;"
      "CREATE DATABASE other;"
      "CREATE TABLE shop.t (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET utf8mb4 NOT NULL, "
      "  code CHAR(3) CHARACTER SET latin1, note VARCHAR(10) CHARACTER SET utf8mb3, "
      "  amount DECIMAL(10,2) NOT NULL, iu INT UNSIGNED, bu BIGINT UNSIGNED NOT NULL, "
      "  flag BIT(1), at TIMESTAMP NULL, dt DATETIME(6), raw VARBINARY(8), u UUID, ip INET6, "
      "  js JSON, e ENUM('a','b'));"
      "CREATE TABLE other.x (id INT PRIMARY KEY);"
      "INSERT INTO shop.t (id, name, amount, bu) VALUES (1, 'one', 1.5, 7);");

  std::unique_ptr<mysql::MysqlSource> opened = OpenShopSource(*server, /*initial_snapshot=*/true);
  mysql::MysqlSource& source = *opened;

  std::vector<Seen> seen;
  PollUntil(source, seen, [&] { return seen.size() == 1; });
  BOOST_TEST((seen[0].op == Op::kRead));
  server->Exec("INSERT INTO shop.t (id, name, amount, bu) VALUES (2, 'two', 2.5, 8);");
  PollUntil(source, seen, [&] { return seen.size() == 2; });
  BOOST_TEST((seen[1].op == Op::kCreate));

  const std::vector<std::string> expected = {
      "id int32 not null key",
      "name string(20) not null",
      "code string(3) null",
      "note string(10) null",
      "amount decimal(10,2) not null",
      "iu int64 null",
      "bu uint64 not null",
      "flag boolean null",
      "at timestamptz null",
      "dt timestamp null",
      "raw bytes(8) null",
      "u uuid null",
      "ip string null",
      "js string null",  // MariaDB's JSON is LONGTEXT, and its values are strings
      "e string null",
  };
  // The snapshot's schema (from information_schema) and the stream's (from the TABLE_MAP).
  for (const Seen& s : {seen[0], seen[1]}) {
    BOOST_TEST(Describe(*s.schema) == expected, boost::test_tools::per_element());
  }
  BOOST_REQUIRE(seen[0].schema->columns.size() == seen[1].schema->columns.size());
  for (size_t i = 0; i < seen[0].schema->columns.size(); ++i) {
    BOOST_TEST(seen[0].schema->columns[i].type_name == seen[1].schema->columns[i].type_name);
  }

  // A shape change carries the DDL that made it.
  const std::string alter = "ALTER TABLE shop.t ADD COLUMN extra SMALLINT UNSIGNED NOT NULL";
  server->Exec(alter +
               "; INSERT INTO shop.t (id, name, amount, bu, extra) VALUES (3, 'x', 3, 9, 1);");
  PollUntil(source, seen, [&] { return seen.size() == 3; });
  const TableSchema& altered = *seen[2].schema;
  BOOST_TEST(altered.ddl == alter);
  BOOST_REQUIRE(altered.columns.size() == expected.size() + 1);
  BOOST_TEST(Describe(altered).back() == "extra int32 not null");
  BOOST_TEST(seen[1].schema->ddl.empty());

  // RENAME: a drop of the old name, then the new name's rows with the RENAME as their DDL.
  // Tables outside `tables` (other.x) are not reported.
  server->Exec(
      "DROP TABLE other.x;"
      "USE shop; RENAME TABLE t TO t2;"
      "INSERT INTO shop.t2 (id, name, amount, bu, extra) VALUES (4, 'y', 4, 10, 1);"
      "DROP TABLE IF EXISTS t2, other.missing;");
  PollUntil(source, seen, [&] { return seen.size() == 6; });
  const Seen& renamed = seen[3];
  BOOST_TEST((renamed.op == Op::kSchemaChange));
  BOOST_TEST(renamed.schema->dropped);
  BOOST_TEST(renamed.schema->database == "shop");
  BOOST_TEST(renamed.schema->table == "t");
  BOOST_TEST(renamed.schema->connector == "mariadb");
  BOOST_TEST(renamed.schema->source == "fields");
  BOOST_TEST(renamed.schema->columns.empty());
  BOOST_TEST(renamed.schema->ddl == "RENAME TABLE t TO t2");
  BOOST_TEST(!renamed.file.empty());
  BOOST_TEST(renamed.position > seen[2].position);

  BOOST_TEST((seen[4].op == Op::kCreate));
  BOOST_TEST(seen[4].schema->table == "t2");
  BOOST_TEST(seen[4].schema->ddl == "RENAME TABLE t TO t2");
  BOOST_TEST(seen[4].position > renamed.position);

  const Seen& dropped = seen[5];
  BOOST_TEST((dropped.op == Op::kSchemaChange));
  BOOST_TEST(dropped.schema->dropped);
  BOOST_TEST(dropped.schema->table == "t2");
  BOOST_TEST(dropped.schema->ddl.starts_with("DROP TABLE IF EXISTS"));
  BOOST_TEST(dropped.schema->ddl.find("t2") != std::string::npos);
  BOOST_TEST(dropped.position > seen[4].position);

  // Nothing else: other.x and other.missing gave no event.
  std::vector<Seen> more;
  server->Exec("CREATE TABLE shop.done (id INT PRIMARY KEY); INSERT INTO shop.done VALUES (1);");
  PollUntil(source, more, [&] { return !more.empty(); });
  BOOST_TEST(more.size() == 1u);
  BOOST_TEST(more[0].schema->table == "done");
  BOOST_TEST(more[0].schema->ddl == "CREATE TABLE shop.done (id INT PRIMARY KEY)");
  source.Close();
}

// The pipeline polls with a 10 ms timeout while batches wait for acks. That timeout bounds only
// the wait for a first event: a stream that keeps coming still fills one batch for up to 100 ms,
// instead of being cut every 10 ms.
BOOST_AUTO_TEST_CASE(a_short_poll_timeout_does_not_cut_a_flowing_stream) {
  auto server = MariaDbServer::Start();
  server->Exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY);");
  std::unique_ptr<mysql::MysqlSource> opened = OpenShopSource(*server, /*initial_snapshot=*/false);
  mysql::MysqlSource& source = *opened;

  // 300 single-row transactions about 1 ms apart: far less than the source's 10 ms linger.
  constexpr size_t kRows = 300;
  std::thread writer([&] {
    server->Exec(fmt::format(
        "BEGIN NOT ATOMIC FOR i IN 1..{} DO INSERT INTO shop.t VALUES (i); DO SLEEP(0.001); "
        "END FOR; END",
        kRows));
  });
  size_t rows = 0;
  auto longest = std::chrono::steady_clock::duration::zero();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Batch batch;
  while (rows < kRows && std::chrono::steady_clock::now() < deadline) {
    batch.Clear();
    const auto start = std::chrono::steady_clock::now();
    Status status = source.Poll(batch, 1 << 20, std::chrono::milliseconds(10));
    BOOST_REQUIRE_MESSAGE(status.ok(), status.ToString());
    if (!batch.events.empty())
      longest = std::max(longest, std::chrono::steady_clock::now() - start);
    rows += batch.events.size();
  }
  writer.join();
  BOOST_TEST(rows == kRows);
  // Cut at the timeout, no Poll with events would take much over 10 ms. One stall of the
  // writer past the linger cuts a batch short, but some batch still gets to grow.
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(longest).count() >= 50);
  source.Close();
}

}  // namespace
}  // namespace tributary::testing
