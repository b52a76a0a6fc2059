//===- Wav.cpp - WAV audio files -----------------------------------------===//

#include "runtime/Wav.h"

#include "runtime/Files.h"

#include <algorithm>
#include <cmath>

namespace kiln::rt {

namespace {

uint32_t readU32(std::string_view b, size_t at) {
  return uint32_t(uint8_t(b[at])) | uint32_t(uint8_t(b[at + 1])) << 8 |
         uint32_t(uint8_t(b[at + 2])) << 16 |
         uint32_t(uint8_t(b[at + 3])) << 24;
}
uint16_t readU16(std::string_view b, size_t at) {
  return uint16_t(uint8_t(b[at]) | uint8_t(b[at + 1]) << 8);
}
void appendU32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(char((v >> (8 * i)) & 0xFF));
}
void appendU16(std::string &out, uint16_t v) {
  out.push_back(char(v & 0xFF));
  out.push_back(char(v >> 8));
}

constexpr uint16_t kFormatPcm = 1, kFormatExtensible = 0xFFFE;
/// The rates a WAV file may claim (telephone speech to studio recordings).
constexpr uint32_t kMinRate = 1000, kMaxRate = 768000;

} // namespace

Expected<Audio> parseWav(std::string_view bytes, std::string_view name) {
  if (bytes.size() < 12 || bytes.substr(0, 4) != "RIFF" ||
      bytes.substr(8, 4) != "WAVE")
    return makeError("'{}' is not a WAV file (no RIFF/WAVE header)", name);
  bool sawFormat = false;
  uint16_t channels = 0, bits = 0;
  uint32_t rate = 0;
  for (size_t at = 12; at + 8 <= bytes.size();) {
    std::string_view id = bytes.substr(at, 4);
    uint64_t size = readU32(bytes, at + 4);
    size_t body = at + 8;
    if (id == "fmt ") {
      if (size < 16 || body + size > bytes.size())
        return makeError("'{}' is truncated: its fmt chunk is cut short", name);
      uint16_t format = readU16(bytes, body);
      channels = readU16(bytes, body + 2);
      rate = readU32(bytes, body + 4);
      bits = readU16(bytes, body + 14);
      // WAVE_FORMAT_EXTENSIBLE names the real format in its subformat GUID.
      if (format == kFormatExtensible && size >= 40)
        format = readU16(bytes, body + 24);
      if (format != kFormatPcm)
        return makeError("'{}' holds compressed or floating-point audio "
                         "(format {}); Kiln reads 16-bit PCM WAV",
                         name, format);
      sawFormat = true;
    } else if (id == "data") {
      if (!sawFormat)
        return makeError("'{}' has its data before its fmt chunk", name);
      if (channels != 1)
        return makeError("'{}' has {} channels; Kiln reads mono audio (mix "
                         "it down first, e.g. sox IN.wav -c 1 OUT.wav)",
                         name, channels);
      if (bits != 16)
        return makeError("'{}' has {}-bit samples; Kiln reads 16-bit PCM", name,
                         bits);
      if (rate < kMinRate || rate > kMaxRate)
        return makeError("'{}' says its rate is {} samples a second; audio "
                         "has {} to {}",
                         name, rate, kMinRate, kMaxRate);
      if (size == 0xFFFFFFFFu)
        size = bytes.size() - body;
      if (body + size > bytes.size())
        return makeError("'{}' is truncated: its data chunk says {} bytes, "
                         "{} follow",
                         name, size, bytes.size() - body);
      if (size % 2)
        return makeError("'{}': its data chunk holds {} bytes, not whole "
                         "16-bit samples",
                         name, size);
      if (size == 0)
        return makeError("'{}' holds no samples", name);
      Audio audio;
      audio.rate = rate;
      audio.samples.resize(size / 2);
      for (size_t i = 0; i < audio.samples.size(); ++i)
        audio.samples[i] =
            float(int16_t(readU16(bytes, body + 2 * i))) / 32768.0f;
      return audio;
    }
    // Chunks are padded to an even size.
    at = body + size + (size & 1);
  }
  return makeError("'{}' has no {} chunk", name,
                   sawFormat ? "data" : "fmt (audio format)");
}

Expected<Audio> readWav(const std::string &path) {
  Expected<std::string> bytes = readFile(path);
  if (!bytes)
    return bytes.takeError();
  return parseWav(*bytes, path);
}

std::vector<float> resample(const std::vector<float> &samples, int64_t from,
                            int64_t to, size_t limit) {
  constexpr double kZeroCrossings = 16;
  double ratio = double(to) / double(from);
  double cutoff = std::min(1.0, ratio); // of the input's Nyquist frequency
  double halfWidth = kZeroCrossings / cutoff;
  double n = std::floor(double(samples.size()) * ratio);
  std::vector<float> out(std::min(size_t(std::max(n, 1.0)), limit));
  for (size_t j = 0; j < out.size(); ++j) {
    double t = double(j) / ratio; // the output sample's input position
    auto first = int64_t(std::ceil(t - halfWidth));
    auto last = int64_t(std::floor(t + halfWidth));
    double sum = 0;
    for (int64_t i = std::max<int64_t>(first, 0);
         i <= std::min<int64_t>(last, int64_t(samples.size()) - 1); ++i) {
      double x = (t - double(i)) * cutoff;
      double sinc = x == 0 ? 1 : std::sin(M_PI * x) / (M_PI * x);
      double window = 0.5 + 0.5 * std::cos(M_PI * x / kZeroCrossings);
      sum += double(samples[size_t(i)]) * cutoff * sinc * window;
    }
    out[j] = float(sum);
  }
  return out;
}

Error writeWav(const std::string &path, const Audio &audio) {
  uint32_t dataBytes = uint32_t(audio.samples.size() * 2);
  std::string out = "RIFF";
  appendU32(out, 36 + dataBytes);
  out += "WAVEfmt ";
  appendU32(out, 16);
  appendU16(out, kFormatPcm);
  appendU16(out, 1);
  appendU32(out, uint32_t(audio.rate));
  appendU32(out, uint32_t(audio.rate * 2));
  appendU16(out, 2);
  appendU16(out, 16);
  out += "data";
  appendU32(out, dataBytes);
  for (float s : audio.samples) {
    double v = std::round(double(s) * 32768.0);
    appendU16(out, uint16_t(int16_t(std::clamp(v, -32768.0, 32767.0))));
  }
  return writeFileAtomic(path, out);
}

} // namespace kiln::rt
