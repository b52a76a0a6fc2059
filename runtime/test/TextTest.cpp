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
