#pragma once

#include <cstdint>
#include <string_view>

namespace tributary::mysql {

// A bounds-checked cursor over binlog bytes. Every read past the end sets failed() and returns
// zeros or an empty view instead, so a decoder reads a whole structure and checks once.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}

  bool failed() const { return failed_; }
  size_t offset() const { return offset_; }
  size_t remaining() const { return failed_ ? 0 : bytes_.size() - offset_; }
  std::string_view rest() const { return failed_ ? std::string_view() : bytes_.substr(offset_); }

  // Little-endian unsigned integer of `n` bytes (1..8).
  uint64_t Uint(size_t n) {
    if (!Need(n)) return 0;
    uint64_t value = 0;
    for (size_t i = 0; i < n; ++i) {
      value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes_[offset_ + i])) << (8 * i);
    }
    offset_ += n;
    return value;
  }
  uint8_t U8() { return static_cast<uint8_t>(Uint(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Uint(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Uint(4)); }
  uint64_t U64() { return Uint(8); }

  // MySQL's length-encoded ("packed") integer.
  uint64_t Packed() {
    const uint8_t first = U8();
    if (first < 0xfb) return first;
    if (first == 0xfc) return Uint(2);
    if (first == 0xfd) return Uint(3);
    if (first == 0xfe) return Uint(8);
    failed_ = true;  // 0xfb is SQL NULL in result sets, never a length in the binlog
    return 0;
  }

  std::string_view Bytes(size_t n) {
    if (!Need(n)) return {};
    std::string_view out = bytes_.substr(offset_, n);
    offset_ += n;
    return out;
  }

  // A length-encoded string: packed length, then the bytes.
  std::string_view PackedBytes() { return Bytes(Packed()); }

  void Skip(size_t n) { (void)Bytes(n); }

 private:
  bool Need(size_t n) {
    if (failed_ || n > bytes_.size() - offset_) {
      failed_ = true;
      return false;
    }
    return true;
  }

  std::string_view bytes_;
  size_t offset_ = 0;
  bool failed_ = false;
};

}  // namespace tributary::mysql
