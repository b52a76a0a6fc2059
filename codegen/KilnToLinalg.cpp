//===- KilnToLinalg.cpp - Lowers kiln ops to linalg on tensors ------------===//
//
// One conversion pattern per kiln op (or op class), in a file per op family
// (Lower*.cpp, on the builders of LoweringUtils.h). Every pattern builds
// linalg.generic ops (plus a few named ops) whose indexing maps are projected
// permutations: operand dimensions of size 1 that broadcast are collapsed away
// with tensor.collapse_shape instead of being indexed with a constant 0, which
// keeps the generics fusable, tileable and vectorizable. Float arithmetic
// carries the `contract` fast-math flag (FMA formation) and nothing looser.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"
#include "codegen/Passes.h"

#include "mlir/Transforms/DialectConversion.h"

namespace kiln {
#define GEN_PASS_DEF_KILNTOLINALG
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct KilnToLinalgPass : kiln::impl::KilnToLinalgBase<KilnToLinalgPass> {
  using KilnToLinalgBase::KilnToLinalgBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();

    // Parameters must be function arguments by now; say so plainly rather
    // than "failed to legalize".
    WalkResult walk =
        module.walk([](Operation *op) {
          if (isa<kiln::LoadParamOp>(op)) {
            op->emitOpError()
                << "is not supported by codegen: parameters must be "
                   "entry-function arguments (kiln.param argument attribute) "
                   "before kiln-to-linalg";
            return WalkResult::interrupt();
          }
          if (isa<kiln::IfTrainingOp, kiln::AssignParamOp>(op)) {
            op->emitOpError()
                << "is not supported by codegen: kiln-autodiff and "
                   "kiln-entry-points resolve it in the entry "
                   "functions";
            return WalkResult::interrupt();
          }
          return WalkResult::advance();
        });
    if (walk.wasInterrupted())
      return signalPassFailure();

    unsigned count = 0;
    module.walk([&](Operation *op) {
      if (isa<kiln::KilnDialect>(op->getDialect()) &&
          !isa<kiln::ParamOp, kiln::AllReduceOp>(op))
        ++count;
    });

    ConversionTarget target(*ctx);
    target.addLegalDialect<arith::ArithDialect, linalg::LinalgDialect,
                           math::MathDialect, tensor::TensorDialect,
                           bufferization::BufferizationDialect,
                           memref::MemRefDialect, func::FuncDialect,
                           scf::SCFDialect, vector::VectorDialect>();
    target.addIllegalDialect<kiln::KilnDialect>();
    // A data-parallel step's all-reduce becomes a runtime call during
    // bufferization (codegen/AllReduce.cpp).
    target.addLegalOp<kiln::ParamOp, kiln::AllReduceOp>();

    RewritePatternSet patterns(ctx);
    lowering::populateElementwisePatterns(patterns);
    lowering::populateReductionPatterns(patterns, namedMatmul);
    lowering::populateShapePatterns(patterns);
    lowering::populateLossPatterns(patterns);
    lowering::populateConvPatterns(patterns, namedMatmul);
    lowering::populateOptimizerPatterns(patterns);
    lowering::populateScanPatterns(patterns);
    lowering::populateAttentionPatterns(patterns);

    if (failed(applyPartialConversion(module, target, std::move(patterns))))
      return signalPassFailure();
    numOpsLowered += count;
  }
};

} // namespace
