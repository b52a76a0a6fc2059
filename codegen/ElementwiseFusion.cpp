//===- ElementwiseFusion.cpp - linalg elementwise fusion that spares matmuls
//-===//
//
// MLIR's linalg-fuse-elementwise-ops also propagates reshapes through linalg
// ops by expansion, which turns a linalg.matmul followed by an expand_shape
// (every im2col convolution) into a 4-D linalg.generic contraction that
// kiln-vectorize-matmul no longer recognizes: the convolutions then ran as
// scalar loops at ~0.3 GFLOP/s. This pass runs the same patterns with a control
// function that leaves every op with a reduction (contractions) alone, so
// producers and consumers of a matmul are still fused with each other but the
// matmul stays a named op.
//
//===----------------------------------------------------------------------===//

#include "codegen/Pipeline.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

namespace {

/// True for a linalg op that reduces (matmul, reductions): fusing into or
/// through it would generalize it.
bool isReduction(Operation *op) {
  auto linalgOp = dyn_cast_or_null<linalg::LinalgOp>(op);
  return linalgOp && linalgOp.getNumReductionLoops() > 0;
}

struct KilnFuseElementwisePass
    : PassWrapper<KilnFuseElementwisePass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(KilnFuseElementwisePass)

  StringRef getArgument() const final { return "kiln-fuse-elementwise"; }
  StringRef getDescription() const final {
    return "Fuse elementwise linalg ops, keeping contractions named";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<affine::AffineDialect, linalg::LinalgDialect,
                    tensor::TensorDialect>();
  }

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    linalg::ControlFusionFn control = [](OpOperand *fused) {
      Operation *producer = fused->get().getDefiningOp();
      return producer && producer->hasOneUse() && !isReduction(producer) &&
             !isReduction(fused->getOwner());
    };
    linalg::populateElementwiseOpsFusionPatterns(patterns, control);
    linalg::populateFoldReshapeOpsByExpansionPatterns(patterns, control);
    affine::AffineApplyOp::getCanonicalizationPatterns(patterns, ctx);
    linalg::GenericOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::ExpandShapeOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::CollapseShapeOp::getCanonicalizationPatterns(patterns, ctx);
    ctx->getLoadedDialect<linalg::LinalgDialect>()->getCanonicalizationPatterns(
        patterns);
    linalg::populateConstantFoldLinalgOperations(patterns, control);
    GreedyRewriteConfig config;
    config.useTopDownTraversal = true;
    (void)applyPatternsAndFoldGreedily(getOperation(), std::move(patterns),
                                       config);
  }
};

} // namespace

std::unique_ptr<Pass> kiln::createKilnFuseElementwisePass() {
  return std::make_unique<KilnFuseElementwisePass>();
}

void kiln::registerKilnFuseElementwisePass() {
  PassRegistration<KilnFuseElementwisePass>();
}
