//===- Harness.h - Shared helpers of the libFuzzer harnesses --------------===//
//
// Readers that take a path get the input through a file in a per-process
// temporary directory.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_FUZZ_HARNESS_H
#define KILN_TEST_FUZZ_HARNESS_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>

namespace kiln::fuzz {

inline std::string_view bytes(const uint8_t *data, size_t size) {
  return {reinterpret_cast<const char *>(data), size};
}

/// Writes the input to a file named `name` in this process's temporary
/// directory and returns its path.
inline std::string writeInput(const uint8_t *data, size_t size,
                              const std::string &name) {
  static const std::string dir = [] {
    std::string t = "/tmp/kiln-fuzz-XXXXXX";
    if (!mkdtemp(t.data()))
      std::abort();
    return t;
  }();
  std::string path = dir + "/" + name;
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    std::abort();
  if (size)
    std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

} // namespace kiln::fuzz

#endif // KILN_TEST_FUZZ_HARNESS_H
