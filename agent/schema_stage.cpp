#include "agent/schema_stage.h"

#include <fmt/format.h>

namespace tributary {

SchemaStage::SchemaStage(std::unique_ptr<SchemaRegistry> registry)
    : registry_(std::move(registry)) {}

Result<const TableSchema*> SchemaStage::Registered(Batch& batch, const Event& event,
                                                   bool& announce) {
  announce = false;
  const auto resolve = [&](const std::shared_ptr<const TableSchema>& observed)
      -> Result<std::shared_ptr<const TableSchema>> {
    ASSIGN_OR_RETURN(
        SchemaRegistry::Resolution resolution,
        registry_->Resolve(*observed, batch.Text(event.position), event.meta.commit_ts_us / 1000));
    announce = resolution.announce;
    return std::move(resolution.schema);
  };
  ASSIGN_OR_RETURN(std::shared_ptr<const TableSchema> * registered,
                   versions_.Get("schema registry", batch, event.table, resolve));
  announce = announce && announced_.insert(registered->get()).second;
  return batch.Retain(*registered);
}

Status SchemaStage::Apply(Batch& batch) {
  // Most batches announce nothing: their events are rewritten in place, and only a batch with
  // an announcement is copied into a merged list.
  bool merging = false;
  for (size_t i = 0; i < batch.events.size(); ++i) {
    Event& event = batch.events[i];
    bool announce = false;
    if (event.op == Op::kSchemaChange) {
      if (event.table == nullptr || !event.table->dropped) {
        return Status::Fatal("schema registry: a source emitted a schema change other than a drop");
      }
      ASSIGN_OR_RETURN(std::shared_ptr<const TableSchema> drop,
                       registry_->RecordDrop(*event.table, batch.Text(event.position),
                                             event.meta.commit_ts_us / 1000));
      event.table = batch.Retain(drop);
      // A table created again under the same name may come back with a schema the source
      // reuses: forget every mapping so that it is resolved afresh.
      versions_.Clear();
    } else if (event.op != Op::kMessage) {  // a message's pseudo-table has no schema
      ASSIGN_OR_RETURN(event.table, Registered(batch, event, announce));
    }
    if (announce && !merging) {
      merging = true;
      merged_.assign(batch.events.begin(), batch.events.begin() + static_cast<ptrdiff_t>(i));
    }
    if (!merging) continue;
    if (announce) {
      Event change;
      change.op = Op::kSchemaChange;
      change.table = event.table;
      change.meta = event.meta;
      change.position = event.position;
      merged_.push_back(change);
    }
    merged_.push_back(event);
  }
  if (merging) batch.events.swap(merged_);
  return Status::Ok();
}

}  // namespace tributary
