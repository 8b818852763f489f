#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tributary::testing {

// Builds protocol messages: big-endian integers, NUL-terminated strings.
class Bytes {
 public:
  Bytes& Byte(uint8_t value) {
    bytes_.push_back(static_cast<char>(value));
    return *this;
  }
  Bytes& Int16(int16_t value) { return BigEndian(static_cast<uint16_t>(value), 2); }
  Bytes& Int32(int32_t value) { return BigEndian(static_cast<uint32_t>(value), 4); }
  Bytes& Int64(int64_t value) { return BigEndian(static_cast<uint64_t>(value), 8); }
  Bytes& String(std::string_view value) {
    bytes_.append(value);
    bytes_.push_back('\0');
    return *this;
  }
  Bytes& Raw(std::string_view value) {
    bytes_.append(value);
    return *this;
  }
  // Tuple columns.
  Bytes& Text(std::string_view value) {
    return Byte('t').Int32(static_cast<int32_t>(value.size())).Raw(value);
  }
  Bytes& Binary(std::string_view value) {
    return Byte('b').Int32(static_cast<int32_t>(value.size())).Raw(value);
  }

  const std::string& str() const { return bytes_; }

 private:
  Bytes& BigEndian(uint64_t value, int size) {
    for (int shift = (size - 1) * 8; shift >= 0; shift -= 8) {
      bytes_.push_back(static_cast<char>((value >> shift) & 0xff));
    }
    return *this;
  }

  std::string bytes_;
};

}  // namespace tributary::testing
