#include "tests/support/mysql_config.h"

#include <fmt/format.h>

#include <boost/test/unit_test.hpp>

#include "tests/support/agent_config.h"

namespace tributary::testing {

std::filesystem::path WriteMysqlFileConfig(const std::filesystem::path& dir,
                                           const MariaDbServer& server, const std::string& source,
                                           const std::string& tables_yaml,
                                           const std::string& extra_source_yaml) {
  return WriteFileSinkConfig(dir, source,
                             fmt::format("    type: mysql\n    dsn: \"{}\"\n    tables: {}\n"
                                         "    server_id: 4242\n    heartbeat_interval_ms: 1000\n",
                                         server.Dsn(), tables_yaml),
                             extra_source_yaml);
}

std::unique_ptr<AgentProcess> StartStreamingMysqlAgent(const std::filesystem::path& config,
                                                       const std::filesystem::path& log) {
  auto agent = std::make_unique<AgentProcess>(
      std::vector<std::string>{"run", "--config", config.string()}, log);
  bool streaming = WaitFor(
      [&] {
        return agent->Log().find("mysql: Streaming") != std::string::npos || !agent->running();
      },
      std::chrono::seconds(30));
  BOOST_REQUIRE_MESSAGE(streaming && agent->running(), agent->Log());
  return agent;
}

const char* const kMysqlTypesTable = R"(CREATE TABLE shop.types (
  id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT,
  mu MEDIUMINT UNSIGNED, i4 INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  de DECIMAL(30,10), de0 DECIMAL(5,0), fl FLOAT, db DOUBLE, b1 BIT(1), b10 BIT(10), yr YEAR,
  dt DATE, tm TIME, tm3 TIME(3), tm6 TIME(6), dtm DATETIME, dtm6 DATETIME(6),
  ts TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, c5 CHAR(5) CHARACTER SET utf8mb4,
  vc VARCHAR(300) CHARACTER SET utf8mb4, l1 VARCHAR(10) CHARACTER SET latin1,
  tx MEDIUMTEXT CHARACTER SET utf8mb4, lt LONGTEXT CHARACTER SET utf8mb3, bn BINARY(4),
  vb VARBINARY(300), bl BLOB, en ENUM('small','medium','large'), st SET('a','b','c'),
  js JSON, g GEOMETRY, u UUID, ip INET6))";

}  // namespace tributary::testing
