#include "connectors/mysql/ddl_tables.h"

#include <cctype>
#include <optional>

namespace tributary::mysql {

namespace {

enum class TokenKind { kWord, kQuotedName, kString, kSymbol };

struct Token {
  TokenKind kind = TokenKind::kSymbol;
  std::string text;  // a quoted name unquoted; a string literal's text is not kept
};

bool WordChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '_' || c == '$' || u >= 0x80;
}

// Splits `query` into words, `quoted` names, string literals and symbols, without comments.
std::vector<Token> Tokenize(std::string_view query) {
  std::vector<Token> tokens;
  size_t i = 0;
  const size_t n = query.size();
  while (i < n) {
    const char c = query[i];
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      ++i;
    } else if (c == '/' && i + 1 < n && query[i + 1] == '*') {
      const size_t end = query.find("*/", i + 2);
      i = end == std::string_view::npos ? n : end + 2;
    } else if (c == '#' || (c == '-' && i + 2 < n && query[i + 1] == '-' &&
                            std::isspace(static_cast<unsigned char>(query[i + 2])) != 0)) {
      const size_t end = query.find('\n', i);
      i = end == std::string_view::npos ? n : end + 1;
    } else if (c == '`') {
      Token token{TokenKind::kQuotedName, {}};
      ++i;
      while (i < n) {
        if (query[i] == '`') {
          if (i + 1 < n && query[i + 1] == '`') {
            token.text.push_back('`');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        token.text.push_back(query[i++]);
      }
      tokens.push_back(std::move(token));
    } else if (c == '\'' || c == '"') {
      ++i;
      while (i < n) {
        if (query[i] == '\\') {
          i += 2;
        } else if (query[i] == c) {
          if (i + 1 < n && query[i + 1] == c) {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
      tokens.push_back(Token{TokenKind::kString, {}});
    } else if (WordChar(c)) {
      const size_t start = i;
      while (i < n && WordChar(query[i])) ++i;
      tokens.push_back(Token{TokenKind::kWord, std::string(query.substr(start, i - start))});
    } else {
      tokens.push_back(Token{TokenKind::kSymbol, std::string(1, c)});
      ++i;
    }
  }
  return tokens;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::string_view default_database)
      : tokens_(std::move(tokens)), default_database_(default_database) {}

  bool Is(std::string_view keyword, size_t ahead = 0) const {
    if (at_ + ahead >= tokens_.size()) return false;
    const Token& token = tokens_[at_ + ahead];
    if (token.kind != TokenKind::kWord || token.text.size() != keyword.size()) return false;
    for (size_t i = 0; i < keyword.size(); ++i) {
      if (std::toupper(static_cast<unsigned char>(token.text[i])) != keyword[i]) return false;
    }
    return true;
  }
  bool Accept(std::string_view keyword) {
    if (!Is(keyword)) return false;
    ++at_;
    return true;
  }
  bool AcceptSymbol(char symbol) {
    if (at_ >= tokens_.size() || tokens_[at_].kind != TokenKind::kSymbol ||
        tokens_[at_].text[0] != symbol) {
      return false;
    }
    ++at_;
    return true;
  }
  bool AtEnd() const { return at_ >= tokens_.size(); }
  void Advance() { ++at_; }

  // [database.]table
  std::optional<DdlTable> Name() {
    std::optional<std::string> first = Identifier();
    if (!first) return std::nullopt;
    if (AcceptSymbol('.')) {
      std::optional<std::string> second = Identifier();
      if (!second) return std::nullopt;
      return DdlTable{std::move(*first), std::move(*second)};
    }
    return DdlTable{std::string(default_database_), std::move(*first)};
  }

  // How deep in parentheses the next token is, once the tokens before it are skipped.
  int Depth() const { return depth_; }
  void Skip() {
    if (AtEnd()) return;
    const Token& token = tokens_[at_++];
    if (token.kind != TokenKind::kSymbol) return;
    if (token.text[0] == '(') ++depth_;
    if (token.text[0] == ')') --depth_;
  }

 private:
  std::optional<std::string> Identifier() {
    if (AtEnd()) return std::nullopt;
    const Token& token = tokens_[at_];
    if (token.kind != TokenKind::kWord && token.kind != TokenKind::kQuotedName) return std::nullopt;
    ++at_;
    return token.text;
  }

  std::vector<Token> tokens_;
  std::string_view default_database_;
  size_t at_ = 0;
  int depth_ = 0;
};

// MariaDB lets DROP and RENAME wait for locks: `WAIT n` or `NOWAIT`.
void SkipWait(Parser& p) {
  if (p.Accept("NOWAIT")) return;
  if (p.Accept("WAIT")) p.Advance();
}

DdlTables ParseCreate(Parser& p) {
  if (p.Accept("OR") && !p.Accept("REPLACE")) return {};
  if (p.Is("TEMPORARY") || !p.Accept("TABLE")) return {};
  if (p.Is("IF") && p.Is("NOT", 1) && p.Is("EXISTS", 2)) {
    for (int i = 0; i < 3; ++i) p.Advance();
  }
  std::optional<DdlTable> name = p.Name();
  if (!name) return {};
  return DdlTables{{std::move(*name)}, {}};
}

DdlTables ParseAlter(Parser& p) {
  p.Accept("ONLINE");
  p.Accept("IGNORE");
  if (!p.Accept("TABLE")) return {};
  if (p.Is("IF") && p.Is("EXISTS", 1)) {
    p.Advance();
    p.Advance();
  }
  std::optional<DdlTable> name = p.Name();
  if (!name) return {};
  // ALTER TABLE t RENAME [TO|AS] u, among the other clauses; RENAME COLUMN/INDEX/KEY is not it.
  while (!p.AtEnd()) {
    if (p.Depth() == 0 && p.Accept("RENAME")) {
      if (p.Is("COLUMN") || p.Is("INDEX") || p.Is("KEY") || p.Is("CONSTRAINT")) continue;
      if (!p.Accept("TO")) p.Accept("AS");
      std::optional<DdlTable> to = p.Name();
      if (!to) return {};
      return DdlTables{{std::move(*to)}, {std::move(*name)}};
    }
    p.Skip();
  }
  return DdlTables{{std::move(*name)}, {}};
}

DdlTables ParseDrop(Parser& p) {
  if (p.Is("TEMPORARY") || !(p.Accept("TABLE") || p.Accept("TABLES"))) return {};
  if (p.Is("IF") && p.Is("EXISTS", 1)) {
    p.Advance();
    p.Advance();
  }
  DdlTables out;
  do {
    std::optional<DdlTable> name = p.Name();
    if (!name) return {};
    out.removed.push_back(std::move(*name));
  } while (p.AcceptSymbol(','));
  return out;
}

DdlTables ParseRename(Parser& p) {
  if (!(p.Accept("TABLE") || p.Accept("TABLES"))) return {};
  if (p.Is("IF") && p.Is("EXISTS", 1)) {
    p.Advance();
    p.Advance();
  }
  DdlTables out;
  do {
    std::optional<DdlTable> from = p.Name();
    if (!from) return {};
    SkipWait(p);
    if (!p.Accept("TO")) return {};
    std::optional<DdlTable> to = p.Name();
    if (!to) return {};
    out.removed.push_back(std::move(*from));
    out.changed.push_back(std::move(*to));
  } while (p.AcceptSymbol(','));
  return out;
}

}  // namespace

DdlTables ParseDdlTables(std::string_view query, std::string_view default_database) {
  Parser p(Tokenize(query), default_database);
  if (p.Accept("CREATE")) return ParseCreate(p);
  if (p.Accept("ALTER")) return ParseAlter(p);
  if (p.Accept("DROP")) return ParseDrop(p);
  if (p.Accept("RENAME")) return ParseRename(p);
  return {};
}

}  // namespace tributary::mysql
