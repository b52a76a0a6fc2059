//===- StaticBuffers.cpp - Temporaries of the step functions in an arena --===//
//
// Memory planning at the buffer level: after bufferization the entry functions
// are straight-line code, so each temporary's live range is an interval of
// op positions, and temporaries whose intervals do not overlap can share
// memory. The packing is first-fit, largest buffer first, at 64-byte
// alignment, into one uninitialized global (.bss).
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/Passes.h"

#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseMap.h"

namespace kiln {
#define GEN_PASS_DEF_KILNSTATICBUFFERS
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

constexpr int64_t kAlignment = 64;

/// A temporary of an entry function and where it goes.
struct Buffer {
  memref::AllocOp alloc;
  int64_t bytes = 0;
  int64_t first = 0, last = 0; // live range, as op positions in the body
  int64_t offset = -1;
};

int64_t alignTo(int64_t v) {
  return (v + kAlignment - 1) / kAlignment * kAlignment;
}

/// The last position in `body` at which `value` or a view of it is used.
int64_t lastUse(Value value, Block &body,
                const llvm::DenseMap<Operation *, int64_t> &position) {
  int64_t last = -1;
  SmallVector<Value> worklist = {value};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    for (Operation *user : v.getUsers()) {
      Operation *top = body.findAncestorOpInBlock(*user);
      if (!top)
        continue;
      last = std::max(last, position.lookup(top));
      if (auto view = dyn_cast<ViewLikeOpInterface>(user))
        if (view.getViewSource() == v)
          llvm::append_range(worklist, user->getResults());
    }
  }
  return last;
}

/// Gives each buffer an offset; returns the bytes needed.
int64_t pack(MutableArrayRef<Buffer> buffers) {
  SmallVector<Buffer *> order;
  for (Buffer &b : buffers)
    order.push_back(&b);
  llvm::stable_sort(order,
                    [](Buffer *a, Buffer *b) { return a->bytes > b->bytes; });
  SmallVector<Buffer *> placed;
  int64_t size = 0;
  for (Buffer *b : order) {
    // Ranges of placed buffers that are live at the same time, by offset.
    SmallVector<std::pair<int64_t, int64_t>> busy;
    for (Buffer *p : placed)
      if (!(p->last < b->first || b->last < p->first))
        busy.push_back({p->offset, p->offset + alignTo(p->bytes)});
    llvm::sort(busy);
    int64_t offset = 0;
    for (auto [begin, end] : busy) {
      if (offset + b->bytes <= begin)
        break;
      offset = std::max(offset, end);
    }
    b->offset = offset;
    size = std::max(size, offset + alignTo(b->bytes));
    placed.push_back(b);
  }
  return size;
}

struct KilnStaticBuffersPass
    : kiln::impl::KilnStaticBuffersBase<KilnStaticBuffersPass> {
  using KilnStaticBuffersBase::KilnStaticBuffersBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    SmallVector<std::pair<func::FuncOp, SmallVector<Buffer>>> plans;
    int64_t arena = 0;
    for (auto func : module.getOps<func::FuncOp>()) {
      if (!kiln::getEntryKind(func) || func.isExternal() ||
          !func.getBody().hasOneBlock())
        continue;
      Block &body = func.getBody().front();
      llvm::DenseMap<Operation *, int64_t> position;
      int64_t index = 0;
      for (Operation &op : body)
        position[&op] = index++;
      SmallVector<Buffer> buffers;
      int64_t unshared = 0;
      for (auto alloc : body.getOps<memref::AllocOp>()) {
        Buffer b;
        b.alloc = alloc;
        b.bytes = kiln::byteSize(alloc.getType());
        if (b.bytes < 0 || !alloc.getDynamicSizes().empty() ||
            !alloc.getSymbolOperands().empty())
          continue;
        b.first = position[alloc];
        b.last = std::max(b.first, lastUse(alloc, body, position));
        buffers.push_back(b);
        totalBytes += b.bytes;
        unshared += b.bytes;
      }
      int64_t size = pack(buffers);
      arena = std::max(arena, size);
      if (report)
        emitRemark(func.getLoc())
            << "kiln-static-buffers: @" << func.getSymName() << ": "
            << buffers.size() << " temporaries in " << size
            << " bytes of the arena (" << unshared << " without sharing)";
      plans.push_back({func, std::move(buffers)});
    }
    if (report)
      emitRemark(module.getLoc()) << "kiln-static-buffers: arena of " << arena
                                  << " bytes; a step allocates nothing";
    if (arena == 0)
      return;

    OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
    auto arenaType = MemRefType::get({arena}, IntegerType::get(ctx, 8));
    b.create<memref::GlobalOp>(module.getLoc(), "__kiln_arena",
                               b.getStringAttr("private"), arenaType,
                               UnitAttr::get(ctx), /*constant=*/false,
                               b.getI64IntegerAttr(kAlignment));
    for (auto &[func, buffers] : plans) {
      if (buffers.empty())
        continue;
      b.setInsertionPointToStart(&func.getBody().front());
      Value base = b.create<memref::GetGlobalOp>(func.getLoc(), arenaType,
                                                 "__kiln_arena");
      for (Buffer &buf : buffers) {
        b.setInsertionPoint(buf.alloc);
        Value shift =
            b.create<arith::ConstantIndexOp>(buf.alloc.getLoc(), buf.offset);
        Value view = b.create<memref::ViewOp>(
            buf.alloc.getLoc(), buf.alloc.getType(), base, shift, ValueRange{});
        // Deallocations (none before buffer-deallocation, but be safe).
        for (Operation *user :
             llvm::make_early_inc_range(buf.alloc->getUsers()))
          if (isa<memref::DeallocOp>(user))
            user->erase();
        buf.alloc.replaceAllUsesWith(view);
        buf.alloc.erase();
        ++numBuffers;
      }
    }
    arenaBytes = arena;
  }
};

} // namespace

int64_t kiln::byteSize(MemRefType type) {
  if (!type.hasStaticShape() || !type.getLayout().isIdentity() ||
      type.getMemorySpace())
    return -1;
  Type element = type.getElementType();
  if (!element.isIntOrFloat() || element.getIntOrFloatBitWidth() % 8 != 0)
    return -1;
  return type.getNumElements() * (element.getIntOrFloatBitWidth() / 8);
}
