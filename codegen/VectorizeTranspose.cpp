//===- VectorizeTranspose.cpp - Transposes in register tiles --------------===//
//
// A linalg.transpose that moves the innermost dimension (NCHW -> NHWC for a
// filter gradient, the 2-D transpose of a dense layer's weights) lowers to
// loops whose stores (or loads) stride across rows; LLVM vectorizes them with
// gathers or not at all, at one element per few cycles. Here such a
// transpose is a batch of 2-D transposes [R, C] -> [C, R] (the dimensions
// before the moved ones are the batch, the moved groups are collapsed), done
// in T x T tiles (T lanes of the host's vectors): T vector loads of input
// rows, one vector.transpose lowered to shuffles (the 16 x 16 AVX-512
// sequence, or 1-D shuffles), T vector stores of output rows; the edges that
// do not fill a tile are copied element by element. The batch loop (or, with
// no batch, the column-tile loop) is an scf.parallel for large transposes.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/Dialect/Vector/Transforms/LoweringPatterns.h"
#include "mlir/Dialect/Vector/Transforms/VectorTransforms.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_KILNVECTORIZETRANSPOSE
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// A transpose as a batch of 2-D transposes: input [batch, R, C], output
/// [batch, C, R]; the groups collapse dimensions of the input and output.
struct Plan {
  SmallVector<ReassociationIndices> inGroups, outGroups;
  bool batched;
};

/// The plan for `perm` (output dim i = input dim perm[i]) of rank `rank`:
/// leading dimensions kept in place (the batch), then the trailing input
/// dimensions [j, rank) moved before [lead, j). None for other permutations
/// or when the last dimension stays last (a copy of contiguous rows).
std::optional<Plan> planFor(ArrayRef<int64_t> perm) {
  int64_t rank = perm.size(), lead = 0;
  while (lead < rank && perm[lead] == lead)
    ++lead;
  if (lead >= rank - 1 || perm.back() == rank - 1)
    return std::nullopt;
  int64_t j = perm[lead];
  for (int64_t i = lead; i < rank; ++i) {
    int64_t expected =
        i - lead < rank - j ? j + (i - lead) : lead + (i - lead - (rank - j));
    if (perm[i] != expected)
      return std::nullopt;
  }
  auto range = [](int64_t from, int64_t to) {
    ReassociationIndices group;
    for (int64_t d = from; d < to; ++d)
      group.push_back(d);
    return group;
  };
  Plan plan;
  plan.batched = lead > 0;
  if (plan.batched) {
    plan.inGroups.push_back(range(0, lead));
    plan.outGroups.push_back(range(0, lead));
  }
  plan.inGroups.push_back(range(lead, j));
  plan.inGroups.push_back(range(j, rank));
  plan.outGroups.push_back(range(lead, lead + rank - j));
  plan.outGroups.push_back(range(lead + rank - j, rank));
  return plan;
}

/// A static f32 memref in the identity layout.
bool isContiguousF32(Value v) {
  auto type = dyn_cast<MemRefType>(v.getType());
  return type && type.hasStaticShape() && type.getLayout().isIdentity() &&
         type.getElementType().isF32();
}

class TransposeEmitter {
public:
  TransposeEmitter(Location loc, Value in, Value out, int64_t lanes,
                   bool batched)
      : loc(loc), in(in), out(out), lanes(lanes), batched(batched) {}

  void emit(OpBuilder &b, bool parallel) {
    ArrayRef<int64_t> shape = cast<MemRefType>(in.getType()).getShape();
    int64_t rows = shape[shape.size() - 2], cols = shape.back();
    if (batched) {
      loop(b, shape[0], parallel, [&](OpBuilder &nb, Value batch) {
        emitMatrix(nb, batch, rows, cols, /*parallel=*/false);
      });
      return;
    }
    emitMatrix(b, Value(), rows, cols, parallel);
  }

private:
  Value index(OpBuilder &b, int64_t v) {
    return b.create<arith::ConstantIndexOp>(loc, v);
  }

  /// A loop over [from, n) step `step` (scf.parallel when `parallel`).
  void loop(OpBuilder &b, int64_t n, bool parallel,
            function_ref<void(OpBuilder &, Value)> body, int64_t from = 0,
            int64_t step = 1) {
    kiln::buildConstantLoop(b, loc, from, n, step, parallel, body);
  }

  SmallVector<Value, 3> at(Value batch, Value i, Value j) {
    if (batch)
      return {batch, i, j};
    return {i, j};
  }

  Value add(OpBuilder &b, Value x, int64_t c) {
    return c == 0 ? x : b.create<arith::AddIOp>(loc, x, index(b, c));
  }

  /// out[c, r] = in[r, c] for one matrix of the batch.
  void emitMatrix(OpBuilder &b, Value batch, int64_t rows, int64_t cols,
                  bool parallel) {
    int64_t fullRows = rows - rows % lanes, fullCols = cols - cols % lanes;
    auto vector = VectorType::get({lanes}, b.getF32Type());
    auto tile = VectorType::get({lanes, lanes}, b.getF32Type());
    // Full tiles, column tiles outermost: each writes whole output rows.
    loop(
        b, fullCols, parallel,
        [&](OpBuilder &cb, Value c0) {
          loop(
              cb, fullRows, false,
              [&](OpBuilder &rb, Value r0) {
                Value t = rb.create<arith::ConstantOp>(loc, tile,
                                                       rb.getZeroAttr(tile));
                for (int64_t i = 0; i < lanes; ++i) {
                  Value row = rb.create<vector::LoadOp>(
                      loc, vector, in, at(batch, add(rb, r0, i), c0));
                  t = rb.create<vector::InsertOp>(loc, row, t, i);
                }
                Value tt = rb.create<vector::TransposeOp>(
                    loc, t, ArrayRef<int64_t>{1, 0});
                for (int64_t i = 0; i < lanes; ++i) {
                  Value row = rb.create<vector::ExtractOp>(loc, tt, i);
                  rb.create<vector::StoreOp>(loc, row, out,
                                             at(batch, add(rb, c0, i), r0));
                }
              },
              0, lanes);
          // The rows past the last full row tile, for these columns.
          copy(cb, batch, fullRows, rows, c0, lanes);
        },
        0, lanes);
    // The columns past the last full column tile, for all rows.
    if (fullCols < cols)
      copy(b, batch, 0, rows, index(b, fullCols), cols - fullCols);
  }

  /// out[c0 + j, r] = in[r, c0 + j] for r in [r0, r1), j < width.
  void copy(OpBuilder &b, Value batch, int64_t r0, int64_t r1, Value c0,
            int64_t width) {
    loop(
        b, r1, false,
        [&](OpBuilder &rb, Value r) {
          for (int64_t j = 0; j < width; ++j) {
            Value c = add(rb, c0, j);
            Value v = rb.create<memref::LoadOp>(loc, in, at(batch, r, c));
            rb.create<memref::StoreOp>(loc, v, out, at(batch, c, r));
          }
        },
        r0);
  }

  Location loc;
  Value in, out;
  int64_t lanes;
  bool batched;
};

struct KilnVectorizeTransposePass
    : kiln::impl::KilnVectorizeTransposeBase<KilnVectorizeTransposePass> {
  using KilnVectorizeTransposeBase::KilnVectorizeTransposeBase;

  void runOnOperation() override {
    int64_t bits = vectorBits ? vectorBits : kiln::hostVectorBits();
    int64_t lanes = bits / 32;
    if (lanes < 2) {
      getOperation().emitError("kiln-vectorize-transpose: vector-bits must "
                               "hold at least two f32");
      return signalPassFailure();
    }
    SmallVector<linalg::TransposeOp> transposes;
    getOperation().walk([&](linalg::TransposeOp op) {
      if (op.hasPureBufferSemantics() && isContiguousF32(op.getInput()) &&
          isContiguousF32(op.getInit()))
        transposes.push_back(op);
    });
    int64_t vectorized = 0;
    for (linalg::TransposeOp op : transposes) {
      std::optional<Plan> plan = planFor(op.getPermutation());
      if (!plan)
        continue;
      OpBuilder b(op);
      Location loc = op.getLoc();
      Value in =
          b.create<memref::CollapseShapeOp>(loc, op.getInput(), plan->inGroups);
      Value out =
          b.create<memref::CollapseShapeOp>(loc, op.getInit(), plan->outGroups);
      int64_t elements =
          cast<MemRefType>(op.getInit().getType()).getNumElements();
      TransposeEmitter(loc, in, out, lanes, plan->batched)
          .emit(b, parallel && elements >= parallelMinElements);
      op.erase();
      ++numVectorized;
      ++vectorized;
    }
    if (report)
      emitRemark(getOperation().getLoc())
          << "kiln-vectorize-transpose: @" << getOperation().getSymName()
          << ": " << vectorized << " transposes in " << lanes << " x " << lanes
          << " register tiles";
    // The tiles' vector.transpose as shuffles, before convert-vector-to-llvm
    // would lower it element by element.
    RewritePatternSet patterns(&getContext());
    vector::VectorTransformsOptions options;
    options.setVectorTransposeLowering(
        lanes == 16 ? vector::VectorTransposeLowering::Shuffle16x16
                    : vector::VectorTransposeLowering::Shuffle1D);
    vector::populateVectorTransposeLoweringPatterns(patterns, options);
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
