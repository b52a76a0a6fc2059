//===- AllReduce.cpp - kiln.all_reduce becomes a runtime call -------------===//
//
// kiln.all_reduce (a data-parallel step's averaging of its gradients) stays a
// kiln op through kiln-to-linalg: its effect is a call into the runtime, which
// needs a buffer. One-shot bufferization makes it that call, in place on its
// operand's buffer: `kiln_all_reduce_f32(data, count)` (runtime/KilnABI.h), the
// pointer passed as an !llvm.ptr so that the C declaration reads naturally.
//
//===----------------------------------------------------------------------===//

#include "codegen/Pipeline.h"

#include "ir/KilnOps.h"
#include "runtime/Contract.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"

using namespace mlir;
using namespace mlir::bufferization;

namespace {

/// The runtime function that averages VALUES of `element` type, declared in
/// the module on first use: `(!llvm.ptr, i64) -> ()`.
func::FuncOp allReduceFunction(Operation *op, Type element) {
  auto module = op->getParentOfType<ModuleOp>();
  StringRef name = element.isF64() ? kiln::contract::kAllReduceF64
                                   : kiln::contract::kAllReduceF32;
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  MLIRContext *ctx = op->getContext();
  OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
  auto type =
      b.getFunctionType({LLVM::LLVMPointerType::get(ctx), b.getI64Type()}, {});
  auto func = b.create<func::FuncOp>(op->getLoc(), name, type);
  func.setPrivate();
  return func;
}

/// In place: reads and writes its operand's buffer, which its result is.
struct AllReduceBufferization
    : BufferizableOpInterface::ExternalModel<AllReduceBufferization,
                                             kiln::AllReduceOp> {
  bool bufferizesToMemoryRead(Operation *, OpOperand &,
                              const AnalysisState &) const {
    return true;
  }
  bool bufferizesToMemoryWrite(Operation *, OpOperand &,
                               const AnalysisState &) const {
    return true;
  }
  AliasingValueList getAliasingValues(Operation *op, OpOperand &,
                                      const AnalysisState &) const {
    return {{op->getResult(0), BufferRelation::Equivalent}};
  }

  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options) const {
    auto reduce = cast<kiln::AllReduceOp>(op);
    FailureOr<Value> buffer = getBuffer(rewriter, reduce.getInput(), options);
    if (failed(buffer))
      return failure();
    auto type = cast<MemRefType>(buffer->getType());
    Location loc = op->getLoc();
    // The runtime takes a pointer and a count: a strided view (there is
    // none in what kiln-autodiff builds) is averaged in a contiguous copy.
    Value contiguous = *buffer;
    if (!type.getLayout().isIdentity()) {
      auto flat = MemRefType::get(type.getShape(), type.getElementType());
      contiguous = rewriter.create<memref::AllocOp>(loc, flat);
      if (failed(options.createMemCpy(rewriter, loc, *buffer, contiguous)))
        return failure();
    }
    Value address = rewriter.create<memref::ExtractAlignedPointerAsIndexOp>(
        loc, contiguous);
    Value pointer = rewriter.create<LLVM::IntToPtrOp>(
        loc, LLVM::LLVMPointerType::get(op->getContext()),
        rewriter.create<arith::IndexCastOp>(loc, rewriter.getI64Type(),
                                            address));
    Value count = rewriter.create<arith::ConstantIntOp>(
        loc, type.getNumElements(), rewriter.getI64Type());
    rewriter.create<func::CallOp>(loc,
                                  allReduceFunction(op, type.getElementType()),
                                  ValueRange{pointer, count});
    if (contiguous != *buffer &&
        failed(options.createMemCpy(rewriter, loc, contiguous, *buffer)))
      return failure();
    replaceOpWithBufferizedValues(rewriter, op, *buffer);
    return success();
  }
};

} // namespace

void kiln::registerAllReduceBufferization(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, KilnDialect *) {
    kiln::AllReduceOp::attachInterface<AllReduceBufferization>(*ctx);
  });
}
