// The JSON parser (checkpoint headers, bench files).
#include "Harness.h"
#include "runtime/Json.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)rt::parseJson(fuzz::bytes(data, size));
  return 0;
}
