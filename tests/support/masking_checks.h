#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tributary::testing {

// HMAC-SHA256 of `value` under `key` in lowercase hex, as openssl's command line computes it:
// an implementation independent of the agent's.
std::string OpensslHmac(const std::string& key, const std::string& value);

// The canaries (and the masking key) that occur anywhere the agent wrote: every file under
// `out_dir` and `state_dir`, and its log. Empty when nothing leaked.
std::vector<std::string> Leaks(const std::vector<std::string>& canaries, const std::string& key,
                               const std::filesystem::path& out_dir,
                               const std::filesystem::path& state_dir, const std::string& log);

}  // namespace tributary::testing
