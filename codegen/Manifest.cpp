//===- Manifest.cpp - The buffer layout and manifest of the C ABI ---------===//

#include "codegen/Manifest.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>

using namespace mlir;

namespace kiln {

StringRef getEntryName(EntryKind kind) {
  switch (kind) {
  case EntryKind::TrainStep:
    return "train_step";
  case EntryKind::EvalStep:
    return "eval_step";
  case EntryKind::Predict:
    return "predict";
  }
  llvm_unreachable("unknown entry kind");
}

namespace {

/// Collects named buffers in first-seen order and checks that a name always
/// has the same type.
class NamedBuffers {
public:
  explicit NamedBuffers(SmallVectorImpl<AbiTensor> &list) : list(list) {}

  LogicalResult add(Location loc, StringRef what, StringRef name,
                    RankedTensorType type) {
    auto it = index.find(name);
    if (it == index.end()) {
      index[name] = list.size();
      list.push_back({name.str(), type});
      return success();
    }
    if (list[it->second].type != type)
      return emitError(loc)
             << what << " '" << name << "' has type " << type << " here but "
             << list[it->second].type << " elsewhere";
    return success();
  }

private:
  SmallVectorImpl<AbiTensor> &list;
  llvm::StringMap<size_t> index;
};

/// The single role attribute of an argument or result, checked against the
/// roles `allowed` for it.
struct Role {
  StringRef kind; // "kiln.param", "kiln.state", ...
  StringRef name; // empty for kiln.hyper and kiln.loss
};

FailureOr<Role> getRole(Location loc, DictionaryAttr attrs, StringRef what,
                        ArrayRef<StringRef> allowed) {
  std::optional<Role> role;
  for (StringRef kind : {"kiln.param", "kiln.state", "kiln.input", "kiln.hyper",
                         "kiln.loss", "kiln.output"}) {
    Attribute attr = attrs ? attrs.get(kind) : Attribute();
    if (!attr)
      continue;
    if (role)
      return emitError(loc)
             << what << " has two roles: " << role->kind << " and " << kind;
    Role r{kind, {}};
    if (auto s = dyn_cast<StringAttr>(attr))
      r.name = s.getValue();
    bool named = kind != "kiln.hyper" && kind != "kiln.loss";
    if (named && (!isa<StringAttr>(attr) || r.name.empty()))
      return emitError(loc)
             << what << ": " << kind << " must be a non-empty string";
    if (named && r.name.find_first_of(" \t\n") != StringRef::npos)
      return emitError(loc)
             << what << ": the name '" << r.name << "' contains white space";
    role = r;
  }
  if (!role)
    return emitError(loc) << what << " has no ABI role (one of "
                          << llvm::join(allowed, ", ") << ")";
  if (!llvm::is_contained(allowed, role->kind))
    return emitError(loc) << what << ": " << role->kind
                          << " is not allowed here (allowed: "
                          << llvm::join(allowed, ", ") << ")";
  return *role;
}

} // namespace

FailureOr<AbiLayout> computeAbiLayout(ModuleOp module) {
  AbiLayout layout;
  layout.lossType =
      RankedTensorType::get({}, Float32Type::get(module.getContext()));
  llvm::StringMap<size_t> paramIndex;
  for (ParamOp p : module.getOps<ParamOp>()) {
    paramIndex[p.getSymName()] = layout.params.size();
    AbiParam param;
    param.name = p.getSymName().str();
    param.type = p.getTensorType();
    param.init = p.getInit();
    param.initArgs.assign(p.getInitArgs().begin(), p.getInitArgs().end());
    layout.params.push_back(std::move(param));
  }

  for (EntryKind kind :
       {EntryKind::TrainStep, EntryKind::EvalStep, EntryKind::Predict})
    if (auto func = module.lookupSymbol<func::FuncOp>(getEntryName(kind)))
      layout.entries.push_back({kind, func});

  NamedBuffers states(layout.states), inputs(layout.inputs),
      outputs(layout.outputs);
  // An argument or result named after a parameter must have its type.
  auto checkParam = [&](Location loc, StringRef what, StringRef name,
                        RankedTensorType type) -> LogicalResult {
    auto it = paramIndex.find(name);
    if (it == paramIndex.end())
      return emitError(loc)
             << what << ": no kiln.param op declares '" << name << "'";
    if (layout.params[it->second].type != type)
      return emitError(loc)
             << what << " has type " << type << " but parameter '" << name
             << "' is " << layout.params[it->second].type;
    return success();
  };
  // What arguments and results share: a statically shaped tensor type, one
  // allowed role, a name used once per direction (`verb`: "passed" or
  // "returned"), and a parameter's type or a state's consistent one.
  auto checkBuffer =
      [&](Location loc, StringRef what, Type t, DictionaryAttr attrs,
          ArrayRef<StringRef> allowed, llvm::StringSet<> &seen,
          StringRef verb) -> FailureOr<std::pair<Role, RankedTensorType>> {
    auto type = dyn_cast<RankedTensorType>(t);
    if (!type || !type.hasStaticShape())
      return emitError(loc) << what << " is not a statically shaped tensor";
    FailureOr<Role> role = getRole(loc, attrs, what, allowed);
    if (failed(role))
      return failure();
    if (!role->name.empty() &&
        !seen.insert((role->kind + ":" + role->name).str()).second)
      return emitError(loc) << what << ": " << role->kind << " '" << role->name
                            << "' is " << verb << " twice";
    if (role->kind == "kiln.param" &&
        failed(checkParam(loc, what, role->name, type)))
      return failure();
    if (role->kind == "kiln.state" &&
        failed(states.add(loc, "state", role->name, type)))
      return failure();
    return std::make_pair(*role, type);
  };
  bool haveLoss = false;
  for (auto [kind, func] : layout.entries) {
    if (func.isExternal())
      return func.emitError()
             << "entry function @" << getEntryName(kind) << " has no body";
    bool train = kind == EntryKind::TrainStep;
    SmallVector<StringRef> argRoles = {"kiln.param", "kiln.input"};
    SmallVector<StringRef> resultRoles;
    if (train) {
      argRoles.append({"kiln.state", "kiln.hyper"});
      resultRoles = {"kiln.param", "kiln.state", "kiln.loss"};
    } else if (kind == EntryKind::EvalStep) {
      resultRoles = {"kiln.loss", "kiln.output"};
    } else {
      resultRoles = {"kiln.output"};
    }

    llvm::StringSet<> seenArgs;
    unsigned numHyper = 0;
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      Location loc = func.getArgument(i).getLoc();
      std::string what =
          llvm::formatv("@{0} argument #{1}", getEntryName(kind), i).str();
      FailureOr<std::pair<Role, RankedTensorType>> checked =
          checkBuffer(loc, what, func.getArgumentTypes()[i],
                      func.getArgAttrDict(i), argRoles, seenArgs, "passed");
      if (failed(checked))
        return failure();
      auto [role, type] = *checked;
      if (role.kind == "kiln.input") {
        if (failed(inputs.add(loc, "input", role.name, type)))
          return failure();
        if (kind == EntryKind::Predict)
          layout.predictInputs.push_back(role.name.str());
      } else if (role.kind == "kiln.hyper") {
        auto expected =
            RankedTensorType::get({4}, Float32Type::get(module.getContext()));
        if (type != expected)
          return emitError(loc) << what << ": kiln.hyper must be " << expected
                                << ", got " << type;
        if (++numHyper > 1)
          return emitError(loc) << what << ": a second kiln.hyper argument";
      }
    }

    llvm::StringSet<> seenResults;
    unsigned numLoss = 0;
    for (unsigned i = 0; i < func.getNumResults(); ++i) {
      Location loc = func.getLoc();
      std::string what =
          llvm::formatv("@{0} result #{1}", getEntryName(kind), i).str();
      FailureOr<std::pair<Role, RankedTensorType>> checked = checkBuffer(
          loc, what, func.getResultTypes()[i], func.getResultAttrDict(i),
          resultRoles, seenResults, "returned");
      if (failed(checked))
        return failure();
      auto [role, type] = *checked;
      if (role.kind == "kiln.output") {
        if (failed(outputs.add(loc, "output", role.name, type)))
          return failure();
      } else if (role.kind == "kiln.loss") {
        if (type.getRank() != 0 || !isa<FloatType>(type.getElementType()))
          return emitError(loc) << what << ": the loss must be a float "
                                << "scalar, got " << type;
        if (++numLoss > 1)
          return emitError(loc) << what << ": a second kiln.loss result";
        if (haveLoss && type != layout.lossType)
          return emitError(loc)
                 << what << ": the loss is " << type << " here but "
                 << layout.lossType << " in another entry";
        layout.lossType = type;
        haveLoss = true;
      }
    }
  }
  return layout;
}

//===----------------------------------------------------------------------===//
// Rendering
//===----------------------------------------------------------------------===//

namespace {

/// `f32`, `f64` or `i32`.
std::string dtype(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return s;
}

/// `64x784`, or `scalar` for rank 0.
std::string shape(RankedTensorType type) {
  if (type.getRank() == 0)
    return "scalar";
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleave(type.getShape(), os, "x");
  return s;
}

/// The shortest decimal form of `v` that reads back as the same double.
std::string number(double v) {
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (strtod(buf, nullptr) == v)
      break;
  }
  return buf;
}

/// A string field: white space and '%' percent-encoded, so that it stays one
/// field.
std::string field(StringRef s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      char buf[4];
      snprintf(buf, sizeof(buf), "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else
      out += c;
  }
  return out;
}

/// The value of a KEY=VALUE setting.
std::string value(Attribute attr) {
  if (auto f = dyn_cast<FloatAttr>(attr))
    return number(f.getValueAsDouble());
  if (auto b = dyn_cast<BoolAttr>(attr))
    return b.getValue() ? "true" : "false";
  if (auto i = dyn_cast<IntegerAttr>(attr))
    return std::to_string(i.getValue().getSExtValue());
  if (auto s = dyn_cast<StringAttr>(attr))
    return field(s.getValue());
  if (isa<UnitAttr>(attr))
    return "true";
  std::string s;
  llvm::raw_string_ostream os(s);
  attr.print(os);
  return field(s);
}

void settings(raw_ostream &os, DictionaryAttr dict,
              ArrayRef<StringRef> skip = {}) {
  for (NamedAttribute a : dict) {
    if (llvm::is_contained(skip, a.getName().getValue()) ||
        isa<DictionaryAttr, ArrayAttr>(a.getValue()))
      continue;
    os << " " << a.getName().getValue() << "=" << value(a.getValue());
  }
}

void dataRecords(raw_ostream &os, StringRef split, Attribute attr) {
  auto sources = dyn_cast_or_null<DictionaryAttr>(attr);
  if (!sources)
    return;
  for (NamedAttribute source : sources) {
    auto fields = dyn_cast<DictionaryAttr>(source.getValue());
    if (!fields)
      continue;
    auto format = fields.getAs<StringAttr>("format");
    auto path = fields.getAs<StringAttr>("path");
    os << "data " << split << " " << source.getName().getValue() << " "
       << (format ? field(format.getValue()) : std::string("unknown")) << " "
       << (path ? field(path.getValue()) : std::string("-"));
    settings(os, fields, {"format", "path"});
    os << "\n";
  }
}

} // namespace

std::string renderManifest(ModuleOp module, const AbiLayout &layout) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "kiln-manifest 1\n";
  auto model = module->getAttrOfType<StringAttr>(KilnDialect::kModelAttrName);
  os << "model " << (model ? field(model.getValue()) : std::string("model"))
     << "\n";
  for (const AbiParam &p : layout.params) {
    os << "param " << p.name << " " << dtype(p.type.getElementType()) << " "
       << shape(p.type) << " " << stringifyInitKind(p.init);
    for (double a : p.initArgs)
      os << " " << number(a);
    os << "\n";
  }
  for (const AbiTensor &s : layout.states)
    os << "state " << s.name << " " << dtype(s.type.getElementType()) << " "
       << shape(s.type) << "\n";
  for (const AbiTensor &in : layout.inputs)
    os << "input " << in.name << " " << dtype(in.type.getElementType()) << " "
       << shape(in.type) << "\n";
  for (const std::string &name : layout.predictInputs)
    os << "predict-input " << name << "\n";
  for (const AbiTensor &out : layout.outputs)
    os << "output " << out.name << " " << dtype(out.type.getElementType())
       << " " << shape(out.type) << "\n";

  if (auto metrics = module->getAttrOfType<ArrayAttr>("kiln.metrics")) {
    for (Attribute m : metrics) {
      auto fields = dyn_cast<ArrayAttr>(m);
      if (!fields || fields.empty())
        continue;
      os << "metric";
      for (Attribute f : fields)
        os << " " << value(f);
      os << "\n";
    }
  }

  if (auto labels = module->getAttrOfType<DictionaryAttr>("kiln.labels"))
    for (NamedAttribute l : labels)
      if (auto classes = dyn_cast<IntegerAttr>(l.getValue()))
        os << "labels " << l.getName().getValue() << " "
           << classes.getValue().getSExtValue() << "\n";

  if (auto train =
          module->getAttrOfType<DictionaryAttr>(KilnDialect::kTrainAttrName)) {
    if (auto opt = train.getAs<DictionaryAttr>("optimizer")) {
      auto name = opt.getAs<StringAttr>("name");
      os << "optimizer " << (name ? field(name.getValue()) : "sgd");
      settings(os, opt, {"name"});
      os << "\n";
    }
    os << "train";
    for (StringRef key : {"batch", "epochs", "seed"})
      if (Attribute a = train.get(key))
        os << " " << key << "=" << value(a);
    settings(os, train, {"batch", "epochs", "seed"});
    os << "\n";
    dataRecords(os, "train", train.get("data"));
    dataRecords(os, "test", train.get("test"));
  }
  for (auto [kind, func] : layout.entries)
    os << "entry " << getEntryName(kind) << "\n";
  return text;
}

} // namespace kiln
