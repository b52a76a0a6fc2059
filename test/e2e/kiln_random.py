"""A NumPy port of ir/Random.h, Kiln's counter-based random numbers, so that
PyTorch goldens can feed a model the very noise its compiled step draws.

  normal(step, seed, salt, shape)   kiln.random_normal of a train step
  uniform(step, seed, salt, shape)  kiln.random_uniform

`step` and `seed` are the hyper vector's (runtime/KilnABI.h): the 1-based
training step and the seed mod 2^24; `salt` is the op's. Computed in f64, as
the reference evaluator does (the compiled code's f32 differs by ~1e-7).
"""
import numpy as np

_M = np.uint64(0xFFFFFFFF)


def _u32(x):
    return np.asarray(x, dtype=np.uint64) & _M


def mix(h):
    """MurmurHash3's 32-bit finalizer (randomMix)."""
    h = _u32(h)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _M
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _M
    h ^= h >> np.uint64(16)
    return h


def key(step, seed, salt):
    return mix((_u32(step * 0x9E3779B1) ^ _u32(seed * 0x85EBCA77)
                ^ _u32(salt * 0xC2B2AE3D)))


def bits24(k, index):
    return mix(_u32(k) ^ _u32(_u32(index) * np.uint64(0x27D4EB2F))) >> np.uint64(8)


def uniform(step, seed, salt, shape):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    return (bits24(key(step, seed, salt), i).astype(np.float64)
            / 16777216.0).reshape(shape)


def normal(step, seed, salt, shape):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    k = key(step, seed, salt)
    u1 = (bits24(k, 2 * i).astype(np.float64) + 1) / 16777216.0
    u2 = bits24(k, 2 * i + np.uint64(1)).astype(np.float64) / 16777216.0
    return (np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)).reshape(shape)


if __name__ == "__main__":
    # The values test/unit/RandomTest.cpp pins.
    k = key(1, 42, 3)
    assert int(k) == 2712513351, int(k)
    assert int(bits24(k, 5)) == 11594707
    z = normal(1, 42, 3, (6,))[5]
    assert abs(z - 0.10777977530463358) < 1e-15, z
    print("kiln_random ok")
