//===- ShareIm2col.cpp - One im2col gather per input and window -----------===//
//
// A convolution's forward pass multiplies the filter by the im2col columns of
// its input; its filter gradient multiplies the output gradient by the same
// columns. kiln-to-linalg gathers them once for each (marking the gathers with
// kIm2colAttrName); this pass keeps the first gather of each input and window
// and replaces the later ones with its result.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"

#include "llvm/ADT/DenseMap.h"

namespace kiln {
#define GEN_PASS_DEF_KILNSHAREIM2COL
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// True if the gathers `first` and `later` compute the same columns: their
/// bodies are the same (the input is a captured value) and their inits are
/// both tensor.empty of one type.
bool sameGather(linalg::GenericOp first, linalg::GenericOp later) {
  // Values of the two bodies that correspond, as the comparison finds them.
  llvm::DenseMap<Value, Value> same;
  auto check = [&](Value a, Value b) -> LogicalResult {
    if (a == b || same.lookup(a) == b)
      return success();
    auto emptyA = a.getDefiningOp<tensor::EmptyOp>();
    auto emptyB = b.getDefiningOp<tensor::EmptyOp>();
    return success(emptyA && emptyB && a.getType() == b.getType());
  };
  auto mark = [&](Value a, Value b) { same[a] = b; };
  return OperationEquivalence::isEquivalentTo(
      first, later, check, mark, OperationEquivalence::IgnoreLocations);
}

struct KilnShareIm2colPass
    : kiln::impl::KilnShareIm2colBase<KilnShareIm2colPass> {
  using KilnShareIm2colBase::KilnShareIm2colBase;

  /// The later of two identical gathers is replaced by the earlier one's
  /// result, which then lives until the backward pass (more memory, one
  /// gather less per convolution and step).
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    SmallVector<linalg::GenericOp> gathers;
    func.walk([&](linalg::GenericOp op) {
      if (op->removeAttr(kiln::kIm2colAttrName))
        gathers.push_back(op);
    });
    int64_t shared = 0;
    for (size_t i = 0; i < gathers.size(); ++i) {
      if (!gathers[i])
        continue;
      for (size_t j = i + 1; j < gathers.size(); ++j) {
        linalg::GenericOp first = gathers[i], later = gathers[j];
        if (!later || first->getBlock() != later->getBlock() ||
            !first->isBeforeInBlock(later))
          continue;
        if (!sameGather(first, later))
          continue;
        later.getResult(0).replaceAllUsesWith(first.getResult(0));
        later.erase();
        gathers[j] = nullptr;
        ++shared;
      }
    }
    numShared += shared;
    if (report)
      emitRemark(func.getLoc())
          << "kiln-share-im2col: @" << func.getSymName() << ": " << shared
          << " of " << gathers.size() << " im2col gathers shared";
  }
};

} // namespace
