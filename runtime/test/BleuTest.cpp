//===- BleuTest.cpp - Tests of corpus BLEU, chrF and the 13a tokenizer ---===//
//
// The expected values are goldens computed by sacreBLEU 2.6.0 (the Python
// package, run from its source at tag v2.6.0) with its defaults:
// Tokenizer13a()(input) for the tokenizations, and
// BLEU().corpus_score(hyps, [refs]) and CHRF().corpus_score(hyps, [refs])
// for the scores (signatures nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp and
// nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no), printed with repr().
// Non-UTF-8 bytes were passed to Python as surrogateescape characters.
//
//===----------------------------------------------------------------------===//

#include "runtime/Bleu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using namespace kiln::rt;

namespace {

/// Within 1e-9 of `expected`, relative (absolute below 1).
void expectClose(double actual, double expected, const char *what) {
  EXPECT_NEAR(actual, expected, 1e-9 * std::max(1.0, std::abs(expected)))
      << what;
}

struct TokenizeCase {
  const char *input, *tokens;
};

const TokenizeCase kTokenizeCases[] = {
    {"Hello, world!", "Hello , world !"},
    {"3.14 and 1,000", "3.14 and 1,000"},
    {"can't", "can't"},
    {"<skipped>", ""},
    {"&quot;", "\""},
    {"a-b", "a-b"},
    {"Die Größe, die Übung und die Straße.",
     "Die Größe , die Übung und die Straße ."},
    {"x&amp;quot;y", "x & quot ; y"},
    {"&lt;tag&gt; &amp; Tom&Jerry", "< tag > & Tom & Jerry"},
    {"1-2 and 10-year-old", "1 - 2 and 10 - year-old"},
    {"1.5. a.b,c x.1 ,5", "1.5 . a . b , c x . 1 , 5"},
    {"...", ". . ."},
    {"(hi) [there] {x} ~y~ `z` 'q'", "( hi ) [ there ] { x } ~ y ~ ` z ` 'q'"},
    {"e-mail: a@b.com / c", "e-mail : a @ b . com / c"},
    {"$5.00 50% #1 ^_^ | \\ +=", "$ 5.00 50 % # 1 ^ _ ^ | \\ + ="},
    {"he said \"yes\"", "he said \" yes \""},
    {"tab\there", "tab here"},
    {"no\xC2\xA0gap", "no gap"},
    {"ideographic\xE3\x80\x80space", "ideographic space"},
    {"a-\nb", "ab"},
    {"line\nbreak", "line break"},
    {"  lots   of   space  ", "lots of space"},
    {"€100,00.", "€100,00 ."},
    {"α.β 1.α α,1", "α . β 1 . α α , 1"},
    {"wait…", "wait…"},
    {"日本語、テスト。", "日本語、テスト。"},
    {"rock 'n' roll", "rock 'n' roll"},
    {"Ünïcödé: straße!", "Ünïcödé : straße !"},
    {"a\xFF.b", "a\xFF . b"},
    {"", ""},
    {"<skipped> kept<skipped>", "kept"},
    {"end-\n", "end"},
};

struct BleuCase {
  const char *name;
  std::vector<std::string> hypotheses, references;
  double score, precisions[4], brevityPenalty;
  int64_t hypothesisLength, referenceLength;
};

const BleuCase kBleuCases[] = {
    {"identical",
     {"The quick brown fox jumps over the lazy dog."},
     {"The quick brown fox jumps over the lazy dog."},
     100.00000000000004,
     {100.0, 100.0, 100.0, 100.0},
     1.0,
     10,
     10},
    {"empty hypothesis",
     {""},
     {"The cat sat on the mat."},
     0.0,
     {0.0, 0.0, 0.0, 0.0},
     0.0,
     0,
     7},
    {"shorter hypothesis",
     {"The cat sat on the"},
     {"The cat sat on the mat ."},
     67.03200460356396,
     {100.0, 100.0, 100.0, 100.0},
     0.6703200460356393,
     5,
     7},
    {"longer hypothesis",
     {"The cat sat on the mat today ."},
     {"The cat sat on the mat ."},
     70.71067811865478,
     {87.5, 71.42857142857143, 66.66666666666667, 60.0},
     1.0,
     8,
     7},
    {"corpus",
     {"The cat sat on the mat.",
      "It's 3.14 and 1,000 people came, didn't they?",
      "Die Größe der Straße ist schön.",
      "He said &quot;hello&quot; to me - twice.",
      "A well-known fact: 10-20% of cases <skipped> fail!"},
     {"The cat is sitting on the mat.",
      "It is 3.14 and 1,000 people came, did they not?",
      "Die Straße ist schön groß.", "He said \"hello\" to me twice.",
      "It is a well known fact that 10-20% of cases fail!"},
     51.91264883210267,
     {80.43478260869566, 60.97560975609756, 50.0, 41.935483870967744},
     0.9167169520254864,
     46,
     50},
    {"no 4-gram matches",
     {"a b c d e", "f g h i"},
     {"a b c x e", "f g y i"},
     32.46679154750988,
     {77.77777777777777, 42.857142857142854, 20.0, 16.666666666666668},
     1.0,
     9,
     9},
    {"no 3- or 4-gram matches",
     {"a b c d e", "f g h i"},
     {"a b x d e", "f g y i"},
     22.957488466614336,
     {77.77777777777777, 42.857142857142854, 10.0, 8.333333333333334},
     1.0,
     9,
     9},
    {"fewer than 4 tokens",
     {"the cat sat"},
     {"the cat sat"},
     0.0,
     {100.0, 100.0, 100.0, 0.0},
     1.0,
     3,
     3},
    {"no matches",
     {"x y z w"},
     {"a b c d"},
     0.0,
     {0.0, 0.0, 0.0, 0.0},
     1.0,
     4,
     4},
    {"empty reference",
     {"a b c d"},
     {""},
     0.0,
     {0.0, 0.0, 0.0, 0.0},
     1.0,
     4,
     0},
    {"tokenization",
     {"Hello, world! 3.14 and 1,000 can't a-b &quot;x&quot;",
      "Größe, Übung und Straße."},
     {"Hello , world ! 3.14 and 1,000 can't a - b \"x\"",
      "Größe , Übung und Strasse ."},
     60.8826240507114,
     {88.88888888888889, 75.0, 64.28571428571429, 50.0},
     0.8948393168143697,
     18,
     20},
    {"whitespace",
     {"well-\nknown  text\xC2\xA0here and there \xE3\x80\x80", "trailing-\n"},
     {"wellknown text here and there", "trailing-"},
     100.00000000000004,
     {100.0, 100.0, 100.0, 100.0},
     1.0,
     6,
     6},
    {"clipped counts",
     {"the the the the the the the"},
     {"the cat is on the mat"},
     7.809849842300637,
     {28.571428571428573, 8.333333333333334, 5.0, 3.125},
     1.0,
     7,
     6},
    {"all empty", {"", ""}, {"", ""}, 0.0, {0.0, 0.0, 0.0, 0.0}, 1.0, 0, 0},
};

struct ChrfCase {
  const char *name;
  std::vector<std::string> hypotheses, references;
  double score;
};

const ChrfCase kChrfCases[] = {
    {"identical",
     {"The quick brown fox jumps over the lazy dog."},
     {"The quick brown fox jumps over the lazy dog."},
     100.0},
    {"empty hypothesis", {""}, {"The cat sat on the mat."}, 0.0},
    {"empty hypothesis in a corpus",
     {"The cat sat on the mat.", ""},
     {"The cat sat on the mat.", "A dog barked."},
     69.79024650438465},
    {"umlauts",
     {"Die Größe der Straße ist schön."},
     {"Die Straße ist schön groß."},
     63.0584791561292},
    {"umlauts, bytes differ",
     {"Öl über Äpfel"},
     {"Ol uber Apfel"},
     28.093434343434343},
    {"short reference", {"abcdefgh", "xy"}, {"abc", "xyz"}, 57.87037037037038},
    {"whitespace ignored", {"a b\tc\xC2\xA0x"}, {"abcx"}, 100.0},
    {"CJK and emoji",
     {"日本語のテスト🙂です", "ça va"},
     {"日本語テスト🙂", "ça va ?"},
     42.74860923948724},
    {"empty reference", {"a b c"}, {""}, 0.0},
    {"no matches", {"xyz"}, {"abc"}, 0.0},
    {"corpus",
     {"The cat sat on the mat.",
      "It's 3.14 and 1,000 people came, didn't they?",
      "Die Größe der Straße ist schön.",
      "He said &quot;hello&quot; to me - twice.",
      "A well-known fact: 10-20% of cases <skipped> fail!"},
     {"The cat is sitting on the mat.",
      "It is 3.14 and 1,000 people came, did they not?",
      "Die Straße ist schön groß.", "He said \"hello\" to me twice.",
      "It is a well known fact that 10-20% of cases fail!"},
     59.821993242736916},
};

} // namespace

TEST(BleuTest, Tokenizes13aAsSacreBleu) {
  for (const TokenizeCase &c : kTokenizeCases)
    EXPECT_EQ(tokenize13a(c.input), c.tokens) << "input: " << c.input;
}

TEST(BleuTest, CorpusBleuMatchesSacreBleu) {
  for (const BleuCase &c : kBleuCases) {
    SCOPED_TRACE(c.name);
    BleuScore s = corpusBleu(c.hypotheses, c.references);
    expectClose(s.score, c.score, "score");
    for (int n = 0; n < 4; ++n)
      expectClose(s.precisions[n], c.precisions[n], "precision");
    expectClose(s.brevityPenalty, c.brevityPenalty, "brevity penalty");
    EXPECT_EQ(s.hypothesisLength, c.hypothesisLength);
    EXPECT_EQ(s.referenceLength, c.referenceLength);
  }
}

TEST(BleuTest, CorpusChrfMatchesSacreBleu) {
  for (const ChrfCase &c : kChrfCases) {
    SCOPED_TRACE(c.name);
    expectClose(corpusChrf(c.hypotheses, c.references), c.score, "chrF");
  }
}
