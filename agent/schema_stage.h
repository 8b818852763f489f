#pragma once

#include <memory>
#include <unordered_set>
#include <vector>

#include "agent/core/table_cache.h"
#include "agent/core/transform.h"
#include "schema_registry/schema_registry.h"

namespace tributary {

// Gives every event its table's registered schema version, and puts a kSchemaChange event
// before the first row of each version the registry announces (docs/schemas.md). The registry
// persists a new version before this returns, so no row of a version can be delivered before
// the version is on disk. Runs after the other transforms, so that the schema it registers is
// the one sinks write.
class SchemaStage final : public Transform {
 public:
  explicit SchemaStage(std::unique_ptr<SchemaRegistry> registry);

  Status Apply(Batch& batch) override;
  void Restart() override { announced_.clear(); }

 private:
  // The registered version for `event`'s table; queues its announcement when due.
  Result<const TableSchema*> Registered(Batch& batch, const Event& event, bool& announce);

  std::unique_ptr<SchemaRegistry> registry_;
  // Source schema → its registered version.
  TableCache<std::shared_ptr<const TableSchema>> versions_;
  // Versions whose schema-change event this run of the source has already submitted: a replay
  // within the run need not announce them again. Forgotten on Restart, since a sink that failed
  // may have dropped the announcement; sinks skip a repeated one (file) or take it twice (Kafka).
  std::unordered_set<const TableSchema*> announced_;
  std::vector<Event> merged_;
};

}  // namespace tributary
