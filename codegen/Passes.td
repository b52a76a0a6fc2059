//===- Passes.td - Kiln's code generation passes ---------------*- tablegen -*-===//
//
// The passes that take a module of kiln entry functions to the LLVM dialect and
// the C ABI of runtime/KilnABI.h. Pipeline.cpp strings them together with the
// upstream passes.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_PASSES_TD
#define KILN_CODEGEN_PASSES_TD

include "mlir/Pass/PassBase.td"

def KilnToLinalg : Pass<"kiln-to-linalg", "mlir::ModuleOp"> {
  let summary = "Lower kiln ops to linalg, tensor, arith and math on tensors";
  let description = [{
    Converts every kiln op except `kiln.param` (kept for the manifest) into
    linalg ops on tensors: elementwise ops with NumPy broadcasting become one
    `linalg.generic` each (unit dimensions that broadcast are collapsed away so
    that every indexing map is a projected permutation), reductions become
    reduction generics, `matmul` a zero-filled `linalg.matmul` (rank 2) or a
    batched generic, softmax and the losses their numerically stable forms, and
    the optimizer updates one elementwise generic with several results.
    Convolutions (and their gradients) are matmuls on im2col matrices built by
    gathering generics (padding is a bounds mask, not a padded copy), marked
    `kiln.im2col` for kiln-share-im2col, which runs next; pooling and the
    pooling gradients are window reductions; dropout hashes the element index
    with the key of ir/Random.h; `fused_dense` and `fused_conv2d` apply
    bias and activation in one pass after the product.
    `kiln.load_param`, `kiln.if_training` and `kiln.assign_param` are
    rejected: kiln's own passes resolve them into the entry functions'
    arguments and results before codegen.
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::linalg::LinalgDialect",
    "mlir::math::MathDialect", "mlir::scf::SCFDialect",
    "mlir::tensor::TensorDialect", "mlir::bufferization::BufferizationDialect",
    "mlir::memref::MemRefDialect", "mlir::vector::VectorDialect",
    // kiln.all_reduce, left for bufferization, becomes a call that passes
    // an !llvm.ptr (codegen/AllReduce.cpp).
    "mlir::func::FuncDialect", "mlir::LLVM::LLVMDialect"
  ];
  let options = [
    Option<"namedMatmul", "named-matmul", "bool", /*default=*/"true",
           "Lower rank-2 kiln.matmul to linalg.matmul (i, j, k loop order); "
           "when false, to a linalg.generic in (i, k, j) order, whose "
           "innermost loop LLVM vectorizes after convert-linalg-to-loops">
  ];
  let statistics = [
    Statistic<"numOpsLowered", "ops-lowered", "Number of kiln ops lowered">
  ];
}

def KilnShareIm2col : Pass<"kiln-share-im2col", "mlir::func::FuncOp"> {
  let summary = "One im2col gather for a convolution and its filter gradient";
  let description = [{
    kiln-to-linalg lowers `conv2d` and `conv2d_backward_filter` to matmuls on
    im2col columns, each gathered from the input by its own `linalg.generic`,
    which it marks with the unit attribute `kiln.im2col` (kIm2colAttrName in
    Passes.h). In a training step a convolution's forward pass and its filter
    gradient read the same input with the same window, so they gather the
    same matrix twice. This pass replaces the later of two identical gathers
    (same body, the input being a captured value, and inits that are both
    `tensor.empty` of one type) with the earlier one's result, which then
    lives until the backward pass: more memory, one gather less per
    convolution and step, and bitwise the same numbers. It removes the marker
    from every gather.

    Generic CSE cannot do this here: the pipeline runs none before
    bufferization, because merging the identical inits of different results
    forces copies; this pass compares whole gathers and leaves inits alone.
  }];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark with what the pass did (kilnc --print-stats)">
  ];
  let statistics = [
    Statistic<"numShared", "gathers-shared",
              "Number of im2col gathers replaced by an identical earlier one">
  ];
}

def KilnEntryAbi : Pass<"kiln-entry-abi", "mlir::ModuleOp"> {
  let summary = "Rewrite entry functions to destination-passing style on memrefs";
  let description = [{
    Gives `@train_step`, `@eval_step` and `@predict` the buffer signature of
    runtime/KilnABI.h: one identity-layout memref argument per buffer, in ABI
    order (params, state, inputs, hyper, loss for the train step; params,
    inputs, loss, outputs for eval; params, predict inputs, outputs for
    predict), and no results. Reads become `bufferization.to_tensor ...
    restrict` (params and state also `writable`), updated params and state are
    written back with `bufferization.materialize_in_destination` into the tensor
    of the same-named argument (so that one-shot-bufferize updates them in
    place), and the loss and outputs with the memref form `restrict writable`
    (so that empty-tensor elimination computes them in the caller's buffer).

    Every entry function takes all params (in `kiln.param` op order) and all
    outputs of the manifest, whether it uses them or not, so that one buffer
    array layout fits every function. The manifest text (runtime/KilnABI.h) is
    stored in the module attribute `kiln.manifest`; `kiln.param` ops are
    erased, and functions other than the entries are erased unless used.

    Run it last at tensor level, right before bufferization: the tensor form
    of materialize_in_destination has no side effect, and a greedy rewrite
    (canonicalize, fusion) would erase it as dead.
  }];
  let dependentDialects = [
    "mlir::bufferization::BufferizationDialect", "mlir::memref::MemRefDialect"
  ];
  let statistics = [
    Statistic<"numEntries", "entries", "Number of entry functions rewritten">,
    Statistic<"numInPlace", "in-place-updates",
              "Number of params and state updated through their own argument">
  ];
}

def KilnStaticBuffers : Pass<"kiln-static-buffers", "mlir::ModuleOp"> {
  let summary = "Place the entry functions' temporaries in one static arena";
  let description = [{
    Runs after bufferization, before buffer deallocation. Every statically
    shaped `memref.alloc` in the body of @train_step, @eval_step or @predict
    becomes a `memref.view` into `@__kiln_arena`, an uninitialized 64-byte
    aligned global: a step then allocates nothing (no malloc, no page faults
    after the first step). Temporaries whose live ranges (from the alloc to
    the last use of the buffer or a view of it, in the straight-line entry
    body) do not overlap share memory (greedy first-fit, largest first); the
    arena is the largest packing over the entries, which never run at the
    same time. The step functions are therefore not reentrant: the runtime
    calls them one at a time.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect", "mlir::arith::ArithDialect"];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark with what the pass did (kilnc --print-stats)">
  ];
  let statistics = [
    Statistic<"numBuffers", "buffers", "Number of allocations placed in the arena">,
    Statistic<"arenaBytes", "arena-bytes", "Size of the arena in bytes">,
    Statistic<"totalBytes", "total-bytes",
              "Bytes the placed allocations would take without sharing">
  ];
}

def KilnVectorizeMatmul : Pass<"kiln-vectorize-matmul", "mlir::func::FuncOp"> {
  let summary = "Register-tiled vector code for linalg.matmul on memrefs";
  let description = [{
    Replaces each `linalg.matmul` and `linalg.matmul_transpose_a` on static
    memrefs with a unit-stride last dimension (after bufferization) with loops
    over a `rows` x (`lanes` * `vectors`) register tile of accumulators (4 x 2
    ymm on AVX2, 8 x 2 zmm on AVX-512 by default): for each k, `vectors`
    vector loads from a row of B, one broadcast per row of A and `rows` *
    `vectors` `vector.fma`s; the tile is loaded from and stored back to C once
    per block of `k-block` values of k (from zero vectors in the first block
    when a `linalg.fill` of zero right before the product is folded in).
    Columns past the last full tile use masked transfers, rows past the last
    full tile a one-row kernel, so that every shape is handled. When 16 or
    more row tiles share a column tile, its block of B is first copied into a
    contiguous stack buffer (`memref.alloca`, one per thread).

    With `parallel` (the default), a matmul of at least `parallel-min-flops`
    floating-point operations (2 m n k) runs its full column tiles (or its
    full row tiles, when there are fewer than 8 column tiles and more row
    tiles) as an `scf.parallel` loop, each iteration running its own blocks
    of k; the partial tile follows serially. Each element of C sums over k in
    the same order as the serial loops, so results do not depend on the
    number of threads. The pipeline lowers the loop to OpenMP
    (convert-scf-to-openmp); the thread count is OMP_NUM_THREADS at run time.
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::scf::SCFDialect",
    "mlir::vector::VectorDialect", "mlir::memref::MemRefDialect"
  ];
  let options = [
    Option<"rows", "rows", "int64_t", /*default=*/"0",
           "Rows of C per register tile (0: 8 with 512-bit vectors, which "
           "come with 32 registers, else 4)">,
    Option<"vectors", "vectors", "int64_t", /*default=*/"2",
           "Vectors of C per row of a register tile">,
    Option<"vectorBits", "vector-bits", "int64_t", /*default=*/"0",
           "Bits per vector (256: AVX2, 512: AVX-512; 0: the host's)">,
    Option<"kBlock", "k-block", "int64_t", /*default=*/"256",
           "Values of k per cache block">,
    Option<"parallel", "parallel", "bool", /*default=*/"true",
           "Run independent column (or row) tiles of large matmuls in an "
           "scf.parallel loop">,
    Option<"parallelMinFlops", "parallel-min-flops", "int64_t",
           /*default=*/"2000000",
           "Smallest matmul (2 m n k floating-point operations) made parallel">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark with what the pass did (kilnc --print-stats)">
  ];
  let statistics = [
    Statistic<"numVectorized", "matmuls-vectorized",
              "Number of linalg.matmul ops replaced by vector code">,
    Statistic<"numParallel", "matmuls-parallel",
              "Number of vectorized matmuls emitted as an scf.parallel loop">
  ];
}

def KilnCollapseDims : Pass<"kiln-collapse-dims", "mlir::func::FuncOp"> {
  let summary = "Merge the loops of linalg.generic ops that walk memory contiguously";
  let description = [{
    Runs on buffers, before convert-linalg-to-loops. For each
    `linalg.generic` whose operands are all identity-layout memrefs and whose
    body reads no loop index, each maximal run of consecutive loops of one
    iterator type that every indexing map keeps contiguous and in order is
    collapsed into one loop (memref.collapse_shape on the operands, which
    copies nothing). An elementwise op over [64, 64, 24, 24] becomes one loop
    over 2,359,296 elements, which LLVM vectorizes with contiguous loads;
    as four loops, it unrolled the innermost (24) and vectorized the next one
    out with gathers.
  }];
  let dependentDialects = [
    "mlir::affine::AffineDialect", "mlir::arith::ArithDialect",
    "mlir::memref::MemRefDialect"
  ];
  let statistics = [
    Statistic<"numCollapsed", "ops-collapsed",
              "Number of linalg.generic ops whose loops were merged">
  ];
}

def KilnReductionLoops : Pass<"kiln-reduction-loops", "mlir::func::FuncOp"> {
  let summary = "Lower reductions to loops that accumulate in registers";
  let description = [{
    Runs on buffers, before convert-linalg-to-loops (and after
    kiln-parallelize-loops, which splits parallel loops only). Each
    `linalg.generic` whose innermost loop is a reduction, with one output,
    static ranges and projected-permutation maps becomes
    scf.for loops: the parallel
    loops outside, the reduction loops inside (each group in its original
    order), the output element loaded before the reduction loops and stored
    after them, and the accumulator carried as an iter_arg, so that LLVM
    keeps it in a register (the static arena's views keep LLVM from proving
    that the output does not alias the inputs) and vectorizes the innermost
    loop. Every output element combines its inputs in the same order as
    convert-linalg-to-loops would.
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::scf::SCFDialect",
    "mlir::memref::MemRefDialect"
  ];
  let statistics = [
    Statistic<"numLowered", "reductions-lowered",
              "Number of reduction generics lowered to accumulating loops">
  ];
}

def KilnDynamicSchedule : Pass<"kiln-dynamic-schedule", "mlir::func::FuncOp"> {
  let summary = "Schedule OpenMP worksharing loops dynamically";
  let description = [{
    Runs after convert-scf-to-openmp. Sets `schedule(dynamic)` on every
    `omp.wsloop` (chunks of one iteration: a tile, a batch entry or a chunk
    of kiln-parallelize-loops), so that when another process holds a core,
    the threads that run take over the iterations of the one that does not,
    instead of waiting for it at the end of the loop. Results do not depend
    on which thread runs an iteration.
  }];
  let dependentDialects = ["mlir::omp::OpenMPDialect"];
  let statistics = [
    Statistic<"numLoops", "loops", "Number of omp.wsloop ops scheduled dynamically">
  ];
}

def KilnParallelizeLoops : Pass<"kiln-parallelize-loops", "mlir::func::FuncOp"> {
  let summary = "Split large linalg ops on memrefs over threads";
  let description = [{
    Runs after bufferization and kiln-vectorize-matmul, before
    convert-linalg-to-loops. Each linalg op on buffers with at least
    `min-iterations` loop iterations is tiled along its outermost parallel
    loop of at least `min-trips` iterations (one iteration per tile, or
    ceil(trips / 64) when there are more than 64), which becomes an
    `scf.parallel` loop around the op on subviews (OpenMP after
    convert-scf-to-openmp; OMP_NUM_THREADS threads at run time). Only
    parallel loops are split, and the loops inside keep their order, so
    results do not depend on the number of threads.
  }];
  let dependentDialects = [
    "mlir::affine::AffineDialect", "mlir::arith::ArithDialect",
    "mlir::scf::SCFDialect", "mlir::memref::MemRefDialect"
  ];
  let options = [
    Option<"minIterations", "min-iterations", "int64_t", /*default=*/"262144",
           "Smallest loop nest (product of its trip counts) made parallel">,
    Option<"minTrips", "min-trips", "int64_t", /*default=*/"4",
           "Fewest iterations of the loop that is split">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark with what the pass did (kilnc --print-stats)">
  ];
  let statistics = [
    Statistic<"numParallel", "ops-parallel",
              "Number of linalg ops split into an scf.parallel loop">
  ];
}

def KilnNoAliasKernels : Pass<"kiln-noalias-kernels", "mlir::ModuleOp"> {
  let summary = "Move loop nests into functions whose distinct buffers are noalias";
  let description = [{
    Runs on buffers, after kiln-static-buffers and kiln-parallelize-loops.
    Each linalg op of a function (but `linalg.fill` and the matmuls, which
    kiln-vectorize-matmul handles together), with the subviews and reshapes
    only it uses, moves into a new private function, called in its place,
    that takes the values they use from outside (all identity-layout static
    memrefs or scalars; otherwise the op stays). A memref argument is marked
    `llvm.noalias` when it shares no memory with another argument: a view
    of a global (the static arena) at a constant byte offset whose range
    overlaps no other argument's, or a function argument or global passed
    once. Every temporary being a view of one arena, LLVM could otherwise
    not tell an op's buffers apart; after it inlines the call, the marks
    become alias scopes of that loop nest, and loads may move past stores
    (short unrolled rows vectorize).
  }];
  let dependentDialects = [
    "mlir::func::FuncDialect", "mlir::LLVM::LLVMDialect"
  ];
  let statistics = [
    Statistic<"numOutlined", "kernels", "Number of linalg ops moved into functions">
  ];
}

def KilnVectorizeTranspose : Pass<"kiln-vectorize-transpose", "mlir::func::FuncOp"> {
  let summary = "Transpose f32 buffers in vector register tiles";
  let description = [{
    Replaces each `linalg.transpose` of contiguous static f32 memrefs whose
    permutation keeps some leading dimensions (the batch) and moves trailing
    input dimensions in front of the others (NCHW -> NHWC, [m, n] -> [n, m])
    by a batch of 2-D transposes [R, C] -> [C, R] on collapsed views: T x T
    tiles (T = lanes of `vector-bits`) are read as T row vectors, transposed
    with `vector.transpose` (lowered here to shuffles: the 16 x 16 sequence
    with 512-bit vectors, 1-D shuffles otherwise) and written as T row
    vectors; rows and columns past the last full tile are copied element by
    element. Transposes that keep the last dimension last (copies of
    contiguous rows) are left to convert-linalg-to-loops. With `parallel`,
    a transpose of at least `parallel-min-elements` elements runs its batch
    (or, with no batch, its column tiles) as an scf.parallel loop.
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::scf::SCFDialect",
    "mlir::vector::VectorDialect", "mlir::memref::MemRefDialect"
  ];
  let options = [
    Option<"vectorBits", "vector-bits", "int64_t", /*default=*/"0",
           "Bits per vector (0: the host's)">,
    Option<"parallel", "parallel", "bool", /*default=*/"true",
           "Split large transposes over threads (scf.parallel)">,
    Option<"parallelMinElements", "parallel-min-elements", "int64_t",
           /*default=*/"262144",
           "Smallest transpose (elements) made parallel">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark with what the pass did (kilnc --print-stats)">
  ];
  let statistics = [
    Statistic<"numVectorized", "transposes-vectorized",
              "Number of linalg.transpose ops replaced by tiled vector code">
  ];
}

def KilnApproximateMath : Pass<"kiln-approximate-math", "mlir::func::FuncOp"> {
  let summary = "Polynomial approximations of f32 transcendental functions";
  let description = [{
    Rewrites f32 `math.exp`, `math.log`, `math.log1p`, `math.tanh`,
    `math.erf` (and the other functions MLIR's polynomial approximations
    cover) into arith ops, so that the loops around them vectorize instead of
    calling libm one element at a time. f64 math keeps libm's functions (the
    gradient checker runs in f64).
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::math::MathDialect",
    "mlir::vector::VectorDialect"
  ];
  let statistics = [
    Statistic<"numApproximated", "approximated",
              "Number of f32 math ops replaced by polynomials">
  ];
}

def KilnAbiWrappers : Pass<"kiln-abi-wrappers", "mlir::ModuleOp"> {
  let summary = "Emit the C ABI: kiln_* step wrappers and kiln_manifest";
  let description = [{
    Runs on the LLVM dialect, after `convert-func-to-llvm` with bare-pointer
    memrefs. For each of `train_step`, `eval_step` and `predict` it defines
    `void kiln_NAME(void **buffers)`, which loads each buffer pointer and calls
    the inner function (made internal so that LLVM inlines it); a missing entry
    gets a wrapper that does nothing. It turns the module attribute
    `kiln.manifest` into a constant string returned by
    `const char *kiln_manifest(void)`. It fails if the module still calls an
    MLIR runtime helper (`memrefCopy`, `_mlir_*`), which the runtime does not
    provide.
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
  let statistics = [
    Statistic<"numWrappers", "wrappers", "Number of kiln_* step wrappers defined">
  ];
}

#endif // KILN_CODEGEN_PASSES_TD
