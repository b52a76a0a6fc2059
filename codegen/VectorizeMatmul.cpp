//===- VectorizeMatmul.cpp - Register-tiled vector code for linalg.matmul -===//
//
// The classic outer-product micro-kernel, emitted directly as scf + vector
// ops on the bufferized operands: a tile of `rows` x `vectors` accumulator
// vectors of C stays in registers while k runs; each k loads `vectors`
// vectors of a row of B, broadcasts one element of A per row and issues
// rows * vectors FMAs (4 x 2 ymm on AVX2: 8 independent FMA chains, enough to
// cover the FMA latency of two ports, with 2 + 4 loads per 8 FMAs; 8 x 2 zmm
// with AVX-512's 32 registers). Measured on this project's AMD EPYC (AVX-512)
// under load, one thread, f32: 512^3 ~95-105 GFLOP/s with 8 x 2 zmm (~65 with
// 4 x 2 ymm), 64x784x256 (MNIST's first layer) ~110.
//
// Loop nest: k blocks (B's block of columns stays in L1) > column tiles > row
// tiles > k; with `parallel`, a large matmul's column (or row) tiles form an
// outer scf.parallel loop (OpenMP after convert-scf-to-openmp), each running
// its own k blocks. Shapes are static, so the edges are static too: the last
// column tile uses fewer vectors and a constant lane mask
// (vector.maskedload/store), the last row tile fewer rows. Emitting the kernel
// directly rather than tiling and vectorizing through the transform dialect
// keeps every shape on the vector path (partial tiles would stay scalar there)
// and needs no hoisting: the accumulators are loop-carried values from the
// start.
//
// Three refinements: a zero fill of C right before the product is dropped and
// the first k block starts from zero vectors; when 16 or more row tiles read
// a column tile's block of B, it is first packed into a contiguous stack
// buffer (B's rows are often a multiple of 4 KiB apart, and a column of them
// then maps to one L1 set); linalg.matmul_transpose_a (A stored [k, m], a
// dense layer's weight gradient x^T g) broadcasts A[k, i + r] in place.
// linalg.batch_matmul runs the kernel on each matrix of the batch, split over
// threads by matrix when the batch is large.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"
#include "llvm/TargetParser/Host.h"

namespace kiln {
#define GEN_PASS_DEF_KILNVECTORIZEMATMUL
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// Fewest row tiles per column tile for which packing B's block pays.
constexpr int64_t kMinRowTilesToPack = 16;

/// Emits the loop nest for one matmul C += A B on memrefs.
class MatmulEmitter {
public:
  MatmulEmitter(Location loc, Value a, Value b, Value c, int64_t lanes,
                int64_t rows, int64_t vectors, int64_t kBlock, bool zeroInit,
                bool transposeA)
      : loc(loc), a(a), b(b), c(c), lanes(lanes), rows(rows), vectors(vectors),
        kBlock(kBlock), zeroInit(zeroInit), transposeA(transposeA) {
    Type element = cast<MemRefType>(c.getType()).getElementType();
    vectorType = VectorType::get({lanes}, element);
  }

  /// Emits the kernel; with `parallel`, the independent column tiles (or row
  /// tiles, when there are more of those) become an scf.parallel loop whose
  /// iterations each run their own k blocks. `mayPack` false never packs B
  /// (for a matmul inside a loop: each iteration would take more stack, which
  /// a loop never gives back). Every element of C still sums
  /// its k blocks, and k within each, in the same order as the serial nest,
  /// so results are bitwise identical for any number of threads. Returns
  /// whether it emitted a parallel loop.
  bool emit(OpBuilder &builder, bool parallel, bool mayPack = true) {
    ArrayRef<int64_t> shapeA = cast<MemRefType>(a.getType()).getShape();
    ArrayRef<int64_t> shapeC = cast<MemRefType>(c.getType()).getShape();
    int64_t m = shapeC[0], n = shapeC[1], k = shapeA[transposeA ? 0 : 1];
    int64_t width = vectors * lanes;
    int64_t nFull = n - n % width, nRest = n - nFull;
    int64_t mFull = m - m % rows, mRest = m - mFull;
    int64_t columnTiles = nFull / width, rowTiles = mFull / rows;
    // A column tile's block of B is packed when enough row tiles read it.
    packRows = mayPack && (m + rows - 1) / rows >= kMinRowTilesToPack
                   ? std::min(k, kBlock)
                   : 0;
    if (!parallel || std::max(columnTiles, rowTiles) < 2) {
      Value packed = allocatePacked(builder);
      emitKBlocks(builder, k, [&](OpBuilder &nb, Value kLo, Value kHi) {
        emitColumns(nb, kLo, kHi, n,
                    [&](OpBuilder &cb, Value j0, int64_t nv, int64_t lw) {
                      emitRows(cb, kLo, kHi, m, j0, nv, lw, packed);
                    });
      });
      return false;
    }
    // Columns first: a column tile re-reads only A (rows x k, small for
    // convolutions, whose columns are the output pixels); rows when there
    // are too few column tiles to share (dense layers, filter gradients).
    if (columnTiles >= 8 || columnTiles >= rowTiles) {
      parallelLoop(builder, nFull, width, [&](OpBuilder &pb, Value j0) {
        // Each thread packs into its own stack buffer.
        Value packed = allocatePacked(pb);
        emitKBlocks(pb, k, [&](OpBuilder &nb, Value kLo, Value kHi) {
          emitRows(nb, kLo, kHi, m, j0, vectors, lanes, packed);
        });
      });
      if (nRest > 0) {
        int64_t numVectors = (nRest + lanes - 1) / lanes;
        int64_t lastWidth = nRest - (numVectors - 1) * lanes;
        Value packed = allocatePacked(builder);
        emitKBlocks(builder, k, [&](OpBuilder &nb, Value kLo, Value kHi) {
          emitRows(nb, kLo, kHi, m, index(nb, nFull), numVectors, lastWidth,
                   packed);
        });
      }
      return true;
    }
    auto rowBand = [&](OpBuilder &builder, Value i0, int64_t numRows) {
      emitKBlocks(builder, k, [&](OpBuilder &nb, Value kLo, Value kHi) {
        emitColumns(nb, kLo, kHi, n,
                    [&](OpBuilder &cb, Value j0, int64_t nv, int64_t lw) {
                      emitTile(cb, kLo, kHi, i0, numRows, j0, nv, lw, Value());
                    });
      });
    };
    parallelLoop(builder, mFull, rows,
                 [&](OpBuilder &pb, Value i0) { rowBand(pb, i0, rows); });
    if (mRest > 0)
      rowBand(builder, index(builder, mFull), mRest);
    return true;
  }

private:
  Value index(OpBuilder &builder, int64_t v) {
    return builder.create<arith::ConstantIndexOp>(loc, v);
  }

  Value offset(OpBuilder &builder, Value base, int64_t delta) {
    if (delta == 0)
      return base;
    return builder.create<arith::AddIOp>(loc, base, index(builder, delta));
  }

  void forLoop(OpBuilder &builder, int64_t lo, int64_t hi, int64_t step,
               function_ref<void(OpBuilder &, Value)> body) {
    kiln::buildConstantLoop(builder, loc, lo, hi, step, /*parallel=*/false,
                            body);
  }

  using KBlockBody = function_ref<void(OpBuilder &, Value, Value)>;
  using ColumnBody = function_ref<void(OpBuilder &, Value, int64_t, int64_t)>;

  /// The blocks of `kBlock` values of k in [0, k), in order. When C starts
  /// from zero, the first block is peeled off the loop and its tiles start
  /// from zero vectors (`fromZero`) instead of loading C.
  void emitKBlocks(OpBuilder &builder, int64_t k, KBlockBody body) {
    if (k <= kBlock) {
      fromZero = zeroInit;
      body(builder, index(builder, 0), index(builder, k));
      fromZero = false;
      return;
    }
    int64_t start = 0;
    if (zeroInit) {
      fromZero = true;
      body(builder, index(builder, 0), index(builder, kBlock));
      fromZero = false;
      start = kBlock;
    }
    forLoop(builder, start, k, kBlock, [&](OpBuilder &nb, Value k0) {
      Value end = nb.create<arith::AddIOp>(loc, k0, index(nb, kBlock));
      Value kHi = nb.create<arith::MinSIOp>(loc, end, index(nb, k));
      body(nb, k0, kHi);
    });
  }

  void parallelLoop(OpBuilder &builder, int64_t hi, int64_t step,
                    function_ref<void(OpBuilder &, Value)> body) {
    kiln::buildConstantLoop(builder, loc, 0, hi, step, /*parallel=*/true, body);
  }

  /// All column tiles, then the partial one: `body` gets the first column,
  /// the number of vectors and the lanes of the last vector.
  void emitColumns(OpBuilder &builder, Value kLo, Value kHi, int64_t n,
                   ColumnBody body) {
    int64_t width = vectors * lanes;
    int64_t nFull = n - n % width, nRest = n - nFull;
    if (nFull > 0)
      forLoop(builder, 0, nFull, width,
              [&](OpBuilder &nb, Value j0) { body(nb, j0, vectors, lanes); });
    if (nRest > 0) {
      int64_t numVectors = (nRest + lanes - 1) / lanes;
      int64_t lastWidth = nRest - (numVectors - 1) * lanes;
      body(builder, index(builder, nFull), numVectors, lastWidth);
    }
  }

  /// A stack buffer for one packed block of B ([k block, tile width]), or
  /// null when B is not packed.
  Value allocatePacked(OpBuilder &builder) {
    if (packRows == 0)
      return Value();
    auto type = MemRefType::get({packRows, vectors * lanes},
                                vectorType.getElementType());
    return builder.create<memref::AllocaOp>(loc, type,
                                            builder.getI64IntegerAttr(64));
  }

  /// Copies B[kLo:kHi, j0:j0 + numVectors * lanes] to rows [0, kHi - kLo) of
  /// `packed`, zeros past `lastWidth` in the last vector.
  void packB(OpBuilder &builder, Value packed, Value kLo, Value kHi, Value j0,
             int64_t numVectors, int64_t lastWidth) {
    Value zero = builder.create<arith::ConstantOp>(
        loc, vectorType, builder.getZeroAttr(vectorType));
    Value mask;
    if (lastWidth < lanes)
      mask = builder.create<vector::ConstantMaskOp>(
          loc, VectorType::get({lanes}, builder.getI1Type()),
          builder.getI64ArrayAttr({lastWidth}));
    builder.create<scf::ForOp>(
        loc, kLo, kHi, index(builder, 1), ValueRange{},
        [&](OpBuilder &nb, Location nl, Value k, ValueRange) {
          Value row = nb.create<arith::SubIOp>(nl, k, kLo);
          for (int64_t v = 0; v < numVectors; ++v) {
            Value column = offset(nb, j0, v * lanes);
            Value value =
                mask && v == numVectors - 1
                    ? nb.create<vector::MaskedLoadOp>(
                          nl, vectorType, b, ValueRange{k, column}, mask, zero)
                    : nb.create<vector::LoadOp>(nl, vectorType, b,
                                                ValueRange{k, column})
                          .getResult();
            nb.create<vector::StoreOp>(nl, value, packed,
                                       ValueRange{row, index(nb, v * lanes)});
          }
          nb.create<scf::YieldOp>(nl);
        });
  }

  /// All row tiles of one column tile, then the partial one; with `packed`,
  /// from a packed copy of the column tile's block of B (contiguous, so that
  /// the row tiles read it from L1: B's rows are often a multiple of 4 KiB
  /// apart, and a column of them then maps to one L1 set).
  void emitRows(OpBuilder &builder, Value kLo, Value kHi, int64_t m, Value j0,
                int64_t numVectors, int64_t lastWidth, Value packed) {
    if (packed)
      packB(builder, packed, kLo, kHi, j0, numVectors, lastWidth);
    int64_t mFull = m - m % rows, mRest = m - mFull;
    if (mFull > 0)
      forLoop(builder, 0, mFull, rows, [&](OpBuilder &nb, Value i0) {
        emitTile(nb, kLo, kHi, i0, rows, j0, numVectors, lastWidth, packed);
      });
    if (mRest > 0)
      emitTile(builder, kLo, kHi, index(builder, mFull), mRest, j0, numVectors,
               lastWidth, packed);
  }

  /// C[i0 + r, j0 + v * lanes + l] += sum over k in [kLo, kHi) of
  /// A[i0 + r, k] * B[k, ...] for r < numRows, v < numVectors, with the last
  /// vector masked to `lastWidth` lanes.
  void emitTile(OpBuilder &builder, Value kLo, Value kHi, Value i0,
                int64_t numRows, Value j0, int64_t numVectors,
                int64_t lastWidth, Value packed) {
    Value mask;
    if (lastWidth < lanes) {
      auto maskType = VectorType::get({lanes}, builder.getI1Type());
      mask = builder.create<vector::ConstantMaskOp>(
          loc, maskType, builder.getI64ArrayAttr({lastWidth}));
    }
    Value zero = builder.create<arith::ConstantOp>(
        loc, vectorType, builder.getZeroAttr(vectorType));
    SmallVector<Value> rowIndex, colIndex;
    for (int64_t r = 0; r < numRows; ++r)
      rowIndex.push_back(offset(builder, i0, r));
    for (int64_t v = 0; v < numVectors; ++v)
      colIndex.push_back(offset(builder, j0, v * lanes));
    auto isMasked = [&](int64_t v) { return mask && v == numVectors - 1; };
    auto load = [&](OpBuilder &nb, Value memref, Value i, int64_t v) -> Value {
      SmallVector<Value, 2> indices = {i, colIndex[v]};
      if (isMasked(v))
        return nb.create<vector::MaskedLoadOp>(loc, vectorType, memref, indices,
                                               mask, zero);
      return nb.create<vector::LoadOp>(loc, vectorType, memref, indices);
    };

    SmallVector<Value> acc;
    for (int64_t r = 0; r < numRows; ++r)
      for (int64_t v = 0; v < numVectors; ++v)
        acc.push_back(fromZero ? zero : load(builder, c, rowIndex[r], v));
    auto loop = builder.create<scf::ForOp>(
        loc, kLo, kHi, index(builder, 1), acc,
        [&](OpBuilder &nb, Location nl, Value k, ValueRange iter) {
          SmallVector<Value> rowB;
          if (packed) {
            // Zeros past the last width: no mask needed.
            Value row = nb.create<arith::SubIOp>(nl, k, kLo);
            for (int64_t v = 0; v < numVectors; ++v)
              rowB.push_back(nb.create<vector::LoadOp>(
                  nl, vectorType, packed,
                  ValueRange{row, index(nb, v * lanes)}));
          } else {
            for (int64_t v = 0; v < numVectors; ++v)
              rowB.push_back(load(nb, b, k, v));
          }
          SmallVector<Value> next;
          for (int64_t r = 0; r < numRows; ++r) {
            Value scalar = nb.create<memref::LoadOp>(
                nl, a,
                transposeA ? ValueRange{k, rowIndex[r]}
                           : ValueRange{rowIndex[r], k});
            Value splat =
                nb.create<vector::BroadcastOp>(nl, vectorType, scalar);
            for (int64_t v = 0; v < numVectors; ++v)
              next.push_back(nb.create<vector::FMAOp>(
                  nl, splat, rowB[v], iter[r * numVectors + v]));
          }
          nb.create<scf::YieldOp>(nl, next);
        });
    for (int64_t r = 0; r < numRows; ++r) {
      for (int64_t v = 0; v < numVectors; ++v) {
        Value value = loop.getResult(r * numVectors + v);
        SmallVector<Value, 2> indices = {rowIndex[r], colIndex[v]};
        if (isMasked(v))
          builder.create<vector::MaskedStoreOp>(loc, c, indices, mask, value);
        else
          builder.create<vector::StoreOp>(loc, value, c, indices);
      }
    }
  }

  Location loc;
  Value a, b, c;
  int64_t lanes, rows, vectors, kBlock;
  /// C holds zeros (a linalg.fill that was erased): the first k block starts
  /// its accumulators from zero instead of loading them.
  bool zeroInit;
  /// A is stored transposed ([k, m]: linalg.matmul_transpose_a).
  bool transposeA;
  /// Set while emitting the first k block of a zero-initialized C.
  bool fromZero = false;
  /// Rows of the packed block of B (min(k, kBlock)), 0 when B is not packed.
  int64_t packRows = 0;
  VectorType vectorType;
};

/// Static shape of `rank`, f32 or f64, unit stride in the last dimension
/// (vector loads).
bool isVectorizable(Value v, Type element, int64_t rank) {
  auto type = dyn_cast<MemRefType>(v.getType());
  return type && type.hasStaticShape() && type.getRank() == rank &&
         type.getElementType() == element && isLastMemrefDimUnitStride(type);
}

/// Matrix `i` of a batch of matrices [count, rows, columns], as a rank-2
/// view.
Value matrixOf(OpBuilder &builder, Location loc, Value batch, Value i) {
  auto type = cast<MemRefType>(batch.getType());
  ArrayRef<int64_t> shape = type.getShape();
  SmallVector<OpFoldResult> offsets = {i, builder.getIndexAttr(0),
                                       builder.getIndexAttr(0)};
  SmallVector<OpFoldResult> sizes = {builder.getIndexAttr(1),
                                     builder.getIndexAttr(shape[1]),
                                     builder.getIndexAttr(shape[2])};
  SmallVector<OpFoldResult> strides(3, builder.getIndexAttr(1));
  auto viewType =
      cast<MemRefType>(memref::SubViewOp::inferRankReducedResultType(
          shape.drop_front(), type, offsets, sizes, strides));
  return builder.create<memref::SubViewOp>(loc, viewType, batch, offsets, sizes,
                                           strides);
}

struct KilnVectorizeMatmulPass
    : kiln::impl::KilnVectorizeMatmulBase<KilnVectorizeMatmulPass> {
  using KilnVectorizeMatmulBase::KilnVectorizeMatmulBase;

  void runOnOperation() override {
    int64_t bits = vectorBits ? vectorBits : kiln::hostVectorBits();
    // 16 accumulators of the 32 AVX-512 registers; 8 of AVX2's 16.
    int64_t tileRows = rows ? rows : bits >= 512 ? 8 : 4;
    if (tileRows < 1 || vectors < 1 || kBlock < 1 || bits < 64) {
      getOperation().emitError("kiln-vectorize-matmul: rows, vectors and "
                               "k-block must be positive, vector-bits >= 64");
      return signalPassFailure();
    }
    int64_t vectorized = 0, parallelCount = 0;
    // linalg.matmul, linalg.matmul_transpose_a (A stored [k, m]) and
    // linalg.batch_matmul.
    SmallVector<linalg::LinalgOp> matmuls;
    getOperation().walk([&](linalg::LinalgOp op) {
      if (isa<linalg::MatmulOp, linalg::MatmulTransposeAOp,
              linalg::BatchMatmulOp>(op))
        matmuls.push_back(op);
    });
    for (linalg::LinalgOp op : matmuls) {
      if (!op.hasPureBufferSemantics())
        continue;
      bool transposeA = isa<linalg::MatmulTransposeAOp>(op);
      bool batched = isa<linalg::BatchMatmulOp>(op);
      int64_t rank = batched ? 3 : 2;
      Value a = op.getDpsInputs()[0], b = op.getDpsInputs()[1];
      Value c = op.getDpsInits()[0];
      Type element = cast<MemRefType>(c.getType()).getElementType();
      if (!element.isF32() && !element.isF64())
        continue;
      if (!isVectorizable(a, element, rank) ||
          !isVectorizable(b, element, rank) ||
          !isVectorizable(c, element, rank))
        continue;
      // The default region computes c + a * b; a cast or another body is
      // left to convert-linalg-to-loops.
      if (!llvm::hasSingleElement(op->getRegion(0)) ||
          op->getRegion(0).front().getOperations().size() != 3)
        continue;
      int64_t lanes = bits / element.getIntOrFloatBitWidth();
      ArrayRef<int64_t> shapeA = cast<MemRefType>(a.getType()).getShape();
      ArrayRef<int64_t> shapeC = cast<MemRefType>(c.getType()).getShape();
      int64_t count = batched ? shapeC[0] : 1;
      int64_t flops = 2 * count * shapeC[rank - 2] * shapeC[rank - 1] *
                      shapeA[transposeA ? 0 : rank - 1];
      // Below the threshold the fork/join costs more than the second core
      // saves.
      bool large = flops >= parallelMinFlops;
      // A zero fill of C right before the product is folded into it.
      auto fill = dyn_cast_or_null<linalg::FillOp>(op->getPrevNode());
      bool zeroInit = fill && fill.hasPureBufferSemantics() &&
                      fill.getDpsInits()[0] == c &&
                      matchPattern(fill.getDpsInputs()[0], m_PosZeroFloat());
      if (zeroInit)
        fill.erase();
      OpBuilder builder(op);
      bool split = false;
      // Inside a loop (a scan's step, an attention's tile) the packing
      // buffer would be a stack allocation per iteration; inside a parallel
      // loop (an attention's chunks) the threads are taken.
      bool inLoop = op->getParentOfType<LoopLikeOpInterface>() != nullptr;
      bool splittable =
          parallel && large && !op->getParentOfType<scf::ParallelOp>();
      if (batched) {
        // One kernel per matrix of the batch, on rank-reduced views; the
        // matrices are independent, so a large batch splits over threads
        // by matrix (each kernel then runs serially).
        bool overBatch = splittable && count >= 2;
        kiln::buildConstantLoop(
            builder, op.getLoc(), 0, count, 1, overBatch,
            [&](OpBuilder &nb, Value i) {
              MatmulEmitter(op.getLoc(), matrixOf(nb, op.getLoc(), a, i),
                            matrixOf(nb, op.getLoc(), b, i),
                            matrixOf(nb, op.getLoc(), c, i), lanes, tileRows,
                            vectors, kBlock, zeroInit, /*transposeA=*/false)
                  .emit(nb, splittable && !overBatch, /*mayPack=*/false);
            });
        split = overBatch;
      } else {
        split = MatmulEmitter(op.getLoc(), a, b, c, lanes, tileRows, vectors,
                              kBlock, zeroInit, transposeA)
                    .emit(builder, splittable, !inLoop);
      }
      if (split) {
        ++numParallel;
        ++parallelCount;
      }
      op.erase();
      ++numVectorized;
      ++vectorized;
    }
    if (report)
      emitRemark(getOperation().getLoc())
          << "kiln-vectorize-matmul: @" << getOperation().getSymName() << ": "
          << vectorized << " matmuls vectorized, " << parallelCount
          << " split over threads";
  }
};

} // namespace

void kiln::buildConstantLoop(OpBuilder &builder, Location loc, int64_t lo,
                             int64_t hi, int64_t step, bool parallel,
                             function_ref<void(OpBuilder &, Value)> body) {
  if (lo >= hi)
    return;
  auto index = [&](int64_t v) -> Value {
    return builder.create<arith::ConstantIndexOp>(loc, v);
  };
  if (parallel) {
    builder.create<scf::ParallelOp>(
        loc, ValueRange{index(lo)}, ValueRange{index(hi)},
        ValueRange{index(step)},
        [&](OpBuilder &nb, Location, ValueRange ivs) { body(nb, ivs[0]); });
    return;
  }
  builder.create<scf::ForOp>(
      loc, index(lo), index(hi), index(step), ValueRange{},
      [&](OpBuilder &nb, Location nl, Value iv, ValueRange) {
        body(nb, iv);
        nb.create<scf::YieldOp>(nl);
      });
}

int64_t kiln::hostVectorBits() {
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  if (features.lookup("avx512f"))
    return 512;
  return 256;
}
