//===- Autodiff.cpp - Reverse-mode autodiff and the training step ---------===//
//
// `differentiate` is the driver: it walks the ops of a block backwards from the
// loss, asks each op's gradient rule (DifferentiableOpInterface, all in
// ir/GradientRules.cpp) for its operands' gradients, reduces broadcast
// gradients to the operands' shapes, and accumulates fan-out with adds. The
// kiln-autodiff pass uses it to build @train_step: forward, backward, clipping,
// optimizer.
//
//===----------------------------------------------------------------------===//

#include "passes/Autodiff.h"
#include "passes/Forward.h"
#include "passes/Passes.h"

#include "ir/GradientRules.h"
#include "ir/KilnOps.h"

#include "llvm/ADT/DenseSet.h"

namespace kiln {
#define GEN_PASS_DEF_KILNAUTODIFF
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

static bool isFloatTensor(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  return type && isa<FloatType>(type.getElementType());
}

static Value zerosLike(OpBuilder &b, Location loc, Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  return b.create<ConstantOp>(
      loc,
      DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
}

FailureOr<SmallVector<Value>> kiln::differentiate(OpBuilder &b, Value loss,
                                                  ArrayRef<Value> wrt,
                                                  uint64_t *numGradientOps) {
  auto lossType = dyn_cast<RankedTensorType>(loss.getType());
  if (!lossType || lossType.getRank() != 0 || !isFloatTensor(loss))
    return emitError(loss.getLoc(), "the loss must be a scalar float tensor");
  Block *block = b.getInsertionBlock();

  // Snapshot the forward ops (everything before the insertion point).
  SmallVector<Operation *> forward;
  for (Operation &op : llvm::make_range(block->begin(), b.getInsertionPoint()))
    forward.push_back(&op);

  // Active values depend on something we differentiate with respect to.
  llvm::DenseSet<Value> active(wrt.begin(), wrt.end());
  for (Operation *op : forward)
    if (llvm::any_of(op->getOperands(),
                     [&](Value v) { return active.contains(v); }))
      active.insert(op->result_begin(), op->result_end());

  size_t sizeBefore = block->getOperations().size();
  llvm::DenseMap<Value, Value> grads;
  grads[loss] = buildScalar(b, loss.getLoc(), 1.0, lossType.getElementType());

  for (Operation *op : llvm::reverse(forward)) {
    if (op->getNumResults() != 1 || !grads.count(op->getResult(0)))
      continue;
    if (!llvm::any_of(op->getOperands(),
                      [&](Value v) { return active.contains(v); }))
      continue;
    auto rule = dyn_cast<DifferentiableOpInterface>(op);
    if (!rule)
      return op->emitError("cannot differentiate '")
             << op->getName()
             << "': it has no gradient rule, and it lies between a parameter "
                "and the loss";
    OpBuilder::InsertionGuard guard(b);
    SmallVector<Value> operandGrads =
        rule.buildGradients(b, grads[op->getResult(0)]);
    for (auto [operand, grad] : llvm::zip(op->getOperands(), operandGrads)) {
      if (!grad || !active.contains(operand) || !isFloatTensor(operand))
        continue;
      Value g = reduceToType(b, op->getLoc(), grad,
                             cast<RankedTensorType>(operand.getType()));
      auto [it, inserted] = grads.try_emplace(operand, g);
      if (!inserted)
        it->second = b.create<AddOp>(op->getLoc(), it->second, g);
    }
  }

  SmallVector<Value> result;
  for (Value w : wrt) {
    Value g = grads.lookup(w);
    result.push_back(g ? g : zerosLike(b, w.getLoc(), w));
  }
  if (numGradientOps)
    *numGradientOps += block->getOperations().size() - sizeBefore;
  return result;
}

namespace {

/// The optimizer settings of the module's `kiln.train` attribute.
struct OptimizerConfig {
  std::string name = "adam";
  llvm::StringMap<double> hyper = {{"lr", 1e-3},        {"beta1", 0.9},
                                   {"beta2", 0.999},    {"eps", 1e-8},
                                   {"weight_decay", 0}, {"clip_norm", 0},
                                   {"momentum", 0.9},   {"nesterov", 0}};

  static OptimizerConfig fromModule(ModuleOp module) {
    OptimizerConfig config;
    auto train =
        module->getAttrOfType<DictionaryAttr>(KilnDialect::kTrainAttrName);
    DictionaryAttr opt =
        train ? train.getAs<DictionaryAttr>("optimizer") : DictionaryAttr();
    if (!opt)
      return config;
    if (auto name = opt.getAs<StringAttr>("name"))
      config.name = name.str();
    for (NamedAttribute a : opt) {
      if (auto f = dyn_cast<FloatAttr>(a.getValue()))
        config.hyper[a.getName()] = f.getValueAsDouble();
      else if (auto i = dyn_cast<IntegerAttr>(a.getValue()))
        config.hyper[a.getName()] = static_cast<double>(i.getInt());
      else if (auto bo = dyn_cast<BoolAttr>(a.getValue()))
        config.hyper[a.getName()] = bo.getValue();
    }
    return config;
  }

  /// Names of the per-parameter state slots.
  SmallVector<StringRef> stateSlots() const {
    if (name == "momentum")
      return {"velocity"};
    if (name == "adam" || name == "adamw")
      return {"m", "v"};
    return {};
  }
};

struct KilnAutodiffPass
    : public kiln::impl::KilnAutodiffBase<KilnAutodiffPass> {
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
  OptimizerConfig config = OptimizerConfig::fromModule(module);
  if (config.name != "sgd" && config.name != "momentum" &&
      config.name != "adam" && config.name != "adamw") {
    module.emitError("kiln-autodiff: unknown optimizer '")
        << config.name << "'";
    return signalPassFailure();
  }
  // Buffer parameters (running statistics) are carried like parameters but set
  // by kiln.assign_param instead of the optimizer; they have no state.
  SmallVector<ParamOp> params(module.getOps<ParamOp>());
  SmallVector<StringRef> slots = config.stateSlots();
  auto numSlots = [&](ParamOp p) { return p.getBuffer() ? 0 : slots.size(); };
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
  auto hyperType = RankedTensorType::get({4}, b.getF32Type());
  argTypes.push_back(hyperType);
  unsigned numState = 0;
  for (ParamOp p : params)
    numState += numSlots(p);
  resultTypes.assign(argTypes.begin(),
                     argTypes.begin() + params.size() + numState);
  resultTypes.push_back(forward.getResultTypes().front());

  b.setInsertionPointAfter(forward);
  auto step = b.create<func::FuncOp>(loc, "train_step",
                                     b.getFunctionType(argTypes, resultTypes));
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
  for (auto [i, p] : llvm::enumerate(params)) {
    step.setArgAttr(i, "kiln.param", name(p.getSymName()));
    step.setResultAttr(i, "kiln.param", name(p.getSymName()));
    for (unsigned s = 0; s < numSlots(p); ++s) {
      StringRef slot = slots[s];
      unsigned idx = stateBase[i] + s;
      std::string stateName = (p.getSymName() + ":" + slot).str();
      step.setArgAttr(idx, "kiln.state", name(stateName));
      step.setResultAttr(idx, "kiln.state", name(stateName));
    }
  }
  for (unsigned i = 0; i < forward.getNumArguments(); ++i)
    step.setArgAttrs(inputBase + i, forward.getArgAttrDict(i));
  step.setArgAttr(argTypes.size() - 1, "kiln.hyper", b.getUnitAttr());
  step.setResultAttr(resultTypes.size() - 1, KilnDialect::kLossAttrName,
                     b.getUnitAttr());

  // Forward, in training mode: dropout keyed by the step's hyper vector, the
  // values assigned to buffers collected.
  llvm::StringMap<Value> assigned;
  b.setInsertionPointToEnd(entry);
  Value loss =
      cloneForward(
          b, forward, params, step.getArguments().take_front(numParams),
          step.getArguments().slice(inputBase, forward.getNumArguments()),
          hyper, &assigned)
          .front();

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

  // Gradient-norm clipping, as torch.nn.utils.clip_grad_norm_.
  double clip = config.hyper.lookup("clip_norm");
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
    return b.getF64FloatAttr(config.hyper.lookup(key));
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
    if (config.name == "sgd") {
      newParams.push_back(b.create<SgdUpdateOp>(
          ploc, param.getType(), param, grad, hyper, f64("weight_decay")));
    } else if (config.name == "momentum") {
      auto u = b.create<MomentumUpdateOp>(
          ploc, param.getType(), param.getType(), param, grad, state(0), hyper,
          f64("momentum"), f64("weight_decay"),
          b.getBoolAttr(config.hyper.lookup("nesterov") != 0));
      newParams.push_back(u.getNewParam());
      newState.push_back(u.getNewVelocity());
    } else {
      auto u = b.create<AdamUpdateOp>(
          ploc, param.getType(), param.getType(), param.getType(), param, grad,
          state(0), state(1), hyper, f64("beta1"), f64("beta2"), f64("eps"),
          f64("weight_decay"), b.getBoolAttr(config.name == "adamw"));
      newParams.push_back(u.getNewParam());
      newState.push_back(u.getNewM());
      newState.push_back(u.getNewV());
    }
  }
  SmallVector<Value> results(newParams);
  llvm::append_range(results, newState);
  results.push_back(loss);
  b.create<func::ReturnOp>(loc, results);
}
