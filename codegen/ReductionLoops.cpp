//===- ReductionLoops.cpp - Reductions accumulate in registers
//-------------===//
//
// convert-linalg-to-loops reads and writes a reduction's output element in
// every iteration of the loops that reduce into it. LLVM cannot keep it in a
// register: every temporary is a view of one static arena
// (kiln-static-buffers), so it cannot prove that the output does not alias
// the input, and the loop then runs as a chain of scalar load-add-store (a
// bias gradient over 64 x 64 x 24 x 24 took 2.5 ms). Here such a generic
// becomes loops with its parallel dimensions outside and its reduction
// dimensions inside, in their original relative orders, carrying the
// accumulator as an scf.for iter_arg: one load and one store per output
// element, and an innermost loop that LLVM vectorizes (the sums are
// reassociable, see Scalar::accumulate). Each output element still combines
// its inputs in the same order as the linalg loops.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNREDUCTIONLOOPS
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// A generic on buffers whose innermost loop is a reduction, with one
/// output, static loop ranges and projected-permutation maps. (Window ops,
/// whose innermost loop runs along an output row, vectorize along it as
/// they are.)
bool isCandidate(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1 ||
      op.getNumLoops() == 0 ||
      op.getIteratorTypesArray().back() != utils::IteratorType::reduction ||
      llvm::any_of(op.getStaticLoopRanges(), ShapedType::isDynamic))
    return false;
  return llvm::all_of(op.getIndexingMapsArray(), [](AffineMap map) {
    return map.isProjectedPermutation();
  });
}

/// The indices of `map` (a projected permutation) at loop indices `ivs`.
SmallVector<Value> indicesAt(AffineMap map, ArrayRef<Value> ivs) {
  SmallVector<Value> indices;
  for (AffineExpr e : map.getResults())
    indices.push_back(ivs[cast<AffineDimExpr>(e).getPosition()]);
  return indices;
}

void lower(linalg::GenericOp op, RewriterBase &rewriter) {
  Location loc = op.getLoc();
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  SmallVector<unsigned> outer, inner;
  for (unsigned d = 0; d < ranges.size(); ++d)
    (iterators[d] == utils::IteratorType::parallel ? outer : inner)
        .push_back(d);
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  OpOperand *init = op.getDpsInitOperand(0);
  AffineMap outMap = op.getMatchingIndexingMap(init);
  Block &body = op.getRegion().front();
  SmallVector<Value> ivs(ranges.size());

  auto constant = [&](OpBuilder &b, int64_t v) -> Value {
    return b.create<arith::ConstantIndexOp>(loc, v);
  };
  // The reduction loops, innermost last, carrying the accumulator.
  std::function<Value(OpBuilder &, unsigned, Value)> reduce =
      [&](OpBuilder &b, unsigned level, Value acc) -> Value {
    unsigned dim = inner[level];
    auto loop = b.create<scf::ForOp>(
        loc, constant(b, 0), constant(b, ranges[dim]), constant(b, 1),
        ValueRange{acc},
        [&](OpBuilder &nb, Location nl, Value iv, ValueRange iter) {
          ivs[dim] = iv;
          Value next;
          if (level + 1 < inner.size()) {
            next = reduce(nb, level + 1, iter[0]);
          } else {
            IRMapping mapping;
            for (OpOperand *in : op.getDpsInputOperands()) {
              Value v = in->get();
              Value arg = body.getArgument(in->getOperandNumber());
              if (isa<MemRefType>(v.getType()))
                v = nb.create<memref::LoadOp>(
                    nl, v, indicesAt(maps[in->getOperandNumber()], ivs));
              mapping.map(arg, v);
            }
            mapping.map(body.getArgument(init->getOperandNumber()), iter[0]);
            for (Operation &inside : body.without_terminator()) {
              if (auto index = dyn_cast<linalg::IndexOp>(inside)) {
                mapping.map(index.getResult(), ivs[index.getDim()]);
                continue;
              }
              nb.clone(inside, mapping);
            }
            next = mapping.lookup(body.getTerminator()->getOperand(0));
          }
          nb.create<scf::YieldOp>(nl, next);
        });
    return loop.getResult(0);
  };
  // The parallel loops, each output element loaded once and stored once.
  std::function<void(OpBuilder &, unsigned)> parallel = [&](OpBuilder &b,
                                                            unsigned level) {
    if (level == outer.size()) {
      SmallVector<Value> at = indicesAt(outMap, ivs);
      Value acc = b.create<memref::LoadOp>(loc, init->get(), at);
      b.create<memref::StoreOp>(loc, reduce(b, 0, acc), init->get(), at);
      return;
    }
    unsigned dim = outer[level];
    b.create<scf::ForOp>(loc, constant(b, 0), constant(b, ranges[dim]),
                         constant(b, 1), ValueRange{},
                         [&](OpBuilder &nb, Location nl, Value iv, ValueRange) {
                           ivs[dim] = iv;
                           parallel(nb, level + 1);
                           nb.create<scf::YieldOp>(nl);
                         });
  };
  rewriter.setInsertionPoint(op);
  parallel(rewriter, 0);
  rewriter.eraseOp(op);
}

struct KilnReductionLoopsPass
    : kiln::impl::KilnReductionLoopsBase<KilnReductionLoopsPass> {
  void runOnOperation() override {
    SmallVector<linalg::GenericOp> ops;
    getOperation().walk([&](linalg::GenericOp op) {
      if (isCandidate(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : ops) {
      lower(op, rewriter);
      ++numLowered;
    }
  }
};

} // namespace
