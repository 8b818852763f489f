#include "connectors/postgres/pg_type.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace tributary::postgres {
namespace {

PgType Scalar(uint32_t oid, const char* name, TypeCategory category) {
  return PgType{.oid = oid, .name = name, .category = category};
}

PgType ArrayOf(uint32_t oid, const char* name, TypeCategory element, uint32_t element_oid) {
  return PgType{.oid = oid,
                .name = name,
                .category = TypeCategory::kArray,
                .element = element,
                .element_oid = element_oid};
}

// varchar, bpchar and numeric store their modifier offset by VARHDRSZ.
constexpr int32_t kVarHeaderSize = 4;

std::string OtherType(std::string_view name) {
  constexpr std::string_view kCatalog = "pg_catalog.";
  if (name.starts_with(kCatalog)) name.remove_prefix(kCatalog.size());
  return fmt::format("other:{}", name);
}

}  // namespace

const PgType* BuiltinPgType(uint32_t oid) {
  using C = TypeCategory;
  // Sorted by OID. OIDs are fixed in PostgreSQL's catalog (pg_type.dat); checked on PG 15.
  static const std::array<PgType, 42> kBuiltinTypes = {
      Scalar(16, "bool", C::kBool),
      Scalar(17, "bytea", C::kBytea),
      Scalar(18, "char", C::kText),
      Scalar(19, "name", C::kText),
      Scalar(20, "int8", C::kInteger),
      Scalar(21, "int2", C::kInteger),
      Scalar(23, "int4", C::kInteger),
      Scalar(25, "text", C::kText),
      Scalar(26, "oid", C::kInteger),
      Scalar(114, "json", C::kJson),
      ArrayOf(199, "_json", C::kJson, 114),
      Scalar(700, "float4", C::kFloat),
      Scalar(701, "float8", C::kFloat),
      ArrayOf(1000, "_bool", C::kBool, 16),
      ArrayOf(1001, "_bytea", C::kBytea, 17),
      ArrayOf(1002, "_char", C::kText, 18),
      ArrayOf(1003, "_name", C::kText, 19),
      ArrayOf(1005, "_int2", C::kInteger, 21),
      ArrayOf(1007, "_int4", C::kInteger, 23),
      ArrayOf(1009, "_text", C::kText, 25),
      ArrayOf(1014, "_bpchar", C::kText, 1042),
      ArrayOf(1015, "_varchar", C::kText, 1043),
      ArrayOf(1016, "_int8", C::kInteger, 20),
      ArrayOf(1021, "_float4", C::kFloat, 700),
      ArrayOf(1022, "_float8", C::kFloat, 701),
      ArrayOf(1028, "_oid", C::kInteger, 26),
      Scalar(1042, "bpchar", C::kText),
      Scalar(1043, "varchar", C::kText),
      Scalar(1082, "date", C::kDate),
      Scalar(1083, "time", C::kTime),
      Scalar(1114, "timestamp", C::kTimestamp),
      ArrayOf(1115, "_timestamp", C::kTimestamp, 1114),
      ArrayOf(1182, "_date", C::kDate, 1082),
      ArrayOf(1183, "_time", C::kTime, 1083),
      Scalar(1184, "timestamptz", C::kTimestampTz),
      ArrayOf(1185, "_timestamptz", C::kTimestampTz, 1184),
      ArrayOf(1231, "_numeric", C::kNumeric, 1700),
      Scalar(1700, "numeric", C::kNumeric),
      Scalar(2950, "uuid", C::kUuid),
      ArrayOf(2951, "_uuid", C::kUuid, 2950),
      Scalar(3802, "jsonb", C::kJson),
      ArrayOf(3807, "_jsonb", C::kJson, 3802),
  };
  const auto* it =
      std::lower_bound(kBuiltinTypes.begin(), kBuiltinTypes.end(), oid,
                       [](const PgType& type, uint32_t key) { return type.oid < key; });
  if (it == kBuiltinTypes.end() || it->oid != oid) return nullptr;
  return &*it;
}

std::string CanonicalType(const PgType& type, int32_t type_modifier) {
  // A domain is described by the type underneath, under the domain's modifier.
  const uint32_t oid = type.base_oid != 0 ? type.base_oid : type.oid;
  const int32_t modifier = type.base_oid != 0 ? type.base_modifier : type_modifier;
  switch (type.category) {
    case TypeCategory::kBool:
      return "boolean";
    case TypeCategory::kInteger:
      switch (oid) {
        case 21:
          return "int16";
        case 23:
          return "int32";
        default:
          return "int64";  // int8, and oid (unsigned 32 bits)
      }
    case TypeCategory::kFloat:
      return oid == 700 ? "float32" : "float64";
    case TypeCategory::kNumeric: {
      if (modifier < kVarHeaderSize) return "decimal";
      const int32_t packed = modifier - kVarHeaderSize;
      const int32_t precision = (packed >> 16) & 0xFFFF;
      // The scale is an 11-bit signed field: PostgreSQL 15 allows negative scales.
      const int32_t scale = ((packed & 0x7FF) ^ 1024) - 1024;
      return fmt::format("decimal({},{})", precision, scale);
    }
    case TypeCategory::kText:
      // varchar(n) and char(n) count characters; "char" (1 byte) and name are plain strings.
      if ((oid == 1042 || oid == 1043) && modifier >= kVarHeaderSize) {
        return fmt::format("string({})", modifier - kVarHeaderSize);
      }
      return "string";
    case TypeCategory::kEnum:
      return "string";
    case TypeCategory::kBytea:
      return "bytes";
    case TypeCategory::kDate:
      return "date";
    case TypeCategory::kTime:
      return "time";
    case TypeCategory::kTimestamp:
      return "timestamp";
    case TypeCategory::kTimestampTz:
      return "timestamptz";
    case TypeCategory::kUuid:
      return "uuid";
    case TypeCategory::kJson:
      return "json";
    case TypeCategory::kArray: {
      // An array column's modifier is its elements' (varchar(10)[] has 14).
      if (type.element == TypeCategory::kEnum) return "array<string>";
      const PgType* element = BuiltinPgType(type.element_oid);
      if (element == nullptr || type.element == TypeCategory::kUnmapped) {
        // Elements written as their text, as the element type is on its own.
        if (type.element_name.empty()) return OtherType(type.name);
        return fmt::format("array<{}>", OtherType(type.element_name));
      }
      return fmt::format(
          "array<{}>",
          CanonicalType(*element, type.element_modifier != -1 ? type.element_modifier : modifier));
    }
    case TypeCategory::kUnmapped:
      break;
  }
  return OtherType(type.name);
}

}  // namespace tributary::postgres
