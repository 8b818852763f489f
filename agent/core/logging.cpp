#include "agent/core/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "agent/core/envelope_writer.h"

namespace tributary {

namespace {

// %* in a pattern: the message as a quoted, escaped JSON string.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped;
    AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), escaped);
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

void SetupLogging(std::string_view level, std::string_view format) {
  auto logger = spdlog::stderr_logger_mt("tributary");
  if (format == "json") {
    // The message is the only free text; escaped, every line stays one JSON object.
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":%*})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %-5l %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

namespace {

// libpq key=value: password=secret or password='se cret'
std::string RedactKeyValue(std::string_view dsn) {
  std::string out;
  size_t i = 0;
  while (i < dsn.size()) {
    size_t key_start = i;
    while (i < dsn.size() && dsn[i] != '=' && dsn[i] != ' ') ++i;
    std::string_view key = dsn.substr(key_start, i - key_start);
    size_t value_start = i;
    bool has_value = false;
    if (i < dsn.size() && dsn[i] == '=') {
      has_value = true;
      ++i;
      while (i < dsn.size() && dsn[i] == ' ') ++i;
      value_start = i;
      if (i < dsn.size() && dsn[i] == '\'') {
        ++i;
        while (i < dsn.size() && dsn[i] != '\'') i += (dsn[i] == '\\' ? 2 : 1);
        i = std::min(i + 1, dsn.size());
      } else {
        while (i < dsn.size() && dsn[i] != ' ') i += (dsn[i] == '\\' ? 2 : 1);
        i = std::min(i, dsn.size());
      }
    }
    out.append(key);
    if (has_value) {
      out += '=';
      if (key == "password") {
        out += "***";
      } else {
        out.append(dsn.substr(value_start, i - value_start));
      }
    }
    while (i < dsn.size() && dsn[i] == ' ') out += dsn[i++];
  }
  return out;
}

// scheme://user:password@host/...?password=...
std::string RedactUri(std::string_view dsn, size_t scheme_end) {
  std::string out(dsn);
  size_t authority = scheme_end + 3;
  size_t at = out.find('@', authority);
  size_t slash = out.find('/', authority);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    size_t colon = out.find(':', authority);
    if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  for (size_t pos = out.find("password=", scheme_end); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    size_t value = pos + 9;
    size_t end = out.find('&', value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

}  // namespace

std::string RedactDsn(std::string_view dsn) {
  size_t scheme = dsn.find("://");
  if (scheme != std::string_view::npos) return RedactUri(dsn, scheme);
  return RedactKeyValue(dsn);
}

}  // namespace tributary
