//===- Train.h - The train, eval and predict commands -------------------===//
//
// Training: parameter initialization or resumption from a checkpoint, seeded
// shuffling, full batches through kiln_train_step, progress and per-epoch
// evaluation, metrics CSV and atomic checkpoints. Evaluation and prediction
// run kiln_eval_step and kiln_predict over a data set.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TRAIN_H
#define KILN_RUNTIME_TRAIN_H

#include "runtime/Console.h"
#include "runtime/Dataset.h"
#include "runtime/Error.h"
#include "runtime/Model.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::rt {

struct TrainOptions {
  std::optional<int64_t> epochs;
  std::optional<double> lr;
  std::optional<uint64_t> seed;
  std::optional<int64_t> steps;    ///< stop after this many steps (this run)
  std::optional<int64_t> logEvery; ///< progress every N steps
  std::vector<DataSource> data;    ///< --data overrides
  std::vector<DataSource> test;    ///< --test overrides
  std::string checkpoint, resume, metrics;
  /// Check every parameter and optimizer state after every step, naming the
  /// first tensor that becomes NaN or infinite (slower).
  bool checkNumerics = false;
};

struct EvalOptions {
  std::string checkpoint;
  std::vector<DataSource> test;
  bool json = false;
};

struct PredictOptions {
  std::string checkpoint;
  /// One per predict input; like --data, a file of the format the manifest
  /// names for the input gets the manifest's options (scale=...).
  std::vector<DataSource> inputs;
  /// Where the outputs go as .npy files; empty: printed on the console.
  std::string outputDir;
  /// Texts to run the model on instead (--text): printed with the outputs.
  std::vector<std::string> texts;
};

/// The result of evaluating a data set.
struct EvalResult {
  double loss = 0;
  /// One per manifest metric, in order.
  std::vector<double> metrics;
  /// The mean of each of the loss's named terms (Manifest::terms).
  std::vector<double> terms;
  int64_t examples = 0;
  int64_t batches = 0;
};

/// Chooses each input's source for SPLIT (`train` or `test`): a command-line
/// override (which keeps the manifest's options for the input when the format
/// is the same), else the manifest's data record. The test split falls back to
/// the train records' options. Returns no sources if nothing is configured for
/// a test split; an error if only some inputs are covered.
Expected<std::vector<DataSource>>
selectSources(const Manifest &manifest, const std::string &split,
              const std::vector<DataSource> &overrides);

/// A checkpoint whose parameters are NaN or infinite (training never writes
/// one) gives no meaningful result: an error naming the first such tensor.
Error checkFinite(const Model &model, const std::string &checkpoint);

/// Evaluates the model's current parameters on DATA (full batches).
EvalResult evaluate(Model &model, const Dataset &data);

Error runTrain(Model &model, const TrainOptions &options,
               const Console &console);
Error runEval(Model &model, const EvalOptions &options, const Console &console);
Error runPredict(Model &model, const PredictOptions &options,
                 const Console &console);
/// predict --text (runtime/PredictText.cpp).
Error runPredictText(Model &model, const PredictOptions &options,
                     const Console &console);
/// The outputs of ENTRY that predict prints on the console (a class label or
/// a row of scores per example); a note names each other one.
std::vector<const Tensor *> printedOutputs(Model &model, const EntrySpec &entry,
                                           const Console &console);
/// Prints rows [0, headers.size()) of OUTS (the current batch's): each
/// header, then each output by name: a label by its class name, the three
/// largest scores with their classes.
void printPredictions(const std::vector<const Tensor *> &outs,
                      const std::vector<std::string> &headers,
                      const ClassNames &classes, const Console &console);

} // namespace kiln::rt

#endif // KILN_RUNTIME_TRAIN_H
