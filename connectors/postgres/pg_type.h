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
  TypeCategory element = TypeCategory::kUnmapped;  // arrays only
  uint32_t element_oid = 0;                        // arrays only
};

// The built-in types Tributary maps, and their one-dimensional array types; nullptr for any
// other OID (user-defined types, enums, domains, and built-ins we leave unmapped).
const PgType* BuiltinPgType(uint32_t oid);

}  // namespace tributary::postgres
