//===- DropoutMask.h - The counter-based hash behind kiln.dropout -*- C++
//-*-===//
//
// kiln.dropout keeps element `i` when u >= rate, with u in [0, 1) derived from
// a 32-bit hash of (step, seed, salt, i). The generated code (codegen/)
// computes the same function with arith ops; the reference evaluator calls this
// one. Changing it changes every compiled model's random stream.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_DROPOUTMASK_H
#define KILN_IR_DROPOUTMASK_H

#include <cstdint>

namespace kiln {

/// MurmurHash3's 32-bit finalizer.
inline uint32_t dropoutMix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/// The per-op, per-step key: `step` and `seed` come from the hyper vector
/// (runtime/KilnABI.h), `salt` from the op.
inline uint32_t dropoutKey(uint32_t step, uint32_t seed, uint32_t salt) {
  return dropoutMix(step * 0x9e3779b1u ^ seed * 0x85ebca77u ^
                    salt * 0xc2b2ae3du);
}

/// The key of time step `step` of a recurrence (a dropout inside kiln.scan):
/// each step draws its own mask.
inline uint32_t dropoutStepKey(uint32_t key, uint32_t step) {
  return dropoutMix(key ^ (step + 1) * 0x165667b1u);
}

/// The uniform number in [0, 1) of element `index` (24 bits of the hash).
inline float dropoutUniform(uint32_t key, uint32_t index) {
  return static_cast<float>(dropoutMix(key ^ index * 0x27d4eb2fu) >> 8) *
         (1.0f / 16777216.0f);
}

} // namespace kiln

#endif // KILN_IR_DROPOUTMASK_H
