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
  s.format = "text";
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
  s.format = "lines";
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
    s.format = "lines";
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
