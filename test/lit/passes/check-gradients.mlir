// RUN: kiln-opt --kiln-check-gradients %s -verify-diagnostics -split-input-file -o /dev/null
//
// Every gradient rule of ir/GradientRules.cpp against central finite differences
// in f64 (on random inputs, through a random linear functional of the result).

// expected-remark @below {{gradient check passed for @add_broadcast}}
func.func @add_broadcast(%a: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<3x4xf32> {
  %0 = kiln.add %a, %b : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}

// -----

// expected-remark @below {{gradient check passed for @sub_broadcast}}
func.func @sub_broadcast(%a: tensor<3x1xf32>, %b: tensor<1x4xf32>) -> tensor<3x4xf32> {
  %0 = kiln.sub %a, %b : (tensor<3x1xf32>, tensor<1x4xf32>) -> tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}

// -----

// expected-remark @below {{gradient check passed for @mul_scalar}}
func.func @mul_scalar(%a: tensor<2x3xf32>, %b: tensor<f32>) -> tensor<2x3xf32> {
  %0 = kiln.mul %a, %b : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// expected-remark @below {{gradient check passed for @div}}
func.func @div(%a: tensor<2x3xf32>, %b: tensor<2x3xf32> {kiln.check_range = [0.5, 2.0]}) -> tensor<2x3xf32> {
  %0 = kiln.div %a, %b : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// expected-remark @below {{gradient check passed for @max_min}}
func.func @max_min(%a: tensor<5xf32>, %b: tensor<5xf32>) -> (tensor<5xf32>, tensor<5xf32>) {
  %0 = kiln.maximum %a, %b : (tensor<5xf32>, tensor<5xf32>) -> tensor<5xf32>
  %1 = kiln.minimum %a, %b : (tensor<5xf32>, tensor<5xf32>) -> tensor<5xf32>
  return %0, %1 : tensor<5xf32>, tensor<5xf32>
}

// -----

// expected-remark @below {{gradient check passed for @unary}}
func.func @unary(%x: tensor<2x5xf32>) -> (tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>) {
  %0 = kiln.neg %x : tensor<2x5xf32>
  %1 = kiln.relu %x : tensor<2x5xf32>
  %2 = kiln.sigmoid %x : tensor<2x5xf32>
  %3 = kiln.tanh %x : tensor<2x5xf32>
  %4 = kiln.exp %x : tensor<2x5xf32>
  %5 = kiln.abs %x : tensor<2x5xf32>
  return %0, %1, %2, %3, %4, %5 : tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>
}

// -----

// Leaky ReLU with its default slope (0.01) and another.
// expected-remark @below {{gradient check passed for @leaky_relu}}
func.func @leaky_relu(%x: tensor<2x5xf32>) -> (tensor<2x5xf32>, tensor<2x5xf32>) {
  %0 = kiln.leaky_relu %x : tensor<2x5xf32>
  %1 = kiln.leaky_relu %x {slope = 0.3 : f64} : tensor<2x5xf32>
  return %0, %1 : tensor<2x5xf32>, tensor<2x5xf32>
}

// -----

// expected-remark @below {{gradient check passed for @softplus}}
func.func @softplus(%x: tensor<2x5xf32> {kiln.check_range = [-8.0, 8.0]}) -> tensor<2x5xf32> {
  %0 = kiln.softplus %x : tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

// Backpropagation through time: an RNN over 3 steps (carry, sequence,
// captured weights, stacked output), forwards and in reverse.
// expected-remark @below {{gradient check passed for @rnn}}
func.func @rnn(%x: tensor<2x3x5xf32>, %h0: tensor<2x4xf32>, %wx: tensor<5x4xf32>, %wh: tensor<4x4xf32>) -> (tensor<2x4xf32>, tensor<2x3x4xf32>) {
  %h, %hs = kiln.scan length = 3 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x3x5xf32>) consts(%wx, %wh : tensor<5x4xf32>, tensor<4x4xf32>) {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x5xf32>, %a: tensor<5x4xf32>, %b: tensor<4x4xf32>):
    %0 = kiln.matmul %xt, %a : (tensor<2x5xf32>, tensor<5x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.matmul %hp, %b : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %2 = kiln.add %0, %1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %3 = kiln.tanh %2 : tensor<2x4xf32>
    kiln.yield %3, %3 : tensor<2x4xf32>, tensor<2x4xf32>
  } -> (tensor<2x4xf32>, tensor<2x3x4xf32>)
  return %h, %hs : tensor<2x4xf32>, tensor<2x3x4xf32>
}

// -----

// expected-remark @below {{gradient check passed for @rnn_reverse}}
func.func @rnn_reverse(%x: tensor<3x2x5xf32>, %h0: tensor<2x4xf32>, %wx: tensor<5x4xf32>, %wh: tensor<4x4xf32>) -> tensor<3x2x4xf32> {
  %h, %hs = kiln.scan length = 3 axis = 0 reverse carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<3x2x5xf32>) consts(%wx, %wh : tensor<5x4xf32>, tensor<4x4xf32>) {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x5xf32>, %a: tensor<5x4xf32>, %b: tensor<4x4xf32>):
    %0 = kiln.matmul %xt, %a : (tensor<2x5xf32>, tensor<5x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.matmul %hp, %b : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %2 = kiln.add %0, %1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %3 = kiln.sigmoid %2 : tensor<2x4xf32>
    kiln.yield %3, %3 : tensor<2x4xf32>, tensor<2x4xf32>
  } -> (tensor<2x4xf32>, tensor<3x2x4xf32>)
  return %hs : tensor<3x2x4xf32>
}

// -----

// expected-remark @below {{gradient check passed for @log_sqrt}}
func.func @log_sqrt(%x: tensor<6xf32> {kiln.check_range = [0.5, 2.0]}) -> (tensor<6xf32>, tensor<6xf32>) {
  %0 = kiln.log %x : tensor<6xf32>
  %1 = kiln.sqrt %x : tensor<6xf32>
  return %0, %1 : tensor<6xf32>, tensor<6xf32>
}

// -----

// expected-remark @below {{gradient check passed for @matmul}}
func.func @matmul(%a: tensor<3x4xf32>, %b: tensor<4x5xf32>) -> tensor<3x5xf32> {
  %0 = kiln.matmul %a, %b : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  return %0 : tensor<3x5xf32>
}

// -----

// expected-remark @below {{gradient check passed for @batched_matmul_broadcast}}
func.func @batched_matmul_broadcast(%a: tensor<2x3x4xf32>, %b: tensor<4x2xf32>) -> tensor<2x3x2xf32> {
  %0 = kiln.matmul %a, %b : (tensor<2x3x4xf32>, tensor<4x2xf32>) -> tensor<2x3x2xf32>
  return %0 : tensor<2x3x2xf32>
}

// -----

// Fused attention: its one backward op gives all three gradients; the
// log-sum-exp's gradient enters too when something reads it.
// expected-remark @below {{gradient check passed for @attention}}
func.func @attention(%q: tensor<2x3x4xf32>, %k: tensor<2x5x4xf32>, %v: tensor<2x5x3xf32>) -> (tensor<2x3x3xf32>, tensor<2x3xf32>) {
  %o, %lse = kiln.attention %q, %k, %v scale = 0.7 : (tensor<2x3x4xf32>, tensor<2x5x4xf32>, tensor<2x5x3xf32>) -> (tensor<2x3x3xf32>, tensor<2x3xf32>)
  return %o, %lse : tensor<2x3x3xf32>, tensor<2x3xf32>
}

// -----

// expected-remark @below {{gradient check passed for @attention_causal}}
func.func @attention_causal(%q: tensor<1x2x4x3xf32>, %k: tensor<1x2x5x3xf32>, %v: tensor<1x2x5x2xf32>) -> tensor<1x2x4x2xf32> {
  %o, %lse = kiln.attention %q, %k, %v causal scale = 0.5 : (tensor<1x2x4x3xf32>, tensor<1x2x5x3xf32>, tensor<1x2x5x2xf32>) -> (tensor<1x2x4x2xf32>, tensor<1x2x4xf32>)
  return %o : tensor<1x2x4x2xf32>
}

// -----

// With a key mask (batch element 1 hides keys 0 and 3) broadcast over the
// heads, and causal: the hidden keys get no gradient, and query 0 of batch
// element 1, which sees no key, gives 0.
// expected-remark @below {{gradient check passed for @attention_masked}}
func.func @attention_masked(%q: tensor<2x2x3x2xf32>, %k: tensor<2x2x4x2xf32>, %v: tensor<2x2x4x3xf32>) -> tensor<2x2x3x3xf32> {
  %m = kiln.constant dense<[[[1.0, 1.0, 1.0, 1.0]], [[0.0, 1.0, 1.0, 0.0]]]> : tensor<2x1x4xf32>
  %o, %lse = kiln.attention %q, %k, %v mask %m causal scale = 0.8 : (tensor<2x2x3x2xf32>, tensor<2x2x4x2xf32>, tensor<2x2x4x3xf32>, tensor<2x1x4xf32>) -> (tensor<2x2x3x3xf32>, tensor<2x2x3xf32>)
  return %o : tensor<2x2x3x3xf32>
}

// -----

// Dropout on the probabilities (a fixed hyper vector: step 3, seed 7): the
// backward op drops the same ones.
// expected-remark @below {{gradient check passed for @attention_dropout}}
func.func @attention_dropout(%q: tensor<2x5x3xf32>, %k: tensor<2x6x3xf32>, %v: tensor<2x6x2xf32>) -> tensor<2x5x2xf32> {
  %h = kiln.constant dense<[0.1, 3.0, 7.0, 0.0]> : tensor<4xf32>
  %o, %lse = kiln.attention %q, %k, %v hyper %h scale = 0.6 {dropout = 0.3 : f64, salt = 5 : i64} : (tensor<2x5x3xf32>, tensor<2x6x3xf32>, tensor<2x6x2xf32>, tensor<4xf32>) -> (tensor<2x5x2xf32>, tensor<2x5xf32>)
  return %o : tensor<2x5x2xf32>
}

// -----

// expected-remark @below {{gradient check passed for @layer_norm}}
func.func @layer_norm(%x: tensor<4x6xf32>) -> tensor<4x6xf32> {
  %0 = kiln.layer_norm %x eps = 1.0e-5 : tensor<4x6xf32>
  return %0 : tensor<4x6xf32>
}

// -----

// expected-remark @below {{gradient check passed for @softmaxes}}
func.func @softmaxes(%x: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
  %0 = kiln.softmax %x axis = 1 : tensor<3x4xf32>
  %1 = kiln.log_softmax %x axis = 0 : tensor<3x4xf32>
  return %0, %1 : tensor<3x4xf32>, tensor<3x4xf32>
}

// -----

// expected-remark @below {{gradient check passed for @reductions}}
func.func @reductions(%x: tensor<2x3x4xf32>) -> (tensor<2x4xf32>, tensor<1x3x1xf32>, tensor<2x3xf32>) {
  %0 = kiln.reduce_sum %x axes = [1] : tensor<2x3x4xf32> -> tensor<2x4xf32>
  %1 = kiln.reduce_mean %x axes = [0, 2] {keepdims = true} : tensor<2x3x4xf32> -> tensor<1x3x1xf32>
  %2 = kiln.reduce_max %x axes = [2] : tensor<2x3x4xf32> -> tensor<2x3xf32>
  return %0, %1, %2 : tensor<2x4xf32>, tensor<1x3x1xf32>, tensor<2x3xf32>
}

// -----

// expected-remark @below {{gradient check passed for @shapes}}
func.func @shapes(%x: tensor<2x3x4xf32>, %y: tensor<3x1xf32>) -> (tensor<6x4xf32>, tensor<4x2x3xf32>, tensor<2x3x5xf32>) {
  %0 = kiln.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %1 = kiln.transpose %x perm = [2, 0, 1] : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
  %2 = kiln.broadcast_to %y : tensor<3x1xf32> -> tensor<2x3x5xf32>
  return %0, %1, %2 : tensor<6x4xf32>, tensor<4x2x3xf32>, tensor<2x3x5xf32>
}

// -----

// expected-remark @below {{gradient check passed for @cross_entropy}}
func.func @cross_entropy(%logits: tensor<4x5xf32>, %labels: tensor<4xi32> {kiln.check_range = [0.0, 5.0]}) -> tensor<f32> {
  %0 = kiln.cross_entropy %logits, %labels : (tensor<4x5xf32>, tensor<4xi32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

// expected-remark @below {{gradient check passed for @mse_bce}}
func.func @mse_bce(%a: tensor<3x2xf32>, %b: tensor<3x2xf32> {kiln.check_range = [0.0, 1.0]}) -> (tensor<f32>, tensor<f32>) {
  %0 = kiln.mse %a, %b : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<f32>
  %1 = kiln.bce_with_logits %a, %b : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<f32>
  return %0, %1 : tensor<f32>, tensor<f32>
}

// -----

// Fan-out: %x feeds two paths, whose gradients must be accumulated.
// expected-remark @below {{gradient check passed for @fan_out}}
func.func @fan_out(%x: tensor<4x3xf32>, %w: tensor<3x3xf32>) -> tensor<4x3xf32> {
  %0 = kiln.matmul %x, %w : (tensor<4x3xf32>, tensor<3x3xf32>) -> tensor<4x3xf32>
  %1 = kiln.tanh %0 : tensor<4x3xf32>
  %2 = kiln.mul %1, %x : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %3 = kiln.add %2, %0 : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  return %3 : tensor<4x3xf32>
}

// -----

// The pieces of a split, one of them unused, and a concat of pieces of
// different sizes.
// expected-remark @below {{gradient check passed for @split_concat}}
func.func @split_concat(%x: tensor<2x7xf32>, %y: tensor<3x7xf32>) -> (tensor<2x3xf32>, tensor<5x7xf32>) {
  %a, %b, %c = kiln.split %x axis = 1 sizes = [3, 1, 3] : tensor<2x7xf32> -> (tensor<2x3xf32>, tensor<2x1xf32>, tensor<2x3xf32>)
  %0 = kiln.mul %a, %c : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = kiln.concat %x, %y axis = 0 : (tensor<2x7xf32>, tensor<3x7xf32>) -> tensor<5x7xf32>
  %2 = kiln.tanh %1 : tensor<5x7xf32>
  return %0, %2 : tensor<2x3xf32>, tensor<5x7xf32>
}

// -----

// The negative ELBO of a VAE as models/vae.kiln writes it: the
// reparameterization z = mu + exp(0.5 logvar) eps (eps from kiln.random_normal,
// which has no gradient: the same numbers in every evaluation), a Bernoulli
// reconstruction error and the KL divergence from the standard normal.
// expected-remark @below {{gradient check passed for @vae_negative_elbo}}
func.func @vae_negative_elbo(%mu: tensor<4x3xf32>, %logvar: tensor<4x3xf32>, %w: tensor<3x5xf32>, %t: tensor<4x5xf32> {kiln.check_range = [0.0, 1.0]}) -> tensor<f32> {
  %0 = kiln.constant dense<5.000000e-01> : tensor<f32>
  %1 = kiln.mul %0, %logvar : (tensor<f32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %2 = kiln.exp %1 : tensor<4x3xf32>
  %3 = kiln.random_normal {salt = 1 : i64} : tensor<4x3xf32>
  %4 = kiln.mul %2, %3 : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %5 = kiln.add %mu, %4 : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %6 = kiln.matmul %5, %w : (tensor<4x3xf32>, tensor<3x5xf32>) -> tensor<4x5xf32>
  %7 = kiln.bce_with_logits %6, %t : (tensor<4x5xf32>, tensor<4x5xf32>) -> tensor<f32>
  %8 = kiln.constant dense<5.000000e+00> : tensor<f32>
  %9 = kiln.mul %8, %7 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %10 = kiln.constant dense<1.000000e+00> : tensor<f32>
  %11 = kiln.add %10, %logvar : (tensor<f32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %12 = kiln.mul %mu, %mu : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %13 = kiln.sub %11, %12 : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %14 = kiln.exp %logvar : tensor<4x3xf32>
  %15 = kiln.sub %13, %14 : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  %16 = kiln.reduce_sum %15 axes = [1] : tensor<4x3xf32> -> tensor<4xf32>
  %17 = kiln.constant dense<-5.000000e-01> : tensor<f32>
  %18 = kiln.mul %17, %16 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %19 = kiln.reduce_mean %18 axes = [0] : tensor<4xf32> -> tensor<f32>
  %20 = kiln.add %9, %19 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  return %20 : tensor<f32>
}

// -----

// An integer value carries no derivative: the path through argmax and
// one_hot contributes nothing (greedy decoding feeds a model its own
// choices this way), the product's other operand gets its gradient.
// expected-remark @below {{gradient check passed for @through_argmax}}
func.func @through_argmax(%x: tensor<3x4xf32>, %w: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %0 = kiln.argmax %x axis = 1 : tensor<3x4xf32> -> tensor<3xi32>
  %1 = kiln.one_hot %0 : tensor<3xi32> -> tensor<3x4xf32>
  %2 = kiln.mul %1, %w : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %3 = kiln.mul %2, %x : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  return %3 : tensor<3x4xf32>
}
