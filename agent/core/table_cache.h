#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "agent/core/event.h"
#include "agent/core/status.h"

namespace tributary {

// Per-table state (a sink's topic, a masking plan) keyed by the schema address events carry, so
// the hot path looks a table up by pointer, never by name. Each entry holds a reference to its
// schema, which keeps the address from being reused by another schema while the entry lives.
// Sources make a new schema on every reconnect and DDL: Prune() forgets the versions nothing
// else holds any more, and runs by itself past kPruneAbove entries.
template <typename T>
class TableCache {
 public:
  static constexpr size_t kPruneAbove = 1024;

  // The entry for `table`, which `batch` must retain (Batch::Retain). A missing entry is built
  // by `make(const std::shared_ptr<const TableSchema>&)`, which returns Result<T>. `owner`
  // names the caller in the error for a table the batch does not retain.
  template <typename Make>
  Result<T*> Get(std::string_view owner, const Batch& batch, const TableSchema* table,
                 Make&& make) {
    if (table == last_table_ && last_value_ != nullptr) return last_value_;
    auto it = entries_.find(table);
    if (it == entries_.end()) {
      auto held = std::find_if(batch.tables.begin(), batch.tables.end(),
                               [table](const auto& schema) { return schema.get() == table; });
      if (table == nullptr || held == batch.tables.end()) {
        return Status::Fatal(
            fmt::format("{}: batch {} has an event whose table is not in Batch::tables", owner,
                        batch.sequence));
      }
      if (entries_.size() >= kPruneAbove) Prune();
      Result<T> value = make(*held);
      if (!value.ok()) return value.status();
      it = entries_.emplace(table, Entry{*held, std::move(value).value()}).first;
    }
    last_table_ = table;
    last_value_ = &it->second.value;
    return last_value_;
  }

  void Prune() {
    std::erase_if(entries_, [](const auto& entry) { return entry.second.schema.use_count() == 1; });
    last_table_ = nullptr;
    last_value_ = nullptr;
  }

  void Clear() {
    entries_.clear();
    last_table_ = nullptr;
    last_value_ = nullptr;
  }

 private:
  struct Entry {
    std::shared_ptr<const TableSchema> schema;
    T value;
  };

  std::unordered_map<const TableSchema*, Entry> entries_;
  const TableSchema* last_table_ = nullptr;
  T* last_value_ = nullptr;
};

}  // namespace tributary
