//===- StaticBuffers.cpp - Temporaries of the step functions in an arena --===//
//
// Memory planning at the buffer level: after bufferization the entry functions
// are straight-line code and scf.for loops (scans), so each temporary's live
// range is an interval of op positions in pre-order (a use inside a loop lasts
// to the end of the loop), and temporaries whose intervals do not overlap can
// share memory. The packing is first-fit, largest buffer first, at 64-byte
// alignment, into one uninitialized global (.bss).
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/Passes.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseMap.h"

namespace kiln {
#define GEN_PASS_DEF_KILNSTATICBUFFERS
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

constexpr int64_t kAlignment = 64;
/// The largest static arena (the rest of the program's data must fit beside
/// it within the 2 GiB the small code model addresses).
constexpr int64_t kMaxArenaBytes = int64_t(1) << 30;

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

/// Positions of the ops of a function in pre-order, and the last position
/// inside each op's regions: a loop spans [position, end] on the timeline.
struct Timeline {
  llvm::DenseMap<Operation *, int64_t> position, end;

  explicit Timeline(Block &body) {
    int64_t next = 0;
    body.walk<WalkOrder::PreOrder>(
        [&](Operation *op) { position[op] = next++; });
    body.walk<WalkOrder::PostOrder>([&](Operation *op) {
      int64_t last = position[op];
      for (Region &region : op->getRegions())
        for (Block &block : region)
          if (!block.empty())
            last = std::max(last, end[&block.back()]);
      end[op] = last;
    });
  }
};

/// The last position at which `alloc`'s buffer, or a view of it, is used,
/// counting a use inside a loop as lasting to the end of the loop's
/// iteration; failure if the buffer outlives its block (a loop yields it to
/// the next step or returns it).
FailureOr<int64_t> lastUse(memref::AllocOp alloc, const Timeline &timeline) {
  Block *block = alloc->getBlock();
  int64_t last = timeline.position.lookup(alloc);
  SmallVector<Value> worklist = {alloc.getResult()};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    for (Operation *user : v.getUsers()) {
      Operation *ancestor = block->findAncestorOpInBlock(*user);
      if (!ancestor || user->hasTrait<OpTrait::ReturnLike>() ||
          isa<RegionBranchTerminatorOpInterface>(user))
        return failure();
      last = std::max(last, timeline.end.lookup(ancestor));
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
      Timeline timeline(body);
      SmallVector<Buffer> buffers;
      int64_t unshared = 0;
      // Temporaries of the body and of its loops' bodies (a scan's step
      // reuses its buffers every iteration; a buffer that a step hands to the
      // next stays on the heap).
      body.walk([&](memref::AllocOp alloc) {
        Buffer b;
        b.alloc = alloc;
        b.bytes = kiln::byteSize(alloc.getType());
        if (b.bytes < 0 || !alloc.getDynamicSizes().empty() ||
            !alloc.getSymbolOperands().empty())
          return;
        for (Operation *op = alloc->getParentOp(); op != func;
             op = op->getParentOp())
          if (!isa<scf::ForOp>(op))
            return;
        FailureOr<int64_t> last = lastUse(alloc, timeline);
        if (failed(last))
          return;
        b.first = timeline.position.lookup(alloc);
        b.last = *last;
        buffers.push_back(b);
        totalBytes += b.bytes;
        unshared += b.bytes;
      });
      int64_t size = pack(buffers);
      arena = std::max(arena, size);
      if (report)
        emitRemark(func.getLoc())
            << "kiln-static-buffers: @" << func.getSymName() << ": "
            << buffers.size() << " temporaries in " << size
            << " bytes of the arena (" << unshared << " without sharing)";
      plans.push_back({func, std::move(buffers)});
    }
    if (report) {
      int64_t planned = 0, remaining = 0;
      for (auto &[func, buffers] : plans) {
        planned += buffers.size();
        func.walk([&](memref::AllocOp) { ++remaining; });
      }
      remaining -= planned;
      auto remark = emitRemark(module.getLoc())
                    << "kiln-static-buffers: arena of " << arena << " bytes; ";
      if (remaining)
        remark << remaining << " allocation(s) stay on the heap";
      else
        remark << "a step allocates nothing";
    }
    if (arena == 0)
      return;
    // A static arena is a global that code reaches with 32-bit relative
    // addresses (the small code model): past 2 GiB the link fails. Larger
    // temporaries stay on the heap, allocated at every step.
    if (arena > kMaxArenaBytes) {
      emitWarning(module.getLoc())
          << "the step's temporaries need " << arena
          << " bytes, more than a static arena may hold (" << kMaxArenaBytes
          << "): they are allocated at every step instead";
      return;
    }

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
