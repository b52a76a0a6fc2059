//===- Generate.cpp - Text generation through a step entry ---------------===//

#include "runtime/Generate.h"

#include "runtime/Checkpoint.h"
#include "runtime/Init.h"
#include "runtime/Text.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace kiln::rt {

Expected<Stepper> findStepper(Model &model) {
  const Manifest &m = model.manifest();
  Stepper s;
  for (const EntrySpec &e : m.entries)
    if (e.kind == contract::EntryKind::Step && !s.entry)
      s.entry = &e;
  if (!s.entry)
    return makeError("model '{}' has no step entry: add a 'generate {} {{ "
                     "... }}' block to its .kiln file",
                     m.model, m.model);
  for (const EntryArg &arg : s.entry->args) {
    if (arg.role == contract::Role::Input) {
      Tensor *t = model.findInput(arg.name);
      if (s.input || t->type != DType::I32 || t->numElements() != 1)
        return makeError("step entry '{}' must take one i32 input holding "
                         "one character id",
                         s.entry->name);
      s.input = t;
    } else if (arg.role == contract::Role::Output && !s.scores) {
      Tensor *t = model.findOutput(arg.name);
      if (t->type == DType::F32)
        s.scores = t;
    }
  }
  if (!s.input || !s.scores)
    return makeError("step entry '{}' must take a character id and return "
                     "the next character's scores (f32)",
                     s.entry->name);
  return s;
}

Expected<Vocabulary> loadStepper(Model &model, const Stepper &stepper,
                                 const std::string &checkpoint) {
  Expected<CheckpointInfo> info = loadCheckpoint(
      checkpoint, model.manifest(), model.params, model.state, false);
  if (!info)
    return info.takeError();
  Expected<Vocabulary> vocab = checkpointVocabulary(checkpoint, *info);
  if (!vocab)
    return vocab.takeError();
  size_t classes = size_t(stepper.scores->numElements());
  if (vocab->size() > classes)
    return makeError("'{}' has a vocabulary of {} characters but the step "
                     "entry scores {}",
                     checkpoint, vocab->size(), classes);
  return vocab;
}

int32_t drawCharacter(const float *scores, size_t n,
                      const GenerateOptions &options, Rng &rng) {
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Ties go to the lower id, so that the choice does not depend on the sort.
  auto better = [&](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  if (options.greedy)
    return *std::min_element(order.begin(), order.end(), better);
  size_t k = options.topK > 0 ? std::min<size_t>(options.topK, n) : n;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
  double top = scores[order[0]];
  std::vector<double> weights(k);
  double total = 0;
  for (size_t i = 0; i < k; ++i)
    total += weights[i] =
        std::exp((double(scores[order[i]]) - top) / options.temperature);
  double u = rng.uniform() * total;
  for (size_t i = 0; i < k; ++i) {
    u -= weights[i];
    if (u < 0)
      return order[i];
  }
  return order[k - 1];
}

Error runGenerate(Model &model, const GenerateOptions &options,
                  const Console &console) {
  Expected<Stepper> stepper = findStepper(model);
  if (!stepper)
    return stepper.takeError();
  Expected<Vocabulary> vocab = loadStepper(model, *stepper, options.checkpoint);
  if (!vocab)
    return vocab.takeError();
  Expected<std::u32string> prompt = decodeUtf8(options.prompt, "the prompt");
  if (!prompt)
    return prompt.takeError();
  if (prompt->empty())
    return Error::usage("--prompt needs at least one character");
  Expected<std::vector<int32_t>> ids =
      encodeText(*prompt, *vocab, "the prompt");
  if (!ids)
    return ids.takeError();
  // Each character but the last generated one is a step at the next
  // position; a step past the block's context would read positions it
  // never learned.
  int64_t context = model.manifest().generateContext;
  int64_t positions = int64_t(ids->size()) + options.length - 1;
  if (context > 0 && positions > context)
    return Error::usage(fmt::format(
        "model '{}' generates within a context of {} characters: the prompt "
        "({} characters) and --length {} need {}; shorten them",
        model.manifest().model, context, ids->size(), options.length,
        positions));

  auto *input = static_cast<int32_t *>(stepper->input->data());
  const auto *scores = static_cast<const float *>(stepper->scores->data());
  const std::string &entry = stepper->entry->name;
  model.resetCarries();
  // A step that draws random numbers draws new ones at every call.
  uint64_t calls = 0;
  // The prompt, one character a step; its last step scores the first new one.
  for (int32_t id : *ids) {
    *input = id;
    model.setNoise(++calls, options.seed);
    model.run(entry);
  }
  std::fputs(options.prompt.c_str(), console.out);
  std::fflush(console.out);
  Rng rng(options.seed, "generate");
  for (int64_t i = 0; i < options.length; ++i) {
    int32_t id = drawCharacter(scores, vocab->size(), options, rng);
    std::string text = encodeUtf8(std::u32string(1, vocab->chars[id]));
    std::fputs(text.c_str(), console.out);
    std::fflush(console.out);
    // The last character needs no step: nothing reads its scores.
    if (i + 1 == options.length)
      break;
    *input = id;
    model.setNoise(++calls, options.seed);
    model.run(entry);
  }
  std::fputc('\n', console.out);
  return Error::success();
}

} // namespace kiln::rt
