//===- LowerAttention.cpp - kiln.attention as tiled FlashAttention loops --===//
//
// kiln.attention and kiln.attention_backward become loops over tiles of
// kTile queries and kTile keys that never form the Tq x Tk score matrix: the
// forward pass keeps, for each query of a tile, the running maximum m and sum
// l of its exponentiated scores and an accumulator of its output, rescaled
// whenever a new tile of keys raises the maximum (the online softmax of
// FlashAttention); it saves only the log-sum-exp m + log l of each query. The
// backward pass (FlashAttention-2's) walks tiles of keys, and for each the
// tiles of queries that see them, recomputing the probabilities from q, k and
// the saved log-sum-exp, and accumulates dq, dk and dv.
//
// The kernels are written on buffers, inside the tensor program: operands
// enter through bufferization.to_memref (read-only), results leave through
// bufferization.to_tensor of fresh allocations, which One-Shot Bufferize
// accepts as they are and kiln-static-buffers places in the arena. Each
// product of two tiles is a linalg.matmul (or matmul_transpose_a) on views,
// which kiln-vectorize-matmul turns into its register-tiled kernel; k and v
// are transposed once ([D, Tk]) so that q k^T and dout v^T read their
// right-hand sides by rows. The softmax steps run on each row of a tile in
// vectors of the host's width (masked loads and stores for a partial last
// vector): LLVM would not vectorize them as loops over strided views. The
// batch (batch dimensions times heads) is split into chunks run in parallel
// (scf.parallel, OpenMP later); each chunk has its own scratch tiles, a few
// hundred KiB in all whatever the sequence length, so the memory grows
// linearly in T (the operands and results), never as T^2.
//
// With `causal`, tiles of keys past a tile of queries are skipped (the
// tiles are aligned: both are kTile wide), and within the diagonal tiles a
// masked score gets probability 0; a key mask hides keys the same way. The
// running maximum starts at the lowest finite number, and its rescaling
// factor exp(m_old - m_new) is taken at no less than exp(kMinExponent), so a
// query whose first tiles hide every key never computes inf - inf; a query
// that sees no key at all ends with l = 0, output 0 and log-sum-exp +inf.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"
#include "codegen/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Transforms/DialectConversion.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace kiln::lowering;

namespace {

/// Queries and keys per tile.
constexpr int64_t kTile = 64;
/// The most chunks the batch is split into (each has its own scratch).
constexpr int64_t kMaxChunks = 64;
/// exp(x) for x below this is taken at this value: the running maximum
/// starts at the lowest finite number, and exp of the difference must stay
/// a tiny number, not an overflow (x 0 = 0 in the accumulators).
constexpr double kMinExponent = -80.0;

/// Builds the loops of one attention (forward or backward) on buffers of
/// rank 3 ([batch, rows, columns]) and rank 2 ([batch, rows]).
class AttentionKernel {
public:
  AttentionKernel(OpBuilder &b, Location loc, Type element, int64_t batch,
                  int64_t tq, int64_t tk, int64_t d, int64_t dv, double scale,
                  bool causal)
      : b(b), loc(loc), element(element), batch(batch), tq(tq), tk(tk), d(d),
        dv(dv), scale(scale), causal(causal) {
    perChunk = llvm::divideCeil(batch, std::min(batch, kMaxChunks));
    chunks = llvm::divideCeil(batch, perChunk);
    tile = std::min(kTile, std::max(tq, tk));
    lanes = kiln::hostVectorBits() / element.getIntOrFloatBitWidth();
    vectorType = VectorType::get({lanes}, element);
  }

  /// Drops probabilities with `rate` under the i32 key `key` (ir/Random.h),
  /// numbering them from the i32 `base` (buildShardBase).
  void setDropout(Value key, double rate, Value base) {
    dropKey = key;
    dropRate = rate;
    dropBase = base;
  }

  /// out [N, Tq, Dv] and lse [N, Tq] from q [N, Tq, D], k [N, Tk, D] and
  /// v [N, Tk, Dv].
  void forward(Value q, Value k, Value v, Value mask, Value out, Value lse) {
    keyMask = mask;
    Value kt = transposed(k);
    Value sBuf = alloc({chunks, tile, tile});
    Value accBuf = alloc({chunks, tile, dv});
    Value mBuf = alloc({chunks, tile}), lBuf = alloc({chunks, tile});
    forEachBatch([&](Value c, Value n) {
      forTiles(cst(0), tq, [&](Value i0, int64_t rows) {
        Value m = scratch(mBuf, c, {rows}), l = scratch(lBuf, c, {rows});
        Value acc = scratch(accBuf, c, {rows, dv});
        fill(m, lowest());
        fill(l, 0.0);
        fill(acc, 0.0);
        Value qi = rowsOf(q, n, i0, rows, d);
        auto keyTile = [&](Value j0, int64_t cols) {
          Value s = scratch(sBuf, c, {rows, cols});
          fill(s, 0.0);
          matmul(qi, columnsOf(kt, n, j0, d, cols), s);
          SmallVector<Value> keys = keysShown(n, j0, cols);
          forLoop(cst(0), cst(rows), 1, [&](Value r) {
            onlineSoftmaxRow(s, m, l, acc, n, r, i0, j0, cols, keys);
          });
          matmul(s, rowsOf(v, n, j0, cols, dv), acc);
        };
        // Key tiles up to the diagonal (causal) or all of them.
        int64_t tkFull = tk - tk % tile;
        Value end = cst(tkFull);
        if (causal)
          end = b.create<arith::MinSIOp>(loc, add(i0, rows), end);
        forFullTiles(cst(0), end, [&](Value j0) { keyTile(j0, tile); });
        if (tkFull < tk) {
          if (causal)
            ifThen(cmp(arith::CmpIPredicate::sgt, add(i0, rows), cst(tkFull)),
                   [&] { keyTile(cst(tkFull), tk - tkFull); });
          else
            keyTile(cst(tkFull), tk - tkFull);
        }
        // out = acc / l; lse = m + log(l). A query that saw no key (all
        // masked: l = 0) gets 0 and +inf.
        generic({l}, {acc}, {rowMap(), identity()}, parallel(2),
                [&](Scalar &sc, ValueRange a) -> SmallVector<Value> {
                  Value seen = sc.gt(a[0], sc.cst(element, 0.0));
                  return {sc.select(seen, sc.div(a[1], a[0]),
                                    sc.cst(element, 0.0))};
                });
        b.create<linalg::CopyOp>(loc, ValueRange{acc},
                                 ValueRange{rowsOf(out, n, i0, rows, dv)});
        generic({m, l}, {entriesOf(lse, n, i0, rows)},
                SmallVector<AffineMap>(3, b.getMultiDimIdentityMap(1)),
                parallel(1),
                [&](Scalar &sc, ValueRange a) -> SmallVector<Value> {
                  Value seen = sc.gt(a[1], sc.cst(element, 0.0));
                  return {sc.select(seen, sc.add(a[0], sc.log(a[1])),
                                    sc.cst(element, INFINITY))};
                });
      });
    });
  }

  /// dq, dk, dv (zero-filled here) from the forward operands and results and
  /// the results' gradients.
  void backward(Value q, Value k, Value v, Value mask, Value out, Value lse,
                Value dout, Value dlse, Value gradQ, Value gradK, Value gradV) {
    keyMask = mask;
    Value kt = transposed(k), vt = transposed(v);
    // delta = rowsum(dout * out) - dlse: what the softmax's gradient
    // subtracts from each query's dp.
    Value delta = alloc({batch, tq});
    generic({dlse}, {delta}, {identity(), identity()}, parallel(2),
            [&](Scalar &sc, ValueRange a) -> SmallVector<Value> {
              return {sc.neg(a[0])};
            });
    {
      auto rows3 = AffineMap::getMultiDimIdentityMap(3, b.getContext());
      auto reduced = AffineMap::get(
          3, 0, {b.getAffineDimExpr(0), b.getAffineDimExpr(1)}, b.getContext());
      generic({dout, out}, {delta}, {rows3, rows3, reduced},
              {utils::IteratorType::parallel, utils::IteratorType::parallel,
               utils::IteratorType::reduction},
              [&](Scalar &sc, ValueRange a) -> SmallVector<Value> {
                return {sc.accumulate(a[2], sc.mul(a[0], a[1]))};
              });
    }
    for (Value g : {gradQ, gradK, gradV})
      fill(g, 0.0);
    Value sBuf = alloc({chunks, tile, tile});
    Value dpBuf = alloc({chunks, tile, tile});
    // With dropout: the dropped probabilities beside the probabilities.
    Value pdBuf = dropKey ? alloc({chunks, tile, tile}) : Value();
    forEachBatch([&](Value c, Value n) {
      auto tilePair = [&](Value i0, int64_t rows, Value j0, int64_t cols) {
        Value qi = rowsOf(q, n, i0, rows, d);
        Value doi = rowsOf(dout, n, i0, rows, dv);
        Value lsei = entriesOf(lse, n, i0, rows);
        Value deltai = entriesOf(delta, n, i0, rows);
        // p = exp(q k^T * scale - lse), recomputed.
        Value p = scratch(sBuf, c, {rows, cols});
        fill(p, 0.0);
        matmul(qi, columnsOf(kt, n, j0, d, cols), p);
        SmallVector<Value> keys = keysShown(n, j0, cols);
        Value pd = pdBuf ? scratch(pdBuf, c, {rows, cols}) : p;
        forLoop(cst(0), cst(rows), 1, [&](Value r) {
          probabilityRow(p, pd, lsei, n, r, i0, j0, cols, keys);
        });
        // dv_j += pd^T dout_i (pd: p as dropout left it).
        b.create<linalg::MatmulTransposeAOp>(
            loc, ValueRange{pd, doi},
            ValueRange{rowsOf(gradV, n, j0, cols, dv)});
        // ds = p * (dout_i v_j^T - delta) * scale, in dp's tile.
        Value ds = scratch(dpBuf, c, {rows, cols});
        fill(ds, 0.0);
        matmul(doi, columnsOf(vt, n, j0, dv, cols), ds);
        forLoop(cst(0), cst(rows), 1,
                [&](Value r) { scoreGradientRow(p, pd, ds, deltai, r, cols); });
        // dq_i += ds k_j; dk_j += ds^T q_i.
        matmul(ds, rowsOf(k, n, j0, cols, d), rowsOf(gradQ, n, i0, rows, d));
        b.create<linalg::MatmulTransposeAOp>(
            loc, ValueRange{ds, qi}, ValueRange{rowsOf(gradK, n, j0, cols, d)});
      };
      forTiles(cst(0), tk, [&](Value j0, int64_t cols) {
        // Query tiles from the diagonal (causal) or all of them.
        int64_t tqFull = tq - tq % tile;
        forFullTiles(causal ? j0 : cst(0), cst(tqFull),
                     [&](Value i0) { tilePair(i0, tile, j0, cols); });
        if (tqFull < tq) {
          auto last = [&] { tilePair(cst(tqFull), tq - tqFull, j0, cols); };
          if (causal)
            ifThen(cmp(arith::CmpIPredicate::sle, j0, cst(tqFull)), last);
          else
            last();
        }
      });
    });
  }

private:
  using GenericBody = function_ref<SmallVector<Value>(Scalar &, ValueRange)>;

  //===--------------------------------------------------------------------===//
  // One row of a tile, in vectors of `lanes` elements (the last one masked
  // when the row is not a multiple of it)
  //===--------------------------------------------------------------------===//

  Value splat(double v) {
    return b.create<arith::ConstantOp>(
        loc, DenseElementsAttr::get(vectorType, b.getFloatAttr(element, v)));
  }
  Value scalarConst(double v) {
    return b.create<arith::ConstantOp>(loc, b.getFloatAttr(element, v));
  }
  Value broadcast(Value scalar) {
    return b.create<vector::BroadcastOp>(loc, vectorType, scalar);
  }
  /// Lanes of vector `v` of a row of `width` elements that lie in the row;
  /// null when all do.
  Value tailMask(int64_t v, int64_t width) {
    int64_t valid = std::min(lanes, width - v * lanes);
    if (valid == lanes)
      return Value();
    return b.create<vector::ConstantMaskOp>(
        loc, VectorType::get({lanes}, b.getI1Type()),
        b.getI64ArrayAttr({valid}));
  }
  Value load(Value row2d, Value r, int64_t v, int64_t width, double pad) {
    SmallVector<Value, 2> indices = {r, cst(v * lanes)};
    if (Value mask = tailMask(v, width))
      return b.create<vector::MaskedLoadOp>(loc, vectorType, row2d, indices,
                                            mask, splat(pad));
    return b.create<vector::LoadOp>(loc, vectorType, row2d, indices);
  }
  void store(Value value, Value row2d, Value r, int64_t v, int64_t width) {
    SmallVector<Value, 2> indices = {r, cst(v * lanes)};
    if (Value mask = tailMask(v, width))
      b.create<vector::MaskedStoreOp>(loc, row2d, indices, mask, value);
    else
      b.create<vector::StoreOp>(loc, value, row2d, indices);
  }
  int64_t vectorsOf(int64_t width) const {
    return llvm::divideCeil(width, lanes);
  }
  /// With `causal`, the lanes of vector `v` of row r whose key j0 + v * lanes
  /// + lane the query i0 + r sees; null when not causal.
  Value causalMask(Value i0, Value r, Value j0, int64_t v) {
    if (!causal)
      return Value();
    Value keys = laneIndices(add(j0, v * lanes), b.getI64Type());
    Value query = b.create<vector::BroadcastOp>(
        loc, keys.getType(),
        b.create<arith::IndexCastOp>(loc, b.getI64Type(),
                                     b.create<arith::AddIOp>(loc, i0, r)));
    return b.create<arith::CmpIOp>(loc, arith::CmpIPredicate::sle, keys, query);
  }
  /// The vector first, first + 1, ..., first + lanes - 1 of integers of
  /// `type` (i32 wraps around, as ir/Random.h's counters do).
  Value laneIndices(Value first, IntegerType type) {
    auto laneType = VectorType::get({lanes}, type);
    SmallVector<APInt> iota;
    for (int64_t i = 0; i < lanes; ++i)
      iota.push_back(APInt(type.getWidth(), i));
    return b.create<arith::AddIOp>(
        loc,
        b.create<vector::BroadcastOp>(
            loc, laneType, b.create<arith::IndexCastOp>(loc, type, first)),
        b.create<arith::ConstantOp>(loc,
                                    DenseElementsAttr::get(laneType, iota)));
  }
  /// Per vector of a key tile [j0, j0 + cols) of batch element n, the keys
  /// the key mask shows (null: no mask).
  SmallVector<Value> keysShown(Value n, Value j0, int64_t cols) {
    SmallVector<Value> shown(vectorsOf(cols));
    if (!keyMask)
      return shown;
    Value row = view(keyMask, {n, j0}, {1, cols}, {1, cols});
    for (int64_t v = 0; v < vectorsOf(cols); ++v)
      shown[v] =
          b.create<arith::CmpFOp>(loc, arith::CmpFPredicate::UNE,
                                  load(row, cst(0), v, cols, 0.0), splat(0.0));
    return shown;
  }
  /// Lanes of vector `v` that are real keys the query sees (null: all):
  /// within the tile, not after the query (causal), shown by the key mask.
  Value validMask(Value i0, Value r, Value j0, int64_t v, int64_t width,
                  ArrayRef<Value> keys) {
    Value valid;
    for (Value m : {tailMask(v, width), causalMask(i0, r, j0, v), keys[v]})
      if (m)
        valid = valid ? b.create<arith::AndIOp>(loc, valid, m).getResult() : m;
    return valid;
  }
  Value select(Value mask, Value x, double otherwise) {
    return mask ? b.create<arith::SelectOp>(loc, mask, x, splat(otherwise))
                      .getResult()
                : x;
  }
  Value reduce(vector::CombiningKind kind, ArrayRef<Value> vectors) {
    Value all = vectors.front();
    for (Value v : vectors.drop_front())
      all = kind == vector::CombiningKind::ADD
                ? b.create<arith::AddFOp>(loc, all, v, fastMath).getResult()
                : b.create<arith::MaximumFOp>(loc, all, v).getResult();
    return b.create<vector::ReductionOp>(loc, kind, all, Value(), fastMath);
  }
  Value exp(Value x) { return b.create<math::ExpOp>(loc, x, fastMath); }

  /// With dropout, the factors of vector `v` of row r of the tile at
  /// (n, i0, j0): 0 for a dropped probability, 1 / (1 - rate) for a kept
  /// one, by the hash of its index in [N, Tq, Tk]; null without dropout.
  Value dropFactor(Value n, Value i0, Value r, Value j0, int64_t v) {
    if (!dropKey)
      return Value();
    auto mul = [&](Value x, int64_t c) {
      return b.create<arith::MulIOp>(loc, x, cst(c)).getResult();
    };
    Value query = b.create<arith::AddIOp>(
        loc, b.create<arith::AddIOp>(loc, mul(n, tq), i0), r);
    Value first =
        b.create<arith::AddIOp>(loc, mul(query, tk), add(j0, v * lanes));
    Value counter = b.create<arith::AddIOp>(
        loc, laneIndices(first, b.getI32Type()),
        b.create<vector::BroadcastOp>(
            loc, VectorType::get({lanes}, b.getI32Type()), dropBase));
    Value bits = randomBits24(b, loc, dropKey, counter);
    Value kept = b.create<arith::CmpIOp>(
        loc, arith::CmpIPredicate::uge, bits,
        constU32(b, loc, dropThreshold(dropRate), bits));
    return b.create<arith::SelectOp>(loc, kept, splat(1.0 / (1.0 - dropRate)),
                                     splat(0.0));
  }

  /// The forward pass's step for row r of a tile of scores s (replaced by
  /// its probabilities relative to the new maximum): the running maximum
  /// m[r] and sum l[r] move to the new maximum, and row r of the output
  /// accumulator is rescaled to it.
  void onlineSoftmaxRow(Value s, Value m, Value l, Value acc, Value n, Value r,
                        Value i0, Value j0, int64_t cols,
                        ArrayRef<Value> keys) {
    double low = lowest();
    SmallVector<Value> x, valid;
    for (int64_t v = 0; v < vectorsOf(cols); ++v) {
      valid.push_back(validMask(i0, r, j0, v, cols, keys));
      Value scaled = b.create<arith::MulFOp>(loc, load(s, r, v, cols, 0.0),
                                             splat(scale), fastMath);
      x.push_back(select(valid.back(), scaled, low));
    }
    Value mOld = b.create<memref::LoadOp>(loc, m, r);
    Value mNew = b.create<arith::MaximumFOp>(
        loc, mOld, reduce(vector::CombiningKind::MAXIMUMF, x));
    Value mNewVec = broadcast(mNew);
    SmallVector<Value> p;
    for (int64_t v = 0; v < vectorsOf(cols); ++v) {
      Value e = exp(b.create<arith::SubFOp>(loc, x[v], mNewVec, fastMath));
      p.push_back(select(valid[v], e, 0.0));
      // The sum normalizes the undropped probabilities; the values are
      // weighed by the dropped ones.
      Value factor = dropFactor(n, i0, r, j0, v);
      store(factor ? b.create<arith::MulFOp>(loc, p.back(), factor, fastMath)
                         .getResult()
                   : p.back(),
            s, r, v, cols);
    }
    Value sum = reduce(vector::CombiningKind::ADD, p);
    Value shift = b.create<arith::MaximumFOp>(
        loc, b.create<arith::SubFOp>(loc, mOld, mNew, fastMath),
        scalarConst(kMinExponent));
    Value alpha = exp(shift);
    Value lOld = b.create<memref::LoadOp>(loc, l, r);
    b.create<memref::StoreOp>(
        loc, b.create<math::FmaOp>(loc, lOld, alpha, sum, fastMath), l, r);
    b.create<memref::StoreOp>(loc, mNew, m, r);
    Value alphaVec = broadcast(alpha);
    for (int64_t v = 0; v < vectorsOf(dv); ++v)
      store(b.create<arith::MulFOp>(loc, load(acc, r, v, dv, 0.0), alphaVec,
                                    fastMath),
            acc, r, v, dv);
  }

  /// The backward pass's probabilities, in place of row r of the scores:
  /// exp(s * scale - lse[r]), 0 where masked; with dropout, row r of `pd`
  /// gets them as dropout leaves them.
  void probabilityRow(Value s, Value pd, Value lse, Value n, Value r, Value i0,
                      Value j0, int64_t cols, ArrayRef<Value> keys) {
    Value lseVec = broadcast(b.create<memref::LoadOp>(loc, lse, r));
    for (int64_t v = 0; v < vectorsOf(cols); ++v) {
      Value scaled =
          b.create<math::FmaOp>(loc, load(s, r, v, cols, 0.0), splat(scale),
                                b.create<arith::NegFOp>(loc, lseVec), fastMath);
      Value p = select(validMask(i0, r, j0, v, cols, keys), exp(scaled), 0.0);
      store(p, s, r, v, cols);
      if (Value factor = dropFactor(n, i0, r, j0, v))
        store(b.create<arith::MulFOp>(loc, p, factor, fastMath), pd, r, v,
              cols);
    }
  }

  /// The scores' gradient in place of row r of dp: p * (dp - delta[r]) *
  /// scale; with dropout (pd the dropped p, p times its factor) the
  /// probabilities' gradient is factor * dp, so it is (pd * dp - p *
  /// delta[r]) * scale.
  void scoreGradientRow(Value p, Value pd, Value dp, Value delta, Value r,
                        int64_t cols) {
    Value deltaVec = broadcast(b.create<memref::LoadOp>(loc, delta, r));
    for (int64_t v = 0; v < vectorsOf(cols); ++v) {
      Value dpv = load(dp, r, v, cols, 0.0), pv = load(p, r, v, cols, 0.0);
      Value grad;
      if (dropKey)
        grad = b.create<arith::SubFOp>(
            loc,
            b.create<arith::MulFOp>(loc, load(pd, r, v, cols, 0.0), dpv,
                                    fastMath),
            b.create<arith::MulFOp>(loc, pv, deltaVec, fastMath), fastMath);
      else
        grad = b.create<arith::MulFOp>(
            loc, pv, b.create<arith::SubFOp>(loc, dpv, deltaVec, fastMath),
            fastMath);
      store(b.create<arith::MulFOp>(loc, grad, splat(scale), fastMath), dp, r,
            v, cols);
    }
  }

  Value cst(int64_t v) { return b.create<arith::ConstantIndexOp>(loc, v); }
  Value add(Value x, int64_t v) {
    return b.create<arith::AddIOp>(loc, x, cst(v));
  }
  Value cmp(arith::CmpIPredicate predicate, Value x, Value y) {
    return b.create<arith::CmpIOp>(loc, predicate, x, y);
  }
  double lowest() const {
    return element.isF32() ? -std::numeric_limits<float>::max()
                           : -std::numeric_limits<double>::max();
  }

  Value alloc(ArrayRef<int64_t> shape) {
    return b.create<memref::AllocOp>(loc, MemRefType::get(shape, element),
                                     b.getI64IntegerAttr(64));
  }

  /// [N, T, D] -> [N, D, T].
  Value transposed(Value x) {
    ArrayRef<int64_t> shape = cast<MemRefType>(x.getType()).getShape();
    Value t = alloc({shape[0], shape[2], shape[1]});
    b.create<linalg::TransposeOp>(loc, x, t, ArrayRef<int64_t>{0, 2, 1});
    return t;
  }

  void fill(Value buffer, double value) {
    Value scalar =
        b.create<arith::ConstantOp>(loc, b.getFloatAttr(element, value));
    b.create<linalg::FillOp>(loc, ValueRange{scalar}, ValueRange{buffer});
  }

  void matmul(Value lhs, Value rhs, Value acc) {
    b.create<linalg::MatmulOp>(loc, ValueRange{lhs, rhs}, ValueRange{acc});
  }

  /// A static-size view of `buffer` at `offsets`, without its unit
  /// dimensions beyond `shape`.
  Value view(Value buffer, ArrayRef<OpFoldResult> offsets,
             ArrayRef<int64_t> sizes, ArrayRef<int64_t> shape) {
    auto type = cast<MemRefType>(buffer.getType());
    SmallVector<OpFoldResult> sizeAttrs,
        strides(sizes.size(), b.getIndexAttr(1));
    for (int64_t s : sizes)
      sizeAttrs.push_back(b.getIndexAttr(s));
    auto viewType =
        cast<MemRefType>(memref::SubViewOp::inferRankReducedResultType(
            shape, type, offsets, sizeAttrs, strides));
    return b.create<memref::SubViewOp>(loc, viewType, buffer, offsets,
                                       sizeAttrs, strides);
  }
  /// Rows [row, row + rows) of matrix n of [N, R, C].
  Value rowsOf(Value buffer, Value n, Value row, int64_t rows, int64_t cols) {
    return view(buffer, {n, row, b.getIndexAttr(0)}, {1, rows, cols},
                {rows, cols});
  }
  /// Columns [col, col + cols) of matrix n of [N, R, C].
  Value columnsOf(Value buffer, Value n, Value col, int64_t rows,
                  int64_t cols) {
    return view(buffer, {n, b.getIndexAttr(0), col}, {1, rows, cols},
                {rows, cols});
  }
  /// Entries [row, row + rows) of vector n of [N, T].
  Value entriesOf(Value buffer, Value n, Value row, int64_t rows) {
    return view(buffer, {n, row}, {1, rows}, {rows});
  }
  /// The leading `shape` of chunk c's scratch in [chunks, ...].
  Value scratch(Value buffer, Value c, ArrayRef<int64_t> shape) {
    SmallVector<OpFoldResult> offsets = {c};
    SmallVector<int64_t> sizes = {1};
    for (int64_t s : shape) {
      offsets.push_back(b.getIndexAttr(0));
      sizes.push_back(s);
    }
    return view(buffer, offsets, sizes, shape);
  }

  AffineMap identity() { return b.getMultiDimIdentityMap(2); }
  /// (r, c) -> (r).
  AffineMap rowMap() {
    return AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext());
  }
  SmallVector<utils::IteratorType> parallel(int64_t rank) {
    return SmallVector<utils::IteratorType>(rank,
                                            utils::IteratorType::parallel);
  }

  void generic(ArrayRef<Value> ins, ArrayRef<Value> outs,
               ArrayRef<AffineMap> maps, ArrayRef<utils::IteratorType> iters,
               GenericBody body) {
    b.create<linalg::GenericOp>(
        loc, TypeRange{}, ins, outs, maps, iters,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Scalar sc{nb, nl};
          nb.create<linalg::YieldOp>(nl, body(sc, args));
        });
  }

  /// body(chunk, n) for every n of the batch: chunks in parallel, the n of a
  /// chunk in order.
  void forEachBatch(function_ref<void(Value, Value)> body) {
    b.create<scf::ParallelOp>(
        loc, ValueRange{cst(0)}, ValueRange{cst(chunks)}, ValueRange{cst(1)},
        [&](OpBuilder &nb, Location, ValueRange ivs) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          Value c = ivs[0];
          Value first = b.create<arith::MulIOp>(loc, c, cst(perChunk));
          Value last =
              b.create<arith::MinSIOp>(loc, add(first, perChunk), cst(batch));
          forLoop(first, last, 1, [&](Value n) { body(c, n); });
        });
  }

  void forLoop(Value lo, Value hi, int64_t step,
               function_ref<void(Value)> body) {
    auto loop = b.create<scf::ForOp>(loc, lo, hi, cst(step));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    body(loop.getInductionVar());
  }

  /// The whole tiles starting in [lo, hi) (hi a multiple of the tile).
  void forFullTiles(Value lo, Value hi, function_ref<void(Value)> body) {
    forLoop(lo, hi, tile, body);
  }

  /// Every tile of [lo, total): the whole ones, then the rest.
  void forTiles(Value lo, int64_t total,
                function_ref<void(Value, int64_t)> body) {
    int64_t full = total - total % tile;
    forFullTiles(lo, cst(full), [&](Value t) { body(t, tile); });
    if (full < total)
      body(cst(full), total - full);
  }

  void ifThen(Value condition, function_ref<void()> body) {
    auto op = b.create<scf::IfOp>(loc, condition, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(op.thenBlock()->getTerminator());
    body();
  }

  OpBuilder &b;
  Location loc;
  Type element;
  int64_t batch, tq, tk, d, dv;
  double scale;
  bool causal;
  int64_t tile, chunks, perChunk;
  /// The key mask [N, Tk] (0 hides a key), or null.
  Value keyMask;
  /// Dropout's key and first counter (i32s) and rate; no dropout without a
  /// key.
  Value dropKey, dropBase;
  double dropRate = 0;
  /// Elements per vector (the host's widest), and that vector type.
  int64_t lanes;
  VectorType vectorType;
  static constexpr arith::FastMathFlags fastMath =
      arith::FastMathFlags::contract | arith::FastMathFlags::reassoc;
};

/// How [B..., X...] (`lead` batch dimensions) and [N, X...] correspond:
/// the batch dimensions form the first group; without any, [X...] is
/// [1, X...] (the first group is [0, 1] on the batched side).
SmallVector<ReassociationIndices> batchGroups(int64_t lead, int64_t trailing) {
  SmallVector<ReassociationIndices> groups(1);
  for (int64_t i = 0; i < std::max<int64_t>(lead, 1); ++i)
    groups[0].push_back(i);
  if (lead == 0)
    groups[0].push_back(1);
  int64_t first = groups[0].back() + 1;
  for (int64_t i = 0; i < trailing - (lead == 0 ? 1 : 0); ++i)
    groups.push_back({first + i});
  return groups;
}

/// `x` [B..., X...] with `trailing` dimensions X as [N, X...], N the
/// product of the batch dimensions B.
Value toBatched(OpBuilder &b, Location loc, Value x, int64_t trailing) {
  RankedTensorType type = tensorType(x);
  int64_t lead = type.getRank() - trailing;
  if (lead == 1)
    return x;
  if (lead == 0) {
    SmallVector<int64_t> shape = {1};
    llvm::append_range(shape, type.getShape());
    return b.create<tensor::ExpandShapeOp>(
        loc, RankedTensorType::get(shape, type.getElementType()), x,
        batchGroups(0, trailing));
  }
  return b.create<tensor::CollapseShapeOp>(loc, x, batchGroups(lead, trailing));
}

/// The inverse of toBatched: [N, X...] back to `type`.
Value fromBatched(OpBuilder &b, Location loc, Value x, RankedTensorType type) {
  int64_t trailing = tensorType(x).getRank() - 1;
  int64_t lead = type.getRank() - trailing;
  if (lead == 1)
    return x;
  if (lead == 0)
    return b.create<tensor::CollapseShapeOp>(loc, type, x,
                                             batchGroups(0, trailing));
  return b.create<tensor::ExpandShapeOp>(loc, type, x,
                                         batchGroups(lead, trailing));
}

/// The buffer of a [N, ...] tensor, read-only, with any strides but a unit
/// last one (the kernels' vector loads).
Value readBuffer(OpBuilder &b, Location loc, Value tensor) {
  RankedTensorType type = tensorType(tensor);
  SmallVector<int64_t> strides(type.getRank(), ShapedType::kDynamic);
  strides.back() = 1;
  auto layout =
      StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides);
  auto memrefType =
      MemRefType::get(type.getShape(), type.getElementType(), layout);
  return b.create<bufferization::ToMemrefOp>(loc, memrefType, tensor,
                                             /*read_only=*/true);
}

Value freshBuffer(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                  Type element) {
  return b.create<memref::AllocOp>(loc, MemRefType::get(shape, element),
                                   b.getI64IntegerAttr(64));
}

Value asTensor(OpBuilder &b, Location loc, Value buffer) {
  return b.create<bufferization::ToTensorOp>(loc, buffer, /*restrict=*/true,
                                             /*writable=*/true);
}

struct Sizes {
  int64_t batch, tq, tk, d, dv;
};

Sizes sizesOf(Value q3, Value k3, Value v3) {
  ArrayRef<int64_t> q = tensorType(q3).getShape(),
                    v = tensorType(v3).getShape();
  return {q[0], q[1], tensorType(k3).getShape()[1], q[2], v[2]};
}

/// The key mask [..., Tk], broadcast to the query's batch dimensions and
/// Tk and flattened to [N, Tk], as a buffer; null without a mask.
Value keyMaskBuffer(OpBuilder &b, Location loc, Value mask,
                    RankedTensorType query, const Sizes &s) {
  if (!mask)
    return Value();
  SmallVector<int64_t> shape(query.getShape().drop_back(2));
  shape.push_back(s.tk);
  Value full = buildElementwise(
      b, loc, RankedTensorType::get(shape, query.getElementType()), mask,
      [](OpBuilder &, Location, ValueRange args) { return args[0]; });
  return readBuffer(b, loc, toBatched(b, loc, full, 1));
}

/// The kernel of an attention or of its backward op (the same attributes
/// and optional operands): with a hyper vector and a rate > 0 it drops
/// probabilities under the op's key (ir/Random.h's randomKey of the step,
/// seed and salt). Also the op's key mask as a buffer (or null).
template <typename OpTy>
std::pair<AttentionKernel, Value>
kernelFor(OpTy op, typename OpTy::Adaptor adaptor, OpBuilder &b, Location loc,
          Type element, const Sizes &s) {
  AttentionKernel kernel(b, loc, element, s.batch, s.tq, s.tk, s.d, s.dv,
                         op.getScale().convertToDouble(), op.getCausal());
  double rate = op.getDropout().convertToDouble();
  if (adaptor.getHyper() && rate > 0)
    kernel.setDropout(
        buildRandomKey(b, loc, adaptor.getHyper(), op.getSalt(), Value()), rate,
        buildShardBase(b, loc, adaptor.getHyper(), s.batch * s.tq * s.tk));
  Value mask =
      keyMaskBuffer(b, loc, adaptor.getKeyMask(), op.getQuery().getType(), s);
  return {kernel, mask};
}

struct AttentionLowering : OpConversionPattern<kiln::AttentionOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::AttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type element = op.getOut().getType().getElementType();
    Value q = toBatched(rewriter, loc, adaptor.getQuery(), 2);
    Value k = toBatched(rewriter, loc, adaptor.getKey(), 2);
    Value v = toBatched(rewriter, loc, adaptor.getValue(), 2);
    Sizes s = sizesOf(q, k, v);
    Value out = freshBuffer(rewriter, loc, {s.batch, s.tq, s.dv}, element);
    Value lse = freshBuffer(rewriter, loc, {s.batch, s.tq}, element);
    auto [kernel, mask] = kernelFor(op, adaptor, rewriter, loc, element, s);
    kernel.forward(readBuffer(rewriter, loc, q), readBuffer(rewriter, loc, k),
                   readBuffer(rewriter, loc, v), mask, out, lse);
    rewriter.replaceOp(op,
                       {fromBatched(rewriter, loc, asTensor(rewriter, loc, out),
                                    op.getOut().getType()),
                        fromBatched(rewriter, loc, asTensor(rewriter, loc, lse),
                                    op.getLse().getType())});
    return success();
  }
};

struct AttentionBackwardLowering
    : OpConversionPattern<kiln::AttentionBackwardOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::AttentionBackwardOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type element = op.getDquery().getType().getElementType();
    auto batched = [&](Value x) { return toBatched(rewriter, loc, x, 2); };
    Value q = batched(adaptor.getQuery()), k = batched(adaptor.getKey()),
          v = batched(adaptor.getValue()), out = batched(adaptor.getOut()),
          dout = batched(adaptor.getDout());
    Sizes s = sizesOf(q, k, v);
    // lse and dlse [..., Tq] as [N, Tq].
    auto rows = [&](Value x) { return toBatched(rewriter, loc, x, 1); };
    auto read = [&](Value x) { return readBuffer(rewriter, loc, x); };
    Value dq = freshBuffer(rewriter, loc, {s.batch, s.tq, s.d}, element);
    Value dk = freshBuffer(rewriter, loc, {s.batch, s.tk, s.d}, element);
    Value dv = freshBuffer(rewriter, loc, {s.batch, s.tk, s.dv}, element);
    auto [kernel, mask] = kernelFor(op, adaptor, rewriter, loc, element, s);
    kernel.backward(read(q), read(k), read(v), mask, read(out),
                    read(rows(adaptor.getLse())), read(dout),
                    read(rows(adaptor.getDlse())), dq, dk, dv);
    rewriter.replaceOp(op,
                       {fromBatched(rewriter, loc, asTensor(rewriter, loc, dq),
                                    op.getDquery().getType()),
                        fromBatched(rewriter, loc, asTensor(rewriter, loc, dk),
                                    op.getDkey().getType()),
                        fromBatched(rewriter, loc, asTensor(rewriter, loc, dv),
                                    op.getDvalue().getType())});
    return success();
  }
};

} // namespace

namespace kiln::lowering {

void populateAttentionPatterns(RewritePatternSet &patterns) {
  patterns.add<AttentionLowering, AttentionBackwardLowering>(
      patterns.getContext());
}

} // namespace kiln::lowering
