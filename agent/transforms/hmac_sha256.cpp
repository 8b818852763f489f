// SHA256_Init/Update/Final are deprecated in OpenSSL 3.0 but remain the only allocation-free way
// to resume a precomputed SHA-256 state (EVP_MD_CTX_copy_ex and EVP_MAC_CTX_dup allocate).
#define OPENSSL_SUPPRESS_DEPRECATED

#include "agent/transforms/hmac_sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

namespace tributary {
namespace {

constexpr size_t kBlock = 64;
constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

HmacSha256::HmacSha256(std::string_view key) {
  uint8_t block[kBlock] = {};
  if (key.size() > kBlock) {
    SHA256(reinterpret_cast<const uint8_t*>(key.data()), key.size(), block);
  } else {
    std::memcpy(block, key.data(), key.size());
  }
  uint8_t pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&inner_);
  SHA256_Update(&inner_, pad, kBlock);
  for (size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&outer_);
  SHA256_Update(&outer_, pad, kBlock);
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(pad, sizeof(pad));
}

HmacSha256::~HmacSha256() {
  OPENSSL_cleanse(&inner_, sizeof(inner_));
  OPENSSL_cleanse(&outer_, sizeof(outer_));
}

HmacSha256::Digest HmacSha256::Compute(std::string_view data) const {
  Digest inner_digest;
  SHA256_CTX ctx = inner_;
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(inner_digest.data(), &ctx);
  ctx = outer_;
  SHA256_Update(&ctx, inner_digest.data(), inner_digest.size());
  Digest result;
  SHA256_Final(result.data(), &ctx);
  return result;
}

void HmacSha256::ComputeHex(std::string_view data, char* out) const {
  const Digest digest = Compute(data);
  for (size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kHexDigits[digest[i] >> 4];
    out[2 * i + 1] = kHexDigits[digest[i] & 0xf];
  }
}

std::string ToHex(const uint8_t* bytes, size_t size) {
  std::string hex;
  hex.reserve(2 * size);
  for (size_t i = 0; i < size; ++i) {
    hex.push_back(kHexDigits[bytes[i] >> 4]);
    hex.push_back(kHexDigits[bytes[i] & 0xf]);
  }
  return hex;
}

HmacSha256::Digest Sha256(std::string_view data) {
  HmacSha256::Digest digest;
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), digest.data());
  return digest;
}

}  // namespace tributary
