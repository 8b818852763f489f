#include "connectors/mysql/mysql_json.h"

#include <bit>
#include <charconv>
#include <cmath>

#include "agent/core/envelope_writer.h"
#include "agent/core/text_append.h"
#include "connectors/mysql/byte_reader.h"

namespace tributary::mysql {

namespace {

enum JsonType : uint8_t {
  kSmallObject = 0x00,
  kLargeObject = 0x01,
  kSmallArray = 0x02,
  kLargeArray = 0x03,
  kLiteral = 0x04,
  kInt16 = 0x05,
  kUint16 = 0x06,
  kInt32 = 0x07,
  kUint32 = 0x08,
  kInt64 = 0x09,
  kUint64 = 0x0a,
  kDouble = 0x0b,
  kString = 0x0c,
  kOpaque = 0x0f,
};

// Opaque values carry a column type; these are the ones with a text form.
constexpr uint8_t kOpaqueDecimal = 246;
constexpr uint8_t kOpaqueDate = 10;
constexpr uint8_t kOpaqueTime = 11;
constexpr uint8_t kOpaqueDatetime = 12;
constexpr uint8_t kOpaqueTimestamp = 7;

constexpr int kMaxDepth = 100;

Status Malformed() { return Status::CorruptData("mysql: malformed binary JSON value"); }

// A variable-length string length: seven bits a byte, low bits first, at most five bytes.
bool ReadVarLength(ByteReader& reader, uint64_t& length) {
  length = 0;
  for (int i = 0; i < 5; ++i) {
    const uint8_t b = reader.U8();
    if (reader.failed()) return false;
    length |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

class JsonDecoder {
 public:
  explicit JsonDecoder(std::string& out) : out_(out) {}

  // A value of `type` whose data starts at `data` (scalars) or is `data` (containers).
  Status Value(uint8_t type, std::string_view data, int depth) {
    if (depth > kMaxDepth) return Malformed();
    ByteReader reader(data);
    switch (type) {
      case kSmallObject:
      case kLargeObject:
        return Container(data, type == kLargeObject, /*object=*/true, depth);
      case kSmallArray:
      case kLargeArray:
        return Container(data, type == kLargeArray, /*object=*/false, depth);
      case kLiteral: {
        const uint8_t literal = reader.U8();
        if (reader.failed() || literal > 2) return Malformed();
        static constexpr const char* kLiterals[] = {"null", "true", "false"};
        out_.append(kLiterals[literal]);
        return Status::Ok();
      }
      case kInt16:
        AppendNumber(static_cast<int16_t>(reader.U16()), out_);
        break;
      case kUint16:
        AppendNumber(reader.U16(), out_);
        break;
      case kInt32:
        AppendNumber(static_cast<int32_t>(reader.U32()), out_);
        break;
      case kUint32:
        AppendNumber(reader.U32(), out_);
        break;
      case kInt64:
        AppendNumber(static_cast<int64_t>(reader.U64()), out_);
        break;
      case kUint64:
        AppendNumber(reader.U64(), out_);
        break;
      case kDouble: {
        const double d = std::bit_cast<double>(reader.U64());
        if (reader.failed() || !std::isfinite(d)) return Malformed();
        AppendNumber(d, out_);
        break;
      }
      case kString: {
        uint64_t length = 0;
        if (!ReadVarLength(reader, length)) return Malformed();
        std::string_view text = reader.Bytes(length);
        if (reader.failed()) return Malformed();
        AppendJsonString(text, out_);
        break;
      }
      case kOpaque:
        return Opaque(reader);
      default:
        return Malformed();
    }
    return reader.failed() ? Malformed() : Status::Ok();
  }

 private:
  Status Container(std::string_view data, bool large, bool object, int depth) {
    const size_t width = large ? 4 : 2;
    ByteReader reader(data);
    const uint64_t count = reader.Uint(width);
    const uint64_t size = reader.Uint(width);
    if (reader.failed() || size > data.size()) return Malformed();
    data = data.substr(0, size);
    const size_t key_entry = width + 2;
    const size_t value_entry = 1 + width;
    const size_t header = 2 * width + count * ((object ? key_entry : 0) + value_entry);
    if (count > data.size() || header > data.size()) return Malformed();
    out_.push_back(object ? '{' : '[');
    for (uint64_t i = 0; i < count; ++i) {
      if (i > 0) out_.push_back(',');
      if (object) {
        ByteReader key(data.substr(2 * width + i * key_entry));
        const uint64_t offset = key.Uint(width);
        const uint16_t length = key.U16();
        if (key.failed() || offset > data.size() || length > data.size() - offset) {
          return Malformed();
        }
        AppendJsonString(data.substr(offset, length), out_);
        out_.push_back(':');
      }
      const size_t entry_at = 2 * width + count * (object ? key_entry : 0) + i * value_entry;
      ByteReader entry(data.substr(entry_at));
      const uint8_t type = entry.U8();
      if (entry.failed()) return Malformed();
      // Small scalars sit in the entry itself; everything else at an offset in the container.
      const bool inlined = type == kLiteral || type == kInt16 || type == kUint16 ||
                           (large && (type == kInt32 || type == kUint32));
      if (inlined) {
        RETURN_IF_ERROR(Value(type, entry.Bytes(width), depth + 1));
        continue;
      }
      const uint64_t offset = entry.Uint(width);
      if (entry.failed() || offset >= data.size()) return Malformed();
      RETURN_IF_ERROR(Value(type, data.substr(offset), depth + 1));
    }
    out_.push_back(object ? '}' : ']');
    return Status::Ok();
  }

  Status Opaque(ByteReader& reader) {
    const uint8_t field_type = reader.U8();
    uint64_t length = 0;
    if (reader.failed() || !ReadVarLength(reader, length)) return Malformed();
    std::string_view data = reader.Bytes(length);
    if (reader.failed()) return Malformed();
    ByteReader value(data);
    switch (field_type) {
      case kOpaqueDecimal:
        return OpaqueDecimal(value);
      case kOpaqueDate:
      case kOpaqueTime:
      case kOpaqueDatetime:
      case kOpaqueTimestamp: {
        const auto packed = static_cast<int64_t>(value.U64());
        if (value.failed()) return Malformed();
        AppendPackedTemporal(field_type, packed);
        return Status::Ok();
      }
      default:
        out_.push_back('"');
        AppendBase64(data, out_);
        out_.push_back('"');
        return Status::Ok();
    }
  }

  // precision, scale, then the DECIMAL binary form (see the row decoder).
  Status OpaqueDecimal(ByteReader& reader) {
    const uint8_t precision = reader.U8();
    const uint8_t scale = reader.U8();
    if (reader.failed() || scale > precision || precision > 65) return Malformed();
    static constexpr int kDigitBytes[] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
    const int intg = precision - scale;
    std::string bytes(reader.rest());
    const int byte_count =
        (intg / 9) * 4 + kDigitBytes[intg % 9] + (scale / 9) * 4 + kDigitBytes[scale % 9];
    const auto size = static_cast<size_t>(byte_count);
    if (size == 0 || bytes.size() < size) return Malformed();
    const bool negative = (static_cast<unsigned char>(bytes[0]) & 0x80) == 0;
    bytes[0] = static_cast<char>(bytes[0] ^ 0x80);
    if (negative) {
      for (char& c : bytes) c = static_cast<char>(~c);
    }
    size_t at = 0;
    auto group = [&](int digits) {
      uint64_t v = 0;
      for (int k = 0; k < kDigitBytes[digits]; ++k) {
        v = (v << 8) | static_cast<unsigned char>(bytes[at++]);
      }
      return v;
    };
    std::string digits;
    if (intg % 9 > 0) AppendPadded(group(intg % 9), intg % 9, digits);
    for (int g = 0; g < intg / 9; ++g) AppendPadded(group(9), 9, digits);
    const size_t nonzero = digits.find_first_not_of('0');
    if (negative) out_.push_back('-');
    out_.append(nonzero == std::string::npos ? "0" : digits.substr(nonzero));
    if (scale > 0) {
      out_.push_back('.');
      for (int g = 0; g < scale / 9; ++g) AppendPadded(group(9), 9, out_);
      if (scale % 9 > 0) AppendPadded(group(scale % 9), scale % 9, out_);
    }
    return Status::Ok();
  }

  // MySQL's packed longlong temporal: (ymd-hms << 24) | microseconds, negative for -TIME.
  void AppendPackedTemporal(uint8_t field_type, int64_t packed) {
    const bool negative = packed < 0;
    const uint64_t magnitude = static_cast<uint64_t>(negative ? -packed : packed);
    const uint64_t micros = magnitude & 0xFFFFFF;
    const uint64_t whole = magnitude >> 24;
    out_.push_back('"');
    if (field_type == kOpaqueTime) {
      if (negative) out_.push_back('-');
      AppendTimeOfDay((whole >> 12) & 0x3FF, (whole >> 6) & 63, whole & 63, micros);
    } else {
      const uint64_t ymd = whole >> 17;
      const uint64_t ym = ymd >> 5;
      const uint64_t hms = whole & 0x1FFFF;
      AppendPadded(ym / 13, 4, out_);
      out_.push_back('-');
      AppendPadded(ym % 13, 2, out_);
      out_.push_back('-');
      AppendPadded(ymd & 31, 2, out_);
      if (field_type != kOpaqueDate) {
        out_.push_back('T');
        AppendTimeOfDay(hms >> 12, (hms >> 6) & 63, hms & 63, micros);
      }
    }
    out_.push_back('"');
  }

  void AppendTimeOfDay(uint64_t h, uint64_t m, uint64_t s, uint64_t micros) {
    AppendPadded(h, 2, out_);
    out_.push_back(':');
    AppendPadded(m, 2, out_);
    out_.push_back(':');
    AppendPadded(s, 2, out_);
    out_.push_back('.');
    AppendPadded(micros, 6, out_);
  }

  std::string& out_;
};

}  // namespace

Status AppendMysqlJson(std::string_view bytes, std::string& out) {
  if (bytes.empty()) {
    out.append("null");
    return Status::Ok();
  }
  JsonDecoder decoder(out);
  return decoder.Value(static_cast<uint8_t>(bytes[0]), bytes.substr(1), 0);
}

}  // namespace tributary::mysql
