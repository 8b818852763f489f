#include "connectors/mysql/rows_event.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#include "agent/core/civil_date.h"
#include "agent/core/text_append.h"
#include "connectors/mysql/byte_reader.h"
#include "connectors/mysql/mysql_json.h"

namespace tributary::mysql {

namespace {

constexpr std::array<int, 10> kDigitBytes = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
constexpr std::array<uint32_t, 10> kPowersOfTen = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000};
constexpr int kDigitsPerGroup = 9;

// MySQL's latin1 is Windows-1252; its five undefined bytes map to the C1 controls.
constexpr std::array<uint16_t, 32> kCp1252High = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

uint64_t BigEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

int64_t SignExtend(uint64_t value, size_t bytes) {
  const unsigned shift = 64 - static_cast<unsigned>(bytes) * 8;
  return static_cast<int64_t>(value << shift) >> shift;
}

void AppendCodePoint(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr std::array<uint32_t, 4> kMin = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// UTF-16 or UCS-2 code units of `width` bytes, big- or little-endian, or UTF-32.
bool AppendWide(std::string_view bytes, size_t width, bool little_endian, std::string& out) {
  if (bytes.size() % width != 0) return false;
  for (size_t i = 0; i < bytes.size(); i += width) {
    uint32_t unit = 0;
    for (size_t k = 0; k < width; ++k) {
      const auto b = static_cast<unsigned char>(bytes[i + (little_endian ? width - 1 - k : k)]);
      unit = (unit << 8) | b;
    }
    if (width == 2 && unit >= 0xD800 && unit <= 0xDBFF) {
      if (i + 4 > bytes.size()) return false;
      const auto b0 = static_cast<unsigned char>(bytes[i + 2]);
      const auto b1 = static_cast<unsigned char>(bytes[i + 3]);
      const uint32_t low = little_endian ? (b1 << 8U) | b0 : (b0 << 8U) | b1;
      if (low < 0xDC00 || low > 0xDFFF) return false;
      unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
      i += 2;
    } else if ((unit >= 0xD800 && unit <= 0xDFFF) || unit > 0x10FFFF) {
      return false;
    }
    AppendCodePoint(unit, out);
  }
  return true;
}

// Appends the text of a character column as UTF-8 (base64 for binary). False when the bytes
// are not valid in their character set.
bool AppendText(std::string_view bytes, Charset charset, std::string& out) {
  switch (charset) {
    case Charset::kUtf8:
      if (!IsValidUtf8(bytes)) return false;
      out.append(bytes);
      return true;
    case Charset::kLatin1:
    case Charset::kAscii:
      // ASCII, the usual text, is the same in UTF-8: each run of it is copied whole.
      for (size_t i = 0; i < bytes.size();) {
        const size_t run_start = i;
        while (i < bytes.size() && static_cast<unsigned char>(bytes[i]) < 0x80) ++i;
        out.append(bytes.data() + run_start, i - run_start);
        if (i == bytes.size()) break;
        const auto b = static_cast<unsigned char>(bytes[i++]);
        AppendCodePoint(b < 0xA0 ? kCp1252High[b - 0x80] : b, out);
      }
      return true;
    case Charset::kBinary:
      AppendBase64(bytes, out);
      return true;
    case Charset::kUcs2:
    case Charset::kUtf16:
      return AppendWide(bytes, 2, false, out);
    case Charset::kUtf16le:
      return AppendWide(bytes, 2, true, out);
    case Charset::kUtf32:
      return AppendWide(bytes, 4, false, out);
    default:
      return false;
  }
}

void AppendDate(uint64_t year, uint64_t month, uint64_t day, std::string& out) {
  AppendPadded(year, 4, out);
  out.push_back('-');
  AppendPadded(month, 2, out);
  out.push_back('-');
  AppendPadded(day, 2, out);
}

void AppendClock(uint64_t hour, uint64_t minute, uint64_t second, uint64_t micros,
                 std::string& out) {
  AppendPadded(hour, 2, out);
  out.push_back(':');
  AppendPadded(minute, 2, out);
  out.push_back(':');
  AppendPadded(second, 2, out);
  out.push_back('.');
  AppendPadded(micros, 6, out);
}

// The fractional part of TIME2 / DATETIME2 / TIMESTAMP2: (fsp + 1) / 2 big-endian bytes.
size_t FractionBytes(uint32_t fsp) { return (fsp + 1) / 2; }

class RowDecoder {
 public:
  RowDecoder(const TableMap& map, ByteReader& reader, Batch& batch)
      : map_(map), reader_(reader), out_(batch.arena) {}

  // Appends the value of `column`; sets `kind`. False on malformed bytes.
  Status Decode(const ColumnInfo& column, ValueKind& kind) {
    kind = ValueKind::kRaw;
    switch (column.type) {
      case ColumnType::kTiny:
        return Integer(column, 1);
      case ColumnType::kShort:
        return Integer(column, 2);
      case ColumnType::kInt24:
        return Integer(column, 3);
      case ColumnType::kLong:
        return Integer(column, 4);
      case ColumnType::kLongLong:
        return Integer(column, 8);
      case ColumnType::kFloat: {
        const uint32_t bits = reader_.U32();
        return FloatingPoint(static_cast<double>(std::bit_cast<float>(bits)),
                             std::bit_cast<float>(bits), kind);
      }
      case ColumnType::kDouble: {
        const double value = std::bit_cast<double>(reader_.U64());
        return FloatingPoint(value, value, kind);
      }
      case ColumnType::kNewDecimal:
        kind = ValueKind::kString;
        return Decimal(column);
      case ColumnType::kBit:
        return Bit(column, kind);
      case ColumnType::kYear: {
        const uint8_t year = reader_.U8();
        AppendNumber(year == 0 ? 0 : 1900 + year, out_);
        return Checked(column);
      }
      case ColumnType::kDate:
      case ColumnType::kNewDate: {
        kind = ValueKind::kString;
        const uint64_t v = reader_.Uint(3);
        AppendDate(v >> 9, (v >> 5) & 15, v & 31, out_);
        return Checked(column);
      }
      case ColumnType::kTime:
        kind = ValueKind::kString;
        return OldTime(column);
      case ColumnType::kTime2:
        kind = ValueKind::kString;
        return Time2(column);
      case ColumnType::kDateTime:
        kind = ValueKind::kString;
        return OldDateTime(column);
      case ColumnType::kDateTime2:
        kind = ValueKind::kString;
        return DateTime2(column);
      case ColumnType::kTimestamp:
        kind = ValueKind::kString;
        AppendTimestamp(reader_.U32(), 0);
        return Checked(column);
      case ColumnType::kTimestamp2: {
        kind = ValueKind::kString;
        if (column.length > 6) return Bad(column, "bad precision");
        const uint64_t seconds = BigEndian(reader_.Bytes(4));
        const uint64_t micros = Fraction(column.length);
        AppendTimestamp(seconds, micros);
        return Checked(column);
      }
      case ColumnType::kVarchar:
      case ColumnType::kVarString:
        kind = ValueKind::kString;
        return Text(column, reader_.Bytes(reader_.Uint(column.length < 256 ? 1 : 2)));
      case ColumnType::kString:
        kind = ValueKind::kString;
        return FixedString(column);
      case ColumnType::kBlob:
      case ColumnType::kTinyBlob:
      case ColumnType::kMediumBlob:
      case ColumnType::kLongBlob:
        kind = ValueKind::kString;
        if (column.length < 1 || column.length > 4) return Bad(column);
        return Text(column, reader_.Bytes(reader_.Uint(column.length)));
      case ColumnType::kEnum:
        kind = ValueKind::kString;
        return Enum(column);
      case ColumnType::kSet:
        kind = ValueKind::kString;
        return Set(column);
      case ColumnType::kGeometry:
        return Geometry(column);
      case ColumnType::kJson: {
        if (column.length < 1 || column.length > 4) return Bad(column);
        std::string_view bytes = reader_.Bytes(reader_.Uint(column.length));
        if (reader_.failed()) return Bad(column);
        Status status = AppendMysqlJson(bytes, out_);
        if (!status.ok()) return Bad(column, status.message());
        return Status::Ok();
      }
      case ColumnType::kNull:
        kind = ValueKind::kNull;
        return Status::Ok();
      default:
        return Status::CorruptData(fmt::format(
            "mysql: column {} of {}.{} has type {}, which the binlog decoder does not read "
            "(compressed columns are not supported)",
            column.name, map_.database, map_.table, static_cast<int>(column.type)));
    }
  }

 private:
  Status Bad(const ColumnInfo& column, std::string_view why = "bytes do not fit its type") {
    return Status::CorruptData(fmt::format("mysql: malformed {} value in column {} of {}.{}: {}",
                                           TypeName(column), column.name, map_.database, map_.table,
                                           why));
  }
  Status Checked(const ColumnInfo& column) {
    return reader_.failed() ? Bad(column, "row image truncated") : Status::Ok();
  }

  Status Integer(const ColumnInfo& column, size_t bytes) {
    const uint64_t raw = reader_.Uint(bytes);
    if (column.is_unsigned) {
      AppendNumber(raw, out_);
    } else {
      AppendNumber(SignExtend(raw, bytes), out_);
    }
    return Checked(column);
  }

  Status FloatingPoint(double value, auto exact, ValueKind& kind) {
    if (std::isnan(value) || std::isinf(value)) {
      kind = ValueKind::kString;
      out_.append(std::isnan(value) ? "NaN" : (value > 0 ? "Infinity" : "-Infinity"));
      return Status::Ok();
    }
    AppendNumber(exact, out_);
    return reader_.failed() ? Status::CorruptData("mysql: row image truncated in a float")
                            : Status::Ok();
  }

  // DECIMAL's binary form: groups of nine digits in four big-endian bytes, a shorter group
  // first and last, all bits inverted for negatives and the top bit flipped.
  Status Decimal(const ColumnInfo& column) {
    const int scale = column.scale;
    const int integer_digits = column.precision - scale;
    if (integer_digits < 0 || column.precision > 65) return Bad(column, "bad precision");
    const int int_groups = integer_digits / kDigitsPerGroup;
    const int int_rest = integer_digits % kDigitsPerGroup;
    const int frac_groups = scale / kDigitsPerGroup;
    const int frac_rest = scale % kDigitsPerGroup;
    const int byte_count =
        int_groups * 4 + kDigitBytes[int_rest] + frac_groups * 4 + kDigitBytes[frac_rest];
    const auto size = static_cast<size_t>(byte_count);
    std::string_view raw = reader_.Bytes(size);
    if (reader_.failed() || size == 0) return Bad(column);
    std::array<unsigned char, 40> bytes{};
    std::memcpy(bytes.data(), raw.data(), size);
    const bool negative = (bytes[0] & 0x80) == 0;
    bytes[0] ^= 0x80;
    if (negative) {
      for (size_t i = 0; i < size; ++i) bytes[i] = ~bytes[i];
    }
    size_t at = 0;
    auto group = [&](int digit_count, uint32_t& value) {
      const auto n = static_cast<size_t>(kDigitBytes[digit_count]);
      value = static_cast<uint32_t>(
          BigEndian(std::string_view(reinterpret_cast<const char*>(bytes.data()) + at, n)));
      at += n;
      return value < kPowersOfTen[digit_count];
    };
    if (negative) out_.push_back('-');
    const size_t start = out_.size();
    bool leading = true;
    auto append_integer_group = [&](uint32_t value, int width) {
      if (leading) {
        if (value == 0) return;
        AppendNumber(value, out_);
        leading = false;
      } else {
        AppendPadded(value, width, out_);
      }
    };
    uint32_t value = 0;
    if (int_rest > 0) {
      if (!group(int_rest, value)) return Bad(column);
      append_integer_group(value, int_rest);
    }
    for (int g = 0; g < int_groups; ++g) {
      if (!group(kDigitsPerGroup, value)) return Bad(column);
      append_integer_group(value, kDigitsPerGroup);
    }
    if (leading) out_.push_back('0');
    if (scale > 0) {
      out_.push_back('.');
      for (int g = 0; g < frac_groups; ++g) {
        if (!group(kDigitsPerGroup, value)) return Bad(column);
        AppendPadded(value, kDigitsPerGroup, out_);
      }
      if (frac_rest > 0) {
        if (!group(frac_rest, value)) return Bad(column);
        AppendPadded(value, frac_rest, out_);
      }
    }
    // "-0.00" is how the server shows no value; keep zero unsigned as it does.
    if (negative && out_.find_first_not_of("0.", start) == std::string::npos) {
      out_.erase(start - 1, 1);
    }
    return Status::Ok();
  }

  Status Bit(const ColumnInfo& column, ValueKind& kind) {
    const size_t bytes = (column.bits + 7) / 8;
    if (bytes == 0 || bytes > 8) return Bad(column, "bad width");
    const uint64_t value = BigEndian(reader_.Bytes(bytes));
    if (reader_.failed()) return Bad(column);
    if (column.bits == 1) {
      out_.append((value & 1) != 0 ? "true" : "false");
      return Status::Ok();
    }
    kind = ValueKind::kString;
    for (int i = column.bits - 1; i >= 0; --i) out_.push_back(((value >> i) & 1) != 0 ? '1' : '0');
    return Status::Ok();
  }

  uint64_t Fraction(uint32_t fsp) {
    const size_t n = FractionBytes(fsp);
    if (n == 0) return 0;
    const uint64_t raw = BigEndian(reader_.Bytes(n));
    // One byte holds hundredths, two ten-thousandths, three microseconds.
    static constexpr std::array<uint64_t, 4> kScale = {0, 10000, 100, 1};
    return raw * kScale[n];
  }

  void AppendTimestamp(uint64_t seconds, uint64_t micros) {
    if (seconds == 0 && micros == 0) {
      // The zero TIMESTAMP ('0000-00-00 00:00:00'), not the epoch: TIMESTAMP starts at 1 s.
      out_.append("0000-00-00T00:00:00.000000Z");
      return;
    }
    const CivilDate c = CivilFromDays(static_cast<int64_t>(seconds / 86400));
    const uint64_t in_day = seconds % 86400;
    AppendDate(static_cast<uint64_t>(c.year), c.month, c.day, out_);
    out_.push_back('T');
    AppendClock(in_day / 3600, in_day / 60 % 60, in_day % 60, micros, out_);
    out_.push_back('Z');
  }

  Status OldTime(const ColumnInfo& column) {
    const int64_t v = SignExtend(reader_.Uint(3), 3);
    if (reader_.failed()) return Bad(column);
    const uint64_t magnitude = static_cast<uint64_t>(v < 0 ? -v : v);
    if (v < 0) out_.push_back('-');
    AppendClock(magnitude / 10000, magnitude / 100 % 100, magnitude % 100, 0, out_);
    return Status::Ok();
  }

  Status Time2(const ColumnInfo& column) {
    if (column.length > 6) return Bad(column, "bad precision");
    // MySQL's my_time_packed_from_binary: a 24-bit offset integer part, then the fraction,
    // both negative-biased, into a packed (int << 24 | micros) value.
    const size_t n = FractionBytes(column.length);
    int64_t packed = 0;
    if (n == 3) {
      // With five or six digits the whole 48-bit field is one offset value.
      packed = static_cast<int64_t>(BigEndian(reader_.Bytes(6))) - 0x800000000000LL;
    } else {
      const int64_t int_part = static_cast<int64_t>(BigEndian(reader_.Bytes(3))) - 0x800000;
      int64_t frac = n == 0 ? 0 : static_cast<int64_t>(BigEndian(reader_.Bytes(n)));
      int64_t whole = int_part;
      if (whole < 0 && frac != 0) {
        ++whole;
        frac -= n == 1 ? 0x100 : 0x10000;
      }
      packed = whole * (int64_t{1} << 24) + frac * (n == 1 ? 10000 : 100);
    }
    if (reader_.failed()) return Bad(column);
    const bool negative = packed < 0;
    const uint64_t magnitude = static_cast<uint64_t>(negative ? -packed : packed);
    const uint64_t hms = magnitude >> 24;
    const uint64_t micros = magnitude & 0xFFFFFF;
    if (micros > 999999) return Bad(column);
    if (negative) out_.push_back('-');
    AppendClock((hms >> 12) & 0x3FF, (hms >> 6) & 0x3F, hms & 0x3F, micros, out_);
    return Status::Ok();
  }

  Status OldDateTime(const ColumnInfo& column) {
    const uint64_t v = reader_.U64();
    if (reader_.failed()) return Bad(column);
    const uint64_t date = v / 1000000;
    const uint64_t time = v % 1000000;
    AppendDate(date / 10000, date / 100 % 100, date % 100, out_);
    out_.push_back('T');
    AppendClock(time / 10000, time / 100 % 100, time % 100, 0, out_);
    return Status::Ok();
  }

  Status DateTime2(const ColumnInfo& column) {
    if (column.length > 6) return Bad(column, "bad precision");
    // 1 sign bit, 17 bits year*13+month, 5 day, 5 hour, 6 minute, 6 second; then the fraction.
    const uint64_t v = BigEndian(reader_.Bytes(5));
    const uint64_t micros = Fraction(column.length);
    if (reader_.failed()) return Bad(column);
    if ((v & 0x8000000000ULL) == 0) return Bad(column, "negative datetime");
    const uint64_t ymdhms = v & 0x7FFFFFFFFFULL;
    const uint64_t ymd = ymdhms >> 17;
    const uint64_t ym = ymd >> 5;
    const uint64_t hms = ymdhms & 0x1FFFF;
    if (micros > 999999) return Bad(column);
    AppendDate(ym / 13, ym % 13, ymd & 31, out_);
    out_.push_back('T');
    AppendClock(hms >> 12, (hms >> 6) & 63, hms & 63, micros, out_);
    return Status::Ok();
  }

  Status Text(const ColumnInfo& column, std::string_view bytes) {
    if (reader_.failed()) return Bad(column, "row image truncated");
    if (!AppendText(bytes, column.charset, out_)) {
      if (column.charset == Charset::kUnknown || column.charset == Charset::kOther) {
        return Status::Fatal(fmt::format(
            "mysql: column {} of {}.{} has collation {}, whose character set Tributary cannot "
            "convert to UTF-8",
            column.name, map_.database, map_.table, column.collation));
      }
      return Bad(column, "invalid in its character set");
    }
    return Status::Ok();
  }

  Status FixedString(const ColumnInfo& column) {
    std::string_view bytes = reader_.Bytes(reader_.Uint(column.length < 256 ? 1 : 2));
    if (reader_.failed()) return Bad(column, "row image truncated");
    // Fixed-width binary values are logged without their trailing zero bytes.
    std::array<char, 16> padded{};
    if (column.logical != Logical::kNone && bytes.size() < column.length &&
        column.length <= padded.size()) {
      std::memcpy(padded.data(), bytes.data(), bytes.size());
      bytes = std::string_view(padded.data(), column.length);
    }
    switch (column.logical) {
      case Logical::kUuid: {
        if (bytes.size() != 16) return Bad(column, "not 16 bytes");
        static constexpr char kHex[] = "0123456789abcdef";
        for (size_t i = 0; i < 16; ++i) {
          if (i == 4 || i == 6 || i == 8 || i == 10) out_.push_back('-');
          const auto b = static_cast<unsigned char>(bytes[i]);
          out_.push_back(kHex[b >> 4]);
          out_.push_back(kHex[b & 15]);
        }
        return Status::Ok();
      }
      case Logical::kInet6:
      case Logical::kInet4: {
        const bool v6 = column.logical == Logical::kInet6;
        if (bytes.size() != (v6 ? 16U : 4U)) return Bad(column, "wrong address size");
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof(text)) == nullptr) {
          return Bad(column);
        }
        out_.append(text);
        return Status::Ok();
      }
      case Logical::kNone:
        break;
    }
    if (column.charset == Charset::kBinary && bytes.size() < column.length) {
      std::string full(bytes);
      full.resize(column.length, '\0');
      AppendBase64(full, out_);
      return Status::Ok();
    }
    return Text(column, bytes);
  }

  Status Enum(const ColumnInfo& column) {
    if (column.length != 1 && column.length != 2) return Bad(column, "bad width");
    const uint64_t index = reader_.Uint(column.length);
    if (reader_.failed()) return Bad(column);
    if (index == 0) return Status::Ok();  // the empty error value ''
    if (index > column.values.size()) return Bad(column, "index beyond its labels");
    return Text(column, column.values[index - 1]);
  }

  Status Set(const ColumnInfo& column) {
    if (column.length < 1 || column.length > 8) return Bad(column, "bad width");
    const uint64_t bits = reader_.Uint(column.length);
    if (reader_.failed()) return Bad(column);
    if (column.values.size() < 64 && (bits >> column.values.size()) != 0) {
      return Bad(column, "member beyond its labels");
    }
    bool first = true;
    for (size_t i = 0; i < column.values.size(); ++i) {
      if (((bits >> i) & 1) == 0) continue;
      if (!first) out_.push_back(',');
      first = false;
      RETURN_IF_ERROR(Text(column, column.values[i]));
    }
    return Status::Ok();
  }

  Status Geometry(const ColumnInfo& column) {
    if (column.length < 1 || column.length > 4) return Bad(column, "bad width");
    std::string_view bytes = reader_.Bytes(reader_.Uint(column.length));
    if (reader_.failed() || bytes.size() < 4) return Bad(column);
    ByteReader geometry(bytes);
    const uint32_t srid = geometry.U32();
    out_.append("{\"wkb\":\"");
    AppendBase64(geometry.rest(), out_);
    out_.append("\",\"srid\":");
    AppendNumber(srid, out_);
    out_.push_back('}');
    return Status::Ok();
  }

  const TableMap& map_;
  ByteReader& reader_;
  std::string& out_;
};

}  // namespace

bool IsRowsEvent(EventType type) {
  switch (type) {
    case EventType::kWriteRowsV1:
    case EventType::kUpdateRowsV1:
    case EventType::kDeleteRowsV1:
    case EventType::kWriteRowsV2:
    case EventType::kUpdateRowsV2:
    case EventType::kDeleteRowsV2:
      return true;
    default:
      return false;
  }
}

Status DecodeRowsEvent(std::string_view body, EventType type, uint8_t post_header_length,
                       RowsEvent& out) {
  switch (type) {
    case EventType::kWriteRowsV1:
    case EventType::kWriteRowsV2:
      out.kind = RowsKind::kWrite;
      break;
    case EventType::kUpdateRowsV1:
    case EventType::kUpdateRowsV2:
      out.kind = RowsKind::kUpdate;
      break;
    case EventType::kDeleteRowsV1:
    case EventType::kDeleteRowsV2:
      out.kind = RowsKind::kDelete;
      break;
    default:
      return Status::CorruptData("binlog: not a rows event");
  }
  const bool v2 = type >= EventType::kWriteRowsV2;
  ByteReader reader(body);
  out.table_id = reader.Uint(post_header_length == 6 ? 4 : 6);
  out.flags = reader.U16();
  if (v2) {
    // The extra data's length counts its own two bytes.
    const uint16_t extra = reader.U16();
    if (extra < 2) return Status::CorruptData("binlog: rows event extra data length below 2");
    reader.Skip(extra - 2);
  }
  const uint64_t columns = reader.Packed();
  if (reader.failed() || columns > 4096) {
    return Status::CorruptData("binlog: malformed rows event header");
  }
  out.column_count = static_cast<uint32_t>(columns);
  out.present = reader.Bytes((columns + 7) / 8);
  out.present_after =
      out.kind == RowsKind::kUpdate ? reader.Bytes((columns + 7) / 8) : std::string_view();
  out.rows = reader.rest();
  if (reader.failed()) return Status::CorruptData("binlog: truncated rows event header");
  return Status::Ok();
}

Status DecodeRowImage(const TableMap& map, std::string_view present, std::string_view& rows,
                      Batch& batch) {
  const size_t count = map.columns.size();
  if (present.size() != (count + 7) / 8) {
    return Status::CorruptData(
        fmt::format("binlog: rows event for {}.{} has a different column count than its TABLE_MAP",
                    map.database, map.table));
  }
  size_t present_count = 0;
  for (size_t i = 0; i < count; ++i) {
    if ((static_cast<unsigned char>(present[i / 8]) >> (i % 8) & 1) != 0) ++present_count;
  }
  if (present_count == 0) {
    // An image of no columns takes no bytes: the rows after it could never end.
    return Status::CorruptData(
        fmt::format("binlog: rows event for {}.{} has no columns", map.database, map.table));
  }
  ByteReader reader(rows);
  std::string_view nulls = reader.Bytes((present_count + 7) / 8);
  if (reader.failed()) {
    return Status::CorruptData(
        fmt::format("binlog: truncated row image for {}.{}", map.database, map.table));
  }
  const size_t arena_start = batch.arena.size();
  const size_t values_start = batch.values.size();
  RowDecoder decoder(map, reader, batch);
  size_t nth = 0;
  for (size_t i = 0; i < count; ++i) {
    if ((static_cast<unsigned char>(present[i / 8]) >> (i % 8) & 1) == 0) {
      batch.values.push_back(Value{0, 0, ValueKind::kUnavailable});
      continue;
    }
    const bool is_null = (static_cast<unsigned char>(nulls[nth / 8]) >> (nth % 8) & 1) != 0;
    ++nth;
    if (is_null) {
      batch.values.push_back(Value{0, 0, ValueKind::kNull});
      continue;
    }
    const auto offset = static_cast<uint32_t>(batch.arena.size());
    ValueKind kind = ValueKind::kRaw;
    Status status = decoder.Decode(map.columns[i], kind);
    if (!status.ok()) {
      batch.arena.resize(arena_start);
      batch.values.resize(values_start);
      return status;
    }
    batch.values.push_back(Value{offset, static_cast<uint32_t>(batch.arena.size() - offset), kind});
  }
  rows = reader.rest();
  return Status::Ok();
}

}  // namespace tributary::mysql
