// Embeds the compiled MLP (kilnc --emit=lib) in a C++ program through its
// generated header: reads the manifest, runs kiln_predict on a batch.
#include "libmlp.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

int main() {
  std::printf("manifest starts with: %.15s\n", kiln_manifest());
  // Buffers of kiln_predict in the header's order: the six parameters, the
  // image batch, then the prediction.
  const size_t sizes[] = {784 * 256, 256, 256 * 128, 128,
                          128 * 10,  10,  64 * 784};
  std::vector<std::vector<float>> buffers;
  uint32_t state = 12345;
  for (size_t n : sizes) {
    std::vector<float> b(n);
    for (float &x : b) {
      state = state * 1664525u + 1013904223u;
      x = float(state >> 8) / float(1 << 24) - 0.5f;
    }
    buffers.push_back(std::move(b));
  }
  std::vector<int32_t> prediction(64, -1);
  std::vector<void *> args;
  for (auto &b : buffers)
    args.push_back(b.data());
  args.push_back(prediction.data());
  if (args.size() != KILN_MLP_PREDICT_BUFFERS)
    return 1;
  kiln_predict(args.data());
  int inRange = 0, distinct = 0;
  bool seen[10] = {};
  for (int32_t p : prediction)
    if (p >= 0 && p < 10) {
      ++inRange;
      distinct += !seen[p];
      seen[p] = true;
    }
  std::printf("predicted %d classes in [0, 10) (%d distinct)\n", inRange,
              distinct);
  return inRange == 64 ? 0 : 1;
}
