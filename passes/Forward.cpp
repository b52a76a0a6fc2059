//===- Forward.cpp - Clones @forward into an entry point in one mode ------===//

#include "passes/Forward.h"

#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace kiln;

/// Whether `op` must be resolved for a mode (it is rewritten, not cloned).
static bool isModeDependent(Operation *op) {
  return isa<LoadParamOp, IfTrainingOp, AssignParamOp, DropoutOp>(op);
}

FailureOr<SmallVector<Value>>
kiln::cloneForward(OpBuilder &b, func::FuncOp forward, ArrayRef<ParamOp> params,
                   ValueRange paramArgs, ValueRange inputArgs, Value hyper,
                   llvm::StringMap<Value> *assigned) {
  if (!forward.getBody().hasOneBlock())
    return forward.emitError("@forward must have a single block");
  bool training = static_cast<bool>(hyper);
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
      mapping.map(dropout.getResult(),
                  training
                      ? b.create<DropoutOp>(dropout.getLoc(), input.getType(),
                                            input, hyper, dropout.getRateAttr(),
                                            dropout.getSaltAttr())
                            .getResult()
                      : input);
      continue;
    }
    // Nested regions are cloned as they are, so they must not hold anything
    // that depends on the mode: parameters and dropout keys reach a region
    // as operands.
    if (op.getNumRegions()) {
      WalkResult nested = op.walk([&](Operation *inner) {
        if (inner == &op || !isModeDependent(inner))
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
    b.clone(op, mapping);
  }
  return returned;
}
