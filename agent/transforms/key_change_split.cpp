#include "agent/transforms/key_change_split.h"

#include <fmt/format.h>

namespace tributary {

namespace {

bool KeyChanged(const Batch& batch, const Event& event) {
  if (event.op != Op::kUpdate || !event.before || !event.after) return false;
  const std::vector<ColumnSchema>& columns = event.table->columns;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (!columns[i].key) continue;
    const Value& old_value = batch.values[*event.before + i];
    const Value& new_value = batch.values[*event.after + i];
    if (old_value.kind == ValueKind::kUnavailable || new_value.kind == ValueKind::kUnavailable) {
      continue;
    }
    if (old_value.kind != new_value.kind || batch.Text(old_value) != batch.Text(new_value)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Status KeyChangeSplit::Apply(Batch& batch) {
  bool any = false;
  for (const Event& event : batch.events) {
    if (event.op != Op::kUpdate || !event.before || !event.after) continue;
    const size_t width = event.table->columns.size();
    if (*event.before + width > batch.values.size() || *event.after + width > batch.values.size()) {
      return Status::Fatal(fmt::format("key-change split: a row image of {}.{} is out of range",
                                       event.table->schema, event.table->table));
    }
    any = any || KeyChanged(batch, event);
  }
  if (!any) return Status::Ok();  // the usual case: nothing to split

  events_.clear();
  events_.reserve(batch.events.size() + 1);
  for (const Event& event : batch.events) {
    if (!KeyChanged(batch, event)) {
      events_.push_back(event);
      continue;
    }
    Event removed = event;
    removed.op = Op::kDelete;
    removed.after.reset();
    Event created = event;
    created.op = Op::kCreate;
    created.before.reset();
    const std::string position(batch.Text(event.position));
    created.position = batch.AddValue(ValueKind::kString, position + kKeyChangeSuffix);
    events_.push_back(removed);
    events_.push_back(created);
  }
  batch.events.swap(events_);
  events_.clear();
  return Status::Ok();
}

}  // namespace tributary
