// WAV audio, and resampling what it holds.
#include "Harness.h"
#include "runtime/Wav.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt::Expected<rt::Audio> audio = rt::parseWav(fuzz::bytes(data, size), "fuzz");
  if (audio && audio->samples.size() <= 4096 && audio->rate <= 192000)
    (void)rt::resample(audio->samples, audio->rate, 8000);
  return 0;
}
