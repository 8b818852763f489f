#include "connectors/postgres/value_normalizer.h"

#include <array>
#include <cstring>
#include <string>

#include "agent/core/civil_date.h"
#include "agent/core/envelope_writer.h"
#include "agent/core/text_append.h"

namespace tributary::postgres {
namespace {

// PostgreSQL's MAXDIM.
constexpr int kMaxArrayDims = 6;
// Dates reach year 5874897, timestamps 294276.
constexpr size_t kMaxYearDigits = 7;
constexpr int64_t kSecondsPerDay = 86400;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points past U+10FFFF, any of
// which would make the JSON line unreadable to strict parsers.
bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // Most text is ASCII: skip it eight bytes at a time.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, sizeof(word));
      if (word & 0x8080808080808080ULL) break;
      p += 8;
    }
    if (p == end) break;
    const unsigned char lead = *p;
    if (lead < 0x80) {
      ++p;
      continue;
    }
    int continuation;
    uint32_t code_point;
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation = 1;
      code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      continuation = 2;
      code_point = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      continuation = 3;
      code_point = lead & 0x07;
    } else {
      return false;
    }
    if (end - p <= continuation) return false;
    for (int i = 1; i <= continuation; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (p[i] & 0x3F);
    }
    if (continuation == 2 && (code_point < 0x800 || (code_point >= 0xD800 && code_point <= 0xDFFF)))
      return false;
    if (continuation == 3 && (code_point < 0x10000 || code_point > 0x10FFFF)) return false;
    p += continuation + 1;
  }
  return true;
}

// Reads exactly `count` digits at `pos`.
bool ReadDigits(std::string_view text, size_t& pos, size_t count, int& value) {
  if (text.size() - pos < count) return false;
  int result = 0;
  for (size_t i = 0; i < count; ++i) {
    const char c = text[pos + i];
    if (!IsDigit(c)) return false;
    result = result * 10 + (c - '0');
  }
  pos += count;
  value = result;
  return true;
}

bool Consume(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

bool ConsumeBc(std::string_view text, size_t& pos) {
  if (text.substr(pos) != " BC") return false;
  pos += 3;
  return true;
}

struct DateTime {
  int64_t year = 0;  // astronomical: 1 BC is 0, 2 BC is -1
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int micros = 0;
};

// "YYYY-MM-DD", the year zero-padded to at least four digits.
bool ParseDate(std::string_view text, size_t& pos, DateTime& dt) {
  const size_t start = pos;
  int64_t year = 0;
  while (pos < text.size() && IsDigit(text[pos]) && pos - start < kMaxYearDigits) {
    year = year * 10 + (text[pos] - '0');
    ++pos;
  }
  if (pos - start < 4 || year == 0) return false;
  dt.year = year;
  return Consume(text, pos, '-') && ReadDigits(text, pos, 2, dt.month) && dt.month >= 1 &&
         dt.month <= 12 && Consume(text, pos, '-') && ReadDigits(text, pos, 2, dt.day) &&
         dt.day >= 1 && dt.day <= 31;
}

// "HH:MM:SS" with up to six fractional digits, trailing zeros trimmed as PostgreSQL prints them.
bool ParseTime(std::string_view text, size_t& pos, DateTime& dt) {
  if (!ReadDigits(text, pos, 2, dt.hour) || !Consume(text, pos, ':') ||
      !ReadDigits(text, pos, 2, dt.minute) || !Consume(text, pos, ':') ||
      !ReadDigits(text, pos, 2, dt.second)) {
    return false;
  }
  if (dt.hour > 24 || dt.minute > 59 || dt.second > 59) return false;
  dt.micros = 0;
  if (Consume(text, pos, '.')) {
    int digits = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (++digits > 6) return false;
      dt.micros = dt.micros * 10 + (text[pos] - '0');
      ++pos;
    }
    if (digits == 0) return false;
    for (; digits < 6; ++digits) dt.micros *= 10;
  }
  return dt.hour < 24 || (dt.minute == 0 && dt.second == 0 && dt.micros == 0);
}

// "+HH", "+HH:MM" or "+HH:MM:SS" (local mean time before 1900 has seconds); east is positive.
bool ParseOffset(std::string_view text, size_t& pos, int64_t& offset_seconds) {
  if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) return false;
  const bool negative = text[pos++] == '-';
  int hours = 0;
  int minutes = 0;
  int seconds = 0;
  if (!ReadDigits(text, pos, 2, hours)) return false;
  if (Consume(text, pos, ':')) {
    if (!ReadDigits(text, pos, 2, minutes)) return false;
    if (Consume(text, pos, ':') && !ReadDigits(text, pos, 2, seconds)) return false;
  }
  if (minutes > 59 || seconds > 59) return false;
  offset_seconds = hours * 3600 + minutes * 60 + seconds;
  if (negative) offset_seconds = -offset_seconds;
  return true;
}

void ShiftToUtc(DateTime& dt, int64_t offset_seconds) {
  int64_t days = DaysFromCivil(dt.year, dt.month, dt.day);
  int64_t seconds = dt.hour * 3600 + dt.minute * 60 + dt.second - offset_seconds;
  // Floor division: the offset can move the time across midnight either way.
  int64_t day_shift = seconds / kSecondsPerDay;
  if (seconds % kSecondsPerDay < 0) --day_shift;
  seconds -= day_shift * kSecondsPerDay;
  days += day_shift;
  const CivilDate date = CivilFromDays(days);
  dt.year = date.year;
  dt.month = date.month;
  dt.day = date.day;
  dt.hour = static_cast<int>(seconds / 3600);
  dt.minute = static_cast<int>(seconds / 60 % 60);
  dt.second = static_cast<int>(seconds % 60);
}

// A value below 100 as two digits.
char* WriteTwoDigits(char* p, int value) {
  p[0] = static_cast<char>('0' + value / 10);
  p[1] = static_cast<char>('0' + value % 10);
  return p + 2;
}

// ISO 8601: four digits, a sign when the year is negative (BC) or has more than four digits.
char* WriteDate(char* p, const DateTime& dt) {
  if (dt.year < 0) {
    *p++ = '-';
  } else if (dt.year > 9999) {
    *p++ = '+';
  }
  p = WritePadded(p, static_cast<uint64_t>(dt.year < 0 ? -dt.year : dt.year), 4);
  *p++ = '-';
  p = WriteTwoDigits(p, dt.month);
  *p++ = '-';
  return WriteTwoDigits(p, dt.day);
}

char* WriteTime(char* p, const DateTime& dt) {
  p = WriteTwoDigits(p, dt.hour);
  *p++ = ':';
  p = WriteTwoDigits(p, dt.minute);
  *p++ = ':';
  p = WriteTwoDigits(p, dt.second);
  *p++ = '.';
  return WritePadded(p, static_cast<uint64_t>(dt.micros), 6);
}

bool IsInfinity(std::string_view text) { return text == "infinity" || text == "-infinity"; }

bool IsFloatSpecial(std::string_view text) {
  return text == "NaN" || text == "Infinity" || text == "-Infinity";
}

bool AppendDate(std::string_view text, std::string& out) {
  if (IsInfinity(text)) {
    out.append(text);
    return true;
  }
  size_t pos = 0;
  DateTime dt;
  if (!ParseDate(text, pos, dt)) return false;
  if (ConsumeBc(text, pos)) dt.year = 1 - dt.year;
  if (pos != text.size()) return false;
  char buffer[32];
  out.append(buffer, WriteDate(buffer, dt));
  return true;
}

bool AppendTime(std::string_view text, std::string& out) {
  size_t pos = 0;
  DateTime dt;
  if (!ParseTime(text, pos, dt) || pos != text.size()) return false;
  char buffer[32];
  out.append(buffer, WriteTime(buffer, dt));
  return true;
}

bool AppendTimestamp(std::string_view text, bool with_zone, std::string& out) {
  if (IsInfinity(text)) {
    out.append(text);
    return true;
  }
  size_t pos = 0;
  DateTime dt;
  if (!ParseDate(text, pos, dt) || !Consume(text, pos, ' ') || !ParseTime(text, pos, dt) ||
      dt.hour == 24) {
    return false;
  }
  int64_t offset_seconds = 0;
  if (with_zone && !ParseOffset(text, pos, offset_seconds)) return false;
  if (ConsumeBc(text, pos)) dt.year = 1 - dt.year;
  if (pos != text.size()) return false;
  if (offset_seconds != 0) ShiftToUtc(dt, offset_seconds);
  char buffer[48];
  char* p = WriteDate(buffer, dt);
  *p++ = 'T';
  p = WriteTime(p, dt);
  if (with_zone) *p++ = 'Z';
  out.append(buffer, p);
  return true;
}

// Consumes -?(0|[1-9][0-9]*): what int2/int4/int8/oid print, and what JSON accepts.
bool ScanJsonInteger(std::string_view text, size_t& pos) {
  if (pos < text.size() && text[pos] == '-') ++pos;
  if (pos >= text.size() || !IsDigit(text[pos])) return false;
  if (text[pos++] == '0') return true;
  while (pos < text.size() && IsDigit(text[pos])) ++pos;
  return true;
}

bool AppendInteger(std::string_view text, std::string& out) {
  size_t pos = 0;
  if (!ScanJsonInteger(text, pos) || pos != text.size()) return false;
  out.append(text);
  return true;
}

// Consumes a JSON number at `pos`: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool ScanJsonNumber(std::string_view text, size_t& pos) {
  if (!ScanJsonInteger(text, pos)) return false;
  if (Consume(text, pos, '.')) {
    const size_t start = pos;
    while (pos < text.size() && IsDigit(text[pos])) ++pos;
    if (pos == start) return false;
  }
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) ++pos;
    const size_t start = pos;
    while (pos < text.size() && IsDigit(text[pos])) ++pos;
    if (pos == start) return false;
  }
  return true;
}

// PostgreSQL prints finite floats as JSON numbers already ("1.5", "1e+30", "-0", "1e-07");
// check the JSON grammar rather than trust it.
bool AppendFloat(std::string_view text, std::string& out) {
  if (!IsFloatSpecial(text)) {
    size_t pos = 0;
    if (!ScanJsonNumber(text, pos) || pos != text.size()) return false;
  }
  out.append(text);
  return true;
}

// numeric_out never uses exponents: -?[0-9]+(.[0-9]+)?, or NaN / Infinity / -Infinity.
bool AppendNumeric(std::string_view text, std::string& out) {
  if (!IsFloatSpecial(text)) {
    size_t pos = 0;
    if (pos < text.size() && text[pos] == '-') ++pos;
    const size_t int_start = pos;
    while (pos < text.size() && IsDigit(text[pos])) ++pos;
    if (pos == int_start) return false;
    if (Consume(text, pos, '.')) {
      const size_t frac_start = pos;
      while (pos < text.size() && IsDigit(text[pos])) ++pos;
      if (pos == frac_start) return false;
    }
    if (pos != text.size()) return false;
  }
  out.append(text);
  return true;
}

// "\x0102ff" → "AQL/" (standard alphabet, padded), written straight into `out`.
bool AppendBytea(std::string_view text, std::string& out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return false;
  const std::string_view hex = text.substr(2);
  const size_t bytes = hex.size() / 2;
  const size_t start = out.size();
  out.resize(start + (bytes + 2) / 3 * 4);
  char* p = out.data() + start;
  uint32_t group = 0;
  int in_group = 0;
  for (size_t i = 0; i < bytes; ++i) {
    const int high = HexValue(hex[2 * i]);
    const int low = HexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    group = (group << 8) | static_cast<uint32_t>(high << 4 | low);
    if (++in_group == 3) {
      *p++ = kAlphabet[group >> 18 & 0x3F];
      *p++ = kAlphabet[group >> 12 & 0x3F];
      *p++ = kAlphabet[group >> 6 & 0x3F];
      *p++ = kAlphabet[group & 0x3F];
      group = 0;
      in_group = 0;
    }
  }
  if (in_group == 1) {
    *p++ = kAlphabet[group >> 2 & 0x3F];
    *p++ = kAlphabet[(group & 0x3) << 4];
    *p++ = '=';
    *p++ = '=';
  } else if (in_group == 2) {
    *p++ = kAlphabet[group >> 10 & 0x3F];
    *p++ = kAlphabet[group >> 4 & 0x3F];
    *p++ = kAlphabet[(group & 0xF) << 2];
    *p++ = '=';
  }
  return true;
}

bool AppendUuid(std::string_view text, std::string& out) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool hyphen = i == 8 || i == 13 || i == 18 || i == 23;
    if (hyphen ? text[i] != '-' : HexValue(text[i]) < 0) return false;
  }
  out.append(text);
  return true;
}

// Consumes a JSON string at `pos` (on its opening quote).
bool ScanJsonString(std::string_view text, size_t& pos) {
  for (++pos; pos < text.size(); ++pos) {
    const auto c = static_cast<unsigned char>(text[pos]);
    if (c == '"') {
      ++pos;
      return true;
    }
    if (c < 0x20) return false;
    if (c != '\\') continue;
    if (++pos >= text.size()) return false;
    switch (text[pos]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        break;
      case 'u':
        if (text.size() - pos <= 4) return false;
        for (int i = 1; i <= 4; ++i) {
          if (HexValue(text[pos + i]) < 0) return false;
        }
        pos += 4;
        break;
      default:
        return false;
    }
  }
  return false;
}

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// json keeps the text as entered, newlines included, and a JSON-lines record cannot hold a
// newline: re-emit it without the whitespace between tokens, every token byte for byte (numbers
// keep their digits, strings their escapes, duplicate keys stay). jsonb gets the same treatment,
// which only drops the blanks jsonb_out puts after ':' and ','. The server validated both; the
// grammar is checked anyway because one broken value would break the whole line.
bool AppendJson(std::string_view text, std::string& out) {
  enum class Expect : uint8_t { kValue, kValueOrClose, kKey, kKeyOrClose, kColon, kNext };
  if (!IsValidUtf8(text)) return false;
  // Open containers, '{' or '['; reused across calls: an allocation only while it grows.
  thread_local std::string open;
  open.clear();
  Expect expect = Expect::kValue;
  size_t pos = 0;
  size_t run = 0;  // start of the text not yet appended
  while (true) {
    if (pos < text.size() && IsJsonSpace(text[pos])) {
      out.append(text.data() + run, pos - run);
      while (pos < text.size() && IsJsonSpace(text[pos])) ++pos;
      run = pos;
    }
    if (pos == text.size()) break;
    const char c = text[pos];
    switch (expect) {
      case Expect::kValue:
      case Expect::kValueOrClose:
        if (c == ']' && expect == Expect::kValueOrClose) {
          open.pop_back();
          ++pos;
          expect = Expect::kNext;
        } else if (c == '{' || c == '[') {
          open.push_back(c);
          ++pos;
          expect = c == '{' ? Expect::kKeyOrClose : Expect::kValueOrClose;
        } else if (c == '"') {
          if (!ScanJsonString(text, pos)) return false;
          expect = Expect::kNext;
        } else if (c == '-' || IsDigit(c)) {
          if (!ScanJsonNumber(text, pos)) return false;
          expect = Expect::kNext;
        } else if (text.substr(pos, 4) == "true" || text.substr(pos, 4) == "null") {
          pos += 4;
          expect = Expect::kNext;
        } else if (text.substr(pos, 5) == "false") {
          pos += 5;
          expect = Expect::kNext;
        } else {
          return false;
        }
        break;
      case Expect::kKey:
      case Expect::kKeyOrClose:
        if (c == '}' && expect == Expect::kKeyOrClose) {
          open.pop_back();
          ++pos;
          expect = Expect::kNext;
        } else if (c == '"') {
          if (!ScanJsonString(text, pos)) return false;
          expect = Expect::kColon;
        } else {
          return false;
        }
        break;
      case Expect::kColon:
        if (c != ':') return false;
        ++pos;
        expect = Expect::kValue;
        break;
      case Expect::kNext:
        if (open.empty()) return false;
        if (c == ',') {
          expect = open.back() == '{' ? Expect::kKey : Expect::kValue;
        } else if ((c == '}' && open.back() == '{') || (c == ']' && open.back() == '[')) {
          open.pop_back();
        } else {
          return false;
        }
        ++pos;
        break;
    }
  }
  out.append(text.data() + run, pos - run);
  return expect == Expect::kNext && open.empty();
}

bool AppendText(std::string_view text, std::string& out) {
  if (!IsValidUtf8(text)) return false;
  out.append(text);
  return true;
}

// Whether the canonical form is a JSON string rather than JSON text.
bool IsStringKind(TypeCategory category, std::string_view text) {
  switch (category) {
    case TypeCategory::kBool:
    case TypeCategory::kInteger:
    case TypeCategory::kJson:
    case TypeCategory::kArray:
      return false;
    case TypeCategory::kFloat:
      return IsFloatSpecial(text);
    default:
      return true;
  }
}

// Categories whose canonical text is the input itself, which may need JSON escaping. The others
// produce only characters that never do.
bool IsTextLike(TypeCategory category) {
  return category == TypeCategory::kText || category == TypeCategory::kEnum ||
         category == TypeCategory::kUnmapped;
}

// Appends the canonical text of a non-array value (unquoted, unescaped when a string).
bool AppendScalar(TypeCategory category, std::string_view text, std::string& out) {
  switch (category) {
    case TypeCategory::kBool:
      if (text == "t") {
        out.append("true");
        return true;
      }
      if (text == "f") {
        out.append("false");
        return true;
      }
      return false;
    case TypeCategory::kInteger:
      return AppendInteger(text, out);
    case TypeCategory::kFloat:
      return AppendFloat(text, out);
    case TypeCategory::kNumeric:
      return AppendNumeric(text, out);
    case TypeCategory::kText:
    case TypeCategory::kEnum:
    case TypeCategory::kUnmapped:
      return AppendText(text, out);
    case TypeCategory::kBytea:
      return AppendBytea(text, out);
    case TypeCategory::kDate:
      return AppendDate(text, out);
    case TypeCategory::kTime:
      return AppendTime(text, out);
    case TypeCategory::kTimestamp:
      return AppendTimestamp(text, /*with_zone=*/false, out);
    case TypeCategory::kTimestampTz:
      return AppendTimestamp(text, /*with_zone=*/true, out);
    case TypeCategory::kUuid:
      return AppendUuid(text, out);
    case TypeCategory::kJson:
      return AppendJson(text, out);
    case TypeCategory::kArray:
      return false;
  }
  return false;
}

bool IsNullLiteral(std::string_view text) {
  return text.size() == 4 && (text[0] | 0x20) == 'n' && (text[1] | 0x20) == 'u' &&
         (text[2] | 0x20) == 'l' && (text[3] | 0x20) == 'l';
}

// Reads one element at `pos` (quoted or not) and appends it as JSON.
bool AppendArrayElement(std::string_view text, size_t& pos, TypeCategory category, char delimiter,
                        std::string& out) {
  const bool quoted = text[pos] == '"';
  if (quoted) ++pos;
  const size_t start = pos;
  bool escaped = false;
  while (pos < text.size()) {
    const char c = text[pos];
    if (c == '\\') {
      escaped = true;
      pos += 2;
      continue;
    }
    if (quoted ? c == '"' : (c == delimiter || c == '}' || c == '{' || c == '"')) break;
    ++pos;
  }
  if (pos >= text.size()) return false;
  const std::string_view raw = text.substr(start, pos - start);
  if (quoted) {
    ++pos;
  } else {
    if (raw.empty()) return false;
    if (IsNullLiteral(raw)) {
      out.append("null");
      return true;
    }
  }
  std::string_view value = raw;
  if (escaped) {
    // Reused across calls: an allocation only while it grows.
    thread_local std::string unescaped;
    unescaped.clear();
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\') ++i;
      unescaped.push_back(raw[i]);
    }
    value = unescaped;
  }
  if (IsTextLike(category)) {
    if (!IsValidUtf8(value)) return false;
    AppendJsonString(value, out);
    return true;
  }
  if (!IsStringKind(category, value)) return AppendScalar(category, value, out);
  out.push_back('"');
  if (!AppendScalar(category, value, out)) return false;
  out.push_back('"');
  return true;
}

// "[0:1][1:2]=": the lower bounds array_out prints when they are not 1. JSON arrays have none.
bool SkipDimensions(std::string_view text, size_t& pos) {
  int dims = 0;
  while (Consume(text, pos, '[')) {
    if (++dims > kMaxArrayDims) return false;
    for (int bound = 0; bound < 2; ++bound) {
      Consume(text, pos, '-');
      const size_t start = pos;
      while (pos < text.size() && IsDigit(text[pos])) ++pos;
      if (pos == start || !Consume(text, pos, bound == 0 ? ':' : ']')) return false;
    }
  }
  return dims > 0 && Consume(text, pos, '=');
}

// PostgreSQL array literal → JSON array, each element converted by the element's category.
// Elements and sub-arrays are separated by the element type's delimiter.
bool AppendArray(std::string_view text, TypeCategory category, char delimiter, std::string& out) {
  enum class Shape : uint8_t { kEmpty, kArrays, kScalars };
  size_t pos = 0;
  if (!text.empty() && text[0] == '[' && !SkipDimensions(text, pos)) return false;
  if (!Consume(text, pos, '{')) return false;
  out.push_back('[');
  // Sub-arrays and elements never mix within one level.
  std::array<Shape, kMaxArrayDims + 1> shapes{};
  int depth = 1;
  bool expect_value = true;
  bool just_opened = true;
  while (depth > 0) {
    if (pos >= text.size()) return false;
    const char c = text[pos];
    if (expect_value) {
      if (c == '}' && just_opened) {
        out.push_back(']');
        ++pos;
        --depth;
        expect_value = false;
      } else if (c == '{') {
        if (depth == kMaxArrayDims || shapes[depth] == Shape::kScalars) return false;
        shapes[depth] = Shape::kArrays;
        shapes[++depth] = Shape::kEmpty;
        out.push_back('[');
        ++pos;
        just_opened = true;
      } else {
        if (shapes[depth] == Shape::kArrays) return false;
        shapes[depth] = Shape::kScalars;
        if (!AppendArrayElement(text, pos, category, delimiter, out)) return false;
        expect_value = false;
        just_opened = false;
      }
    } else if (c == delimiter) {
      out.push_back(',');
      ++pos;
      expect_value = true;
    } else if (c == '}') {
      out.push_back(']');
      ++pos;
      --depth;
    } else {
      return false;
    }
  }
  return pos == text.size();
}

}  // namespace

Result<Value> AppendCanonical(const PgType& type, std::string_view text, Batch& batch) {
  std::string& arena = batch.arena;
  const size_t start = arena.size();
  ValueKind kind = ValueKind::kRaw;
  bool ok;
  if (type.category == TypeCategory::kArray) {
    ok = AppendArray(text, type.element, type.delimiter, arena);
  } else {
    if (IsStringKind(type.category, text)) kind = ValueKind::kString;
    ok = AppendScalar(type.category, text, arena);
  }
  if (!ok) {
    arena.resize(start);
    return Status::CorruptData("postgres: malformed " + type.name + " value");
  }
  return Value{static_cast<uint32_t>(start), static_cast<uint32_t>(arena.size() - start), kind};
}

}  // namespace tributary::postgres
