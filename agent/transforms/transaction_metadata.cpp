#include "agent/transforms/transaction_metadata.h"

#include <fmt/format.h>

#include <algorithm>

#include "agent/core/envelope_writer.h"
#include "agent/core/text_append.h"

namespace tributary {
namespace {

// Debezium's transaction id of `event`, into `id`; false when it has none. PostgreSQL:
// "<txId>:<commit LSN>" (the xid alone wraps around); MySQL and MariaDB: the GTID.
bool TransactionId(const Batch& batch, const Event& event, std::string& id) {
  id.clear();
  if (event.table->connector == "postgresql") {
    if (event.meta.txid == 0) return false;
    AppendNumber(event.meta.txid, id);
    id.push_back(':');
    AppendNumber(event.meta.commit_lsn, id);
    return true;
  }
  if (event.meta.gtid.kind == ValueKind::kNull) return false;
  id.append(batch.Text(event.meta.gtid));
  return true;
}

// The batch's owning pointer to `table`; events point at schemas the batch retains.
std::shared_ptr<const TableSchema> Owner(const Batch& batch, const TableSchema* table) {
  for (auto it = batch.tables.rbegin(); it != batch.tables.rend(); ++it) {
    if (it->get() == table) return *it;
  }
  return nullptr;
}

}  // namespace

TransactionMetadata::Collection& TransactionMetadata::CollectionFor(const TableSchema& table) {
  if (&table == last_table_) return open_->collections[last_collection_];
  const std::string name =
      (table.schema.empty() ? table.database : table.schema) + "." + table.table;
  std::vector<Collection>& collections = open_->collections;
  auto it = std::find_if(collections.begin(), collections.end(),
                         [&](const Collection& c) { return c.name == name; });
  if (it == collections.end()) it = collections.insert(collections.end(), Collection{name, 0});
  last_table_ = &table;
  last_collection_ = static_cast<size_t>(it - collections.begin());
  return *it;
}

void TransactionMetadata::End(Batch& batch) {
  if (open_id_.kind == ValueKind::kNull) open_id_ = batch.AddValue(ValueKind::kString, open_->id);
  Event end;
  end.op = Op::kTransactionEnd;
  end.table = batch.Retain(open_->table);
  end.meta.commit_ts_us = open_->commit_ts_us;
  end.position = batch.AddValue(ValueKind::kString, open_->last_position + kTransactionEndSuffix);
  end.transaction = TransactionMeta{open_id_, open_->total, 0};
  std::string collections = "[";
  for (const Collection& collection : open_->collections) {
    if (collections.size() > 1) collections.push_back(',');
    collections.append("{\"data_collection\":");
    AppendJsonString(collection.name, collections);
    collections.append(",\"event_count\":");
    AppendNumber(collection.count, collections);
    collections.push_back('}');
  }
  collections.push_back(']');
  batch.values.push_back(batch.AddValue(ValueKind::kRaw, collections));
  end.after = static_cast<uint32_t>(batch.values.size() - 1);
  events_.push_back(end);
  open_.reset();
  open_id_ = Value{};
  last_table_ = nullptr;
}

Status TransactionMetadata::Apply(Batch& batch) {
  open_id_ = Value{};
  last_table_ = nullptr;
  events_.clear();
  events_.reserve(batch.events.size() + 2);
  for (Event& event : batch.events) {
    // Messages are not counted, as Debezium does not (docs/events.md).
    const bool change = event.op != Op::kSchemaChange && event.op != Op::kTransactionBegin &&
                        event.op != Op::kTransactionEnd && event.op != Op::kMessage &&
                        event.table != nullptr;
    if (!change || !TransactionId(batch, event, id_)) {
      events_.push_back(event);
      continue;
    }
    // A copy: adding to the arena below may move it.
    position_.assign(batch.Text(event.position));
    const bool streamed = event.meta.snapshot == SnapshotMark::kFalse;
    if (streamed) {
      if (!last_position_.empty() && position_ <= last_position_) {
        // The source went back to a checkpoint: what is open is replayed from its start.
        open_.reset();
        open_id_ = Value{};
        last_table_ = nullptr;
      }
      last_position_ = position_;
    }
    // Any change of another transaction, snapshot rows included, means the open one is over.
    if (open_ && open_->id != id_) End(batch);
    if (!streamed) {
      events_.push_back(event);
      continue;
    }
    if (!open_) {
      std::shared_ptr<const TableSchema> owner = Owner(batch, event.table);
      if (owner == nullptr) {
        return Status::Fatal(
            fmt::format("transaction metadata: a change of {} has no schema in "
                        "its batch",
                        event.table->table));
      }
      open_.emplace(OpenTransaction{id_, std::move(owner), {}, event.meta.commit_ts_us, 0, {}});
      open_id_ = batch.AddValue(ValueKind::kString, open_->id);
      Event begin;
      begin.op = Op::kTransactionBegin;
      begin.table = event.table;
      begin.meta.commit_ts_us = event.meta.commit_ts_us;
      begin.position = batch.AddValue(ValueKind::kString, position_ + kTransactionBeginSuffix);
      begin.transaction = TransactionMeta{open_id_, 0, 0};
      events_.push_back(begin);
    }
    if (open_id_.kind == ValueKind::kNull) {
      open_id_ = batch.AddValue(ValueKind::kString, open_->id);
    }
    Collection& collection = CollectionFor(*event.table);
    ++collection.count;
    ++open_->total;
    event.transaction = TransactionMeta{open_id_, open_->total, collection.count};
    open_->last_position = position_;
    events_.push_back(event);
  }
  if (open_ && !batch.ends_inside_transaction) End(batch);
  batch.events.swap(events_);
  events_.clear();
  return Status::Ok();
}

}  // namespace tributary
