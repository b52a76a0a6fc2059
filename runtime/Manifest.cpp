//===- Manifest.cpp - Parsing and validation of the model manifest -------===//

#include "runtime/Manifest.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>

namespace kiln::rt {

namespace {

struct InitInfo {
  InitKind kind;
  const char *name;
  unsigned numArgs;
};

const InitInfo initInfos[] = {
    {InitKind::Zeros, "zeros", 0},
    {InitKind::Ones, "ones", 0},
    {InitKind::Constant, "constant", 1},
    {InitKind::Uniform, "uniform", 2},
    {InitKind::Normal, "normal", 2},
    {InitKind::GlorotUniform, "glorot_uniform", 2},
    {InitKind::GlorotNormal, "glorot_normal", 2},
    {InitKind::HeUniform, "he_uniform", 1},
    {InitKind::HeNormal, "he_normal", 1},
};

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
  std::vector<int> predictInputLines, metricLines, dataLines;
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
  if (kind == "model") {
    if (f.size() != 2)
      return error("expected 'model NAME'");
    if (sawModel)
      return error("a second 'model' record");
    sawModel = true;
    m.model = std::string(f[1]);
    return Error::success();
  }
  if (kind == "param") {
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
  if (kind == "state" || kind == "input" || kind == "output") {
    TensorSpec t;
    if (Error e = parseTensor(f, 4, t))
      return e;
    if (f.size() != 4)
      return error(fmt::format("'{}' takes NAME DTYPE SHAPE", kind));
    if (kind == "input" && t.shape.empty())
      return error(fmt::format("input '{}' is a scalar; inputs have a leading "
                               "batch dimension",
                               t.name));
    (kind == "state"   ? m.state
     : kind == "input" ? m.inputs
                       : m.outputs)
        .push_back(std::move(t));
    return Error::success();
  }
  if (kind == "predict-input") {
    if (f.size() != 2)
      return error("expected 'predict-input NAME'");
    m.predictInputs.emplace_back(f[1]);
    predictInputLines.push_back(line);
    return Error::success();
  }
  if (kind == "metric") {
    if (f.size() < 2)
      return error("expected 'metric KIND ...'");
    // Other metric kinds may come later; the runtime computes accuracy only.
    if (f[1] != "accuracy")
      return Error::success();
    if (f.size() != 4)
      return error("expected 'metric accuracy OUTPUT INPUT'");
    m.metrics.push_back(
        {std::string(f[1]), std::string(f[2]), std::string(f[3])});
    metricLines.push_back(line);
    return Error::success();
  }
  if (kind == "labels") {
    if (f.size() != 3)
      return error("expected 'labels INPUT CLASSES'");
    std::optional<int64_t> classes = parseInt(f[2]);
    if (!classes || *classes <= 0)
      return error("the number of classes must be a positive integer");
    m.labels.push_back({std::string(f[1]), *classes});
    return Error::success();
  }
  if (kind == "optimizer") {
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
  if (kind == "train") {
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
  if (kind == "data") {
    if (f.size() < 5)
      return error("expected 'data SPLIT INPUT FORMAT PATH [KEY=VALUE...]'");
    DataSpec d;
    d.split = std::string(f[1]);
    d.input = std::string(f[2]);
    d.format = std::string(f[3]);
    if (d.split != "train" && d.split != "test")
      return error(fmt::format("unknown data split '{}' (expected train or "
                               "test)",
                               d.split));
    if (d.format != "idx" && d.format != "npy" && d.format != "npz" &&
        d.format != "csv")
      return error(fmt::format("unknown data format '{}' (expected idx, npy "
                               "or csv)",
                               d.format));
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

  int64_t batch = m.inputs[0].shape[0];
  for (const TensorSpec &t : m.inputs)
    if (t.shape[0] != batch)
      return Error::failure(fmt::format(
          "manifest: inputs '{}' ({}) and '{}' ({}) have different batch "
          "sizes",
          m.inputs[0].name, formatShape(m.inputs[0].shape), t.name,
          formatShape(t.shape)));
  if (sawTrain && m.batch && m.batch != batch)
    return Error::failure(
        fmt::format("manifest: 'train batch={}' differs from the inputs' "
                    "batch size {}",
                    m.batch, batch));
  m.batch = batch;

  names.clear();
  for (size_t i = 0; i < m.predictInputs.size(); ++i) {
    if (!m.findInput(m.predictInputs[i]))
      return Error::failure(
          fmt::format("manifest line {}: predict-input '{}' is not an input",
                      predictInputLines[i], m.predictInputs[i]));
    if (!names.insert(m.predictInputs[i]).second)
      return Error::failure(
          fmt::format("manifest line {}: predict-input '{}' given twice",
                      predictInputLines[i], m.predictInputs[i]));
  }
  for (size_t i = 0; i < m.metrics.size(); ++i) {
    const MetricSpec &metric = m.metrics[i];
    const TensorSpec *out = m.findOutput(metric.output);
    const TensorSpec *in = m.findInput(metric.input);
    if (!out || !in)
      return Error::failure(fmt::format(
          "manifest line {}: metric accuracy refers to unknown {} '{}'",
          metricLines[i], out ? "input" : "output",
          out ? metric.input : metric.output));
    if (out->numElements() != in->numElements())
      return Error::failure(fmt::format(
          "manifest line {}: metric accuracy compares output '{}' ({}) with "
          "input '{}' ({}) of another size",
          metricLines[i], out->name, formatShape(out->shape), in->name,
          formatShape(in->shape)));
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
      if (f[0] != "kiln-manifest" || f.size() != 2)
        return error("expected 'kiln-manifest 1' (is this a Kiln model?)");
      std::optional<int64_t> version = parseInt(f[1]);
      if (!version || *version != 1)
        return error(fmt::format("manifest version {} is not supported by "
                                 "this runtime (it reads version 1); rebuild "
                                 "the model with a matching kilnc",
                                 f[1]));
      m.version = 1;
      sawHeader = true;
      continue;
    }
    if (Error e = parseRecord(f))
      return e;
  }
  if (!sawHeader)
    return Error::failure("manifest: empty (expected 'kiln-manifest 1')");
  if (Error e = validate())
    return e;
  return std::move(m);
}

} // namespace

const char *initKindName(InitKind kind) {
  for (const InitInfo &info : initInfos)
    if (info.kind == kind)
      return info.name;
  return "?";
}

std::optional<InitKind> parseInitKind(std::string_view name) {
  for (const InitInfo &info : initInfos)
    if (name == info.name)
      return info.kind;
  return std::nullopt;
}

unsigned numInitArgs(InitKind kind) {
  for (const InitInfo &info : initInfos)
    if (info.kind == kind)
      return info.numArgs;
  return 0;
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
  for (const TensorSpec &t : inputs)
    if (t.name == name)
      return &t;
  return nullptr;
}

const TensorSpec *Manifest::findOutput(std::string_view name) const {
  for (const TensorSpec &t : outputs)
    if (t.name == name)
      return &t;
  return nullptr;
}

const DataSpec *Manifest::findData(std::string_view split,
                                   std::string_view input) const {
  for (const DataSpec &d : data)
    if (d.split == split && d.input == input)
      return &d;
  return nullptr;
}

std::optional<double> Manifest::learningRate() const {
  if (!optimizer)
    return std::nullopt;
  if (const std::string *lr = findOption(optimizer->options, "lr"))
    return parseDouble(*lr);
  return std::nullopt;
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
