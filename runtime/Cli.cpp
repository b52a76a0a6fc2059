//===- Cli.cpp - The command line of a compiled model executable --------===//

#include "runtime/Cli.h"

#include "runtime/Chat.h"
#include "runtime/Comm.h"

#include "runtime/Bench.h"
#include "runtime/Generate.h"
#include "runtime/Manifest.h"
#include "runtime/Sample.h"
#include "runtime/Train.h"
#include "runtime/Translate.h"

#include <cmath>
#include <cstdlib>

namespace kiln::rt {

namespace {

/// The most threads --threads may ask for (far above any machine's cores; a
/// larger count would make libomp abort when it starts them).
constexpr int64_t kMaxThreads = 1024;

struct FlagDef {
  const char *name;
  const char *metavar; ///< nullptr for a switch
  const char *help;
};

struct CommandDef {
  const char *name;
  const char *summary;
  std::vector<FlagDef> flags;
  /// What arguments that are not flags are (`SENTENCE...`); nullptr: none.
  const char *positional = nullptr;
};

const std::vector<CommandDef> &commands() {
  static const std::vector<CommandDef> defs = {
      {"train",
       "train the model; initial weights from its initializers (or --resume)",
       {
           {"--epochs", "N", "number of epochs in all (default: the model's)"},
           {"--lr", "X", "learning rate (default: the model's optimizer lr)"},
           {"--seed", "N", "seed for initialization and shuffling"},
           {"--data", "INPUT=PATH",
            "training data for an input (repeatable); the format follows the "
            "extension: .npy, .npz (PATH.npz:KEY picks an array), .csv, .txt "
            "(UTF-8 text), else IDX; .gz is decompressed"},
           {"--test", "INPUT=PATH",
            "test data for an input (repeatable), evaluated after each epoch"},
           {"--checkpoint", "FILE",
            "write parameters and optimizer state (safetensors) after each "
            "epoch"},
           {"--resume", "FILE", "continue from a checkpoint (its step too)"},
           {"--metrics", "FILE.csv",
            "write epoch,step,train_loss,test_loss,test_accuracy,seconds "
            "after each epoch"},
           {"--steps", "N", "stop after N steps (quick runs)"},
           {"--log-every", "N",
            "a progress line every N steps (default: 10 an epoch)"},
           {"--quiet", nullptr, "print only errors"},
           {"--check-numerics", nullptr,
            "after every step, check every parameter and optimizer state "
            "and name the first that turns NaN or infinite (slower)"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       }},
      {"eval",
       "evaluate a checkpoint on the test data",
       {
           {"--checkpoint", "FILE", "the checkpoint to evaluate (required)"},
           {"--test", "INPUT=PATH",
            "test data for an input (repeatable; default: the model's)"},
           {"--json", nullptr,
            "print one JSON object: {\"loss\":..,\"accuracy\":..,"
            "\"examples\":..}"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       }},
      {"predict",
       "run the model on inputs (or texts) and print its outputs, or write "
       "them as DIR/NAME.npy",
       {
           {"--checkpoint", "FILE", "the parameters to use (required)"},
           {"--input", "NAME=FILE.npy",
            "data for a predict input (one for each; .npz, .csv, .wav and "
            "IDX work too; FILE alone for a model with one)"},
           {"--output", "DIR",
            "write each output as DIR/NAME.npy (default: print the class "
            "labels and top scores of each example)"},
           {"--text", "TEXT",
            "run a model that reads text on TEXT (repeatable) and print "
            "its class labels and top scores"},
           {"--quiet", nullptr, "print only errors"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       }},
      {"generate",
       "write text: the prompt, then characters sampled one step at a time "
       "(models with a generate block)",
       {
           {"--checkpoint", "FILE",
            "trained parameters and vocabulary (required)"},
           {"--prompt", "TEXT", "the text to continue (required)"},
           {"--length", "N", "characters to generate (default: 300)"},
           {"--temperature", "X",
            "divides the scores before the softmax (default: 1)"},
           {"--top-k", "K", "sample among the K likeliest characters"},
           {"--greedy", nullptr, "always take the likeliest character"},
           {"--seed", "N", "seed of the sampling (default: 0)"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       }},
      {"chat",
       "hold a conversation: each line of standard input is a user turn, "
       "the model writes the system's reply (models with a generate block "
       "trained on conversations)",
       {
           {"--checkpoint", "FILE",
            "trained parameters and vocabulary (required)"},
           {"--temperature", "X",
            "0 (default): always the likeliest character; else sample from "
            "the softmax of the scores / X"},
           {"--seed", "N", "seed of the sampling (default: 0)"},
           {"--input", "FILE",
            "score the system turns of recorded conversations instead "
            "(lines \"U: ...\" and \"S: ...\", an empty line between "
            "conversations)"},
           {"--limit", "N", "score only the first N conversations"},
           {"--mistakes", nullptr,
            "print each system turn the model writes differently from the "
            "recorded one"},
           {"--json", nullptr,
            "print the scores as one JSON object: {\"conversations\":..,"
            "\"turns\":..,\"turn_exact\":..,\"success\":..,"
            "\"perplexity\":..,\"bits_per_char\":..}"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       }},
      {"sample",
       "write new examples the model makes from random numbers: an image "
       "grid, lines of text or an array (models with a sample block)",
       {
           {"--checkpoint", "FILE", "the parameters to use (required)"},
           {"--output", "FILE.png|FILE.npy|FILE.txt",
            "where to write the examples (default: text on the console)"},
           {"--count", "N", "how many examples (default: 64)"},
           {"--seed", "N", "seed of the random numbers (default: 0)"},
           {"--scale", "N", "draw each pixel of a PNG N times larger"},
           {"--quiet", nullptr, "print only errors"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       }},
      {"reconstruct",
       "run the model on images and show each beside the images it outputs "
       "(autoencoders)",
       {
           {"--checkpoint", "FILE", "the parameters to use (required)"},
           {"--output", "FILE.png|FILE.npy|FILE.txt",
            "where to write the grid, or the first image output (lines of "
            "text: default the console)"},
           {"--input", "NAME=FILE",
            "images for a predict input (default: the model's test data)"},
           {"--count", "N", "how many examples (default: 32)"},
           {"--scale", "N", "draw each pixel of a PNG N times larger"},
           {"--quiet", nullptr, "print only errors"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       }},
      {"translate",
       "translate sentences greedily or by beam search, or a file of "
       "sentence pairs, scored by BLEU and chrF (models with a translate "
       "block)",
       {
           {"--checkpoint", "FILE",
            "trained parameters and vocabulary (required)"},
           {"--beam", "K",
            "keep the K likeliest translations at each step (default: 1, "
            "greedy)"},
           {"--input", "FILE.tsv",
            "translate the first column of a tab-separated file; a second "
            "column holds the references to score against"},
           {"--output", "FILE",
            "write the translations of --input, one a line"},
           {"--limit", "N", "translate only the first N lines of --input"},
           {"--json", nullptr,
            "print the scores as one JSON object: {\"pairs\":..,"
            "\"bleu\":..,\"chrf\":..,\"copy_bleu\":..,\"copy_chrf\":..}"},
           {"--quiet", nullptr, "print only errors and results"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       },
       "SENTENCE..."},
      {"info",
       "describe the model: parameters, inputs, outputs, optimizer",
       {}},
      {"bench",
       "time the train step on one resident synthetic batch (no data "
       "loading)",
       {
           {"--steps", "N", "timed train steps (default: 50)"},
           {"--warmup", "N", "untimed train steps before them (default: 5)"},
           {"--seed", "N",
            "seed for initialization and the synthetic batch (default: the "
            "model's)"},
           {"--json", nullptr,
            "print one JSON object: {\"model\":..,\"steps\":..,"
            "\"min_ms\":..,\"median_ms\":..,\"mean_ms\":..,"
            "\"max_rss_kb\":..}"},
           {"--threads", "N",
            "threads for large matmuls (default: OMP_NUM_THREADS, else all "
            "cores)"},
       }},
  };
  return defs;
}

const CommandDef *findCommand(const std::string &name) {
  for (const CommandDef &c : commands())
    if (name == c.name)
      return &c;
  return nullptr;
}

/// Word-wraps TEXT to WIDTH columns, continuation lines indented by INDENT.
std::string wrap(const std::string &text, size_t indent, size_t width) {
  std::string out, line;
  size_t start = 0;
  while (start <= text.size()) {
    size_t space = text.find(' ', start);
    std::string word = text.substr(start, space - start);
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    if (space == std::string::npos)
      break;
    start = space + 1;
  }
  return out + line;
}

void printUsage(FILE *out, const std::string &prog, const Manifest *m) {
  fmt::print(out, "usage: {} <command> [flags]\n\n", prog);
  if (m)
    fmt::print(out,
               "Trains and runs the Kiln model '{}' ({} parameters, batch "
               "{}).\n\n",
               m->model, groupDigits(m->numParamElements()), m->batch);
  fmt::print(out, "commands:\n");
  for (const CommandDef &c : commands())
    fmt::print(out, "  {:<9} {}\n", c.name, c.summary);
  fmt::print(out,
             "\nRun '{} <command> --help' for a command's flags.\nRelative "
             "data paths are looked up in the current directory, then in "
             "$KILN_DATA_DIR.\n",
             prog);
}

void printCommandUsage(FILE *out, const std::string &prog,
                       const CommandDef &c) {
  fmt::print(out, "usage: {} {}{}{}\n\n{}.\n", prog, c.name,
             c.flags.empty() ? "" : " [flags]",
             c.positional ? fmt::format(" [{}]", c.positional) : "", c.summary);
  if (c.flags.empty())
    return;
  fmt::print(out, "\nflags:\n");
  for (const FlagDef &f : c.flags) {
    std::string head = f.metavar ? fmt::format("{} {}", f.name, f.metavar)
                                 : std::string(f.name);
    std::string help = wrap(f.help, 28, 80);
    if (head.size() > 24)
      fmt::print(out, "  {}\n  {:<24}  {}\n", head, "", help);
    else
      fmt::print(out, "  {:<24}  {}\n", head, help);
  }
}

/// Flag values by name, in command-line order.
struct ParsedFlags {
  std::vector<std::pair<std::string, std::string>> values;
  /// The arguments that are not flags (commands that take them).
  std::vector<std::string> positional;

  const std::string *last(const std::string &name) const {
    const std::string *v = nullptr;
    for (const auto &[k, value] : values)
      if (k == name)
        v = &value;
    return v;
  }
  bool has(const std::string &name) const { return last(name) != nullptr; }
  std::vector<std::string> all(const std::string &name) const {
    std::vector<std::string> out;
    for (const auto &[k, value] : values)
      if (k == name)
        out.push_back(value);
    return out;
  }
};

Expected<int64_t> positiveInt(const std::string &flag,
                              const std::string &value) {
  std::optional<int64_t> v = parseInt(value);
  if (!v)
    return Error::usage(
        fmt::format("{}: '{}' is not a positive integer", flag, value));
  if (*v <= 0)
    return Error::usage(fmt::format("{} must be at least 1, got {}", flag, *v));
  return *v;
}

/// The value of a `--seed` flag.
Expected<uint64_t> seedFlag(const std::string &value) {
  std::optional<uint64_t> seed = parseUInt(value);
  if (!seed)
    return Error::usage(
        fmt::format("--seed: '{}' is not a non-negative integer", value));
  return *seed;
}

/// The INPUT=PATH values of FLAG; a bare PATH feeds `defaultInput` when
/// that is not empty (a predict entry's only input).
Expected<std::vector<DataSource>>
dataSources(const ParsedFlags &flags, const std::string &flag,
            const std::string &defaultInput = {}) {
  std::vector<DataSource> sources;
  for (const std::string &v : flags.all(flag)) {
    size_t eq = v.find('=');
    if (eq == std::string::npos && !defaultInput.empty() && !v.empty()) {
      sources.push_back(sourceFromPath(defaultInput, v));
      continue;
    }
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
      return Error::usage(
          fmt::format("{} expects INPUT=PATH, got '{}'", flag, v));
    sources.push_back(sourceFromPath(v.substr(0, eq), v.substr(eq + 1)));
  }
  return sources;
}

Expected<TrainOptions> trainOptions(const ParsedFlags &flags) {
  TrainOptions o;
  for (const char *name : {"--epochs", "--steps", "--log-every"}) {
    const std::string *v = flags.last(name);
    if (!v)
      continue;
    Expected<int64_t> n = positiveInt(name, *v);
    if (!n)
      return n.takeError();
    (std::string(name) == "--epochs"  ? o.epochs
     : std::string(name) == "--steps" ? o.steps
                                      : o.logEvery) = *n;
  }
  if (const std::string *v = flags.last("--lr")) {
    std::optional<double> lr = parseDouble(*v);
    if (!lr || !(*lr > 0) || !std::isfinite(*lr))
      return Error::usage(
          fmt::format("--lr must be a positive number, got '{}'", *v));
    o.lr = *lr;
  }
  if (const std::string *v = flags.last("--seed")) {
    Expected<uint64_t> seed = seedFlag(*v);
    if (!seed)
      return seed.takeError();
    o.seed = *seed;
  }
  Expected<std::vector<DataSource>> data = dataSources(flags, "--data");
  if (!data)
    return data.takeError();
  o.data = std::move(*data);
  Expected<std::vector<DataSource>> test = dataSources(flags, "--test");
  if (!test)
    return test.takeError();
  o.test = std::move(*test);
  for (auto [name, field] :
       {std::pair{"--checkpoint", &o.checkpoint},
        std::pair{"--resume", &o.resume}, std::pair{"--metrics", &o.metrics}})
    if (const std::string *v = flags.last(name))
      *field = *v;
  o.checkNumerics = flags.has("--check-numerics");
  return o;
}

Expected<BenchOptions> benchOptions(const ParsedFlags &flags) {
  BenchOptions o;
  if (const std::string *v = flags.last("--steps")) {
    Expected<int64_t> n = positiveInt("--steps", *v);
    if (!n)
      return n.takeError();
    o.steps = *n;
  }
  if (const std::string *v = flags.last("--warmup")) {
    std::optional<int64_t> n = parseInt(*v);
    if (!n || *n < 0)
      return Error::usage(
          fmt::format("--warmup: '{}' is not a non-negative integer", *v));
    o.warmup = *n;
  }
  if (const std::string *v = flags.last("--seed")) {
    Expected<uint64_t> seed = seedFlag(*v);
    if (!seed)
      return seed.takeError();
    o.seed = *seed;
  }
  o.json = flags.has("--json");
  return o;
}

void printInfoImpl(const Manifest &m, FILE *out) {
  fmt::print(out, "model {}\n\nparameters:\n", m.model);
  size_t w = 4;
  for (const ParamSpec &p : m.params)
    w = std::max(w, p.name.size());
  int64_t bytes = 0;
  for (const ParamSpec &p : m.params) {
    fmt::print(out, "  {:<{}}  {:<4} {:<14} {:>12}  {}\n", p.name, w,
               dtypeName(p.type), formatShape(p.shape),
               groupDigits(p.numElements()), p.describeInit());
    bytes += int64_t(p.numBytes());
  }
  fmt::print(out, "  total: {} parameters in {} tensors ({})\n",
             groupDigits(m.numParamElements()), m.params.size(),
             bytes < (1 << 20)
                 ? fmt::format("{:.1f} KiB", double(bytes) / 1024)
                 : fmt::format("{:.1f} MiB", double(bytes) / (1 << 20)));
  if (!m.state.empty()) {
    int64_t n = 0;
    for (const TensorSpec &s : m.state)
      n += s.numElements();
    fmt::print(out, "optimizer state: {} values in {} tensors\n",
               groupDigits(n), m.state.size());
  }
  fmt::print(out, "\ninputs (batch {}):\n", m.batch);
  for (const TensorSpec &t : m.inputs)
    fmt::print(out, "  {}  {}\n", t.name, t.describe());
  fmt::print(out, "\noutputs:\n");
  for (const TensorSpec &t : m.outputs)
    fmt::print(out, "  {}  {}\n", t.name, t.describe());
  for (const MetricSpec &metric : m.metrics)
    fmt::print(out, "metric: {} of {} against {}\n",
               contract::info(metric.kind).name, metric.output, metric.input);
  if (!m.carries.empty()) {
    fmt::print(out, "\ncarried state (zero at the start of each epoch, "
                    "evaluation and generation):\n");
    for (const TensorSpec &t : m.carries)
      fmt::print(out, "  {}  {}\n", t.name, t.describe());
  }
  fmt::print(out, "\nentry points:\n");
  for (const EntrySpec &e : m.entries) {
    std::vector<std::string> ins = e.inputNames(), outs;
    if (e.takes(contract::Role::Carry))
      ins.push_back("state");
    std::vector<std::string> terms;
    for (const EntryArg &a : e.args)
      if (a.role == contract::Role::Term)
        terms.push_back(a.name);
    for (const EntryArg &a : e.args)
      if (a.role == contract::Role::Output)
        outs.push_back(a.name);
      else if (a.role == contract::Role::Loss)
        outs.push_back(terms.empty()
                           ? "loss"
                           : fmt::format("loss ({})", fmt::join(terms, " + ")));
    fmt::print(out, "  {} ({}): {} -> {}\n", e.name,
               contract::info(e.kind).name,
               ins.empty() ? std::string("(nothing)")
                           : fmt::format("{}", fmt::join(ins, ", ")),
               fmt::join(outs, ", "));
  }
  fmt::print(out, "\n");
  if (m.optimizer) {
    std::string opts;
    for (const auto &[k, v] : m.optimizer->options)
      opts += fmt::format(" {}={}", k, v);
    fmt::print(out, "optimizer: {}{}\n", m.optimizer->name, opts);
  }
  if (m.schedule) {
    const contract::Schedule &sc = *m.schedule;
    fmt::print(out, "schedule: {} warmup={:g}", contract::info(sc.kind).name,
               sc.warmup);
    if (sc.kind == contract::ScheduleKind::Step)
      fmt::print(out, " every={:g} gamma={:g}\n", sc.every, sc.gamma);
    else
      fmt::print(out, " min_lr={:g}\n", sc.minLr);
  }
  fmt::print(out, "training: batch {}, {} epoch(s), seed {}\n", m.batch,
             m.epochs, m.seed);
  if (!m.data.empty()) {
    fmt::print(out, "data:\n");
    for (const DataSpec &d : m.data) {
      std::string opts;
      for (const auto &[k, v] : d.options)
        opts += fmt::format(" {}={}", k, v);
      fmt::print(out, "  {:<5} {}: {} {}{}\n", d.split, d.input,
                 contract::info(d.format).name, d.path, opts);
    }
  }
}

int fail(const Console &console, const Error &e) {
  // An error all processes of a data-parallel job share is process 0's to
  // report, with its exit code: the others end quietly, since a launcher ends
  // the whole job (and may drop what process 0 still prints) as soon as one
  // process exits with an error.
  if (e.message().empty())
    return ExitSuccess;
  // One that is this process's own names the process.
  std::fflush(console.out);
  int rank = communicator().rank();
  fmt::print(console.err, "{}error: {}\n",
             rank ? fmt::format("process {}: ", rank) : std::string(),
             e.message());
  std::fflush(console.out);
  return e.exitCode();
}

} // namespace

void printInfo(const Manifest &manifest, FILE *out) {
  printInfoImpl(manifest, out);
}

int runMain(const std::vector<std::string> &args, const ModelAbi &abi,
            FILE *out, FILE *err) {
  Console console;
  console.out = out;
  console.err = err;
  std::string prog = args.empty() ? "model" : args[0];
  size_t slash = prog.rfind('/');
  std::string progName =
      slash == std::string::npos ? prog : prog.substr(slash + 1);

  // Help and info read the manifest alone: a model too large for this
  // machine's memory can still describe itself.
  Expected<Manifest> manifest = Model::readManifest(abi);
  if (!manifest)
    return fail(console, manifest.error());
  const Manifest &m = *manifest;

  if (args.size() < 2) {
    printUsage(err, prog, &m);
    return fail(console, Error::usage("no command given"));
  }
  const std::string &name = args[1];
  if (name == "--help" || name == "-h" || name == "help") {
    if (name == "help" && args.size() > 2)
      if (const CommandDef *c = findCommand(args[2])) {
        printCommandUsage(out, prog, *c);
        return ExitSuccess;
      }
    printUsage(out, prog, &m);
    return ExitSuccess;
  }
  const CommandDef *command = findCommand(name);
  if (!command) {
    std::vector<std::string> names;
    for (const CommandDef &c : commands())
      names.push_back(c.name);
    return fail(console, Error::usage(fmt::format(
                             "unknown {} '{}' (commands: {}; see '{} --help')",
                             name.rfind("-", 0) == 0 ? "flag" : "command", name,
                             fmt::join(names, ", "), progName)));
  }

  ParsedFlags flags;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      printCommandUsage(out, prog, *command);
      return ExitSuccess;
    }
    if (arg.rfind("--", 0) != 0 && command->positional) {
      flags.positional.push_back(arg);
      continue;
    }
    if (arg.rfind("--", 0) != 0)
      return fail(console,
                  Error::usage(fmt::format("unexpected argument '{}' (see '{} "
                                           "{} --help')",
                                           arg, progName, command->name)));
    std::optional<std::string> inlineValue;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      inlineValue = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const FlagDef *flag = nullptr;
    for (const FlagDef &f : command->flags)
      if (arg == f.name)
        flag = &f;
    if (!flag)
      return fail(console, Error::usage(fmt::format(
                               "unknown flag '{}' for '{}' (see "
                               "'{} {} --help')",
                               arg, command->name, progName, command->name)));
    if (!flag->metavar) {
      if (inlineValue)
        return fail(console,
                    Error::usage(fmt::format("{} takes no value", flag->name)));
      flags.values.emplace_back(arg, "");
      continue;
    }
    if (!inlineValue) {
      if (i + 1 >= args.size())
        return fail(console,
                    Error::usage(fmt::format("{} needs a value ({})",
                                             flag->name, flag->metavar)));
      inlineValue = args[++i];
    }
    flags.values.emplace_back(arg, *inlineValue);
  }
  // In a data-parallel job, process 0 speaks for all.
  Communicator &comm = communicator();
  console.quiet = flags.has("--quiet") || comm.rank() != 0;
  console.warnings = comm.rank() == 0;
  if (comm.size() > 1 && name != "train" && name != "eval" && name != "bench")
    return fail(console, comm.rank()
                             ? Error::silent(ExitUsage)
                             : Error::usage(fmt::format(
                                   "'{}' runs as one process; only train, "
                                   "eval and bench run as the {} processes "
                                   "of a data-parallel job",
                                   name, comm.size())));
  // Read by libomp when the first parallel matmul starts its threads, which
  // is after this.
  if (const std::string *v = flags.last("--threads")) {
    Expected<int64_t> n = positiveInt("--threads", *v);
    if (!n)
      return fail(console, n.error());
    // libomp aborts when it cannot start that many threads.
    if (*n > kMaxThreads)
      return fail(console,
                  Error::usage(fmt::format("--threads must be at most {}, got "
                                           "{}",
                                           kMaxThreads, *n)));
    setenv("OMP_NUM_THREADS", std::to_string(*n).c_str(), /*overwrite=*/1);
  }

  if (name == "info") {
    printInfo(m, out);
    std::fflush(out);
    return ExitSuccess;
  }
  Expected<Model> model = Model::create(abi);
  if (!model)
    return fail(console, model.error());

  Error result;
  if (name == "train") {
    Expected<TrainOptions> options = trainOptions(flags);
    if (!options)
      return fail(console, options.error());
    result = runTrain(*model, *options, console);
  } else if (name == "eval") {
    EvalOptions options;
    const std::string *checkpoint = flags.last("--checkpoint");
    if (!checkpoint)
      return fail(console, Error::usage("eval needs --checkpoint FILE"));
    options.checkpoint = *checkpoint;
    Expected<std::vector<DataSource>> test = dataSources(flags, "--test");
    if (!test)
      return fail(console, test.error());
    options.test = std::move(*test);
    options.json = flags.has("--json");
    result = runEval(*model, options, console);
  } else if (name == "predict") {
    PredictOptions options;
    const std::string *checkpoint = flags.last("--checkpoint");
    if (!checkpoint)
      return fail(console, Error::usage("predict needs --checkpoint FILE"));
    options.checkpoint = *checkpoint;
    options.texts = flags.all("--text");
    const std::string *output = flags.last("--output");
    // `--input FILE` feeds a predict entry's only input.
    const EntrySpec *entry =
        model->manifest().findEntry(contract::kPredictEntry);
    std::vector<std::string> names =
        entry ? entry->inputNames() : std::vector<std::string>();
    Expected<std::vector<DataSource>> inputs =
        dataSources(flags, "--input", names.size() == 1 ? names[0] : "");
    if (!inputs)
      return fail(console, inputs.error());
    options.inputs = std::move(*inputs);
    if (!options.texts.empty()) {
      if (output || !options.inputs.empty())
        return fail(console, Error::usage("predict takes --text or --input, "
                                          "not both"));
      result = runPredictText(*model, options, console);
    } else {
      options.outputDir = output ? *output : std::string();
      result = runPredict(*model, options, console);
    }
  } else if (name == "generate") {
    GenerateOptions options;
    const std::string *checkpoint = flags.last("--checkpoint");
    if (!checkpoint)
      return fail(console, Error::usage("generate needs --checkpoint FILE"));
    const std::string *prompt = flags.last("--prompt");
    if (!prompt)
      return fail(console, Error::usage("generate needs --prompt TEXT"));
    options.checkpoint = *checkpoint;
    options.prompt = *prompt;
    if (const std::string *v = flags.last("--length")) {
      Expected<int64_t> n = positiveInt("--length", *v);
      if (!n)
        return fail(console, n.error());
      options.length = *n;
    }
    if (const std::string *v = flags.last("--temperature")) {
      std::optional<double> t = parseDouble(*v);
      if (!t || !(*t > 0) || !std::isfinite(*t))
        return fail(console, Error::usage(fmt::format(
                                 "--temperature must be a positive number, "
                                 "got '{}'",
                                 *v)));
      options.temperature = *t;
    }
    if (const std::string *v = flags.last("--top-k")) {
      Expected<int64_t> n = positiveInt("--top-k", *v);
      if (!n)
        return fail(console, n.error());
      options.topK = *n;
    }
    options.greedy = flags.has("--greedy");
    if (const std::string *v = flags.last("--seed")) {
      Expected<uint64_t> seed = seedFlag(*v);
      if (!seed)
        return fail(console, seed.error());
      options.seed = *seed;
    }
    result = runGenerate(*model, options, console);
  } else if (name == "chat") {
    ChatOptions options;
    const std::string *checkpoint = flags.last("--checkpoint");
    if (!checkpoint)
      return fail(console, Error::usage("chat needs --checkpoint FILE"));
    options.checkpoint = *checkpoint;
    if (const std::string *v = flags.last("--temperature")) {
      std::optional<double> t = parseDouble(*v);
      if (!t || !(*t >= 0) || !std::isfinite(*t))
        return fail(console, Error::usage(fmt::format(
                                 "--temperature must be 0 (greedy) or a "
                                 "positive number, got '{}'",
                                 *v)));
      options.temperature = *t;
    }
    if (const std::string *v = flags.last("--seed")) {
      Expected<uint64_t> seed = seedFlag(*v);
      if (!seed)
        return fail(console, seed.error());
      options.seed = *seed;
    }
    if (const std::string *v = flags.last("--limit")) {
      Expected<int64_t> n = positiveInt("--limit", *v);
      if (!n)
        return fail(console, n.error());
      options.limit = *n;
    }
    if (const std::string *v = flags.last("--input"))
      options.input = *v;
    options.json = flags.has("--json");
    options.mistakes = flags.has("--mistakes");
    if ((options.limit || options.json || options.mistakes) &&
        options.input.empty())
      return fail(console,
                  Error::usage("--limit, --json and --mistakes score a file "
                               "of conversations given with --input"));
    result = runChat(*model, options, console);
  } else if (name == "sample" || name == "reconstruct") {
    const std::string *checkpoint = flags.last("--checkpoint");
    if (!checkpoint)
      return fail(console, Error::usage(fmt::format(
                               "{} needs --checkpoint FILE", name)));
    const std::string *output = flags.last("--output");
    std::optional<int64_t> count;
    if (const std::string *v = flags.last("--count")) {
      Expected<int64_t> n = positiveInt("--count", *v);
      if (!n)
        return fail(console, n.error());
      count = *n;
    }
    int64_t scale = 1;
    if (const std::string *v = flags.last("--scale")) {
      Expected<int64_t> n = positiveInt("--scale", *v);
      if (!n)
        return fail(console, n.error());
      if (*n > kMaxImageScale)
        return fail(console, Error::usage(fmt::format(
                                 "--scale must be at most {}, got {}",
                                 kMaxImageScale, *n)));
      scale = *n;
    }
    if (name == "sample") {
      SampleOptions options;
      options.checkpoint = *checkpoint;
      options.output = output ? *output : std::string();
      options.count = count.value_or(options.count);
      options.scale = scale;
      if (const std::string *v = flags.last("--seed")) {
        Expected<uint64_t> seed = seedFlag(*v);
        if (!seed)
          return fail(console, seed.error());
        options.seed = *seed;
      }
      result = runSample(*model, options, console);
    } else {
      ReconstructOptions options;
      options.checkpoint = *checkpoint;
      options.output = output ? *output : std::string();
      options.count = count.value_or(options.count);
      options.scale = scale;
      Expected<std::vector<DataSource>> inputs = dataSources(flags, "--input");
      if (!inputs)
        return fail(console, inputs.error());
      options.inputs = std::move(*inputs);
      result = runReconstruct(*model, options, console);
    }
  } else if (name == "translate") {
    TranslateOptions options;
    const std::string *checkpoint = flags.last("--checkpoint");
    if (!checkpoint)
      return fail(console, Error::usage("translate needs --checkpoint FILE"));
    options.checkpoint = *checkpoint;
    options.sentences = flags.positional;
    for (auto [flag, field] : {std::pair{"--beam", &options.beam},
                               std::pair{"--limit", &options.limit}})
      if (const std::string *v = flags.last(flag)) {
        Expected<int64_t> n = positiveInt(flag, *v);
        if (!n)
          return fail(console, n.error());
        *field = *n;
      }
    if (const std::string *v = flags.last("--input"))
      options.input = *v;
    if (const std::string *v = flags.last("--output"))
      options.output = *v;
    options.json = flags.has("--json");
    result = runTranslate(*model, options, console);
  } else if (name == "bench") {
    Expected<BenchOptions> options = benchOptions(flags);
    if (!options)
      return fail(console, options.error());
    result = runBench(*model, *options, console);
  }
  if (result)
    return fail(console, result);
  std::fflush(out);
  return ExitSuccess;
}

} // namespace kiln::rt
