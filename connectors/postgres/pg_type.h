#pragma once

#include <cstdint>
#include <string>

namespace tributary::postgres {

// How a PostgreSQL type's text output is normalized (docs/types.md).
enum class TypeCategory : uint8_t {
  kBool,
  kInteger,
  kFloat,
  kNumeric,
  kText,
  kBytea,
  kDate,
  kTime,
  kTimestamp,
  kTimestampTz,
  kUuid,
  kJson,
  kEnum,
  kArray,
  kUnmapped,
};

struct PgType {
  uint32_t oid = 0;
  std::string name;  // what errors name: "int4", "_text", "public.mood"
  TypeCategory category = TypeCategory::kUnmapped;
  // Arrays only: how elements are encoded; the element type's OID (a domain element's base
  // type's) and name; the domain element's modifier for its base type; and the character between
  // elements (pg_type.typdelim: ';' for box, ',' for the rest).
  TypeCategory element = TypeCategory::kUnmapped;
  uint32_t element_oid = 0;
  std::string element_name = {};
  int32_t element_modifier = -1;
  char delimiter = ',';
  // Domains: the type underneath (itself no domain), whose values and canonical type the domain
  // shares, and the domain's type modifier for it (pg_type.typtypmod). 0 for other types.
  uint32_t base_oid = 0;
  int32_t base_modifier = -1;
};

// The built-in types Tributary maps, and their one-dimensional array types; nullptr for any
// other OID (user-defined types, enums, domains, and built-ins we leave unmapped).
const PgType* BuiltinPgType(uint32_t oid);

// The engine-neutral type the schema registry compares (ColumnSchema::canonical_type,
// docs/types.md) of a column of `type` with `type_modifier` (pg_attribute.atttypmod). It follows
// how values are encoded: a type written as its text is "other:<type name>".
std::string CanonicalType(const PgType& type, int32_t type_modifier);

}  // namespace tributary::postgres
