// NumPy .npy arrays.
#include "Harness.h"
#include "runtime/Data.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)rt::parseNpy(fuzz::bytes(data, size), "fuzz");
  return 0;
}
