// The manifest a compiled model embeds (its records describe buffers, data
// and entries; a damaged executable must not crash the runtime).
#include "Harness.h"
#include "runtime/Manifest.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)rt::parseManifest(fuzz::bytes(data, size));
  return 0;
}
