#include "tests/support/masking_checks.h"

#include <fmt/format.h>

#include "tests/support/agent_process.h"
#include "tests/support/pg_server.h"

namespace tributary::testing {

namespace {

// Every file below `dir`, concatenated.
std::string ReadTree(const std::filesystem::path& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) all += ReadFile(entry.path());
  }
  return all;
}

}  // namespace

std::string OpensslHmac(const std::string& key, const std::string& value) {
  const std::string out =
      RunCommand(fmt::format("printf '%s' '{}' | openssl dgst -sha256 -hmac '{}'", value, key));
  return out.substr(out.rfind(' ') + 1, 64);
}

std::vector<std::string> Leaks(const std::vector<std::string>& canaries, const std::string& key,
                               const std::filesystem::path& out_dir,
                               const std::filesystem::path& state_dir, const std::string& log) {
  const std::string written = ReadTree(out_dir) + ReadTree(state_dir);
  std::vector<std::string> leaked;
  for (const std::string& canary : canaries) {
    if (written.find(canary) != std::string::npos || log.find(canary) != std::string::npos) {
      leaked.push_back(canary);
    }
  }
  if (log.find(key) != std::string::npos) leaked.push_back("the masking key (in the log)");
  return leaked;
}

}  // namespace tributary::testing
