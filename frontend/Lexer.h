//===- Lexer.h - Splits .kiln source into tokens ----------------*- C++ -*-===//
//
// The tokenizer of the .kiln DSL. It reads one buffer of the reporter's
// llvm::SourceMgr, hands out one token at a time, and reports lexical errors
// (invalid characters, malformed literals, unterminated strings and comments)
// through the DiagnosticReporter. It always makes progress: every call to
// lex() consumes at least one byte or returns the end-of-file token.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_LEXER_H
#define KILN_FRONTEND_LEXER_H

#include "frontend/Diagnostics.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"

#include <cstdint>
#include <string>

namespace kiln {

/// The kinds of tokens of the .kiln DSL.
enum class TokenKind {
  Eof,        ///< End of the buffer (also returned once there are too many
              ///< errors).
  Identifier, ///< `[A-Za-z_][A-Za-z0-9_]*`, not a hard keyword.
  Integer,    ///< `[0-9]+`
  Float,      ///< `1.0`, `.5`, `1e-3`, `1.`
  String,     ///< `"..."` with escapes \\ \" \n \t.
  KwFn,       ///< `fn`
  KwModel,    ///< `model`
  KwTrain,    ///< `train`
  LParen,     ///< `(`
  RParen,     ///< `)`
  LBracket,   ///< `[`
  RBracket,   ///< `]`
  LBrace,     ///< `{`
  RBrace,     ///< `}`
  Comma,      ///< `,`
  Colon,      ///< `:`
  Semicolon,  ///< `;`
  Equal,      ///< `=`
  Arrow,      ///< `->`
  DotDot,     ///< `..`
  Plus,       ///< `+`
  Minus,      ///< `-`
  Star,       ///< `*`
  Slash,      ///< `/`
  At,         ///< `@`
};

/// A short human-readable name of a token kind, e.g. "identifier", "'('",
/// "end of file".
llvm::StringRef getTokenKindName(TokenKind kind);

/// One token: its kind, its spelling in the buffer, where it starts, and its
/// decoded value for literals.
struct Token {
  TokenKind kind = TokenKind::Eof;
  /// The exact source text of the token (empty for Eof).
  llvm::StringRef spelling;
  /// Where the token starts (for Eof: the end of the buffer).
  llvm::SMLoc loc;
  /// True if no other token precedes this one on its line, i.e. a newline
  /// (possibly inside a block comment) or the start of the buffer lies between
  /// the previous token and this one.
  bool firstOnLine = false;
  /// The value of an Integer token (0 if it was too large).
  int64_t intValue = 0;
  /// The value of a Float token (0 if it was malformed or out of range).
  double floatValue = 0;
  /// The decoded contents of a String token.
  std::string stringValue;
  /// True if the lexer reported an error inside this token (a malformed
  /// literal), so that the parser need not complain about it again.
  bool hasError = false;

  bool is(TokenKind k) const { return kind == k; }
  bool isNot(TokenKind k) const { return kind != k; }
  /// True for an identifier spelled exactly `name` (contextual keywords).
  bool isIdentifier(llvm::StringRef name) const {
    return kind == TokenKind::Identifier && spelling == name;
  }
  /// True for `fn`, `model` and `train`, which only start declarations.
  bool isHardKeyword() const {
    return kind == TokenKind::KwFn || kind == TokenKind::KwModel ||
           kind == TokenKind::KwTrain;
  }
};

/// Tokenizes one buffer of a SourceMgr. Errors go to the reporter; the lexer
/// skips what it cannot use and keeps going, and returns Eof for good once the
/// reporter has seen too many errors.
class Lexer {
public:
  /// Lexes buffer `bufferId` of `reporter.getSourceMgr()`.
  Lexer(unsigned bufferId, DiagnosticReporter &reporter);

  /// Returns the next token; Eof forever at the end.
  Token lex();

  /// True if a block comment or a string literal ran to the end of the buffer
  /// (so that the parser need not also complain about what is missing at the
  /// end of the file).
  bool reachedEndUnterminated() const { return unterminatedAtEnd; }

  /// The text being lexed.
  llvm::StringRef getBuffer() const {
    return llvm::StringRef(bufferStart, bufferEnd - bufferStart);
  }

private:
  /// Skips whitespace and comments; notes newlines in `sawNewline`.
  void skipTrivia();
  Token makeToken(TokenKind kind, const char *start);
  Token lexIdentifier(const char *start);
  Token lexNumber(const char *start);
  Token lexString(const char *start);
  /// Reports a run of invalid bytes starting at `start` and skips it.
  void skipInvalid(const char *start);
  void emitError(const char *loc, const llvm::Twine &msg);

  DiagnosticReporter &reporter;
  const char *bufferStart;
  const char *bufferEnd;
  const char *curPtr;
  /// True if a newline (or the start of the buffer) was seen since the last
  /// token.
  bool sawNewline = true;
  bool unterminatedAtEnd = false;
  /// True if an error was reported while lexing the current token.
  bool tokenHasError = false;
};

} // namespace kiln

#endif // KILN_FRONTEND_LEXER_H
