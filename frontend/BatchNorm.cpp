//===- BatchNorm.cpp - batch_norm as an expansion into kiln ops -----------===//
//
// batch_norm has no op of its own: it is elementwise arithmetic and
// reductions, a kiln.if_training between the batch's statistics (training)
// and the running ones (evaluation), and kiln.assign_param updates of the
// running statistics, which are buffer parameters.
//
//===----------------------------------------------------------------------===//

#include "frontend/Builtins.h"

#include "ir/ShapeRules.h"

using namespace kiln;
using namespace kiln::sema;

Value sema::elaborateBatchNorm(BuiltinCall &c) {
  Elaborator &e = c.e;
  mlir::Value ops[5];
  for (unsigned i = 0; i < 5; ++i)
    if (!(ops[i] = c.tensorArg(i)))
      return Value::poison();
  double momentum = 0.1, eps = 1e-5;
  if (c.arg(5)) {
    std::optional<double> m = e.evalNumber(*c.arg(5), c.frame, "'momentum'");
    if (!m)
      return Value::poison();
    momentum = *m;
  }
  if (c.arg(6)) {
    std::optional<double> v = e.evalNumber(*c.arg(6), c.frame, "'eps'");
    if (!v)
      return Value::poison();
    eps = *v;
  }
  if (!(momentum > 0 && momentum <= 1) || !(eps > 0)) {
    c.error("batch_norm needs momentum in (0, 1] and eps > 0");
    return Value::poison();
  }
  mlir::RankedTensorType xt = typeOf(ops[0]);
  if (xt.getRank() != 2 && xt.getRank() != 4) {
    e.error(c.arg(0)->getLoc(),
            "batch_norm normalizes [N, C] or [N, C, H, W] tensors, got " +
                typeStr(xt));
    return Value::poison();
  }
  int64_t channels = xt.getShape()[1];
  for (unsigned i = 1; i < 5; ++i) {
    if (typeOf(ops[i]).getShape() != llvm::ArrayRef<int64_t>{channels}) {
      e.error(c.arg(i)->getLoc(), "'" + c.builtin.params[i] +
                                      "' of 'batch_norm' must have shape [" +
                                      std::to_string(channels) + "], got " +
                                      typeStr(ops[i].getType()));
      return Value::poison();
    }
  }
  // The running statistics are buffers: parameters set by the step itself.
  LoadParamOp running[2];
  for (unsigned i = 3; i < 5; ++i) {
    running[i - 3] = ops[i].getDefiningOp<LoadParamOp>();
    if (!running[i - 3]) {
      e.error(c.arg(i)->getLoc(),
              "'" + c.builtin.params[i] +
                  "' of 'batch_norm' must be a param (it holds a running "
                  "statistic that training updates)");
      return Value::poison();
    }
    e.params.lookup(running[i - 3].getParam()).setBuffer(true);
  }

  // y = gamma * (x - mean) / sqrt(var + eps) + beta, with the batch's
  // statistics in training and the running ones in evaluation.
  mlir::OpBuilder &b = e.builder;
  llvm::SmallVector<int64_t, 4> axes, keepShape(xt.getRank(), 1);
  keepShape[1] = channels;
  for (int64_t a = 0; a < xt.getRank(); ++a)
    if (a != 1)
      axes.push_back(a);
  auto keep = mlir::RankedTensorType::get(keepShape, b.getF32Type());
  auto vec = mlir::RankedTensorType::get({channels}, b.getF32Type());
  int64_t count = shape::numElements(xt.getShape()) / channels;
  auto reduceMean = [&](mlir::Value v) -> mlir::Value {
    return c.create<ReduceMeanOp>(v, b.getDenseI64ArrayAttr(axes),
                                  b.getBoolAttr(true));
  };
  auto scalar = [&](double v) {
    return e.createScalar(v, b.getF32Type(), c.loc(), c.frame);
  };
  auto reshape = [&](mlir::Value v, mlir::Type t) -> mlir::Value {
    return c.create<ReshapeOp>(t, v);
  };
  auto normalize = [&](mlir::Value centered, mlir::Value var) -> mlir::Value {
    mlir::Value shifted = c.create<AddOp>(var, scalar(eps));
    mlir::Value denom = c.create<SqrtOp>(shifted);
    return c.create<DivOp>(centered, denom);
  };
  mlir::Value mean = reduceMean(ops[0]);
  mlir::Value centered = c.create<SubOp>(ops[0], mean);
  mlir::Value var = reduceMean(c.create<MulOp>(centered, centered));
  mlir::Value trainValue = normalize(centered, var);
  mlir::Value runMean = reshape(ops[3], keep), runVar = reshape(ops[4], keep);
  mlir::Value evalValue = normalize(c.create<SubOp>(ops[0], runMean), runVar);
  mlir::Value xhat = c.create<IfTrainingOp>(trainValue, evalValue);
  mlir::Value gamma = reshape(ops[1], keep);
  mlir::Value scaled = c.create<MulOp>(xhat, gamma);
  mlir::Value y = c.create<AddOp>(scaled, reshape(ops[2], keep));
  // Running statistics as PyTorch keeps them (the variance unbiased).
  auto update = [&](unsigned i, mlir::Value batchStat, double scale) {
    mlir::Value stat = reshape(batchStat, vec);
    mlir::Value kept = c.create<MulOp>(ops[i], scalar(1 - momentum));
    mlir::Value added = c.create<MulOp>(stat, scalar(momentum * scale));
    mlir::Value mixed = c.create<AddOp>(kept, added);
    c.create<AssignParamOp>(running[i - 3].getParam(), mixed);
  };
  update(3, mean, 1.0);
  update(4, var, count > 1 ? double(count) / double(count - 1) : 1.0);
  return Value::tensorOf(y);
}
