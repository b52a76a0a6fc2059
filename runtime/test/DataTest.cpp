//===- DataTest.cpp - Tests of the IDX, .npy, .npz and CSV readers ------===//

#include "runtime/Data.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

using namespace kiln::rt;
using namespace kiln::rt::test;

namespace {

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

std::string u8Range(int n) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += char(i);
  return s;
}

} // namespace

//===----------------------------------------------------------------------===//
// IDX
//===----------------------------------------------------------------------===//

TEST(IdxTest, ReadsU8Images) {
  TempDir dir;
  writeBytes(dir.file("img"), idxBytes(0x08, {3, 2, 2}, u8Range(12)));
  Expected<Array> a = readIdx(dir.file("img"));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->type, ElemType::U8);
  EXPECT_EQ(a->shape, (Shape{3, 2, 2}));
  EXPECT_EQ(a->get(0), 0);
  EXPECT_EQ(a->get(11), 11);
}

TEST(IdxTest, ReadsGzip) {
  TempDir dir;
  writeBytes(dir.file("img.gz"),
             gzipBytes(idxBytes(0x08, {3, 2, 2}, u8Range(12))));
  Expected<Array> a = readIdx(dir.file("img.gz"));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->shape, (Shape{3, 2, 2}));
  EXPECT_EQ(a->get(5), 5);
}

TEST(IdxTest, ReadsBigEndianWideTypes) {
  // i32 values 1 and -2; f32 value 1.5 (0x3FC00000).
  Expected<Array> i = parseIdx(
      idxBytes(0x0C, {2}, std::string("\0\0\0\x01\xff\xff\xff\xfe", 8)), "i");
  ASSERT_TRUE(i) << i.error().message();
  EXPECT_EQ(i->getInt(0), 1);
  EXPECT_EQ(i->getInt(1), -2);
  Expected<Array> f =
      parseIdx(idxBytes(0x0D, {1}, std::string("\x3f\xc0\0\0", 4)), "f");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->get(0), 1.5);
}

TEST(IdxTest, RejectsWrongMagic) {
  Expected<Array> a = parseIdx("PK\x03\x04 not idx", "x.idx");
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(), "'x.idx' is not an IDX file"))
      << a.error().message();
  Expected<Array> b = parseIdx(idxBytes(0x07, {1}, "a"), "y.idx");
  ASSERT_FALSE(b);
  EXPECT_TRUE(contains(b.error().message(), "element type 0x07"));
}

TEST(IdxTest, RejectsTruncatedData) {
  Expected<Array> a = parseIdx(idxBytes(0x08, {3, 2, 2}, u8Range(11)), "t");
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(), "'t' is truncated"))
      << a.error().message();
  Expected<Array> h = parseIdx(std::string("\0\0\x08\x03\0\0", 6), "h");
  ASSERT_FALSE(h);
  EXPECT_TRUE(contains(h.error().message(), "truncated"));
  Expected<Array> extra = parseIdx(idxBytes(0x08, {2}, u8Range(3)), "e");
  ASSERT_FALSE(extra);
  EXPECT_TRUE(contains(extra.error().message(), "1 bytes after"));
}

TEST(IdxTest, RejectsTruncatedGzip) {
  TempDir dir;
  std::string gz = gzipBytes(idxBytes(0x08, {100}, std::string(100, 'x')));
  writeBytes(dir.file("t.gz"), gz.substr(0, gz.size() / 2));
  Expected<Array> a = readIdx(dir.file("t.gz"));
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(), "truncated"))
      << a.error().message();
  writeBytes(dir.file("c.gz"), "\x1f\x8b garbage that is not deflate");
  Expected<Array> c = readIdx(dir.file("c.gz"));
  ASSERT_FALSE(c);
  EXPECT_TRUE(contains(c.error().message(), "c.gz")) << c.error().message();
}

TEST(IdxTest, RefusesAGzipBombBeforeInflatingIt) {
  // A header announcing 10 bytes, then 64 MB of zeros (64 KB compressed):
  // inflation stops a byte past what the header announces.
  TempDir dir;
  std::string body = idxBytes(0x08, {10}, std::string(10, 'x'));
  body += std::string(64 << 20, '\0');
  writeBytes(dir.file("bomb.gz"), gzipBytes(body));
  Expected<Array> a = readIdx(dir.file("bomb.gz"));
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(),
                       "inflates to more than 18 bytes (its IDX header "
                       "announces 18 bytes"))
      << a.error().message();
  // A file whose size is exactly what its header says still reads.
  writeBytes(dir.file("ok.gz"),
             gzipBytes(idxBytes(0x08, {10}, std::string(10, 'x'))));
  Expected<Array> ok = readIdx(dir.file("ok.gz"));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->shape, (Shape{10}));
}

TEST(IdxTest, MissingFileNamesPath) {
  Expected<Array> a = readIdx("/nonexistent/dir/images.idx");
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(), "/nonexistent/dir/images.idx"));
  EXPECT_TRUE(contains(a.error().message(), "No such file"));
}

//===----------------------------------------------------------------------===//
// NPY
//===----------------------------------------------------------------------===//

TEST(NpyTest, ReadsF32) {
  Expected<Array> a = parseNpy(f32Npy({1, 2, 3, 4, 5, 6}, "(2, 3)"), "a");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->type, ElemType::F32);
  EXPECT_EQ(a->shape, (Shape{2, 3}));
  EXPECT_EQ(a->get(5), 6);
}

TEST(NpyTest, ReadsOtherTypes) {
  Expected<Array> d =
      parseNpy(npyBytes("<f8", "(2,)", rawBytes<double>({0.25, -1})), "d");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->get(0), 0.25);
  Expected<Array> l =
      parseNpy(npyBytes("<i8", "(2,)", rawBytes<int64_t>({7, -9})), "l");
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->type, ElemType::I64);
  EXPECT_EQ(l->getInt(1), -9);
  Expected<Array> u = parseNpy(npyBytes("|u1", "(3,)", "\x01\x02\xff"), "u");
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(u->get(2), 255);
  Expected<Array> b =
      parseNpy(npyBytes("|b1", "(2,)", std::string("\x01\x00", 2)), "b");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->get(0), 1);
  Expected<Array> s =
      parseNpy(npyBytes("<f4", "()", rawBytes<float>({3})), "s");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(s->shape.empty());
}

TEST(NpyTest, ReadsBigEndianAndVersion2) {
  Expected<Array> a =
      parseNpy(npyBytes(">i4", "(1,)", std::string("\0\0\x01\x02", 4)), "a");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->getInt(0), 258);
  Expected<Array> v2 = parseNpy(
      npyBytes("<f4", "(2,)", rawBytes<float>({1, 2}), false, 2), "v2");
  ASSERT_TRUE(v2) << v2.error().message();
  EXPECT_EQ(v2->get(1), 2);
}

TEST(NpyTest, RejectsFortranOrder) {
  Expected<Array> a = parseNpy(
      npyBytes("<f4", "(2, 2)", rawBytes<float>({1, 2, 3, 4}), true), "f.npy");
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(), "Fortran order"));
}

TEST(NpyTest, RejectsTruncated) {
  std::string bytes = f32Npy({1, 2, 3, 4, 5, 6}, "(2, 3)");
  Expected<Array> a = parseNpy(bytes.substr(0, bytes.size() - 1), "t.npy");
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(), "'t.npy' is truncated"))
      << a.error().message();
  Expected<Array> h = parseNpy(bytes.substr(0, 40), "h.npy");
  ASSERT_FALSE(h);
  EXPECT_TRUE(contains(h.error().message(), "truncated"));
}

TEST(NpyTest, RejectsBadMagicAndDTypes) {
  Expected<Array> a = parseNpy("\x93NUMPX\x01\x00\x10\x00{}", "m.npy");
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(), "not a .npy file"));
  Expected<Array> s = parseNpy(npyBytes("<U5", "(1,)", "abcde"), "s.npy");
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error().message(), "unsupported .npy dtype '<U5'"));
  Expected<Array> h =
      parseNpy(npyBytes("<f4", "(2, x)", rawBytes<float>({1, 2})), "h.npy");
  ASSERT_FALSE(h);
  EXPECT_TRUE(contains(h.error().message(), "bad .npy header"));
  EXPECT_FALSE(contains(h.error().message(), "\n")) << "one line";
}

TEST(NpyTest, WriterOutputReadsBack) {
  TempDir dir;
  std::vector<int32_t> values = {3, 1, 4, 1, 5, 9};
  ASSERT_FALSE(writeNpy(dir.file("o.npy"), DType::I32, {3, 2}, values.data()));
  std::string bytes = readBytes(dir.file("o.npy"));
  EXPECT_EQ(bytes.find("{'descr': '<i4', 'fortran_order': False, 'shape': "
                       "(3, 2), }"),
            10u);
  EXPECT_EQ((bytes.size() - values.size() * 4) % 64, 0u);
  Expected<Array> a = readNpy(dir.file("o.npy"));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->shape, (Shape{3, 2}));
  EXPECT_EQ(a->getInt(5), 9);
  EXPECT_NE(npyHeader(DType::F32, {5}).find("(5,)"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// NPZ
//===----------------------------------------------------------------------===//

TEST(NpzTest, ReadsStoredAndDeflatedEntries) {
  TempDir dir;
  std::string x = f32Npy({1, 2, 3, 4}, "(2, 2)");
  std::string y = i32Npy({7, 8}, "(2,)");
  writeBytes(dir.file("d.npz"),
             zipBytes({{"x.npy", x, false}, {"y.npy", y, true}}));
  Expected<Array> first = readNpz(dir.file("d.npz"), "");
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->shape, (Shape{2, 2}));
  Expected<Array> ya = readNpz(dir.file("d.npz"), "y");
  ASSERT_TRUE(ya) << ya.error().message();
  EXPECT_EQ(ya->getInt(1), 8);
  Expected<Array> yb = readNpz(dir.file("d.npz"), "y.npy");
  ASSERT_TRUE(yb) << yb.error().message();
}

TEST(NpzTest, ReadsNumpyStyleZip64LocalHeaders) {
  TempDir dir;
  std::string x = f32Npy(std::vector<float>(100, 0.5f), "(100,)");
  writeBytes(dir.file("z.npz"), zipBytes({{"x.npy", x, true, true}}));
  Expected<Array> a = readNpz(dir.file("z.npz"), "x");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->get(99), 0.5);
}

TEST(NpzTest, MissingKeyListsArrays) {
  TempDir dir;
  writeBytes(dir.file("d.npz"), zipBytes({{"a.npy", i32Npy({1}, "(1,)")},
                                          {"b.npy", i32Npy({2}, "(1,)")}}));
  Expected<Array> a = readNpz(dir.file("d.npz"), "c");
  ASSERT_FALSE(a);
  EXPECT_TRUE(contains(a.error().message(), "no array 'c' (it has: a, b)"))
      << a.error().message();
}

TEST(NpzTest, RejectsTruncatedAndCorrupt) {
  TempDir dir;
  std::string zip =
      zipBytes({{"x.npy", f32Npy(std::vector<float>(50, 1), "(50,)"), true}});
  writeBytes(dir.file("t.npz"), zip.substr(0, zip.size() - 30));
  Expected<Array> t = readNpz(dir.file("t.npz"), "");
  ASSERT_FALSE(t);
  EXPECT_TRUE(contains(t.error().message(), "t.npz")) << t.error().message();

  std::string corrupt = zipBytes({{"x.npy", i32Npy({1, 2, 3}, "(3,)")}});
  corrupt[corrupt.find("NUMPY") + 70] ^= 0x55; // a data byte: CRC mismatch
  writeBytes(dir.file("c.npz"), corrupt);
  Expected<Array> c = readNpz(dir.file("c.npz"), "");
  ASSERT_FALSE(c);
  EXPECT_TRUE(contains(c.error().message(), "CRC")) << c.error().message();

  writeBytes(dir.file("n.npz"), "not a zip at all, just some text here");
  Expected<Array> n = readNpz(dir.file("n.npz"), "");
  ASSERT_FALSE(n);
  EXPECT_TRUE(contains(n.error().message(), "not a valid .npz"));
}

//===----------------------------------------------------------------------===//
// CSV
//===----------------------------------------------------------------------===//

TEST(CsvTest, ReadsRowsAndDetectsHeader) {
  Expected<Array> a =
      parseCsv("x1,x2,label\n0.5, 1,2\n-1e-3,4,5\r\n\n", "a.csv", {});
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->shape, (Shape{2, 3}));
  EXPECT_EQ(a->get(0), 0.5);
  EXPECT_EQ(a->get(3), -1e-3);
  EXPECT_EQ(a->get(5), 5);
  Expected<Array> noHeader = parseCsv("1,2\n3,4\n", "b.csv", {});
  ASSERT_TRUE(noHeader);
  EXPECT_EQ(noHeader->shape, (Shape{2, 2}));
  Expected<Array> forced = parseCsv("1,2\n3,4\n", "c.csv", true);
  ASSERT_TRUE(forced);
  EXPECT_EQ(forced->shape, (Shape{1, 2}));
}

TEST(CsvTest, AByteOrderMarkIsNotAHeader) {
  // A spreadsheet's UTF-8 export: the mark before the first number must not
  // turn the first data row into a header.
  Expected<Array> a = parseCsv("\xEF\xBB\xBF"
                               "1,2\n3,4\n",
                               "bom.csv", {});
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->shape, (Shape{2, 2}));
  EXPECT_EQ(a->get(0), 1);
  Expected<Array> h = parseCsv("\xEF\xBB\xBF"
                               "x,y\n3,4\n",
                               "bomh.csv", {});
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(h->shape, (Shape{1, 2}));
}

TEST(CsvTest, RejectsRaggedRowsAndNonNumbers) {
  Expected<Array> r = parseCsv("1,2\n3,4\n5\n", "r.csv", false);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().message(), "'r.csv' line 3: 1 values"))
      << r.error().message();
  Expected<Array> n = parseCsv("1,2\n3,abc\n", "n.csv", {});
  ASSERT_FALSE(n);
  EXPECT_TRUE(
      contains(n.error().message(), "line 2, column 2: 'abc' is not a number"))
      << n.error().message();
  Expected<Array> e = parseCsv("a,b\n", "e.csv", {});
  ASSERT_FALSE(e);
  EXPECT_TRUE(contains(e.error().message(), "no data rows"));
}

//===----------------------------------------------------------------------===//
// Robustness: every truncation is an error, corrupt bytes never crash
//===----------------------------------------------------------------------===//

TEST(NpyTest, EveryTruncationIsRejected) {
  std::string bytes = f32Npy({1, 2, 3, 4, 5, 6}, "(2, 3)");
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(parseNpy(bytes.substr(0, n), "t.npy")) << n;
}

TEST(IdxTest, EveryTruncationIsRejected) {
  std::string bytes = idxBytes(0x08, {2, 2, 2}, u8Range(8));
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(parseIdx(bytes.substr(0, n), "t.idx")) << n;
}

TEST(NpzTest, EveryTruncationIsRejected) {
  TempDir dir;
  std::string zip = zipBytes({{"a.npy", i32Npy({1, 2, 3}, "(3,)"), false},
                              {"b.npy", f32Npy({1, 2}, "(2,)"), true}});
  for (size_t n = 0; n < zip.size(); ++n) {
    writeBytes(dir.file("t.npz"), zip.substr(0, n));
    EXPECT_FALSE(readNpz(dir.file("t.npz"), "b")) << n;
  }
}

TEST(NpzTest, CorruptBytesNeverCrash) {
  TempDir dir;
  std::string zip = zipBytes({{"a.npy", i32Npy({1, 2, 3}, "(3,)"), true},
                              {"b.npy", f32Npy({1, 2}, "(2,)"), false}});
  unsigned seed = 1;
  for (int trial = 0; trial < 300; ++trial) {
    std::string corrupt = zip;
    for (int k = 0; k < 3; ++k) {
      seed = seed * 1103515245 + 12345;
      corrupt[(seed >> 8) % corrupt.size()] = char(seed >> 24);
    }
    writeBytes(dir.file("c.npz"), corrupt);
    (void)readNpz(dir.file("c.npz"), "");
    (void)readNpz(dir.file("c.npz"), "b");
  }
}
