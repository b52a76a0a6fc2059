//===- InitTest.cpp - Tests of the RNG and parameter initializers -------===//

#include "runtime/Init.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

using namespace kiln::rt;

namespace {

ParamSpec param(InitKind init, std::vector<double> args,
                Shape shape = {200, 300}) {
  ParamSpec p;
  p.name = "p";
  p.type = DType::F32;
  p.shape = std::move(shape);
  p.init = init;
  p.initArgs = std::move(args);
  return p;
}

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};

Stats initialized(const ParamSpec &p, uint64_t seed = 1) {
  Tensor t(p.name, p.type, p.shape);
  Rng rng(seed);
  initializeParam(p, t, rng);
  int64_t n = t.numElements();
  Stats s;
  s.min = s.max = t.at(0);
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = t.at(i);
    sum += v;
    sq += v * v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.mean = sum / double(n);
  s.std = std::sqrt(sq / double(n) - s.mean * s.mean);
  return s;
}

} // namespace

TEST(InitTest, ConstantInitializers) {
  Stats z = initialized(param(InitKind::Zeros, {}, {7}));
  EXPECT_EQ(z.min, 0);
  EXPECT_EQ(z.max, 0);
  Stats o = initialized(param(InitKind::Ones, {}, {7}));
  EXPECT_EQ(o.min, 1);
  EXPECT_EQ(o.max, 1);
  Stats c = initialized(param(InitKind::Constant, {0.25}, {7}));
  EXPECT_EQ(c.min, 0.25);
  EXPECT_EQ(c.max, 0.25);
}

TEST(InitTest, GlorotUniformStatistics) {
  double bound = std::sqrt(6.0 / (200 + 300));
  Stats s = initialized(param(InitKind::GlorotUniform, {200, 300}));
  EXPECT_GE(s.min, -bound);
  EXPECT_LE(s.max, bound);
  EXPECT_GT(s.max, 0.99 * bound); // the range is filled
  EXPECT_LT(s.min, -0.99 * bound);
  EXPECT_NEAR(s.mean, 0, 0.01 * bound);
  EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 0.02 * bound);
}

TEST(InitTest, GlorotNormalStatistics) {
  double std = std::sqrt(2.0 / (200 + 300));
  Stats s = initialized(param(InitKind::GlorotNormal, {200, 300}));
  EXPECT_NEAR(s.mean, 0, 0.01 * std);
  EXPECT_NEAR(s.std, std, 0.02 * std);
}

TEST(InitTest, HeStatistics) {
  double bound = std::sqrt(6.0 / 200);
  Stats u = initialized(param(InitKind::HeUniform, {200}));
  EXPECT_GE(u.min, -bound);
  EXPECT_LE(u.max, bound);
  EXPECT_NEAR(u.std, bound / std::sqrt(3.0), 0.02 * bound);
  double std = std::sqrt(2.0 / 200);
  Stats n = initialized(param(InitKind::HeNormal, {200}));
  EXPECT_NEAR(n.mean, 0, 0.01 * std);
  EXPECT_NEAR(n.std, std, 0.02 * std);
}

TEST(InitTest, UniformAndNormalUseTheirArguments) {
  Stats u = initialized(param(InitKind::Uniform, {2, 5}));
  EXPECT_GE(u.min, 2);
  EXPECT_LE(u.max, 5);
  EXPECT_NEAR(u.mean, 3.5, 0.02);
  Stats n = initialized(param(InitKind::Normal, {-1, 0.5}));
  EXPECT_NEAR(n.mean, -1, 0.01);
  EXPECT_NEAR(n.std, 0.5, 0.01);
}

TEST(InitTest, F64Params) {
  ParamSpec p = param(InitKind::Normal, {3, 0.1}, {1000});
  p.type = DType::F64;
  Stats s = initialized(p);
  EXPECT_NEAR(s.mean, 3, 0.02);
}

TEST(InitTest, SameSeedSameValues) {
  ParamSpec p = param(InitKind::GlorotNormal, {10, 10}, {10, 10});
  Tensor a("a", DType::F32, p.shape), b("b", DType::F32, p.shape),
      c("c", DType::F32, p.shape);
  Rng r1(7, "init:w"), r2(7, "init:w"), r3(8, "init:w");
  initializeParam(p, a, r1);
  initializeParam(p, b, r2);
  initializeParam(p, c, r3);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.numBytes()), 0);
  EXPECT_NE(std::memcmp(a.data(), c.data(), a.numBytes()), 0);
}

TEST(RngTest, StreamsDependOnSeedAndTag) {
  EXPECT_EQ(Rng(1, "a").next(), Rng(1, "a").next());
  EXPECT_NE(Rng(1, "a").next(), Rng(1, "b").next());
  EXPECT_NE(Rng(1, "a").next(), Rng(2, "a").next());
}

TEST(RngTest, ShuffleIsADeterministicPermutation) {
  std::vector<int64_t> a(1000), b(1000);
  std::iota(a.begin(), a.end(), 0);
  std::iota(b.begin(), b.end(), 0);
  Rng r1(3, "epoch:0"), r2(3, "epoch:0");
  shuffle(a, r1);
  shuffle(b, r2);
  EXPECT_EQ(a, b);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i)
    ASSERT_EQ(sorted[size_t(i)], i);
  int fixed = 0;
  for (int64_t i = 0; i < 1000; ++i)
    fixed += a[size_t(i)] == i;
  EXPECT_LT(fixed, 10); // about 1 expected
}

TEST(RngTest, BelowAndUniformRanges) {
  Rng rng(5);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i)
    ++counts[size_t(rng.below(6))];
  for (int c : counts)
    EXPECT_NEAR(c, 10000, 500);
  for (int i = 0; i < 1000; ++i) {
    double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}
