//===- WavTest.cpp - Tests of WAV files and the wav data source ---------===//

#include "runtime/Wav.h"
#include "TestUtil.h"
#include "runtime/Dataset.h"
#include "runtime/Files.h"

#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

using namespace kiln::rt;
using namespace kiln::rt::test;

namespace {

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

/// A WAV file's bytes: a fmt chunk of FORMAT, CHANNELS, RATE and BITS, then
/// a data chunk saying SIZE bytes (default: those of SAMPLES) and holding
/// SAMPLES.
std::string wavBytes(const std::vector<int16_t> &samples, uint16_t format = 1,
                     uint16_t channels = 1, uint32_t rate = 8000,
                     uint16_t bits = 16, int64_t size = -1) {
  auto u32 = [](uint32_t v) {
    return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)};
  };
  auto u16 = [](uint16_t v) { return std::string{char(v), char(v >> 8)}; };
  std::string data;
  for (int16_t s : samples)
    data += u16(uint16_t(s));
  std::string fmt = u16(format) + u16(channels) + u32(rate) +
                    u32(rate * channels * bits / 8) +
                    u16(uint16_t(channels * bits / 8)) + u16(bits);
  std::string out = "WAVE" + std::string("fmt ") + u32(16) + fmt;
  // An odd-sized chunk before the data, padded to an even size.
  out += "LIST" + u32(3) + "abc" + std::string(1, '\0');
  out += "data" + u32(size < 0 ? uint32_t(data.size()) : uint32_t(size)) + data;
  return "RIFF" + u32(uint32_t(out.size())) + out;
}

} // namespace

TEST(WavTest, ReadsPcmMonoAndSkipsOtherChunks) {
  Expected<Audio> a = parseWav(wavBytes({0, 16384, -32768, 32767}), "a.wav");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->rate, 8000);
  EXPECT_EQ(a->samples,
            (std::vector<float>{0.0f, 0.5f, -1.0f, 32767.0f / 32768.0f}));
  // A streaming writer's unknown size runs to the end of the file.
  Expected<Audio> streamed =
      parseWav(wavBytes({1, 2, 3}, 1, 1, 8000, 16, 0xFFFFFFFF), "s.wav");
  ASSERT_TRUE(streamed) << streamed.error().message();
  EXPECT_EQ(streamed->samples.size(), 3u);
}

TEST(WavTest, WritesWhatItReads) {
  TempDir dir;
  Audio audio{16000, {0.0f, 0.25f, -0.5f, 0.999f, -1.0f}};
  ASSERT_FALSE(writeWav(dir.file("w.wav"), audio));
  Expected<Audio> back = readWav(dir.file("w.wav"));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->rate, 16000);
  ASSERT_EQ(back->samples.size(), audio.samples.size());
  for (size_t i = 0; i < audio.samples.size(); ++i)
    EXPECT_NEAR(back->samples[i], audio.samples[i], 1.0 / 32768);
}

TEST(WavTest, BadFilesGetOneLineErrors) {
  auto error = [](const std::string &bytes) {
    Expected<Audio> a = parseWav(bytes, "x.wav");
    EXPECT_FALSE(a);
    return a ? std::string() : a.error().message();
  };
  EXPECT_TRUE(contains(error("hello"), "'x.wav' is not a WAV file"));
  EXPECT_TRUE(contains(error(wavBytes({1, 2}, 1, 2)),
                       "'x.wav' has 2 channels; Kiln reads mono audio"));
  EXPECT_TRUE(contains(error(wavBytes({1, 2}, 1, 1, 8000, 8)),
                       "'x.wav' has 8-bit samples; Kiln reads 16-bit PCM"));
  EXPECT_TRUE(contains(error(wavBytes({1, 2}, 3)),
                       "compressed or floating-point audio (format 3)"));
  EXPECT_TRUE(contains(error(wavBytes({})), "'x.wav' holds no samples"));
  EXPECT_TRUE(contains(error(wavBytes({1, 2}, 1, 1, 1)),
                       "'x.wav' says its rate is 1 samples a second; audio "
                       "has 1000 to 768000"));
  EXPECT_TRUE(contains(error(wavBytes({1, 2}, 1, 1, 8000, 16, 400)),
                       "'x.wav' is truncated: its data chunk says 400 bytes, "
                       "4 follow"));
  std::string noData = wavBytes({1});
  noData.resize(noData.find("data"));
  EXPECT_TRUE(contains(error(noData), "'x.wav' has no data chunk"));
}

TEST(WavTest, ResamplesBandLimited) {
  // A 440 Hz tone at 22,050 Hz resampled to 8,000 Hz is the tone sampled at
  // 8,000 Hz (away from the ends, where the filter runs out of input); a
  // 3,000 Hz tone upsampled to 16,000 Hz likewise.
  auto tone = [](double hz, int64_t rate, size_t n) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i)
      x[i] = float(0.5 * std::sin(2 * M_PI * hz * double(i) / double(rate)));
    return x;
  };
  for (auto [hz, from, to] :
       {std::tuple{440.0, 22050, 8000}, std::tuple{3000.0, 8000, 16000}}) {
    std::vector<float> y =
        resample(tone(hz, from, size_t(from)), from, to, size_t(to));
    ASSERT_EQ(y.size(), size_t(to));
    std::vector<float> want = tone(hz, to, size_t(to));
    double worst = 0;
    for (size_t i = 100; i + 100 < y.size(); ++i)
      worst = std::max(worst, std::abs(double(y[i]) - want[i]));
    EXPECT_LT(worst, 2e-3) << hz << " Hz from " << from << " to " << to;
  }
  // What lies above the new Nyquist frequency is filtered out, not aliased:
  // a 6,000 Hz tone resampled from 22,050 to 8,000 Hz all but vanishes.
  std::vector<float> high =
      resample(tone(6000, 22050, 22050), 22050, 8000, 8000);
  double peak = 0;
  for (size_t i = 100; i + 100 < high.size(); ++i)
    peak = std::max(peak, std::abs(double(high[i])));
  EXPECT_LT(peak, 0.02);
  // Found by fuzzing: a header claiming 1 sample a second upsampled to 8 kHz
  // made 8,000 samples of each one; only the samples asked for are made.
  std::vector<float> slow =
      resample(std::vector<float>(100000, 0.5f), 1, 8000, 16);
  EXPECT_EQ(slow.size(), 16u);
}

TEST(WavTest, ListsFeedAFloatInputCroppedOrPadded) {
  TempDir dir;
  ASSERT_FALSE(writeWav(dir.file("a.wav"), {8000, {0.5f, 0.25f}}));
  ASSERT_FALSE(
      writeWav(dir.file("b.wav"), {8000, {0.5f, 0.5f, 0.5f, 0.5f, -0.5f}}));
  ASSERT_FALSE(writeWav(dir.file("fast.wav"), {16000, {0.5f}}));
  writeBytes(dir.file("list.tsv"), "one\ta.wav\ntwo\tb.wav\n");
  Expected<Manifest> m = parseManifest(
      "kiln-manifest 2\nmodel asr\ninput audio f32 2x4\nentry e infer\n"
      "arg input audio\n");
  ASSERT_TRUE(m) << m.error().message();
  DataSource list = sourceFromPath("audio", dir.file("list.tsv"));
  list.format = kiln::contract::DataFormat::Wav;
  list.options = {{"column", "1"}, {"rate", "8000"}};
  Expected<Dataset> ds = loadDataset(*m, {list}, "train");
  ASSERT_TRUE(ds) << ds.error().message();
  EXPECT_EQ(ds->examples, 2);
  const auto *x = reinterpret_cast<const float *>(ds->inputs[0].bytes.data());
  EXPECT_EQ(std::vector<float>(x, x + 8),
            (std::vector<float>{0.5f, 0.25f, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f}));
  ASSERT_EQ(ds->notes.size(), 1u);
  EXPECT_TRUE(contains(ds->notes[0], "1 of the 2 clips are longer than the 4 "
                                     "samples input 'audio' reads"))
      << ds->notes[0];

  // One .wav path is one example; another rate is resampled, with a note.
  EXPECT_EQ(formatFromPath(dir.file("a.wav")), kiln::contract::DataFormat::Wav);
  DataSource one = sourceFromPath("audio", dir.file("fast.wav"));
  one.options = {{"rate", "8000"}};
  Expected<Dataset> fast = loadDataset(*m, {one}, "predict");
  ASSERT_TRUE(fast) << fast.error().message();
  EXPECT_EQ(fast->examples, 1);
  ASSERT_EQ(fast->notes.size(), 1u);
  EXPECT_TRUE(contains(fast->notes[0], "has 16000 samples a second; the "
                                       "model reads 8000, so it is resampled"))
      << fast->notes[0];

  // A list names a missing file: the error names it.
  writeBytes(dir.file("missing.tsv"), "one\tnone.wav\n");
  list.path = dir.file("missing.tsv");
  Expected<Dataset> missing = loadDataset(*m, {list}, "train");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(missing.error().message(), "none.wav"))
      << missing.error().message();
  // A .tsv on the command line for a model that reads WAV lists is a list.
  DataSpec spec;
  spec.input = "audio";
  spec.path = "digits/train.tsv";
  spec.format = kiln::contract::DataFormat::Wav;
  spec.options = {{"column", "1"}, {"rate", "8000"}};
  DataSource cli = sourceFromPath("audio", dir.file("list.tsv"));
  adoptSpec(cli, spec);
  EXPECT_EQ(cli.format, kiln::contract::DataFormat::Wav);
  EXPECT_EQ(cli.options, spec.options);
}
