//===- LowerScan.cpp - kiln.scan to scf.for -------------------------------===//
//
// A scan becomes one scf.for over its steps: the carries (each step's copied
// into the carry's buffer) and the stacked outputs (filled slice by slice with
// tensor.insert_slice) are iter_args, each
// step's sequence slices are rank-reducing tensor.extract_slice ops, and the
// body's ops move into the loop unchanged (the conversion then lowers them as
// anywhere else, so a matmul in a cell takes the same path as outside).
//
//===----------------------------------------------------------------------===//

#include "codegen/LoweringUtils.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace kiln::lowering;

namespace {

struct ScanLowering : OpConversionPattern<kiln::ScanOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(kiln::ScanOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    int64_t length = op.getLength(), axis = op.getAxis();
    size_t numCarries = op.getCarries().size();

    SmallVector<Value> inits(adaptor.getCarries());
    for (Value y : op.getStacked()) {
      auto type = cast<RankedTensorType>(y.getType());
      inits.push_back(rewriter.create<tensor::EmptyOp>(loc, type.getShape(),
                                                       type.getElementType()));
    }
    Value lb = rewriter.create<arith::ConstantIndexOp>(loc, 0);
    Value ub = rewriter.create<arith::ConstantIndexOp>(loc, length);
    Value one = rewriter.create<arith::ConstantIndexOp>(loc, 1);
    auto loop = rewriter.create<scf::ForOp>(loc, lb, ub, one, inits);
    Block *body = loop.getBody();
    rewriter.setInsertionPointToStart(body);
    Value t = loop.getInductionVar();
    if (op.getReverse())
      t = rewriter.create<arith::SubIOp>(
          loc, rewriter.create<arith::ConstantIndexOp>(loc, length - 1), t);

    // The step's block arguments: carries, sequence slices, consts.
    SmallVector<Value> args(loop.getRegionIterArgs().take_front(numCarries));
    for (Value x : adaptor.getXs()) {
      auto type = cast<RankedTensorType>(x.getType());
      AxisSlice s(rewriter, type.getShape(), axis, t, 1);
      args.push_back(rewriter.create<tensor::ExtractSliceOp>(
          loc, op.getSliceType(type), x, s.offsets, s.sizes, s.strides));
    }
    llvm::append_range(args, adaptor.getConsts());
    Block &step = op.getBody().front();
    auto yield = cast<kiln::YieldOp>(step.getTerminator());
    rewriter.mergeBlocks(&step, body, args);

    // Each output's slice into its stacked tensor, then the new carries,
    // copied into the carries' own buffers: in place once bufferized (each
    // step overwrites the last, after every read of it, and no step
    // allocates).
    rewriter.setInsertionPoint(yield);
    SmallVector<Value> stacked;
    for (auto [slice, acc] :
         llvm::zip(yield.getValues().drop_front(numCarries),
                   loop.getRegionIterArgs().drop_front(numCarries))) {
      auto type = cast<RankedTensorType>(acc.getType());
      AxisSlice s(rewriter, type.getShape(), axis, t, 1);
      stacked.push_back(rewriter.create<tensor::InsertSliceOp>(
          loc, slice, acc, s.offsets, s.sizes, s.strides));
    }
    SmallVector<Value> next;
    for (auto [value, carry] :
         llvm::zip(yield.getValues().take_front(numCarries),
                   loop.getRegionIterArgs().take_front(numCarries)))
      next.push_back(value == carry
                         ? value
                         : rewriter
                               .create<linalg::CopyOp>(loc, ValueRange{value},
                                                       ValueRange{carry})
                               .getResult(0));
    llvm::append_range(next, stacked);
    rewriter.create<scf::YieldOp>(loc, next);
    rewriter.eraseOp(yield);
    rewriter.replaceOp(op, loop.getResults());
    return success();
  }
};

} // namespace

void kiln::lowering::populateScanPatterns(RewritePatternSet &patterns) {
  patterns.add<ScanLowering>(patterns.getContext());
}
