// Text: UTF-8 decoding (strict and lenient), tab-separated pairs, lines and
// text splits, and vocabularies and class names as checkpoints store them.
#include "Harness.h"
#include "runtime/Text.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view bytes = fuzz::bytes(data, size);
  (void)rt::decodeUtf8(bytes, "fuzz");
  std::u32string lenient = rt::decodeUtf8Lenient(bytes);
  if (rt::encodeUtf8Lenient(lenient) != bytes)
    __builtin_trap(); // lenient decoding must lose nothing
  (void)rt::Vocabulary::fromUtf8(bytes);
  (void)rt::ClassNames::fromUtf8(bytes);
  std::string path = fuzz::writeInput(data, size, "in.tsv");
  rt::Expected<rt::PairsFile> pairs = rt::readPairs(path);
  if (pairs)
    for (size_t c = 0; c < pairs->columns; ++c)
      (void)rt::ClassNames::of(*pairs, c);
  (void)rt::readLineSplit(path, 0.5);
  (void)rt::readTextSplit(path, 0.5);
  return 0;
}
