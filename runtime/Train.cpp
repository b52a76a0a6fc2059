//===- Train.cpp - The train, eval and predict commands -----------------===//

#include "runtime/Train.h"

#include "runtime/Checkpoint.h"
#include "runtime/Comm.h"
#include "runtime/Files.h"
#include "runtime/Init.h"
#include "runtime/Json.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <numeric>
#include <sys/stat.h>

namespace kiln::rt {

namespace {

using Clock = std::chrono::steady_clock;

/// The first line of a --metrics file; a row per epoch follows.
constexpr const char *kMetricsHeader =
    "epoch,step,train_loss,test_loss,test_accuracy,seconds\n";

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// `12.3s`, `4m05s`, `1h02m03s`.
std::string formatDuration(double seconds) {
  if (seconds < 60)
    return fmt::format("{:.1f}s", seconds);
  auto s = int64_t(seconds + 0.5);
  if (s < 3600)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60);
}

/// `0:42`, `1:02:03`.
std::string formatEta(double seconds) {
  auto s = int64_t(seconds + 0.5);
  if (s < 3600)
    return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

std::string formatLoss(double loss) { return fmt::format("{:.4f}", loss); }

std::string inputNames(const Manifest &m) {
  std::string names;
  for (const TensorSpec &t : m.inputs)
    names += (names.empty() ? "" : ", ") + t.name;
  return names;
}

/// The dataset's input buffers in the model, in the dataset's order.
std::vector<void *> inputBuffers(Model &model, const Dataset &data) {
  std::vector<void *> dest;
  for (const InputData &d : data.inputs)
    dest.push_back(model.findInput(d.spec->name)->data());
  return dest;
}

/// Whether entry `name` carries state from batch to batch: a model with
/// stateful scans, whose rows each read a stream of consecutive examples.
bool isStateful(const Manifest &m, const char *name) {
  const EntrySpec *entry = m.findEntry(name);
  return entry && entry->takes(contract::Role::Carry);
}

/// The order in which a stateful model reads `steps` batches of `batch`
/// examples: row r of batch s is example r * steps + s, so each row continues
/// where it was in the previous batch (PyTorch's batchify for language
/// models).
void streamOrder(std::vector<int64_t> &order, int64_t steps, int64_t batch) {
  for (int64_t s = 0; s < steps; ++s)
    for (int64_t r = 0; r < batch; ++r)
      order[size_t(s * batch + r)] = r * steps + s;
}

std::string describeNonFinite(double loss) {
  return std::isnan(loss) ? "NaN" : "Inf";
}

} // namespace

Error checkFinite(const Model &model, const std::string &checkpoint) {
  std::string bad = model.firstNonFinite();
  if (bad.empty())
    return Error::success();
  return makeError("'{}': tensor '{}' holds NaN or infinite values", checkpoint,
                   bad);
}

Expected<std::vector<DataSource>>
selectSources(const Manifest &manifest, const std::string &split,
              const std::vector<DataSource> &overrides) {
  const char *flag = split == "train" ? "--data" : "--test";
  for (size_t i = 0; i < overrides.size(); ++i) {
    if (!manifest.findInput(overrides[i].input))
      return Error::usage(fmt::format("{}: the model has no input '{}' "
                                      "(inputs: {})",
                                      flag, overrides[i].input,
                                      inputNames(manifest)));
    for (size_t j = 0; j < i; ++j)
      if (overrides[j].input == overrides[i].input)
        return Error::usage(fmt::format("{} is given twice for input '{}'",
                                        flag, overrides[i].input));
  }
  std::vector<DataSource> sources;
  std::vector<std::string> missing;
  // Data feeds the inputs of the entry that reads it (train_step or
  // eval_step), not those of other entries (a generate step's character).
  const EntrySpec *entry = manifest.findEntry(
      split == "train" ? contract::kTrainStepEntry : contract::kEvalStepEntry);
  for (const TensorSpec &input : manifest.inputs) {
    if (entry && !entry->takes(contract::Role::Input, input.name))
      continue;
    const DataSource *override = nullptr;
    for (const DataSource &o : overrides)
      if (o.input == input.name)
        override = &o;
    const DataSpec *spec = manifest.findData(split, input.name);
    if (override) {
      DataSource s = *override;
      const DataSpec *optionsFrom =
          spec ? spec
               : (split == "test" ? manifest.findData("train", input.name)
                                  : nullptr);
      if (optionsFrom)
        adoptSpec(s, *optionsFrom);
      sources.push_back(std::move(s));
    } else if (spec) {
      sources.push_back(sourceFromSpec(*spec));
    } else {
      missing.push_back(input.name);
    }
  }
  if (missing.empty())
    return sources;
  if (split == "train")
    return Error::usage(fmt::format(
        "no training data for input '{}': the model names none; pass --data "
        "{}=FILE",
        missing[0], missing[0]));
  if (sources.empty())
    return std::vector<DataSource>();
  return Error::usage(
      fmt::format("test data is given for input '{}' but not for '{}'; pass "
                  "--test {}=FILE",
                  sources[0].input, missing[0], missing[0]));
}

EvalResult evaluate(Model &model, const Dataset &data) {
  EvalResult r;
  int64_t batch = model.batchSize();
  r.examples = data.examples;
  std::vector<void *> dest = inputBuffers(model, data);
  std::vector<int64_t> indices(size_t(batch), 0);
  const Manifest &m = model.manifest();
  // Per metric: the sum of what it averages (correct elements, examples'
  // PSNRs) and how many.
  std::vector<double> sum(m.metrics.size(), 0);
  std::vector<int64_t> total(m.metrics.size(), 0);
  double lossSum = 0;
  // The loss's named terms, summed like it.
  std::vector<double> termSums(model.terms.size(), 0);
  auto readTerms = [&] {
    std::vector<double> t;
    for (size_t i = 0; i < model.terms.size(); ++i)
      t.push_back(model.term(i));
    return t;
  };
  // Each metric's ignored label (a cross_entropy's ignore_index), if any.
  std::vector<std::optional<int32_t>> ignored(m.metrics.size());
  for (size_t k = 0; k < m.metrics.size(); ++k)
    for (const LabelSpec &l : m.labels)
      if (l.input == m.metrics[k].input)
        ignored[k] = l.ignore;
  // Scores the batch of `indices` whose first `count` rows are examples.
  // A model that draws random numbers (a VAE's noise) draws the same ones
  // in every evaluation: batch b (0-based) is keyed by step b + 1 and the
  // model's seed.
  auto score = [&](int64_t count, int64_t b) {
    data.gather(indices.data(), batch, dest);
    model.setNoise(uint64_t(b) + 1, m.seed);
    double loss = model.evalStep();
    for (size_t k = 0; k < m.metrics.size(); ++k) {
      const Tensor *out = model.findOutput(m.metrics[k].output);
      const Tensor *in = model.findInput(m.metrics[k].input);
      // Metrics compare whole rows of the batch; padding rows are not scored,
      // nor labels that the loss ignores.
      int64_t rowSize = out->numElements() / batch;
      if (m.metrics[k].kind == contract::MetricKind::Psnr) {
        for (int64_t example = 0; example < count; ++example) {
          double squared = 0;
          for (int64_t i = example * rowSize; i < (example + 1) * rowSize; ++i)
            squared += (out->at(i) - in->at(i)) * (out->at(i) - in->at(i));
          double mse = squared / double(rowSize);
          sum[k] += mse > 0
                        ? std::min(contract::kMaxPsnr, 10 * std::log10(1 / mse))
                        : contract::kMaxPsnr;
          ++total[k];
        }
        continue;
      }
      const std::optional<int32_t> &ignore = ignored[k];
      for (int64_t i = 0; i < rowSize * count; ++i) {
        if (ignore && in->at(i) == double(*ignore))
          continue;
        sum[k] += out->at(i) == in->at(i);
        ++total[k];
      }
    }
    return loss;
  };
  // The processes of a data-parallel job share the work: process p scores
  // batches p, p + N, ...; the sums are added up at the end.
  Communicator &comm = communicator();
  // A stateful model reads the examples as `batch` streams from zero states
  // (process 0 alone: each batch continues the last); those left over after
  // whole streams are scored below from zero states.
  bool stateful = isStateful(m, contract::kEvalStepEntry);
  int64_t streamSteps = stateful ? data.examples / batch : 0;
  model.resetCarries();
  if (streamSteps && comm.rank() == 0) {
    std::vector<int64_t> order(size_t(streamSteps * batch));
    streamOrder(order, streamSteps, batch);
    for (int64_t s = 0; s < streamSteps; ++s) {
      std::copy_n(order.begin() + s * batch, batch, indices.begin());
      lossSum += score(batch, s) * double(batch);
      std::vector<double> terms = readTerms();
      for (size_t i = 0; i < terms.size(); ++i)
        termSums[i] += terms[i] * double(batch);
    }
  }
  r.batches = streamSteps;
  for (int64_t first = streamSteps * batch; first < data.examples;
       first += batch, ++r.batches) {
    if ((r.batches - streamSteps) % comm.size() != comm.rank())
      continue;
    int64_t count = std::min(batch, data.examples - first);
    // The last batch is padded with copies of its first example. Its loss is
    // then (S + (B - k) l0) / B + c for the k real examples' per-example
    // losses summing to S, the padding's l0 and any term c that does not
    // depend on the examples; a batch of B copies gives l0 + c. So
    // (B L_padded - (B - k) L_copies) / k = S / k + c: the mean loss of the
    // real examples, exactly, for every loss that averages (or sums)
    // per-example terms, as evaluation mode makes all of them (and every row
    // starts from the same zero state).
    std::iota(indices.begin(), indices.begin() + count, first);
    std::fill(indices.begin() + count, indices.end(), first);
    model.resetCarries();
    double loss = score(count, r.batches);
    std::vector<double> terms = readTerms();
    if (count < batch) {
      std::fill(indices.begin(), indices.end(), first);
      model.resetCarries();
      data.gather(indices.data(), batch, dest);
      // The same numbers as the padded batch: for a model that draws random
      // numbers the correction is exact in expectation only.
      model.setNoise(uint64_t(r.batches) + 1, m.seed);
      double copies = model.evalStep();
      auto correct = [&](double padded, double ofCopies) {
        return (double(batch) * padded - double(batch - count) * ofCopies) /
               double(count);
      };
      loss = correct(loss, copies);
      std::vector<double> termCopies = readTerms();
      for (size_t i = 0; i < terms.size(); ++i)
        terms[i] = correct(terms[i], termCopies[i]);
    }
    lossSum += loss * double(count);
    for (size_t i = 0; i < terms.size(); ++i)
      termSums[i] += terms[i] * double(count);
  }
  if (comm.size() > 1) {
    std::vector<double> sums{lossSum};
    sums.insert(sums.end(), termSums.begin(), termSums.end());
    sums.insert(sums.end(), sum.begin(), sum.end());
    sums.insert(sums.end(), total.begin(), total.end());
    comm.sum(sums.data(), int64_t(sums.size()));
    auto next = sums.begin();
    lossSum = *next++;
    for (double &t : termSums)
      t = *next++;
    for (double &k : sum)
      k = *next++;
    for (int64_t &k : total)
      k = int64_t(*next++);
  }
  r.loss = r.examples ? lossSum / double(r.examples) : NAN;
  for (double t : termSums)
    r.terms.push_back(r.examples ? t / double(r.examples) : NAN);
  for (size_t k = 0; k < m.metrics.size(); ++k)
    r.metrics.push_back(total[k] ? sum[k] / double(total[k]) : NAN);
  return r;
}

namespace {

/// Notes that the last training examples of an epoch do not fill a batch
/// (they are not skipped for good: each epoch shuffles anew), or for a
/// stateful model, how long its streams are (its leftover examples are never
/// trained on). Evaluation scores every example.
void notePartialBatch(const Console &console, int64_t examples, int64_t batch,
                      bool stateful) {
  if (stateful)
    console.note("stateful model: each row of the batch reads a stream of {} "
                 "consecutive examples{}",
                 examples / batch,
                 examples % batch ? fmt::format("; the last {} of {} examples "
                                                "are left out",
                                                examples % batch, examples)
                                  : std::string());
  else if (examples % batch)
    console.note("train data: {} examples; each epoch's last {} do not fill a "
                 "batch of {} and are left out of it",
                 examples, examples % batch, batch);
}

/// A language model's loss (the mean cross-entropy of its next-character
/// predictions, in nats) in bits per character, the number its field reports.
double bitsPerChar(double loss) { return loss / std::log(2.0); }

/// `  test 1.62 bits/char` for a model trained on text, else nothing.
std::string describeBits(const Manifest &m, const Dataset &data,
                         const EvalResult &r, const char *prefix) {
  if (!data.predictsCharacters(m))
    return {};
  return fmt::format("  {}{:.3f} bits/char", prefix, bitsPerChar(r.loss));
}

/// Character ids mean what the checkpoint's vocabulary says, class ids what
/// its class names say: data whose vocabulary or classes differ would be read
/// as other characters or classes.
Error checkEncoding(const std::string &checkpoint, const CheckpointInfo &info,
                    const Dataset &data) {
  if (!info.vocab.empty() && !data.vocab.chars.empty()) {
    Expected<Vocabulary> saved = Vocabulary::fromUtf8(info.vocab);
    if (!saved)
      return makeError("'{}': {}", checkpoint, saved.error().message());
    if (saved->chars != data.vocab.chars)
      return makeError("'{}' was trained on a text of another vocabulary ({} "
                       "characters; this text's training part has {}): its "
                       "character ids would mean other characters",
                       checkpoint, saved->size(), data.vocab.size());
  }
  if (!info.classes.empty() && !data.classes.empty()) {
    Expected<ClassNames> saved = checkpointClasses(checkpoint, info);
    if (!saved)
      return saved.takeError();
    if (saved->names != data.classes.names)
      return makeError("'{}' was trained on other classes ({}; the training "
                       "data's are {}): its class ids would mean other "
                       "classes",
                       checkpoint, saved->list(), data.classes.list());
  }
  return Error::success();
}

/// `  test accuracy 98.10%`, `  test psnr(repaired) 21.43 dB`: each metric
/// (the first accuracy unnamed, the others after their output).
std::string describeMetrics(const Manifest &m, const EvalResult &r,
                            const char *prefix) {
  std::string s;
  for (size_t k = 0; k < r.metrics.size(); ++k) {
    const MetricSpec &metric = m.metrics[k];
    if (metric.kind == contract::MetricKind::Psnr)
      s += fmt::format("  {}psnr({}) {:.2f} dB", prefix, metric.output,
                       r.metrics[k]);
    else
      s += fmt::format("  {}{}accuracy {:.2f}%", prefix,
                       k ? metric.output + " " : std::string(),
                       100 * r.metrics[k]);
  }
  return s;
}

/// ` (reconstruction 80.12, kl 25.07)`: the loss's named terms (`sums`
/// over `count` steps or examples), or nothing for a model without them.
std::string describeTerms(const Manifest &m, const std::vector<double> &sums,
                          double count) {
  if (sums.empty())
    return {};
  std::vector<std::string> parts;
  for (size_t i = 0; i < sums.size(); ++i)
    parts.push_back(
        fmt::format("{} {}", m.terms[i].name, formatLoss(sums[i] / count)));
  return fmt::format(" ({})", fmt::join(parts, ", "));
}

/// The accuracy the metrics file and the summary report: the first metric's,
/// if it is an accuracy.
std::optional<double> mainAccuracy(const Manifest &m, const EvalResult &r) {
  if (r.metrics.empty() || m.metrics[0].kind != contract::MetricKind::Accuracy)
    return std::nullopt;
  return r.metrics[0];
}

/// The signal (SIGINT, SIGTERM, SIGUSR1) that asked training to stop, or 0.
volatile std::sig_atomic_t gStopSignal = 0;

void onStopSignal(int signo) { gStopSignal = signo; }

/// While alive, SIGINT, SIGTERM and SIGUSR1 ask the training loop to stop
/// after the current step (a second one, back at the default action, ends the
/// process at once). mpirun passes SIGUSR1 on to its processes, and on Ctrl-C
/// sends them SIGTERM.
class StopSignals {
public:
  StopSignals() {
    gStopSignal = 0;
    struct sigaction action {};
    action.sa_handler = onStopSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    ::sigaction(SIGINT, &action, &oldInt_);
    ::sigaction(SIGTERM, &action, &oldTerm_);
    ::sigaction(SIGUSR1, &action, &oldUsr1_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &oldInt_, nullptr);
    ::sigaction(SIGTERM, &oldTerm_, nullptr);
    ::sigaction(SIGUSR1, &oldUsr1_, nullptr);
  }

private:
  struct sigaction oldInt_ {
  }, oldTerm_{}, oldUsr1_{};
};

class Trainer {
public:
  Trainer(Model &model, const TrainOptions &options, const Console &console)
      : model(model), m(model.manifest()), options(options), console(console) {}
  Error run();

private:
  Error prepare();
  Error endEpoch(int64_t epoch, int64_t stepsDone, double lossSum,
                 int64_t lossCount, Clock::time_point epochStart);
  /// The metrics file and the checkpoint at the end of EPOCH (process 0).
  Error writeEpochFiles(int64_t epoch);
  /// After stop signal SIGNO: the checkpoint (if asked for) at the current
  /// step, and the error (exit code 128 + the signal) that says where it
  /// stopped.
  Error interrupted(int signo, int64_t epoch, int64_t stepInEpoch);
  void progress(int64_t epoch, int64_t stepInEpoch, double lossSum,
                int64_t lossCount, Clock::time_point epochStart);
  /// The learning rate of 1-based step `s`: the schedule's, else `lr`.
  double lrAt(int64_t s) const {
    return m.schedule ? contract::scheduledLr(*m.schedule, lr, s, totalSteps,
                                              stepsPerEpoch)
                      : lr;
  }
  /// Keeps the rows of an existing metrics file up to the resumed step.
  void keepEarlierMetrics();
  /// ", cosine schedule to 0 at step 2552 after 100 warm-up steps", or "".
  std::string describeSchedule() const;

  /// Checks that every process of a data-parallel job holds the same
  /// parameters and optimizer state (a hash of their bytes) after EPOCH.
  Error checkInStep(int64_t epoch);
  /// `64`, or `64 (2 processes x 32)`.
  std::string describeBatch() const;
  /// The training loop, after prepare().
  Error loop();

  Model &model;
  const Manifest &m;
  const TrainOptions &options;
  const Console &console;
  /// The processes of a data-parallel job (runtime/Comm.h): each trains on
  /// its own `batch` of every global batch of `globalBatch` = processes x
  /// batch examples; process 0 prints and writes files.
  Communicator &comm = communicator();

  int64_t epochs = 0, batch = 0, globalBatch = 0, stepsPerEpoch = 0,
          totalSteps = 0;
  int64_t startStep = 0, step = 0, stepsRun = 0, logEvery = 1;
  int64_t lastStep = 0; // where this run stops
  /// This epoch's sums of the loss's named terms, one per train step.
  std::vector<double> termSums;
  uint64_t seed = 0;
  double lr = 0;
  /// Whether the model carries state from batch to batch (stateful scans).
  bool stateful = false;
  Dataset train, test;
  bool hasTest = false;
  bool tty = false, progressShown = false;
  Clock::time_point runStart;
  std::vector<std::string> metricsRows;
  std::optional<EvalResult> lastTest;
  double lastTrainLoss = NAN;
  /// The wall time of this run's train steps.
  double stepSeconds = 0;
};

Error Trainer::prepare() {
  epochs = options.epochs.value_or(m.epochs);
  seed = options.seed.value_or(m.seed);
  batch = m.batch;
  globalBatch = batch * comm.size();
  if (comm.size() > 1 && !m.dataParallel)
    return Error::usage(fmt::format(
        "started as one of {} processes, but this model's train step does "
        "not average its gradients over them (compile it with `kilnc --mpi`)",
        comm.size()));
  lr = options.lr.value_or(m.learningRate());
  // Process 0 writes the checkpoint and the metrics.
  if (!options.checkpoint.empty() && comm.rank() == 0) {
    if (Error e = checkWritableLocation(options.checkpoint, "checkpoint"))
      return e;
    removeStaleTemps(options.checkpoint);
  }
  if (!options.metrics.empty() && comm.rank() == 0)
    if (Error e = checkWritableLocation(options.metrics, "metrics file"))
      return e;

  Expected<std::vector<DataSource>> trainSources =
      selectSources(m, "train", options.data);
  if (!trainSources)
    return trainSources.takeError();
  Expected<std::vector<DataSource>> testSources =
      selectSources(m, "test", options.test);
  if (!testSources)
    return testSources.takeError();
  Expected<Dataset> trainData = loadDataset(m, *trainSources, "train");
  if (!trainData)
    return trainData.takeError();
  train = std::move(*trainData);
  for (const std::string &note : train.notes)
    console.note("{}", note);
  if (train.examples < globalBatch)
    return makeError("the training data has {} examples, fewer than one "
                     "batch of {} (the batch size is fixed when the model is "
                     "compiled)",
                     train.examples, describeBatch());
  stepsPerEpoch = train.examples / globalBatch;
  stateful = isStateful(m, contract::kTrainStepEntry);
  if (!checkedMul(epochs, stepsPerEpoch, totalSteps))
    return Error::usage(fmt::format("{} epochs of {} steps are too many",
                                    epochs, stepsPerEpoch));
  logEvery =
      options.logEvery.value_or(std::max<int64_t>(1, stepsPerEpoch / 10));

  if (!options.resume.empty()) {
    Expected<CheckpointInfo> info =
        loadCheckpoint(options.resume, m, model.params, model.state, true);
    if (!info)
      return info.takeError();
    if (!info->model.empty() && info->model != m.model)
      console.warning("'{}' was written by model '{}'; this is model '{}' "
                      "(the tensors match)",
                      options.resume, info->model, m.model);
    if (Error e = checkEncoding(options.resume, *info, train))
      return e;
    if (Error e = checkFinite(model, options.resume))
      return e;
    startStep = int64_t(info->step);
    // A checkpoint of a job with another number of processes counts steps
    // of another global batch: resume at the same point of the same epoch.
    if (info->batch && int64_t(info->batch) != globalBatch) {
      int64_t theirSteps = train.examples / int64_t(info->batch);
      if (theirSteps > 0) {
        int64_t epoch = startStep / theirSteps;
        int64_t within = startStep % theirSteps;
        int64_t ours =
            epoch * stepsPerEpoch + within * int64_t(info->batch) / globalBatch;
        console.note("'{}' counts steps of a global batch of {}, this run "
                     "of {}: its step {} (epoch {}) is step {} here",
                     options.resume, info->batch, globalBatch, startStep,
                     epoch + (within ? 1 : 0), ours);
        startStep = ours;
      }
    }
  } else {
    model.initialize(seed);
  }
  if (!testSources->empty()) {
    // The test data is encoded in the training data's vocabulary and
    // classes (checked against a resumed checkpoint's above): a model's
    // character and class ids mean what they meant in training.
    Expected<Dataset> testData =
        loadDataset(m, *testSources, "test",
                    train.vocab.chars.empty() ? nullptr : &train.vocab,
                    train.classes.empty() ? nullptr : &train.classes);
    if (!testData)
      return testData.takeError();
    test = std::move(*testData);
    for (const std::string &note : test.notes)
      console.note("{}", note);
    hasTest = true;
    if (test.examples == 0)
      return makeError("the test data holds no examples");
    if (Error e = model.requireEntry(contract::kEvalStepEntry))
      return e;
  }
  step = startStep;
  lastStep = totalSteps;
  if (options.steps && *options.steps < totalSteps - startStep)
    lastStep = startStep + *options.steps;
  if (startStep > 0 && !options.metrics.empty())
    keepEarlierMetrics();
  return Error::success();
}

void Trainer::keepEarlierMetrics() {
  // A resumed run continues the metrics file: the rows of the epochs the
  // checkpoint already holds stay (those of a run that went further are
  // dropped with the steps it took).
  struct stat st;
  if (::stat(options.metrics.c_str(), &st) != 0)
    return;
  Expected<std::string> text = readFile(options.metrics);
  if (!text || text->compare(0, std::strlen(kMetricsHeader), kMetricsHeader)) {
    console.warning("'{}' is not a metrics file of this executable; it is "
                    "replaced",
                    options.metrics);
    return;
  }
  std::string_view rest =
      std::string_view(*text).substr(std::strlen(kMetricsHeader));
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view row = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    size_t comma = row.find(',');
    std::optional<int64_t> rowStep =
        comma == std::string_view::npos
            ? std::nullopt
            : parseInt(
                  row.substr(comma + 1, row.find(',', comma + 1) - comma - 1));
    if (rowStep && *rowStep <= startStep)
      metricsRows.push_back(std::string(row) + "\n");
  }
}

std::string Trainer::describeSchedule() const {
  if (!m.schedule)
    return "";
  const contract::Schedule &s = *m.schedule;
  std::string text = fmt::format(", {} schedule", contract::info(s.kind).name);
  switch (s.kind) {
  case contract::ScheduleKind::Cosine:
  case contract::ScheduleKind::Linear:
    text += fmt::format(" to {:g} at step {}", s.minLr, totalSteps);
    break;
  case contract::ScheduleKind::Step:
    text += fmt::format(" (x{:g} every {:g} epoch(s))", s.gamma, s.every);
    break;
  case contract::ScheduleKind::Constant:
    break;
  }
  if (s.warmup > 0)
    text += fmt::format(" after {:g} warm-up steps", s.warmup);
  return text;
}

std::string Trainer::describeBatch() const {
  if (comm.size() == 1)
    return fmt::format("{}", batch);
  return fmt::format("{} ({} processes x {})", globalBatch, comm.size(), batch);
}

Error Trainer::checkInStep(int64_t epoch) {
  if (comm.size() == 1)
    return Error::success();
  // FNV-1a over every byte; 63 bits so that its negation fits an int64.
  uint64_t hash = 0xcbf29ce484222325ull;
  auto add = [&](const std::vector<Tensor> &tensors) {
    for (const Tensor &t : tensors) {
      auto *bytes = static_cast<const unsigned char *>(t.data());
      for (size_t i = 0; i < t.numBytes(); ++i)
        hash = (hash ^ bytes[i]) * 0x100000001b3ull;
    }
  };
  add(model.params);
  add(model.state);
  int64_t mine = int64_t(hash >> 1);
  int64_t extremes[2] = {mine, -mine};
  comm.max(extremes, 2);
  if (extremes[0] == -extremes[1])
    return Error::success();
  return makeError("after epoch {} the {} processes hold different parameters: "
                   "the data-parallel job is out of step (a bug; please "
                   "report it)",
                   epoch + 1, comm.size());
}

void Trainer::progress(int64_t epoch, int64_t stepInEpoch, double lossSum,
                       int64_t lossCount, Clock::time_point epochStart) {
  double elapsed = secondsSince(epochStart);
  double runElapsed = secondsSince(runStart);
  double perSecond =
      elapsed > 0 ? double(lossCount * globalBatch) / elapsed : 0;
  double eta =
      stepsRun ? runElapsed / double(stepsRun) * double(lastStep - step) : 0;
  std::string line = fmt::format(
      "epoch {}/{}  step {}/{}  loss {}{}  {:.0f} samples/s  ETA {}", epoch + 1,
      epochs, stepInEpoch, stepsPerEpoch,
      formatLoss(lossSum / double(lossCount)),
      describeTerms(m, termSums, double(lossCount)), perSecond, formatEta(eta));
  if (m.schedule)
    line += fmt::format("  lr {:.3g}", lrAt(step));
  if (tty) {
    console.print("\r\x1b[2K{}", line);
    std::fflush(console.out);
    progressShown = true;
  } else {
    // A line at a time into a log file or pipe, so that `tail -f` shows it.
    console.print("{}\n", line);
    std::fflush(console.out);
  }
}

Error Trainer::interrupted(int signo, int64_t epoch, int64_t stepInEpoch) {
  const char *name = signo == SIGINT    ? "SIGINT"
                     : signo == SIGTERM ? "SIGTERM"
                                        : "SIGUSR1";
  if (progressShown) {
    console.print("\n");
    progressShown = false;
  }
  std::string saved;
  if (!options.checkpoint.empty()) {
    std::string bad = model.firstNonFinite();
    if (!bad.empty())
      return Error::failure(
          fmt::format("stopped by {} at epoch {} step {}; parameters are NaN "
                      "or infinite (tensor '{}'), so no checkpoint was written",
                      name, epoch + 1, step, bad),
          128 + signo);
    if (Error e =
            agree(comm.rank() == 0
                      ? writeCheckpoint(
                            options.checkpoint, m, model.params, model.state,
                            uint64_t(step), train.vocab.utf8(),
                            train.classes.utf8(), uint64_t(globalBatch))
                      : Error::success()))
      return e;
    saved = fmt::format("; checkpoint '{}' holds step {} (continue with "
                        "--resume {})",
                        options.checkpoint, step, options.checkpoint);
  }
  return Error::failure(fmt::format("stopped by {} at epoch {} step {}/{}{}",
                                    name, epoch + 1, stepInEpoch, stepsPerEpoch,
                                    saved),
                        128 + signo);
}

Error Trainer::endEpoch(int64_t epoch, int64_t stepsDone, double lossSum,
                        int64_t lossCount, Clock::time_point epochStart) {
  if (progressShown) {
    console.print("\r\x1b[2K");
    progressShown = false;
  }
  // Parameters can turn non-finite in the last update of an epoch, after a
  // finite loss; never checkpoint them.
  std::string bad = model.firstNonFinite();
  if (!bad.empty())
    return makeError("parameters became NaN or infinite at epoch {} step {} "
                     "(tensor '{}'); no checkpoint written (try a smaller "
                     "--lr)",
                     epoch + 1, step, bad);
  lastTrainLoss = lossCount ? lossSum / double(lossCount) : NAN;
  std::string line = fmt::format("epoch {}/{}", epoch + 1, epochs);
  if (stepsDone < stepsPerEpoch)
    line += fmt::format(" (stopped at step {}/{})", stepsDone, stepsPerEpoch);
  line += fmt::format("  train loss {}{}", formatLoss(lastTrainLoss),
                      describeTerms(m, termSums, double(lossCount)));
  if (hasTest) {
    lastTest = evaluate(model, test);
    line += fmt::format("  test loss {}{}", formatLoss(lastTest->loss),
                        describeTerms(m, lastTest->terms, 1));
    line += describeBits(m, test, *lastTest, "test ");
    line += describeMetrics(m, *lastTest, "test ");
  }
  line += fmt::format("  {}", formatDuration(secondsSince(epochStart)));
  console.print("{}\n", line);
  std::fflush(console.out);

  if (Error e = checkInStep(epoch))
    return e;
  return agree(comm.rank() == 0 ? writeEpochFiles(epoch) : Error::success());
}

Error Trainer::writeEpochFiles(int64_t epoch) {
  if (!options.metrics.empty()) {
    std::string row = fmt::format("{},{},{},", epoch + 1, step,
                                  fmt::format("{:.6g}", lastTrainLoss));
    if (hasTest)
      row +=
          fmt::format("{:.6g},{}", lastTest->loss,
                      mainAccuracy(m, *lastTest)
                          ? fmt::format("{:.6g}", *mainAccuracy(m, *lastTest))
                          : std::string());
    else
      row += ",";
    row += fmt::format(",{:.3f}\n", secondsSince(runStart));
    metricsRows.push_back(row);
    std::string text = kMetricsHeader;
    for (const std::string &r : metricsRows)
      text += r;
    if (Error e = writeFileAtomic(options.metrics, text))
      return e;
  }
  if (!options.checkpoint.empty())
    if (Error e = writeCheckpoint(
            options.checkpoint, m, model.params, model.state, uint64_t(step),
            train.vocab.utf8(), train.classes.utf8(), uint64_t(globalBatch)))
      return e;
  return Error::success();
}

Error Trainer::run() {
  // Every process must be ready before any starts to train (or all stop).
  if (Error e = agree(prepare()))
    return e;
  // The loop's errors are the same in every process (the loss and the
  // parameters are; process 0's writes are agreed on): process 0 reports.
  Error e = loop();
  if (e && comm.rank() != 0)
    return Error::silent(e.exitCode());
  return e;
}

Error Trainer::loop() {
  // An MPI launcher gives its processes a terminal even when its own output
  // goes to a log: a data-parallel job prints a line at a time.
  tty = console.outIsTerminal() && comm.size() == 1;
  if (startStep >= totalSteps) {
    console.print("nothing to train: '{}' is at step {}, and {} epoch(s) of "
                  "{} steps end at step {} (raise --epochs to train on)\n",
                  options.resume, startStep, epochs, stepsPerEpoch, totalSteps);
    return Error::success();
  }
  console.print("training {} ({} parameters) on {} examples: {} epoch(s) of "
                "{} steps, batch {}, lr {}{}, seed {}{}\n",
                m.model, groupDigits(m.numParamElements()), train.examples,
                epochs, stepsPerEpoch, describeBatch(), lr, describeSchedule(),
                seed,
                startStep ? fmt::format(", resuming at step {}", startStep)
                          : std::string());
  notePartialBatch(console, train.examples, globalBatch, stateful);

  runStart = Clock::now();
  StopSignals stopSignals;
  std::vector<void *> dest = inputBuffers(model, train);
  std::vector<int64_t> order(size_t(train.examples));
  for (int64_t epoch = startStep / stepsPerEpoch; epoch < epochs; ++epoch) {
    if (step >= lastStep)
      break;
    Clock::time_point epochStart = Clock::now();
    if (stateful) {
      // Streams from zero states (a run resumed mid-epoch, too).
      streamOrder(order, stepsPerEpoch, globalBatch);
      model.resetCarries();
    } else {
      std::iota(order.begin(), order.end(), 0);
      Rng rng(seed, fmt::format("epoch:{}", epoch));
      shuffle(order, rng);
    }
    int64_t s = step - epoch * stepsPerEpoch;
    double lossSum = 0;
    int64_t lossCount = 0;
    termSums.assign(model.terms.size(), 0);
    for (; s < stepsPerEpoch && step < lastStep; ++s) {
      // This process's part of the global batch.
      train.gather(order.data() + s * globalBatch + comm.rank() * batch, batch,
                   dest);
      ++step;
      ++stepsRun;
      Clock::time_point stepStart = Clock::now();
      double loss = model.trainStep(lrAt(step), uint64_t(step), seed,
                                    uint64_t(comm.rank()));
      stepSeconds += secondsSince(stepStart);
      if (options.checkNumerics) {
        std::string bad = model.firstNonFinite();
        if (!bad.empty()) {
          if (progressShown)
            console.print("\n");
          return makeError("step {} (epoch {}) made tensor '{}' NaN or "
                           "infinite (the step's loss: {}); no checkpoint "
                           "written for this epoch (try a smaller --lr)",
                           step, epoch + 1, bad, formatLoss(loss));
        }
      }
      if (!std::isfinite(loss)) {
        if (progressShown)
          console.print("\n");
        return makeError("loss became {} at epoch {} step {} (try a smaller "
                         "--lr; no checkpoint written for this epoch)",
                         describeNonFinite(loss), epoch + 1, step);
      }
      lossSum += loss;
      ++lossCount;
      for (size_t i = 0; i < termSums.size(); ++i)
        termSums[i] += model.term(i);
      if ((s + 1) % logEvery == 0 && s + 1 < stepsPerEpoch)
        progress(epoch, s + 1, lossSum, lossCount, epochStart);
      // A signal to any process stops all after the same step (one may get
      // it a step before the others, or alone): every process decides on
      // the value they agree on, never on its own flag, which a signal may
      // set after the all-reduce (it is sent at the next step).
      int64_t signo = gStopSignal;
      if (comm.size() > 1)
        comm.max(&signo, 1);
      if (signo)
        return interrupted(int(signo), epoch, s + 1);
    }
    if (Error e = endEpoch(epoch, s, lossSum, lossCount, epochStart))
      return e;
  }

  std::string summary = fmt::format("trained {} step(s) in {}", stepsRun,
                                    formatDuration(secondsSince(runStart)));
  if (lastTest && mainAccuracy(m, *lastTest))
    summary += fmt::format("; final test accuracy {:.2f}% (loss {})",
                           100 * *mainAccuracy(m, *lastTest),
                           formatLoss(lastTest->loss));
  else if (lastTest)
    summary += fmt::format(
        "; final test loss {}{}", formatLoss(lastTest->loss),
        !test.predictsCharacters(m)
            ? std::string()
            : fmt::format(" ({:.3f} bits/char)", bitsPerChar(lastTest->loss)));
  else
    summary += fmt::format("; final train loss {}", formatLoss(lastTrainLoss));
  console.print("{}\n", summary);
  const AllReduceStats &reduced = allReduceStats();
  if (comm.size() > 1 && reduced.calls && stepSeconds > 0)
    console.print("{} processes ({}): averaging the gradients ({:.2f} MB a "
                  "step) took {:.1f}% of the steps' time, {:.2f} ms a step\n",
                  comm.size(), comm.transport(),
                  double(reduced.bytes) / double(reduced.calls) / 1e6,
                  100 * reduced.seconds / stepSeconds,
                  1e3 * reduced.seconds / double(reduced.calls));
  if (!options.checkpoint.empty())
    console.print("checkpoint: {} (step {})\n", options.checkpoint, step);
  return Error::success();
}

} // namespace

Error runTrain(Model &model, const TrainOptions &options,
               const Console &console) {
  if (Error e = model.requireEntry(contract::kTrainStepEntry))
    return e;
  return Trainer(model, options, console).run();
}

namespace {

/// What eval reads: the checkpoint (loaded into the model) and the data.
struct EvalInput {
  CheckpointInfo info;
  Dataset data;
};

Expected<EvalInput> prepareEval(Model &model, const EvalOptions &options,
                                const Console &console) {
  if (Error e = model.requireEntry(contract::kEvalStepEntry))
    return e;
  const Manifest &m = model.manifest();
  Expected<std::vector<DataSource>> sources =
      selectSources(m, "test", options.test);
  if (!sources)
    return sources.takeError();
  if (sources->empty())
    return Error::usage(fmt::format("no test data: the model names none; "
                                    "pass --test INPUT=FILE for each input "
                                    "({})",
                                    inputNames(m)));
  Expected<CheckpointInfo> info =
      loadCheckpoint(options.checkpoint, m, model.params, model.state, false);
  if (!info)
    return info.takeError();
  if (Error e = checkFinite(model, options.checkpoint))
    return e;
  // Text is encoded in the checkpoint's vocabulary, class names in its
  // classes: its ids mean what the model learned, whatever file is evaluated.
  std::optional<Vocabulary> vocab;
  if (!info->vocab.empty()) {
    Expected<Vocabulary> saved = Vocabulary::fromUtf8(info->vocab);
    if (!saved)
      return makeError("'{}': {}", options.checkpoint, saved.error().message());
    vocab = std::move(*saved);
  }
  Expected<ClassNames> classes = checkpointClasses(options.checkpoint, *info);
  if (!classes)
    return classes.takeError();
  Expected<Dataset> data =
      loadDataset(m, *sources, "test", vocab ? &*vocab : nullptr,
                  classes->empty() ? nullptr : &*classes);
  if (!data)
    return data.takeError();
  for (const std::string &note : data->notes)
    console.note("{}", note);
  if (data->examples == 0)
    return makeError("the test data holds no examples");
  return EvalInput{std::move(*info), std::move(*data)};
}

} // namespace

Error runEval(Model &model, const EvalOptions &options,
              const Console &console) {
  const Manifest &m = model.manifest();
  Expected<EvalInput> input = prepareEval(model, options, console);
  // The processes of a data-parallel job evaluate together, or none does.
  if (Error e = agree(input ? Error::success() : input.takeError()))
    return e;
  const CheckpointInfo *info = &input->info;
  const Dataset *data = &input->data;
  EvalResult r = evaluate(model, *data);
  if (communicator().rank() != 0)
    return Error::success();
  if (options.json) {
    std::string json = fmt::format("{{\"loss\":{}", jsonNumber(r.loss));
    for (size_t k = 0; k < r.metrics.size(); ++k) {
      const MetricSpec &metric = m.metrics[k];
      std::string key = contract::info(metric.kind).name;
      if (k || metric.kind != contract::MetricKind::Accuracy)
        key += "_" + metric.output;
      json += fmt::format(",{}:{}", jsonQuote(key), jsonNumber(r.metrics[k]));
    }
    for (size_t i = 0; i < r.terms.size(); ++i)
      json += fmt::format(",{}:{}", jsonQuote("term_" + m.terms[i].name),
                          jsonNumber(r.terms[i]));
    if (data->predictsCharacters(m))
      json +=
          fmt::format(",\"bits_per_char\":{}", jsonNumber(bitsPerChar(r.loss)));
    json +=
        fmt::format(",\"examples\":{},\"step\":{}}}\n", r.examples, info->step);
    fmt::print(console.out, "{}", json);
  } else {
    fmt::print(console.out,
               "test loss {}{}{}{}  ({} examples, checkpoint step {})\n",
               formatLoss(r.loss), describeTerms(m, r.terms, 1),
               describeBits(m, *data, r, ""), describeMetrics(m, r, ""),
               r.examples, info->step);
  }
  std::fflush(console.out);
  return Error::success();
}

Error runPredict(Model &model, const PredictOptions &options,
                 const Console &console) {
  const Manifest &m = model.manifest();
  if (Error e = model.requireEntry(contract::kPredictEntry))
    return e;
  const EntrySpec *entry = m.findEntry(contract::kPredictEntry);
  std::vector<std::string> predictInputs = entry->inputNames();
  for (const std::string &name : predictInputs) {
    const TensorSpec *in = m.findInput(name);
    if (in->shape.empty() || in->shape[0] != model.batchSize())
      return makeError("predict input '{}' ({}) does not have the model's "
                       "batch {} as its first dimension",
                       name, formatShape(in->shape), model.batchSize());
  }
  std::vector<DataSource> sources;
  for (const DataSource &s : options.inputs) {
    bool isPredictInput = false;
    for (const std::string &name : predictInputs)
      isPredictInput |= name == s.input;
    if (!isPredictInput)
      return Error::usage(fmt::format(
          "--input: '{}' is not a predict input of the model (predict "
          "inputs: {})",
          s.input, fmt::join(predictInputs, ", ")));
    for (const DataSource &other : sources)
      if (other.input == s.input)
        return Error::usage(
            fmt::format("--input is given twice for '{}'", s.input));
    // Files of the format the model was trained on get the same options
    // (e.g. the scale of IDX images, the rate of WAV audio).
    DataSource source = s;
    const DataSpec *spec = m.findData("test", s.input);
    if (!spec)
      spec = m.findData("train", s.input);
    if (spec)
      adoptSpec(source, *spec);
    sources.push_back(std::move(source));
  }
  for (const std::string &name : predictInputs) {
    bool given = false;
    for (const DataSource &s : sources)
      given |= s.input == name;
    if (!given)
      return Error::usage(
          fmt::format("predict needs --input {}=FILE.npy", name));
  }
  // Validate the output location before the (possibly long) run.
  bool print = options.outputDir.empty();
  struct stat st;
  if (!print && ::stat(options.outputDir.c_str(), &st) == 0 &&
      !S_ISDIR(st.st_mode))
    return makeError("--output '{}' exists and is not a directory",
                     options.outputDir);
  Expected<CheckpointInfo> info =
      loadCheckpoint(options.checkpoint, m, model.params, model.state, false);
  if (!info)
    return info.takeError();
  Expected<Dataset> data = loadDataset(m, sources, "predict");
  if (!data)
    return data.takeError();
  if (data->examples == 0)
    return makeError("the predict inputs hold no examples");
  for (const std::string &note : data->notes)
    console.note("{}", note);

  int64_t batch = model.batchSize();
  int64_t n = data->examples;
  // Runs predict on each batch of the examples, then `use(start, count)`.
  auto forEachBatch = [&](auto use) {
    std::vector<void *> dest = inputBuffers(model, *data);
    std::vector<int64_t> indices(static_cast<size_t>(batch));
    for (int64_t start = 0; start < n; start += batch) {
      int64_t count = std::min(batch, n - start);
      std::iota(indices.begin(), indices.begin() + count, start);
      data->gather(indices.data(), count, dest);
      model.setNoise(uint64_t(start / batch) + 1, m.seed);
      model.predict();
      use(start, count);
    }
  };
  if (print) {
    Expected<ClassNames> classes = checkpointClasses(options.checkpoint, *info);
    if (!classes)
      return classes.takeError();
    std::vector<const Tensor *> outs = printedOutputs(model, *entry, console);
    forEachBatch([&](int64_t start, int64_t count) {
      std::vector<std::string> headers;
      for (int64_t i = start; i < start + count; ++i)
        headers.push_back(n == 1 ? data->inputs.front().file
                                 : fmt::format("example {}", i));
      printPredictions(outs, headers, *classes, console);
    });
    std::fflush(console.out);
    return Error::success();
  }
  std::vector<Tensor *> outs;
  std::vector<std::string> results;
  for (Tensor &t : model.outputs) {
    if (!entry->takes(contract::Role::Output, t.name))
      continue;
    if (t.shape.empty() || t.shape[0] != batch) {
      console.warning("output '{}' ({} {}) has no leading batch dimension; "
                      "not written",
                      t.name, dtypeName(t.type), formatShape(t.shape));
      continue;
    }
    outs.push_back(&t);
  }
  std::vector<std::string> collected(outs.size());
  forEachBatch([&](int64_t, int64_t count) {
    for (size_t k = 0; k < outs.size(); ++k) {
      size_t rowBytes = outs[k]->numBytes() / size_t(batch);
      collected[k].append(static_cast<const char *>(outs[k]->data()),
                          rowBytes * size_t(count));
    }
  });
  if (::stat(options.outputDir.c_str(), &st) != 0 &&
      ::mkdir(options.outputDir.c_str(), 0777) != 0)
    return makeError("cannot create output directory '{}': {}",
                     options.outputDir, std::strerror(errno));
  for (size_t k = 0; k < outs.size(); ++k) {
    Shape shape = outs[k]->shape;
    shape[0] = n;
    std::string path = options.outputDir + "/" + outs[k]->name + ".npy";
    if (Error e = writeNpy(path, outs[k]->type, shape, collected[k].data()))
      return e;
    console.print("wrote {} ({} {})\n", path, dtypeName(outs[k]->type),
                  formatShape(shape));
  }
  if (n % batch)
    console.note("{} examples: the last batch was padded to {} and the "
                 "padding dropped from the outputs",
                 n, batch);
  return Error::success();
}

} // namespace kiln::rt
