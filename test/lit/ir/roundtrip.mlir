// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt %s --mlir-print-op-generic | kiln-opt | FileCheck %s
// RUN: kiln-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC
//
// Every kiln op prints and parses back to itself.

// CHECK-LABEL: module
// CHECK: kiln.param @w : tensor<4x3xf32> = glorot_uniform(4.0, 3.0)
// CHECK: kiln.param @n : tensor<3xf32> = normal(0.0, 0.02)
// CHECK: kiln.param @z : tensor<3xf32> = zeros
// CHECK: kiln.param @c : tensor<3xf32> = constant(0.5)
kiln.param @w : tensor<4x3xf32> = glorot_uniform(4.0, 3.0)
kiln.param @n : tensor<3xf32> = normal(0.0, 0.02)
kiln.param @z : tensor<3xf32> = zeros
kiln.param @c : tensor<3xf32> = constant(0.5)

// CHECK-LABEL: func.func @all_ops
func.func @all_ops(%x: tensor<2x4xf32>, %y: tensor<2xi32>, %h: tensor<4xf32>) -> tensor<f32> {
  // CHECK: kiln.load_param @w : tensor<4x3xf32>
  %w = kiln.load_param @w : tensor<4x3xf32>
  // CHECK: kiln.constant dense<5.000000e-01> : tensor<f32>
  %c = kiln.constant dense<0.5> : tensor<f32>
  // CHECK: kiln.matmul %{{.+}}, %{{.+}} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  %0 = kiln.matmul %x, %w : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  // CHECK: kiln.add {{.*}} : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %1 = kiln.add %0, %c : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  // CHECK: kiln.sub
  %2 = kiln.sub %1, %c : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  // CHECK: kiln.mul
  %3 = kiln.mul %2, %1 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: kiln.div
  %4 = kiln.div %3, %c : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  // CHECK: kiln.maximum
  %5 = kiln.maximum %4, %c : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  // CHECK: kiln.minimum
  %6 = kiln.minimum %5, %c : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  // CHECK: kiln.greater
  %7 = kiln.greater %6, %c : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  // CHECK: kiln.neg %{{.+}} : tensor<2x3xf32>
  %8 = kiln.neg %7 : tensor<2x3xf32>
  // CHECK: kiln.relu
  %9 = kiln.relu %8 : tensor<2x3xf32>
  // CHECK: kiln.sigmoid
  %10 = kiln.sigmoid %9 : tensor<2x3xf32>
  // CHECK: kiln.tanh
  %11 = kiln.tanh %10 : tensor<2x3xf32>
  // CHECK: kiln.exp
  %12 = kiln.exp %11 : tensor<2x3xf32>
  // CHECK: kiln.log
  %13 = kiln.log %12 : tensor<2x3xf32>
  // CHECK: kiln.sqrt
  %14 = kiln.sqrt %12 : tensor<2x3xf32>
  // CHECK: kiln.abs
  %15 = kiln.abs %14 : tensor<2x3xf32>
  // CHECK: kiln.softmax %{{.+}} axis = 1 : tensor<2x3xf32>
  %16 = kiln.softmax %15 axis = 1 : tensor<2x3xf32>
  // CHECK: kiln.log_softmax %{{.+}} axis = 0 : tensor<2x3xf32>
  %17 = kiln.log_softmax %16 axis = 0 : tensor<2x3xf32>
  // CHECK: kiln.reduce_sum %{{.+}} axes = [1] {keepdims = true} : tensor<2x3xf32> -> tensor<2x1xf32>
  %18 = kiln.reduce_sum %17 axes = [1] {keepdims = true} : tensor<2x3xf32> -> tensor<2x1xf32>
  // CHECK: kiln.reduce_mean %{{.+}} axes = [0] : tensor<2x3xf32> -> tensor<3xf32>
  %19 = kiln.reduce_mean %17 axes = [0] : tensor<2x3xf32> -> tensor<3xf32>
  // CHECK: kiln.reduce_max %{{.+}} axes = [0, 1] : tensor<2x3xf32> -> tensor<f32>
  %20 = kiln.reduce_max %17 axes = [0, 1] : tensor<2x3xf32> -> tensor<f32>
  // CHECK: kiln.argmax %{{.+}} axis = 1 : tensor<2x3xf32> -> tensor<2xi32>
  %21 = kiln.argmax %17 axis = 1 : tensor<2x3xf32> -> tensor<2xi32>
  // CHECK: kiln.reshape %{{.+}} : tensor<2x3xf32> -> tensor<6xf32>
  %22 = kiln.reshape %17 : tensor<2x3xf32> -> tensor<6xf32>
  // CHECK: kiln.transpose %{{.+}} perm = [1, 0] : tensor<2x3xf32> -> tensor<3x2xf32>
  %23 = kiln.transpose %17 perm = [1, 0] : tensor<2x3xf32> -> tensor<3x2xf32>
  // CHECK: kiln.broadcast_to %{{.+}} : tensor<3xf32> -> tensor<2x3xf32>
  %24 = kiln.broadcast_to %19 : tensor<3xf32> -> tensor<2x3xf32>
  // CHECK: kiln.one_hot %{{.+}} : tensor<2xi32> -> tensor<2x3xf32>
  %25 = kiln.one_hot %y : tensor<2xi32> -> tensor<2x3xf32>
  // CHECK: kiln.gather %{{.+}}[%{{.+}}] : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<2x3xf32>
  %g = kiln.gather %25[%y] : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<2x3xf32>
  // CHECK: kiln.scatter_add %{{.+}}[%{{.+}}] : (tensor<2xi32>, tensor<2x3xf32>) -> tensor<5x3xf32>
  %sa = kiln.scatter_add %g[%y] : (tensor<2xi32>, tensor<2x3xf32>) -> tensor<5x3xf32>
  // CHECK: kiln.cross_entropy %{{.+}}, %{{.+}} : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
  %26 = kiln.cross_entropy %24, %y : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
  // CHECK: kiln.mse
  %27 = kiln.mse %24, %25 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<f32>
  // CHECK: kiln.bce_with_logits
  %28 = kiln.bce_with_logits %24, %25 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<f32>
  // CHECK: kiln.sgd_update %{{.+}}, %{{.+}}, %{{.+}} {weight_decay = 0.000000e+00 : f64} : tensor<4x3xf32>, tensor<4xf32>
  %29 = kiln.sgd_update %w, %w, %h {weight_decay = 0.0 : f64} : tensor<4x3xf32>, tensor<4xf32>
  // CHECK: kiln.momentum_update
  %30:2 = kiln.momentum_update %w, %w, %w, %h {momentum = 0.9 : f64, weight_decay = 0.0 : f64, nesterov = false} : tensor<4x3xf32>, tensor<4xf32>
  // CHECK: kiln.adam_update
  %31:3 = kiln.adam_update %w, %w, %w, %w, %h {beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.0 : f64, decoupled = true} : tensor<4x3xf32>, tensor<4xf32>
  return %28 : tensor<f32>
}

// The fused ops print their activation and pool kinds as keywords; the
// generic form spells the attributes out.
// CHECK-LABEL: func.func @fused_ops
// GENERIC-LABEL: sym_name = "fused_ops"
func.func @fused_ops(%x: tensor<2x1x8x8xf32>, %w: tensor<4x1x3x3xf32>, %b: tensor<4xf32>, %g: tensor<2x4x4x4xf32>,
                     %d: tensor<8x16xf32>, %dw: tensor<16x4xf32>, %db: tensor<4xf32>)
    -> (tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>, tensor<8x4xf32>, tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>) {
  // CHECK: %{{.+}}, %{{.+}} = kiln.fused_conv2d %{{.+}}, %{{.+}}, %{{.+}} activation = relu pool = max {dilation = array<i64: 1, 1>, padding = array<i64: 1, 1>, pool_kernel = array<i64: 2, 2>, pool_padding = array<i64: 0, 0>, pool_strides = array<i64: 2, 2>, strides = array<i64: 1, 1>} : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>, tensor<4xf32>) -> (tensor<2x4x4x4xf32>, tensor<2x4x8x8xf32>)
  // GENERIC: "kiln.fused_conv2d"
  // GENERIC-SAME: activation = #kiln<activation relu>
  // GENERIC-SAME: pool = #kiln<pool max>
  %p, %a = kiln.fused_conv2d %x, %w, %b activation = relu pool = max {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>,
      pool_kernel = array<i64: 2, 2>, pool_strides = array<i64: 2, 2>, pool_padding = array<i64: 0, 0>}
      : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>, tensor<4xf32>) -> (tensor<2x4x4x4xf32>, tensor<2x4x8x8xf32>)
  // CHECK: kiln.fused_conv2d %{{.+}}, %{{.+}} activation = gelu pool = none {
  // GENERIC: activation = #kiln<activation gelu>
  // GENERIC-SAME: pool = #kiln<pool none>
  %c = kiln.fused_conv2d %x, %w activation = gelu pool = none {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>,
      pool_kernel = array<i64>, pool_strides = array<i64>, pool_padding = array<i64>}
      : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>) -> tensor<2x4x8x8xf32>
  // CHECK: kiln.fused_dense %{{.+}}, %{{.+}}, %{{.+}} activation = sigmoid : (tensor<8x16xf32>, tensor<16x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  // GENERIC: "kiln.fused_dense"
  // GENERIC-SAME: <{activation = #kiln<activation sigmoid>}>
  %e = kiln.fused_dense %d, %dw, %db activation = sigmoid : (tensor<8x16xf32>, tensor<16x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  // CHECK: kiln.max_pool2d_backward %{{.+}}, %{{.+}}, %{{.+}} kernel = [2, 2] strides = [2, 2] padding = [0, 0] : (tensor<2x4x8x8xf32>, tensor<2x4x4x4xf32>, tensor<2x4x4x4xf32>) -> tensor<2x4x8x8xf32>
  %m = kiln.max_pool2d_backward %a, %p, %g kernel = [2, 2] strides = [2, 2] padding = [0, 0] : (tensor<2x4x8x8xf32>, tensor<2x4x4x4xf32>, tensor<2x4x4x4xf32>) -> tensor<2x4x8x8xf32>
  // CHECK: kiln.avg_pool2d_backward %{{.+}} kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<2x4x4x4xf32> -> tensor<2x4x8x8xf32>
  %v = kiln.avg_pool2d_backward %g kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<2x4x4x4xf32> -> tensor<2x4x8x8xf32>
  return %c, %a, %e, %m, %v : tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>, tensor<8x4xf32>, tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>
}

// Activations with and without attributes; leaky_relu's default slope (0.01)
// is not printed.
// CHECK-LABEL: func.func @activations
// GENERIC-LABEL: sym_name = "activations"
func.func @activations(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  // CHECK: kiln.leaky_relu %{{.+}} : tensor<2x3xf32>
  // GENERIC: "kiln.leaky_relu"(%{{.+}}) <{slope = 1.000000e-02 : f64}>
  %0 = kiln.leaky_relu %x : tensor<2x3xf32>
  // CHECK: kiln.leaky_relu %{{.+}} {slope = 2.000000e-01 : f64} : tensor<2x3xf32>
  // GENERIC: "kiln.leaky_relu"(%{{.+}}) <{slope = 2.000000e-01 : f64}>
  %1 = kiln.leaky_relu %x {slope = 0.2 : f64} : tensor<2x3xf32>
  // CHECK: kiln.softplus %{{.+}} : tensor<2x3xf32>
  %2 = kiln.softplus %x : tensor<2x3xf32>
  return %0, %1, %2 : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>
}

// A recurrence: carries, sequence slices and captured weights in, new carries
// and stacked slices out; reverse runs the steps backwards.
// CHECK-LABEL: func.func @scan
// CHECK: %{{.+}}:2 = kiln.scan length = 3 axis = 1 reverse carries(%{{.+}} : tensor<2x4xf32>) xs(%{{.+}} : tensor<2x3x5xf32>) consts(%{{.+}}, %{{.+}} : tensor<5x4xf32>, tensor<4x4xf32>) {
// CHECK: ^bb0(%{{.+}}: tensor<2x4xf32>, %{{.+}}: tensor<2x5xf32>, %{{.+}}: tensor<5x4xf32>, %{{.+}}: tensor<4x4xf32>):
// CHECK: kiln.yield %{{.+}}, %{{.+}} : tensor<2x4xf32>, tensor<2x4xf32>
// CHECK: } -> (tensor<2x4xf32>, tensor<2x3x4xf32>)
// GENERIC-LABEL: sym_name = "scan"
// GENERIC: "kiln.scan"({{.*}}) <{axis = 1 : i64, length = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 2>, reverse}>
func.func @scan(%x: tensor<2x3x5xf32>, %h0: tensor<2x4xf32>, %wx: tensor<5x4xf32>, %wh: tensor<4x4xf32>) -> (tensor<2x4xf32>, tensor<2x3x4xf32>) {
  %h, %hs = kiln.scan length = 3 axis = 1 reverse carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x3x5xf32>) consts(%wx, %wh : tensor<5x4xf32>, tensor<4x4xf32>) {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x5xf32>, %a: tensor<5x4xf32>, %b: tensor<4x4xf32>):
    %0 = kiln.matmul %xt, %a : (tensor<2x5xf32>, tensor<5x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.matmul %hp, %b : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %2 = kiln.add %0, %1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %3 = kiln.tanh %2 : tensor<2x4xf32>
    kiln.yield %3, %3 : tensor<2x4xf32>, tensor<2x4xf32>
  } -> (tensor<2x4xf32>, tensor<2x3x4xf32>)
  return %h, %hs : tensor<2x4xf32>, tensor<2x3x4xf32>
}

// CHECK-LABEL: func.func @split_concat
// CHECK: %{{.+}}:2 = kiln.split %{{.+}} axis = 1 sizes = [4, 4] : tensor<2x8xf32> -> (tensor<2x4xf32>, tensor<2x4xf32>)
// CHECK: kiln.concat %{{.+}}#1, %{{.+}}#0 axis = 1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x8xf32>
// GENERIC: "kiln.split"(%{{.+}}) <{axis = 1 : i64, sizes = array<i64: 4, 4>}>
// GENERIC: "kiln.concat"(%{{.+}}, %{{.+}}) <{axis = 1 : i64}>
func.func @split_concat(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %a, %b = kiln.split %x axis = 1 sizes = [4, 4] : tensor<2x8xf32> -> (tensor<2x4xf32>, tensor<2x4xf32>)
  %y = kiln.concat %b, %a axis = 1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// CHECK-LABEL: func.func @random
// CHECK: kiln.random_normal %{{.+}} : tensor<4xf32> {salt = 2 : i64} : tensor<3x5xf32>
// CHECK: kiln.random_uniform {salt = 3 : i64} : tensor<7xf64>
// GENERIC: "kiln.random_normal"(%{{.+}}) <{salt = 2 : i64}>
func.func @random(%h: tensor<4xf32>) -> (tensor<3x5xf32>, tensor<7xf64>) {
  %n = kiln.random_normal %h : tensor<4xf32> {salt = 2 : i64} : tensor<3x5xf32>
  %u = kiln.random_uniform {salt = 3 : i64} : tensor<7xf64>
  return %n, %u : tensor<3x5xf32>, tensor<7xf64>
}

// CHECK-LABEL: func.func @attention
// CHECK: %[[O:.+]], %[[LSE:.+]] = kiln.attention %{{.+}}, %{{.+}}, %{{.+}} causal scale = 1.250000e-01 : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>) -> (tensor<2x16x4xf32>, tensor<2x16xf32>)
// CHECK: kiln.attention_backward %{{.+}}, %{{.+}}, %{{.+}}, %[[O]], %[[LSE]], %{{.+}}, %{{.+}} causal scale = 1.250000e-01
// GENERIC: "kiln.attention"(%{{.+}}, %{{.+}}, %{{.+}}) <{causal, dropout = 0.000000e+00 : f64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, salt = 0 : i64, scale = 1.250000e-01 : f64}>
func.func @attention(%q: tensor<2x16x8xf32>, %k: tensor<2x16x8xf32>, %v: tensor<2x16x4xf32>, %g: tensor<2x16x4xf32>, %gl: tensor<2x16xf32>) -> (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>) {
  %o, %lse = kiln.attention %q, %k, %v causal scale = 0.125 : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>) -> (tensor<2x16x4xf32>, tensor<2x16xf32>)
  %dq, %dk, %dv = kiln.attention_backward %q, %k, %v, %o, %lse, %g, %gl causal scale = 0.125 : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>, tensor<2x16xf32>, tensor<2x16x4xf32>, tensor<2x16xf32>) -> (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>)
  return %dq, %dk, %dv : tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>
}

// CHECK-LABEL: func.func @attention_mask
// CHECK: kiln.attention %{{.+}}, %{{.+}}, %{{.+}} mask %{{.+}} scale = 5.000000e-01 : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>, tensor<2x16xf32>)
// GENERIC: "kiln.attention"(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) <{dropout = 0.000000e+00 : f64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>, salt = 0 : i64, scale = 5.000000e-01 : f64}>
func.func @attention_mask(%q: tensor<2x16x8xf32>, %v: tensor<2x16x4xf32>, %m: tensor<2x16xf32>) -> tensor<2x16x4xf32> {
  %o, %lse = kiln.attention %q, %q, %v mask %m scale = 0.5 : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x4xf32>, tensor<2x16xf32>) -> (tensor<2x16x4xf32>, tensor<2x16xf32>)
  return %o : tensor<2x16x4xf32>
}

// CHECK-LABEL: func.func @attention_dropout
// CHECK: kiln.attention %{{.+}}, %{{.+}}, %{{.+}} hyper %{{.+}} causal scale = 5.000000e-01 {dropout = 1.000000e-01 : f64, salt = 3 : i64}
// GENERIC: "kiln.attention"(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) <{causal, dropout = 1.000000e-01 : f64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1>, salt = 3 : i64, scale = 5.000000e-01 : f64}>
func.func @attention_dropout(%q: tensor<2x16x8xf32>, %h: tensor<4xf32>) -> tensor<2x16x8xf32> {
  %o, %lse = kiln.attention %q, %q, %q hyper %h causal scale = 0.5 {dropout = 0.1 : f64, salt = 3 : i64} : (tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<4xf32>) -> (tensor<2x16x8xf32>, tensor<2x16xf32>)
  return %o : tensor<2x16x8xf32>
}
