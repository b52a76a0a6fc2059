//===- PredictText.cpp - predict's console output; predict --text -------===//
//
// Without --output, predict prints its outputs per example: a class label by
// its name, the largest entries of a row of scores (a softmax's
// probabilities) with their classes. `./model predict --checkpoint F --text
// "Datei nicht gefunden"` runs the predict entry of a model that reads one
// text input (an i32 [B, L] row of character ids, as `lines` and `pairs`
// write it) on the given texts.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checkpoint.h"
#include "runtime/Sample.h"
#include "runtime/Train.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace kiln::rt {

namespace {

/// How many of a row of scores are shown, the largest first.
constexpr size_t kShownScores = 3;

/// The text input of the predict entry: its only input, i32 [B, L >= 3].
Expected<Tensor *> textInput(Model &model, const EntrySpec &entry) {
  std::vector<std::string> names = entry.inputNames();
  Tensor *in = names.size() == 1 ? model.findInput(names[0]) : nullptr;
  if (!in || in->type != DType::I32 || in->shape.size() != 2 ||
      in->shape[1] < 3)
    return makeError("predict --text needs a model whose predict entry reads "
                     "one text input (i32 [batch, length] of character ids); "
                     "'{}' reads {}",
                     model.manifest().model,
                     names.empty() ? std::string("nothing")
                                   : fmt::format("{}", fmt::join(names, ", ")));
  return in;
}

/// What output `t` (one batch row, `row`) shows: a class label's name, or
/// the largest scores of a row with their classes (names when the row has
/// one score per class).
std::string describeRow(const Tensor &t, int64_t row,
                        const ClassNames &classes) {
  auto label = [&](int64_t c) {
    return c >= 0 && size_t(c) < classes.size() ? classes.name(size_t(c))
                                                : fmt::format("{}", c);
  };
  if (t.shape.size() == 1 && t.type == DType::I32)
    return label(static_cast<const int32_t *>(t.data())[row]);
  int64_t width = t.shape[1];
  std::vector<double> scores(static_cast<size_t>(width));
  for (int64_t c = 0; c < width; ++c)
    scores[size_t(c)] = t.at(row * width + c);
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  size_t shown = std::min(kShownScores, order.size());
  std::partial_sort(order.begin(), order.begin() + shown, order.end(),
                    [&](int64_t a, int64_t b) {
                      return scores[size_t(a)] > scores[size_t(b)];
                    });
  std::string out;
  for (size_t k = 0; k < shown; ++k)
    out += fmt::format("{}{} {:.3f}", k ? ", " : "",
                       size_t(width) == classes.size()
                           ? label(order[k])
                           : fmt::format("{}", order[k]),
                       scores[size_t(order[k])]);
  return out;
}

/// Whether predict prints output `t` on the console: a label per example, or
/// a row of float scores per example.
bool shown(const Tensor &t, int64_t batch) {
  if (t.shape.empty() || t.shape[0] != batch)
    return false;
  return (t.shape.size() == 1 && t.type == DType::I32) ||
         (t.shape.size() == 2 && t.type != DType::I32 && t.shape[1] > 0);
}

} // namespace

std::vector<const Tensor *> printedOutputs(Model &model, const EntrySpec &entry,
                                           const Console &console) {
  std::vector<const Tensor *> outs;
  for (const Tensor &t : model.outputs) {
    if (!entry.takes(contract::Role::Output, t.name))
      continue;
    if (shown(t, model.batchSize()))
      outs.push_back(&t);
    else
      console.note("output '{}' ({} {}) is not shown; predict --input ... "
                   "--output DIR writes it",
                   t.name, dtypeName(t.type), formatShape(t.shape));
  }
  return outs;
}

void printPredictions(const std::vector<const Tensor *> &outs,
                      const std::vector<std::string> &headers,
                      const ClassNames &classes, const Console &console) {
  for (size_t r = 0; r < headers.size(); ++r) {
    fmt::print(console.out, "{}\n", headers[r]);
    for (const Tensor *t : outs)
      fmt::print(console.out, "  {}: {}\n", t->name,
                 describeRow(*t, int64_t(r), classes));
  }
}

Error runPredictText(Model &model, const PredictOptions &options,
                     const Console &console) {
  const Manifest &m = model.manifest();
  if (Error e = model.requireEntry(contract::kPredictEntry))
    return e;
  const EntrySpec *entry = m.findEntry(contract::kPredictEntry);
  Expected<Tensor *> input = textInput(model, *entry);
  if (!input)
    return input.takeError();
  int64_t batch = model.batchSize(), length = (*input)->shape[1];
  std::vector<const Tensor *> outs = printedOutputs(model, *entry, console);
  Expected<TextParameters> loaded =
      loadTextParameters(model, options.checkpoint);
  if (!loaded)
    return loaded.takeError();
  const Vocabulary &vocab = loaded->vocab;
  Expected<ClassNames> classes =
      checkpointClasses(options.checkpoint, loaded->info);
  if (!classes)
    return classes.takeError();

  // Every text is encoded before the model runs: a bad one costs nothing.
  std::vector<std::vector<int32_t>> rows;
  for (size_t i = 0; i < options.texts.size(); ++i) {
    std::string what = fmt::format("--text {}", i + 1);
    Expected<std::u32string> text = decodeUtf8(options.texts[i], what);
    if (!text)
      return Error::usage(text.error().message());
    if (text->empty())
      return Error::usage(fmt::format("{} is empty", what));
    if (int64_t(text->size()) > length - 2) {
      console.note("{} has {} characters; the model reads the first {}", what,
                   text->size(), length - 2);
      text->resize(size_t(length - 2));
    }
    std::vector<int32_t> row(static_cast<size_t>(length));
    Expected<bool> fits = encodeLine(*text, vocab, what, row.data(), length);
    if (!fits)
      return Error::usage(fits.error().message());
    rows.push_back(std::move(row));
  }

  auto *in = static_cast<int32_t *>((*input)->data());
  for (size_t first = 0; first < rows.size(); first += size_t(batch)) {
    size_t count = std::min(rows.size() - first, size_t(batch));
    std::memset(in, 0, (*input)->numBytes());
    for (size_t r = 0; r < count; ++r)
      std::copy(rows[first + r].begin(), rows[first + r].end(),
                in + r * size_t(length));
    model.setNoise(first / size_t(batch) + 1, m.seed);
    model.predict();
    printPredictions(
        outs,
        std::vector<std::string>(options.texts.begin() + first,
                                 options.texts.begin() + first + count),
        *classes, console);
  }
  std::fflush(console.out);
  return Error::success();
}

} // namespace kiln::rt
