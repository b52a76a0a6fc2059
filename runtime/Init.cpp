//===- Init.cpp - Seeded random numbers and parameter initializers -------===//

#include "runtime/Init.h"

#include <cmath>

namespace kiln::rt {

namespace {

uint64_t splitMix64(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view text) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : text) {
    h ^= (unsigned char)c;
    h *= 0x100000001B3ull;
  }
  return h;
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

} // namespace

Rng::Rng(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t &word : s)
    word = splitMix64(state);
}

Rng::Rng(uint64_t seed, std::string_view tag) : Rng(seed ^ fnv1a(tag)) {}

uint64_t Rng::next() {
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }

uint64_t Rng::below(uint64_t n) {
  // Rejection sampling on the top of the range keeps the result unbiased.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = next();
  } while (x >= limit);
  return x % n;
}

double Rng::normal() {
  if (hasSpare) {
    hasSpare = false;
    return spare;
  }
  double u1 = 1.0 - uniform(); // (0, 1]: log is finite
  double u2 = uniform();
  double r = std::sqrt(-2.0 * std::log(u1));
  double theta = 2.0 * M_PI * u2;
  spare = r * std::sin(theta);
  hasSpare = true;
  return r * std::cos(theta);
}

void shuffle(std::vector<int64_t> &values, Rng &rng) {
  for (size_t i = values.size(); i > 1; --i) {
    size_t j = size_t(rng.below(i));
    std::swap(values[i - 1], values[j]);
  }
}

double initScale(const ParamSpec &param) {
  const std::vector<double> &a = param.initArgs;
  switch (param.init) {
  case InitKind::GlorotUniform:
    return std::sqrt(6.0 / (a[0] + a[1]));
  case InitKind::GlorotNormal:
    return std::sqrt(2.0 / (a[0] + a[1]));
  case InitKind::HeUniform:
    return std::sqrt(6.0 / a[0]);
  case InitKind::HeNormal:
    return std::sqrt(2.0 / a[0]);
  default:
    return 0;
  }
}

void initializeParam(const ParamSpec &param, Tensor &tensor, Rng &rng) {
  const std::vector<double> &a = param.initArgs;
  int64_t n = tensor.numElements();
  auto fill = [&](auto gen) {
    if (tensor.type == DType::F64) {
      auto *p = tensor.buffer.as<double>();
      for (int64_t i = 0; i < n; ++i)
        p[i] = gen();
    } else {
      auto *p = tensor.buffer.as<float>();
      for (int64_t i = 0; i < n; ++i)
        p[i] = float(gen());
    }
  };
  double scale = initScale(param);
  switch (param.init) {
  case InitKind::Zeros:
    fill([] { return 0.0; });
    break;
  case InitKind::Ones:
    fill([] { return 1.0; });
    break;
  case InitKind::Constant:
    fill([&] { return a[0]; });
    break;
  case InitKind::Uniform:
    fill([&] { return a[0] + (a[1] - a[0]) * rng.uniform(); });
    break;
  case InitKind::Normal:
    fill([&] { return a[0] + a[1] * rng.normal(); });
    break;
  case InitKind::GlorotUniform:
  case InitKind::HeUniform:
    fill([&] { return scale * (2.0 * rng.uniform() - 1.0); });
    break;
  case InitKind::GlorotNormal:
  case InitKind::HeNormal:
    fill([&] { return scale * rng.normal(); });
    break;
  }
}

} // namespace kiln::rt
