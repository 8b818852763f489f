#include "agent/transforms/pii_detector.h"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tributary {
namespace {

constexpr std::array<const char*, kPiiPatternCount> kPatternNames = {"email", "ssn", "phone",
                                                                     "card", "iban"};

// The patterns (RE2 syntax, ASCII, case-sensitive). Each is deliberately narrow: a match is
// then validated in code (digit counts, Luhn, mod-97, SSN ranges) before it counts.
constexpr std::array<const char*, kPiiPatternCount> kPatterns = {
    // email: local@domain.tld
    R"([A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,})",
    // ssn: dashed only; bare 9-digit numbers are far too common to flag.
    R"(\b\d{3}-\d{2}-\d{4}\b)",
    // phone: international with a leading '+', or a North American number with separators
    // (area code and exchange start with 2-9). Bare digit runs are never phones.
    R"(\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)|\d{1,4})(?:[ .\-]?\d{2,4}){2,5}\b)"
    R"(|(?:\([2-9]\d{2}\) ?|\b[2-9]\d{2}[ .\-])[2-9]\d{2}[ .\-]\d{4}\b)",
    // card: 13-19 digits, bare or grouped 4-4-4-(1..7) / 4-6-(4..5) by spaces or dashes.
    R"(\b(?:\d{13,19}|\d{4}(?: \d{4}){2} \d{1,7}|\d{4}(?:-\d{4}){2}-\d{1,7})"
    R"(|\d{4} \d{6} \d{4,5}|\d{4}-\d{6}-\d{4,5})\b)",
    // iban: country, check digits, BBAN; compact or printed in groups of four.
    R"(\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b)",
};

constexpr uint32_t Bit(PiiPattern p) { return 1u << static_cast<int>(p); }
constexpr uint32_t kDigitPatterns = Bit(PiiPattern::kSsn) | Bit(PiiPattern::kPhone) |
                                    Bit(PiiPattern::kCard) | Bit(PiiPattern::kIban);
// Fewer digits than this in a whole value and no digit pattern can match: an SSN has 9, a card
// 13, a phone 8 or more, and every IBAN format at least 7 (Malta: 2 check digits + 5).
constexpr size_t kMinDigits = 7;
// An SSN or card, and a North American phone, hold at least 9 digits; an international phone
// (after '+') 8. Dates (8 digits) and shorter numbers thus never wake RE2 up.
constexpr int kMinClusterDigits = 9;
constexpr int kMinPlusClusterDigits = 8;

bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

enum : uint8_t {
  kClassDigit = 1,
  kClassUpper = 2,
  kClassWord = 4,       // \w: letters, digits, '_'
  kClassSeparator = 8,  // may sit between the digit groups of a phone, SSN or card
  kClassLocal = 16,     // may end an e-mail's local part
  kClassDomain = 32,    // may start an e-mail's domain
};

constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = kClassDigit | kClassWord | kClassLocal | kClassDomain;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = kClassUpper | kClassWord | kClassLocal | kClassDomain;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = kClassWord | kClassLocal | kClassDomain;
  table['_'] = kClassWord | kClassLocal;
  for (char c : {'.', '%', '+', '-'}) table[static_cast<unsigned char>(c)] |= kClassLocal;
  table['-'] |= kClassDomain;
  for (char c : {' ', '-', '.', '(', ')'}) table[static_cast<unsigned char>(c)] |= kClassSeparator;
  return table;
}();

uint8_t ClassOf(char c) { return kClass[static_cast<unsigned char>(c)]; }

unsigned CountDigits(std::string_view text) {
  unsigned n = 0;
  for (char c : text) n += IsDigit(c) ? 1 : 0;
  return n;
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;

// Bit 7 of each byte of the result is set iff that byte of `x` is an ASCII digit: a byte is a
// digit iff (byte ^ 0x30) < 10, and adding 0x76 to the low 7 bits carries into bit 7 iff they
// are >= 10 (0x7f + 0x76 < 0x100: no carry crosses bytes).
uint64_t DigitBits(uint64_t x) {
  const uint64_t t = x ^ (0x30 * kOnes);
  const uint64_t at_least_10 = ((t & (0x7f * kOnes)) + 0x76 * kOnes) | t;
  return ~at_least_10 & (0x80 * kOnes);
}

uint64_t Load8(const char* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}

// Bit 7 of each byte set iff that byte is in [lo, lo + count) (lo >= 1, lo + count <= 0x80).
uint64_t InRange(uint64_t x, unsigned lo, unsigned count) {
  const uint64_t low = x & (0x7f * kOnes);
  const uint64_t at_least_lo = low + (0x80 - lo) * kOnes;
  const uint64_t at_least_end = low + (0x80 - lo - count) * kOnes;
  return at_least_lo & ~at_least_end & ~x & (0x80 * kOnes);
}

uint64_t UpperBits(uint64_t x) { return InRange(x, 'A', 26); }

// \w: digits, letters, '_'.
uint64_t WordBits(uint64_t x) {
  return DigitBits(x) | InRange(x | (0x20 * kOnes), 'a', 26) | InRange(x, '_', 1);
}

// CountDigits, eight bytes at a time.
size_t CountDigitsFast(std::string_view text) {
  const char* p = text.data();
  size_t n = 0;
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) n += ((DigitBits(Load8(p + i)) >> 7) * kOnes) >> 56;
  for (; i < text.size(); ++i) n += IsDigit(p[i]) ? 1 : 0;
  return n;
}

// The index of the first digit at or after `i`, or text.size().
size_t NextDigit(std::string_view text, size_t i) {
  const char* p = text.data();
  if constexpr (std::endian::native == std::endian::little) {
    for (; i + 8 <= text.size(); i += 8) {
      const uint64_t bits = DigitBits(Load8(p + i));
      if (bits != 0) return i + static_cast<size_t>(std::countr_zero(bits)) / 8;
    }
  }
  for (; i < text.size(); ++i) {
    if (IsDigit(p[i])) return i;
  }
  return text.size();
}

// Whether some '@' has a possible local part before it and a possible domain after it.
bool MayHoldEmail(std::string_view text) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  for (const char* at = begin;
       (at = static_cast<const char*>(std::memchr(at, '@', static_cast<size_t>(end - at)))) !=
       nullptr;
       ++at) {
    if (at > begin && at + 1 < end && (ClassOf(at[-1]) & kClassLocal) != 0 &&
        (ClassOf(at[1]) & kClassDomain) != 0) {
      return true;
    }
  }
  return false;
}

// A first, cheaper necessary condition: every SSN, phone and card match has two digits in a row
// after a non-word byte (\b\d\d: its first group, or the group after '+', '(' or a
// separator), and every IBAN two digits after two capitals after a non-word byte.
bool IsDigitPatternStart(std::string_view text, size_t i) {
  auto cls = [&](size_t j) { return ClassOf(text[j]); };
  if (i + 1 >= text.size() || !IsDigit(text[i]) || !IsDigit(text[i + 1])) return false;
  if (i == 0 || (cls(i - 1) & kClassWord) == 0) return true;
  return i >= 2 && (cls(i - 1) & kClassUpper) != 0 && (cls(i - 2) & kClassUpper) != 0 &&
         (i == 2 || (cls(i - 3) & kClassWord) == 0);
}

// Whether IsDigitPatternStart holds anywhere, eight positions at a time: lane j of a word
// loaded at i + k is byte i + j + k, so the neighbours of eight positions are one unaligned
// load away. Digit-dense text (hex digests, identifiers) thus costs no per-byte branches.
bool HasDigitPatternStart(std::string_view text) {
  const char* p = text.data();
  const size_t n = text.size();
  size_t i = 0;
  if (n >= 12) {
    for (; i < 3; ++i) {
      if (IsDigitPatternStart(text, i)) return true;
    }
    for (; i + 9 <= n; i += 8) {
      const uint64_t pairs = DigitBits(Load8(p + i)) & DigitBits(Load8(p + i + 1));
      if (pairs == 0) continue;
      const uint64_t before = Load8(p + i - 1);
      if ((pairs & ~WordBits(before)) != 0) return true;
      const uint64_t iban = pairs & UpperBits(before);
      if (iban != 0 && (iban & UpperBits(Load8(p + i - 2)) & ~WordBits(Load8(p + i - 3))) != 0) {
        return true;
      }
    }
  }
  for (; i < n; ++i) {
    if (IsDigitPatternStart(text, i)) return true;
  }
  return false;
}

// A necessary condition for any digit pattern, checked without RE2, jumping from digit to digit
// eight bytes at a time: an IBAN start (two capitals after a non-word byte, then two digits), or
// a cluster of digit groups (separated by at most two of " -.()") holding enough digits counted
// from a group that starts after a non-word byte. Every SSN, phone and card match is such a
// cluster: all start at \b, '+' or '('.
bool MayHoldDigitPattern(std::string_view text) {
  const size_t n = text.size();
  auto word = [&](size_t i) { return (ClassOf(text[i]) & kClassWord) != 0; };
  auto upper = [&](size_t i) { return (ClassOf(text[i]) & kClassUpper) != 0; };
  for (size_t i = NextDigit(text, 0); i < n; i = NextDigit(text, i)) {
    // A cluster starts at text[i].
    if (i >= 2 && i + 1 < n && IsDigit(text[i + 1]) && upper(i - 2) && upper(i - 1) &&
        (i == 2 || !word(i - 3))) {
      return true;
    }
    int count = i > 0 && word(i - 1) ? -1 : 0;  // digits since the first group at a boundary
    const int need = i > 0 && text[i - 1] == '+' ? kMinPlusClusterDigits : kMinClusterDigits;
    int gap = 0;  // separator bytes since the last digit
    for (; i < n; ++i) {
      const uint8_t cls = ClassOf(text[i]);
      if ((cls & kClassDigit) != 0) {
        if (gap > 0 && count < 0) count = 0;  // a group after a separator: at a boundary
        gap = 0;
        if (count >= 0 && ++count >= need) return true;
      } else if ((cls & kClassSeparator) != 0 && gap < 2) {
        ++gap;
      } else {
        break;
      }
    }
  }
  return false;
}

bool CardValid(std::string_view text) {
  const unsigned digits = CountDigits(text);
  if (digits < 13 || digits > 19) return false;
  if (std::all_of(text.begin(), text.end(), [](char c) { return c == '0' || !IsDigit(c); })) {
    return false;
  }
  return LuhnValid(text);
}

// Area 000 and 666, group 00 and serial 0000 are never issued. 9xx areas (ITINs, also tax ids)
// are kept.
bool SsnValid(std::string_view text) {
  if (text.size() != 11) return false;
  const std::string_view area = text.substr(0, 3);
  return area != "000" && area != "666" && text.substr(4, 2) != "00" && text.substr(7, 4) != "0000";
}

bool PhoneValid(std::string_view text) {
  const unsigned digits = CountDigits(text);
  if (!text.empty() && text[0] == '+') return digits >= 8 && digits <= 15;  // E.164
  return digits == 10;
}

// Appends the lowercase words of `name`: split at non-alphanumerics, letter/digit changes and
// camelCase humps ("dateOfBirth2" → date, of, birth, 2).
std::vector<std::string> Words(std::string_view name) {
  std::vector<std::string> words;
  std::string word;
  auto kind = [](char c) {
    if (c >= 'a' && c <= 'z') return 1;
    if (c >= 'A' && c <= 'Z') return 2;
    if (IsDigit(c)) return 3;
    return 0;
  };
  int prev = 0;
  for (char c : name) {
    const int k = kind(c);
    const bool boundary =
        k == 0 || (prev != 0 && ((k == 3) != (prev == 3))) || (k == 2 && prev == 1);
    if (boundary && !word.empty()) {
      words.push_back(word);
      word.clear();
    }
    if (k != 0) word.push_back(k == 2 ? static_cast<char>(c - 'A' + 'a') : c);
    prev = k;
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

struct NameRule {
  const char* text;
  const char* label;
};

// Matched anywhere in the name with separators removed ("e_mail" → "email").
constexpr NameRule kNameSubstrings[] = {
    {"email", "email"},
    {"phone", "phone"},
    {"mobile", "phone"},
    {"msisdn", "phone"},
    {"socialsecurity", "ssn"},
    {"creditcard", "card"},
    {"cardnumber", "card"},
    {"cardno", "card"},
    {"ccnumber", "card"},
    {"iban", "iban"},
    {"birth", "dob"},
    {"passport", "passport"},
    {"taxid", "tax_id"},
    {"taxnumber", "tax_id"},
    {"nationalid", "national_id"},
    {"driverlicen", "driver_license"},
    {"driverslicen", "driver_license"},
};
// Matched as whole words only ("ssn" but not "lessnumbers").
constexpr NameRule kNameWords[] = {
    {"ssn", "ssn"},   {"dob", "dob"},   {"card", "card"},  {"cc", "card"},
    {"tel", "phone"}, {"fax", "phone"}, {"cell", "phone"}, {"mail", "email"},
};

}  // namespace

const char* PiiPatternName(PiiPattern pattern) { return kPatternNames[static_cast<int>(pattern)]; }

const char* SuspiciousColumnName(std::string_view name) {
  const std::vector<std::string> words = Words(name);
  std::string joined;
  for (const std::string& w : words) joined += w;
  for (const NameRule& rule : kNameSubstrings) {
    if (joined.find(rule.text) != std::string::npos) return rule.label;
  }
  for (const NameRule& rule : kNameWords) {
    if (std::find(words.begin(), words.end(), rule.text) != words.end()) return rule.label;
  }
  return nullptr;
}

bool LuhnValid(std::string_view text) {
  unsigned sum = 0;
  unsigned count = 0;
  for (auto it = text.rbegin(); it != text.rend(); ++it) {
    if (!IsDigit(*it)) continue;
    unsigned d = static_cast<unsigned>(*it - '0');
    if (count % 2 == 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    ++count;
  }
  return count > 0 && sum % 10 == 0;
}

bool IbanValid(std::string_view text) {
  char compact[34];
  size_t n = 0;
  for (char c : text) {
    if (c == ' ') continue;
    if (n == sizeof(compact)) return false;
    compact[n++] = c;
  }
  if (n < 15) return false;
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  if (!upper(compact[0]) || !upper(compact[1]) || !IsDigit(compact[2]) || !IsDigit(compact[3])) {
    return false;
  }
  // Move the first four characters to the end, read letters as 10..35, take it mod 97.
  unsigned remainder = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = compact[(i + 4) % n];
    if (IsDigit(c)) {
      remainder = (remainder * 10 + static_cast<unsigned>(c - '0')) % 97;
    } else if (upper(c)) {
      remainder = (remainder * 100 + static_cast<unsigned>(c - 'A' + 10)) % 97;
    } else {
      return false;
    }
  }
  return remainder == 1;
}

struct PiiDetector::SetHolder {
  explicit SetHolder(const RE2::Options& options) : set(options, RE2::UNANCHORED) {}
  RE2::Set set;
};

PiiDetector::PiiDetector() {
  RE2::Options options;
  options.set_log_errors(false);
  for (int i = 0; i < kPiiPatternCount; ++i) {
    regexes_[i] = std::make_unique<RE2>(kPatterns[i], options);
    if (!regexes_[i]->ok()) std::abort();  // a bug in the constant patterns above
  }
  digit_set_ = std::make_unique<SetHolder>(options);
  for (int i = 0; i < kPiiPatternCount; ++i) {
    if ((kDigitPatterns & (1u << i)) == 0) continue;
    if (digit_set_->set.Add(kPatterns[i], nullptr) < 0) std::abort();
  }
  if (!digit_set_->set.Compile()) std::abort();
}

PiiDetector::~PiiDetector() = default;

void PiiDetector::Find(std::string_view text, std::vector<PiiMatch>* matches,
                       uint32_t patterns) const {
  matches->clear();
  if (text.size() < kMinLength) return;
  if ((patterns & Bit(PiiPattern::kEmail)) != 0 && MayHoldEmail(text)) {
    FindPattern(PiiPattern::kEmail, text, matches);
  }
  if ((patterns & kDigitPatterns) != 0 && CountDigitsFast(text) >= kMinDigits &&
      HasDigitPatternStart(text) && MayHoldDigitPattern(text) &&
      digit_set_->set.Match(re2::StringPiece(text.data(), text.size()), nullptr)) {
    for (PiiPattern p :
         {PiiPattern::kIban, PiiPattern::kCard, PiiPattern::kSsn, PiiPattern::kPhone}) {
      if ((patterns & Bit(p)) != 0) FindPattern(p, text, matches);
    }
  }
  if (matches->size() < 2) return;
  std::sort(matches->begin(), matches->end(), [](const PiiMatch& a, const PiiMatch& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  size_t kept = 0;
  for (size_t i = 1; i < matches->size(); ++i) {
    PiiMatch& last = (*matches)[kept];
    const PiiMatch& next = (*matches)[i];
    if (next.begin < last.end) {
      last.end = std::max(last.end, next.end);
    } else {
      (*matches)[++kept] = next;
    }
  }
  matches->resize(kept + 1);
}

void PiiDetector::FindPattern(PiiPattern pattern, std::string_view text,
                              std::vector<PiiMatch>* matches) const {
  const RE2& re = *regexes_[static_cast<int>(pattern)];
  const re2::StringPiece input(text.data(), text.size());
  re2::StringPiece match;
  size_t pos = 0;
  while (pos < text.size() && re.Match(input, pos, text.size(), RE2::UNANCHORED, &match, 1)) {
    const size_t begin = static_cast<size_t>(match.data() - text.data());
    size_t end = begin + match.size();
    std::string_view found = text.substr(begin, end - begin);
    bool valid = false;
    switch (pattern) {
      case PiiPattern::kEmail:
        valid = true;
        break;
      case PiiPattern::kSsn:
        valid = SsnValid(found);
        break;
      case PiiPattern::kPhone:
        valid = PhoneValid(found);
        break;
      case PiiPattern::kCard:
        valid = CardValid(found);
        break;
      case PiiPattern::kIban:
        valid = IbanValid(found);
        // A printed IBAN may have run into a following word: drop trailing groups.
        while (!valid && found.size() > 15) {
          const size_t space = found.rfind(' ');
          if (space == std::string_view::npos) break;
          found = found.substr(0, space);
          valid = IbanValid(found);
        }
        if (valid) end = begin + found.size();
        break;
    }
    if (valid) {
      matches->push_back({static_cast<uint32_t>(begin), static_cast<uint32_t>(end), pattern});
    }
    pos = end > begin ? end : begin + 1;
  }
}

}  // namespace tributary
