#include "tests/support/pg_agent.h"

#include <fmt/format.h>

#include <boost/test/unit_test.hpp>
#include <vector>

namespace tributary::testing {

std::unique_ptr<AgentProcess> StartRunAgent(const std::filesystem::path& dir,
                                            const std::filesystem::path& config, int n) {
  return std::make_unique<AgentProcess>(
      std::vector<std::string>{"run", "--config", config.string()},
      dir / fmt::format("agent{}.log", n));
}

void WaitForSlotActive(const PgServer& pg, const AgentProcess& agent, const std::string& slot) {
  BOOST_REQUIRE_MESSAGE(
      WaitFor(
          [&] {
            // A slot is active while CREATE_REPLICATION_SLOT still looks for its consistent
            // point; a transaction that begins then may commit before it and never be sent.
            return pg.QueryValue(fmt::format("SELECT count(*) FROM pg_replication_slots WHERE "
                                             "active AND confirmed_flush_lsn IS NOT NULL AND "
                                             "slot_name = '{}'",
                                             slot)) == "1";
          },
          std::chrono::seconds(30)),
      "agent did not start streaming from slot " << slot << ":\n"
                                                 << LogOf{agent});
}

}  // namespace tributary::testing
