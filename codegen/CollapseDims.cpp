//===- CollapseDims.cpp - One long loop for contiguous dimensions ---------===//
//
// A 4-D elementwise op over [64, 64, 24, 24] lowers to four loops with an
// innermost trip count of 24; LLVM then unrolls that loop and vectorizes the
// next one out, with gathers and scatters at a stride of 24 floats, at a few
// GB/s. Dimensions that every operand indexes contiguously and in order
// (d2, d3 in all maps, with the same iterator type) are the same memory walk
// as one loop: collapsing them gives the vectorizer one loop of 576 (or, for
// a plain elementwise op, 2.4 million) contiguous elements.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCOLLAPSEDIMS
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// Maximal runs of consecutive loops that every indexing map keeps
/// contiguous and in order, with one iterator type per run; runs of one loop
/// are left out.
SmallVector<ReassociationIndices> collapsibleRuns(linalg::GenericOp op) {
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  SmallVector<ReassociationIndices> runs;
  ReassociationIndices run = {0};
  auto flush = [&] {
    if (run.size() > 1)
      runs.push_back(run);
  };
  for (int64_t d = 1, e = op.getNumLoops(); d < e; ++d) {
    ReassociationIndices longer(run);
    longer.push_back(d);
    if (iterators[d] == iterators[run.front()] &&
        linalg::areDimSequencesPreserved(maps, {longer})) {
      run = std::move(longer);
      continue;
    }
    flush();
    run = {d};
  }
  flush();
  return runs;
}

/// Whether collapsing cannot need a copy: every operand is a buffer in the
/// identity layout (contiguous), indexed by a projected permutation of the
/// loops (not a window's affine sum), and the body does not read loop
/// indices.
bool isCollapsible(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.hasIndexSemantics() ||
      !llvm::all_of(op.getIndexingMapsArray(),
                    [](AffineMap map) { return map.isProjectedPermutation(); }))
    return false;
  return llvm::all_of(op->getOperands(), [](Value v) {
    auto type = dyn_cast<MemRefType>(v.getType());
    return type && type.hasStaticShape() && type.getLayout().isIdentity();
  });
}

struct KilnCollapseDimsPass
    : kiln::impl::KilnCollapseDimsBase<KilnCollapseDimsPass> {
  using KilnCollapseDimsBase::KilnCollapseDimsBase;

  void runOnOperation() override {
    SmallVector<linalg::GenericOp> ops;
    getOperation().walk([&](linalg::GenericOp op) {
      if (isCollapsible(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : ops) {
      SmallVector<ReassociationIndices> runs = collapsibleRuns(op);
      if (runs.empty())
        continue;
      rewriter.setInsertionPoint(op);
      FailureOr<linalg::CollapseResult> collapsed =
          linalg::collapseOpIterationDims(op, runs, rewriter);
      if (failed(collapsed))
        continue;
      rewriter.eraseOp(op);
      ++numCollapsed;
    }
  }
};

} // namespace
