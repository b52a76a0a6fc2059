//===- Parser.cpp - Parses .kiln source into an AST -----------------------===//
//
// A recursive-descent parser over the Lexer's token stream, with one token of
// lookahead beyond the current one. Syntax errors are reported through the
// DiagnosticReporter; after an error the parser drops the statement (or the
// declaration, for errors in a declaration's header) and resynchronizes, so one
// run reports several independent errors but at most one per statement.
// Recursion is bounded (kMaxNestingDepth), recovery is linear, and the parser
// stops for good after too many errors, so any input terminates quickly.
//
//===----------------------------------------------------------------------===//

#include "frontend/Parser.h"
#include "frontend/Lexer.h"

#include "llvm/ADT/Twine.h"

#include <algorithm>
#include <optional>

using namespace kiln;
using namespace kiln::ast;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

/// How deeply parentheses, call argument lists, unary minus operands and loop
/// bodies may nest while parsing, and how tall an expression tree may be (so
/// that the recursive passes over the AST, its destructor included, cannot
/// overflow the stack on a long chain like `a + a + ... + a`).
static constexpr unsigned kMaxNestingDepth = 256;

namespace {

class Parser {
public:
  Parser(unsigned bufferId, DiagnosticReporter &reporter)
      : reporter(reporter), lexer(bufferId, reporter) {
    tok = lexer.lex();
    checkErrorLimit();
  }

  /// module := (import | fnDecl | modelDecl | trainDecl | entryDecl)* EOF
  std::unique_ptr<Module> parseModule();

private:
  friend class NestingScope;

  //===--------------------------------------------------------------------===//
  // Token stream
  //===--------------------------------------------------------------------===//

  /// Moves to the next token.
  void consume();
  /// Consumes the current token if it has kind `kind`.
  bool consumeIf(TokenKind kind);
  /// The token after the current one.
  const Token &peekNext();
  /// Consumes an identifier and returns it.
  Ident takeIdent();
  /// Names a token for a diagnostic: `'x'`, `string literal`, `end of file`.
  static std::string describe(const Token &t);

  //===--------------------------------------------------------------------===//
  // Diagnostics and recovery
  //===--------------------------------------------------------------------===//

  /// Reports a syntax error unless one was already reported for the current
  /// statement or at the same place, or the parser has stopped.
  void error(SMLoc loc, const Twine &msg);
  /// Same, with a note "`note`" at `noteLoc`.
  void error(SMLoc loc, const Twine &msg, SMLoc noteLoc, const Twine &note);
  /// Whether error() would report at `loc` now.
  bool canReport(SMLoc loc) const;
  /// Starts a new statement for the one-error-per-statement rule. A statement
  /// that starts in the middle of a line (without a `;` before it) continues
  /// the previous one, so that an error does not cascade into the rest of the
  /// line.
  void beginStatement(bool force = false);
  /// Stops parsing (the current token becomes Eof for good) once the reporter
  /// has seen too many errors; reports that once. Returns true if stopped.
  bool checkErrorLimit();
  /// Makes the current token Eof for good.
  void stop();

  /// Skips the rest of a broken statement: up to a token that starts a line,
  /// a `;` (consumed) or a declaration start, outside any braces opened
  /// while skipping, or up to the `}` that closes the current block. Consumes
  /// at least one token unless at `}` or Eof, given that `startIndex` is the
  /// index of the statement's first token.
  void skipStatement(uint64_t startIndex);
  /// True at `fn NAME`, `model NAME` or `train NAME`: where a declaration
  /// starts (a keyword followed by anything else is just a stray token).
  bool atDeclarationStart();
  /// Skips to the next declaration start (top-level recovery).
  void skipToDeclaration();

  /// Enters one level of nesting; reports and stops past kMaxNestingDepth.
  bool enterNesting(SMLoc loc);
  /// Checks the height of a new expression node; reports and stops past
  /// kMaxNestingDepth.
  bool checkHeight(unsigned exprHeight, SMLoc loc);
  /// Reports "nested too deeply" at `loc` and stops.
  void reportTooDeep(SMLoc loc);

  //===--------------------------------------------------------------------===//
  // Grammar
  //===--------------------------------------------------------------------===//

  /// fnDecl := 'fn' IDENT '(' [fnParam (',' fnParam)* [',']] ')'
  ///           ['->' type] block
  bool parseFnDecl(FnDecl &fn);
  /// modelDecl := 'model' IDENT block
  bool parseModelDecl(ModelDecl &model);
  /// trainDecl := 'train' IDENT '{' trainItem* '}'
  bool parseTrainDecl(TrainDecl &train);
  /// trainItem := IDENT [IDENT '='] expr [';']
  bool parseTrainItem(TrainItem &item);

  /// Handles the end of a `{ ... }` body at the current token: consumes a
  /// `}`, or reports Eof or a declaration keyword (which also ends the body).
  /// Returns true if the body ends here.
  bool atBodyEnd(SMLoc openLoc);
  /// block := '{' stmt* '}' (the current token is '{').
  void parseBlock(Block &body);
  /// One statement; null after an error.
  StmtPtr parseStmt();
  StmtPtr parseParamStmt();
  StmtPtr parseInputStmt();
  std::optional<std::pair<Ident, TypeExpr>>
  parseDeclaration(llvm::StringRef keyword, llvm::StringRef article,
                   llvm::StringRef noun);
  StmtPtr parseOutputStmt();
  StmtPtr parseForStmt();
  /// ['let'] IDENT (',' IDENT)* '=' expr, after the `let` if any; `loc` is
  /// where the statement starts.
  StmtPtr parseBinding(SMLoc loc);

  /// type := (IDENT | 'fn') ['[' [expr (',' expr)*] ']']
  std::optional<TypeExpr> parseType();

  /// expr := additive
  ExprPtr parseExpr();
  ExprPtr parseAdditive();
  ExprPtr parseMultiplicative();
  ExprPtr parseUnary();
  ExprPtr parsePostfix();
  ExprPtr parsePrimary();
  /// After the first element and at a ',': the rest of a tuple `a, b, c`.
  ExprPtr parseTupleRest(ExprPtr first, SMLoc loc);
  /// The argument list of a call of `callee` (the current token is '(').
  ExprPtr parseCall(ExprPtr callee);

  DiagnosticReporter &reporter;
  Lexer lexer;
  /// The current token.
  Token tok;
  /// The token lexed ahead of `tok` by peekNext(), if any.
  std::optional<Token> ahead;
  /// How many tokens were consumed so far (the current token's index).
  uint64_t tokenIndex = 0;
  /// The kind of the last consumed token.
  TokenKind prevKind = TokenKind::Eof;
  /// The error count when the current statement began.
  unsigned errorMark = 0;
  /// Where the last syntax error was reported.
  SMLoc lastErrorLoc;
  /// Current nesting depth (see kMaxNestingDepth).
  unsigned depth = 0;
  /// The height of the expression tree that the last expression parsing
  /// function returned (a leaf is 1).
  unsigned height = 0;
  /// Set once the parser gives up (too many errors, too deep nesting).
  bool stopped = false;
};

/// Counts one level of nesting for as long as it lives.
class NestingScope {
public:
  NestingScope(Parser &parser, SMLoc loc)
      : parser(parser), ok(parser.enterNesting(loc)) {}
  ~NestingScope() { --parser.depth; }
  explicit operator bool() const { return ok; }

private:
  Parser &parser;
  bool ok;
};

} // namespace

//===----------------------------------------------------------------------===//
// Token stream
//===----------------------------------------------------------------------===//

void Parser::consume() {
  ++tokenIndex;
  if (stopped)
    return;
  prevKind = tok.kind;
  if (ahead) {
    tok = std::move(*ahead);
    ahead.reset();
  } else {
    tok = lexer.lex();
  }
  checkErrorLimit();
}

bool Parser::consumeIf(TokenKind kind) {
  if (tok.isNot(kind))
    return false;
  consume();
  return true;
}

const Token &Parser::peekNext() {
  if (!stopped && !ahead) {
    ahead = lexer.lex();
    checkErrorLimit();
  }
  if (stopped)
    return tok;
  return *ahead;
}

Ident Parser::takeIdent() {
  Ident id{tok.spelling.str(), tok.loc};
  consume();
  return id;
}

std::string Parser::describe(const Token &t) {
  switch (t.kind) {
  case TokenKind::Eof:
    return "end of file";
  case TokenKind::String:
    return "string literal";
  default:
    break;
  }
  StringRef spelling = t.spelling;
  if (spelling.size() > 32)
    return ("'" + spelling.take_front(29) + "...'").str();
  return ("'" + spelling + "'").str();
}

//===----------------------------------------------------------------------===//
// Diagnostics and recovery
//===----------------------------------------------------------------------===//

bool Parser::canReport(SMLoc loc) const {
  if (stopped || reporter.getNumErrors() > errorMark || loc == lastErrorLoc)
    return false;
  // The lexer already complained about this token.
  if (tok.hasError && loc == tok.loc)
    return false;
  // A block comment or string that ran to the end of the file already
  // explains whatever is missing there.
  if (lexer.reachedEndUnterminated() &&
      loc.getPointer() == lexer.getBuffer().end())
    return false;
  return true;
}

void Parser::error(SMLoc loc, const Twine &msg) {
  if (!canReport(loc))
    return;
  lastErrorLoc = loc;
  reporter.emitError(loc, msg);
  checkErrorLimit();
}

void Parser::error(SMLoc loc, const Twine &msg, SMLoc noteLoc,
                   const Twine &note) {
  if (!canReport(loc))
    return;
  lastErrorLoc = loc;
  reporter.emitError(loc, msg).attachNote(reporter.getLoc(noteLoc)) << note;
  checkErrorLimit();
}

void Parser::beginStatement(bool force) {
  if (force || tok.firstOnLine || prevKind == TokenKind::Semicolon ||
      prevKind == TokenKind::LBrace || prevKind == TokenKind::RBrace)
    errorMark = reporter.getNumErrors();
}

bool Parser::checkErrorLimit() {
  if (stopped)
    return true;
  if (!reporter.tooManyErrors())
    return false;
  reporter.emitError(tok.loc, "too many errors, stopping");
  stop();
  return true;
}

void Parser::stop() {
  stopped = true;
  ahead.reset();
  Token eof;
  eof.kind = TokenKind::Eof;
  eof.loc = tok.loc;
  tok = std::move(eof);
}

void Parser::skipStatement(uint64_t startIndex) {
  unsigned braces = 0;
  while (tok.isNot(TokenKind::Eof)) {
    bool progressed = tokenIndex != startIndex;
    if (progressed && atDeclarationStart())
      return;
    if (braces == 0) {
      if (tok.is(TokenKind::RBrace))
        return;
      if (tok.is(TokenKind::Semicolon)) {
        consume();
        return;
      }
      if (tok.firstOnLine && progressed)
        return;
    }
    if (tok.is(TokenKind::LBrace))
      ++braces;
    else if (tok.is(TokenKind::RBrace))
      --braces;
    consume();
  }
}

bool Parser::atDeclarationStart() {
  return tok.isHardKeyword() && peekNext().is(TokenKind::Identifier);
}

void Parser::skipToDeclaration() {
  while (tok.isNot(TokenKind::Eof) && !atDeclarationStart())
    consume();
}

bool Parser::enterNesting(SMLoc loc) {
  if (++depth <= kMaxNestingDepth)
    return true;
  reportTooDeep(loc);
  return false;
}

bool Parser::checkHeight(unsigned exprHeight, SMLoc loc) {
  if (exprHeight <= kMaxNestingDepth)
    return true;
  reportTooDeep(loc);
  return false;
}

void Parser::reportTooDeep(SMLoc loc) {
  if (stopped)
    return;
  // Always worth reporting, even after another error in this statement.
  beginStatement(/*force=*/true);
  error(loc, "expression is nested too deeply (limit " +
                 Twine(kMaxNestingDepth) + ")");
  stop();
}

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

std::unique_ptr<Module> Parser::parseModule() {
  auto module = std::make_unique<Module>();
  while (tok.isNot(TokenKind::Eof)) {
    beginStatement(/*force=*/true);
    switch (tok.kind) {
    case TokenKind::KwFn: {
      FnDecl fn;
      if (parseFnDecl(fn))
        module->functions.push_back(std::move(fn));
      else
        skipToDeclaration();
      break;
    }
    case TokenKind::KwModel: {
      ModelDecl model;
      if (parseModelDecl(model))
        module->models.push_back(std::move(model));
      else
        skipToDeclaration();
      break;
    }
    case TokenKind::KwTrain: {
      TrainDecl train;
      if (parseTrainDecl(train))
        module->trainings.push_back(std::move(train));
      else
        skipToDeclaration();
      break;
    }
    case TokenKind::Identifier:
      // `import nn` (a contextual keyword).
      // `generate MODEL { ... }`, `sample MODEL { ... }` (contextual
      // keywords).
      if (std::optional<EntryBlockKind> kind =
              parseEntryBlockKeyword(tok.spelling);
          kind && peekNext().is(TokenKind::Identifier)) {
        EntryDecl decl;
        decl.kind = *kind;
        decl.loc = tok.loc;
        consume();
        decl.model = takeIdent();
        if (tok.isNot(TokenKind::LBrace)) {
          error(tok.loc, std::string("expected '{' to start the ") +
                             keyword(*kind) + " block of '" + decl.model.name +
                             "'");
          skipToDeclaration();
          break;
        }
        parseBlock(decl.body);
        module->entries.push_back(std::move(decl));
        break;
      }
      if (tok.spelling == "import") {
        consume();
        if (tok.isNot(TokenKind::Identifier)) {
          error(tok.loc, "expected a library name after 'import', found " +
                             describe(tok));
          skipToDeclaration();
          break;
        }
        module->imports.push_back(takeIdent());
        consumeIf(TokenKind::Semicolon);
        break;
      }
      [[fallthrough]];
    default:
      error(tok.loc, "expected 'import', 'fn', 'model' or 'train' at top "
                     "level, found " +
                         describe(tok));
      consume();
      skipToDeclaration();
      break;
    }
  }
  return module;
}

bool Parser::parseFnDecl(FnDecl &fn) {
  consume(); // 'fn'
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc,
          "expected a function name after 'fn', found " + describe(tok));
    return false;
  }
  fn.name = takeIdent();
  if (tok.isNot(TokenKind::LParen)) {
    error(tok.loc, "expected '(' after function name '" + fn.name.name + "'");
    return false;
  }
  consume();
  while (tok.isNot(TokenKind::RParen)) {
    if (tok.isNot(TokenKind::Identifier)) {
      error(tok.loc, "expected a parameter name in the parameter list of '" +
                         fn.name.name + "', found " + describe(tok));
      return false;
    }
    FnParam param;
    param.name = takeIdent();
    if (consumeIf(TokenKind::Colon)) {
      param.type = parseType();
      if (!param.type)
        return false;
    }
    if (consumeIf(TokenKind::Equal)) {
      param.defaultValue = parseExpr();
      if (!param.defaultValue)
        return false;
    }
    fn.params.push_back(std::move(param));
    if (consumeIf(TokenKind::Comma))
      continue;
    if (tok.isNot(TokenKind::RParen)) {
      error(tok.loc, "expected ',' or ')' after parameter '" +
                         fn.params.back().name.name + "' of function '" +
                         fn.name.name + "'");
      return false;
    }
  }
  consume(); // ')'
  if (consumeIf(TokenKind::Arrow)) {
    fn.resultType = parseType();
    if (!fn.resultType)
      return false;
  }
  if (tok.isNot(TokenKind::LBrace)) {
    error(tok.loc,
          "expected '{' to start the body of function '" + fn.name.name + "'");
    return false;
  }
  parseBlock(fn.body);
  return true;
}

bool Parser::parseModelDecl(ModelDecl &model) {
  consume(); // 'model'
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc,
          "expected a model name after 'model', found " + describe(tok));
    return false;
  }
  model.name = takeIdent();
  if (tok.isNot(TokenKind::LBrace)) {
    error(tok.loc,
          "expected '{' to start the body of model '" + model.name.name + "'");
    return false;
  }
  parseBlock(model.body);
  return true;
}

bool Parser::parseTrainDecl(TrainDecl &train) {
  train.loc = tok.loc;
  consume(); // 'train'
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc,
          "expected a model name after 'train', found " + describe(tok));
    return false;
  }
  train.model = takeIdent();
  if (tok.isNot(TokenKind::LBrace)) {
    error(tok.loc,
          "expected '{' to start the body of train '" + train.model.name + "'");
    return false;
  }
  SMLoc openLoc = tok.loc;
  consume();
  while (!atBodyEnd(openLoc)) {
    uint64_t startIndex = tokenIndex;
    beginStatement();
    TrainItem item;
    if (!parseTrainItem(item)) {
      skipStatement(startIndex);
      continue;
    }
    train.items.push_back(std::move(item));
    consumeIf(TokenKind::Semicolon);
  }
  return true;
}

bool Parser::parseTrainItem(TrainItem &item) {
  if (tok.isHardKeyword()) {
    error(tok.loc, "unexpected '" + tok.spelling + "' inside a block");
    return false;
  }
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc,
          "expected a setting name in the train block, found " + describe(tok));
    return false;
  }
  item.key = takeIdent();
  if (tok.is(TokenKind::Identifier) && peekNext().is(TokenKind::Equal)) {
    item.target = takeIdent();
    consume(); // '='
  }
  item.value = parseExpr();
  return item.value != nullptr;
}

//===----------------------------------------------------------------------===//
// Statements
//===----------------------------------------------------------------------===//

bool Parser::atBodyEnd(SMLoc openLoc) {
  if (tok.is(TokenKind::RBrace)) {
    consume();
    return true;
  }
  if (tok.is(TokenKind::Eof)) {
    beginStatement(/*force=*/true);
    error(tok.loc, "expected '}' at end of block", openLoc,
          "block opened here");
    return true;
  }
  // `fn name`, `model name`, `train name`: most likely a '}' is missing and
  // a new declaration starts; end the body so that it gets parsed.
  if (atDeclarationStart()) {
    beginStatement(/*force=*/true);
    error(tok.loc, "unexpected '" + tok.spelling + "' inside a block", openLoc,
          "block opened here");
    return true;
  }
  return false;
}

void Parser::parseBlock(Block &body) {
  SMLoc openLoc = tok.loc;
  consume(); // '{'
  while (!atBodyEnd(openLoc)) {
    uint64_t startIndex = tokenIndex;
    beginStatement();
    StmtPtr stmt = parseStmt();
    if (!stmt) {
      skipStatement(startIndex);
      continue;
    }
    body.push_back(std::move(stmt));
    consumeIf(TokenKind::Semicolon);
  }
}

StmtPtr Parser::parseStmt() {
  if (tok.isHardKeyword()) {
    error(tok.loc, "unexpected '" + tok.spelling + "' inside a block");
    return nullptr;
  }
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, "expected a statement, found " + describe(tok));
    return nullptr;
  }
  // Contextual keywords: `loss = mse(a, b)` binds a variable named `loss`.
  TokenKind next = peekNext().kind;
  if (next == TokenKind::Equal || next == TokenKind::Comma)
    return parseBinding(tok.loc);

  StringRef word = tok.spelling;
  SMLoc loc = tok.loc;
  if (word == "param")
    return parseParamStmt();
  if (word == "input")
    return parseInputStmt();
  if (word == "output")
    return parseOutputStmt();
  if (word == "for")
    return parseForStmt();
  if (word == "loss" || word == "return") {
    bool isLoss = word == "loss";
    consume();
    ExprPtr value = parseExpr();
    if (!value)
      return nullptr;
    if (isLoss)
      return std::make_unique<LossStmt>(loc, std::move(value));
    // `return h, c` returns a tuple.
    if (tok.is(TokenKind::Comma)) {
      SMLoc first = value->getLoc();
      value = parseTupleRest(std::move(value), first);
      if (!value)
        return nullptr;
    }
    return std::make_unique<ReturnStmt>(loc, std::move(value));
  }
  if (word == "let") {
    consume();
    return parseBinding(loc);
  }
  return parseBinding(loc);
}

/// `KEYWORD NAME : TYPE`, the start of `param` and `input` statements;
/// messages name the declared thing (`article` `noun`: "a parameter").
std::optional<std::pair<Ident, TypeExpr>>
Parser::parseDeclaration(llvm::StringRef keyword, llvm::StringRef article,
                         llvm::StringRef noun) {
  consume(); // the keyword
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, "expected " + article.str() + " " + noun.str() +
                       " name after '" + keyword.str() + "', found " +
                       describe(tok));
    return std::nullopt;
  }
  Ident name = takeIdent();
  if (tok.isNot(TokenKind::Colon)) {
    error(tok.loc, "expected ':' and a type after " + noun.str() + " name '" +
                       name.name + "'");
    return std::nullopt;
  }
  consume();
  std::optional<TypeExpr> type = parseType();
  if (!type)
    return std::nullopt;
  return std::make_pair(std::move(name), std::move(*type));
}

StmtPtr Parser::parseParamStmt() {
  SMLoc loc = tok.loc;
  auto declared = parseDeclaration("param", "a", "parameter");
  if (!declared)
    return nullptr;
  auto &[name, type] = *declared;
  if (tok.isNot(TokenKind::Equal)) {
    error(tok.loc, "expected '=' and an initializer after the type of "
                   "parameter '" +
                       name.name + "'");
    return nullptr;
  }
  consume();
  ExprPtr init = parseExpr();
  if (!init)
    return nullptr;
  return std::make_unique<ParamStmt>(loc, std::move(name), std::move(type),
                                     std::move(init));
}

StmtPtr Parser::parseInputStmt() {
  SMLoc loc = tok.loc;
  auto declared = parseDeclaration("input", "an", "input");
  if (!declared)
    return nullptr;
  auto &[name, type] = *declared;
  return std::make_unique<InputStmt>(loc, std::move(name), std::move(type));
}

StmtPtr Parser::parseOutputStmt() {
  SMLoc loc = tok.loc;
  consume(); // 'output'
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc,
          "expected an output name after 'output', found " + describe(tok));
    return nullptr;
  }
  Ident name = takeIdent();
  if (tok.isNot(TokenKind::Equal)) {
    error(tok.loc, "expected '=' after output name '" + name.name + "'");
    return nullptr;
  }
  consume();
  ExprPtr value = parseExpr();
  if (!value)
    return nullptr;
  return std::make_unique<OutputStmt>(loc, std::move(name), std::move(value));
}

StmtPtr Parser::parseForStmt() {
  SMLoc loc = tok.loc;
  consume(); // 'for'
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc,
          "expected a loop variable name after 'for', found " + describe(tok));
    return nullptr;
  }
  Ident var = takeIdent();
  if (!tok.isIdentifier("in")) {
    error(tok.loc, "expected 'in' after loop variable '" + var.name + "'");
    return nullptr;
  }
  consume();
  ExprPtr lo = parseExpr();
  if (!lo)
    return nullptr;
  if (tok.isNot(TokenKind::DotDot)) {
    error(tok.loc, "expected '..' after the start of the range of loop "
                   "variable '" +
                       var.name + "'");
    return nullptr;
  }
  consume();
  ExprPtr hi = parseExpr();
  if (!hi)
    return nullptr;
  if (tok.isNot(TokenKind::LBrace)) {
    error(tok.loc,
          "expected '{' to start the body of the loop over '" + var.name + "'");
    return nullptr;
  }
  NestingScope scope(*this, tok.loc);
  if (!scope)
    return nullptr;
  Block body;
  parseBlock(body);
  return std::make_unique<ForStmt>(loc, std::move(var), std::move(lo),
                                   std::move(hi), std::move(body));
}

StmtPtr Parser::parseBinding(SMLoc loc) {
  if (tok.isNot(TokenKind::Identifier)) {
    // Only reachable after `let`: a statement never starts otherwise here.
    error(tok.loc, "expected a name after 'let', found " + describe(tok));
    return nullptr;
  }
  std::vector<Ident> targets;
  targets.push_back(takeIdent());
  while (consumeIf(TokenKind::Comma)) {
    if (tok.isNot(TokenKind::Identifier)) {
      error(tok.loc, "expected a name after ',' in the targets of an "
                     "assignment, found " +
                         describe(tok));
      return nullptr;
    }
    targets.push_back(takeIdent());
  }
  if (tok.isNot(TokenKind::Equal)) {
    error(tok.loc, "expected '=' after '" + targets.back().name + "', found " +
                       describe(tok));
    return nullptr;
  }
  consume();
  ExprPtr value = parseExpr();
  if (!value)
    return nullptr;
  return std::make_unique<LetStmt>(loc, std::move(targets), std::move(value));
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

std::optional<TypeExpr> Parser::parseType() {
  // `fn` (the type of a function-valued parameter) is a hard keyword.
  if (tok.isNot(TokenKind::Identifier) && tok.isNot(TokenKind::KwFn)) {
    error(tok.loc, "expected a type, found " + describe(tok));
    return std::nullopt;
  }
  TypeExpr type;
  type.loc = tok.loc;
  type.name = tok.spelling.str();
  consume();
  if (tok.isNot(TokenKind::LBracket))
    return type;
  type.isTensor = true;
  consume();
  if (consumeIf(TokenKind::RBracket))
    return type;
  while (true) {
    ExprPtr dim = parseExpr();
    if (!dim)
      return std::nullopt;
    type.dims.push_back(std::move(dim));
    if (consumeIf(TokenKind::Comma))
      continue;
    if (consumeIf(TokenKind::RBracket))
      return type;
    error(tok.loc, "expected ',' or ']' in the shape of type '" + type.name +
                       "', found " + describe(tok));
    return std::nullopt;
  }
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

ExprPtr Parser::parseExpr() { return parseAdditive(); }

ExprPtr Parser::parseAdditive() {
  ExprPtr lhs = parseMultiplicative();
  unsigned lhsHeight = height;
  while (lhs && (tok.is(TokenKind::Plus) || tok.is(TokenKind::Minus))) {
    auto op =
        tok.is(TokenKind::Plus) ? BinaryExpr::Op::Add : BinaryExpr::Op::Sub;
    SMLoc loc = tok.loc;
    consume();
    ExprPtr rhs = parseMultiplicative();
    if (!rhs)
      return nullptr;
    lhsHeight = std::max(lhsHeight, height) + 1;
    if (!checkHeight(lhsHeight, loc))
      return nullptr;
    lhs = std::make_unique<BinaryExpr>(loc, op, std::move(lhs), std::move(rhs));
  }
  height = lhsHeight;
  return lhs;
}

ExprPtr Parser::parseMultiplicative() {
  ExprPtr lhs = parseUnary();
  unsigned lhsHeight = height;
  while (lhs) {
    BinaryExpr::Op op;
    if (tok.is(TokenKind::Star))
      op = BinaryExpr::Op::Mul;
    else if (tok.is(TokenKind::Slash))
      op = BinaryExpr::Op::Div;
    else if (tok.is(TokenKind::At))
      op = BinaryExpr::Op::MatMul;
    else
      break;
    SMLoc loc = tok.loc;
    consume();
    ExprPtr rhs = parseUnary();
    if (!rhs)
      return nullptr;
    lhsHeight = std::max(lhsHeight, height) + 1;
    if (!checkHeight(lhsHeight, loc))
      return nullptr;
    lhs = std::make_unique<BinaryExpr>(loc, op, std::move(lhs), std::move(rhs));
  }
  height = lhsHeight;
  return lhs;
}

ExprPtr Parser::parseUnary() {
  if (tok.isNot(TokenKind::Minus))
    return parsePostfix();
  SMLoc loc = tok.loc;
  NestingScope scope(*this, loc);
  if (!scope)
    return nullptr;
  consume();
  ExprPtr operand = parseUnary();
  if (!operand || !checkHeight(++height, loc))
    return nullptr;
  return std::make_unique<UnaryExpr>(loc, UnaryExpr::Op::Neg,
                                     std::move(operand));
}

ExprPtr Parser::parsePostfix() {
  ExprPtr expr = parsePrimary();
  while (expr && tok.is(TokenKind::LParen))
    expr = parseCall(std::move(expr));
  return expr;
}

ExprPtr Parser::parseCall(ExprPtr callee) {
  SMLoc openLoc = tok.loc;
  NestingScope scope(*this, openLoc);
  if (!scope)
    return nullptr;
  consume();                    // '('
  unsigned callHeight = height; // the callee's
  std::vector<Arg> args;
  while (tok.isNot(TokenKind::RParen)) {
    Arg arg;
    // `name = value` is a keyword argument.
    if (tok.is(TokenKind::Identifier) && peekNext().is(TokenKind::Equal)) {
      arg.keyword = tok.spelling.str();
      arg.keywordLoc = tok.loc;
      consume();
      consume(); // '='
    }
    arg.value = parseExpr();
    if (!arg.value)
      return nullptr;
    callHeight = std::max(callHeight, height);
    args.push_back(std::move(arg));
    if (consumeIf(TokenKind::Comma))
      continue;
    if (tok.isNot(TokenKind::RParen)) {
      if (auto *name = llvm::dyn_cast<NameExpr>(callee.get()))
        error(tok.loc,
              "expected ')' to close the call to '" + name->name + "'");
      else
        error(tok.loc, "expected ')' to close the call");
      return nullptr;
    }
  }
  consume(); // ')'
  SMLoc loc = callee->getLoc();
  if (!checkHeight(++callHeight, openLoc))
    return nullptr;
  height = callHeight;
  return std::make_unique<CallExpr>(loc, std::move(callee), std::move(args));
}

ExprPtr Parser::parsePrimary() {
  SMLoc loc = tok.loc;
  switch (tok.kind) {
  case TokenKind::Integer: {
    auto expr = std::make_unique<IntExpr>(loc, tok.intValue);
    consume();
    height = 1;
    return expr;
  }
  case TokenKind::Float: {
    auto expr = std::make_unique<FloatExpr>(loc, tok.floatValue);
    consume();
    height = 1;
    return expr;
  }
  case TokenKind::String: {
    auto expr = std::make_unique<StringExpr>(loc, std::move(tok.stringValue));
    consume();
    height = 1;
    return expr;
  }
  case TokenKind::Identifier: {
    auto expr = std::make_unique<NameExpr>(loc, tok.spelling.str());
    consume();
    height = 1;
    return expr;
  }
  case TokenKind::LParen: {
    NestingScope scope(*this, loc);
    if (!scope)
      return nullptr;
    consume();
    ExprPtr inner = parseExpr();
    if (!inner)
      return nullptr;
    if (tok.is(TokenKind::Comma)) {
      inner = parseTupleRest(std::move(inner), loc);
      if (!inner)
        return nullptr;
    }
    if (tok.isNot(TokenKind::RParen)) {
      error(tok.loc, "expected ')' to close the parenthesized expression", loc,
            "'(' is here");
      return nullptr;
    }
    consume();
    return inner;
  }
  default:
    error(loc, "expected an expression, found " + describe(tok));
    return nullptr;
  }
}

ExprPtr Parser::parseTupleRest(ExprPtr first, SMLoc loc) {
  std::vector<ExprPtr> elements;
  unsigned tupleHeight = height;
  elements.push_back(std::move(first));
  while (consumeIf(TokenKind::Comma)) {
    ExprPtr e = parseExpr();
    if (!e)
      return nullptr;
    tupleHeight = std::max(tupleHeight, height);
    elements.push_back(std::move(e));
  }
  if (!checkHeight(++tupleHeight, loc))
    return nullptr;
  height = tupleHeight;
  return std::make_unique<TupleExpr>(loc, std::move(elements));
}

std::unique_ptr<Module> kiln::parseModule(unsigned bufferId,
                                          DiagnosticReporter &reporter) {
  Parser parser(bufferId, reporter);
  return parser.parseModule();
}
