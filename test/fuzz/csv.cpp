// CSV numbers, with the header detected, present and absent.
#include "Harness.h"
#include "runtime/Data.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text = fuzz::bytes(data, size);
  (void)rt::parseCsv(text, "fuzz", std::nullopt);
  (void)rt::parseCsv(text, "fuzz", true);
  (void)rt::parseCsv(text, "fuzz", false);
  return 0;
}
