//===- Autodiff.cpp - Reverse-mode autodiff and the training step ---------===//
//
// `differentiate` seeds the loss with 1 and runs the reverse-mode driver
// (`backpropagate`, ir/GradientRules.cpp: it walks the ops backwards, asks each
// op's gradient rule for its operands' gradients, reduces broadcast gradients
// and accumulates fan-out). The kiln-autodiff pass uses it to build
// @train_step: forward, backward, clipping, optimizer.
//
//===----------------------------------------------------------------------===//

#include "passes/Autodiff.h"
#include "passes/Forward.h"
#include "passes/Passes.h"

#include "ir/Entry.h"
#include "ir/GradientRules.h"
#include "ir/KilnOps.h"

namespace kiln {
#define GEN_PASS_DEF_KILNAUTODIFF
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

FailureOr<SmallVector<Value>> kiln::differentiate(OpBuilder &b, Value loss,
                                                  ArrayRef<Value> wrt,
                                                  uint64_t *numGradientOps) {
  auto lossType = dyn_cast<RankedTensorType>(loss.getType());
  if (!lossType || lossType.getRank() != 0 ||
      !isa<FloatType>(lossType.getElementType()))
    return emitError(loss.getLoc(), "the loss must be a scalar float tensor");
  Block *block = b.getInsertionBlock();

  // The forward ops: everything before the insertion point.
  SmallVector<Operation *> forward;
  for (Operation &op : llvm::make_range(block->begin(), b.getInsertionPoint()))
    forward.push_back(&op);

  size_t sizeBefore = block->getOperations().size();
  llvm::DenseMap<Value, Value> seeds;
  seeds[loss] = buildScalar(b, loss.getLoc(), 1.0, lossType.getElementType());
  FailureOr<SmallVector<Value>> grads = backpropagate(b, forward, seeds, wrt);
  if (failed(grads))
    return failure();
  for (auto [w, g] : llvm::zip(wrt, *grads))
    if (!g)
      g = zerosLike(b, w.getLoc(), w);
  if (numGradientOps)
    *numGradientOps += block->getOperations().size() - sizeBefore;
  return grads;
}

namespace {

/// The optimizer of the module's `kiln.train` attribute, with every
/// hyper-parameter its table entry (runtime/Contract.h) lists: the source's
/// value or the default.
struct OptimizerConfig {
  contract::OptimizerKind kind = contract::kDefaultOptimizer;
  llvm::StringMap<double> hyper;

  static FailureOr<OptimizerConfig> fromModule(ModuleOp module) {
    OptimizerConfig config;
    auto train =
        module->getAttrOfType<DictionaryAttr>(KilnDialect::kTrainAttrName);
    DictionaryAttr opt =
        train ? train.getAs<DictionaryAttr>("optimizer") : DictionaryAttr();
    if (opt)
      if (auto name = opt.getAs<StringAttr>("name")) {
        std::optional<contract::OptimizerKind> kind =
            contract::parseOptimizer(name.getValue().str());
        if (!kind)
          return module.emitError("kiln-autodiff: unknown optimizer '")
                 << name.getValue() << "'";
        config.kind = *kind;
      }
    const contract::OptimizerInfo &info = contract::info(config.kind);
    for (unsigned i = 0; i < info.numHyper; ++i)
      config.hyper[info.hyper[i].name] = info.hyper[i].value;
    if (!opt)
      return config;
    for (NamedAttribute a : opt) {
      if (a.getName() == "name")
        continue;
      std::optional<double> v;
      if (auto f = dyn_cast<FloatAttr>(a.getValue()))
        v = f.getValueAsDouble();
      else if (auto bo = dyn_cast<BoolAttr>(a.getValue()))
        v = bo.getValue();
      else if (auto i = dyn_cast<IntegerAttr>(a.getValue()))
        v = static_cast<double>(i.getInt());
      std::string key = a.getName().str();
      const contract::HyperRange *range = contract::findHyperRange(key);
      if (!config.hyper.count(key) || !range)
        return module.emitError("kiln-autodiff: optimizer '")
               << info.name << "' has no hyper-parameter '" << key << "'";
      if (!v || !range->contains(*v))
        return module.emitError("kiln-autodiff: hyper-parameter '")
               << key << "' must be " << range->text << ", got "
               << a.getValue();
      config.hyper[key] = *v;
    }
    return config;
  }

  /// {name, hyper...}: what the manifest records as the optimizer.
  DictionaryAttr toAttr(Builder &b) const {
    const contract::OptimizerInfo &info = contract::info(kind);
    SmallVector<NamedAttribute> fields{
        b.getNamedAttr("name", b.getStringAttr(info.name))};
    for (unsigned i = 0; i < info.numHyper; ++i) {
      StringRef key = info.hyper[i].name;
      double v = hyper.lookup(key);
      bool isBool = contract::findHyperRange(key.str())->isBool;
      fields.push_back(b.getNamedAttr(key, isBool ? Attribute(b.getBoolAttr(v))
                                                  : b.getF64FloatAttr(v)));
    }
    return b.getDictionaryAttr(fields);
  }
};

/// Replaces every value VALUES point to by its mean over the processes of a
/// data-parallel job: the values of each element type are flattened,
/// concatenated and averaged by one kiln.all_reduce (one message per step
/// instead of one per tensor), then cut back into their shapes.
void averageOverProcesses(OpBuilder &b, Location loc,
                          ArrayRef<Value *> values) {
  SmallVector<Type> elementTypes;
  for (Value *v : values) {
    Type e = cast<RankedTensorType>(v->getType()).getElementType();
    if (!llvm::is_contained(elementTypes, e))
      elementTypes.push_back(e);
  }
  for (Type element : elementTypes) {
    SmallVector<Value *> group;
    SmallVector<Value> flat;
    SmallVector<int64_t> sizes;
    int64_t total = 0;
    for (Value *v : values) {
      auto type = cast<RankedTensorType>(v->getType());
      if (type.getElementType() != element)
        continue;
      group.push_back(v);
      sizes.push_back(type.getNumElements());
      total += sizes.back();
      auto flatType = RankedTensorType::get({sizes.back()}, element);
      flat.push_back(type == flatType
                         ? *v
                         : b.create<ReshapeOp>(loc, flatType, *v).getResult());
    }
    auto flatType = RankedTensorType::get({total}, element);
    Value all = flat.size() == 1
                    ? flat.front()
                    : b.create<ConcatOp>(loc, flat, /*axis=*/0).getResult();
    Value mean = b.create<AllReduceOp>(loc, flatType, all);
    SmallVector<Value> parts{mean};
    if (group.size() > 1) {
      SmallVector<Type> partTypes;
      for (int64_t size : sizes)
        partTypes.push_back(RankedTensorType::get({size}, element));
      parts = b.create<SplitOp>(loc, partTypes, mean, /*axis=*/0, sizes)
                  .getResults();
    }
    for (auto [v, part] : llvm::zip(group, parts))
      *v = part.getType() == v->getType()
               ? part
               : b.create<ReshapeOp>(loc, v->getType(), part).getResult();
  }
}

struct KilnAutodiffPass
    : public kiln::impl::KilnAutodiffBase<KilnAutodiffPass> {
  using KilnAutodiffBase::KilnAutodiffBase;
  void runOnOperation() override;
};

} // namespace

void KilnAutodiffPass::runOnOperation() {
  ModuleOp module = getOperation();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward) {
    module.emitError("kiln-autodiff: the module has no @forward function");
    return signalPassFailure();
  }
  if (module.lookupSymbol("train_step")) {
    module.emitError("kiln-autodiff: @train_step already exists");
    return signalPassFailure();
  }
  FailureOr<OptimizerConfig> config = OptimizerConfig::fromModule(module);
  if (failed(config))
    return signalPassFailure();
  const contract::OptimizerInfo &optimizer = contract::info(config->kind);
  // Buffer parameters (running statistics) are carried like parameters but set
  // by kiln.assign_param instead of the optimizer; they have no state.
  SmallVector<ParamOp> params(module.getOps<ParamOp>());
  auto numSlots = [&](ParamOp p) {
    return p.getBuffer() ? 0u : optimizer.numSlots;
  };
  MLIRContext *ctx = &getContext();
  OpBuilder b(ctx);
  Location loc = forward.getLoc();

  // Signature: params..., state..., inputs..., hyper -> params..., state...,
  // loss.
  SmallVector<Type> argTypes, resultTypes;
  for (ParamOp p : params)
    argTypes.push_back(p.getType());
  for (ParamOp p : params)
    for (size_t s = 0; s < numSlots(p); ++s)
      argTypes.push_back(p.getType());
  llvm::append_range(argTypes, forward.getArgumentTypes());
  auto hyperType =
      RankedTensorType::get({contract::kHyperCount}, b.getF32Type());
  argTypes.push_back(hyperType);
  unsigned numState = 0;
  for (ParamOp p : params)
    numState += numSlots(p);
  resultTypes.assign(argTypes.begin(),
                     argTypes.begin() + params.size() + numState);
  resultTypes.push_back(forward.getResultTypes().front());
  // Stateful scans' final carries (the next batch starts from them; no
  // gradient flows into the previous batch, as truncated backpropagation
  // through time) and the loss's named terms pass through.
  SmallVector<unsigned> passedResults;
  for (unsigned r = 0; r < forward.getNumResults(); ++r)
    if (forward.getResultAttr(r, contract::info(contract::Role::Carry).attr) ||
        forward.getResultAttr(r, contract::info(contract::Role::Term).attr)) {
      passedResults.push_back(r);
      resultTypes.push_back(forward.getResultTypes()[r]);
    }

  b.setInsertionPointAfter(forward);
  auto step = b.create<func::FuncOp>(loc, contract::kTrainStepEntry,
                                     b.getFunctionType(argTypes, resultTypes));
  setEntryKind(step, EntryKind::Train);
  step->setAttr(contract::kOptimizerAttr, config->toAttr(b));
  Block *entry = step.addEntryBlock();
  unsigned numParams = params.size();
  unsigned inputBase = numParams + numState;
  // The index of each parameter's first state argument.
  SmallVector<unsigned> stateBase;
  for (unsigned i = 0, next = numParams; i < numParams; ++i) {
    stateBase.push_back(next);
    next += numSlots(params[i]);
  }
  Value hyper = step.getArgument(argTypes.size() - 1);

  // Attributes naming every buffer (the ABI pass relies on them).
  auto name = [&](StringRef n) { return b.getStringAttr(n); };
  StringRef paramAttr = contract::info(contract::Role::Param).attr;
  StringRef stateAttr = contract::info(contract::Role::State).attr;
  for (auto [i, p] : llvm::enumerate(params)) {
    step.setArgAttr(i, paramAttr, name(p.getSymName()));
    step.setResultAttr(i, paramAttr, name(p.getSymName()));
    for (unsigned s = 0; s < numSlots(p); ++s) {
      StringRef slot = optimizer.slots[s];
      unsigned idx = stateBase[i] + s;
      std::string stateName = (p.getSymName() + ":" + slot).str();
      step.setArgAttr(idx, stateAttr, name(stateName));
      step.setResultAttr(idx, stateAttr, name(stateName));
    }
  }
  for (unsigned i = 0; i < forward.getNumArguments(); ++i)
    step.setArgAttrs(inputBase + i, forward.getArgAttrDict(i));
  step.setArgAttr(argTypes.size() - 1,
                  contract::info(contract::Role::Hyper).attr, b.getUnitAttr());
  unsigned lossResult = params.size() + numState;
  step.setResultAttr(lossResult, KilnDialect::kLossAttrName, b.getUnitAttr());
  for (auto [i, r] : llvm::enumerate(passedResults))
    step.setResultAttrs(lossResult + 1 + i, forward.getResultAttrDict(r));

  // Forward, in training mode: dropout and random numbers keyed by the step's
  // hyper vector, the values assigned to buffers collected.
  llvm::StringMap<Value> assigned;
  b.setInsertionPointToEnd(entry);
  FailureOr<SmallVector<Value>> returned = cloneForward(
      b, forward, params, step.getArguments().take_front(numParams),
      step.getArguments().slice(inputBase, forward.getNumArguments()),
      /*training=*/true, hyper, &assigned);
  if (failed(returned))
    return signalPassFailure();
  Value loss = returned->front();

  // Backward, with respect to the trainable parameters.
  SmallVector<Value> wrt;
  for (unsigned i = 0; i < numParams; ++i)
    if (!params[i].getBuffer())
      wrt.push_back(step.getArgument(i));
  uint64_t built = 0;
  FailureOr<SmallVector<Value>> grads = differentiate(b, loss, wrt, &built);
  if (failed(grads))
    return signalPassFailure();
  numGradientOps += built;
  numDifferentiated += params.size();

  // The loss's named terms and stateful scans' carries pass through.
  SmallVector<Value> passed;
  for (unsigned r : passedResults)
    passed.push_back((*returned)[r]);

  // Data parallelism: each process has differentiated the mean loss of its
  // part of the global batch (parts of equal size), so the mean of their
  // gradients is the gradient of the global batch's mean loss. The loss,
  // its terms and the buffers' new values (running statistics) are averaged
  // with them in the same message, so every process reports the global
  // batch's loss and keeps the same buffers; carries stay each process's own.
  Value reportedLoss = loss;
  if (dataParallel) {
    SmallVector<Value *> averaged;
    for (Value &g : *grads)
      averaged.push_back(&g);
    for (ParamOp p : params)
      if (p.getBuffer() && assigned.count(p.getSymName()))
        averaged.push_back(&assigned[p.getSymName()]);
    averaged.push_back(&reportedLoss);
    for (auto [i, r] : llvm::enumerate(passedResults))
      if (forward.getResultAttr(r, contract::info(contract::Role::Term).attr))
        averaged.push_back(&passed[i]);
    averageOverProcesses(b, loc, averaged);
    step->setAttr(contract::kDataParallelAttr, b.getUnitAttr());
  }

  // Gradient-norm clipping, as torch.nn.utils.clip_grad_norm_.
  double clip = config->hyper.lookup("clip_norm");
  if (clip > 0 && !grads->empty()) {
    Type f32 = b.getF32Type();
    Value sumSquares;
    for (Value g : *grads) {
      auto type = cast<RankedTensorType>(g.getType());
      SmallVector<int64_t> axes(type.getRank());
      for (int64_t a = 0; a < type.getRank(); ++a)
        axes[a] = a;
      Value sq = b.create<MulOp>(loc, g, g);
      Value s = axes.empty()
                    ? sq
                    : b.create<ReduceSumOp>(loc, sq, axes, false).getResult();
      sumSquares =
          sumSquares ? b.create<AddOp>(loc, sumSquares, s).getResult() : s;
    }
    Value norm = b.create<SqrtOp>(loc, sumSquares);
    Value denom = b.create<AddOp>(loc, norm, buildScalar(b, loc, 1e-6, f32));
    Value scale = b.create<MinimumOp>(
        loc, buildScalar(b, loc, 1.0, f32),
        b.create<DivOp>(loc, buildScalar(b, loc, clip, f32), denom));
    for (Value &g : *grads)
      g = b.create<MulOp>(loc, g, scale);
  }

  // Optimizer (buffers take their assigned value, or keep theirs).
  SmallVector<Value> newParams, newState;
  unsigned gradIndex = 0;
  auto f64 = [&](StringRef key) {
    return b.getF64FloatAttr(config->hyper.lookup(key));
  };
  for (unsigned i = 0; i < numParams; ++i) {
    ParamOp p = params[i];
    Value param = step.getArgument(i);
    Location ploc = p.getLoc();
    if (p.getBuffer()) {
      Value value = assigned.lookup(p.getSymName());
      newParams.push_back(value ? value : param);
      continue;
    }
    Value grad = (*grads)[gradIndex++];
    auto state = [&](unsigned s) { return step.getArgument(stateBase[i] + s); };
    switch (config->kind) {
    case contract::OptimizerKind::Sgd:
      newParams.push_back(b.create<SgdUpdateOp>(
          ploc, param.getType(), param, grad, hyper, f64("weight_decay")));
      break;
    case contract::OptimizerKind::Momentum: {
      auto u = b.create<MomentumUpdateOp>(
          ploc, param.getType(), param.getType(), param, grad, state(0), hyper,
          f64("momentum"), f64("weight_decay"),
          b.getBoolAttr(config->hyper.lookup("nesterov") != 0));
      newParams.push_back(u.getNewParam());
      newState.push_back(u.getNewVelocity());
      break;
    }
    case contract::OptimizerKind::Adam:
    case contract::OptimizerKind::AdamW: {
      auto u = b.create<AdamUpdateOp>(
          ploc, param.getType(), param.getType(), param.getType(), param, grad,
          state(0), state(1), hyper, f64("beta1"), f64("beta2"), f64("eps"),
          f64("weight_decay"),
          b.getBoolAttr(config->kind == contract::OptimizerKind::AdamW));
      newParams.push_back(u.getNewParam());
      newState.push_back(u.getNewM());
      newState.push_back(u.getNewV());
      break;
    }
    }
  }
  SmallVector<Value> results(newParams);
  llvm::append_range(results, newState);
  results.push_back(reportedLoss);
  llvm::append_range(results, passed);
  b.create<func::ReturnOp>(loc, results);
}
