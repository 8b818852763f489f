#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/core/event.h"

namespace tributary {

// Serializes events as Debezium JSON envelopes (docs/events.md). Hot path: one instance per
// sink, reused for every event, appending straight to the caller's buffer with no allocation
// beyond its growth. The envelope's shape is fixed, so it is written directly rather than through
// RapidJSON's Writer, whose per-character bookkeeping cost more than half the time (measured).
class EnvelopeWriter {
 public:
  EnvelopeWriter();

  // Appends one event's envelope, without a trailing newline, to `out`. `now_us` is the
  // processing time written as the envelope's ts_ms/ts_us (one clock read per batch).
  void Write(const Batch& batch, const Event& event, int64_t now_us, std::string& out);

  // Appends the event's key (the key columns as a JSON object; "null" without key columns).
  void WriteKey(const Batch& batch, const Event& event, std::string& out);

 private:
  // Writes the row image at batch.values[first], one value per column, as an object; with
  // `keys_only`, just the key columns.
  void WriteRow(const Batch& batch, const TableSchema& table, uint32_t first, bool keys_only,
                std::string& out);
  void WriteSource(const Batch& batch, const Event& event, std::string& out);
};

// Appends `text` as a quoted JSON string: escapes '"', '\' and control characters (as RapidJSON
// does), passes UTF-8 through unchanged, so the result never contains a raw newline.
void AppendJsonString(std::string_view text, std::string& out);

}  // namespace tributary
