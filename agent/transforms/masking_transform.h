#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "agent/config.h"
#include "agent/core/event.h"
#include "agent/core/status.h"
#include "agent/core/table_cache.h"
#include "agent/core/transform.h"
#include "agent/transforms/pii_detector.h"

namespace tributary {

class HmacSha256;

// What `redact` writes, and what detect=mask puts in place of each PII match.
inline constexpr std::string_view kRedactedMarker = "[REDACTED]";

// Column masking and PII detection (docs/masking.md). Rewrites the before and after images of
// every event in place: masked values get their new text appended to Batch::arena. Rules are
// compiled once per table schema version into per-column steps, so a row costs no name lookups.
// Not thread-safe: one instance per pipeline (instances built from the same config have the
// same fingerprint).
class MaskingTransform : public Transform {
 public:
  // InvalidConfig naming the offending key ("masking.rules[2].n: ...") for an unknown detect
  // mode or action, a missing glob, a bad n, or a hash rule without a key of at least 16 bytes.
  // Messages never contain the key.
  static Result<std::unique_ptr<MaskingTransform>> Create(const MaskingConfig& config);
  ~MaskingTransform() override;

  // Fatal only when the batch breaks its own invariants (an event's table not in batch.tables,
  // a row image out of range, an arena past 4 GiB).
  Status Apply(Batch& batch) override;

  // 16 lowercase hex digits identifying the rules, the detect mode and the key; written to
  // every event as source.masking_policy.
  const std::string& fingerprint() const { return fingerprint_; }

  enum class Action : uint8_t { kNone, kHash, kRedact, kNull, kKeepLast, kTruncate, kEmail };
  enum class Detect : uint8_t { kOff, kWarn, kMask };

 private:
  struct Rule {
    std::string columns;  // the glob
    Action action = Action::kNone;
    uint32_t n = 0;
  };
  // One column that is masked or scanned; columns with nothing to do have no step.
  struct Step {
    uint32_t column = 0;
    Action action = Action::kNone;  // kNone: scanned by detection only
    uint32_t n = 0;
  };
  struct Plan {
    const TableSchema* table;  // kept alive by the cache entry
    std::string qualified;     // "public.users", for log lines
    std::vector<Step> steps;
    std::vector<uint8_t> warned;  // per column: bit per PiiPattern already logged
    // The table as its masked events show it (masked columns are strings, `null` ones
    // nullable), which the schema registry records; null when no rule applies.
    std::shared_ptr<const TableSchema> masked;
  };

  MaskingTransform() = default;

  Plan Compile(const TableSchema& table);
  Status MaskRow(Batch& batch, Plan& plan, uint32_t first);
  Status MaskValue(Batch& batch, const Step& step, Value& value);
  Status DetectValue(Batch& batch, Plan& plan, const Step& step, Value& value);

  std::vector<Rule> rules_;
  Detect detect_ = Detect::kOff;
  std::unique_ptr<HmacSha256> hmac_;  // null without a key
  std::unique_ptr<PiiDetector> detector_;
  std::string fingerprint_;

  TableCache<Plan> plans_;
  uint64_t batches_ = 0;
  std::vector<PiiMatch> matches_;           // reused per scanned value
  std::unordered_set<std::string> warned_;  // "table.column/pattern", across schema versions
};

}  // namespace tributary
