//===- DatasetTest.cpp - Tests of loading data files into model inputs --===//

#include "runtime/Dataset.h"
#include "TestUtil.h"
#include "runtime/Files.h"

#include <gtest/gtest.h>

using namespace kiln::rt;
using namespace kiln::rt::test;

namespace {

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

Manifest tinyManifestParsed() {
  Expected<Manifest> m = parseManifest(tinyManifest());
  EXPECT_TRUE(m);
  return *m;
}

DataSource source(const std::string &input, const std::string &path,
                  Options options = {}) {
  DataSource s = sourceFromPath(input, path);
  s.options = std::move(options);
  return s;
}

} // namespace

TEST(DatasetTest, FormatFromExtension) {
  EXPECT_EQ(formatFromPath("a/b.npy"), kiln::contract::DataFormat::Npy);
  EXPECT_EQ(formatFromPath("a/b.npy.gz"), kiln::contract::DataFormat::Npy);
  EXPECT_EQ(formatFromPath("b.npz"), kiln::contract::DataFormat::Npz);
  EXPECT_EQ(formatFromPath("b.csv"), kiln::contract::DataFormat::Csv);
  EXPECT_EQ(formatFromPath("bible/kjv.txt"), kiln::contract::DataFormat::Text);
  EXPECT_EQ(formatFromPath("train-images-idx3-ubyte.gz"),
            kiln::contract::DataFormat::Idx);
  DataSource s = sourceFromPath("x", "data/d.npz:images");
  EXPECT_EQ(s.format, kiln::contract::DataFormat::Npz);
  EXPECT_EQ(s.path, "data/d.npz");
  EXPECT_EQ(s.key, "images");
}

TEST(DatasetTest, ConvertsU8ImagesWithScaleAndReshapes) {
  TempDir dir;
  // 5 examples of 1x3 bytes feed `image f32 4x3`.
  std::string data;
  for (int i = 0; i < 15; ++i)
    data += char(i * 10);
  writeBytes(dir.file("img.idx"), idxBytes(0x08, {5, 1, 3}, data));
  writeBytes(dir.file("lab.idx"),
             idxBytes(0x08, {5}, std::string("\0\1\2\0\1", 5)));
  Manifest m = tinyManifestParsed();
  Expected<Dataset> ds =
      loadDataset(m,
                  {source("image", dir.file("img.idx"), {{"scale", "0.5"}}),
                   source("label", dir.file("lab.idx"))},
                  "train");
  ASSERT_TRUE(ds) << ds.error().message();
  EXPECT_EQ(ds->examples, 5);
  ASSERT_EQ(ds->inputs.size(), 2u);
  const auto *x = reinterpret_cast<const float *>(ds->inputs[0].bytes.data());
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[14], 70.0f);
  const auto *y = reinterpret_cast<const int32_t *>(ds->inputs[1].bytes.data());
  EXPECT_EQ(y[4], 1);
}

TEST(DatasetTest, RejectsShapeMismatchNamingBothShapes) {
  TempDir dir;
  writeBytes(dir.file("img.idx"), idxBytes(0x08, {2, 2, 2}, std::string(8, 1)));
  Manifest m = tinyManifestParsed();
  Expected<Dataset> ds =
      loadDataset(m, {source("image", dir.file("img.idx"))}, "train");
  ASSERT_FALSE(ds);
  const std::string &msg = ds.error().message();
  EXPECT_TRUE(contains(msg, "img.idx")) << msg;
  EXPECT_TRUE(contains(msg, "input 'image' (f32 4x3)")) << msg;
  EXPECT_TRUE(contains(msg, "2x2 (4 values)")) << msg;
  EXPECT_TRUE(contains(msg, "3 values")) << msg;
}

TEST(DatasetTest, ConvertsNpyDTypes) {
  TempDir dir;
  writeBytes(dir.file("x.npy"),
             npyBytes("<f8", "(2, 3)", rawBytes<double>({1, 2, 3, 4, 5, 6})));
  writeBytes(dir.file("y.npy"),
             npyBytes("<i8", "(2,)", rawBytes<int64_t>({2, 0})));
  Manifest m = tinyManifestParsed();
  Expected<Dataset> ds = loadDataset(
      m,
      {source("image", dir.file("x.npy")), source("label", dir.file("y.npy"))},
      "train");
  ASSERT_TRUE(ds) << ds.error().message();
  const auto *x = reinterpret_cast<const float *>(ds->inputs[0].bytes.data());
  EXPECT_EQ(x[5], 6.0f);
  const auto *y = reinterpret_cast<const int32_t *>(ds->inputs[1].bytes.data());
  EXPECT_EQ(y[0], 2);
  // Integral floats are fine as labels; fractional ones are not.
  writeBytes(dir.file("yf.npy"),
             npyBytes("<f4", "(2,)", rawBytes<float>({1.0f, 2.5f})));
  Expected<Dataset> bad =
      loadDataset(m, {source("label", dir.file("yf.npy"))}, "train");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(
      contains(bad.error().message(), "example 1: 2.5 is not an integer"))
      << bad.error().message();
  writeBytes(dir.file("yl.npy"),
             npyBytes("<i8", "(1,)", rawBytes<int64_t>({int64_t(1) << 40})));
  Expected<Dataset> big =
      loadDataset(m, {source("label", dir.file("yl.npy"))}, "train");
  ASSERT_FALSE(big);
  EXPECT_TRUE(contains(big.error().message(), "does not fit i32"));
}

TEST(DatasetTest, RejectsLabelsOutOfRange) {
  TempDir dir;
  Manifest m = tinyManifestParsed();
  ASSERT_EQ(m.labels.size(), 1u);
  int32_t classes = static_cast<int32_t>(m.labels[0].classes);
  for (int32_t bad : {-1, classes}) {
    writeBytes(dir.file("y.npy"), i32Npy({0, 1, bad, 2}, "(4,)"));
    Expected<Dataset> ds =
        loadDataset(m, {source("label", dir.file("y.npy"))}, "train");
    ASSERT_FALSE(ds);
    const std::string &msg = ds.error().message();
    EXPECT_TRUE(contains(msg, "example 2: label " + std::to_string(bad) +
                                  " is out of range"))
        << msg;
    EXPECT_TRUE(contains(msg, "[0, " + std::to_string(classes) + ")")) << msg;
  }
}

TEST(DatasetTest, RejectsDifferentExampleCounts) {
  TempDir dir;
  writeBytes(dir.file("x.npy"), f32Npy(std::vector<float>(9, 1), "(3, 3)"));
  writeBytes(dir.file("y.npy"), i32Npy({0, 1}, "(2,)"));
  Manifest m = tinyManifestParsed();
  Expected<Dataset> ds = loadDataset(
      m,
      {source("image", dir.file("x.npy")), source("label", dir.file("y.npy"))},
      "train");
  ASSERT_FALSE(ds);
  EXPECT_TRUE(contains(ds.error().message(), "has 3 examples"));
  EXPECT_TRUE(contains(ds.error().message(), "has 2"));
}

TEST(DatasetTest, RejectsNonFiniteValues) {
  TempDir dir;
  writeBytes(dir.file("x.npy"), f32Npy({1, 2, NAN}, "(1, 3)"));
  Manifest m = tinyManifestParsed();
  Expected<Dataset> ds =
      loadDataset(m, {source("image", dir.file("x.npy"))}, "train");
  ASSERT_FALSE(ds);
  EXPECT_TRUE(contains(ds.error().message(), "example 0, value 2"))
      << ds.error().message();
}

TEST(DatasetTest, ReadsCsvAndNpzSources) {
  TempDir dir;
  writeBytes(dir.file("x.csv"), "a,b,c\n1,2,3\n4,5,6\n");
  writeBytes(dir.file("d.npz"),
             zipBytes({{"other.npy", i32Npy({9}, "(1,)")},
                       {"labels.npy", i32Npy({1, 2}, "(2,)"), true}}));
  Manifest m = tinyManifestParsed();
  Expected<Dataset> ds =
      loadDataset(m,
                  {source("image", dir.file("x.csv")),
                   source("label", dir.file("d.npz") + ":labels")},
                  "train");
  ASSERT_TRUE(ds) << ds.error().message();
  EXPECT_EQ(ds->examples, 2);
}

TEST(DatasetTest, ResolvesRelativePathsViaKilnDataDir) {
  TempDir dir;
  writeBytes(dir.file("sub/lab.idx.gz"),
             gzipBytes(idxBytes(0x08, {2}, "\1\2")));
  ScopedEnv env("KILN_DATA_DIR", dir.path());
  // `sub/lab.idx` is not in the current directory; KILN_DATA_DIR has its .gz.
  Expected<std::string> p = resolveDataPath("sub/lab.idx", true, "what");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*p, dir.file("sub/lab.idx.gz"));
  Expected<std::string> missing = resolveDataPath("sub/none.idx", true, "what");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(missing.error().message(),
                       "what: file 'sub/none.idx' not found"));
  EXPECT_TRUE(contains(missing.error().message(), dir.path()));
}

TEST(DatasetTest, GatherCopiesExamplesAndZeroFills) {
  TempDir dir;
  writeBytes(dir.file("x.npy"), f32Npy({0, 0, 0, 1, 1, 1, 2, 2, 2}, "(3, 3)"));
  Manifest m = tinyManifestParsed();
  Expected<Dataset> ds =
      loadDataset(m, {source("image", dir.file("x.npy"))}, "train");
  ASSERT_TRUE(ds) << ds.error().message();
  std::vector<float> batch(12, -1);
  int64_t indices[] = {2, 0};
  ds->gather(indices, 2, {batch.data()});
  EXPECT_EQ(batch, (std::vector<float>{2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}
