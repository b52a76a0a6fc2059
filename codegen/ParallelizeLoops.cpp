//===- ParallelizeLoops.cpp - Split large linalg ops over threads ---------===//
//
// Convolution gathers, pooling windows, transposes and elementwise chains are
// linalg ops that convert-linalg-to-loops would run on one thread; next to
// matmuls split over the cores (kiln-vectorize-matmul) they would keep a
// training step serial. Each large op is tiled along its outermost parallel
// loop (into at most 64 tiles) into an scf.parallel loop (OpenMP after
// convert-scf-to-openmp); the loops inside keep their order, so the innermost
// one still vectorizes, and every element is computed by the same arithmetic
// in the same order whatever the number of threads.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNDYNAMICSCHEDULE
#define GEN_PASS_DEF_KILNPARALLELIZELOOPS
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// The most tiles a loop is split into: enough to balance any core count
/// this runs on, few enough that a tile's work dwarfs its scheduling.
constexpr int64_t kMaxChunks = 64;

/// The outermost parallel loop of `op` with at least `minTrips` iterations,
/// and its trip count, if the whole nest has at least `minIterations`.
std::optional<std::pair<unsigned, int64_t>>
parallelDim(linalg::LinalgOp op, int64_t minIterations, int64_t minTrips) {
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  int64_t iterations = 1;
  for (int64_t r : ranges) {
    if (ShapedType::isDynamic(r))
      return std::nullopt;
    iterations *= r;
  }
  if (iterations < minIterations)
    return std::nullopt;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  for (auto [dim, range] : llvm::enumerate(ranges))
    if (iterators[dim] == utils::IteratorType::parallel && range >= minTrips)
      return std::make_pair(unsigned(dim), range);
  return std::nullopt;
}

struct KilnParallelizeLoopsPass
    : kiln::impl::KilnParallelizeLoopsBase<KilnParallelizeLoopsPass> {
  using KilnParallelizeLoopsBase::KilnParallelizeLoopsBase;

  void runOnOperation() override {
    SmallVector<std::tuple<linalg::LinalgOp, unsigned, int64_t>> work;
    getOperation().walk([&](linalg::LinalgOp op) {
      if (!op.hasPureBufferSemantics() ||
          op->getParentOfType<scf::ParallelOp>())
        return;
      if (auto loop = parallelDim(op, minIterations, minTrips))
        work.emplace_back(op, loop->first, loop->second);
    });
    IRRewriter rewriter(&getContext());
    int64_t split = 0;
    for (auto [op, dim, trips] : work) {
      // At most kMaxChunks tiles: a loop collapsed to millions of trips
      // (kiln-collapse-dims) is split into chunks, not single iterations.
      int64_t chunks = std::min(trips, kMaxChunks);
      SmallVector<int64_t> tileSizes(op.getNumLoops(), 0);
      tileSizes[dim] = llvm::divideCeil(trips, chunks);
      linalg::LinalgTilingOptions options;
      options.setTileSizes(tileSizes).setLoopType(
          linalg::LinalgTilingLoopType::ParallelLoops);
      rewriter.setInsertionPoint(op);
      if (failed(linalg::tileLinalgOp(rewriter, op, options)))
        continue;
      rewriter.eraseOp(op);
      ++numParallel;
      ++split;
    }
    if (report)
      emitRemark(getOperation().getLoc())
          << "kiln-parallelize-loops: @" << getOperation().getSymName() << ": "
          << split << " loop nests split over threads";
  }
};

/// Under load, a thread of a statically scheduled loop that the OS does not
/// run holds up the others at the loop's end: 2 threads ran slower than 1.
/// With a dynamic schedule the running threads take the iterations it has
/// not started. Which thread runs an iteration never changes what it
/// computes, so results stay the same.
struct KilnDynamicSchedulePass
    : kiln::impl::KilnDynamicScheduleBase<KilnDynamicSchedulePass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    getOperation().walk([&](omp::WsloopOp loop) {
      loop.setScheduleValAttr(omp::ClauseScheduleKindAttr::get(
          ctx, omp::ClauseScheduleKind::Dynamic));
      ++numLoops;
    });
  }
};

} // namespace
