#pragma once

#include <openssl/sha.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tributary {

// HMAC-SHA256 (RFC 2104) with the key's inner and outer SHA-256 states computed once, so each
// value costs two SHA-256 compressions plus its own blocks, with no allocation and no provider
// lookup (HMAC() and EVP_MAC fetch and allocate per call). The object holds key-equivalent
// state: it is wiped on destruction and must never be logged.
class HmacSha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  explicit HmacSha256(std::string_view key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  Digest Compute(std::string_view data) const;
  // 64 lowercase hex digits written to out[0..63].
  void ComputeHex(std::string_view data, char* out) const;

 private:
  SHA256_CTX inner_;
  SHA256_CTX outer_;
};

// Lowercase hex of `bytes`.
std::string ToHex(const uint8_t* bytes, size_t size);
// SHA-256 of `data`.
HmacSha256::Digest Sha256(std::string_view data);

}  // namespace tributary
