//===- Generate.h - Text generation through a step entry -----------------===//

#ifndef KILN_RUNTIME_GENERATE_H
#define KILN_RUNTIME_GENERATE_H

#include "runtime/Console.h"
#include "runtime/Error.h"
#include "runtime/Init.h"
#include "runtime/Model.h"
#include "runtime/Text.h"

#include <cstdint>
#include <string>

namespace kiln::rt {

struct GenerateOptions {
  std::string checkpoint;
  std::string prompt;
  int64_t length = 300;
  double temperature = 1.0;
  int64_t topK = 0; ///< 0: every character
  bool greedy = false;
  uint64_t seed = 0;
};

/// The step entry that writes text and the buffers it drives: its one i32
/// input (a character id) and its first float output (the next character's
/// scores).
struct Stepper {
  const EntrySpec *entry = nullptr;
  Tensor *input = nullptr;
  Tensor *scores = nullptr;
};
/// The model's step entry, or an error saying how to add one.
Expected<Stepper> findStepper(Model &model);
/// Loads CHECKPOINT's parameters; returns its vocabulary, checked to fit the
/// step's scores.
Expected<Vocabulary> loadStepper(Model &model, const Stepper &stepper,
                                 const std::string &checkpoint);
/// The id drawn from `scores` (the first `n`): the largest with `greedy`,
/// else from softmax(scores / temperature) among the `topK` largest. Ties go
/// to the lower id.
int32_t drawCharacter(const float *scores, size_t n,
                      const GenerateOptions &options, Rng &rng);

/// Loads the checkpoint (its parameters and its kiln.vocab), zeroes the step
/// entry's carries, runs the step on each character of the prompt and then on
/// each character it samples from the step's scores (softmax at the given
/// temperature, among the top K, or the most likely with `greedy`), writing
/// the prompt and every new character to the console's output as it comes.
/// Deterministic for a seed.
Error runGenerate(Model &model, const GenerateOptions &options,
                  const Console &console);

} // namespace kiln::rt

#endif // KILN_RUNTIME_GENERATE_H
