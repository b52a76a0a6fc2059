// NumPy .npz archives (zip, stored or deflated, zip64): the first array and
// one by name.
#include "Harness.h"
#include "runtime/Data.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = fuzz::writeInput(data, size, "in.npz");
  (void)rt::readNpz(path, "");
  (void)rt::readNpz(path, "x");
  return 0;
}
