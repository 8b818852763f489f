#pragma once

#include <string_view>

#include "agent/core/event.h"
#include "agent/core/status.h"
#include "connectors/postgres/pg_type.h"

namespace tributary::postgres {

// Appends the canonical form (docs/types.md) of `text`, a value in PostgreSQL's text output
// format, to batch.arena and returns where it is. The session must use DateStyle=ISO,
// TimeZone=UTC, extra_float_digits=3, bytea_output=hex, IntervalStyle=iso_8601 and
// client_encoding=UTF8. Text that does not parse as `type` is CorruptData naming the type, never
// the value; the arena is then left as it was. Hot path: no allocation beyond arena growth.
Result<Value> AppendCanonical(const PgType& type, std::string_view text, Batch& batch);

}  // namespace tributary::postgres
