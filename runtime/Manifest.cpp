//===- Manifest.cpp - Parsing and validation of the model manifest -------===//

#include "runtime/Manifest.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>

namespace kiln::rt {

namespace {

/// The spec of `specs` named `name`, or nullptr.
template <typename Spec>
const Spec *findNamed(const std::vector<Spec> &specs, std::string_view name) {
  for (const Spec &s : specs)
    if (s.name == name)
      return &s;
  return nullptr;
}

std::vector<std::string_view> splitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t')
      ++i;
    if (i > start)
      fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

/// Parses the manifest line by line, collecting records into a Manifest.
class Parser {
public:
  Expected<Manifest> parse(std::string_view text);

private:
  Error error(const std::string &message) const {
    return Error::failure(fmt::format("manifest line {}: {}", line, message));
  }
  Error parseTensor(const std::vector<std::string_view> &f, size_t count,
                    TensorSpec &spec);
  Error parseOptions(const std::vector<std::string_view> &f, size_t first,
                     Options &options);
  Error parseRecord(const std::vector<std::string_view> &f);
  Error validate();

  Manifest m;
  int line = 0;
  bool sawModel = false;
  bool sawTrain = false;
  std::vector<int> metricLines, dataLines, entryLines;
  /// The line of each entry's `arg` records.
  std::vector<std::vector<int>> argLines;
};

Error Parser::parseTensor(const std::vector<std::string_view> &f, size_t count,
                          TensorSpec &spec) {
  if (f.size() < count)
    return error(fmt::format("'{}' needs NAME DTYPE SHAPE", f[0]));
  spec.name = std::string(f[1]);
  std::optional<DType> type = parseDType(f[2]);
  if (!type)
    return error(fmt::format("unknown dtype '{}' of '{}' (expected f32, f64 "
                             "or i32)",
                             f[2], f[1]));
  spec.type = *type;
  std::optional<Shape> shape = parseShape(f[3]);
  if (!shape)
    return error(fmt::format("bad shape '{}' of '{}' (expected e.g. 64x784 "
                             "or scalar)",
                             f[3], f[1]));
  spec.shape = std::move(*shape);
  return Error::success();
}

Error Parser::parseOptions(const std::vector<std::string_view> &f, size_t first,
                           Options &options) {
  for (size_t i = first; i < f.size(); ++i) {
    size_t eq = f[i].find('=');
    if (eq == std::string_view::npos || eq == 0)
      return error(fmt::format("expected KEY=VALUE, got '{}'", f[i]));
    options.emplace_back(std::string(f[i].substr(0, eq)),
                         std::string(f[i].substr(eq + 1)));
  }
  return Error::success();
}

Error Parser::parseRecord(const std::vector<std::string_view> &f) {
  std::string_view kind = f[0];
  if (kind == contract::record::kModel) {
    if (f.size() != 2)
      return error("expected 'model NAME'");
    if (sawModel)
      return error("a second 'model' record");
    sawModel = true;
    m.model = std::string(f[1]);
    return Error::success();
  }
  if (kind == contract::record::kParam) {
    ParamSpec p;
    if (Error e = parseTensor(f, 5, p))
      return e;
    if (!isFloat(p.type))
      return error(fmt::format("parameter '{}' has dtype {}; parameters are "
                               "f32 or f64",
                               p.name, dtypeName(p.type)));
    std::optional<InitKind> init = parseInitKind(f[4]);
    if (!init)
      return error(fmt::format("unknown initializer '{}' of parameter '{}'",
                               f[4], p.name));
    p.init = *init;
    for (size_t i = 5; i < f.size(); ++i) {
      std::optional<double> v = parseDouble(f[i]);
      if (!v || !std::isfinite(*v))
        return error(fmt::format("bad initializer argument '{}' of parameter "
                                 "'{}'",
                                 f[i], p.name));
      p.initArgs.push_back(*v);
    }
    if (p.initArgs.size() != numInitArgs(p.init))
      return error(fmt::format("initializer '{}' of parameter '{}' takes {} "
                               "argument(s), got {}",
                               f[4], p.name, numInitArgs(p.init),
                               p.initArgs.size()));
    const std::vector<double> &a = p.initArgs;
    switch (p.init) {
    case InitKind::Uniform:
      if (a[0] > a[1])
        return error(fmt::format("uniform({}, {}) of parameter '{}' has low > "
                                 "high",
                                 a[0], a[1], p.name));
      break;
    case InitKind::Normal:
      if (a[1] < 0)
        return error(fmt::format("normal({}, {}) of parameter '{}' has a "
                                 "negative std",
                                 a[0], a[1], p.name));
      break;
    case InitKind::GlorotUniform:
    case InitKind::GlorotNormal:
    case InitKind::HeUniform:
    case InitKind::HeNormal:
      for (double fan : a)
        if (fan <= 0)
          return error(fmt::format("{} of parameter '{}' needs positive "
                                   "fans, got {}",
                                   f[4], p.name, fan));
      break;
    default:
      break;
    }
    m.params.push_back(std::move(p));
    return Error::success();
  }
  if (kind == contract::record::kState || kind == contract::record::kInput ||
      kind == contract::record::kOutput || kind == contract::record::kCarry ||
      kind == contract::record::kTerm) {
    TensorSpec t;
    if (Error e = parseTensor(f, 4, t))
      return e;
    if (f.size() != 4)
      return error(fmt::format("'{}' takes NAME DTYPE SHAPE", kind));
    (kind == contract::record::kState    ? m.state
     : kind == contract::record::kInput  ? m.inputs
     : kind == contract::record::kOutput ? m.outputs
     : kind == contract::record::kCarry  ? m.carries
                                         : m.terms)
        .push_back(std::move(t));
    return Error::success();
  }
  if (kind == contract::record::kEntry) {
    if (f.size() != 3)
      return error("expected 'entry NAME KIND'");
    std::optional<contract::EntryKind> entryKind =
        contract::parseEntryKind(f[2]);
    if (!entryKind)
      return error(fmt::format("unknown entry kind '{}' of entry '{}' "
                               "(expected train, eval, infer or step)",
                               f[2], f[1]));
    if (m.findEntry(f[1]))
      return error(fmt::format("a second entry named '{}'", f[1]));
    m.entries.push_back({std::string(f[1]), *entryKind, {}, 0});
    entryLines.push_back(line);
    argLines.emplace_back();
    return Error::success();
  }
  if (kind == contract::record::kArg) {
    if (m.entries.empty())
      return error("an 'arg' record before any 'entry' record");
    if (f.size() < 2 || f.size() > 3)
      return error("expected 'arg ROLE [NAME]'");
    std::optional<contract::Role> role = contract::parseRole(f[1]);
    if (!role)
      return error(fmt::format("unknown buffer role '{}' (expected param, "
                               "state, input, hyper, loss or output)",
                               f[1]));
    bool named = contract::info(*role).named;
    if (named != (f.size() == 3))
      return error(named ? fmt::format("'arg {}' needs the buffer's name", f[1])
                         : fmt::format("'arg {}' takes no name", f[1]));
    m.entries.back().args.push_back(
        {*role, f.size() == 3 ? std::string(f[2]) : std::string()});
    argLines.back().push_back(line);
    return Error::success();
  }
  if (kind == contract::record::kMetric) {
    if (f.size() < 2)
      return error("expected 'metric KIND ...'");
    // Kinds of later versions are ignored (forward compatibility).
    std::optional<contract::MetricKind> metricKind =
        contract::parseMetricKind(f[1]);
    if (!metricKind)
      return Error::success();
    if (f.size() != 4)
      return error(fmt::format("expected 'metric {} OUTPUT INPUT'", f[1]));
    m.metrics.push_back({*metricKind, std::string(f[2]), std::string(f[3])});
    metricLines.push_back(line);
    return Error::success();
  }
  if (kind == contract::record::kContext) {
    std::optional<int64_t> n = f.size() == 2 ? parseInt(f[1]) : std::nullopt;
    if (!n || *n <= 0)
      return error("expected 'context POSITIONS' (a positive integer)");
    if (m.generateContext)
      return error("a second 'context' record");
    m.generateContext = *n;
    return Error::success();
  }
  if (kind == contract::record::kParallel) {
    // `parallel data`; other kinds of parallelism would be other words.
    if (f.size() == 2 && f[1] == "data")
      m.dataParallel = true;
    return Error::success();
  }
  if (kind == contract::record::kLabels) {
    if (f.size() < 3 || f.size() > 5)
      return error("expected 'labels INPUT CLASSES [ignore=VALUE] [target]'");
    std::optional<int64_t> classes = parseInt(f[2]);
    if (!classes || *classes <= 0)
      return error("the number of classes must be a positive integer");
    LabelSpec label{std::string(f[1]), *classes, std::nullopt};
    for (size_t i = 3; i < f.size(); ++i) {
      if (f[i] == "target" && !label.target) {
        label.target = true;
        continue;
      }
      std::optional<int64_t> ignore;
      if (f[i].substr(0, 7) == "ignore=" && !label.ignore)
        ignore = parseInt(f[i].substr(7));
      if (!ignore || *ignore < INT32_MIN || *ignore > INT32_MAX)
        return error(fmt::format(
            "expected ignore=VALUE (an i32) or target, got '{}'", f[i]));
      label.ignore = int32_t(*ignore);
    }
    m.labels.push_back(std::move(label));
    return Error::success();
  }
  if (kind == contract::record::kOptimizer) {
    if (f.size() < 2)
      return error("expected 'optimizer NAME KEY=VALUE...'");
    if (m.optimizer)
      return error("a second 'optimizer' record");
    OptimizerSpec o;
    o.name = std::string(f[1]);
    if (Error e = parseOptions(f, 2, o.options))
      return e;
    if (const std::string *lr = findOption(o.options, "lr")) {
      std::optional<double> v = parseDouble(*lr);
      if (!v || !(*v > 0) || !std::isfinite(*v))
        return error(fmt::format("bad learning rate lr={}", *lr));
    }
    m.optimizer = std::move(o);
    return Error::success();
  }
  if (kind == contract::record::kTrain) {
    if (sawTrain)
      return error("a second 'train' record");
    sawTrain = true;
    Options options;
    if (Error e = parseOptions(f, 1, options))
      return e;
    for (auto &[key, value] : options) {
      if (key == "batch" || key == "epochs") {
        std::optional<int64_t> v = parseInt(value);
        if (!v || *v <= 0)
          return error(fmt::format("'{}' must be a positive integer, got '{}'",
                                   key, value));
        (key == "batch" ? m.batch : m.epochs) = *v;
      } else if (key == "seed") {
        std::optional<uint64_t> v = parseUInt(value);
        if (!v)
          return error(fmt::format("'seed' must be a non-negative integer, "
                                   "got '{}'",
                                   value));
        m.seed = *v;
      }
    }
    return Error::success();
  }
  if (kind == contract::record::kSchedule) {
    if (f.size() < 2)
      return error("expected 'schedule NAME KEY=VALUE...'");
    if (m.schedule)
      return error("a second 'schedule' record");
    std::optional<contract::ScheduleKind> k = contract::parseSchedule(f[1]);
    if (!k)
      return error(fmt::format("unknown learning-rate schedule '{}'", f[1]));
    contract::Schedule s;
    s.kind = *k;
    const contract::ScheduleInfo &info = contract::info(*k);
    Options options;
    if (Error e = parseOptions(f, 2, options))
      return e;
    for (auto &[key, value] : options) {
      bool known = false;
      for (unsigned i = 0; i < info.numParams; ++i)
        known |= key == info.params[i].name;
      const contract::HyperRange *range = contract::findScheduleRange(key);
      std::optional<double> v = parseDouble(value);
      if (!known || !range)
        return error(fmt::format("schedule '{}' takes no '{}'", f[1], key));
      if (!v || !range->contains(*v) ||
          (contract::scheduleParamIsCount(key) && *v != std::floor(*v)))
        return error(fmt::format("schedule '{}': '{}' must be {}, got '{}'",
                                 f[1], key, range->text, value));
      (key == "warmup"   ? s.warmup
       : key == "min_lr" ? s.minLr
       : key == "every"  ? s.every
                         : s.gamma) = *v;
    }
    m.schedule = s;
    return Error::success();
  }
  if (kind == contract::record::kData) {
    if (f.size() < 5)
      return error("expected 'data SPLIT INPUT FORMAT PATH [KEY=VALUE...]'");
    DataSpec d;
    d.split = std::string(f[1]);
    d.input = std::string(f[2]);
    if (d.split != "train" && d.split != "test")
      return error(fmt::format("unknown data split '{}' (expected train or "
                               "test)",
                               d.split));
    std::optional<contract::DataFormat> format =
        contract::parseDataFormat(f[3]);
    if (!format) {
      std::string names;
      for (const contract::DataFormatInfo &k : contract::kDataFormats)
        names += fmt::format("{}{}", names.empty() ? "" : ", ", k.name);
      return error(fmt::format("unknown data format '{}' (expected one of {})",
                               f[3], names));
    }
    d.format = *format;
    std::optional<std::string> path = percentDecode(f[4]);
    if (!path || path->empty())
      return error(fmt::format("bad data path '{}'", f[4]));
    d.path = std::move(*path);
    if (Error e = parseOptions(f, 5, d.options))
      return e;
    m.data.push_back(std::move(d));
    dataLines.push_back(line);
    return Error::success();
  }
  // Unknown record kinds are ignored (forward compatibility).
  return Error::success();
}

Error Parser::validate() {
  if (!sawModel)
    return Error::failure("manifest: no 'model' record");
  if (m.inputs.empty())
    return Error::failure("manifest: the model has no inputs");

  std::set<std::string> names;
  for (const TensorSpec *t : [&] {
         std::vector<const TensorSpec *> all;
         for (const ParamSpec &p : m.params)
           all.push_back(&p);
         for (const TensorSpec &s : m.state)
           all.push_back(&s);
         return all;
       }())
    if (!names.insert(t->name).second)
      return Error::failure(fmt::format(
          "manifest: two parameters or state tensors named '{}'", t->name));
  names.clear();
  for (const TensorSpec &t : m.inputs)
    if (!names.insert(t.name).second)
      return Error::failure(
          fmt::format("manifest: two inputs named '{}'", t.name));
  names.clear();
  for (const TensorSpec &t : m.outputs)
    if (!names.insert(t.name).second)
      return Error::failure(
          fmt::format("manifest: two outputs named '{}'", t.name));

  if (m.entries.empty())
    return Error::failure("manifest: no 'entry' records (the model exports no "
                          "entry points)");
  for (size_t e = 0; e < m.entries.size(); ++e) {
    EntrySpec &entry = m.entries[e];
    const contract::EntryKindInfo &kind = contract::info(entry.kind);
    const TensorSpec *firstInput = nullptr;
    std::set<std::string> seen;
    for (size_t a = 0; a < entry.args.size(); ++a) {
      const EntryArg &arg = entry.args[a];
      int at = argLines[e][a];
      const char *roleName = contract::info(arg.role).name;
      auto fail = [&](const std::string &message) {
        return Error::failure(fmt::format("manifest line {}: {}", at, message));
      };
      if (!((kind.argRoles | kind.resultRoles) & contract::roleBit(arg.role)))
        return fail(fmt::format("{} entry '{}' takes no {} buffer", kind.name,
                                entry.name, roleName));
      if (!seen.insert(fmt::format("{}:{}", roleName, arg.name)).second)
        return fail(fmt::format("entry '{}' takes {} '{}' twice", entry.name,
                                roleName, arg.name));
      bool known = true;
      switch (arg.role) {
      case contract::Role::Param:
        known = findNamed(m.params, arg.name);
        break;
      case contract::Role::State:
        known = findNamed(m.state, arg.name);
        break;
      case contract::Role::Input: {
        const TensorSpec *in = m.findInput(arg.name);
        known = in;
        bool batched = entry.kind == contract::EntryKind::Train ||
                       entry.kind == contract::EntryKind::Eval;
        if (in && in->shape.empty() && batched)
          return fail(fmt::format("input '{}' of {} entry '{}' is a scalar; "
                                  "its inputs have a leading batch dimension",
                                  in->name, kind.name, entry.name));
        if (!in || in->shape.empty())
          break;
        if (!firstInput)
          firstInput = in;
        // The loop feeds train and eval entries batches of a data set; infer
        // entries may take anything (runPredict checks what it feeds).
        else if (batched && in->shape[0] != firstInput->shape[0])
          return fail(fmt::format(
              "inputs '{}' ({}) and '{}' ({}) of entry '{}' have different "
              "batch sizes",
              firstInput->name, formatShape(firstInput->shape), in->name,
              formatShape(in->shape), entry.name));
        break;
      }
      case contract::Role::Output:
        known = m.findOutput(arg.name);
        break;
      case contract::Role::Carry:
        known = findNamed(m.carries, arg.name);
        break;
      case contract::Role::Term:
        known = findNamed(m.terms, arg.name);
        break;
      case contract::Role::Hyper:
      case contract::Role::Loss:
        break;
      }
      if (!known)
        return fail(fmt::format("entry '{}' takes unknown {} '{}'", entry.name,
                                roleName, arg.name));
    }
    auto needs = [&](contract::Role role) -> Error {
      if (seen.count(fmt::format("{}:", contract::info(role).name)))
        return Error::success();
      return Error::failure(fmt::format(
          "manifest line {}: {} entry '{}' has no {} buffer", entryLines[e],
          kind.name, entry.name, contract::info(role).name));
    };
    if (entry.kind == contract::EntryKind::Train)
      if (Error err = needs(contract::Role::Hyper))
        return err;
    if (entry.kind == contract::EntryKind::Train ||
        entry.kind == contract::EntryKind::Eval)
      if (Error err = needs(contract::Role::Loss))
        return err;
    entry.batch = firstInput ? firstInput->shape[0] : 0;
  }

  // The model's batch: that of its train entry, else of its eval entry, else
  // of the first entry with inputs.
  const EntrySpec *main = nullptr;
  for (contract::EntryKind kind :
       {contract::EntryKind::Train, contract::EntryKind::Eval,
        contract::EntryKind::Infer})
    for (const EntrySpec &entry : m.entries)
      if (!main && entry.kind == kind && entry.batch)
        main = &entry;
  int64_t batch = main ? main->batch : 1;
  if (sawTrain && m.batch && m.batch != batch)
    return Error::failure(
        fmt::format("manifest: 'train batch={}' differs from the inputs' "
                    "batch size {}",
                    m.batch, batch));
  m.batch = batch;

  for (size_t i = 0; i < m.metrics.size(); ++i) {
    const MetricSpec &metric = m.metrics[i];
    const TensorSpec *out = m.findOutput(metric.output);
    const TensorSpec *in = m.findInput(metric.input);
    const char *kind = contract::info(metric.kind).name;
    if (!out || !in)
      return Error::failure(
          fmt::format("manifest line {}: metric {} refers to unknown {} '{}'",
                      metricLines[i], kind, out ? "input" : "output",
                      out ? metric.input : metric.output));
    if (out->numElements() != in->numElements())
      return Error::failure(fmt::format(
          "manifest line {}: metric {} compares output '{}' ({}) with "
          "input '{}' ({}) of another size",
          metricLines[i], kind, out->name, formatShape(out->shape), in->name,
          formatShape(in->shape)));
    if (metric.kind == contract::MetricKind::Psnr &&
        (out->type == DType::I32 || in->type == DType::I32))
      return Error::failure(fmt::format(
          "manifest line {}: metric psnr compares images, not integers",
          metricLines[i]));
  }
  for (size_t i = 0; i < m.data.size(); ++i) {
    const DataSpec &d = m.data[i];
    if (!m.findInput(d.input))
      return Error::failure(
          fmt::format("manifest line {}: data for unknown input '{}'",
                      dataLines[i], d.input));
    for (size_t j = 0; j < i; ++j)
      if (m.data[j].split == d.split && m.data[j].input == d.input)
        return Error::failure(
            fmt::format("manifest line {}: second {} data for input '{}'",
                        dataLines[i], d.split, d.input));
  }
  return Error::success();
}

Expected<Manifest> Parser::parse(std::string_view text) {
  bool sawHeader = false;
  while (!text.empty()) {
    ++line;
    size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!l.empty() && l.back() == '\r')
      l.remove_suffix(1);
    std::vector<std::string_view> f = splitFields(l);
    if (f.empty() || f[0][0] == '#')
      continue;
    if (!sawHeader) {
      if (f[0] != contract::record::kHeader || f.size() != 2)
        return error(fmt::format("expected '{} {}' (is this a Kiln model?)",
                                 contract::record::kHeader,
                                 contract::kManifestVersion));
      std::optional<int64_t> version = parseInt(f[1]);
      if (!version || *version != contract::kManifestVersion)
        return error(fmt::format("manifest version {} is not supported by "
                                 "this runtime (it reads version {}); rebuild "
                                 "the model with a matching kilnc",
                                 f[1], contract::kManifestVersion));
      m.version = contract::kManifestVersion;
      sawHeader = true;
      continue;
    }
    if (Error e = parseRecord(f))
      return e;
  }
  if (!sawHeader)
    return Error::failure(fmt::format("manifest: empty (expected '{} {}')",
                                      contract::record::kHeader,
                                      contract::kManifestVersion));
  if (Error e = validate())
    return e;
  return std::move(m);
}

} // namespace

const char *initKindName(InitKind kind) { return contract::info(kind).name; }

std::optional<InitKind> parseInitKind(std::string_view name) {
  return contract::parseInitKind(name);
}

unsigned numInitArgs(InitKind kind) { return contract::info(kind).numArgs; }

std::vector<std::string> EntrySpec::inputNames() const {
  std::vector<std::string> names;
  for (const EntryArg &a : args)
    if (a.role == contract::Role::Input)
      names.push_back(a.name);
  return names;
}

bool EntrySpec::takes(contract::Role role, std::string_view name) const {
  for (const EntryArg &a : args)
    if (a.role == role && a.name == name)
      return true;
  return false;
}

bool EntrySpec::takes(contract::Role role) const {
  for (const EntryArg &a : args)
    if (a.role == role)
      return true;
  return false;
}

const EntrySpec *Manifest::findEntry(std::string_view name) const {
  int i = findEntryIndex(name);
  return i < 0 ? nullptr : &entries[i];
}

int Manifest::findEntryIndex(std::string_view name) const {
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].name == name)
      return int(i);
  return -1;
}

const std::string *findOption(const Options &options, std::string_view key) {
  for (const auto &[k, v] : options)
    if (k == key)
      return &v;
  return nullptr;
}

std::string TensorSpec::describe() const {
  return fmt::format("{} {}", dtypeName(type), formatShape(shape));
}

std::string ParamSpec::describeInit() const {
  if (initArgs.empty())
    return initKindName(init);
  return fmt::format("{}({})", initKindName(init), fmt::join(initArgs, ", "));
}

const TensorSpec *Manifest::findInput(std::string_view name) const {
  return findNamed(inputs, name);
}

const TensorSpec *Manifest::findOutput(std::string_view name) const {
  return findNamed(outputs, name);
}

const DataSpec *Manifest::findData(std::string_view split,
                                   std::string_view input) const {
  for (const DataSpec &d : data)
    if (d.split == split && d.input == input)
      return &d;
  return nullptr;
}

double Manifest::learningRate() const {
  if (optimizer)
    if (const std::string *lr = findOption(optimizer->options, "lr"))
      if (std::optional<double> v = parseDouble(*lr))
        return *v;
  // kilnc always records the lr it compiled; other manifests get the default
  // of their optimizer (or of the default optimizer), from the one table.
  std::optional<contract::OptimizerKind> kind;
  if (optimizer)
    kind = contract::parseOptimizer(optimizer->name);
  return *contract::hyperDefault(kind.value_or(contract::kDefaultOptimizer),
                                 "lr");
}

int64_t Manifest::numParamElements() const {
  int64_t n = 0;
  for (const ParamSpec &p : params)
    n += p.numElements();
  return n;
}

Expected<Manifest> parseManifest(std::string_view text) {
  return Parser().parse(text);
}

std::optional<std::string> percentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size())
      return std::nullopt;
    unsigned value = 0;
    auto [end, ec] =
        std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc() || end != text.data() + i + 3)
      return std::nullopt;
    out += char(value);
    i += 2;
  }
  return out;
}

std::optional<double> parseDouble(std::string_view text) {
  if (text.empty() || text.size() > 64 || text[0] == ' ')
    return std::nullopt;
  // strtod (not from_chars: libstdc++ 12 has it, but keep to the C library)
  // also reads inf/nan; callers reject those where they must.
  std::string s(text);
  char *end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size())
    return std::nullopt;
  return v;
}

std::optional<int64_t> parseInt(std::string_view text) {
  int64_t v = 0;
  if (!text.empty() && text[0] == '+')
    text.remove_prefix(1);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return v;
}

std::optional<uint64_t> parseUInt(std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return v;
}

} // namespace kiln::rt
