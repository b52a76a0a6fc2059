//===- Random.h - Kiln's counter-based random numbers ----------*- C++ -*-===//
//
// Every random number a compiled model draws (kiln.dropout's masks,
// kiln.random_uniform, kiln.random_normal) is a pure function of a key and the
// element's row-major index: the key hashes the hyper vector's step and seed
// (runtime/KilnABI.h) with the op's salt, so a run is bitwise reproducible and
// the backward pass recomputes a mask instead of storing it. The generated
// code (codegen/LowerOptimizers.cpp) computes the same functions with arith
// ops; the reference evaluator (ir/Reference.cpp) calls these. Changing them
// changes every compiled model's random stream.
//
// test/e2e/kiln_random.py is the NumPy port the PyTorch goldens use.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_RANDOM_H
#define KILN_IR_RANDOM_H

#include <cmath>
#include <cstdint>

namespace kiln {

/// MurmurHash3's 32-bit finalizer.
inline uint32_t randomMix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/// The per-op, per-step key: `step` and `seed` come from the hyper vector
/// (runtime/KilnABI.h), `salt` from the op.
inline uint32_t randomKey(uint32_t step, uint32_t seed, uint32_t salt) {
  return randomMix(step * 0x9e3779b1u ^ seed * 0x85ebca77u ^
                   salt * 0xc2b2ae3du);
}

/// The key of time step `step` of a recurrence (a dropout inside kiln.scan):
/// each step draws its own mask.
inline uint32_t randomStepKey(uint32_t key, uint32_t step) {
  return randomMix(key ^ (step + 1) * 0x165667b1u);
}

/// The counter of element 0 of a random op's tensor of `numElements` in part
/// `shard` of a data-parallel job's global batch (the hyper vector's
/// KILN_HYPER_SHARD; 0 alone): element i draws counter base + i, so with the
/// batch as the tensor's outermost dimension each example draws what it would
/// in one process holding the whole global batch.
inline uint32_t randomShardBase(uint32_t shard, int64_t numElements) {
  return shard * static_cast<uint32_t>(numElements);
}

/// The 24 random bits of counter `index` under `key`.
inline uint32_t randomBits24(uint32_t key, uint32_t index) {
  return randomMix(key ^ index * 0x27d4eb2fu) >> 8;
}

/// The uniform number in [0, 1) of element `index`: a multiple of 2^-24
/// (kiln.dropout and kiln.random_uniform).
inline float randomUniform(uint32_t key, uint32_t index) {
  return static_cast<float>(randomBits24(key, index)) * (1.0f / 16777216.0f);
}

/// The standard normal number of element `index` (kiln.random_normal), by
/// the Box-Muller transform of counters 2 * index and 2 * index + 1:
/// sqrt(-2 ln u1) cos(2 pi u2), with u1 in (0, 1] so the logarithm is finite
/// (|z| <= 5.8). The generated code evaluates it in f32.
inline double randomNormal(uint32_t key, uint32_t index) {
  double u1 = (randomBits24(key, 2 * index) + 1) * (1.0 / 16777216.0);
  double u2 = randomBits24(key, 2 * index + 1) * (1.0 / 16777216.0);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

} // namespace kiln

#endif // KILN_IR_RANDOM_H
