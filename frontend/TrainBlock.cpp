//===- TrainBlock.cpp - The train block's settings ------------------------===//
//
// `train MODEL { optimizer ..., batch ..., data INPUT = FORMAT(...) }` becomes
// the module's `kiln.train` dictionary: {optimizer = {name, hyper...}, batch,
// epochs, seed, data, test}, every hyper-parameter resolved.
//
//===----------------------------------------------------------------------===//

#include "frontend/Builtins.h"

#include "runtime/Contract.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <map>

using namespace kiln;
using namespace kiln::ast;
using namespace kiln::sema;
using llvm::SMLoc;
using llvm::StringRef;

namespace {

/// A setting value (number, bool or string) as an attribute of `kiln.train`;
/// null for other values.
mlir::Attribute toAttr(mlir::OpBuilder &b, const Value &v) {
  switch (v.kind) {
  case Value::Kind::Int:
    return b.getI64IntegerAttr(v.i);
  case Value::Kind::Float:
    return b.getF64FloatAttr(v.f);
  case Value::Kind::Bool:
    return b.getBoolAttr(v.b);
  case Value::Kind::String:
    return b.getStringAttr(v.s);
  default:
    return {};
  }
}

/// The value of a numeric setting.
std::optional<double> toNumber(mlir::Attribute a) {
  if (auto i = llvm::dyn_cast_or_null<mlir::IntegerAttr>(a))
    if (!i.getType().isInteger(1))
      return double(i.getInt());
  if (auto f = llvm::dyn_cast_or_null<mlir::FloatAttr>(a))
    return f.getValueAsDouble();
  return std::nullopt;
}

using Settings = std::map<std::string, mlir::Attribute>;

/// The hyper-parameters optimizer `kind` takes, with the contract's defaults.
Settings defaultHyper(mlir::OpBuilder &b, contract::OptimizerKind kind) {
  const contract::OptimizerInfo &info = contract::info(kind);
  Settings hyper;
  for (unsigned i = 0; i < info.numHyper; ++i) {
    const contract::HyperDefault &h = info.hyper[i];
    const contract::HyperRange *range = contract::findHyperRange(h.name);
    hyper[h.name] = range && range->isBool
                        ? mlir::Attribute(b.getBoolAttr(h.value != 0))
                        : mlir::Attribute(b.getF64FloatAttr(h.value));
  }
  return hyper;
}

/// "sgd, momentum, adam or adamw"
std::string optimizerNames() {
  std::string names;
  size_t n = std::size(contract::kOptimizers);
  for (size_t i = 0; i < n; ++i)
    names += std::string(i == 0       ? ""
                         : i + 1 == n ? " or "
                                      : ", ") +
             contract::kOptimizers[i].name;
  return names;
}

} // namespace

void Elaborator::elaborateTrain(const TrainDecl &decl) {
  if (decl.model.name != modelName) {
    error(decl.model.loc, "train block names unknown model '" +
                              decl.model.name + "'; the model is '" +
                              modelName + "'");
    return;
  }
  mlir::OpBuilder &b = builder;
  std::string optimizer = contract::info(contract::kDefaultOptimizer).name;
  Settings hyper = defaultHyper(b, contract::kDefaultOptimizer);
  int64_t batch = inputs.empty() || typeOf(inputs[0].value).getRank() == 0
                      ? 1
                      : typeOf(inputs[0].value).getShape()[0];
  int64_t epochs = 1, seed = 0;
  Settings data, test; // by input name
  mlir::Attribute schedule;
  llvm::SmallVector<mlir::Attribute> metrics; // [kind, output, input]
  Frame frame; // settings see only constants, functions and builtins
  llvm::StringMap<SMLoc> seen;
  for (const TrainItem &item : decl.items) {
    if (reporter.tooManyErrors())
      return;
    StringRef key = item.key.name;
    bool isData = key == "data" || key == "test";
    if (key == "metric") {
      elaborateMetric(item, metrics);
      continue;
    }
    std::string seenKey = isData && item.target
                              ? (key + "." + item.target->name).str()
                              : key.str();
    if (auto it = seen.find(seenKey); it != seen.end()) {
      error(item.key.loc, "'" + seenKey + "' is set twice")
              .attachNote(reporter.getLoc(it->second))
          << "first set here";
      continue;
    }
    seen[seenKey] = item.key.loc;

    if (key == "batch" || key == "epochs" || key == "seed") {
      if (item.target) {
        error(item.target->loc, "'" + key + "' takes a value, not a name");
        continue;
      }
      std::optional<int64_t> v = evalInt(*item.value, frame, "'" + key + "'");
      if (!v)
        continue;
      if (*v < (key == "seed" ? 0 : 1)) {
        error(item.value->getLoc(),
              "'" + key + "' must be " +
                  (key == "seed" ? "non-negative" : "positive") + ", got " +
                  std::to_string(*v));
        continue;
      }
      if (key == "batch") {
        for (const Input &in : inputs) {
          mlir::RankedTensorType type = typeOf(in.value);
          if (type.getRank() == 0 || type.getShape()[0] != *v) {
            auto diag = error(item.value->getLoc(),
                              "batch " + std::to_string(*v) +
                                  " does not match input '" + in.name +
                                  "' of type " + typeStr(type) +
                                  " (its first dimension is the batch)");
            diag.attachNote(in.loc) << "input declared here";
            break;
          }
        }
        batch = *v;
      } else if (key == "epochs") {
        epochs = *v;
      } else {
        seed = *v;
      }
      continue;
    }

    // The rest are calls: optimizer NAME(...), schedule NAME(...),
    // data INPUT = FORMAT(...).
    if (key == "schedule") {
      if (item.target) {
        error(item.target->loc, "'schedule' takes a value, not a name");
        continue;
      }
      if (mlir::Attribute s = elaborateSchedule(*item.value, frame))
        schedule = s;
      continue;
    }
    if (key != "optimizer" && !isData) {
      error(item.key.loc, "unknown training setting '" + key +
                              "'; expected optimizer, schedule, batch, "
                              "epochs, seed, data, test or metric");
      continue;
    }
    const CallExpr *call = llvm::dyn_cast<CallExpr>(item.value.get());
    const Expr *calleeExpr = call ? call->callee.get() : item.value.get();
    auto *name = llvm::dyn_cast<NameExpr>(calleeExpr);
    const Builtin *builtin = name ? lookupBuiltin(name->name) : nullptr;
    BuiltinKind wanted =
        isData ? BuiltinKind::DataFormat : BuiltinKind::Optimizer;
    if (!builtin || builtin->kind != wanted) {
      auto diag = error(calleeExpr->getLoc(),
                        isData ? "unknown data format" : "unknown optimizer");
      if (name)
        diag << " '" << name->name << "'";
      diag << (isData ? "; expected idx(\"path\"), npy(\"path\"), "
                        "csv(\"path\"), text(\"path\"), lines(\"path\"), "
                        "pairs(\"path\") or wav(\"path\")"
                      : "; expected " + optimizerNames());
      continue;
    }
    if (isData && !item.target) {
      error(item.key.loc, "'" + key + "' needs the input it feeds: '" + key +
                              " image = idx(\"...\")'");
      continue;
    }
    if (isData && !inputLocs.count(item.target->name)) {
      auto diag = error(item.target->loc, "'" + item.target->name +
                                              "' is not an input of model '" +
                                              modelName + "'");
      continue;
    }
    if (!isData && item.target) {
      error(item.target->loc, "'optimizer' takes a value, not a name");
      continue;
    }
    llvm::ArrayRef<StringRef> names = builtin->params;
    BoundArgs bound;
    bound.exprs.assign(names.size(), nullptr);
    bound.locs.assign(names.size(), item.value->getLoc());
    if (call) {
      std::optional<BoundArgs> bound1 =
          bindArgs(*call, builtin->name, names, builtin->optional, false);
      if (!bound1)
        continue;
      bound = std::move(*bound1);
    } else if (llvm::count(builtin->optional, false)) {
      error(item.value->getLoc(), "'" + builtin->name + "' needs arguments");
      continue;
    }
    Settings values;
    bool ok = true;
    for (auto [i, e] : llvm::enumerate(bound.exprs)) {
      if (!e)
        continue;
      Value v = eval(*e, frame);
      mlir::Attribute s = toAttr(b, v);
      if (!s) {
        if (!v.isPoison())
          error(e->getLoc(), "argument '" + names[i] + "' of '" +
                                 builtin->name +
                                 "' must be a number, bool "
                                 "or string, got " +
                                 describe(v));
        ok = false;
        continue;
      }
      values[names[i].str()] = s;
    }
    if (!ok)
      continue;

    auto number = [&](StringRef n) -> std::optional<double> {
      auto it = values.find(n.str());
      if (it == values.end())
        return std::nullopt;
      return toNumber(it->second);
    };
    auto argLoc = [&](StringRef n) {
      size_t i = llvm::find(names, n) - names.begin();
      return bound.locs[i];
    };

    if (isData) {
      auto path = llvm::dyn_cast<mlir::StringAttr>(values.at("path"));
      if (!path) {
        error(argLoc("path"), "the path must be a string");
        continue;
      }
      if (path.getValue().empty()) {
        error(argLoc("path"), "the path is empty");
        continue;
      }
      if (values.count("scale") && !number("scale")) {
        error(argLoc("scale"), "'scale' must be a number");
        continue;
      }
      if (values.count("column")) {
        std::optional<double> c = number("column");
        if (!c || *c < 0 || *c != std::floor(*c) || *c > 1e6) {
          error(argLoc("column"), "'column' must be a column number (0, 1, "
                                  "...)");
          continue;
        }
      }
      // {format, path, options...}
      llvm::SmallVector<mlir::NamedAttribute> fields{
          b.getNamedAttr("format", b.getStringAttr(builtin->name))};
      for (auto &[k, v] : values)
        fields.push_back(b.getNamedAttr(k, v));
      (key == "data" ? data : test)[item.target->name] =
          b.getDictionaryAttr(fields);
      continue;
    }

    // Optimizer: the contract's defaults, then every hyper-parameter given
    // checked against the contract's range.
    std::string opt = builtin->name.str();
    Settings optHyper = defaultHyper(b, *contract::parseOptimizer(opt));
    for (auto &[k, v] : values) {
      // The builtin table takes the optimizers' parameters from the contract.
      const contract::HyperRange *range = contract::findHyperRange(k);
      assert(range && "an optimizer parameter without a range");
      if (range->isBool) {
        if (!llvm::isa<mlir::BoolAttr>(v)) {
          error(argLoc(k), "'" + k + "' must be " + range->text);
          ok = false;
          continue;
        }
        optHyper[k] = v;
        continue;
      }
      std::optional<double> d = number(k);
      if (!d) {
        error(argLoc(k), "'" + k + "' must be a number");
        ok = false;
        continue;
      }
      if (!range->contains(*d)) {
        error(argLoc(k), llvm::formatv("bad hyper-parameter: '{0}' must be "
                                       "{1}, got {2}",
                                       k, range->text, floatStr(*d)));
        ok = false;
      }
      optHyper[k] = b.getF64FloatAttr(*d);
    }
    if (!ok)
      continue;
    optimizer = opt;
    hyper = std::move(optHyper);
  }

  auto dict = [&](const Settings &settings,
                  llvm::SmallVector<mlir::NamedAttribute> fields = {}) {
    for (const auto &[k, v] : settings)
      fields.push_back(b.getNamedAttr(k, v));
    return b.getDictionaryAttr(fields);
  };
  train = b.getDictionaryAttr({
      b.getNamedAttr(
          "optimizer",
          dict(hyper, {b.getNamedAttr("name", b.getStringAttr(optimizer))})),
      b.getNamedAttr("batch", b.getI64IntegerAttr(batch)),
      b.getNamedAttr("epochs", b.getI64IntegerAttr(epochs)),
      b.getNamedAttr("seed", b.getI64IntegerAttr(seed)),
      b.getNamedAttr("data", dict(data)),
      b.getNamedAttr("test", dict(test)),
  });
  if (!metrics.empty())
    (*moduleOp)->setAttr(contract::kMetricsAttr, b.getArrayAttr(metrics));
  if (schedule)
    train = b.getDictionaryAttr(
        llvm::to_vector(llvm::concat<const mlir::NamedAttribute>(
            train.getValue(),
            llvm::ArrayRef(b.getNamedAttr("schedule", schedule)))));
}

void Elaborator::elaborateMetric(
    const TrainItem &item, llvm::SmallVectorImpl<mlir::Attribute> &metrics) {
  // `metric psnr(repaired, image)`: a kind, an output, an input.
  const CallExpr *call = llvm::dyn_cast<CallExpr>(item.value.get());
  auto *callee = call ? llvm::dyn_cast<NameExpr>(call->callee.get()) : nullptr;
  std::optional<contract::MetricKind> kind =
      callee ? contract::parseMetricKind(callee->name) : std::nullopt;
  if (item.target || !kind || call->args.size() != 2 ||
      llvm::any_of(call->args, [](const Arg &a) {
        return !a.keyword.empty() || !llvm::isa<NameExpr>(a.value.get());
      })) {
    error(item.target ? item.target->loc : item.value->getLoc(),
          "expected 'metric KIND(OUTPUT, INPUT)' with KIND accuracy or psnr, "
          "e.g. 'metric psnr(repaired, image)'");
    return;
  }
  auto nameOf = [&](unsigned i) {
    return llvm::cast<NameExpr>(call->args[i].value.get())->name;
  };
  std::string outName = nameOf(0), inName = nameOf(1);
  auto out = llvm::find_if(outputs,
                           [&](const Output &o) { return o.name == outName; });
  auto in =
      llvm::find_if(inputs, [&](const Input &i) { return i.name == inName; });
  if (out == outputs.end() || in == inputs.end()) {
    bool noOut = out == outputs.end();
    error(call->args[noOut ? 0 : 1].value->getLoc(),
          "'" + (noOut ? outName : inName) + "' is not " +
              (noOut ? "an output" : "an input") + " of model '" + modelName +
              "'; a metric compares an output with an input");
    return;
  }
  mlir::Type outType = out->value.getType(), inType = in->value.getType();
  bool psnr = *kind == contract::MetricKind::Psnr;
  if (typeOf(out->value).getNumElements() !=
          typeOf(in->value).getNumElements() ||
      (psnr && (!typeOf(out->value).getElementType().isF32() ||
                !typeOf(in->value).getElementType().isF32()))) {
    error(item.value->getLoc(),
          "metric " + std::string(contract::info(*kind).name) +
              " compares output '" + outName + "' (" + typeStr(outType) +
              ") with input '" + inName + "' (" + typeStr(inType) + ")" +
              (psnr ? "; psnr needs f32 images of the same size"
                    : "; they must have the same size"));
    return;
  }
  mlir::Builder b(ctx);
  mlir::Attribute metric =
      b.getStrArrayAttr({contract::info(*kind).name, outName, inName});
  if (llvm::is_contained(metrics, metric)) {
    error(item.value->getLoc(), "this metric is declared twice");
    return;
  }
  metrics.push_back(metric);
}

mlir::Attribute Elaborator::elaborateSchedule(const Expr &value, Frame &frame) {
  // Schedules are names of the train block only (not builtins: `step` and
  // `linear` stay free for variables).
  const CallExpr *call = llvm::dyn_cast<CallExpr>(&value);
  const Expr *calleeExpr = call ? call->callee.get() : &value;
  auto *name = llvm::dyn_cast<NameExpr>(calleeExpr);
  std::optional<contract::ScheduleKind> kind;
  if (name)
    kind = contract::parseSchedule(name->name);
  if (!kind || *kind == contract::ScheduleKind::Constant) {
    auto diag = error(calleeExpr->getLoc(), "unknown learning-rate schedule");
    if (name)
      diag << " '" << name->name << "'";
    diag << "; expected cosine(warmup, min_lr), linear(warmup, min_lr) or "
            "step(warmup, every, gamma) (without a schedule the rate is "
            "constant)";
    return {};
  }
  const contract::ScheduleInfo &info = contract::info(*kind);
  llvm::SmallVector<StringRef> names;
  for (unsigned i = 0; i < info.numParams; ++i)
    names.push_back(info.params[i].name);
  llvm::SmallVector<bool> optional(names.size(), true);
  BoundArgs bound;
  bound.exprs.assign(names.size(), nullptr);
  if (call) {
    std::optional<BoundArgs> b1 =
        bindArgs(*call, info.name, names, optional, false);
    if (!b1)
      return {};
    bound = std::move(*b1);
  }
  mlir::OpBuilder &b = builder;
  llvm::SmallVector<mlir::NamedAttribute> fields{
      b.getNamedAttr("name", b.getStringAttr(info.name))};
  bool ok = true;
  for (unsigned i = 0; i < info.numParams; ++i) {
    StringRef param = names[i];
    double v = info.params[i].value;
    if (const Expr *e = bound.exprs[i]) {
      std::optional<double> d = evalNumber(
          *e, frame, "argument '" + param.str() + "' of '" + info.name + "'");
      if (!d) {
        ok = false;
        continue;
      }
      const contract::HyperRange *range = contract::findScheduleRange(param);
      assert(range && "a schedule parameter without a range");
      bool whole = !contract::scheduleParamIsCount(param) ||
                   (std::isfinite(*d) && *d == std::floor(*d));
      if (!range->contains(*d) || !whole) {
        error(e->getLoc(),
              llvm::formatv("'{0}' of '{1}' must be {2}, got {3}", param,
                            info.name, range->text, floatStr(*d)));
        ok = false;
        continue;
      }
      v = *d;
    }
    fields.push_back(b.getNamedAttr(param, b.getF64FloatAttr(v)));
  }
  if (!ok)
    return {};
  return b.getDictionaryAttr(fields);
}
