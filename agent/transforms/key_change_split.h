#pragma once

#include <vector>

#include "agent/core/event.h"
#include "agent/core/transform.h"

namespace tributary {

// What `source.position` of the create half of a split update ends with.
inline constexpr char kKeyChangeSuffix = '+';

// An UPDATE that changes the row's key becomes, as in Debezium, a delete of the old key (its
// `before`) followed by a create of the new one (its `after`), so that keyed consumers — a
// compacted Kafka topic, a warehouse MERGE on the key — retire the old key instead of keeping it
// for ever. The key is the columns marked `key`; it changed when a key column's value differs
// between the two images (a value the source did not send counts as unchanged). PostgreSQL sends
// the old key whenever it changes, under any replica identity; MySQL's full before image always
// has it. The delete keeps the update's position and the create gets it with kKeyChangeSuffix
// appended, which sorts after the delete and before the next change. Both share the update's
// row images, so nothing is copied.
class KeyChangeSplit : public Transform {
 public:
  // Fatal only when an event's row images lie outside the batch's values.
  Status Apply(Batch& batch) override;

 private:
  std::vector<Event> events_;  // the split batch's events, reused
};

}  // namespace tributary
