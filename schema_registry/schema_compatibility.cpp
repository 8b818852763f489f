// What makes a version (the fingerprint) and which changes between versions a policy accepts.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <iterator>
#include <optional>
#include <stdexcept>

#include "schema_registry/schema_registry.h"

namespace tributary {
namespace {

// A source that has not classified a column yet still gets its type changes seen.
std::string EffectiveType(const ColumnSchema& column) {
  return column.canonical_type.empty() ? "other:" + column.type_name : column.canonical_type;
}

std::optional<int64_t> ParseNumber(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// For "base" or "base(args)": nullopt when `type` is neither, else the text between the
// parentheses (empty for the bare base).
std::optional<std::string_view> Arguments(std::string_view type, std::string_view base) {
  if (type.substr(0, base.size()) != base) return std::nullopt;
  std::string_view rest = type.substr(base.size());
  if (rest.empty()) return rest;
  if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') return std::nullopt;
  return rest.substr(1, rest.size() - 2);
}

// "string(n)" / "bytes(n)": nullopt when `type` is not `base` at all; an inner nullopt for the
// unbounded form.
std::optional<std::optional<int64_t>> Length(std::string_view type, std::string_view base) {
  auto args = Arguments(type, base);
  if (!args) return std::nullopt;
  if (args->empty()) return std::optional<int64_t>();
  auto n = ParseNumber(*args);
  if (!n) return std::nullopt;
  return std::optional<int64_t>(*n);
}

struct Decimal {
  int64_t precision = 0;
  int64_t scale = 0;
};

// "decimal(p,s)" (or "decimal(p)", scale 0); an inner nullopt for the unbounded "decimal".
std::optional<std::optional<Decimal>> ParseDecimal(std::string_view type) {
  auto args = Arguments(type, "decimal");
  if (!args) return std::nullopt;
  if (args->empty()) return std::optional<Decimal>();
  size_t comma = args->find(',');
  auto precision = ParseNumber(args->substr(0, comma));
  auto scale = comma == std::string_view::npos ? std::optional<int64_t>(0)
                                               : ParseNumber(args->substr(comma + 1));
  if (!precision || !scale || *scale > *precision) return std::nullopt;
  return std::optional<Decimal>(Decimal{*precision, *scale});
}

int IntegerRank(std::string_view type) {
  if (type == "int16") return 1;
  if (type == "int32") return 2;
  if (type == "int64") return 3;
  return 0;
}

// Decimal digits a decimal needs left of the point to hold every value of an integer type.
int64_t IntegerDigits(std::string_view type) {
  if (type == "int16") return 5;    // 32767
  if (type == "int32") return 10;   // 2147483647
  if (type == "int64") return 19;   // 9223372036854775807
  if (type == "uint64") return 20;  // 18446744073709551615
  return 0;
}

std::optional<std::string_view> ArrayElement(std::string_view type) {
  constexpr std::string_view kPrefix = "array<";
  if (type.size() <= kPrefix.size() + 1 || type.substr(0, kPrefix.size()) != kPrefix ||
      type.back() != '>') {
    return std::nullopt;
  }
  return type.substr(kPrefix.size(), type.size() - kPrefix.size() - 1);
}

// Whether every value of `from` is a value of `to` (and the two differ).
bool Widens(std::string_view from, std::string_view to) {
  if (from == to) return false;
  auto from_element = ArrayElement(from);
  auto to_element = ArrayElement(to);
  if (from_element && to_element) return Widens(*from_element, *to_element);
  if (IntegerRank(from) != 0 && IntegerRank(to) != 0) return IntegerRank(from) < IntegerRank(to);
  if (from == "float32" && to == "float64") return true;
  auto to_decimal = ParseDecimal(to);
  if (to_decimal) {
    if (int64_t digits = IntegerDigits(from); digits != 0) {
      return !*to_decimal || (*to_decimal)->precision - (*to_decimal)->scale >= digits;
    }
    if (auto from_decimal = ParseDecimal(from); from_decimal && *from_decimal) {
      if (!*to_decimal) return true;
      const Decimal& a = **from_decimal;
      const Decimal& b = **to_decimal;
      return b.precision - b.scale >= a.precision - a.scale && b.scale >= a.scale;
    }
    return false;
  }
  for (std::string_view base : {"string", "bytes"}) {
    auto from_length = Length(from, base);
    auto to_length = Length(to, base);
    if (from_length && *from_length && to_length) return !*to_length || **from_length < **to_length;
  }
  return false;
}

std::string KeyText(const TableSchema& schema) {
  std::string text = "(";
  for (const ColumnSchema& column : schema.columns) {
    if (!column.key) continue;
    if (text.size() > 1) text += ", ";
    text += column.name;
  }
  return text + ")";
}

const ColumnSchema* FindColumn(const TableSchema& schema, const std::string& name) {
  for (const ColumnSchema& column : schema.columns) {
    if (column.name == name) return &column;
  }
  return nullptr;
}

}  // namespace

std::string QualifiedTableName(const TableSchema& schema) {
  return (schema.schema.empty() ? schema.database : schema.schema) + "." + schema.table;
}

std::string SchemaFingerprint(const TableSchema& schema) {
  // The canonical text of docs/schemas.md; names are length-prefixed so that no name can
  // imitate the separators.
  std::string text = "tributary schema fingerprint v1\n";
  text += fmt::format("relation_id {}\n", schema.relation_id);
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    const ColumnSchema& column = schema.columns[i];
    const std::string type = EffectiveType(column);
    text += fmt::format("column {} {}:{} {}:{} {} {}\n", i + 1, column.name.size(), column.name,
                        type.size(), type, column.nullable ? "nullable" : "not_null",
                        column.key ? "key" : "-");
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(SHA-256) failed");  // only when OpenSSL is broken
  }
  std::string hex;
  hex.reserve(size_t{2} * length);
  for (unsigned int i = 0; i < length; ++i)
    fmt::format_to(std::back_inserter(hex), "{:02x}", digest[i]);
  return hex;
}

std::vector<std::string> CompatibilityProblems(const TableSchema& previous, const TableSchema& next,
                                               CompatibilityMode mode) {
  std::vector<std::string> problems;
  if (mode == CompatibilityMode::kNone) return problems;
  const bool backward = mode == CompatibilityMode::kBackward || mode == CompatibilityMode::kFull;
  const bool forward = mode == CompatibilityMode::kForward || mode == CompatibilityMode::kFull;
  for (const ColumnSchema& old_column : previous.columns) {
    const ColumnSchema* new_column = FindColumn(next, old_column.name);
    if (new_column == nullptr) {
      // An old row has a value the new shape has no place for; a new row lacks a value the old
      // shape requires when the column was NOT NULL.
      if (backward || (forward && !old_column.nullable)) {
        problems.push_back(fmt::format("column {} dropped", old_column.name));
      }
      continue;
    }
    const std::string old_type = EffectiveType(old_column);
    const std::string new_type = EffectiveType(*new_column);
    if (old_type != new_type) {
      if (Widens(old_type, new_type)) {
        if (forward) {
          problems.push_back(
              fmt::format("column {} widened from {} to {}", old_column.name, old_type, new_type));
        }
      } else if (Widens(new_type, old_type)) {
        if (backward) {
          problems.push_back(
              fmt::format("column {} narrowed from {} to {}", old_column.name, old_type, new_type));
        }
      } else {
        problems.push_back(
            fmt::format("column {} changed from {} to {}", old_column.name, old_type, new_type));
      }
    }
    if (old_column.nullable && !new_column->nullable && backward) {
      problems.push_back(fmt::format("column {} made NOT NULL", old_column.name));
    } else if (!old_column.nullable && new_column->nullable && forward) {
      problems.push_back(fmt::format("column {} made nullable", old_column.name));
    }
  }
  for (const ColumnSchema& new_column : next.columns) {
    if (FindColumn(previous, new_column.name) != nullptr) continue;
    if (forward || (backward && !new_column.nullable)) {
      problems.push_back(new_column.nullable
                             ? fmt::format("column {} added", new_column.name)
                             : fmt::format("column {} added as NOT NULL", new_column.name));
    }
  }
  if (std::string old_key = KeyText(previous), new_key = KeyText(next); old_key != new_key) {
    problems.push_back(fmt::format("primary key changed from {} to {}", old_key, new_key));
  }
  return problems;
}

}  // namespace tributary
