//===- LoweringUtils.cpp - Builders of the kiln-to-linalg patterns --------===//
//
// See LoweringUtils.h.
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"

#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "runtime/KilnABI.h"

#include <algorithm>
#include <cmath>

using namespace mlir;

namespace kiln::lowering {

RankedTensorType tensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

Value emptyLike(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                Type elementType) {
  return b.create<tensor::EmptyOp>(loc, shape, elementType);
}

AxisSlice::AxisSlice(OpBuilder &b, ArrayRef<int64_t> shape, int64_t axis,
                     OpFoldResult start, int64_t size) {
  for (auto [d, dim] : llvm::enumerate(shape)) {
    bool cut = static_cast<int64_t>(d) == axis;
    offsets.push_back(cut ? start : b.getIndexAttr(0));
    sizes.push_back(b.getIndexAttr(cut ? size : dim));
    strides.push_back(b.getIndexAttr(1));
  }
}

Value filled(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
             TypedAttr value) {
  Value init = emptyLike(b, loc, shape, value.getType());
  Value scalar = b.create<arith::ConstantOp>(loc, value);
  return b.create<linalg::FillOp>(loc, scalar, init).getResult(0);
}

SmallVector<Value> buildGeneric(OpBuilder &b, Location loc,
                                ArrayRef<Operand> ins, ArrayRef<Operand> outs,
                                ArrayRef<utils::IteratorType> iterators,
                                BodyFn body) {
  SmallVector<Value> inputs, outputs;
  SmallVector<Type> resultTypes;
  SmallVector<AffineMap> maps;
  for (const Operand &in : ins) {
    inputs.push_back(in.value);
    maps.push_back(in.map);
  }
  for (const Operand &out : outs) {
    outputs.push_back(out.value);
    resultTypes.push_back(out.value.getType());
    maps.push_back(out.map);
  }
  auto generic = b.create<linalg::GenericOp>(
      loc, resultTypes, inputs, outputs, maps, iterators,
      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        nested.create<linalg::YieldOp>(nestedLoc,
                                       body(nested, nestedLoc, args));
      });
  return SmallVector<Value>(generic.getResults());
}

/// The reassociation that collapses the dimensions marked in `dropped` (all of
/// size 1) into their neighbours: each dropped dimension joins the group of the
/// kept dimension before it, or of the first kept one. Empty when none is kept
/// (the collapse to rank 0).
static SmallVector<ReassociationIndices> unitDimGroups(ArrayRef<bool> dropped) {
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices leading;
  for (auto [i, drop] : llvm::enumerate(dropped)) {
    if (!drop) {
      ReassociationIndices group = leading;
      leading.clear();
      group.push_back(i);
      groups.push_back(group);
    } else if (groups.empty()) {
      leading.push_back(i);
    } else {
      groups.back().push_back(i);
    }
  }
  return groups;
}

/// Removes the dimensions marked in `dropped` (all of size 1) from `value`.
static Value dropUnitDims(OpBuilder &b, Location loc, Value value,
                          ArrayRef<bool> dropped) {
  if (llvm::none_of(dropped, [](bool d) { return d; }))
    return value;
  RankedTensorType type = tensorType(value);
  SmallVector<int64_t> shape;
  for (auto [size, drop] : llvm::zip(type.getShape(), dropped))
    if (!drop)
      shape.push_back(size);
  auto collapsedType = RankedTensorType::get(shape, type.getElementType());
  return b.create<tensor::CollapseShapeOp>(loc, collapsedType, value,
                                           unitDimGroups(dropped));
}

Value addUnitDims(OpBuilder &b, Location loc, Value value,
                  RankedTensorType type, ArrayRef<bool> added) {
  if (tensorType(value) == type)
    return value;
  return b.create<tensor::ExpandShapeOp>(loc, type, value,
                                         unitDimGroups(added));
}

Operand broadcastOperand(OpBuilder &b, Location loc, Value value,
                         ArrayRef<int64_t> loopDims,
                         ArrayRef<int64_t> loopShape) {
  ArrayRef<int64_t> shape = tensorType(value).getShape();
  SmallVector<bool> dropped;
  SmallVector<AffineExpr> exprs;
  for (auto [size, loop] : llvm::zip(shape, loopDims)) {
    bool drop = size == 1 && loopShape[loop] != 1;
    dropped.push_back(drop);
    if (!drop)
      exprs.push_back(b.getAffineDimExpr(loop));
  }
  return {dropUnitDims(b, loc, value, dropped),
          AffineMap::get(loopShape.size(), 0, exprs, b.getContext())};
}

Operand broadcastTo(OpBuilder &b, Location loc, Value value,
                    ArrayRef<int64_t> resultShape) {
  int64_t rank = tensorType(value).getRank();
  int64_t offset = resultShape.size() - rank;
  SmallVector<int64_t> loopDims;
  for (int64_t i = 0; i < rank; ++i)
    loopDims.push_back(i + offset);
  return broadcastOperand(b, loc, value, loopDims, resultShape);
}

Value buildElementwise(
    OpBuilder &b, Location loc, RankedTensorType resultType,
    ValueRange operands,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  ArrayRef<int64_t> shape = resultType.getShape();
  SmallVector<Operand> ins;
  for (Value v : operands)
    ins.push_back(broadcastTo(b, loc, v, shape));
  Operand out{emptyLike(b, loc, shape, resultType.getElementType()),
              b.getMultiDimIdentityMap(shape.size())};
  SmallVector<utils::IteratorType> iterators(shape.size(),
                                             utils::IteratorType::parallel);
  return buildGeneric(b, loc, ins, out, iterators,
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        return SmallVector<Value>{
                            body(nb, nl, args.drop_back())};
                      })
      .front();
}

AffineMap reducedMap(OpBuilder &b, int64_t rank, ArrayRef<bool> reduced) {
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < rank; ++i)
    if (!reduced[i])
      exprs.push_back(b.getAffineDimExpr(i));
  return AffineMap::get(rank, 0, exprs, b.getContext());
}

SmallVector<int64_t> keptShape(ArrayRef<int64_t> shape,
                               ArrayRef<bool> reduced) {
  SmallVector<int64_t> kept;
  for (auto [size, r] : llvm::zip(shape, reduced))
    if (!r)
      kept.push_back(size);
  return kept;
}

SmallVector<bool> axesMask(int64_t rank, ArrayRef<int64_t> axes) {
  SmallVector<bool> mask(rank, false);
  for (int64_t a : axes)
    mask[a] = true;
  return mask;
}

SmallVector<utils::IteratorType> reductionIterators(ArrayRef<bool> reduced) {
  return llvm::map_to_vector(reduced, [](bool r) {
    return r ? utils::IteratorType::reduction : utils::IteratorType::parallel;
  });
}

Value buildReduction(OpBuilder &b, Location loc, Value input,
                     ArrayRef<bool> reduced, double init,
                     function_ref<Value(Scalar &, Value, Value)> combine) {
  RankedTensorType type = tensorType(input);
  int64_t rank = type.getRank();
  Type element = type.getElementType();
  Operand in{input, b.getMultiDimIdentityMap(rank)};
  Operand out{filled(b, loc, keptShape(type.getShape(), reduced),
                     b.getFloatAttr(element, init)),
              reducedMap(b, rank, reduced)};
  return buildGeneric(b, loc, in, out, reductionIterators(reduced),
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Scalar s{nb, nl};
                        return SmallVector<Value>{combine(s, args[1], args[0])};
                      })
      .front();
}

Value scaleBy(OpBuilder &b, Location loc, Value value, double factor) {
  RankedTensorType type = tensorType(value);
  return buildElementwise(
      b, loc, type, value, [&](OpBuilder &nb, Location nl, ValueRange args) {
        Scalar s{nb, nl};
        return s.mul(args[0], s.cst(type.getElementType(), factor));
      });
}

Value buildMeanOf(OpBuilder &b, Location loc, ValueRange inputs,
                  function_ref<Value(Scalar &, ValueRange)> f) {
  RankedTensorType type = tensorType(inputs.front());
  int64_t rank = type.getRank();
  Type element = type.getElementType();
  SmallVector<Operand> ins;
  for (Value v : inputs)
    ins.push_back({v, b.getMultiDimIdentityMap(rank)});
  Operand out{filled(b, loc, {}, b.getFloatAttr(element, 0.0)),
              AffineMap::get(rank, 0, {}, b.getContext())};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::reduction);
  Value sum =
      buildGeneric(b, loc, ins, out, iterators,
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     Scalar s{nb, nl};
                     Value term = f(s, args.drop_back());
                     return SmallVector<Value>{s.accumulate(args.back(), term)};
                   })
          .front();
  return scaleBy(b, loc, sum, 1.0 / static_cast<double>(type.getNumElements()));
}

Value buildMatmul(OpBuilder &b, Location loc, Value lhs, Value rhs,
                  RankedTensorType resultType, bool named) {
  Type element = resultType.getElementType();
  auto zeros = [&](ArrayRef<int64_t> shape) {
    return filled(b, loc, shape, b.getFloatAttr(element, 0.0));
  };
  int64_t lhsRank = tensorType(lhs).getRank();
  int64_t rhsRank = tensorType(rhs).getRank();
  if (named && lhsRank == 2 && rhsRank == 2)
    return b
        .create<linalg::MatmulOp>(loc, resultType, ValueRange{lhs, rhs},
                                  ValueRange{zeros(resultType.getShape())})
        .getResult(0);
  ArrayRef<int64_t> lhsShape = tensorType(lhs).getShape();
  ArrayRef<int64_t> rhsShape = tensorType(rhs).getShape();
  // [..., M, K] x [K, N]: one [(...) M, K] x [K, N] matmul on the collapsed
  // rows (a dense layer applied at every position of a sequence).
  if (named && lhsRank > 2 && rhsRank == 2) {
    SmallVector<ReassociationIndices> rows(1);
    for (int64_t i = 0; i < lhsRank - 1; ++i)
      rows[0].push_back(i);
    rows.push_back({lhsRank - 1});
    Value flat = b.create<tensor::CollapseShapeOp>(loc, lhs, rows);
    int64_t numRows = tensorType(flat).getShape()[0];
    auto flatType = RankedTensorType::get({numRows, rhsShape[1]}, element);
    Value product = buildMatmul(b, loc, flat, rhs, flatType, named);
    return b.create<tensor::ExpandShapeOp>(loc, resultType, product, rows);
  }
  // [B..., M, K] x [B..., K, N] with the same batch dimensions: one
  // linalg.batch_matmul over the collapsed batch (attention's products).
  if (named && lhsRank > 2 && lhsRank == rhsRank &&
      lhsShape.drop_back(2) == rhsShape.drop_back(2)) {
    SmallVector<ReassociationIndices> batch(1);
    for (int64_t i = 0; i < lhsRank - 2; ++i)
      batch[0].push_back(i);
    batch.push_back({lhsRank - 2});
    batch.push_back({lhsRank - 1});
    Value a = b.create<tensor::CollapseShapeOp>(loc, lhs, batch);
    Value bb = b.create<tensor::CollapseShapeOp>(loc, rhs, batch);
    int64_t count = tensorType(a).getShape()[0];
    ArrayRef<int64_t> shape = resultType.getShape();
    auto flatType = RankedTensorType::get(
        {count, shape[lhsRank - 2], shape[lhsRank - 1]}, element);
    Value product =
        b.create<linalg::BatchMatmulOp>(loc, flatType, ValueRange{a, bb},
                                        ValueRange{zeros(flatType.getShape())})
            .getResult(0);
    return b.create<tensor::ExpandShapeOp>(loc, resultType, product, batch);
  }

  ArrayRef<int64_t> shape = resultType.getShape();
  int64_t numBatch = resultType.getRank() - 2;
  int64_t m = numBatch, k = numBatch + 1, n = numBatch + 2;
  SmallVector<int64_t> loopShape(shape.take_front(numBatch));
  loopShape.append({shape[numBatch], tensorType(lhs).getShape().back(),
                    shape[numBatch + 1]});
  auto operandLoops = [&](int64_t rank, int64_t row, int64_t col) {
    SmallVector<int64_t> loops;
    for (int64_t i = 0; i < rank - 2; ++i)
      loops.push_back(numBatch - (rank - 2) + i);
    loops.append({row, col});
    return loops;
  };
  Operand a =
      broadcastOperand(b, loc, lhs, operandLoops(lhsRank, m, k), loopShape);
  Operand bOp =
      broadcastOperand(b, loc, rhs, operandLoops(rhsRank, k, n), loopShape);
  SmallVector<AffineExpr> outExprs;
  for (int64_t i = 0; i < numBatch; ++i)
    outExprs.push_back(b.getAffineDimExpr(i));
  outExprs.append({b.getAffineDimExpr(m), b.getAffineDimExpr(n)});
  Operand out{zeros(shape),
              AffineMap::get(loopShape.size(), 0, outExprs, b.getContext())};
  SmallVector<utils::IteratorType> iterators(loopShape.size(),
                                             utils::IteratorType::parallel);
  iterators[k] = utils::IteratorType::reduction;
  return buildGeneric(b, loc, {a, bOp}, out, iterators,
                      [](OpBuilder &nb, Location l, ValueRange args) {
                        Scalar s{nb, l};
                        return SmallVector<Value>{
                            s.add(args[2], s.mul(args[0], args[1]))};
                      })
      .front();
}

Value constU32(OpBuilder &b, Location loc, uint32_t v, Value like) {
  IntegerAttr bits = b.getI32IntegerAttr(static_cast<int32_t>(v));
  if (auto vector = like ? dyn_cast<VectorType>(like.getType()) : VectorType())
    return b.create<arith::ConstantOp>(
        loc, DenseElementsAttr::get(vector, ArrayRef<Attribute>(bits)));
  return b.create<arith::ConstantOp>(loc, bits);
}

Value mix32(OpBuilder &b, Location loc, Value h) {
  auto c = [&](uint32_t v) { return constU32(b, loc, v, h); };
  auto xorShift = [&](Value x, uint32_t shift) -> Value {
    return b.create<arith::XOrIOp>(loc, x,
                                   b.create<arith::ShRUIOp>(loc, x, c(shift)));
  };
  h = xorShift(h, 16);
  h = b.create<arith::MulIOp>(loc, h, c(0x85ebca6bu));
  h = xorShift(h, 13);
  h = b.create<arith::MulIOp>(loc, h, c(0xc2b2ae35u));
  return xorShift(h, 16);
}

Value buildShardBase(OpBuilder &b, Location loc, Value hyper,
                     int64_t numElements) {
  Value i = b.create<arith::ConstantIndexOp>(loc, KILN_HYPER_SHARD);
  Value shard = b.create<arith::FPToUIOp>(
      loc, b.getI32Type(), b.create<tensor::ExtractOp>(loc, hyper, i));
  // ir/Random.h numbers elements modulo 2^32.
  return b.create<arith::MulIOp>(
      loc, shard, constU32(b, loc, static_cast<uint32_t>(numElements)));
}

Value buildRandomKey(OpBuilder &b, Location loc, Value hyper, int64_t salt,
                     Value stepTensor) {
  auto readU32 = [&](int64_t index) -> Value {
    Value i = b.create<arith::ConstantIndexOp>(loc, index);
    Value f = b.create<tensor::ExtractOp>(loc, hyper, i);
    return b.create<arith::FPToUIOp>(loc, b.getI32Type(), f);
  };
  Value step = readU32(KILN_HYPER_STEP), seed = readU32(KILN_HYPER_SEED);
  Value key = b.create<arith::XOrIOp>(
      loc,
      b.create<arith::XOrIOp>(
          loc,
          b.create<arith::MulIOp>(loc, step, constU32(b, loc, 0x9e3779b1u)),
          b.create<arith::MulIOp>(loc, seed, constU32(b, loc, 0x85ebca77u))),
      constU32(b, loc, static_cast<uint32_t>(salt) * 0xc2b2ae3du));
  key = mix32(b, loc, key);
  if (!stepTensor)
    return key;
  auto stepType = cast<RankedTensorType>(stepTensor.getType());
  SmallVector<Value> zeros(stepType.getRank(),
                           b.create<arith::ConstantIndexOp>(loc, 0));
  Value t = b.create<tensor::ExtractOp>(loc, stepTensor, zeros);
  Value t1 = b.create<arith::AddIOp>(loc, t, constU32(b, loc, 1));
  return mix32(
      b, loc,
      b.create<arith::XOrIOp>(
          loc, key,
          b.create<arith::MulIOp>(loc, t1, constU32(b, loc, 0x165667b1u))));
}

uint32_t dropThreshold(double rate) {
  return static_cast<uint32_t>(
      std::ceil(std::clamp(rate, 0.0, 1.0) * 16777216.0));
}

Value randomBits24(OpBuilder &b, Location loc, Value key, Value counter) {
  if (isa<VectorType>(counter.getType()) && !isa<VectorType>(key.getType()))
    key = b.create<vector::BroadcastOp>(loc, counter.getType(), key);
  Value h = b.create<arith::XOrIOp>(
      loc, key,
      b.create<arith::MulIOp>(loc, counter,
                              constU32(b, loc, 0x27d4eb2fu, counter)));
  return b.create<arith::ShRUIOp>(loc, mix32(b, loc, h),
                                  constU32(b, loc, 8, counter));
}

} // namespace kiln::lowering
