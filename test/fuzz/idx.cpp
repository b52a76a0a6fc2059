// IDX arrays (MNIST's): parsed from bytes, and read through gzip (the input
// compressed as it is, so the inflater sees the fuzzer's bytes too).
#include "Harness.h"
#include "runtime/Data.h"

#include <zlib.h>

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)rt::parseIdx(fuzz::bytes(data, size), "fuzz");
  // Raw bytes as a .gz file (mostly not gzip at all), and the bytes gzip'd.
  (void)rt::readIdx(fuzz::writeInput(data, size, "raw.gz"));
  uLongf bound = compressBound(size) + 32;
  std::string packed(bound, '\0');
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK) {
    z.next_in = const_cast<Bytef *>(data);
    z.avail_in = uInt(size);
    z.next_out = reinterpret_cast<Bytef *>(packed.data());
    z.avail_out = uInt(packed.size());
    deflate(&z, Z_FINISH);
    packed.resize(z.total_out);
    deflateEnd(&z);
    (void)rt::readIdx(fuzz::writeInput(
        reinterpret_cast<const uint8_t *>(packed.data()), packed.size(),
        "packed.gz"));
  }
  return 0;
}
