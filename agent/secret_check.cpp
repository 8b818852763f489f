#include "agent/secret_check.h"

#include <re2/re2.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace tributary {

bool HoldsLiteralSecret(std::string_view yaml_text) {
  // `password=x` (libpq), `password: x`, `key: x` (masking), `user:x@` (URLs). The value is
  // captured so that a reference (${...}) is told apart from a secret.
  static const re2::RE2 kInline(
      R"((?i)(?:password|key)\s*[:=]\s*["']?([^\s"',}]+)|://[^:/@\s"']+:([^@\s"']+)@)");
  std::istringstream lines{std::string(yaml_text)};
  for (std::string line; std::getline(lines, line);) {
    const size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') continue;
    re2::StringPiece rest(line);
    std::string assigned;
    std::string in_url;
    while (re2::RE2::FindAndConsume(&rest, kInline, &assigned, &in_url)) {
      const std::string& value = assigned.empty() ? in_url : assigned;
      if (!value.empty() && !value.starts_with("${")) return true;
    }
  }
  return false;
}

std::optional<std::string> ExposedSecretWarning(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & (S_IRWXG | S_IRWXO)) == 0) {
    return std::nullopt;
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!HoldsLiteralSecret(text.str())) return std::nullopt;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "config " + path + " holds a literal password or key and is readable by group or " +
         "others (mode " + mode + "); chmod 600 it, or use ${file:} / LoadCredential=";
}

}  // namespace tributary
