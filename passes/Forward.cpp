//===- Forward.cpp - Clones @forward into an entry point in one mode ------===//

#include "passes/Forward.h"

#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace kiln;

/// Whether `op` must be resolved for a mode (it is rewritten, not cloned).
static bool isModeDependent(Operation *op) {
  return isa<LoadParamOp, IfTrainingOp, AssignParamOp, DropoutOp,
             RandomUniformOp, RandomNormalOp, WarmupOp>(op);
}

bool kiln::drawsRandomNumbers(func::FuncOp func) {
  return func
      .walk([](Operation *op) {
        return isa<RandomUniformOp, RandomNormalOp>(op)
                   ? WalkResult::interrupt()
                   : WalkResult::advance();
      })
      .wasInterrupted();
}

/// Resolves the dropouts inside a cloned scan for a mode: in training each
/// takes `hyper`, which reaches the loop body (and the bodies of scans nested
/// in it) as a new const; in evaluation each is its input.
static void resolveDropouts(ScanOp scan, Value hyper) {
  Block &body = scan.getBody().front();
  Value inner;
  if (hyper) {
    scan.getConstsMutable().append(hyper);
    inner = body.addArgument(hyper.getType(), hyper.getLoc());
  }
  for (Operation &op : llvm::make_early_inc_range(body)) {
    if (auto nested = dyn_cast<ScanOp>(op)) {
      resolveDropouts(nested, inner);
      continue;
    }
    auto dropout = dyn_cast<DropoutOp>(op);
    if (!dropout)
      continue;
    if (inner) {
      dropout.getHyperMutable().assign(inner);
    } else {
      dropout.replaceAllUsesWith(dropout.getInput());
      dropout.erase();
    }
  }
}

/// Whether `op` holds a dropout in its regions.
static bool holdsDropout(Operation *op) {
  return op->walk([](DropoutOp) { return WalkResult::interrupt(); })
      .wasInterrupted();
}

FailureOr<SmallVector<Value>>
kiln::cloneForward(OpBuilder &b, func::FuncOp forward, ArrayRef<ParamOp> params,
                   ValueRange paramArgs, ValueRange inputArgs, bool training,
                   Value hyper, llvm::StringMap<Value> *assigned) {
  if (!forward.getBody().hasOneBlock())
    return forward.emitError("@forward must have a single block");
  assert((!training || hyper) && "training needs the step's hyper vector");
  llvm::StringMap<Value> paramValues;
  for (auto [p, arg] : llvm::zip(params, paramArgs)) {
    ParamOp param = p; // the accessors are not const
    paramValues[param.getSymName()] = arg;
  }
  IRMapping mapping;
  mapping.map(forward.getArguments(), inputArgs);
  SmallVector<Value> returned;
  for (Operation &op : forward.getBody().front()) {
    if (auto load = dyn_cast<LoadParamOp>(op)) {
      mapping.map(load.getResult(), paramValues.lookup(load.getParam()));
      continue;
    }
    if (auto select = dyn_cast<IfTrainingOp>(op)) {
      mapping.map(select.getResult(),
                  mapping.lookup(training ? select.getTrainValue()
                                          : select.getEvalValue()));
      continue;
    }
    if (auto assign = dyn_cast<AssignParamOp>(op)) {
      if (training && assigned)
        (*assigned)[assign.getParam()] = mapping.lookup(assign.getValue());
      continue;
    }
    if (auto dropout = dyn_cast<DropoutOp>(op)) {
      Value input = mapping.lookup(dropout.getInput());
      mapping.map(
          dropout.getResult(),
          training ? b.create<DropoutOp>(
                          dropout.getLoc(), input.getType(), input, hyper,
                          dropout.getStep() ? mapping.lookup(dropout.getStep())
                                            : Value(),
                          dropout.getRateAttr(), dropout.getSaltAttr())
                         .getResult()
                   : input);
      continue;
    }
    if (auto attention = dyn_cast<AttentionOp>(op);
        attention && attention.getDropout().convertToDouble() > 0) {
      // Training: the probabilities' dropout keyed by the step; evaluation:
      // none.
      auto clone = cast<AttentionOp>(b.clone(op, mapping));
      if (training)
        clone.getHyperMutable().assign(hyper);
      continue;
    }
    if (auto warmup = dyn_cast<WarmupOp>(op)) {
      // Training: the step's ramp; evaluation: 1.
      mapping.map(warmup.getResult(),
                  b.create<WarmupOp>(warmup.getLoc(), warmup.getType(),
                                     training ? hyper : Value(),
                                     warmup.getStepsAttr())
                      .getResult());
      continue;
    }
    if (isa<RandomUniformOp, RandomNormalOp>(op)) {
      if (!hyper)
        return op.emitError("internal error: no hyper vector to key '")
               << op.getName() << "' with";
      Operation *clone = b.clone(op, mapping);
      clone->insertOperands(0, hyper);
      continue;
    }
    // Nested regions are cloned as they are, so they must not hold anything
    // that depends on the mode (parameters reach a region as operands) but
    // the dropouts of a scan's body, resolved after cloning.
    if (op.getNumRegions()) {
      WalkResult nested = op.walk([&](Operation *inner) {
        if (inner == &op || !isModeDependent(inner) ||
            (isa<DropoutOp>(inner) && isa<ScanOp>(inner->getParentOp())))
          return WalkResult::advance();
        inner->emitError("'")
            << inner->getName()
            << "' inside a region is not supported: pass parameters and "
               "mode-dependent values into the region as operands";
        return WalkResult::interrupt();
      });
      if (nested.wasInterrupted())
        return failure();
    }
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (Value v : ret.getOperands())
        returned.push_back(mapping.lookup(v));
      continue;
    }
    Operation *clone = b.clone(op, mapping);
    if (auto scan = dyn_cast<ScanOp>(clone); scan && holdsDropout(scan))
      resolveDropouts(scan, training ? hyper : Value());
  }
  return returned;
}
