//===- Sample.h - The sample and reconstruct commands -----------*- C++ -*-===//
//
// `./vae sample` runs the model's sample entry (a `sample` block: the decoder
// on random numbers it draws) until it has the examples asked for;
// `./vae reconstruct` runs predict on images and shows each beside what the
// model made of it. Both write a PNG grid (runtime/Image.h) or the raw
// array (.npy).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_SAMPLE_H
#define KILN_RUNTIME_SAMPLE_H

#include "runtime/Checkpoint.h"
#include "runtime/Console.h"
#include "runtime/Dataset.h"
#include "runtime/Error.h"
#include "runtime/Model.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt {

/// The most examples one sample or reconstruct command makes.
inline constexpr int64_t kMaxSampleCount = 10000;
/// The largest --scale of a PNG.
inline constexpr int64_t kMaxImageScale = 16;

/// Loads a checkpoint's parameters for an inference command; NaN or infinite
/// ones are an error.
Expected<CheckpointInfo> loadParameters(Model &model,
                                        const std::string &checkpoint);
/// loadParameters, and the vocabulary the checkpoint's character ids mean
/// (checkpointVocabulary): what the commands that read or write text need.
struct TextParameters {
  CheckpointInfo info;
  Vocabulary vocab;
};
Expected<TextParameters> loadTextParameters(Model &model,
                                            const std::string &checkpoint);
struct SampleOptions {
  std::string checkpoint;
  /// FILE.png (an image grid), FILE.npy (the examples as an array),
  /// FILE.txt (lines of text), or empty (lines of text on the console).
  std::string output;
  int64_t count = 64;
  uint64_t seed = 0;
  /// Each pixel of a PNG drawn as a scale x scale square.
  int64_t scale = 1;
};

/// Loads the checkpoint and calls the sample entry, keyed by `seed` and the
/// call number (so a seed always draws the same examples), until `count`
/// examples are made; writes its first output's rows: f32 rows as pictures,
/// i32 rows as lines of text (character ids in the checkpoint's vocabulary).
Error runSample(Model &model, const SampleOptions &options,
                const Console &console);

struct ReconstructOptions {
  std::string checkpoint;
  /// FILE.png: each example's input beside the model's outputs of the same
  /// image size; FILE.npy: the first such output.
  std::string output;
  /// The predict inputs (default: the model's test data).
  std::vector<DataSource> inputs;
  int64_t count = 32;
  int64_t scale = 1;
};

/// Runs predict on the first `count` examples of the inputs and writes, for
/// each, its image inputs and image outputs side by side.
Error runReconstruct(Model &model, const ReconstructOptions &options,
                     const Console &console);

} // namespace kiln::rt

#endif // KILN_RUNTIME_SAMPLE_H
