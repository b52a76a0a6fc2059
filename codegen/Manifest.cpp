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

/// The names of the roles in `mask` (a Contract.h role bit set).
std::string roleNames(unsigned mask) {
  std::string names;
  for (const contract::RoleInfo &r : contract::kRoles)
    if (mask & contract::roleBit(r.role))
      names += (names.empty() ? "" : ", ") + std::string(r.attr);
  return names;
}

/// The single role attribute of an argument or result, checked against the
/// roles `allowed` for it (a Contract.h role bit set).
FailureOr<std::pair<Role, StringRef>>
getRole(Location loc, DictionaryAttr attrs, StringRef what, unsigned allowed) {
  std::optional<std::pair<Role, StringRef>> role;
  for (const contract::RoleInfo &info : contract::kRoles) {
    Attribute attr = attrs ? attrs.get(info.attr) : Attribute();
    if (!attr)
      continue;
    if (role)
      return emitError(loc)
             << what << " has two roles: " << contract::info(role->first).attr
             << " and " << info.attr;
    StringRef name;
    if (auto s = dyn_cast<StringAttr>(attr))
      name = s.getValue();
    if (info.named && (!isa<StringAttr>(attr) || name.empty()))
      return emitError(loc)
             << what << ": " << info.attr << " must be a non-empty string";
    if (info.named && name.find_first_of(" \t\n") != StringRef::npos)
      return emitError(loc)
             << what << ": the name '" << name << "' contains white space";
    role = {info.role, name};
  }
  if (!role)
    return emitError(loc) << what << " has no ABI role (one of "
                          << roleNames(allowed) << ")";
  if (!(allowed & contract::roleBit(role->first)))
    return emitError(loc) << what << ": " << contract::info(role->first).attr
                          << " is not allowed here (allowed: "
                          << roleNames(allowed) << ")";
  return *role;
}

} // namespace

FailureOr<AbiLayout> computeAbiLayout(ModuleOp module) {
  AbiLayout layout;
  MLIRContext *ctx = module.getContext();
  layout.lossType = RankedTensorType::get({}, Float32Type::get(ctx));
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

  for (auto func : module.getOps<func::FuncOp>()) {
    Attribute attr = func->getAttr(contract::kEntryAttr);
    std::optional<EntryKind> kind = getEntryKind(func);
    if (!kind && !attr)
      continue;
    if (!kind) {
      std::string kinds;
      for (const contract::EntryKindInfo &k : contract::kEntryKinds)
        kinds += (kinds.empty() ? "" : ", ") + std::string(k.name);
      return func.emitError()
             << "@" << func.getName() << ": " << contract::kEntryAttr
             << " must be one of " << kinds << ", got " << attr;
    }
    if (func.isExternal())
      return func.emitError()
             << "entry function @" << func.getName() << " has no body";
    if (func.getName().find_first_of(" \t\n") != StringRef::npos)
      return func.emitError() << "entry names may not contain white space";
    layout.entries.push_back({func.getName().str(), *kind, func, {}});
  }

  NamedBuffers states(layout.states), inputs(layout.inputs),
      outputs(layout.outputs), carries(layout.carries), terms(layout.terms);
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
  // "returned"), and a parameter's type or a named buffer's consistent one.
  auto checkBuffer = [&](Location loc, StringRef what, Type t,
                         DictionaryAttr attrs, unsigned allowed,
                         llvm::StringSet<> &seen,
                         StringRef verb) -> FailureOr<AbiBuffer> {
    auto type = dyn_cast<RankedTensorType>(t);
    if (!type || !type.hasStaticShape())
      return emitError(loc) << what << " is not a statically shaped tensor";
    FailureOr<std::pair<Role, StringRef>> role =
        getRole(loc, attrs, what, allowed);
    if (failed(role))
      return failure();
    auto [kind, name] = *role;
    StringRef attrName = contract::info(kind).attr;
    if (!seen.insert((attrName + ":" + name).str()).second)
      return emitError(loc)
             << what << ": " << attrName << (name.empty() ? "" : " '") << name
             << (name.empty() ? "" : "'") << " is " << verb << " twice";
    LogicalResult ok = success();
    switch (kind) {
    case Role::Param:
      ok = checkParam(loc, what, name, type);
      break;
    case Role::State:
      ok = states.add(loc, "state", name, type);
      break;
    case Role::Input:
      ok = inputs.add(loc, "input", name, type);
      break;
    case Role::Output:
      ok = outputs.add(loc, "output", name, type);
      break;
    case Role::Carry:
      ok = carries.add(loc, "carry", name, type);
      break;
    case Role::Term:
      if (type.getRank() != 0 || !isa<FloatType>(type.getElementType()))
        return emitError(loc) << what << ": loss term '" << name
                              << "' must be a float scalar, got " << type;
      ok = terms.add(loc, "term", name, type);
      break;
    case Role::Hyper: {
      auto expected =
          RankedTensorType::get({contract::kHyperCount}, Float32Type::get(ctx));
      if (type != expected)
        return emitError(loc) << what << ": kiln.hyper must be " << expected
                              << ", got " << type;
      break;
    }
    case Role::Loss:
      if (type.getRank() != 0 || !isa<FloatType>(type.getElementType()))
        return emitError(loc)
               << what << ": the loss must be a float scalar, got " << type;
      break;
    }
    if (failed(ok))
      return failure();
    return AbiBuffer{kind, name.str(), type};
  };

  bool haveLoss = false;
  for (AbiEntry &entry : layout.entries) {
    func::FuncOp func = entry.func;
    const contract::EntryKindInfo &kind = contract::info(entry.kind);
    // The role and name of each argument, then of each result.
    SmallVector<AbiBuffer> args, results;
    llvm::StringSet<> seenArgs;
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      std::string what =
          llvm::formatv("@{0} argument #{1}", entry.name, i).str();
      FailureOr<AbiBuffer> buffer = checkBuffer(
          func.getArgument(i).getLoc(), what, func.getArgumentTypes()[i],
          func.getArgAttrDict(i), kind.argRoles, seenArgs, "passed");
      if (failed(buffer))
        return failure();
      args.push_back(std::move(*buffer));
    }
    llvm::StringSet<> seenResults;
    for (unsigned i = 0; i < func.getNumResults(); ++i) {
      std::string what = llvm::formatv("@{0} result #{1}", entry.name, i).str();
      FailureOr<AbiBuffer> buffer = checkBuffer(
          func.getLoc(), what, func.getResultTypes()[i],
          func.getResultAttrDict(i), kind.resultRoles, seenResults, "returned");
      if (failed(buffer))
        return failure();
      if (buffer->role == Role::Loss) {
        if (haveLoss && buffer->type != layout.lossType)
          return func.emitError()
                 << what << ": the loss is " << buffer->type << " here but "
                 << layout.lossType << " in another entry";
        layout.lossType = buffer->type;
        haveLoss = true;
      }
      results.push_back(std::move(*buffer));
    }
    // ABI order: params and state in module order (every entry takes every
    // parameter, and the train entry all state), then the rest by role, each
    // in the function's order. Params, state and carries returned updated go
    // back into their own buffers.
    for (const AbiParam &p : layout.params)
      entry.buffers.push_back({Role::Param, p.name, p.type});
    if (entry.kind == EntryKind::Train)
      for (const AbiTensor &s : layout.states)
        entry.buffers.push_back({Role::State, s.name, s.type});
    for (Role role : {Role::Input, Role::Carry, Role::Hyper, Role::Loss,
                      Role::Term, Role::Output})
      for (ArrayRef<AbiBuffer> group : {ArrayRef(args), ArrayRef(results)})
        for (const AbiBuffer &b : group)
          // A carry, read and returned, has one buffer.
          if (b.role == role &&
              llvm::none_of(entry.buffers, [&](const AbiBuffer &s) {
                return s.role == b.role && s.name == b.name;
              }))
            entry.buffers.push_back(b);
    auto slotOf = [&](const AbiBuffer &b) {
      return unsigned(llvm::find_if(entry.buffers,
                                    [&](const AbiBuffer &s) {
                                      return s.role == b.role &&
                                             s.name == b.name;
                                    }) -
                      entry.buffers.begin());
    };
    for (const AbiBuffer &b : args)
      entry.argSlots.push_back(slotOf(b));
    for (const AbiBuffer &b : results)
      entry.resultSlots.push_back(slotOf(b));
    // What the runtime relies on to drive each kind.
    auto has = [&](Role role) {
      return llvm::any_of(entry.buffers,
                          [&](const AbiBuffer &b) { return b.role == role; });
    };
    if (entry.kind == EntryKind::Train && !has(Role::Hyper))
      return func.emitError() << "train entry @" << entry.name
                              << " takes no kiln.hyper argument";
    if ((entry.kind == EntryKind::Train || entry.kind == EntryKind::Eval) &&
        !has(Role::Loss))
      return func.emitError() << kind.name << " entry @" << entry.name
                              << " returns no kiln.loss";
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
    os << contract::record::kData << " " << split << " "
       << source.getName().getValue() << " "
       << (format ? field(format.getValue()) : std::string("unknown")) << " "
       << (path ? field(path.getValue()) : std::string("-"));
    settings(os, fields, {"format", "path"});
    os << "\n";
  }
}

} // namespace

std::string renderManifest(ModuleOp module, const AbiLayout &layout) {
  namespace record = contract::record;
  std::string text;
  llvm::raw_string_ostream os(text);
  os << record::kHeader << " " << contract::kManifestVersion << "\n";
  auto model = module->getAttrOfType<StringAttr>(KilnDialect::kModelAttrName);
  os << record::kModel << " "
     << (model ? field(model.getValue()) : std::string("model")) << "\n";
  for (const AbiParam &p : layout.params) {
    os << record::kParam << " " << p.name << " "
       << dtype(p.type.getElementType()) << " " << shape(p.type) << " "
       << stringifyInitKind(p.init);
    for (double a : p.initArgs)
      os << " " << number(a);
    os << "\n";
  }
  for (const AbiTensor &s : layout.states)
    os << record::kState << " " << s.name << " "
       << dtype(s.type.getElementType()) << " " << shape(s.type) << "\n";
  for (const AbiTensor &in : layout.inputs)
    os << record::kInput << " " << in.name << " "
       << dtype(in.type.getElementType()) << " " << shape(in.type) << "\n";
  for (const AbiTensor &out : layout.outputs)
    os << record::kOutput << " " << out.name << " "
       << dtype(out.type.getElementType()) << " " << shape(out.type) << "\n";
  for (const AbiTensor &c : layout.carries)
    os << record::kCarry << " " << c.name << " "
       << dtype(c.type.getElementType()) << " " << shape(c.type) << "\n";
  for (const AbiTensor &t : layout.terms)
    os << record::kTerm << " " << t.name << " "
       << dtype(t.type.getElementType()) << " " << shape(t.type) << "\n";

  if (auto metrics = module->getAttrOfType<ArrayAttr>(contract::kMetricsAttr)) {
    for (Attribute m : metrics) {
      auto fields = dyn_cast<ArrayAttr>(m);
      if (!fields || fields.empty())
        continue;
      os << record::kMetric;
      for (Attribute f : fields)
        os << " " << value(f);
      os << "\n";
    }
  }

  if (auto context =
          module->getAttrOfType<IntegerAttr>(contract::kGenerateContextAttr))
    os << record::kContext << " " << context.getValue().getSExtValue() << "\n";

  auto ignoredLabels =
      module->getAttrOfType<DictionaryAttr>(contract::kIgnoredLabelAttr);
  if (auto labels =
          module->getAttrOfType<DictionaryAttr>(contract::kLabelsAttr))
    for (NamedAttribute l : labels)
      if (auto classes = dyn_cast<IntegerAttr>(l.getValue())) {
        os << record::kLabels << " " << l.getName().getValue() << " "
           << classes.getValue().getSExtValue();
        if (auto ignore = ignoredLabels ? ignoredLabels.getAs<IntegerAttr>(
                                              l.getName().getValue())
                                        : IntegerAttr())
          os << " ignore=" << ignore.getValue().getSExtValue();
        if (auto targets =
                module->getAttrOfType<ArrayAttr>(contract::kTargetLabelsAttr))
          if (llvm::is_contained(targets, l.getName()))
            os << " target";
        os << "\n";
      }

  auto train =
      module->getAttrOfType<DictionaryAttr>(KilnDialect::kTrainAttrName);
  // The optimizer kiln-autodiff built (every default filled in), else the one
  // the source named.
  DictionaryAttr opt;
  for (const AbiEntry &entry : layout.entries)
    if (auto o =
            entry.func->getAttrOfType<DictionaryAttr>(contract::kOptimizerAttr))
      opt = o;
  if (!opt && train)
    opt = train.getAs<DictionaryAttr>("optimizer");
  if (opt) {
    auto name = opt.getAs<StringAttr>("name");
    os << record::kOptimizer << " "
       << (name ? field(name.getValue())
                : contract::info(contract::kDefaultOptimizer).name);
    settings(os, opt, {"name"});
    os << "\n";
  }
  for (const AbiEntry &entry : layout.entries)
    if (entry.func->hasAttr(contract::kDataParallelAttr))
      os << record::kParallel << " data\n";
  if (train) {
    os << record::kTrain;
    for (StringRef key : {"batch", "epochs", "seed"})
      if (Attribute a = train.get(key))
        os << " " << key << "=" << value(a);
    settings(os, train, {"batch", "epochs", "seed", "optimizer"});
    os << "\n";
    if (auto schedule = train.getAs<DictionaryAttr>("schedule")) {
      auto name = schedule.getAs<StringAttr>("name");
      os << record::kSchedule << " " << field(name ? name.getValue() : "");
      settings(os, schedule, {"name"});
      os << "\n";
    }
    dataRecords(os, "train", train.get("data"));
    dataRecords(os, "test", train.get("test"));
  }
  // The entry table: one `entry NAME KIND` record per entry, followed by its
  // buffers in ABI order.
  for (const AbiEntry &entry : layout.entries) {
    os << record::kEntry << " " << entry.name << " "
       << contract::info(entry.kind).name << "\n";
    for (const AbiBuffer &b : entry.buffers) {
      os << record::kArg << " " << contract::info(b.role).name;
      if (!b.name.empty())
        os << " " << b.name;
      os << "\n";
    }
  }
  return text;
}

} // namespace kiln
