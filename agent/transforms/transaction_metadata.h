#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/event.h"
#include "agent/core/transform.h"

namespace tributary {

// What `source.position` of a transaction's BEGIN and END events ends with: BEGIN takes its
// first change's position, END its last change's. '(' sorts before the '+' of a split update's
// create half and before ')', so a topic of BEGIN/END events sorts in stream order.
inline constexpr char kTransactionBeginSuffix = '(';
inline constexpr char kTransactionEndSuffix = ')';

// Debezium's transaction metadata (`provide.transaction.metadata`, docs/events.md), opt-in per
// source. Every streamed change gets the `transaction` block (id, total_order,
// data_collection_order); a BEGIN event goes before a transaction's first change and an END
// event (event_count, data_collections) after its last. As in Debezium, BEGIN is emitted with
// the first captured change, so a transaction without captured changes produces neither.
// Snapshot rows, schema changes and logical decoding messages keep no block and are not
// counted.
//
// Runs last, on the events the sinks will write. A transaction may span batches: its counters
// carry over, and END goes into the batch that holds its commit (the batch whose
// commit_position checkpoints it), so a crash can never checkpoint past a transaction whose END
// is not durable. A transaction ends at the first event of another transaction, or at the end
// of a batch the source did not mark `ends_inside_transaction`.
//
// Replays are deterministic: a source restarts from a checkpointed commit, so a replayed
// transaction is seen whole again, and its BEGIN/END carry the same text and positions as the
// first time, which the file sink's per-topic position check then skips. A change whose
// position is not after the last one seen means the source went back (it reconnected): the
// open transaction is forgotten and counted afresh.
class TransactionMetadata : public Transform {
 public:
  Status Apply(Batch& batch) override;

 private:
  struct Collection {
    std::string name;  // "schema.table" (MySQL: "db.table"), Debezium's data_collection
    uint32_t count = 0;
  };
  struct OpenTransaction {
    std::string id;
    std::shared_ptr<const TableSchema> table;  // of the first change: names the source
    std::string last_position;
    int64_t commit_ts_us = 0;
    uint32_t total = 0;
    std::vector<Collection> collections;  // in order of first appearance
  };

  // Appends the END of the open transaction to events_ and closes it.
  void End(Batch& batch);
  // The open transaction's counter for `table`.
  Collection& CollectionFor(const TableSchema& table);

  std::optional<OpenTransaction> open_;
  Value open_id_{};  // open_->id in the current batch's arena, once written there
  // The last change's position, to notice a source that went back.
  std::string last_position_;
  const TableSchema* last_table_ = nullptr;  // CollectionFor's cache, valid within a batch
  size_t last_collection_ = 0;
  std::string id_;             // scratch: the current event's transaction id
  std::string position_;       // scratch: the current event's position
  std::vector<Event> events_;  // the batch's new events, reused
};

}  // namespace tributary
