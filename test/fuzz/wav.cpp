// WAV audio, and resampling what it holds.
#include "runtime/Wav.h"
#include "Harness.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt::Expected<rt::Audio> audio = rt::parseWav(fuzz::bytes(data, size), "fuzz");
  if (audio)
    (void)rt::resample(audio->samples, audio->rate, 8000, 10000);
  return 0;
}
