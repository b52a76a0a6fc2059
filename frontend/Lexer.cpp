//===- Lexer.cpp - Splits .kiln source into tokens ------------------------===//
//
// A hand-written scanner over one SourceMgr buffer. It never relies on the
// buffer's terminating NUL (a NUL byte inside the file is an invalid
// character like any other), and every path through lex() consumes at least
// one byte or returns Eof, so it cannot hang whatever the input.
//
//===----------------------------------------------------------------------===//

#include "frontend/Lexer.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace kiln;
using llvm::SMLoc;
using llvm::StringRef;

StringRef kiln::getTokenKindName(TokenKind kind) {
  switch (kind) {
  case TokenKind::Eof:
    return "end of file";
  case TokenKind::Identifier:
    return "identifier";
  case TokenKind::Integer:
    return "integer literal";
  case TokenKind::Float:
    return "float literal";
  case TokenKind::String:
    return "string literal";
  case TokenKind::KwFn:
    return "'fn'";
  case TokenKind::KwModel:
    return "'model'";
  case TokenKind::KwTrain:
    return "'train'";
  case TokenKind::LParen:
    return "'('";
  case TokenKind::RParen:
    return "')'";
  case TokenKind::LBracket:
    return "'['";
  case TokenKind::RBracket:
    return "']'";
  case TokenKind::LBrace:
    return "'{'";
  case TokenKind::RBrace:
    return "'}'";
  case TokenKind::Comma:
    return "','";
  case TokenKind::Colon:
    return "':'";
  case TokenKind::Semicolon:
    return "';'";
  case TokenKind::Equal:
    return "'='";
  case TokenKind::Arrow:
    return "'->'";
  case TokenKind::DotDot:
    return "'..'";
  case TokenKind::Plus:
    return "'+'";
  case TokenKind::Minus:
    return "'-'";
  case TokenKind::Star:
    return "'*'";
  case TokenKind::Slash:
    return "'/'";
  case TokenKind::At:
    return "'@'";
  }
  llvm_unreachable("unknown token kind");
}

/// Renders a byte for a diagnostic: printable ASCII as itself, anything else
/// as `\xNN`.
static std::string describeByte(unsigned char c) {
  std::string result;
  llvm::raw_string_ostream os(result);
  if (c >= 0x20 && c < 0x7f)
    os << static_cast<char>(c);
  else
    os << "\\x" << llvm::format_hex_no_prefix(c, 2, /*Upper=*/true);
  return result;
}

static bool isIdentStart(char c) { return llvm::isAlpha(c) || c == '_'; }
static bool isIdentChar(char c) { return llvm::isAlnum(c) || c == '_'; }

Lexer::Lexer(unsigned bufferId, DiagnosticReporter &reporter)
    : reporter(reporter) {
  StringRef buffer =
      reporter.getSourceMgr().getMemoryBuffer(bufferId)->getBuffer();
  bufferStart = buffer.begin();
  bufferEnd = buffer.end();
  curPtr = bufferStart;
}

void Lexer::emitError(const char *loc, const llvm::Twine &msg) {
  // Past the limit the parser reports "too many errors" and stops; nothing
  // more is worth saying.
  if (reporter.tooManyErrors())
    return;
  reporter.emitError(SMLoc::getFromPointer(loc), msg);
  tokenHasError = true;
}

Token Lexer::makeToken(TokenKind kind, const char *start) {
  Token tok;
  tok.kind = kind;
  tok.spelling = StringRef(start, curPtr - start);
  tok.loc = SMLoc::getFromPointer(start);
  tok.firstOnLine = sawNewline;
  tok.hasError = tokenHasError;
  sawNewline = false;
  return tok;
}

void Lexer::skipTrivia() {
  while (curPtr != bufferEnd) {
    switch (*curPtr) {
    case ' ':
    case '\t':
    case '\r':
      ++curPtr;
      continue;
    case '\n':
      sawNewline = true;
      ++curPtr;
      continue;
    case '#':
      while (curPtr != bufferEnd && *curPtr != '\n')
        ++curPtr;
      continue;
    case '/': {
      if (curPtr + 1 == bufferEnd || curPtr[1] != '*')
        return;
      const char *start = curPtr;
      curPtr += 2;
      while (true) {
        if (curPtr == bufferEnd) {
          emitError(start, "unterminated block comment");
          unterminatedAtEnd = true;
          return;
        }
        if (*curPtr == '*' && curPtr + 1 != bufferEnd && curPtr[1] == '/') {
          curPtr += 2;
          break;
        }
        if (*curPtr == '\n')
          sawNewline = true;
        ++curPtr;
      }
      continue;
    }
    default:
      return;
    }
  }
}

void Lexer::skipInvalid(const char *start) {
  auto c = static_cast<unsigned char>(*start);
  emitError(start, "invalid character '" + describeByte(c) + "'");
  curPtr = start + 1;
  // A non-ASCII character (e.g. a UTF-8 sequence) is one error, not one per
  // byte.
  if (c >= 0x80)
    while (curPtr != bufferEnd && static_cast<unsigned char>(*curPtr) >= 0x80)
      ++curPtr;
}

Token Lexer::lex() {
  while (true) {
    skipTrivia();
    const char *start = curPtr;
    // Once the reporter has given up, so does the lexer: this bounds the work
    // done on garbage input.
    tokenHasError = false;
    if (reporter.tooManyErrors() || curPtr == bufferEnd)
      return makeToken(TokenKind::Eof, start);

    char c = *curPtr++;
    switch (c) {
    case '(':
      return makeToken(TokenKind::LParen, start);
    case ')':
      return makeToken(TokenKind::RParen, start);
    case '[':
      return makeToken(TokenKind::LBracket, start);
    case ']':
      return makeToken(TokenKind::RBracket, start);
    case '{':
      return makeToken(TokenKind::LBrace, start);
    case '}':
      return makeToken(TokenKind::RBrace, start);
    case ',':
      return makeToken(TokenKind::Comma, start);
    case ':':
      return makeToken(TokenKind::Colon, start);
    case ';':
      return makeToken(TokenKind::Semicolon, start);
    case '=':
      return makeToken(TokenKind::Equal, start);
    case '+':
      return makeToken(TokenKind::Plus, start);
    case '*':
      return makeToken(TokenKind::Star, start);
    case '/':
      return makeToken(TokenKind::Slash, start);
    case '@':
      return makeToken(TokenKind::At, start);
    case '-':
      if (curPtr != bufferEnd && *curPtr == '>') {
        ++curPtr;
        return makeToken(TokenKind::Arrow, start);
      }
      return makeToken(TokenKind::Minus, start);
    case '.':
      if (curPtr != bufferEnd && *curPtr == '.') {
        ++curPtr;
        return makeToken(TokenKind::DotDot, start);
      }
      if (curPtr != bufferEnd && llvm::isDigit(*curPtr))
        return lexNumber(start);
      break;
    case '"':
      return lexString(start);
    default:
      if (isIdentStart(c))
        return lexIdentifier(start);
      if (llvm::isDigit(c))
        return lexNumber(start);
      break;
    }
    skipInvalid(start);
  }
}

Token Lexer::lexIdentifier(const char *start) {
  while (curPtr != bufferEnd && isIdentChar(*curPtr))
    ++curPtr;
  StringRef spelling(start, curPtr - start);
  TokenKind kind = TokenKind::Identifier;
  if (spelling == "fn")
    kind = TokenKind::KwFn;
  else if (spelling == "model")
    kind = TokenKind::KwModel;
  else if (spelling == "train")
    kind = TokenKind::KwTrain;
  return makeToken(kind, start);
}

Token Lexer::lexNumber(const char *start) {
  auto skipDigits = [&] {
    while (curPtr != bufferEnd && llvm::isDigit(*curPtr))
      ++curPtr;
  };
  curPtr = start;
  skipDigits();
  bool isFloat = false;
  // `1.5` and `1.` are floats, but in `0..6` the dot belongs to `..`.
  if (curPtr != bufferEnd && *curPtr == '.' &&
      !(curPtr + 1 != bufferEnd && curPtr[1] == '.')) {
    isFloat = true;
    ++curPtr;
    skipDigits();
  }
  bool malformed = false;
  if (curPtr != bufferEnd && (*curPtr == 'e' || *curPtr == 'E')) {
    isFloat = true;
    ++curPtr;
    if (curPtr != bufferEnd && (*curPtr == '+' || *curPtr == '-'))
      ++curPtr;
    if (curPtr == bufferEnd || !llvm::isDigit(*curPtr))
      malformed = true;
    skipDigits();
  }

  if (!isFloat) {
    Token tok = makeToken(TokenKind::Integer, start);
    if (tok.spelling.getAsInteger(10, tok.intValue)) {
      emitError(start, "integer literal is too large");
      tok.intValue = 0;
      tok.hasError = true;
    }
    return tok;
  }

  Token tok = makeToken(TokenKind::Float, start);
  if (malformed) {
    emitError(start, "malformed float literal");
    tok.hasError = true;
    return tok;
  }
  llvm::APFloat value(llvm::APFloat::IEEEdouble());
  auto status =
      value.convertFromString(tok.spelling, llvm::APFloat::rmNearestTiesToEven);
  if (!status) {
    llvm::consumeError(status.takeError());
    emitError(start, "malformed float literal");
    tok.hasError = true;
    return tok;
  }
  if (*status & llvm::APFloat::opOverflow) {
    emitError(start, "float literal is out of range");
    tok.hasError = true;
    return tok;
  }
  tok.floatValue = value.convertToDouble();
  return tok;
}

Token Lexer::lexString(const char *start) {
  std::string value;
  bool reportedEscape = false, reportedNul = false;
  while (true) {
    if (curPtr == bufferEnd || *curPtr == '\n') {
      emitError(start, "unterminated string literal");
      unterminatedAtEnd |= curPtr == bufferEnd;
      break;
    }
    char c = *curPtr++;
    if (c == '"')
      break;
    // A NUL would end the string wherever it is passed on as C text (a data
    // path in the manifest).
    if (c == '\0') {
      if (!reportedNul)
        emitError(curPtr - 1, "a NUL byte in a string literal");
      reportedNul = true;
      continue;
    }
    if (c != '\\') {
      value.push_back(c);
      continue;
    }
    // A backslash right before the end of the line: the string is
    // unterminated, which the next iteration reports.
    if (curPtr == bufferEnd || *curPtr == '\n')
      continue;
    char escaped = *curPtr++;
    switch (escaped) {
    case '\\':
    case '"':
      value.push_back(escaped);
      break;
    case 'n':
      value.push_back('\n');
      break;
    case 't':
      value.push_back('\t');
      break;
    default:
      if (!reportedEscape)
        emitError(curPtr - 2, "unknown escape sequence '\\" +
                                  describeByte(escaped) +
                                  "' in string literal");
      reportedEscape = true;
      value.push_back(escaped);
      break;
    }
  }
  Token tok = makeToken(TokenKind::String, start);
  tok.stringValue = std::move(value);
  return tok;
}
