//===- TextTest.cpp - Tests of text sources for language models ----------===//

#include "runtime/Text.h"
#include "TestUtil.h"
#include "runtime/Dataset.h"

#include <gtest/gtest.h>

using namespace kiln::rt;
using namespace kiln::rt::test;

namespace {

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

std::string decodeError(std::string_view bytes) {
  Expected<std::u32string> r = decodeUtf8(bytes, "t.txt");
  EXPECT_FALSE(r) << "expected an error";
  return r ? std::string() : r.error().message();
}

/// A language model's manifest: `text i32 2xLENGTH` with CLASSES classes.
Manifest lmManifest(int length, int classes) {
  std::string text = "kiln-manifest 2\nmodel lm\ninput text i32 2x" +
                     std::to_string(length) + "\nlabels text " +
                     std::to_string(classes) +
                     "\nentry e infer\narg input "
                     "text\n";
  Expected<Manifest> m = parseManifest(text);
  EXPECT_TRUE(m) << m.error().message();
  return *m;
}

DataSource textSource(const std::string &path, double heldOut) {
  DataSource s;
  s.input = "text";
  s.path = path;
  s.format = kiln::contract::DataFormat::Text;
  s.options = {{"held_out", std::to_string(heldOut)}};
  return s;
}

} // namespace

TEST(TextTest, DecodesAndEncodesUtf8) {
  std::string bytes = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x99\x82\n";
  Expected<std::u32string> text = decodeUtf8(bytes, "t.txt");
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(*text, (std::u32string{U'a', 0xE9, 0x20AC, 0x1F642, U'\n'}));
  EXPECT_EQ(encodeUtf8(*text), bytes);
}

TEST(TextTest, RejectsMalformedUtf8WithItsOffset) {
  EXPECT_TRUE(
      contains(decodeError("ab\xFF"), "invalid leading byte at byte 2"));
  EXPECT_TRUE(contains(decodeError("a\xC3"), "truncated sequence at byte 1"));
  EXPECT_TRUE(contains(decodeError("\xC3(x"), "truncated sequence at byte 0"));
  EXPECT_TRUE(contains(decodeError("\xC0\xAF"), "overlong"));
  EXPECT_TRUE(contains(decodeError("\xED\xA0\x80"), "not a character"));
  EXPECT_TRUE(contains(decodeError("\x80"), "'t.txt' is not UTF-8 text"));
}

TEST(TextTest, VocabularyIsTheSortedCharacters) {
  Vocabulary v = Vocabulary::of(U"banana\n");
  EXPECT_EQ(v.chars, U"\nabn");
  EXPECT_EQ(v.id(U'n'), 3);
  EXPECT_EQ(v.id(U'z'), -1);
  Expected<Vocabulary> back = Vocabulary::fromUtf8(v.utf8());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->chars, v.chars);
  EXPECT_FALSE(Vocabulary::fromUtf8("ba"));
  EXPECT_EQ(describeChar(U'\n'), "U+000A (a newline)");
  EXPECT_EQ(describeChar(0xE9), "U+00E9 '\xC3\xA9'");
}

TEST(TextTest, WindowsOverlapByOneCharacter) {
  TempDir dir;
  // 22 characters: 20 for training (the held-out part keeps at least 2),
  // windows of 5 with stride 4: 0..4, 4..8, 8..12, 12..16.
  writeBytes(dir.file("t.txt"), "abcdefghijklmnopqrstuv");
  Manifest m = lmManifest(5, 30);
  Expected<Dataset> ds =
      loadDataset(m, {textSource(dir.file("t.txt"), 0.05)}, "train");
  ASSERT_TRUE(ds) << ds.error().message();
  EXPECT_EQ(ds->examples, 4);
  EXPECT_EQ(ds->vocab.size(), 20u);
  const auto *ids =
      reinterpret_cast<const int32_t *>(ds->inputs[0].bytes.data());
  EXPECT_EQ(std::vector<int32_t>(ids, ids + 10),
            (std::vector<int32_t>{0, 1, 2, 3, 4, 4, 5, 6, 7, 8}));
}

TEST(TextTest, BadTextsGetOneLineErrors) {
  TempDir dir;
  writeBytes(dir.file("empty.txt"), "");
  writeBytes(dir.file("bad.txt"), "hello \xFF world, a longer text");
  writeBytes(dir.file("short.txt"), "abcdefghij");
  writeBytes(dir.file("new.txt"), "aaaaaaaaaaaaaaaaaaab");
  auto error = [&](const std::string &file, int length, int classes,
                   const char *split = "train", double heldOut = 0.05) {
    Manifest m = lmManifest(length, classes);
    Expected<Dataset> ds =
        loadDataset(m, {textSource(dir.file(file), heldOut)}, split);
    EXPECT_FALSE(ds) << file;
    return ds ? std::string() : ds.error().message();
  };
  EXPECT_TRUE(contains(error("empty.txt", 5, 30), "holds 0 characters"));
  EXPECT_TRUE(contains(error("bad.txt", 5, 30), "is not UTF-8 text"));
  EXPECT_TRUE(
      contains(error("short.txt", 50, 30), "fewer than one window of 50"));
  EXPECT_TRUE(contains(error("short.txt", 5, 4),
                       "8 distinct characters, more than the 4 classes"));
  EXPECT_TRUE(contains(error("new.txt", 2, 30, "test", 0.05),
                       "U+0062 'b' at position 1 is not in the vocabulary"));
  EXPECT_TRUE(contains(error("short.txt", 5, 30, "train", 1.5),
                       "held_out=1.5 must be a fraction in (0, 1)"));
}

TEST(TextTest, LinesAreBoundedPaddedExamples) {
  TempDir dir;
  // 10 lines (one blank, skipped; one with a carriage return): the last one
  // is held out. Inputs of length 6 hold lines of up to 4 characters.
  writeBytes(dir.file("l.txt"),
             "ab\nbanana\n\ncab\r\nb\nabba\naa\nbb\nba\nc\nca\n");
  Manifest m = lmManifest(6, 10);
  DataSource s = textSource(dir.file("l.txt"), 0.1);
  s.format = kiln::contract::DataFormat::Lines;
  Expected<Dataset> ds = loadDataset(m, {s}, "train");
  ASSERT_TRUE(ds) << ds.error().message();
  // The vocabulary: padding (id 0), the boundary (id 1), then a b c n.
  EXPECT_EQ(ds->vocab.chars, (std::u32string{kPaddingChar, kBoundaryChar, U'a',
                                             U'b', U'c', U'n'}));
  // "banana" does not fit: 8 of the 9 training lines are examples.
  EXPECT_EQ(ds->examples, 8);
  ASSERT_EQ(ds->notes.size(), 1u);
  EXPECT_TRUE(contains(ds->notes[0], "8 of the 9 training lines fit in 4 "
                                     "characters"))
      << ds->notes[0];
  const auto *ids =
      reinterpret_cast<const int32_t *>(ds->inputs[0].bytes.data());
  EXPECT_EQ(std::vector<int32_t>(ids, ids + 12),
            (std::vector<int32_t>{1, 2, 3, 1, 0, 0,    // "ab"
                                  1, 4, 2, 3, 1, 0})); // "cab" (\r dropped)
  Expected<Dataset> test = loadDataset(m, {s}, "test");
  ASSERT_TRUE(test) << test.error().message();
  EXPECT_EQ(test->examples, 1);
  const auto *t =
      reinterpret_cast<const int32_t *>(test->inputs[0].bytes.data());
  EXPECT_EQ(std::vector<int32_t>(t, t + 6),
            (std::vector<int32_t>{1, 4, 2, 1, 0, 0})); // "ca"
}

TEST(TextTest, BadLinesGetOneLineErrors) {
  TempDir dir;
  writeBytes(dir.file("reserved.txt"), "ab\na\x03"
                                       "b\nc\n");
  writeBytes(dir.file("one.txt"), "abc\n\n");
  writeBytes(dir.file("long.txt"), "abcdef\nabcdefg\nab\n");
  auto error = [&](const std::string &file, int length, int classes,
                   const char *split = "train") {
    Manifest m = lmManifest(length, classes);
    DataSource s = textSource(dir.file(file), 0.4);
    s.format = kiln::contract::DataFormat::Lines;
    Expected<Dataset> ds = loadDataset(m, {s}, split);
    EXPECT_FALSE(ds) << file;
    return ds ? std::string() : ds.error().message();
  };
  EXPECT_TRUE(contains(error("reserved.txt", 6, 10),
                       "line 2: character U+0003 (a control character) is "
                       "reserved"));
  EXPECT_TRUE(contains(error("one.txt", 6, 10), "holds 1 non-empty lines"));
  EXPECT_TRUE(contains(error("long.txt", 6, 10), "no training line of"));
  EXPECT_TRUE(contains(error("long.txt", 9, 4),
                       "9 distinct characters (with padding and the line "
                       "boundary), more than the 4 classes"));
  EXPECT_TRUE(contains(error("long.txt", 2, 10),
                       "lines feed an i32 input [batch, length >= 3]"));
}

namespace {

/// A translation model's manifest: `source i32 2xS` and `target i32 2xT`,
/// both class indices of CLASSES.
Manifest pairsManifest(int sourceLength, int targetLength, int classes) {
  std::string text = fmt::format(
      "kiln-manifest 2\nmodel mt\ninput source i32 2x{}\ninput target i32 "
      "2x{}\nlabels target {}\nentry e infer\narg input source\narg input "
      "target\n",
      sourceLength, targetLength, classes);
  Expected<Manifest> m = parseManifest(text);
  EXPECT_TRUE(m) << m.error().message();
  return *m;
}

DataSource pairsSource(const std::string &input, const std::string &path,
                       int column) {
  DataSource s = sourceFromPath(input, path);
  s.options = {{"column", std::to_string(column)}};
  return s;
}

} // namespace

TEST(TextTest, PairsFeedAlignedRowsInOneVocabulary) {
  TempDir dir;
  // Four pairs (a blank line and a carriage return too); "abcd -> x" does not
  // fit a source of 5 (3 characters), so the row is left out of both inputs.
  writeBytes(dir.file("p.tsv"), "ab\tba\n\nabcd\tx\r\nc\tcxy\nb\ty\n");
  EXPECT_EQ(formatFromPath(dir.file("p.tsv")),
            kiln::contract::DataFormat::Pairs);
  Manifest m = pairsManifest(5, 6, 10);
  std::vector<DataSource> sources{pairsSource("source", dir.file("p.tsv"), 0),
                                  pairsSource("target", dir.file("p.tsv"), 1)};
  Expected<Dataset> ds = loadDataset(m, sources, "train");
  ASSERT_TRUE(ds) << ds.error().message();
  // Both columns' characters, after padding (0) and the boundary (1).
  EXPECT_EQ(ds->vocab.chars, (std::u32string{kPaddingChar, kBoundaryChar, U'a',
                                             U'b', U'c', U'd', U'x', U'y'}));
  EXPECT_EQ(ds->examples, 3);
  ASSERT_EQ(ds->notes.size(), 1u);
  EXPECT_TRUE(contains(ds->notes[0], "3 of the 4 rows")) << ds->notes[0];
  const auto *src =
      reinterpret_cast<const int32_t *>(ds->inputs[0].bytes.data());
  const auto *tgt =
      reinterpret_cast<const int32_t *>(ds->inputs[1].bytes.data());
  EXPECT_EQ(std::vector<int32_t>(src, src + 15),
            (std::vector<int32_t>{1, 2, 3, 1, 0,    // "ab"
                                  1, 4, 1, 0, 0,    // "c"
                                  1, 3, 1, 0, 0})); // "b"
  EXPECT_EQ(std::vector<int32_t>(tgt, tgt + 18),
            (std::vector<int32_t>{1, 3, 2, 1, 0, 0,    // "ba"
                                  1, 4, 6, 7, 1, 0,    // "cxy"
                                  1, 7, 1, 0, 0, 0})); // "y"

  // Held-out pairs are read in the training vocabulary; a character outside
  // it is an error naming the file's line.
  writeBytes(dir.file("t.tsv"), "ba\tab\nz\tx\n");
  std::vector<DataSource> test{pairsSource("source", dir.file("t.tsv"), 0),
                               pairsSource("target", dir.file("t.tsv"), 1)};
  Expected<Dataset> bad = loadDataset(m, test, "test", &ds->vocab);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(contains(bad.error().message(), "line 2: character U+007A 'z'"))
      << bad.error().message();
}

TEST(TextTest, BadPairsGetOneLineErrors) {
  TempDir dir;
  writeBytes(dir.file("ragged.tsv"), "a\tb\nc\n");
  writeBytes(dir.file("reserved.tsv"), "a\tb\x03\n");
  writeBytes(dir.file("empty.tsv"), "\n\n");
  writeBytes(dir.file("ok.tsv"), "a\tb\n");
  writeBytes(dir.file("long.tsv"), "abcdefgh\tb\n");
  auto error = [&](const std::string &file, int column = 1,
                   int sourceLength = 5) {
    Manifest m = pairsManifest(sourceLength, 6, 10);
    Expected<Dataset> ds =
        loadDataset(m,
                    {pairsSource("source", dir.file(file), 0),
                     pairsSource("target", dir.file(file), column)},
                    "train");
    EXPECT_FALSE(ds) << file;
    return ds ? std::string() : ds.error().message();
  };
  EXPECT_TRUE(contains(error("ragged.tsv"),
                       "line 2: 1 tab-separated columns, but the first line "
                       "has 2"));
  EXPECT_TRUE(contains(error("reserved.tsv"),
                       "line 1: character U+0003 (a control character) is "
                       "reserved"));
  EXPECT_TRUE(contains(error("empty.tsv"), "holds no pairs"));
  EXPECT_TRUE(
      contains(error("ok.tsv", 2), "has 2 columns; there is no column 2"));
  EXPECT_TRUE(contains(error("long.tsv"), "no row of"));
  EXPECT_TRUE(contains(error("ok.tsv", 1, 2),
                       "pairs feed an i32 input [batch, length >= 3]"));
}

TEST(TextTest, PairsColumnFeedsClassLabels) {
  TempDir dir;
  // Labelled text: an input [B] reads column 0 as class names, an input
  // [B, 6] column 1 as text; "fr\tcbacbac" does not fit, so the row is left
  // out of both.
  writeBytes(dir.file("l.tsv"), "sv\tab\nfr\tcbacbac\nde\tba\nsv\tc\n");
  Expected<Manifest> m = parseManifest(
      "kiln-manifest 2\nmodel lid\ninput text i32 2x6\ninput lang i32 2\n"
      "labels text 10\nlabels lang 3 target\nentry e infer\narg input text\n"
      "arg input lang\n");
  ASSERT_TRUE(m) << m.error().message();
  std::vector<DataSource> sources{pairsSource("text", dir.file("l.tsv"), 1),
                                  pairsSource("lang", dir.file("l.tsv"), 0)};
  Expected<Dataset> ds = loadDataset(*m, sources, "train");
  ASSERT_TRUE(ds) << ds.error().message();
  EXPECT_EQ(ds->examples, 3);
  // Every class of the column, sorted, even one whose rows are left out.
  EXPECT_EQ(ds->classes.list(), "de, fr, sv");
  // The text column's characters only.
  EXPECT_EQ(ds->vocab.chars,
            (std::u32string{kPaddingChar, kBoundaryChar, U'a', U'b', U'c'}));
  const auto *lang =
      reinterpret_cast<const int32_t *>(ds->inputs[1].bytes.data());
  EXPECT_EQ(std::vector<int32_t>(lang, lang + 3),
            (std::vector<int32_t>{2, 0, 2}));
  EXPECT_FALSE(ds->inputs[1].characterIds);
  EXPECT_TRUE(ds->inputs[0].characterIds);
  // The loss predicts classes, not characters: no bits per character.
  EXPECT_FALSE(ds->predictsCharacters(*m));

  // Held-out rows take the training classes' ids; a class training never
  // saw is an error naming the line.
  writeBytes(dir.file("t.tsv"), "sv\tba\nde\tab\n");
  std::vector<DataSource> test{pairsSource("text", dir.file("t.tsv"), 1),
                               pairsSource("lang", dir.file("t.tsv"), 0)};
  Expected<Dataset> held =
      loadDataset(*m, test, "test", &ds->vocab, &ds->classes);
  ASSERT_TRUE(held) << held.error().message();
  const auto *heldLang =
      reinterpret_cast<const int32_t *>(held->inputs[1].bytes.data());
  EXPECT_EQ(std::vector<int32_t>(heldLang, heldLang + 2),
            (std::vector<int32_t>{2, 0}));
  writeBytes(dir.file("u.tsv"), "sv\tba\nnl\tab\n");
  Expected<Dataset> unknown =
      loadDataset(*m,
                  {pairsSource("text", dir.file("u.tsv"), 1),
                   pairsSource("lang", dir.file("u.tsv"), 0)},
                  "test", &ds->vocab, &ds->classes);
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(contains(unknown.error().message(),
                       "line 2: class 'nl' is not one of the 3 classes the "
                       "model was trained on (de, fr, sv)"))
      << unknown.error().message();

  // More classes than the model's logits is an error before training.
  writeBytes(dir.file("many.tsv"), "a\tab\nb\tab\nc\tab\nd\tab\n");
  Expected<Dataset> many =
      loadDataset(*m,
                  {pairsSource("text", dir.file("many.tsv"), 1),
                   pairsSource("lang", dir.file("many.tsv"), 0)},
                  "train");
  ASSERT_FALSE(many);
  EXPECT_TRUE(contains(many.error().message(),
                       "column 0 of the pairs file names 4 classes, more "
                       "than the 3 of input 'lang'"))
      << many.error().message();
}

TEST(TextTest, ClassNamesRoundTripAsLines) {
  ClassNames classes{{U"de", U"fr", U"sv"}};
  EXPECT_EQ(classes.utf8(), "de\nfr\nsv\n");
  Expected<ClassNames> back = ClassNames::fromUtf8(classes.utf8());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->names, classes.names);
  EXPECT_EQ(back->id(U"fr"), 1);
  EXPECT_EQ(back->id(U"nl"), -1);
  EXPECT_FALSE(ClassNames::fromUtf8("fr\nde\n"));
  EXPECT_FALSE(ClassNames::fromUtf8("de\nde\n"));
  EXPECT_FALSE(ClassNames::fromUtf8("de\nfr"));
  EXPECT_FALSE(ClassNames::fromUtf8("d\xff\n"));
}

TEST(TextTest, SplitLinesKeepsEmptyLinesAndDropsCarriageReturns) {
  std::vector<std::u32string_view> lines = splitLines(U"a\r\n\nb\r\nc");
  EXPECT_EQ(lines, (std::vector<std::u32string_view>{U"a", U"", U"b", U"c"}));
  EXPECT_TRUE(splitLines(U"").empty());
  EXPECT_EQ(splitLines(U"x\n").size(), 1u);
  // A lines file's errors count every line of the file, empty ones too.
  TempDir dir;
  writeBytes(dir.file("blank.txt"), "first\n\nthird \x03\n");
  Expected<LineSplit> split = readLineSplit(dir.file("blank.txt"), 0.5);
  ASSERT_FALSE(split);
  EXPECT_TRUE(contains(split.error().message(), "line 3: character U+0003"))
      << split.error().message();
}
