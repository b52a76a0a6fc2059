//===- Wav.h - WAV audio files -------------------------------------------===//
//
// The `wav(...)` data source reads 16-bit PCM mono WAV files (a single file,
// or a tab-separated list of them) into an f32 input [B, N]: samples scaled
// to [-1, 1), resampled to the model's rate, the first N of a longer clip,
// zeros after a shorter one.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_WAV_H
#define KILN_RUNTIME_WAV_H

#include "runtime/Error.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::rt {

struct Audio {
  int64_t rate = 0;           ///< samples a second
  std::vector<float> samples; ///< in [-1, 1): the 16-bit values / 32768
};

/// A RIFF/WAVE file: a `fmt ` chunk of PCM (format 1, or
/// WAVE_FORMAT_EXTENSIBLE with the PCM subformat), one channel, 16 bits, and
/// a `data` chunk (one whose size says 0xFFFFFFFF, as streaming writers
/// leave it, runs to the end of the file). Errors name `name` and what is
/// wrong: not a WAV file, stereo, 8-bit, compressed or float audio, a rate
/// outside 1,000 to 768,000 samples a second, truncated, no samples.
Expected<Audio> parseWav(std::string_view bytes, std::string_view name);
Expected<Audio> readWav(const std::string &path);

/// `samples` at `from` samples a second resampled to `to` (band-limited
/// interpolation: a Hann-windowed sinc of 16 zero crossings, its cutoff the
/// lower of the two Nyquist frequencies, so downsampling does not alias);
/// at most the first `limit` samples of the result (a file claiming 1 sample
/// a second must not become billions of samples).
std::vector<float> resample(const std::vector<float> &samples, int64_t from,
                            int64_t to, size_t limit);

/// Writes 16-bit PCM mono (samples clamped to [-1, 1)) atomically.
Error writeWav(const std::string &path, const Audio &audio);

} // namespace kiln::rt

#endif // KILN_RUNTIME_WAV_H
