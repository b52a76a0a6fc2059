//===- RandomTest.cpp - The statistics of Kiln's counter-based numbers ----===//
//
// ir/Random.h is what every compiled model draws (dropout masks,
// kiln.random_uniform, kiln.random_normal); LoweringTest checks that the
// generated code computes the same numbers. These tests check that the
// numbers are what they claim: uniform on [0, 1), standard normal, and
// independent across elements, salts and steps. Each draw is deterministic,
// so the tests cannot flake; the bounds are those a true random source
// passes with probability 0.999 or more.
//
//===----------------------------------------------------------------------===//

#include "ir/Random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace kiln;

namespace {

constexpr uint32_t kDraws = 1 << 20;

std::vector<double> normals(uint32_t key, uint32_t n = kDraws) {
  std::vector<double> v(n);
  for (uint32_t i = 0; i < n; ++i)
    v[i] = randomNormal(key, i);
  return v;
}

std::vector<double> uniforms(uint32_t key, uint32_t n = kDraws) {
  std::vector<double> v(n);
  for (uint32_t i = 0; i < n; ++i)
    v[i] = randomUniform(key, i);
  return v;
}

double mean(const std::vector<double> &v) {
  double s = 0;
  for (double x : v)
    s += x;
  return s / double(v.size());
}

double variance(const std::vector<double> &v) {
  double m = mean(v), s = 0;
  for (double x : v)
    s += (x - m) * (x - m);
  return s / double(v.size() - 1);
}

/// Pearson's correlation of two equally long samples.
double correlation(const std::vector<double> &a, const std::vector<double> &b) {
  double ma = mean(a), mb = mean(b), sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

/// The Kolmogorov-Smirnov statistic of `v` against the CDF `cdf`.
template <typename Cdf> double ksStatistic(std::vector<double> v, Cdf cdf) {
  std::sort(v.begin(), v.end());
  double d = 0, n = double(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    double f = cdf(v[i]);
    d = std::max({d, f - double(i) / n, double(i + 1) / n - f});
  }
  return d;
}

double normalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

/// The KS bound at significance 0.001: 1.95 / sqrt(n).
double ksBound(size_t n) { return 1.95 / std::sqrt(double(n)); }

/// Bound on |correlation| of independent samples at about 4 sigma.
double correlationBound(size_t n) { return 4.0 / std::sqrt(double(n)); }

TEST(RandomTest, UniformIsUniformOnTheUnitInterval) {
  std::vector<double> u = uniforms(randomKey(1, 42, 3));
  EXPECT_GE(*std::min_element(u.begin(), u.end()), 0.0);
  EXPECT_LT(*std::max_element(u.begin(), u.end()), 1.0);
  EXPECT_NEAR(mean(u), 0.5, 4 * std::sqrt(1.0 / 12 / kDraws));
  EXPECT_NEAR(variance(u), 1.0 / 12, 0.001);
  EXPECT_LT(ksStatistic(u, [](double x) { return x; }), ksBound(u.size()));
  // Chi-square over 256 equal bins: 255 degrees of freedom, whose 0.999
  // quantile is 330.5.
  std::vector<double> bins(256, 0);
  for (double x : u)
    bins[size_t(x * 256)] += 1;
  double expected = double(kDraws) / 256, chi2 = 0;
  for (double b : bins)
    chi2 += (b - expected) * (b - expected) / expected;
  EXPECT_LT(chi2, 330.5);
}

TEST(RandomTest, NormalIsStandardNormal) {
  std::vector<double> z = normals(randomKey(1, 42, 4));
  EXPECT_NEAR(mean(z), 0.0, 4 / std::sqrt(double(kDraws)));
  // The variance of a sample variance of N(0, 1) is 2 / (n - 1).
  EXPECT_NEAR(variance(z), 1.0, 4 * std::sqrt(2.0 / kDraws));
  EXPECT_LT(ksStatistic(z, normalCdf), ksBound(z.size()));
  // The tails: P(|z| > 3) = 0.0027.
  double beyond3 =
      double(std::count_if(z.begin(), z.end(),
                           [](double x) { return std::abs(x) > 3; })) /
      kDraws;
  EXPECT_NEAR(beyond3, 0.0027, 0.0003);
  // Every number is finite: u1 is never 0.
  for (double x : z)
    ASSERT_TRUE(std::isfinite(x));
}

TEST(RandomTest, ElementsSaltsAndStepsDrawIndependently) {
  uint32_t n = 1 << 18;
  std::vector<double> base = normals(randomKey(7, 42, 1), n);
  double bound = correlationBound(n);
  // Neighbouring elements (and Box-Muller's pairs of counters).
  std::vector<double> shifted(base.begin() + 1, base.end());
  std::vector<double> head(base.begin(), base.end() - 1);
  EXPECT_LT(std::abs(correlation(head, shifted)), bound);
  // Another salt, step, seed; a dropout mask's uniforms of the same key.
  for (uint32_t key :
       {randomKey(7, 42, 2), randomKey(8, 42, 1), randomKey(7, 43, 1),
        randomStepKey(randomKey(7, 42, 1), 0)}) {
    std::vector<double> other = normals(key, n);
    EXPECT_LT(std::abs(correlation(base, other)), bound) << "key " << key;
    EXPECT_NE(base, other);
  }
  std::vector<double> u = uniforms(randomKey(7, 42, 1), n);
  EXPECT_LT(std::abs(correlation(base, u)), bound);
}

TEST(RandomTest, TheStreamIsPinned) {
  // A key is a pure function of (step, seed, salt), a number of (key,
  // index): a run is reproducible across machines and builds. These values
  // pin the stream: changing ir/Random.h changes every compiled model's
  // random numbers, which must be a deliberate decision (and
  // test/e2e/kiln_random.py, the NumPy port the goldens use, must follow).
  uint32_t key = randomKey(1, 42, 3);
  EXPECT_EQ(key, 2712513351u);
  EXPECT_EQ(randomBits24(key, 5), 11594707u);
  EXPECT_FLOAT_EQ(randomUniform(key, 6), 0.183663368f);
  EXPECT_NEAR(randomNormal(key, 5), 0.10777977530463358, 1e-15);
}

} // namespace
