//===- Init.h - Seeded random numbers and parameter initializers ---------===//
//
// A small, portable RNG (xoshiro256** seeded through SplitMix64) whose streams
// depend only on the seed and a purpose tag, so that parameter initialization
// and the shuffle order of each epoch are reproducible on any platform and
// independent of each other (resuming at epoch 3 shuffles as epoch 3 did).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_INIT_H
#define KILN_RUNTIME_INIT_H

#include "runtime/Manifest.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::rt {

class Rng {
public:
  explicit Rng(uint64_t seed);
  /// A stream for one purpose: Rng(seed, "init:fc1.w"), Rng(seed, "epoch:3").
  Rng(uint64_t seed, std::string_view tag);

  uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform integer in [0, n), unbiased; n > 0.
  uint64_t below(uint64_t n);
  /// Standard normal (Box-Muller).
  double normal();

private:
  uint64_t s[4];
  bool hasSpare = false;
  double spare = 0;
};

/// Fisher-Yates shuffle.
void shuffle(std::vector<int64_t> &values, Rng &rng);

/// Fills TENSOR (of PARAM's dtype and shape) per PARAM's initializer.
void initializeParam(const ParamSpec &param, Tensor &tensor, Rng &rng);

/// The bound of glorot_uniform / he_uniform and the std of glorot_normal /
/// he_normal for PARAM (0 for the other initializers).
double initScale(const ParamSpec &param);

} // namespace kiln::rt

#endif // KILN_RUNTIME_INIT_H
