//===- Passes.td - Kiln's passes on the kiln dialect -----------*- tablegen -*-===//

#ifndef KILN_PASSES_TD
#define KILN_PASSES_TD

include "mlir/Pass/PassBase.td"

def KilnAutodiff : Pass<"kiln-autodiff", "mlir::ModuleOp"> {
  let summary = "Builds @train_step: forward, reverse-mode gradients, optimizer";
  let description = [{
    Differentiates the loss of `@forward` with respect to every `kiln.param` and
    appends the optimizer update configured in the module's `kiln.train`
    attribute (sgd, momentum, adam or adamw; gradient-norm clipping when
    `clip_norm` > 0). The new function takes the parameters, the optimizer state,
    the model inputs and the `hyper` vector, and returns the updated parameters
    and state and the loss (see runtime/KilnABI.h for the buffer conventions).
    The gradient rules are the ops' DifferentiableOpInterface implementations.

    With `data-parallel`, each process of a data-parallel job runs the step on
    its own part of the global batch: one `kiln.all_reduce` averages the
    gradients, the loss, its named terms and the buffer updates over the
    processes (concatenated into one flat tensor per element type) before
    clipping and the optimizer, so every process applies the same update.
  }];
  let options = [
    Option<"dataParallel", "data-parallel", "bool", "false",
           "Average the step's gradients over a data-parallel job's "
           "processes before the optimizer update">,
  ];
  let dependentDialects = ["mlir::func::FuncDialect", "kiln::KilnDialect"];
  let statistics = [
    Statistic<"numGradientOps", "gradient-ops", "Ops built by gradient rules">,
    Statistic<"numDifferentiated", "params", "Parameters differentiated">,
  ];
}

def KilnScanPrecompute : Pass<"kiln-scan-precompute", "mlir::ModuleOp"> {
  let summary = "Moves a scan's step work that reads no carry out of the loop";
  let description = [{
    In a kiln.scan body, a matmul of a step-independent value (a slice of a
    sequence, or computed from slices and consts only) with a const, and the
    elementwise ops on such values, are computed for every step at once before
    the loop: the input projection `x_t @ w_ih + b_ih` of a recurrent cell
    becomes one `[B*T, I] x [I, G]` matmul, and the loop reads its result as a
    sequence. Runs before kiln-autodiff, so that the gradient of the projection
    is one matmul over the sequence too.
  }];
  let dependentDialects = ["kiln::KilnDialect"];
  let statistics = [
    Statistic<"numHoisted", "hoisted-ops", "Step ops computed for all steps">,
  ];
}

def KilnEntryPoints : Pass<"kiln-entry-points", "mlir::ModuleOp"> {
  let summary = "Builds @eval_step and @predict from @forward, then drops it";
  let description = [{
    `@eval_step(params..., inputs...) -> (loss, outputs...)` and
    `@predict(params..., needed inputs...) -> (outputs...)`, with parameters as
    arguments (`kiln.param` argument attributes) instead of kiln.load_param. Also
    records `kiln.metrics`: classification accuracy for every i32 output shaped
    like the labels of a cross_entropy loss, and `kiln.labels`: the number of
    classes of every input used as cross_entropy labels.
  }];
  let dependentDialects = ["mlir::func::FuncDialect", "kiln::KilnDialect"];
}

def KilnCheckGradients : Pass<"kiln-check-gradients", "mlir::ModuleOp"> {
  let summary = "Checks gradient rules against central finite differences";
  let description = [{
    For every function with float tensor arguments, builds the gradient of
    `sum(f(x) * w)` (random fixed weights `w`, all float results) with respect to
    every float argument using the same rules as kiln-autodiff, evaluates it with
    the f64 reference evaluator, and compares each component with a central
    finite difference. Reports one remark per function (`gradient check passed`)
    or an error with the worst component. A testing aid, used by lit.
  }];
  let options = [
    Option<"tolerance", "tolerance", "double", "1e-6",
           "Largest accepted relative error">,
    Option<"seed", "seed", "unsigned", "1", "Seed of the random inputs">,
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

def KilnFuseConv : Pass<"kiln-fuse-conv", "mlir::ModuleOp"> {
  let summary = "Fuses conv2d and matmul with their epilogues";
  let description = [{
    `conv2d` + per-channel bias add + activation (relu, sigmoid, tanh, gelu) +
    a following max/avg pool become one `kiln.fused_conv2d`; rank-2 `matmul` +
    bias add + activation become one `kiln.fused_dense`. An intermediate is
    absorbed only when the fused ops are its only users, except the activation
    before a pool, which the fused op also returns when the backward pass reads
    it (max pooling's gradient does). Before matching, the relu gradient's mask
    `greater(z, 0)` is rewritten to `greater(relu(z), 0)` so that it no longer
    keeps the pre-activation alive. Runs after autodiff, on all entry points.
    With `report-missed`, every candidate that is not fused gets a remark
    saying why (as clang's -Rpass-missed). With `report-stats`, one remark on
    the module gives the counts below (Debian's release LLVM compiles
    -mlir-pass-statistics out, so this is how kilnc --stats shows them).
  }];
  let options = [
    Option<"reportMissed", "report-missed", "bool", "false",
           "Emit a remark for every fusion candidate that was refused">,
    Option<"reportStats", "report-stats", "bool", "false",
           "Emit one remark with the fusion counts">,
  ];
  let statistics = [
    Statistic<"numConv", "fused-conv", "conv2d ops fused with an epilogue">,
    Statistic<"numConvBias", "fused-conv-bias", "bias adds fused into a conv2d">,
    Statistic<"numConvActivation", "fused-conv-activation",
              "activations fused into a conv2d">,
    Statistic<"numConvPool", "fused-conv-pool", "pools fused into a conv2d">,
    Statistic<"numDense", "fused-dense", "matmul + bias [+ activation] fused">,
    Statistic<"numMaskRewrites", "relu-mask-rewrites",
              "relu gradient masks moved onto the activation">,
    Statistic<"numRefused", "refused", "fusion candidates refused">,
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

def KilnFuseAttention : Pass<"kiln-fuse-attention", "mlir::ModuleOp"> {
  let summary = "Fuses softmax(q k^T * scale) v into kiln.attention";
  let description = [{
    Finds attention written out as ops, `matmul(q, k^T)`, an optional scale
    (`mul` or `div` by a positive scalar constant), an optional causal mask
    (`add` of a constant that is 0 on and below the diagonal and -inf, or
    below -1e9, above it), `softmax` over the last axis and `matmul` with v,
    and replaces the chain with one `kiln.attention`, whose lowering never
    forms the scores. k^T may be a `transpose` of the last two dimensions
    (its input becomes k) or any tensor (then k is its transpose). Runs
    before kiln-autodiff, so the gradient is the fused backward op. A chain
    is fused only when nothing else reads its scores or probabilities. With
    `report-missed`, every softmax that is not fused gets a remark saying
    why; with `report-stats`, one remark gives the counts.
  }];
  let options = [
    Option<"reportMissed", "report-missed", "bool", "false",
           "Emit a remark for every fusion candidate that was refused">,
    Option<"reportStats", "report-stats", "bool", "false",
           "Emit one remark with the fusion counts">,
  ];
  let statistics = [
    Statistic<"numFused", "fused-attention", "attention chains fused">,
    Statistic<"numCausal", "fused-causal", "of them causal">,
    Statistic<"numRefused", "refused", "softmaxes not fused">,
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

#endif // KILN_PASSES_TD
