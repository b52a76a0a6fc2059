//===- LexerTest.cpp - Unit tests of the .kiln tokenizer ------------------===//

#include "frontend/Lexer.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace kiln;

namespace {

/// One reported diagnostic, flattened.
struct Message {
  std::string text;
  unsigned line = 0;
  unsigned col = 0;
};

/// Lexes a string and records the tokens and diagnostics.
class LexHarness {
public:
  explicit LexHarness(llvm::StringRef src)
      : ctx(mlir::MLIRContext::Threading::DISABLED), reporter(srcMgr, &ctx),
        handler(&ctx, [this](mlir::Diagnostic &diag) {
          Message message;
          message.text = diag.str();
          if (auto loc =
                  llvm::dyn_cast<mlir::FileLineColLoc>(diag.getLocation())) {
            message.line = loc.getLine();
            message.col = loc.getColumn();
          }
          messages.push_back(message);
          return mlir::success();
        }) {
    bufferId = srcMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(src, "test.kiln"), llvm::SMLoc());
  }

  /// Lexes everything up to and including Eof.
  std::vector<Token> lexAll() {
    Lexer lexer(bufferId, reporter);
    std::vector<Token> tokens;
    while (true) {
      tokens.push_back(lexer.lex());
      if (tokens.back().is(TokenKind::Eof))
        return tokens;
    }
  }

  /// The kinds of all tokens, Eof excluded.
  std::vector<TokenKind> kinds() {
    std::vector<TokenKind> result;
    for (const Token &tok : lexAll())
      if (tok.isNot(TokenKind::Eof))
        result.push_back(tok.kind);
    return result;
  }

  std::pair<unsigned, unsigned> lineCol(llvm::SMLoc loc) const {
    return srcMgr.getLineAndColumn(loc, bufferId);
  }

  mlir::MLIRContext ctx;
  llvm::SourceMgr srcMgr;
  DiagnosticReporter reporter;
  std::vector<Message> messages;
  mlir::ScopedDiagnosticHandler handler;
  unsigned bufferId = 0;
};

/// Lexes `src`, expecting exactly one error `text` at `line`:`col`.
void expectSingleError(llvm::StringRef src, llvm::StringRef text, unsigned line,
                       unsigned col) {
  LexHarness h(src);
  h.lexAll();
  ASSERT_EQ(h.messages.size(), 1u) << "source: " << src.str();
  EXPECT_EQ(h.messages[0].text, text.str()) << "source: " << src.str();
  EXPECT_EQ(h.messages[0].line, line) << "source: " << src.str();
  EXPECT_EQ(h.messages[0].col, col) << "source: " << src.str();
}

} // namespace

TEST(LexerTest, Punctuation) {
  LexHarness h("( ) [ ] { } , : ; = -> .. + - * / @");
  std::vector<TokenKind> expected = {
      TokenKind::LParen,   TokenKind::RParen, TokenKind::LBracket,
      TokenKind::RBracket, TokenKind::LBrace, TokenKind::RBrace,
      TokenKind::Comma,    TokenKind::Colon,  TokenKind::Semicolon,
      TokenKind::Equal,    TokenKind::Arrow,  TokenKind::DotDot,
      TokenKind::Plus,     TokenKind::Minus,  TokenKind::Star,
      TokenKind::Slash,    TokenKind::At};
  EXPECT_EQ(h.kinds(), expected);
  EXPECT_TRUE(h.messages.empty());
}

TEST(LexerTest, PunctuationWithoutSpaces) {
  LexHarness h("a->b-c=(d)..e@f/g*h");
  std::vector<TokenKind> expected = {
      TokenKind::Identifier, TokenKind::Arrow,      TokenKind::Identifier,
      TokenKind::Minus,      TokenKind::Identifier, TokenKind::Equal,
      TokenKind::LParen,     TokenKind::Identifier, TokenKind::RParen,
      TokenKind::DotDot,     TokenKind::Identifier, TokenKind::At,
      TokenKind::Identifier, TokenKind::Slash,      TokenKind::Identifier,
      TokenKind::Star,       TokenKind::Identifier};
  EXPECT_EQ(h.kinds(), expected);
  EXPECT_TRUE(h.messages.empty());
}

TEST(LexerTest, KeywordsAndIdentifiers) {
  LexHarness h("fn model train param let return _x x1 f32 fnx Model trains");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 13u);
  EXPECT_TRUE(tokens[0].is(TokenKind::KwFn));
  EXPECT_TRUE(tokens[1].is(TokenKind::KwModel));
  EXPECT_TRUE(tokens[2].is(TokenKind::KwTrain));
  EXPECT_TRUE(tokens[0].isHardKeyword());
  const char *names[] = {"param", "let", "return", "_x",    "x1",
                         "f32",   "fnx", "Model",  "trains"};
  for (unsigned i = 0; i < 9; ++i) {
    EXPECT_TRUE(tokens[3 + i].is(TokenKind::Identifier)) << names[i];
    EXPECT_EQ(tokens[3 + i].spelling, names[i]);
    EXPECT_TRUE(tokens[3 + i].isIdentifier(names[i]));
    EXPECT_FALSE(tokens[3 + i].isHardKeyword());
  }
  EXPECT_TRUE(tokens[12].is(TokenKind::Eof));
}

TEST(LexerTest, IntegerLiterals) {
  LexHarness h("0 42 007 9223372036854775807");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 5u);
  for (unsigned i = 0; i < 4; ++i)
    EXPECT_TRUE(tokens[i].is(TokenKind::Integer));
  EXPECT_EQ(tokens[0].intValue, 0);
  EXPECT_EQ(tokens[1].intValue, 42);
  EXPECT_EQ(tokens[2].intValue, 7);
  EXPECT_EQ(tokens[3].intValue, INT64_MAX);
  EXPECT_TRUE(h.messages.empty());
}

TEST(LexerTest, FloatLiterals) {
  LexHarness h("1.0 .5 1e-3 2.5E+4 1. 1.e2 3e2 0.25");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 9u);
  double expected[] = {1.0, 0.5, 1e-3, 2.5e4, 1.0, 100.0, 300.0, 0.25};
  for (unsigned i = 0; i < 8; ++i) {
    EXPECT_TRUE(tokens[i].is(TokenKind::Float)) << tokens[i].spelling.str();
    EXPECT_DOUBLE_EQ(tokens[i].floatValue, expected[i]);
  }
  EXPECT_EQ(tokens[2].spelling, "1e-3");
  EXPECT_TRUE(h.messages.empty());
}

TEST(LexerTest, RangeIsNotAFloat) {
  LexHarness h("0..6 1.5..2 n..m ..5");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 12u);
  EXPECT_TRUE(tokens[0].is(TokenKind::Integer));
  EXPECT_EQ(tokens[0].intValue, 0);
  EXPECT_TRUE(tokens[1].is(TokenKind::DotDot));
  EXPECT_TRUE(tokens[2].is(TokenKind::Integer));
  EXPECT_EQ(tokens[2].intValue, 6);
  EXPECT_TRUE(tokens[3].is(TokenKind::Float));
  EXPECT_DOUBLE_EQ(tokens[3].floatValue, 1.5);
  EXPECT_TRUE(tokens[4].is(TokenKind::DotDot));
  EXPECT_TRUE(tokens[5].is(TokenKind::Integer));
  EXPECT_TRUE(tokens[6].is(TokenKind::Identifier));
  EXPECT_TRUE(tokens[7].is(TokenKind::DotDot));
  EXPECT_TRUE(tokens[8].is(TokenKind::Identifier));
  EXPECT_TRUE(tokens[9].is(TokenKind::DotDot));
  EXPECT_TRUE(tokens[10].is(TokenKind::Integer));
  EXPECT_TRUE(h.messages.empty());
}

TEST(LexerTest, StringLiterals) {
  LexHarness h(R"("plain" "a\\b\"c\nd\te" "" "data/mnist/x")");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 5u);
  EXPECT_TRUE(tokens[0].is(TokenKind::String));
  EXPECT_EQ(tokens[0].stringValue, "plain");
  EXPECT_EQ(tokens[0].spelling, "\"plain\"");
  EXPECT_EQ(tokens[1].stringValue, "a\\b\"c\nd\te");
  EXPECT_EQ(tokens[2].stringValue, "");
  EXPECT_EQ(tokens[3].stringValue, "data/mnist/x");
  EXPECT_TRUE(h.messages.empty());
}

TEST(LexerTest, LineComments) {
  LexHarness h("a # comment ) ( \"\n# whole line\nb#trailing");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].spelling, "a");
  EXPECT_EQ(tokens[1].spelling, "b");
  EXPECT_TRUE(tokens[1].firstOnLine);
  EXPECT_EQ(h.lineCol(tokens[1].loc), std::make_pair(3u, 1u));
  EXPECT_TRUE(h.messages.empty());
}

TEST(LexerTest, BlockComments) {
  LexHarness h("a /* x \n y */ b /**/ c /* # */ d/***/e /* / * */ f");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 7u);
  const char *names[] = {"a", "b", "c", "d", "e", "f"};
  for (unsigned i = 0; i < 6; ++i)
    EXPECT_EQ(tokens[i].spelling, names[i]);
  // A newline inside a block comment separates lines too.
  EXPECT_TRUE(tokens[1].firstOnLine);
  EXPECT_FALSE(tokens[2].firstOnLine);
  EXPECT_TRUE(h.messages.empty());
}

TEST(LexerTest, BlockCommentsDoNotNest) {
  LexHarness h("/* /* */ x */");
  std::vector<TokenKind> expected = {TokenKind::Identifier, TokenKind::Star,
                                     TokenKind::Slash};
  EXPECT_EQ(h.kinds(), expected);
}

TEST(LexerTest, FirstOnLineFlags) {
  LexHarness h("a b\n  c\r\n\td e\n\n\nf");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 7u);
  bool expected[] = {true, false, true, true, false, true};
  for (unsigned i = 0; i < 6; ++i)
    EXPECT_EQ(tokens[i].firstOnLine, expected[i]) << tokens[i].spelling.str();
  EXPECT_EQ(h.lineCol(tokens[3].loc), std::make_pair(3u, 2u));
  EXPECT_EQ(h.lineCol(tokens[5].loc), std::make_pair(6u, 1u));
}

TEST(LexerTest, LocationsAndSpellings) {
  LexHarness h("fn dense(x: f32[B, I]) -> f32 {\n  return x @ w\n}");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_GE(tokens.size(), 18u);
  EXPECT_EQ(tokens[1].spelling, "dense");
  EXPECT_EQ(h.lineCol(tokens[1].loc), std::make_pair(1u, 4u));
  EXPECT_TRUE(tokens[12].is(TokenKind::Arrow));
  EXPECT_EQ(h.lineCol(tokens[12].loc), std::make_pair(1u, 24u));
  EXPECT_EQ(tokens[15].spelling, "return");
  EXPECT_EQ(h.lineCol(tokens[15].loc), std::make_pair(2u, 3u));
  EXPECT_TRUE(tokens[17].is(TokenKind::At));
  EXPECT_EQ(h.lineCol(tokens[17].loc), std::make_pair(2u, 12u));
}

TEST(LexerTest, EmptyAndTriviaOnlyInputs) {
  for (llvm::StringRef src :
       {"", "   \n\t\r\n", "# only a comment", "/* block */\n# line\n"}) {
    LexHarness h(src);
    std::vector<Token> tokens = h.lexAll();
    ASSERT_EQ(tokens.size(), 1u) << src.str();
    EXPECT_TRUE(tokens[0].is(TokenKind::Eof));
    EXPECT_TRUE(tokens[0].spelling.empty());
    EXPECT_TRUE(h.messages.empty());
  }
}

TEST(LexerTest, EofIsSticky) {
  LexHarness h("x");
  Lexer lexer(h.bufferId, h.reporter);
  EXPECT_TRUE(lexer.lex().is(TokenKind::Identifier));
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(lexer.lex().is(TokenKind::Eof));
}

TEST(LexerTest, UnterminatedBlockComment) {
  expectSingleError("a\n  /* never closed\n b", "unterminated block comment", 2,
                    3);
  LexHarness h("a /* x");
  Lexer lexer(h.bufferId, h.reporter);
  EXPECT_TRUE(lexer.lex().is(TokenKind::Identifier));
  EXPECT_TRUE(lexer.lex().is(TokenKind::Eof));
  EXPECT_TRUE(lexer.reachedEndUnterminated());
}

TEST(LexerTest, IntegerTooLarge) {
  expectSingleError("x = 9223372036854775808", "integer literal is too large",
                    1, 5);
  LexHarness h("99999999999999999999999 1");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_TRUE(tokens[0].is(TokenKind::Integer));
  EXPECT_EQ(tokens[0].intValue, 0);
  EXPECT_EQ(tokens[1].intValue, 1);
}

TEST(LexerTest, MalformedFloat) {
  expectSingleError("1e", "malformed float literal", 1, 1);
  expectSingleError("  1e+", "malformed float literal", 1, 3);
  expectSingleError("x 2.5E-y", "malformed float literal", 1, 3);
  LexHarness h("1e+ x");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_TRUE(tokens[0].is(TokenKind::Float));
  EXPECT_EQ(tokens[0].spelling, "1e+");
  EXPECT_TRUE(tokens[0].hasError);
  EXPECT_EQ(tokens[1].spelling, "x");
  EXPECT_FALSE(tokens[1].hasError);
}

TEST(LexerTest, FloatOutOfRange) {
  expectSingleError("1e999", "float literal is out of range", 1, 1);
}

TEST(LexerTest, UnterminatedString) {
  expectSingleError("x = \"abc\ny = 1", "unterminated string literal", 1, 5);
  expectSingleError("x = \"abc", "unterminated string literal", 1, 5);
  expectSingleError("\"ends in backslash\\", "unterminated string literal", 1,
                    1);
  LexHarness h("\"abc\nnext");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_TRUE(tokens[0].is(TokenKind::String));
  EXPECT_EQ(tokens[0].stringValue, "abc");
  EXPECT_TRUE(tokens[1].isIdentifier("next"));
  EXPECT_TRUE(tokens[1].firstOnLine);
}

TEST(LexerTest, UnknownEscape) {
  expectSingleError(R"(s = "a\qb")",
                    R"(unknown escape sequence '\q' in string literal)", 1, 7);
  expectSingleError("\"\\\x01\"",
                    R"(unknown escape sequence '\\x01' in string literal)", 1,
                    2);
  // One error per literal.
  LexHarness h(R"("\q\r\z")");
  std::vector<Token> tokens = h.lexAll();
  EXPECT_EQ(h.messages.size(), 1u);
  EXPECT_TRUE(tokens[0].is(TokenKind::String));
}

TEST(LexerTest, InvalidCharacters) {
  expectSingleError("a $ b", "invalid character '$'", 1, 3);
  expectSingleError("a\n\x01", "invalid character '\\x01'", 2, 1);
  expectSingleError(llvm::StringRef("x\0y", 3), "invalid character '\\x00'", 1,
                    2);
  expectSingleError("a . b", "invalid character '.'", 1, 3);
  expectSingleError("\x7f", "invalid character '\\x7F'", 1, 1);
  // A UTF-8 sequence is one error.
  expectSingleError("caf\xC3\xA9 = 1", "invalid character '\\xC3'", 1, 4);

  // Invalid characters are skipped.
  LexHarness h("a $%! b");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].spelling, "a");
  EXPECT_EQ(tokens[1].spelling, "b");
  // The skipped characters are not part of `b`.
  EXPECT_FALSE(tokens[1].hasError);
  ASSERT_EQ(h.messages.size(), 3u);
  EXPECT_EQ(h.messages[1].text, "invalid character '%'");
  EXPECT_EQ(h.messages[2].text, "invalid character '!'");
}

TEST(LexerTest, StopsAfterTooManyErrors) {
  LexHarness h(std::string(100000, '$') + " x");
  std::vector<Token> tokens = h.lexAll();
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_TRUE(tokens[0].is(TokenKind::Eof));
  EXPECT_EQ(h.messages.size(), DiagnosticReporter::kMaxErrors);
}

TEST(LexerTest, TokenKindNames) {
  EXPECT_EQ(getTokenKindName(TokenKind::Eof), "end of file");
  EXPECT_EQ(getTokenKindName(TokenKind::Identifier), "identifier");
  EXPECT_EQ(getTokenKindName(TokenKind::DotDot), "'..'");
  EXPECT_EQ(getTokenKindName(TokenKind::KwTrain), "'train'");
}
