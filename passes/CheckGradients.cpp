//===- CheckGradients.cpp - Gradient rules vs. finite differences ---------===//
//
// For each function f: builds L(x) = sum_r sum(f_r(x) * w_r) with fixed random
// weights w_r (so the whole Jacobian is exercised, not just one row), its
// gradient with the autodiff driver, and compares every component with a
// central finite difference, all evaluated in f64 by the reference evaluator.
//
//===----------------------------------------------------------------------===//

#include "passes/Autodiff.h"
#include "passes/Passes.h"

#include "ir/GradientRules.h"
#include "ir/KilnOps.h"
#include "ir/Reference.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <random>

namespace kiln {
#define GEN_PASS_DEF_KILNCHECKGRADIENTS
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct KilnCheckGradientsPass
    : public kiln::impl::KilnCheckGradientsBase<KilnCheckGradientsPass> {
  using KilnCheckGradientsBase::KilnCheckGradientsBase;
  void runOnOperation() override;
};

bool isFloatTensor(Type t) {
  auto type = dyn_cast<RankedTensorType>(t);
  return type && isa<FloatType>(type.getElementType());
}

} // namespace

FailureOr<GradientCheckResult> kiln::checkGradients(func::FuncOp func,
                                                    unsigned seed) {
  GradientCheckResult result;
  std::mt19937_64 rng(seed);
  OpBuilder b(func);
  Location loc = func.getLoc();

  // The objective: f's body, then L = sum_r sum(f_r * w_r), then dL/dx.
  auto objective = cast<func::FuncOp>(b.clone(*func));
  objective.setName((func.getName() + "__gradcheck").str());
  Block &body = objective.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  b.setInsertionPoint(ret);
  Value total;
  std::uniform_real_distribution<double> weight(0.5, 1.5);
  for (Value r : ret.getOperands()) {
    if (!isFloatTensor(r.getType()))
      continue;
    auto type = cast<RankedTensorType>(r.getType());
    SmallVector<Attribute> w;
    for (int64_t i = 0; i < type.getNumElements(); ++i)
      w.push_back(b.getFloatAttr(type.getElementType(), weight(rng)));
    Value weights = b.create<ConstantOp>(loc, DenseElementsAttr::get(type, w));
    Value prod = b.create<MulOp>(loc, r, weights);
    SmallVector<int64_t> axes;
    for (int64_t a = 0; a < type.getRank(); ++a)
      axes.push_back(a);
    Value s = axes.empty()
                  ? prod
                  : b.create<ReduceSumOp>(loc, prod, axes, false).getResult();
    total = total ? b.create<AddOp>(loc, total, s).getResult() : s;
  }
  if (!total) {
    objective.erase();
    return result; // nothing differentiable to check
  }
  SmallVector<Value> wrt;
  SmallVector<unsigned> wrtIndex;
  for (BlockArgument arg : objective.getArguments())
    if (isFloatTensor(arg.getType())) {
      wrt.push_back(arg);
      wrtIndex.push_back(arg.getArgNumber());
    }
  FailureOr<SmallVector<Value>> grads = differentiate(b, total, wrt);
  if (failed(grads)) {
    objective.erase();
    return failure();
  }
  SmallVector<Value> results{total};
  llvm::append_range(results, *grads);
  SmallVector<Type> resultTypes;
  for (Value v : results)
    resultTypes.push_back(v.getType());
  b.create<func::ReturnOp>(loc, results);
  ret.erase();
  objective.setType(
      b.getFunctionType(objective.getArgumentTypes(), resultTypes));

  // Random inputs, within the range an argument asks for (`kiln.check_range`).
  SmallVector<RefTensor> args;
  for (BlockArgument arg : func.getArguments()) {
    auto type = cast<RankedTensorType>(arg.getType());
    double lo = -1, hi = 1;
    if (!isFloatTensor(type))
      lo = 0, hi = 2;
    if (auto range = func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(),
                                                      "kiln.check_range")) {
      lo = cast<FloatAttr>(range[0]).getValueAsDouble();
      hi = cast<FloatAttr>(range[1]).getValueAsDouble();
    }
    RefTensor t(type.getShape());
    std::uniform_real_distribution<double> dist(lo, hi);
    for (double &x : t.data)
      x = isFloatTensor(type) ? dist(rng) : std::floor(dist(rng));
    args.push_back(std::move(t));
  }

  FailureOr<SmallVector<RefTensor>> analytic = evaluate(objective, args);
  if (failed(analytic)) {
    objective.erase();
    return failure();
  }
  const double h = 1e-6;
  double worst = 0, worstA = 0, worstN = 0;
  int64_t worstArg = -1, worstElem = -1, components = 0;
  for (auto [g, argNo] : llvm::enumerate(wrtIndex)) {
    const RefTensor &grad = (*analytic)[g + 1];
    for (int64_t e = 0; e < args[argNo].size(); ++e) {
      double saved = args[argNo].data[e];
      args[argNo].data[e] = saved + h;
      double up = (*evaluate(objective, args))[0].data[0];
      args[argNo].data[e] = saved - h;
      double down = (*evaluate(objective, args))[0].data[0];
      args[argNo].data[e] = saved;
      double numeric = (up - down) / (2 * h);
      double a = grad.data[e];
      double err = std::fabs(a - numeric) /
                   std::max({1.0, std::fabs(a), std::fabs(numeric)});
      ++components;
      if (err > worst || worstArg < 0) {
        worst = err;
        worstA = a;
        worstN = numeric;
        worstArg = argNo;
        worstElem = e;
      }
    }
  }
  objective.erase();
  result.maxError = worst;
  result.components = components;
  result.worstArgument = worstArg;
  result.worstElement = worstElem;
  result.worstAnalytic = worstA;
  result.worstNumeric = worstN;
  return result;
}

void KilnCheckGradientsPass::runOnOperation() {
  bool ok = true;
  for (auto func :
       llvm::make_early_inc_range(getOperation().getOps<func::FuncOp>())) {
    if (func.isDeclaration())
      continue;
    FailureOr<GradientCheckResult> r = checkGradients(func, seed);
    if (failed(r)) {
      ok = false;
      continue;
    }
    if (r->maxError > tolerance) {
      func.emitError("gradient check failed for @")
          << func.getName() << ": d/d(argument " << r->worstArgument << ")["
          << r->worstElement << "] is " << r->worstAnalytic
          << " but finite differences give " << r->worstNumeric
          << " (relative error " << r->maxError << " > " << tolerance << ")";
      ok = false;
      continue;
    }
    func.emitRemark("gradient check passed for @")
        << func.getName() << ": " << r->components
        << " components, max relative error "
        << llvm::formatv("{0:e2}", r->maxError).str();
  }
  if (!ok)
    signalPassFailure();
}
