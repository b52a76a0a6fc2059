//===- KilnOps.td - Operations of the kiln dialect -------------*- tablegen -*-===//
//
// One op per DSL builtin. Every op verifies its operands and infers its result type
// from the shape rules in ir/ShapeRules.h, the same rules the frontend's semantic
// analysis reports to users.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "ir/KilnDialect.td"
include "ir/KilnInterfaces.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

//===----------------------------------------------------------------------===//
// Types and attributes
//===----------------------------------------------------------------------===//

def Kiln_FloatTensor : StaticShapeTensorOf<[F32, F64]>;
def Kiln_LabelTensor : StaticShapeTensorOf<[I32]>;
def Kiln_AnyTensor : StaticShapeTensorOf<[F32, F64, I32]>;
def Kiln_ScalarFloat : 0DTensorOf<[F32, F64]>;
/// The per-step hyper-parameter vector of runtime/KilnABI.h.
def Kiln_HyperTensor : StaticShapeTensorOf<[F32]>;

def Kiln_InitKind : I32EnumAttr<"InitKind", "parameter initializer", [
    I32EnumAttrCase<"zeros", 0>,
    I32EnumAttrCase<"ones", 1>,
    I32EnumAttrCase<"constant", 2>,       // (value)
    I32EnumAttrCase<"uniform", 3>,        // (low, high)
    I32EnumAttrCase<"normal", 4>,         // (mean, std)
    I32EnumAttrCase<"glorot_uniform", 5>, // (fan_in, fan_out)
    I32EnumAttrCase<"glorot_normal", 6>,  // (fan_in, fan_out)
    I32EnumAttrCase<"he_uniform", 7>,     // (fan_in)
    I32EnumAttrCase<"he_normal", 8>       // (fan_in)
  ]> {
  let cppNamespace = "::kiln";
}

def Kiln_ActivationKind : I32EnumAttr<"ActivationKind",
    "the epilogue activation of a fused op", [
    I32EnumAttrCase<"none", 0>,
    I32EnumAttrCase<"relu", 1>,
    I32EnumAttrCase<"sigmoid", 2>,
    I32EnumAttrCase<"tanh", 3>,
    I32EnumAttrCase<"gelu", 4>
  ]> {
  let cppNamespace = "::kiln";
  // The attribute is Kiln_ActivationAttr, a dialect attribute printed as the
  // keyword (`relu`), not an integer.
  let genSpecializedAttr = 0;
}

/// `#kiln<activation relu>`; in the fused ops' assembly, just `relu`.
def Kiln_ActivationAttr
    : EnumAttr<Kiln_Dialect, Kiln_ActivationKind, "activation">;

def Kiln_PoolKind : I32EnumAttr<"PoolKind",
    "the pooling that follows a fused convolution", [
    I32EnumAttrCase<"none", 0>,
    I32EnumAttrCase<"max", 1>,
    I32EnumAttrCase<"avg", 2>
  ]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}

/// `#kiln<pool max>`; in kiln.fused_conv2d's assembly, just `max`.
def Kiln_PoolAttr : EnumAttr<Kiln_Dialect, Kiln_PoolKind, "pool">;

//===----------------------------------------------------------------------===//
// Base classes
//===----------------------------------------------------------------------===//

class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic, traits>;

/// Elementwise binary op with NumPy broadcasting of its operands.
class Kiln_BinaryOp<string mnemonic, string summary_>
    : Kiln_Op<mnemonic, [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = summary_;
  let description = [{
    Elementwise on the NumPy broadcast of the two operand shapes; both operands have
    the same element type.
  }];
  let arguments = (ins Kiln_FloatTensor:$lhs, Kiln_FloatTensor:$rhs);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
  let hasFolder = 1;
}

/// Elementwise unary op on a float tensor.
class Kiln_UnaryOp<string mnemonic, string summary_>
    : Kiln_Op<mnemonic, [Pure, SameOperandsAndResultType, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = summary_;
  let arguments = (ins Kiln_FloatTensor:$input);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

/// Reduction over a set of axes.
class Kiln_ReduceOp<string mnemonic, string summary_>
    : Kiln_Op<mnemonic, [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = summary_;
  let description = [{
    Reduces `input` over `axes` (distinct, in [0, rank)); the reduced dimensions are
    dropped unless `keepdims` is set, in which case they become 1.
  }];
  let arguments = (ins Kiln_FloatTensor:$input, DenseI64ArrayAttr:$axes,
                       DefaultValuedAttr<BoolAttr, "false">:$keepdims);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `axes` `=` $axes attr-dict `:` type($input) `->` type($result)
  }];
}

/// Normalization along one axis (softmax and friends).
class Kiln_AxisOp<string mnemonic, string summary_>
    : Kiln_Op<mnemonic, [Pure, SameOperandsAndResultType, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = summary_;
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input `axis` `=` $axis attr-dict `:` type($result)";
  let hasVerifier = 1;
}

/// A loss: reduces its operands to a scalar, the mean over the batch.
class Kiln_LossOp<string mnemonic, string summary_>
    : Kiln_Op<mnemonic, [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = summary_;
  let results = (outs Kiln_ScalarFloat:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Parameters and constants
//===----------------------------------------------------------------------===//

def Kiln_ParamOp : Kiln_Op<"param", [Symbol, HasParent<"mlir::ModuleOp">]> {
  let summary = "a trainable parameter";
  let description = [{
    Declares a trainable tensor owned by the compiled model, named hierarchically
    after the call site that created it (`fc1.w`), with the initializer the runtime
    applies before training:

    ```mlir
    kiln.param @fc1.w : tensor<784x256xf32> = glorot_uniform(784, 256)
    kiln.param @fc1.b : tensor<256xf32> = zeros
    ```

    Initializer arguments: `constant(value)`, `uniform(low, high)`,
    `normal(mean, std)`, `glorot_*(fan_in, fan_out)`, `he_*(fan_in)`.

    A `buffer` parameter is state that is not trained by the optimizer but set
    by `kiln.assign_param` (batch normalization's running statistics); it is
    saved in checkpoints like any parameter.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<Kiln_FloatTensor>:$type,
                       Kiln_InitKind:$init,
                       DefaultValuedAttr<DenseF64ArrayAttr, "{}">:$init_args,
                       UnitAttr:$buffer);
  let assemblyFormat = [{
    $sym_name `:` $type `=` custom<Init>($init, $init_args) attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    mlir::RankedTensorType getTensorType() {
      return llvm::cast<mlir::RankedTensorType>(getType());
    }
    /// The number of arguments the initializer `kind` takes.
    static unsigned getNumInitArgs(InitKind kind);
  }];
}

def Kiln_LoadParamOp : Kiln_Op<"load_param",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "reads the current value of a parameter";
  let arguments = (ins FlatSymbolRefAttr:$param);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$param attr-dict `:` type($result)";
}

def Kiln_ConstantOp : Kiln_Op<"constant",
    [ConstantLike, Pure, DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "a constant tensor";
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$value attr-dict";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

def Kiln_AddOp : Kiln_BinaryOp<"add", "elementwise addition">;
def Kiln_SubOp : Kiln_BinaryOp<"sub", "elementwise subtraction">;
def Kiln_MulOp : Kiln_BinaryOp<"mul", "elementwise multiplication">;
def Kiln_DivOp : Kiln_BinaryOp<"div", "elementwise division">;
def Kiln_MaximumOp : Kiln_BinaryOp<"maximum", "elementwise maximum">;
def Kiln_MinimumOp : Kiln_BinaryOp<"minimum", "elementwise minimum">;

def Kiln_GreaterOp : Kiln_BinaryOp<"greater",
    "elementwise lhs > rhs as 1.0 (true) or 0.0 (false)"> {
  let description = [{
    A float mask on the NumPy broadcast of the operand shapes; not differentiable
    (gradient rules use it to select where gradients flow).
  }];
}

def Kiln_NegOp : Kiln_UnaryOp<"neg", "negation">;
def Kiln_ReluOp : Kiln_UnaryOp<"relu", "rectified linear unit, max(x, 0)">;
def Kiln_SigmoidOp : Kiln_UnaryOp<"sigmoid", "logistic sigmoid">;
def Kiln_TanhOp : Kiln_UnaryOp<"tanh", "hyperbolic tangent">;
def Kiln_ExpOp : Kiln_UnaryOp<"exp", "natural exponential">;
def Kiln_LogOp : Kiln_UnaryOp<"log", "natural logarithm">;
def Kiln_SqrtOp : Kiln_UnaryOp<"sqrt", "square root">;
def Kiln_AbsOp : Kiln_UnaryOp<"abs", "absolute value">;
def Kiln_LeakyReluOp : Kiln_Op<"leaky_relu",
    [Pure, SameOperandsAndResultType, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "leaky rectified linear unit, x if x > 0 else slope * x";
  let description = [{
    As torch.nn.functional.leaky_relu with `negative_slope = slope` (default
    0.01); the gradient at 0 is `slope`, as PyTorch's.
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
                       DefaultValuedAttr<F64Attr, "0.01">:$slope);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}
def Kiln_SoftplusOp : Kiln_UnaryOp<"softplus",
    "log(1 + exp(x)), computed as max(x, 0) + log(1 + exp(-|x|))">;
def Kiln_CastOp : Kiln_Op<"cast", [Pure, SameOperandsAndResultShape, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "converts the elements to another type";
  let description = [{
    i32 to f32 or f64 (class ids to numbers: a padding mask from token ids),
    or between f32 and f64. Its gradient converts back; an i32 input has none.
  }];
  let arguments = (ins Kiln_AnyTensor:$input);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Kiln_GeluOp : Kiln_UnaryOp<"gelu",
    "Gaussian error linear unit, x * Phi(x) (exact, with erf)">;

def Kiln_GeluDerivativeOp : Kiln_Op<"gelu_derivative",
    [Pure, SameOperandsAndResultType]> {
  let summary = "d gelu(x) / dx = Phi(x) + x phi(x) (used by gelu's rule)";
  let arguments = (ins Kiln_FloatTensor:$input);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Contractions, normalizations, reductions
//===----------------------------------------------------------------------===//

def Kiln_MatmulOp : Kiln_Op<"matmul", [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "(batched) matrix product";
  let description = [{
    `[..., M, K] x [..., K, N] -> [..., M, N]`; both operands have rank >= 2 and
    their leading (batch) dimensions broadcast.
  }];
  let arguments = (ins Kiln_FloatTensor:$lhs, Kiln_FloatTensor:$rhs);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_AttentionOp : Kiln_Op<"attention", [Pure, AttrSizedOperandSegments, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "fused scaled dot-product attention";
  let description = [{
    `out = softmax(q k^T * scale (+ causal mask)) v` over the last two
    dimensions, for q `[..., Tq, D]`, k `[..., Tk, D]`, v `[..., Tk, Dv]`
    with equal batch dimensions; with `causal`, query i attends to keys
    0..i (PyTorch's `is_causal`). An optional key mask `[..., Tk]`, which
    broadcasts to the batch dimensions and Tk, hides the keys where it is 0
    (padding: PyTorch's `key_padding_mask`, inverted). A query that sees no
    key gets output 0. The second result is the log-sum-exp of each query's
    scaled scores, `[..., Tq]` (+inf for a query that sees no key), which
    the backward pass reads instead of the probabilities.

    With a `hyper` vector (in @train_step) and `dropout` > 0, each
    probability is dropped with that rate and the rest scaled by
    1 / (1 - dropout) before they weigh the values (PyTorch's attention
    dropout); the mask is ir/Random.h's hash of (hyper's step and seed,
    `salt`, the probability's index in [batch, Tq, Tk]), so the backward
    pass recomputes it. Without `hyper` (evaluation) nothing is dropped.

    The lowering never forms the Tq x Tk matrix: it runs over tiles of
    queries and keys with an online softmax (FlashAttention), and the
    gradient is one `kiln.attention_backward` that recomputes each tile's
    probabilities from the log-sum-exp.

    ```mlir
    %o, %lse = kiln.attention %q, %k, %v causal scale = 0.125
        : (tensor<2x4x16x64xf32>, tensor<2x4x16x64xf32>, tensor<2x4x16x64xf32>)
        -> (tensor<2x4x16x64xf32>, tensor<2x4x16xf32>)
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value,
                       Optional<Kiln_FloatTensor>:$key_mask,
                       Optional<Kiln_HyperTensor>:$hyper, F64Attr:$scale,
                       UnitAttr:$causal,
                       DefaultValuedAttr<F64Attr, "0.0">:$dropout,
                       DefaultValuedAttr<I64Attr, "0">:$salt);
  let results = (outs Kiln_FloatTensor:$out, Kiln_FloatTensor:$lse);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`mask` $key_mask^)? (`hyper` $hyper^)?
    (`causal` $causal^)? `scale` `=` $scale attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_AttentionBackwardOp : Kiln_Op<"attention_backward", [Pure, AttrSizedOperandSegments, InferTypeOpAdaptor]> {
  let summary = "gradient of kiln.attention";
  let description = [{
    Given an attention's operands and attributes, its results `out` and
    `lse`, and their gradients `dout` and `dlse`, the gradients of q, k and
    v (FlashAttention-2's backward pass, tile by tile).
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, Kiln_FloatTensor:$out,
                       Kiln_FloatTensor:$lse, Kiln_FloatTensor:$dout,
                       Kiln_FloatTensor:$dlse,
                       Optional<Kiln_FloatTensor>:$key_mask,
                       Optional<Kiln_HyperTensor>:$hyper, F64Attr:$scale,
                       UnitAttr:$causal,
                       DefaultValuedAttr<F64Attr, "0.0">:$dropout,
                       DefaultValuedAttr<I64Attr, "0">:$salt);
  let results = (outs Kiln_FloatTensor:$dquery, Kiln_FloatTensor:$dkey,
                      Kiln_FloatTensor:$dvalue);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $out `,` $lse `,` $dout `,` $dlse
    (`mask` $key_mask^)? (`hyper` $hyper^)? (`causal` $causal^)? `scale` `=`
    $scale attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_LayerNormOp : Kiln_Op<"layer_norm", [Pure, SameOperandsAndResultType, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "normalizes the last dimension to mean 0 and variance 1";
  let description = [{
    `(x - mean) / sqrt(var + eps)` over the last dimension, with the biased
    variance (torch.nn.functional.layer_norm without weight and bias; the
    DSL's `layer_norm` layer multiplies and adds those). Its gradient is one
    `kiln.layer_norm_backward`, which recomputes the statistics from x.
  }];
  let arguments = (ins Kiln_FloatTensor:$input, F64Attr:$eps);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `eps` `=` $eps attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
}

def Kiln_LayerNormBackwardOp : Kiln_Op<"layer_norm_backward", [Pure, SameOperandsAndResultType]> {
  let summary = "gradient of kiln.layer_norm";
  let description = [{
    Given a layer norm's input x and its result's gradient g:
    `(g - mean(g) - y * mean(g * y)) / sqrt(var + eps)`, y the normalized x,
    means over the last dimension.
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$grad,
                       F64Attr:$eps);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $grad `eps` `=` $eps attr-dict `:` type($input)
  }];
}

def Kiln_SoftmaxOp : Kiln_AxisOp<"softmax", "softmax along an axis">;
def Kiln_LogSoftmaxOp : Kiln_AxisOp<"log_softmax", "log-softmax along an axis">;

def Kiln_ReduceSumOp : Kiln_ReduceOp<"reduce_sum", "sum over axes">;
def Kiln_ReduceMeanOp : Kiln_ReduceOp<"reduce_mean", "mean over axes">;
def Kiln_ReduceMaxOp : Kiln_ReduceOp<"reduce_max", "maximum over axes">;

def Kiln_ArgmaxOp : Kiln_Op<"argmax", [Pure, InferTypeOpAdaptor]> {
  let summary = "index of the maximum along an axis (first on ties)";
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Kiln_LabelTensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis attr-dict `:` type($input) `->` type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

def Kiln_ReshapeOp : Kiln_Op<"reshape", [Pure, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "reinterprets a tensor with another shape of the same size";
  let arguments = (ins Kiln_AnyTensor:$input);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Kiln_TransposeOp : Kiln_Op<"transpose", [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "permutes the dimensions of a tensor";
  let description = "Result dimension `i` is input dimension `perm[i]`.";
  let arguments = (ins Kiln_AnyTensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = [{
    $input `perm` `=` $perm attr-dict `:` type($input) `->` type($result)
  }];
}

def Kiln_SplitOp : Kiln_Op<"split", [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "cuts a tensor into consecutive pieces along an axis";
  let description = [{
    Result `i` is the slice of `input` along `axis` of size `sizes[i]` that
    starts where result `i - 1` ends (the gates of an LSTM:
    `sizes = [H, H, H, H]`). Its gradient is `kiln.concat` of the results'
    gradients.

    ```mlir
    %i, %f = kiln.split %x axis = 1 sizes = [4, 4]
        : tensor<2x8xf32> -> (tensor<2x4xf32>, tensor<2x4xf32>)
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$input, I64Attr:$axis,
                       DenseI64ArrayAttr:$sizes);
  let results = (outs Variadic<Kiln_AnyTensor>:$results);
  let assemblyFormat = [{
    $input `axis` `=` $axis `sizes` `=` $sizes attr-dict `:` type($input)
    `->` `(` type($results) `)`
  }];
}

def Kiln_ConcatOp : Kiln_Op<"concat", [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "joins tensors along an axis";
  let description = [{
    The inputs, of equal element type and equal dimensions except `axis`,
    one after the other along `axis`. Its gradient is `kiln.split` of the
    result's gradient into the inputs' sizes.

    ```mlir
    %y = kiln.concat %a, %b axis = 1
        : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x8xf32>
    ```
  }];
  let arguments = (ins Variadic<Kiln_AnyTensor>:$inputs, I64Attr:$axis);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = [{
    $inputs `axis` `=` $axis attr-dict `:` `(` type($inputs) `)` `->`
    type($result)
  }];
}

def Kiln_BroadcastToOp : Kiln_Op<"broadcast_to", [Pure, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "broadcasts a tensor to a larger shape (NumPy rules)";
  let arguments = (ins Kiln_AnyTensor:$input);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_OneHotOp : Kiln_Op<"one_hot", [Pure]> {
  let summary = "class indices to one-hot float rows";
  let description = [{
    `labels: i32[N]` to `[N, C]` with 1.0 at `[n, labels[n]]` and 0.0 elsewhere;
    an out-of-range label gives an all-zero row.
  }];
  let arguments = (ins Kiln_LabelTensor:$labels);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$labels attr-dict `:` type($labels) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_GatherOp : Kiln_Op<"gather",
    [Pure, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "rows of a table by index (an embedding lookup)";
  let description = [{
    `table: [V, D]`, `ids: i32[N]` to `[N, D]`: row n is `table[ids[n]]`; an
    out-of-range id gives a zero row (the runtime rejects such ids in data, as
    it rejects labels). Its gradient is kiln.scatter_add.
  }];
  let arguments = (ins Kiln_FloatTensor:$table, Kiln_LabelTensor:$ids);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_ScatterAddOp : Kiln_Op<"scatter_add",
    [Pure, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "sums rows into a zero table by index";
  let description = [{
    `ids: i32[N]`, `updates: [N, D]` to `[V, D]`: row v is the sum of the rows
    n of `updates` with `ids[n] = v` (zero if there are none); out-of-range
    ids are skipped. The gradient of kiln.gather, and its transpose.
  }];
  let arguments = (ins Kiln_LabelTensor:$ids, Kiln_FloatTensor:$updates);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $updates `[` $ids `]` attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

def Kiln_CrossEntropyOp : Kiln_LossOp<"cross_entropy",
    "softmax cross-entropy of logits against integer class labels"> {
  let description = [{
    `logits: [N, C]`, `labels: i32[N]` with values in [0, C); the mean over N of
    `-log_softmax(logits)[n, labels[n]]`. With `ignore_index` (PyTorch's), rows
    whose label is that value count for nothing: the mean is over the other
    rows (0 if there are none), so padding in a batch of sequences does not
    train the model.
  }];
  let arguments = (ins Kiln_FloatTensor:$lhs, Kiln_LabelTensor:$rhs,
                       OptionalAttr<I64Attr>:$ignore_index);
}

def Kiln_MseOp : Kiln_LossOp<"mse", "mean squared error"> {
  let description = "The mean over all elements of `(lhs - rhs)^2`; equal shapes.";
  let arguments = (ins Kiln_FloatTensor:$lhs, Kiln_FloatTensor:$rhs);
}

def Kiln_BceWithLogitsOp : Kiln_LossOp<"bce_with_logits",
    "binary cross-entropy of logits against targets in [0, 1]"> {
  let description = [{
    The mean over all elements of
    `max(x, 0) - x * t + log(1 + exp(-|x|))`; `lhs` holds the logits `x`, `rhs` the
    targets `t`, of equal shapes.
  }];
  let arguments = (ins Kiln_FloatTensor:$lhs, Kiln_FloatTensor:$rhs);
}


//===----------------------------------------------------------------------===//
// Convolution and pooling (NCHW)
//===----------------------------------------------------------------------===//

def Kiln_Conv2dOp : Kiln_Op<"conv2d", [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "2-D convolution (cross-correlation), NCHW";
  let description = [{
    `input: [N, C, H, W]`, `filter: [O, C, KH, KW]` ->
    `[N, O, (H + 2 ph - dh (KH - 1) - 1) / sh + 1, (W + ...) / sw + 1]`, with
    `strides = [sh, sw]`, `padding = [ph, pw]` (zeros on both sides) and
    `dilation = [dh, dw]`, as torch.nn.functional.conv2d.
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$filter,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$padding,
                       DenseI64ArrayAttr:$dilation);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $filter `strides` `=` $strides `padding` `=` $padding
    `dilation` `=` $dilation attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_Conv2dBackwardInputOp : Kiln_Op<"conv2d_backward_input", [Pure]> {
  let summary = "gradient of conv2d with respect to its input";
  let description = [{
    Given the gradient of a conv2d's result and its filter, the gradient of its
    input (a transposed convolution); the result type is the input's type.
  }];
  let arguments = (ins Kiln_FloatTensor:$grad, Kiln_FloatTensor:$filter,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$padding,
                       DenseI64ArrayAttr:$dilation);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $filter `strides` `=` $strides `padding` `=` $padding
    `dilation` `=` $dilation attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_Conv2dBackwardFilterOp : Kiln_Op<"conv2d_backward_filter", [Pure]> {
  let summary = "gradient of conv2d with respect to its filter";
  let description = [{
    Given a conv2d's input and the gradient of its result, the gradient of its
    filter; the result type is the filter's type.
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$grad,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$padding,
                       DenseI64ArrayAttr:$dilation);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $grad `strides` `=` $strides `padding` `=` $padding
    `dilation` `=` $dilation attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

class Kiln_Pool2dOp<string mnemonic, string summary_>
    : Kiln_Op<mnemonic, [Pure, InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = summary_;
  let description = [{
    Over `[N, C, H, W]`, windows of `kernel = [kh, kw]` every `strides`, with
    `padding` on both sides; output `(H + 2 ph - kh) / sh + 1` (floor). Max
    pooling pads with -inf; average pooling divides by the full window
    (padding counted, as PyTorch's default count_include_pad).
  }];
  let arguments = (ins Kiln_FloatTensor:$input, DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `kernel` `=` $kernel `strides` `=` $strides `padding` `=` $padding
    attr-dict `:` type($input) `->` type($result)
  }];
}

def Kiln_MaxPool2dOp : Kiln_Pool2dOp<"max_pool2d", "2-D max pooling">;
def Kiln_AvgPool2dOp : Kiln_Pool2dOp<"avg_pool2d", "2-D average pooling">;

def Kiln_MaxPool2dBackwardOp : Kiln_Op<"max_pool2d_backward", [Pure]> {
  let summary = "gradient of max_pool2d with respect to its input";
  let description = [{
    Routes each output gradient to the elements of its window equal to the
    window's maximum (`output`); the result has the input's type.
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$output,
                       Kiln_FloatTensor:$grad, DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $output `,` $grad `kernel` `=` $kernel `strides` `=` $strides
    `padding` `=` $padding attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_AvgPool2dBackwardOp : Kiln_Op<"avg_pool2d_backward", [Pure]> {
  let summary = "gradient of avg_pool2d with respect to its input";
  let arguments = (ins Kiln_FloatTensor:$grad, DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `kernel` `=` $kernel `strides` `=` $strides `padding` `=` $padding
    attr-dict `:` type($grad) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Training-only behaviour
//===----------------------------------------------------------------------===//

def Kiln_DropoutOp : Kiln_Op<"dropout",
    [Pure, AttrSizedOperandSegments, AllTypesMatch<["input", "result"]>,
     DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "inverted dropout";
  let description = [{
    With a `hyper` vector (runtime/KilnABI.h; in @train_step), zeroes each
    element with probability `rate` and scales the rest by 1 / (1 - rate); the
    mask is a counter-based hash of (hyper's step and seed, `salt`, the element's
    index), so it is deterministic and the gradient recomputes the same mask.
    Without `hyper` (evaluation and prediction) it is the identity.

    Inside a kiln.scan, `step` (one i32: the loop's step, a slice of a
    sequence of step numbers) is hashed into the key, so each time step draws
    its own mask (ir/Random.h).
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
                       Optional<Kiln_HyperTensor>:$hyper,
                       Optional<Kiln_LabelTensor>:$step, F64Attr:$rate,
                       I64Attr:$salt);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`,` $hyper^ `:` type($hyper))? (`step` $step^ `:` type($step))?
    attr-dict `:` type($input)
  }];
  let hasFolder = 1;
  let hasVerifier = 1;
}

class Kiln_RandomOp<string mnemonic, string distribution>
    : Kiln_Op<mnemonic, [Pure]> {
  let summary = "a tensor of " # distribution # " random numbers";
  let description = [{
    Each element is a pure function of the key of (the hyper vector's step and
    seed, `salt`) and the element's row-major index (ir/Random.h): the same
    step draws the same numbers, so a run is reproducible and the backward
    pass never stores them. In `@forward` the op has no `hyper`; every entry
    point built from it passes one (training: the step's; evaluation,
    prediction and sampling: one the runtime fills per call).
  }];
  let arguments = (ins Optional<Kiln_HyperTensor>:$hyper, I64Attr:$salt);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    ($hyper^ `:` type($hyper))? attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

def Kiln_RandomUniformOp : Kiln_RandomOp<"random_uniform",
    "uniform [0, 1)">;
def Kiln_RandomNormalOp : Kiln_RandomOp<"random_normal",
    "standard normal">;

def Kiln_WarmupOp : Kiln_Op<"warmup", [Pure]> {
  let summary = "a weight rising from 0 to 1 over the first training steps";
  let description = [{
    With a `hyper` vector (runtime/KilnABI.h; in @train_step): min(1, step /
    `steps`), `step` being the vector's 1-based training step. Without
    (evaluation and prediction): 1. A VAE's KL annealing (Bowman et al., 2016)
    writes `loss reconstruction + warmup(2000) * kl`.
  }];
  let arguments = (ins Optional<Kiln_HyperTensor>:$hyper, I64Attr:$steps);
  let results = (outs 0DTensorOf<[F32, F64]>:$result);
  let assemblyFormat = [{
    ($hyper^ `:` type($hyper))? attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

def Kiln_IfTrainingOp : Kiln_Op<"if_training",
    [Pure, AllTypesMatch<["train_value", "eval_value", "result"]>]> {
  let summary = "selects a value by mode: training or evaluation";
  let description = [{
    `@forward` describes both modes; kiln-autodiff resolves this op to
    `train_value` in @train_step and kiln-entry-points to `eval_value` in
    @eval_step and @predict (batch normalization's batch vs. running statistics).
  }];
  let arguments = (ins Kiln_FloatTensor:$train_value,
                       Kiln_FloatTensor:$eval_value);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $train_value `,` $eval_value attr-dict `:` type($result)
  }];
}

def Kiln_AssignParamOp : Kiln_Op<"assign_param",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "sets a non-trainable parameter after a training step";
  let description = [{
    In @forward, records the value a buffer parameter (`kiln.param` with
    `buffer`, e.g. batch normalization's running mean) takes after the step;
    kiln-autodiff makes it a result of @train_step written in place, and the
    evaluation entry points drop it.
  }];
  let arguments = (ins FlatSymbolRefAttr:$param, Kiln_FloatTensor:$value);
  let assemblyFormat = "$param `,` $value attr-dict `:` type($value)";
}

//===----------------------------------------------------------------------===//
// Recurrence
//===----------------------------------------------------------------------===//

def Kiln_ScanOp : Kiln_Op<"scan",
    [IsolatedFromAbove, RecursiveMemoryEffects, SingleBlock,
     AttrSizedOperandSegments,
     DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>]> {
  let summary = "a loop over a static-length sequence (lax.scan)";
  let description = [{
    Runs `body` `length` times. Each step takes the loop-carried values
    (`carries`, starting from the operands), one slice of each sequence in
    `xs` (index t along `axis`, which is removed), and the captured values
    `consts` (the weights: the op is isolated from above, so everything the
    body reads is an operand). The body yields the new carries followed by one
    slice per stacked output. The results are the final carries followed by
    the stacked outputs (the slices stacked along `axis`). With `reverse`,
    steps run from t = length - 1 down to 0 (a backward layer, or a gradient).

    ```mlir
    %h, %hs = kiln.scan length = 8 axis = 1
        carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x8x3xf32>)
        consts(%wx, %wh : tensor<3x4xf32>, tensor<4x4xf32>) {
    ^bb0(%h: tensor<2x4xf32>, %xt: tensor<2x3xf32>, %wx: tensor<3x4xf32>, %wh: tensor<4x4xf32>):
      ...
      kiln.yield %hn, %hn : tensor<2x4xf32>, tensor<2x4xf32>
    } -> (tensor<2x4xf32>, tensor<2x8x4xf32>)
    ```

    The IR is one loop whatever the length, and so is its gradient
    (backpropagation through time): a forward scan that also stacks each
    step's input carries, then a reverse scan whose body is the body's own
    reverse mode, carrying the carries' gradients and accumulating the
    consts' (see ScanOp::buildGradients).
  }];
  let arguments = (ins Variadic<Kiln_AnyTensor>:$carries,
                       Variadic<Kiln_AnyTensor>:$xs,
                       Variadic<Kiln_AnyTensor>:$consts,
                       I64Attr:$length, I64Attr:$axis, UnitAttr:$reverse);
  let results = (outs Variadic<Kiln_AnyTensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `length` `=` $length `axis` `=` $axis (`reverse` $reverse^)?
    `carries` `(` ($carries^ `:` type($carries))? `)`
    `xs` `(` ($xs^ `:` type($xs))? `)`
    `consts` `(` ($consts^ `:` type($consts))? `)`
    $body attr-dict `->` `(` type($results) `)`
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The final carries (the first results).
    mlir::ResultRange getFinalCarries() {
      return getResults().take_front(getCarries().size());
    }
    /// The stacked outputs (the results after the carries).
    mlir::ResultRange getStacked() {
      return getResults().drop_front(getCarries().size());
    }
    /// The type of one step's slice of `sequence` (`axis` removed).
    mlir::RankedTensorType getSliceType(mlir::Type sequence);
  }];
}

def Kiln_YieldOp : Kiln_Op<"yield",
    [Pure, Terminator, ReturnLike, HasParent<"ScanOp">]> {
  let summary = "ends a scan step: the new carries, then one slice per output";
  let arguments = (ins Variadic<Kiln_AnyTensor>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

//===----------------------------------------------------------------------===//
// Fused ops (built by kiln-fuse-conv; not differentiable: fusion runs after
// autodiff)
//===----------------------------------------------------------------------===//

def Kiln_FusedConv2dOp : Kiln_Op<"fused_conv2d", [Pure]> {
  let summary = "conv2d + bias + activation [+ pooling] in one op";
  let description = [{
    `pool(act(conv2d(input, filter) + bias[None, :, None, None]))`: `bias` is
    optional (`[O]`); `activation` is one of `none`, `relu`, `sigmoid`, `tanh`,
    `gelu`; `pool` is `none`, `max` or `avg` with `pool_kernel`, `pool_strides`
    and `pool_padding`. When the op has a second result, it also returns the
    activation before pooling (which max pooling's gradient reads): fusion saves
    what the backward pass needs instead of losing it.

    ```mlir
    %p, %a = kiln.fused_conv2d %x, %w, %b activation = relu pool = max
        {dilation = array<i64: 1, 1>, padding = array<i64: 1, 1>,
         pool_kernel = array<i64: 2, 2>, pool_padding = array<i64: 0, 0>,
         pool_strides = array<i64: 2, 2>, strides = array<i64: 1, 1>}
        : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>, tensor<4xf32>)
        -> (tensor<2x4x4x4xf32>, tensor<2x4x8x8xf32>)
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$filter,
                       Optional<Kiln_FloatTensor>:$bias,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$padding,
                       DenseI64ArrayAttr:$dilation,
                       Kiln_ActivationAttr:$activation, Kiln_PoolAttr:$pool,
                       DenseI64ArrayAttr:$pool_kernel,
                       DenseI64ArrayAttr:$pool_strides,
                       DenseI64ArrayAttr:$pool_padding);
  let results = (outs Kiln_FloatTensor:$result,
                      Optional<Kiln_FloatTensor>:$activation_out);
  let assemblyFormat = [{
    $input `,` $filter (`,` $bias^)? `activation` `=` custom<Keyword>($activation)
    `pool` `=` custom<Keyword>($pool) attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_FusedDenseOp : Kiln_Op<"fused_dense", [Pure]> {
  let summary = "matmul + bias + activation in one op";
  let description = [{
    `act(input @ weight + bias)` for `input: [M, K]`, `weight: [K, N]`,
    `bias: [N]`; `activation` as for kiln.fused_conv2d.

    ```mlir
    %r = kiln.fused_dense %x, %w, %b activation = tanh
        : (tensor<8x16xf32>, tensor<16x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$weight,
                       Kiln_FloatTensor:$bias, Kiln_ActivationAttr:$activation);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $bias `activation` `=` custom<Keyword>($activation)
    attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Optimizer updates
//
// Each takes the parameter, its gradient, its optimizer state and the step's
// `hyper` vector (see runtime/KilnABI.h: [0] learning rate, [1] 1-based step) and
// returns the updated parameter and state. They follow PyTorch's definitions.
//===----------------------------------------------------------------------===//

def Kiln_SgdUpdateOp : Kiln_Op<"sgd_update", [Pure, AllTypesMatch<["param", "grad", "new_param"]>]> {
  let summary = "p - lr * (g + weight_decay * p)";
  let arguments = (ins Kiln_FloatTensor:$param, Kiln_FloatTensor:$grad,
                       Kiln_HyperTensor:$hyper, F64Attr:$weight_decay);
  let results = (outs Kiln_FloatTensor:$new_param);
  let assemblyFormat = [{
    $param `,` $grad `,` $hyper attr-dict `:` type($param) `,` type($hyper)
  }];
  let hasVerifier = 1;
}

def Kiln_MomentumUpdateOp : Kiln_Op<"momentum_update",
    [Pure, AllTypesMatch<["param", "grad", "velocity", "new_param", "new_velocity"]>]> {
  let summary = "SGD with (Nesterov) momentum";
  let description = [{
    `g' = g + wd * p; v' = momentum * v + g'; d = nesterov ? g' + momentum * v' : v';
    p' = p - lr * d`.
  }];
  let arguments = (ins Kiln_FloatTensor:$param, Kiln_FloatTensor:$grad,
                       Kiln_FloatTensor:$velocity, Kiln_HyperTensor:$hyper,
                       F64Attr:$momentum, F64Attr:$weight_decay,
                       BoolAttr:$nesterov);
  let results = (outs Kiln_FloatTensor:$new_param,
                      Kiln_FloatTensor:$new_velocity);
  let assemblyFormat = [{
    $param `,` $grad `,` $velocity `,` $hyper attr-dict `:` type($param) `,` type($hyper)
  }];
  let hasVerifier = 1;
}

def Kiln_AdamUpdateOp : Kiln_Op<"adam_update",
    [Pure, AllTypesMatch<["param", "grad", "m", "v", "new_param", "new_m", "new_v"]>]> {
  let summary = "Adam, or AdamW when `decoupled`";
  let description = [{
    Adam: `g' = g + wd * p`. AdamW (`decoupled`): `p = p * (1 - lr * wd)`, `g' = g`.
    Then `m' = b1 m + (1 - b1) g'; v' = b2 v + (1 - b2) g'^2;
    p' = p - lr * (m' / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps)`.
  }];
  let arguments = (ins Kiln_FloatTensor:$param, Kiln_FloatTensor:$grad,
                       Kiln_FloatTensor:$m, Kiln_FloatTensor:$v,
                       Kiln_HyperTensor:$hyper, F64Attr:$beta1, F64Attr:$beta2,
                       F64Attr:$eps, F64Attr:$weight_decay, BoolAttr:$decoupled);
  let results = (outs Kiln_FloatTensor:$new_param, Kiln_FloatTensor:$new_m,
                      Kiln_FloatTensor:$new_v);
  let assemblyFormat = [{
    $param `,` $grad `,` $m `,` $v `,` $hyper attr-dict `:` type($param) `,` type($hyper)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Data parallelism
//===----------------------------------------------------------------------===//

def Kiln_AllReduceOp : Kiln_Op<"all_reduce", [SameOperandsAndResultType,
    MemoryEffects<[MemRead, MemWrite]>]> {
  let summary = "the mean of a tensor over the processes of a data-parallel job";
  let description = [{
    Every process of the job (the ranks of `mpirun -np N`) passes its own
    `input`; each gets back the elementwise mean over all of them. The
    runtime's `kiln_all_reduce_f32` / `kiln_all_reduce_f64`
    (runtime/KilnABI.h) do the communication; a process that runs alone gets
    its input back. `kiln-autodiff{data-parallel}` averages a training step's
    gradients (and its loss, named loss terms and buffer updates) with one
    such op over all of them, concatenated into one flat tensor, between the
    backward pass and the optimizer update. Bufferization makes it one call
    on the operand's buffer, updated in place. It communicates, so it is never
    moved, merged or erased.

    ```mlir
    %mean = kiln.all_reduce %flat : tensor<101770xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

#endif // KILN_OPS_TD
