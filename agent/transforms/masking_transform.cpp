#include "agent/transforms/masking_transform.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <utility>

#include "agent/transforms/hmac_sha256.h"

namespace tributary {
namespace {

using Action = MaskingTransform::Action;
using Detect = MaskingTransform::Detect;

// Part of the fingerprint: bump when the detection patterns or the actions' output change, so
// that events produced by a different masking behavior carry a different policy.
constexpr std::string_view kPolicyFormat = "tributary-masking-policy/1";
constexpr std::string_view kKeyLabel = "tributary-masking-policy";
constexpr size_t kMinHashKeyBytes = 16;
constexpr uint64_t kPruneEveryBatches = 4096;  // forget plans of schemas nothing holds
constexpr uint8_t kAllPatterns = (1u << kPiiPatternCount) - 1;

struct ActionName {
  std::string_view name;
  Action action;
};
constexpr std::array<ActionName, 6> kActions = {{{"hash", Action::kHash},
                                                 {"redact", Action::kRedact},
                                                 {"null", Action::kNull},
                                                 {"keep_last", Action::kKeepLast},
                                                 {"truncate", Action::kTruncate},
                                                 {"email", Action::kEmail}}};

std::string_view ActionText(Action action) {
  for (const ActionName& a : kActions) {
    if (a.action == action) return a.name;
  }
  return "none";
}

std::string_view DetectText(Detect detect) {
  switch (detect) {
    case Detect::kOff:
      return "off";
    case Detect::kWarn:
      return "warn";
    case Detect::kMask:
      return "mask";
  }
  return "off";
}

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

size_t CountCodePoints(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += IsContinuation(c) ? 0 : 1;
  return n;
}

// Byte offset where code point `k` (0-based) starts; text.size() when there are not that many.
size_t CodePointOffset(std::string_view text, size_t k) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (IsContinuation(text[i])) continue;
    if (seen == k) return i;
    ++seen;
  }
  return text.size();
}

// Types that hold no free text (numbers, times, identifiers, binary) or are written as JSON
// rather than a string (json, arrays): detection skips them at compile time. Anything else,
// unknown types included, is scanned whenever its value is a string.
bool ScannableType(std::string_view type_name) {
  static constexpr std::string_view kNotText[] = {
      "bool",     "boolean",    "int2",      "int4", "int8",   "oid",    "smallint",  "integer",
      "bigint",   "tinyint",    "mediumint", "int",  "float4", "float8", "float",     "double",
      "real",     "numeric",    "decimal",   "date", "time",   "timetz", "timestamp", "timestamptz",
      "datetime", "year",       "interval",  "uuid", "bytea",  "binary", "varbinary", "tinyblob",
      "blob",     "mediumblob", "longblob",  "bit",  "varbit", "inet",   "cidr",      "macaddr",
      "macaddr8", "json",       "jsonb"};
  if (type_name.starts_with('_')) return false;  // PostgreSQL arrays
  return std::find(std::begin(kNotText), std::end(kNotText), type_name) == std::end(kNotText);
}

// Grows the arena by `size` bytes for a value's new text; the offset of the new bytes.
Result<uint32_t> Grow(Batch& batch, size_t size) {
  const size_t offset = batch.arena.size();
  if (offset + size > std::numeric_limits<uint32_t>::max()) {
    return Status::Fatal("masking: batch arena exceeds 4 GiB");
  }
  batch.arena.resize(offset + size);
  return static_cast<uint32_t>(offset);
}

}  // namespace

MaskingTransform::~MaskingTransform() = default;

Result<std::unique_ptr<MaskingTransform>> MaskingTransform::Create(const MaskingConfig& config) {
  std::unique_ptr<MaskingTransform> t(new MaskingTransform());
  std::vector<std::string> errors;
  if (config.detect == "off") {
    t->detect_ = Detect::kOff;
  } else if (config.detect == "warn") {
    t->detect_ = Detect::kWarn;
  } else if (config.detect == "mask") {
    t->detect_ = Detect::kMask;
  } else {
    errors.push_back("masking.detect: must be off, warn or mask");
  }
  for (size_t i = 0; i < config.rules.size(); ++i) {
    const MaskingRule& rule = config.rules[i];
    const std::string path = fmt::format("masking.rules[{}]", i);
    Rule compiled;
    compiled.columns = rule.columns;
    if (rule.columns.empty()) errors.push_back(path + ".columns: required");
    const auto* found = std::find_if(kActions.begin(), kActions.end(),
                                     [&](const ActionName& a) { return a.name == rule.action; });
    if (found == kActions.end()) {
      errors.push_back(path + ".action: must be hash, redact, null, keep_last, truncate or email");
      continue;
    }
    compiled.action = found->action;
    if (compiled.action == Action::kKeepLast || compiled.action == Action::kTruncate) {
      if (rule.n < 0 || rule.n > std::numeric_limits<uint32_t>::max()) {
        errors.push_back(path + ".n: must be between 0 and 4294967295 for " + rule.action);
      } else {
        compiled.n = static_cast<uint32_t>(rule.n);
      }
    } else if (rule.n != 0) {
      errors.push_back(path + ".n: only keep_last and truncate take n");
    }
    if (compiled.action == Action::kHash) {
      if (config.key.empty()) {
        errors.push_back(path + ": action hash needs masking.key");
      } else if (config.key.size() < kMinHashKeyBytes) {
        errors.push_back(path + ": action hash needs a masking.key of at least 16 bytes");
      }
    }
    t->rules_.push_back(std::move(compiled));
  }
  if (!errors.empty()) {
    std::string message;
    for (const std::string& e : errors) {
      if (!message.empty()) message.push_back('\n');
      message += e;
    }
    return Status::InvalidConfig(std::move(message));
  }

  std::string key_id = "-";
  if (!config.key.empty()) {
    t->hmac_ = std::make_unique<HmacSha256>(config.key);
    const HmacSha256::Digest id = t->hmac_->Compute(kKeyLabel);
    key_id = ToHex(id.data(), id.size());
  }
  if (t->detect_ != Detect::kOff) t->detector_ = std::make_unique<PiiDetector>();

  // The canonical description hashed into the fingerprint (docs/masking.md).
  std::string description(kPolicyFormat);
  description += "\ndetect=";
  description += DetectText(t->detect_);
  description += "\nmarker=";
  description += kRedactedMarker;
  for (const Rule& rule : t->rules_) {
    description += fmt::format("\nrule={}:{} {} {}", rule.columns.size(), rule.columns,
                               ActionText(rule.action), rule.n);
  }
  description += "\nkey=" + key_id + "\n";
  const HmacSha256::Digest digest = Sha256(description);
  t->fingerprint_ = ToHex(digest.data(), 8);

  t->matches_.reserve(16);
  spdlog::debug("masking: Policy compiled fingerprint={} rules={} detect={}", t->fingerprint_,
                t->rules_.size(), DetectText(t->detect_));
  return t;
}

Status MaskingTransform::Apply(Batch& batch) {
  batch.masking_policy = &fingerprint_;
  if (++batches_ % kPruneEveryBatches == 0) plans_.Prune();
  // Events of one table come in runs: the plan and its masked schema are looked up once a run.
  const TableSchema* run_table = nullptr;
  Plan* plan = nullptr;
  const TableSchema* masked_table = nullptr;
  for (Event& event : batch.events) {
    // A schema change has no row images to mask; a message is not a table's (docs/masking.md).
    if (event.table == nullptr || event.op == Op::kSchemaChange || event.op == Op::kMessage) {
      continue;
    }
    if (event.table != run_table) {
      ASSIGN_OR_RETURN(plan, plans_.Get("masking", batch, event.table,
                                        [this](const std::shared_ptr<const TableSchema>& table) {
                                          return Result<Plan>(Compile(*table));
                                        }));
      run_table = event.table;
      masked_table = plan->masked ? batch.Retain(plan->masked) : nullptr;
    }
    if (plan->steps.empty()) continue;
    const size_t width = event.table->columns.size();
    for (const std::optional<uint32_t>& image : {event.before, event.after}) {
      if (!image) continue;
      if (static_cast<size_t>(*image) + width > batch.values.size()) {
        return Status::Fatal("masking: row image out of range");
      }
      RETURN_IF_ERROR(MaskRow(batch, *plan, *image));
      if (event.before == event.after) break;  // one image shared by both: mask it once
    }
    if (masked_table != nullptr) event.table = masked_table;
  }
  return Status::Ok();
}

MaskingTransform::Plan MaskingTransform::Compile(const TableSchema& table) {
  Plan plan;
  plan.table = &table;
  plan.qualified = (table.schema.empty() ? table.database : table.schema) + "." + table.table;
  plan.warned.assign(table.columns.size(), 0);
  size_t masked = 0;
  size_t scanned = 0;
  std::string name;
  for (size_t i = 0; i < table.columns.size(); ++i) {
    const ColumnSchema& column = table.columns[i];
    name = plan.qualified + "." + column.name;
    const auto rule = std::find_if(rules_.begin(), rules_.end(), [&](const Rule& r) {
      return fnmatch(r.columns.c_str(), name.c_str(), FNM_CASEFOLD) == 0;
    });
    if (rule != rules_.end()) {
      plan.steps.push_back({static_cast<uint32_t>(i), rule->action, rule->n});
      ++masked;
      continue;
    }
    if (detect_ == Detect::kOff) continue;
    if (const char* label = SuspiciousColumnName(column.name); label != nullptr) {
      if (warned_.insert(name + "/name").second) {
        spdlog::warn(
            "masking: Possible PII column not covered by a rule table={} column={} "
            "pattern={}",
            plan.qualified, column.name, label);
      }
    }
    if (ScannableType(column.type_name)) {
      plan.steps.push_back({static_cast<uint32_t>(i), Action::kNone, 0});
      ++scanned;
    }
  }
  if (masked > 0) {
    auto shape = std::make_shared<TableSchema>(table);
    for (const Step& step : plan.steps) {
      ColumnSchema& column = shape->columns[step.column];
      if (step.action == Action::kNull) {
        column.nullable = true;
      } else if (step.action != Action::kNone) {
        column.canonical_type = "string";
      }
    }
    plan.masked = std::move(shape);
  }
  spdlog::debug("masking: Compiled plan table={} masked_columns={} scanned_columns={}",
                plan.qualified, masked, scanned);
  return plan;
}

Status MaskingTransform::MaskRow(Batch& batch, Plan& plan, uint32_t first) {
  for (const Step& step : plan.steps) {
    Value& value = batch.values[first + step.column];
    if (value.kind == ValueKind::kNull || value.kind == ValueKind::kUnavailable) continue;
    if (step.action != Action::kNone) {
      RETURN_IF_ERROR(MaskValue(batch, step, value));
    } else if (value.kind == ValueKind::kString && value.length >= PiiDetector::kMinLength) {
      RETURN_IF_ERROR(DetectValue(batch, plan, step, value));
    }
  }
  return Status::Ok();
}

Status MaskingTransform::MaskValue(Batch& batch, const Step& step, Value& value) {
  const std::string_view text = batch.Text(value);
  const uint32_t source = value.offset;
  switch (step.action) {
    case Action::kNone:
      return Status::Ok();
    case Action::kNull:
      value = Value{0, 0, ValueKind::kNull};
      return Status::Ok();
    case Action::kHash: {
      char hex[64];
      hmac_->ComputeHex(text, hex);
      ASSIGN_OR_RETURN(const uint32_t offset, Grow(batch, sizeof(hex)));
      std::memcpy(batch.arena.data() + offset, hex, sizeof(hex));
      value = Value{offset, sizeof(hex), ValueKind::kString};
      return Status::Ok();
    }
    case Action::kRedact: {
      ASSIGN_OR_RETURN(const uint32_t offset, Grow(batch, kRedactedMarker.size()));
      std::memcpy(batch.arena.data() + offset, kRedactedMarker.data(), kRedactedMarker.size());
      value = Value{offset, static_cast<uint32_t>(kRedactedMarker.size()), ValueKind::kString};
      return Status::Ok();
    }
    case Action::kTruncate:
      // A prefix of the same bytes: nothing to copy.
      value.length = static_cast<uint32_t>(CodePointOffset(text, step.n));
      value.kind = ValueKind::kString;
      return Status::Ok();
    case Action::kKeepLast:
    case Action::kEmail:
      break;
  }
  // keep_last and email: `stars` asterisks, then the bytes from `keep` on.
  size_t stars = 0;
  size_t keep = 0;
  if (step.action == Action::kKeepLast) {
    const size_t total = CountCodePoints(text);
    stars = total > step.n ? total - step.n : 0;
    keep = CodePointOffset(text, stars);
  } else {
    const size_t at = text.rfind('@');
    keep = at == std::string_view::npos ? text.size() : at;
    stars = CountCodePoints(text.substr(0, keep));
  }
  value.kind = ValueKind::kString;
  if (stars == 0) return Status::Ok();  // nothing hidden: same bytes
  const size_t tail = text.size() - keep;
  ASSIGN_OR_RETURN(const uint32_t offset, Grow(batch, stars + tail));
  char* base = batch.arena.data();  // `text` is stale past Grow
  std::memset(base + offset, '*', stars);
  std::memcpy(base + offset + stars, base + source + keep, tail);
  value = Value{offset, static_cast<uint32_t>(stars + tail), ValueKind::kString};
  return Status::Ok();
}

Status MaskingTransform::DetectValue(Batch& batch, Plan& plan, const Step& step, Value& value) {
  uint8_t& warned = plan.warned[step.column];
  uint32_t patterns = kAllPatterns;
  if (detect_ == Detect::kWarn) {
    patterns &= ~static_cast<uint32_t>(warned);
    if (patterns == 0) return Status::Ok();  // everything it could report was reported
  }
  detector_->Find(batch.Text(value), &matches_, patterns);
  if (matches_.empty()) return Status::Ok();
  for (const PiiMatch& match : matches_) {
    const auto bit = static_cast<uint8_t>(1u << static_cast<int>(match.pattern));
    if ((warned & bit) != 0) continue;
    warned |= bit;
    const ColumnSchema& column = plan.table->columns[step.column];
    const char* pattern = PiiPatternName(match.pattern);
    if (!warned_.insert(fmt::format("{}.{}/{}", plan.qualified, column.name, pattern)).second) {
      continue;
    }
    if (detect_ == Detect::kMask) {
      spdlog::warn("masking: Redacting possible PII table={} column={} pattern={}", plan.qualified,
                   column.name, pattern);
    } else {
      spdlog::warn("masking: Possible PII table={} column={} pattern={}", plan.qualified,
                   column.name, pattern);
    }
  }
  if (detect_ != Detect::kMask) return Status::Ok();

  const uint32_t source = value.offset;
  size_t removed = 0;
  for (const PiiMatch& match : matches_) removed += match.end - match.begin;
  const size_t size = value.length - removed + matches_.size() * kRedactedMarker.size();
  ASSIGN_OR_RETURN(const uint32_t offset, Grow(batch, size));
  char* base = batch.arena.data();
  char* out = base + offset;
  uint32_t pos = 0;
  for (const PiiMatch& match : matches_) {
    std::memcpy(out, base + source + pos, match.begin - pos);
    out += match.begin - pos;
    std::memcpy(out, kRedactedMarker.data(), kRedactedMarker.size());
    out += kRedactedMarker.size();
    pos = match.end;
  }
  std::memcpy(out, base + source + pos, value.length - pos);
  value = Value{offset, static_cast<uint32_t>(size), ValueKind::kString};
  return Status::Ok();
}

}  // namespace tributary
