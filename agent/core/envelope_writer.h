#pragma once

#include <cstdint>
#include <string>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "agent/core/event.h"

namespace tributary {

// Serializes events as Debezium JSON envelopes (docs/events.md). Hot path: one instance per
// sink, reused for every event, RapidJSON's Writer, no per-event allocation once warm.
class EnvelopeWriter {
 public:
  EnvelopeWriter();

  // Appends one event's envelope, without a trailing newline, to `out`. `now_us` is the
  // processing time written as the envelope's ts_ms/ts_us (one clock read per batch).
  void Write(const Batch& batch, const Event& event, int64_t now_us, std::string& out);

  // Appends the event's key (the key columns as a JSON object; "null" without key columns).
  void WriteKey(const Batch& batch, const Event& event, std::string& out);

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace tributary
