//===- Pipeline.h - The lowering pipeline from kiln to LLVM -----*- C++ -*-===//
//
// Builds the pass pipeline that takes a module of kiln entry functions
// (@train_step, @eval_step, @predict, with kiln.param ops for the manifest) to
// the LLVM dialect with the C ABI of runtime/KilnABI.h. ObjectEmitter.h takes
// it from there to an object file.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_PIPELINE_H
#define KILN_CODEGEN_PIPELINE_H

#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>

#include <memory>

namespace mlir {
class DialectRegistry;
class OpPassManager;
class Pass;
} // namespace mlir

namespace kiln {

/// Knobs of the lowering; the defaults are what kilnc uses.
struct LoweringOptions {
  /// Lower rank-2 matmuls to register-tiled vector code
  /// (kiln-vectorize-matmul); when false, to plain loops in (i, k, j) order
  /// that LLVM's loop vectorizer handles.
  bool fastMatmul = true;
  /// Fuse elementwise producers into their consumers
  /// (linalg-fuse-elementwise-ops) before bufferization.
  bool fuseElementwise = true;
  /// Replace f32 exp, log, tanh, erf, ... by polynomials that vectorize
  /// (kiln-approximate-math); when false, they call libm.
  bool approximateMath = true;
  /// Place the step functions' temporaries in one static arena with shared
  /// memory for disjoint live ranges (kiln-static-buffers): no malloc in a
  /// step, but the step functions are not reentrant. When false, temporaries
  /// are malloc'ed and freed at their last use.
  bool staticBuffers = true;
  /// The matmul register tile (kiln-vectorize-matmul): rows x vectors
  /// vectors of vectorBits bits. 0 picks for the host: 512-bit vectors and 8
  /// rows with AVX-512, else 256 bits and 4 rows.
  int64_t matmulRows = 0;
  int64_t matmulVectors = 2;
  int64_t vectorBits = 0;
  /// Run the independent tiles of large matmuls on all cores through OpenMP
  /// (kiln-vectorize-matmul's `parallel`); the executable then needs libomp.
  bool parallel = true;
  /// Each pass that plans memory, vectorizes or parallelizes emits a remark
  /// saying what it did (kilnc --print-stats).
  bool reportStats = false;
  /// When not empty, the bufferized linalg IR is written to this file and
  /// every op's location becomes its line there (snapshot-op-locations), so
  /// that a line table attributes the generated code to loop nests.
  std::string snapshotBufferized;
};

/// Where the pipeline stops.
enum class Stage {
  /// linalg/tensor/arith/math on tensors, entries in destination-passing
  /// style on memrefs (after kiln-entry-abi).
  Linalg,
  /// After bufferization and buffer deallocation: linalg on memrefs.
  Bufferized,
  /// The LLVM dialect with the kiln_* ABI, ready for translation.
  LLVMDialect,
};

/// Parses `linalg`, `bufferized` or `llvm-dialect`.
std::optional<Stage> parseStage(llvm::StringRef name);

/// Appends the lowering to `pm`, which must be anchored on builtin.module.
void buildLoweringPipeline(mlir::OpPassManager &pm,
                           const LoweringOptions &options = {},
                           Stage stopAfter = Stage::LLVMDialect);

/// Adds the dialects the pipeline produces and the interface implementations
/// its upstream passes need (bufferization, subset insertion, deallocation,
/// buffer view flow). Contexts that run the pipeline must be created from a
/// registry that went through this.
void registerCodegenDialects(mlir::DialectRegistry &registry);
/// kiln.all_reduce's bufferization into a runtime call (codegen/AllReduce.cpp).
void registerAllReduceBufferization(mlir::DialectRegistry &registry);

/// linalg elementwise fusion (with reshape propagation) that leaves
/// contractions such as linalg.matmul named, so that they keep the vectorized
/// matmul path (`kiln-fuse-elementwise`).
std::unique_ptr<mlir::Pass> createKilnFuseElementwisePass();
void registerKilnFuseElementwisePass();

/// Registers the pipeline as `kiln-lower` (options `fast-matmul`,
/// `fuse-elementwise`, `stop-after=linalg|bufferized|llvm-dialect`) for
/// kiln-opt.
void registerLoweringPipeline();

} // namespace kiln

#endif // KILN_CODEGEN_PIPELINE_H
