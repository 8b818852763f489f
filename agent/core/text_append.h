#pragma once

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tributary {

// Small appenders the value normalizers and the envelope writer share on their hot paths: they
// write straight into the caller's buffer (a Batch's arena, an output line), never allocating
// beyond its growth.

template <typename Integer>
void AppendNumber(Integer value, std::string& out) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof(digits), value).ptr);
}

// `value` in decimal, zero-padded to at least `width` digits, at `out`; returns the end (at
// most max(width, 20) characters).
inline char* WritePadded(char* out, uint64_t value, size_t width) {
  char digits[20];
  size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  for (size_t i = count; i < width; ++i) *out++ = '0';
  while (count > 0) *out++ = digits[--count];
  return out;
}

// `value` in decimal, zero-padded to at least `width` digits.
inline void AppendPadded(uint64_t value, size_t width, std::string& out) {
  char text[20];
  if (width > sizeof(text)) {
    out.append(width - sizeof(text), '0');
    width = sizeof(text);
  }
  out.append(text, WritePadded(text, value, width));
}

// `value` as exactly 8 uppercase hex digits at `out`, without a loop: each nibble is spread to
// a byte of its own and all eight are made digits at once. Returns the end.
inline char* WriteHex8(uint32_t value, char* out) {
  static_assert(std::endian::native == std::endian::little, "the byte swap below assumes it");
  uint64_t x = value;
  x = (x | x << 16) & 0x0000FFFF0000FFFFULL;
  x = (x | x << 8) & 0x00FF00FF00FF00FFULL;
  x = (x | x << 4) & 0x0F0F0F0F0F0F0F0FULL;  // the most significant nibble in the top byte
  const uint64_t letters = ((x + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
  x += 0x3030303030303030ULL + letters * ('A' - '9' - 1);
  x = __builtin_bswap64(x);
  std::memcpy(out, &x, sizeof(x));
  return out + sizeof(x);
}

// `value` as exactly 16 uppercase hex digits at `out`. Returns the end.
inline char* WriteHex16(uint64_t value, char* out) {
  return WriteHex8(static_cast<uint32_t>(value),
                   WriteHex8(static_cast<uint32_t>(value >> 32), out));
}

// Standard base64 with padding.
inline void AppendBase64(std::string_view bytes, std::string& out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])); };
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest == 0) return;
  const uint32_t n = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
  out.push_back(kAlphabet[(n >> 18) & 63]);
  out.push_back(kAlphabet[(n >> 12) & 63]);
  out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
  out.push_back('=');
}

}  // namespace tributary
