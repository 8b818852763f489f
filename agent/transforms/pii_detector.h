#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}  // namespace re2

namespace tributary {

// The value patterns PII detection looks for (docs/masking.md).
enum class PiiPattern : uint8_t {
  kEmail,
  kSsn,    // US social security number, dashed: 078-05-1120
  kPhone,  // +<country> ... or US (415) 555-0132 / 415-555-0132
  kCard,   // payment card number, 13-19 digits, Luhn-valid
  kIban,   // IBAN, mod-97-valid
};
inline constexpr int kPiiPatternCount = 5;

// "email", "ssn", "phone", "card", "iban".
const char* PiiPatternName(PiiPattern pattern);

// A validated match: bytes [begin, end) of the scanned text.
struct PiiMatch {
  uint32_t begin = 0;
  uint32_t end = 0;
  PiiPattern pattern = PiiPattern::kEmail;
};

// When a column's name suggests it holds PII ("email", "user_ssn", "dateOfBirth",
// "phone_number", ...), the kind of PII ("email", "ssn", "dob", ...); otherwise nullptr. The name
// is split into words at non-alphanumerics and camelCase humps and matched case-insensitively.
const char* SuspiciousColumnName(std::string_view name);

// Checks over the digits of `text`, ignoring every other byte.
bool LuhnValid(std::string_view text);
// `text` (spaces ignored) is 15-34 characters, two letters, two digits, then letters and digits,
// and its ISO 7064 mod-97 checksum is 1.
bool IbanValid(std::string_view text);

// Finds PII in free text with RE2 patterns compiled once. Matching is thread-safe.
class PiiDetector {
 public:
  PiiDetector();
  ~PiiDetector();
  PiiDetector(const PiiDetector&) = delete;
  PiiDetector& operator=(const PiiDetector&) = delete;

  // Texts shorter than this are never scanned (the shortest e-mail, "a@b.cd").
  static constexpr size_t kMinLength = 6;

  // Replaces *matches with the validated matches in `text` of the patterns whose bit
  // (1 << pattern) is set in `patterns`, sorted by begin; overlapping matches are merged into one
  // (keeping the first one's pattern). Cheap rejection first, without RE2: the e-mail pattern
  // runs only if some '@' sits between a local-part and a domain character; the digit patterns
  // only if the text has 7 digits (counted 8 bytes at a time) and an IBAN-like start or a
  // cluster of 9 digits (8 after '+') at a word boundary; then one RE2::Set pass says whether
  // any of them matches before they run one by one. No allocation once `matches` has capacity
  // for the matches found.
  void Find(std::string_view text, std::vector<PiiMatch>* matches,
            uint32_t patterns = (1u << kPiiPatternCount) - 1) const;

 private:
  void FindPattern(PiiPattern pattern, std::string_view text, std::vector<PiiMatch>* matches) const;

  std::unique_ptr<re2::RE2> regexes_[kPiiPatternCount];
  struct SetHolder;
  std::unique_ptr<SetHolder> digit_set_;  // ssn|phone|card|iban: any of them present?
};

}  // namespace tributary
