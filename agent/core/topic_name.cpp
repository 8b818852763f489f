#include "agent/core/topic_name.h"

#include <fmt/format.h>

namespace tributary {

Result<std::string> ExpandTopicTemplate(std::string_view owner, std::string_view topic_template,
                                        const TableSchema& table) {
  std::string topic;
  size_t i = 0;
  while (i < topic_template.size()) {
    if (topic_template[i] != '{') {
      topic += topic_template[i++];
      continue;
    }
    const size_t close = topic_template.find('}', i);
    if (close == std::string_view::npos) {
      return Status::InvalidConfig(
          fmt::format("{}: topic template \"{}\" has an unclosed '{{'", owner, topic_template));
    }
    const std::string_view field = topic_template.substr(i + 1, close - i - 1);
    if (field == "source") {
      topic += table.source;
    } else if (field == "schema") {
      topic += table.schema.empty() ? table.database : table.schema;
    } else if (field == "database") {
      topic += table.database;
    } else if (field == "table") {
      topic += table.table;
    } else {
      return Status::InvalidConfig(
          fmt::format("{}: topic template \"{}\" has an unknown field {{{}}}; known: {{source}}, "
                      "{{schema}}, {{database}}, {{table}}",
                      owner, topic_template, field));
    }
    i = close + 1;
  }
  for (char& c : topic) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!allowed) c = '_';
  }
  return topic;
}

}  // namespace tributary
