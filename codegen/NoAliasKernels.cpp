//===- NoAliasKernels.cpp - Loop nests as functions with noalias buffers --===//
//
// Every temporary of a step is a view of one static arena
// (kiln-static-buffers), so LLVM cannot tell the buffers of a loop nest
// apart: it keeps loads after stores in program order, and the short rows
// it fully unrolls (col2im's 24 columns, im2col's, a pooling window's) stay
// scalar. Here each linalg op of an entry function (but the matmuls and their
// zero fills, which kiln-vectorize-matmul handles together), with the views
// only it uses, moves into a private function of its own, called in its
// place (inside the loop kiln-parallelize-loops made, so inside the OpenMP
// body), whose memref arguments are
// marked `llvm.noalias` when no other argument shares their memory: a view
// of the arena whose byte range overlaps no other argument's, or an entry
// argument passed once. LLVM inlines the call and turns the marks into alias
// scopes for that loop nest alone.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"

namespace kiln {
#define GEN_PASS_DEF_KILNNOALIASKERNELS
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// Where a buffer's bytes are: an entry argument or a global, and a byte
/// range in it (the whole of it when unknown).
struct Extent {
  const void *root = nullptr;
  int64_t begin = 0, end = std::numeric_limits<int64_t>::max();

  bool overlaps(const Extent &o) const {
    return root == o.root && begin < o.end && o.begin < end;
  }
};

/// The extent of `v`, or none when it comes from an op this does not follow.
std::optional<Extent> extentOf(Value v) {
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (!isa<func::FuncOp>(arg.getOwner()->getParentOp()))
      return std::nullopt;
    return Extent{arg.getAsOpaquePointer()};
  }
  Operation *op = v.getDefiningOp();
  if (auto global = dyn_cast<memref::GetGlobalOp>(op))
    return Extent{global.getNameAttr().getAsOpaquePointer()};
  if (auto view = dyn_cast<memref::ViewOp>(op)) {
    std::optional<Extent> base = extentOf(view.getSource());
    IntegerAttr shift;
    int64_t bytes = kiln::byteSize(view.getType());
    if (!base || bytes < 0 ||
        !matchPattern(view.getByteShift(), m_Constant(&shift)))
      return std::nullopt;
    int64_t begin = base->begin + shift.getInt();
    return Extent{base->root, begin, begin + bytes};
  }
  if (isa<memref::CollapseShapeOp, memref::ExpandShapeOp>(op))
    return extentOf(op->getOperand(0));
  return std::nullopt;
}

bool isPassable(Value v) {
  if (auto type = dyn_cast<MemRefType>(v.getType()))
    return type.hasStaticShape() && type.getLayout().isIdentity();
  return v.getType().isIntOrIndexOrFloat();
}

/// The op and the views it alone uses (subviews from kiln-parallelize-loops'
/// tiling, reshapes from kiln-collapse-dims), in block order: moved together,
/// the kernel takes the identity-layout buffers they view.
SmallVector<Operation *> kernelOps(Operation *op) {
  SmallVector<Operation *> ops = {op};
  for (size_t i = 0; i < ops.size(); ++i) {
    for (Value operand : ops[i]->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (def && def->getBlock() == op->getBlock() &&
          isa<memref::SubViewOp, memref::CollapseShapeOp,
              memref::ExpandShapeOp>(def) &&
          def->hasOneUse() && !llvm::is_contained(ops, def))
        ops.push_back(def);
    }
  }
  llvm::sort(ops,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return ops;
}

struct KilnNoAliasKernelsPass
    : kiln::impl::KilnNoAliasKernelsBase<KilnNoAliasKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> entries(module.getOps<func::FuncOp>());
    int64_t counter = 0;
    for (func::FuncOp entry : entries) {
      if (entry.isExternal())
        continue;
      SmallVector<linalg::LinalgOp> ops;
      entry.walk([&](linalg::LinalgOp op) {
        if (op.hasPureBufferSemantics() &&
            !isa<linalg::FillOp, linalg::MatmulOp, linalg::MatmulTransposeAOp>(
                op))
          ops.push_back(op);
      });
      for (linalg::LinalgOp op : ops)
        if (outline(module, entry, op, counter))
          ++numOutlined;
    }
  }

  bool outline(ModuleOp module, func::FuncOp entry, linalg::LinalgOp op,
               int64_t &counter) {
    SmallVector<Operation *> ops = kernelOps(op);
    // Arguments: the values the ops use from outside them.
    llvm::SetVector<Value> values;
    for (Operation *inner : ops) {
      for (Value v : inner->getOperands())
        if (!llvm::is_contained(ops, v.getDefiningOp()))
          values.insert(v);
      getUsedValuesDefinedAbove(inner->getRegions(), values);
    }
    if (!llvm::all_of(values, isPassable))
      return false;
    SmallVector<Value> args = values.takeVector();

    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointAfter(entry);
    auto type = b.getFunctionType(ValueRange(args).getTypes(), {});
    std::string name =
        (entry.getSymName() + "_kernel_" + std::to_string(counter++)).str();
    auto kernel = b.create<func::FuncOp>(op.getLoc(), name, type);
    kernel.setPrivate();
    Block *body = kernel.addEntryBlock();
    IRMapping mapping;
    for (auto [value, arg] : llvm::zip(args, body->getArguments()))
      mapping.map(value, arg);
    b.setInsertionPointToStart(body);
    for (Operation *inner : ops)
      b.clone(*inner, mapping);
    b.create<func::ReturnOp>(op.getLoc());

    // noalias: the memref arguments that share no memory with another one,
    // when every memref argument's memory is known.
    SmallVector<std::optional<Extent>> extents;
    bool allKnown = true;
    for (Value v : args) {
      extents.push_back(isa<MemRefType>(v.getType()) ? extentOf(v)
                                                     : std::nullopt);
      allKnown &= !isa<MemRefType>(v.getType()) || extents.back().has_value();
    }
    for (size_t i = 0; allKnown && i < args.size(); ++i) {
      if (!extents[i])
        continue;
      bool alone = true;
      for (size_t j = 0; j < args.size() && alone; ++j)
        alone = i == j || !extents[j] || !extents[i]->overlaps(*extents[j]);
      if (alone)
        kernel.setArgAttr(i, LLVM::LLVMDialect::getNoAliasAttrName(),
                          b.getUnitAttr());
    }

    OpBuilder call(op);
    call.create<func::CallOp>(op.getLoc(), kernel, args);
    op->erase();
    for (Operation *inner : llvm::reverse(ops))
      if (inner != op.getOperation())
        inner->erase();
    return true;
  }
};

} // namespace
