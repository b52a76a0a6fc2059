// RUN: kiln-opt %s -split-input-file -verify-diagnostics
//
// The verifiers and type inference of the kiln ops reject malformed IR with a
// message, never a crash.

func.func @matmul_inner(%a: tensor<64x784xf32>, %b: tensor<700x256xf32>) {
  // expected-error @+2 {{'kiln.matmul' op failed to infer returned types}}
  // expected-error @+1 {{matmul inner dimensions differ: [64, 784] @ [700, 256] (784 vs 700)}}
  %0 = kiln.matmul %a, %b : (tensor<64x784xf32>, tensor<700x256xf32>) -> tensor<64x256xf32>
  return
}

// -----

func.func @broadcast(%a: tensor<64x10xf32>, %b: tensor<32xf32>) {
  // expected-error @+2 {{'kiln.add' op failed to infer returned types}}
  // expected-error @+1 {{shapes [64, 10] and [32] cannot be broadcast together}}
  %0 = kiln.add %a, %b : (tensor<64x10xf32>, tensor<32xf32>) -> tensor<64x10xf32>
  return
}

// -----

func.func @wrong_result(%a: tensor<4xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{'kiln.add' op failed to infer returned types}}
  // expected-error @+1 {{'kiln.add' op inferred type(s) 'tensor<4xf32>' are incompatible with return type(s) of operation 'tensor<5xf32>'}}
  %0 = kiln.add %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<5xf32>
  return
}

// -----

func.func @mixed_types(%a: tensor<4xf32>, %b: tensor<4xf64>) {
  // expected-error @+2 {{'kiln.mul' op failed to infer returned types}}
  // expected-error @+1 {{operands have different element types}}
  %0 = kiln.mul %a, %b : (tensor<4xf32>, tensor<4xf64>) -> tensor<4xf32>
  return
}

// -----

func.func @dynamic(%a: tensor<?xf32>) {
  // expected-error @+1 {{must be statically shaped tensor}}
  %0 = kiln.relu %a : tensor<?xf32>
  return
}

// -----

func.func @softmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axis 2 is out of range for a tensor of rank 2}}
  %0 = kiln.softmax %a axis = 2 : tensor<2x3xf32>
  return
}

// -----

func.func @reduce_axis(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{'kiln.reduce_sum' op failed to infer returned types}}
  // expected-error @+1 {{axis 1 is reduced twice}}
  %0 = kiln.reduce_sum %a axes = [1, 1] : tensor<2x3xf32> -> tensor<2xf32>
  return
}

// -----

func.func @reshape_size(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{cannot reshape 'tensor<2x3xf32>' (6 elements) to 'tensor<7xf32>' (7 elements)}}
  %0 = kiln.reshape %a : tensor<2x3xf32> -> tensor<7xf32>
  return
}

// -----

func.func @transpose_perm(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{'kiln.transpose' op failed to infer returned types}}
  // expected-error @+1 {{permutation [0, 0] is not a permutation of the 2 axes}}
  %0 = kiln.transpose %a perm = [0, 0] : tensor<2x3xf32> -> tensor<2x2xf32>
  return
}

// -----

func.func @broadcast_to(%a: tensor<3xf32>) {
  // expected-error @+1 {{'tensor<3xf32>' does not broadcast to 'tensor<2x4xf32>'}}
  %0 = kiln.broadcast_to %a : tensor<3xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @labels(%a: tensor<4x5xf32>, %y: tensor<3xi32>) {
  // expected-error @+2 {{'kiln.cross_entropy' op failed to infer returned types}}
  // expected-error @+1 {{cross_entropy expects labels of shape [4] for logits [4, 5], got [3]}}
  %0 = kiln.cross_entropy %a, %y : (tensor<4x5xf32>, tensor<3xi32>) -> tensor<f32>
  return
}

// -----

func.func @labels_type(%a: tensor<4x5xf32>, %y: tensor<4xf32>) {
  // expected-error @+1 {{operand #1 must be statically shaped tensor of 32-bit signless integer values}}
  %0 = kiln.cross_entropy %a, %y : (tensor<4x5xf32>, tensor<4xf32>) -> tensor<f32>
  return
}

// -----

func.func @mse_shapes(%a: tensor<4xf32>, %b: tensor<5xf32>) {
  // expected-error @+2 {{'kiln.mse' op failed to infer returned types}}
  // expected-error @+1 {{loss operands must have the same shape, got [4] and [5]}}
  %0 = kiln.mse %a, %b : (tensor<4xf32>, tensor<5xf32>) -> tensor<f32>
  return
}

// -----

// expected-error @+1 {{initializer 'normal' takes 2 argument(s), got 1}}
kiln.param @p : tensor<3xf32> = normal(0.5)

// -----

// expected-error @+1 {{unknown initializer 'gaussian'}}
kiln.param @p : tensor<3xf32> = gaussian

// -----

kiln.param @p : tensor<3xf32> = zeros
func.func @load_type() {
  // expected-error @+1 {{result type 'tensor<4xf32>' differs from the type of parameter 'p': 'tensor<3xf32>'}}
  %0 = kiln.load_param @p : tensor<4xf32>
  return
}

// -----

func.func @load_missing() {
  // expected-error @+1 {{'missing' does not name a kiln.param}}
  %0 = kiln.load_param @missing : tensor<4xf32>
  return
}

// -----

func.func @one_hot(%y: tensor<3xi32>) {
  // expected-error @+1 {{expects labels [N] and a result [N, C]}}
  %0 = kiln.one_hot %y : tensor<3xi32> -> tensor<4x2xf32>
  return
}

// -----

func.func @gather(%t: tensor<5x4xf32>, %y: tensor<3xi32>) {
  // expected-error @+1 {{expects a table [V, D], ids [N] and rows [N, D] of the table's element type, got 'tensor<5x4xf32>', 'tensor<3xi32>' and 'tensor<3x2xf32>'}}
  %0 = kiln.gather %t[%y] : (tensor<5x4xf32>, tensor<3xi32>) -> tensor<3x2xf32>
  return
}

// -----

func.func @scatter_add(%u: tensor<3x4xf32>, %y: tensor<2xi32>) {
  // expected-error @+1 {{expects a table [V, D], ids [N] and rows [N, D]}}
  %0 = kiln.scatter_add %u[%y] : (tensor<2xi32>, tensor<3x4xf32>) -> tensor<5x4xf32>
  return
}

// -----

func.func @unknown_activation(%x: tensor<8x16xf32>, %w: tensor<16x4xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{unknown activation 'swish'; expected none, relu, sigmoid, tanh, gelu}}
  %0 = kiln.fused_dense %x, %w, %b activation = swish : (tensor<8x16xf32>, tensor<16x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @unknown_pool(%x: tensor<2x1x8x8xf32>, %w: tensor<4x1x3x3xf32>) {
  // expected-error @+1 {{unknown pool 'min'; expected none, max, avg}}
  %0 = kiln.fused_conv2d %x, %w activation = relu pool = min {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, pool_kernel = array<i64: 2, 2>, pool_strides = array<i64: 2, 2>, pool_padding = array<i64: 0, 0>} : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>) -> tensor<2x4x4x4xf32>
  return
}

// -----

func.func @saved_activation_without_pool(%x: tensor<2x1x8x8xf32>, %w: tensor<4x1x3x3xf32>) {
  // expected-error @+1 {{returns the activation before pooling, but does not pool}}
  %0, %1 = kiln.fused_conv2d %x, %w activation = relu pool = none {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, pool_kernel = array<i64>, pool_strides = array<i64>, pool_padding = array<i64>} : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>) -> (tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>)
  return
}

// -----

func.func @fused_dense_element_types(%x: tensor<8x16xf32>, %w: tensor<16x4xf64>, %b: tensor<4xf32>) {
  // expected-error @+1 {{operands and results must have one element type, got 'f32' and 'f64'}}
  %0 = kiln.fused_dense %x, %w, %b activation = none : (tensor<8x16xf32>, tensor<16x4xf64>, tensor<4xf32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @conv_backward_element_types(%g: tensor<2x4x8x8xf32>, %w: tensor<4x1x3x3xf64>) {
  // expected-error @+1 {{operands and results must have one element type, got 'f32' and 'f64'}}
  %0 = kiln.conv2d_backward_input %g, %w strides = [1, 1] padding = [1, 1] dilation = [1, 1] : (tensor<2x4x8x8xf32>, tensor<4x1x3x3xf64>) -> tensor<2x1x8x8xf32>
  return
}

// -----

func.func @max_pool_backward_output(%x: tensor<2x4x8x8xf32>, %y: tensor<2x4x3x3xf32>, %g: tensor<2x4x3x3xf32>) {
  // expected-error @+1 {{pooling 'tensor<2x4x8x8xf32>' gives shape [2, 4, 4, 4], not 'tensor<2x4x3x3xf32>'}}
  %0 = kiln.max_pool2d_backward %x, %y, %g kernel = [2, 2] strides = [2, 2] padding = [0, 0] : (tensor<2x4x8x8xf32>, tensor<2x4x3x3xf32>, tensor<2x4x3x3xf32>) -> tensor<2x4x8x8xf32>
  return
}

// -----

func.func @max_pool_backward_result(%x: tensor<2x4x8x8xf32>, %y: tensor<2x4x4x4xf32>, %g: tensor<2x4x4x4xf32>) {
  // expected-error @+1 {{result type 'tensor<2x4x8x7xf32>' differs from the input's, 'tensor<2x4x8x8xf32>'}}
  %0 = kiln.max_pool2d_backward %x, %y, %g kernel = [2, 2] strides = [2, 2] padding = [0, 0] : (tensor<2x4x8x8xf32>, tensor<2x4x4x4xf32>, tensor<2x4x4x4xf32>) -> tensor<2x4x8x7xf32>
  return
}

// -----

func.func @max_pool_backward_grad(%x: tensor<2x4x8x8xf32>, %y: tensor<2x4x4x4xf32>, %g: tensor<2x4x4x5xf32>) {
  // expected-error @+1 {{the pooled output 'tensor<2x4x4x4xf32>' and its gradient 'tensor<2x4x4x5xf32>' differ in type}}
  %0 = kiln.max_pool2d_backward %x, %y, %g kernel = [2, 2] strides = [2, 2] padding = [0, 0] : (tensor<2x4x8x8xf32>, tensor<2x4x4x4xf32>, tensor<2x4x4x5xf32>) -> tensor<2x4x8x8xf32>
  return
}

// -----

func.func @avg_pool_backward_grad(%g: tensor<2x4x4x4xf32>) {
  // expected-error @+1 {{pooling 'tensor<2x4x9x9xf32>' gives shape [2, 4, 3, 3], not 'tensor<2x4x4x4xf32>'}}
  %0 = kiln.avg_pool2d_backward %g kernel = [3, 3] strides = [3, 3] padding = [0, 0] : tensor<2x4x4x4xf32> -> tensor<2x4x9x9xf32>
  return
}

// -----

func.func @avg_pool_backward_window(%g: tensor<2x4x1x1xf32>) {
  // expected-error @+1 {{pooling padding [2, 0] must be at most half the kernel [3, 3]}}
  %0 = kiln.avg_pool2d_backward %g kernel = [3, 3] strides = [1, 1] padding = [2, 0] : tensor<2x4x1x1xf32> -> tensor<2x4x3x3xf32>
  return
}

// -----

func.func @dropout_rate(%x: tensor<4x8xf32>, %h: tensor<4xf32>) {
  // expected-error @+1 {{'rate' must be in [0, 1), got 1}}
  %0 = kiln.dropout %x, %h : tensor<4xf32> {rate = 1.0 : f64, salt = 7 : i64} : tensor<4x8xf32>
  return
}

// -----

func.func @dropout_hyper(%x: tensor<4x8xf32>, %h: tensor<2xf32>) {
  // expected-error @+1 {{the hyper vector must have shape [4] (runtime/KilnABI.h), got 'tensor<2xf32>'}}
  %0 = kiln.dropout %x, %h : tensor<2xf32> {rate = 0.5 : f64, salt = 7 : i64} : tensor<4x8xf32>
  return
}

// -----

func.func @random_hyper(%h: tensor<2xf32>) {
  // expected-error @+1 {{the hyper vector must have shape [4] (runtime/KilnABI.h), got 'tensor<2xf32>'}}
  %0 = kiln.random_normal %h : tensor<2xf32> {salt = 1 : i64} : tensor<4x8xf32>
  return
}

// -----

func.func @random_result(%h: tensor<4xf32>) {
  // expected-error @+1 {{result #0 must be statically shaped tensor of}}
  %0 = kiln.random_uniform %h : tensor<4xf32> {salt = 1 : i64} : tensor<?x8xf32>
  return
}

// -----

func.func @sgd_hyper(%p: tensor<3xf32>, %h: tensor<1xf32>) {
  // expected-error @+1 {{the hyper vector must have shape [4] (runtime/KilnABI.h), got 'tensor<1xf32>'}}
  %0 = kiln.sgd_update %p, %p, %h {weight_decay = 0.0 : f64} : tensor<3xf32>, tensor<1xf32>
  return
}

// -----

func.func @adam_beta(%p: tensor<3xf32>, %h: tensor<4xf32>) {
  // expected-error @+1 {{'beta2' must be in [0, 1), got 1}}
  %0:3 = kiln.adam_update %p, %p, %p, %p, %h {beta1 = 0.9 : f64, beta2 = 1.0 : f64, eps = 1.0e-8 : f64, weight_decay = 0.0 : f64, decoupled = false} : tensor<3xf32>, tensor<4xf32>
  return
}

// -----

func.func @scan_steps(%h0: tensor<2x4xf32>, %x: tensor<2x5x3xf32>) {
  // expected-error @+1 {{'kiln.scan' op sequence #0 of type 'tensor<2x5x3xf32>' has 5 steps along axis 1, not 4}}
  %h = kiln.scan length = 4 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x5x3xf32>) consts() {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x3xf32>):
    kiln.yield %hp : tensor<2x4xf32>
  } -> (tensor<2x4xf32>)
  return
}

// -----

func.func @scan_body_args(%h0: tensor<2x4xf32>, %x: tensor<2x5x3xf32>) {
  // expected-error @+1 {{'kiln.scan' op body argument #1 has type 'tensor<2x5xf32>', expected 'tensor<2x3xf32>'}}
  %h = kiln.scan length = 5 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x5x3xf32>) consts() {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x5xf32>):
    kiln.yield %hp : tensor<2x4xf32>
  } -> (tensor<2x4xf32>)
  return
}

// -----

func.func @scan_carry_type(%h0: tensor<2x4xf32>, %x: tensor<2x5x3xf32>) {
  %h = kiln.scan length = 5 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x5x3xf32>) consts() {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x3xf32>):
    // expected-error @+1 {{'kiln.yield' op value #0 has type 'tensor<2x3xf32>', expected 'tensor<2x4xf32>' (a carry keeps its type)}}
    kiln.yield %xt : tensor<2x3xf32>
  } -> (tensor<2x4xf32>)
  return
}

// -----

func.func @scan_stacked(%h0: tensor<2x4xf32>, %x: tensor<2x5x3xf32>) {
  // expected-error @+1 {{'kiln.scan' op stacked output #0 of type 'tensor<2x4x4xf32>' does not have 5 steps along axis 1}}
  %h, %hs = kiln.scan length = 5 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x5x3xf32>) consts() {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x3xf32>):
    kiln.yield %hp, %hp : tensor<2x4xf32>, tensor<2x4xf32>
  } -> (tensor<2x4xf32>, tensor<2x4x4xf32>)
  return
}

// -----

func.func @scan_captures(%h0: tensor<2x4xf32>, %x: tensor<2x5x3xf32>, %w: tensor<3x4xf32>) {
  // expected-note @+1 {{required by region isolation constraints}}
  %h = kiln.scan length = 5 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x5x3xf32>) consts() {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x3xf32>):
    // expected-error @+1 {{using value defined outside the region}}
    %y = kiln.matmul %xt, %w : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
    kiln.yield %y : tensor<2x4xf32>
  } -> (tensor<2x4xf32>)
  return
}

// -----

func.func @split_sizes(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{'kiln.split' op failed to infer returned types}}
  // expected-error @+1 {{the pieces [4, 3] add up to 7, not to dimension 1 (8) of [2, 8]}}
  %a, %b = kiln.split %x axis = 1 sizes = [4, 3] : tensor<2x8xf32> -> (tensor<2x4xf32>, tensor<2x3xf32>)
  return
}

// -----

func.func @split_axis(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{'kiln.split' op failed to infer returned types}}
  // expected-error @+1 {{axis 2 is out of range for shape [2, 8]}}
  %a = kiln.split %x axis = 2 sizes = [8] : tensor<2x8xf32> -> (tensor<2x8xf32>)
  return
}

// -----

func.func @concat_dims(%x: tensor<2x8xf32>, %y: tensor<3x4xf32>) {
  // expected-error @+2 {{'kiln.concat' op failed to infer returned types}}
  // expected-error @+1 {{cannot concatenate [2, 8] and [3, 4] along axis 1: the other dimensions must be equal}}
  %z = kiln.concat %x, %y axis = 1 : (tensor<2x8xf32>, tensor<3x4xf32>) -> tensor<2x12xf32>
  return
}

// -----

func.func @warmup_steps(%h: tensor<4xf32>) {
  // expected-error @+1 {{steps must be at least 1, got 0}}
  %0 = kiln.warmup %h : tensor<4xf32> {steps = 0 : i64} : tensor<f32>
  return
}

// -----

func.func @attention_values(%q: tensor<2x16x8xf32>, %v: tensor<2x12x4xf32>) {
  // expected-error @+2 {{'kiln.attention' op failed to infer returned types}}
  // expected-error @+1 {{attention needs as many values as keys, got q [2, 16, 8], k [2, 16, 8] and v [2, 12, 4]}}
  %o, %lse = kiln.attention %q, %q, %v scale = 0.5 : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x12x4xf32>) -> (tensor<2x16x4xf32>, tensor<2x16xf32>)
  return
}

// -----

func.func @attention_backward_lse(%q: tensor<2x16x8xf32>, %o: tensor<2x16x8xf32>, %lse: tensor<2x8xf32>) {
  // expected-error @+1 {{'kiln.attention_backward' op needs lse and dlse of type 'tensor<2x16xf32>'}}
  %dq, %dk, %dv = kiln.attention_backward %q, %q, %q, %o, %lse, %o, %lse scale = 0.5 : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x8xf32>, tensor<2x16x8xf32>, tensor<2x8xf32>) -> (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>)
  return
}

// -----

func.func @attention_mask_shape(%q: tensor<2x16x8xf32>, %m: tensor<3x16xf32>) {
  // expected-error @+2 {{'kiln.attention' op failed to infer returned types}}
  // expected-error @+1 {{the key mask of attention must broadcast to [2, 16] (the batch dimensions, then one entry per key), got [3, 16]}}
  %o, %lse = kiln.attention %q, %q, %q mask %m scale = 0.5 : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<3x16xf32>) -> (tensor<2x16x8xf32>, tensor<2x16xf32>)
  return
}

// -----

func.func @attention_dropout_rate(%q: tensor<2x16x8xf32>) {
  // expected-error @+1 {{'kiln.attention' op needs a dropout rate in [0, 1), got 1.5}}
  %o, %lse = kiln.attention %q, %q, %q scale = 0.5 {dropout = 1.5 : f64} : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>) -> (tensor<2x16x8xf32>, tensor<2x16xf32>)
  return
}
