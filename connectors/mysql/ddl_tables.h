#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tributary::mysql {

struct DdlTable {
  std::string database;
  std::string table;

  bool operator==(const DdlTable&) const = default;
};

// The tables a DDL statement from a QUERY event touches, found by reading just enough of it:
// CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t, ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] t
// [... RENAME [TO|AS] u], DROP TABLE [IF EXISTS] a, b, RENAME TABLE [IF EXISTS] a TO b, c TO d.
// Temporary tables are never logged as rows, so their statements touch nothing here.
struct DdlTables {
  std::vector<DdlTable> changed;  // tables the statement gives a (new) shape, new names included
  std::vector<DdlTable> removed;  // tables that are gone afterwards: dropped, or renamed away
};

// Parses `query`; names without a database take `default_database` (the QUERY event's). A
// statement that is not one of the above, or that does not parse, touches no table.
DdlTables ParseDdlTables(std::string_view query, std::string_view default_database);

}  // namespace tributary::mysql
