//===- Forward.cpp - Clones @forward into an entry point in one mode ------===//

#include "passes/Forward.h"

#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace kiln;

SmallVector<Value> kiln::cloneForward(OpBuilder &b, func::FuncOp forward,
                                      ArrayRef<ParamOp> params,
                                      ValueRange paramArgs,
                                      ValueRange inputArgs, Value hyper,
                                      llvm::StringMap<Value> *assigned) {
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
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (Value v : ret.getOperands())
        returned.push_back(mapping.lookup(v));
      continue;
    }
    b.clone(op, mapping);
  }
  return returned;
}
