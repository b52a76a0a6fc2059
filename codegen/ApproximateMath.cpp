//===- ApproximateMath.cpp - Polynomial f32 exp, log, tanh, erf, ... ------===//
//
// libm calls keep LLVM from vectorizing elementwise loops (softmax, sigmoid,
// tanh, gelu); MLIR's polynomial approximations (accurate to a few ulp in f32)
// are plain arith, which it vectorizes. f64 is left to libm.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_KILNAPPROXIMATEMATH
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

struct KilnApproximateMathPass
    : kiln::impl::KilnApproximateMathBase<KilnApproximateMathPass> {
  void runOnOperation() override {
    auto isF32Math = [](Operation *op) {
      return isa<math::MathDialect>(op->getDialect()) &&
             op->getNumResults() == 1 &&
             getElementTypeOrSelf(op->getResult(0).getType()).isF32();
    };
    unsigned before = 0, after = 0;
    getOperation().walk([&](Operation *op) { before += isF32Math(op); });

    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns);
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();

    getOperation().walk([&](Operation *op) { after += isF32Math(op); });
    if (before > after)
      numApproximated += before - after;
  }
};

} // namespace
