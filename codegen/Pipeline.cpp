//===- Pipeline.cpp - The lowering pipeline from kiln to LLVM -------------===//
//
// Passes are created through their C++ constructors, not parsed from a string:
// a misspelled pass is a compile error, and the pipeline does not depend on
// what happens to be registered.
//
//===----------------------------------------------------------------------===//

#include "codegen/Pipeline.h"
#include "codegen/Passes.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/BufferizationToMemRef/BufferizationToMemRef.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MathToLibm/MathToLibm.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/OpenMPToLLVM/ConvertOpenMPToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/SCFToOpenMP/SCFToOpenMP.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Conversion/VectorToSCF/VectorToSCF.h"
#include "mlir/Dialect/Arith/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Arith/Transforms/BufferViewFlowOpInterfaceImpl.h"
#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/OneShotAnalysis.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/Extensions/InlinerExtension.h"
#include "mlir/Dialect/Index/IR/IndexDialect.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Linalg/Transforms/SubsetInsertionOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/Transforms/AllocationOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/Transforms/BufferViewFlowOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Tensor/Transforms/SubsetInsertionOpInterfaceImpl.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/LocationSnapshot.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;

namespace kiln {

std::optional<Stage> parseStage(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<Stage>>(name)
      .Case("linalg", Stage::Linalg)
      .Case("bufferized", Stage::Bufferized)
      .Case("llvm-dialect", Stage::LLVMDialect)
      .Default(std::nullopt);
}

void registerCodegenDialects(DialectRegistry &registry) {
  registry
      .insert<arith::ArithDialect, bufferization::BufferizationDialect,
              cf::ControlFlowDialect, func::FuncDialect, index::IndexDialect,
              linalg::LinalgDialect, LLVM::LLVMDialect, math::MathDialect,
              memref::MemRefDialect, omp::OpenMPDialect, scf::SCFDialect,
              tensor::TensorDialect, ub::UBDialect, vector::VectorDialect>();
  arith::registerBufferizableOpInterfaceExternalModels(registry);
  arith::registerBufferDeallocationOpInterfaceExternalModels(registry);
  arith::registerBufferViewFlowOpInterfaceExternalModels(registry);
  bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(
      registry);
  linalg::registerBufferizableOpInterfaceExternalModels(registry);
  linalg::registerSubsetOpInterfaceExternalModels(registry);
  memref::registerAllocationOpInterfaceExternalModels(registry);
  memref::registerBufferViewFlowOpInterfaceExternalModels(registry);
  scf::registerBufferizableOpInterfaceExternalModels(registry);
  scf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  tensor::registerBufferizableOpInterfaceExternalModels(registry);
  tensor::registerSubsetOpInterfaceExternalModels(registry);
  registerAllReduceBufferization(registry);
  // The inliner (for @dealloc_helper, below) needs func's inliner interface.
  func::registerInlinerExtension(registry);
}

void buildLoweringPipeline(OpPassManager &pm, const LoweringOptions &options,
                           Stage stopAfter) {
  // kiln -> linalg on tensors.
  KilnToLinalgOptions toLinalg;
  toLinalg.namedMatmul = options.fastMatmul;
  pm.addPass(createKilnToLinalg(toLinalg));
  // Right after kiln-to-linalg, which marks the im2col gathers for it: the
  // mark is a discardable attribute, lost by any rewrite that replaces a
  // gather (canonicalization, elementwise fusion), and sharing replaces SSA
  // tensors, so it must run before bufferization, where no CSE runs (below).
  KilnShareIm2colOptions shareIm2col;
  shareIm2col.report = options.reportStats;
  pm.addNestedPass<func::FuncOp>(createKilnShareIm2col(shareIm2col));
  // No CSE before bufferization: merging the identical inits (tensor.empty,
  // linalg.fill) of different results forces copies; the kiln-level pipeline
  // has already removed common subexpressions.
  pm.addPass(createCanonicalizerPass());
  if (options.fuseElementwise)
    pm.addNestedPass<func::FuncOp>(createKilnFuseElementwisePass());
  // Last at tensor level: a greedy rewrite after it would erase the tensor
  // form of materialize_in_destination, which has no side effect.
  pm.addPass(createKilnEntryAbi());
  if (stopAfter == Stage::Linalg)
    return;

  // Bufferization: compute results in the caller's buffers where possible.
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  bufferization::OneShotBufferizationOptions bufferization;
  bufferization.bufferizeFunctionBoundaries = true;
  bufferization.setFunctionBoundaryTypeConversion(
      bufferization::LayoutMapOption::IdentityLayoutMap);
  // A scan's loop (scf.for) yields each step's new carry, computed in a new
  // buffer: let bufferization accept that (it would demand the carry be
  // updated in place otherwise).
  bufferization.allowReturnAllocsFromLoops = true;
  // Copies (a carry out of a stacked output's slice) as linalg.copy, which
  // becomes loops: memref.copy between strided views would call MLIR's
  // runtime helper memrefCopy, which compiled models do not link.
  bufferization.memCpyFn = [](OpBuilder &b, Location loc, Value from,
                              Value to) {
    auto identity = [](Value v) {
      return cast<MemRefType>(v.getType()).getLayout().isIdentity();
    };
    if (identity(from) && identity(to))
      b.create<memref::CopyOp>(loc, from, to); // a memcpy
    else
      b.create<linalg::CopyOp>(loc, from, to);
    return success();
  };
  pm.addPass(bufferization::createOneShotBufferizePass(bufferization));
  pm.addPass(createCanonicalizerPass());
  if (options.staticBuffers)
    pm.addPass(createKilnStaticBuffers({options.reportStats}));
  bufferization::BufferDeallocationPipelineOptions deallocation;
  bufferization::buildBufferDeallocationPipeline(pm, deallocation);
  // The deallocation pipeline leaves bufferization.clone behind.
  pm.addPass(createBufferizationToMemRefPass());
  // Deallocations in loops (a scan's) call a generated @dealloc_helper on
  // dynamically shaped memrefs, which the bare-pointer calling convention of
  // convert-func-to-llvm cannot express: inline it.
  // Nothing else: no canonicalization here.
  pm.addPass(createInlinerPass({}, [](OpPassManager &) {}));
  if (!options.snapshotBufferized.empty())
    pm.addPass(createLocationSnapshotPass({}, options.snapshotBufferized));
  if (stopAfter == Stage::Bufferized)
    return;

  // Loops and vectors.
  if (options.fastMatmul) {
    KilnVectorizeMatmulOptions tile;
    tile.rows = options.matmulRows;
    tile.vectors = options.matmulVectors;
    tile.vectorBits = options.vectorBits;
    tile.parallel = options.parallel;
    tile.report = options.reportStats;
    pm.addNestedPass<func::FuncOp>(createKilnVectorizeMatmul(tile));
    KilnVectorizeTransposeOptions transpose;
    transpose.vectorBits = options.vectorBits;
    transpose.parallel = options.parallel;
    transpose.report = options.reportStats;
    pm.addNestedPass<func::FuncOp>(createKilnVectorizeTranspose(transpose));
  }
  pm.addNestedPass<func::FuncOp>(createKilnCollapseDims());
  if (options.parallel) {
    KilnParallelizeLoopsOptions loops;
    loops.report = options.reportStats;
    pm.addNestedPass<func::FuncOp>(createKilnParallelizeLoops(loops));
  }
  pm.addPass(createKilnNoAliasKernels());
  pm.addNestedPass<func::FuncOp>(createKilnReductionLoops());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  if (options.approximateMath)
    pm.addNestedPass<func::FuncOp>(createKilnApproximateMath());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createConvertVectorToSCFPass());
  if (options.parallel) {
    // scf.parallel -> omp.parallel + omp.wsloop, scheduled dynamically (a
    // thread the OS does not run leaves its iterations to the others). The
    // canonicalization folds the memref.alloca_scope it wraps the body in,
    // which would otherwise break once scf-to-cf splits the body into
    // several blocks.
    pm.addPass(createConvertSCFToOpenMPPass());
    pm.addNestedPass<func::FuncOp>(createKilnDynamicSchedule());
    pm.addPass(createCanonicalizerPass());
  }
  pm.addPass(createConvertSCFToCFPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());

  // LLVM dialect. math.tanh and friends have no LLVM intrinsic: libm.
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  ConvertFuncToLLVMPassOptions funcToLLVM;
  funcToLLVM.useBarePtrCallConv = true;
  pm.addPass(createConvertFuncToLLVMPass(funcToLLVM));
  if (options.parallel)
    pm.addPass(createConvertOpenMPToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createKilnAbiWrappers());
}

namespace {
struct LowerPipelineOptions : PassPipelineOptions<LowerPipelineOptions> {
  Option<bool> fastMatmul{*this, "fast-matmul",
                          llvm::cl::desc("Register-tiled vector matmul"),
                          llvm::cl::init(true)};
  Option<bool> fuseElementwise{*this, "fuse-elementwise",
                               llvm::cl::desc("Fuse elementwise linalg ops"),
                               llvm::cl::init(true)};
  Option<bool> staticBuffers{
      *this, "static-buffers",
      llvm::cl::desc("Temporaries in a static arena instead of malloc"),
      llvm::cl::init(true)};
  Option<bool> approximateMath{
      *this, "approximate-math",
      llvm::cl::desc("Polynomial f32 exp/log/tanh/erf (vectorizable)"),
      llvm::cl::init(true)};
  Option<bool> parallel{
      *this, "parallel",
      llvm::cl::desc("Large matmuls on all cores (OpenMP; needs libomp)"),
      llvm::cl::init(true)};
  Option<std::string> stopAfter{
      *this, "stop-after", llvm::cl::desc("linalg, bufferized or llvm-dialect"),
      llvm::cl::init("llvm-dialect")};
};
} // namespace

void registerLoweringPipeline() {
  registerKilnFuseElementwisePass();
  PassPipelineRegistration<LowerPipelineOptions>(
      "kiln-lower",
      "Lower kiln entry functions to the LLVM dialect and the Kiln C ABI",
      [](OpPassManager &pm, const LowerPipelineOptions &opts) {
        LoweringOptions options;
        options.fastMatmul = opts.fastMatmul;
        options.fuseElementwise = opts.fuseElementwise;
        options.approximateMath = opts.approximateMath;
        options.staticBuffers = opts.staticBuffers;
        options.parallel = opts.parallel;
        // An unknown stage runs the whole pipeline (the option's help lists
        // the stages).
        Stage stage = parseStage(opts.stopAfter).value_or(Stage::LLVMDialect);
        buildLoweringPipeline(pm, options, stage);
      });
}

} // namespace kiln
