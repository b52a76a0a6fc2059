// RUN: kiln-opt --kiln-to-linalg --split-input-file --verify-diagnostics %s | FileCheck %s
// RUN: kiln-opt --kiln-to-linalg=named-matmul=0 --split-input-file --verify-diagnostics %s | FileCheck %s --check-prefix=GENERIC

// Broadcasting: size-1 dims that broadcast are collapsed away, so every map
// is a projected permutation.
// CHECK-DAG: #[[ID2:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[COL:.+]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[ROW:.+]] = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @add_broadcast
// CHECK-SAME: (%[[A:.+]]: tensor<3x1xf32>, %[[B:.+]]: tensor<1x4xf32>)
// CHECK-DAG: %[[A1:.+]] = tensor.collapse_shape %[[A]] {{\[}}[0, 1]] : tensor<3x1xf32> into tensor<3xf32>
// CHECK-DAG: %[[B1:.+]] = tensor.collapse_shape %[[B]] {{\[}}[0, 1]] : tensor<1x4xf32> into tensor<4xf32>
// CHECK: %[[INIT:.+]] = tensor.empty() : tensor<3x4xf32>
// CHECK: linalg.generic {indexing_maps = [#[[ROW]], #[[COL]], #[[ID2]]], iterator_types = ["parallel", "parallel"]}
// CHECK-SAME: ins(%[[A1]], %[[B1]] : tensor<3xf32>, tensor<4xf32>) outs(%[[INIT]] : tensor<3x4xf32>)
// CHECK: arith.addf %{{.+}}, %{{.+}} fastmath<contract> : f32
// CHECK-NOT: kiln.
func.func @add_broadcast(%a: tensor<3x1xf32>, %b: tensor<1x4xf32>) -> tensor<3x4xf32> {
  %0 = kiln.add %a, %b : (tensor<3x1xf32>, tensor<1x4xf32>) -> tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}

// -----

// A scalar operand: a rank-0 map.
// CHECK-DAG: #[[SCALAR:.+]] = affine_map<(d0, d1) -> ()>
// CHECK-LABEL: func.func @mul_scalar
// CHECK: linalg.generic {indexing_maps = [#{{.+}}, #[[SCALAR]], #{{.+}}]
// CHECK: arith.mulf
func.func @mul_scalar(%a: tensor<2x3xf64>, %s: tensor<f64>) -> tensor<2x3xf64> {
  %0 = kiln.mul %a, %s : (tensor<2x3xf64>, tensor<f64>) -> tensor<2x3xf64>
  return %0 : tensor<2x3xf64>
}

// -----

// CHECK-LABEL: func.func @elementwise
// CHECK: arith.subf
// CHECK: arith.divf
// CHECK: arith.maximumf
// CHECK: arith.minimumf
// CHECK: %[[GT:.+]] = arith.cmpf ogt
// CHECK: arith.select %[[GT]]
// CHECK: arith.negf
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: math.tanh
// CHECK: math.exp
// CHECK: math.log
// CHECK: math.sqrt
// CHECK: math.absf
func.func @elementwise(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = kiln.sub %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = kiln.div %0, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %2 = kiln.maximum %1, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %3 = kiln.minimum %2, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = kiln.greater %3, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %5 = kiln.neg %4 : tensor<4xf32>
  %6 = kiln.relu %5 : tensor<4xf32>
  %7 = kiln.sigmoid %6 : tensor<4xf32>
  %8 = kiln.tanh %7 : tensor<4xf32>
  %9 = kiln.exp %8 : tensor<4xf32>
  %10 = kiln.log %9 : tensor<4xf32>
  %11 = kiln.sqrt %10 : tensor<4xf32>
  %12 = kiln.abs %11 : tensor<4xf32>
  return %12 : tensor<4xf32>
}

// -----

// Rank 2: a zero-filled linalg.matmul, or a generic with n innermost.
// CHECK-LABEL: func.func @matmul
// CHECK: %[[ZERO:.+]] = linalg.fill
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x16xf32>, tensor<16x4xf32>) outs(%[[ZERO]] : tensor<8x4xf32>)
// GENERIC-DAG: #[[MK:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// GENERIC-DAG: #[[KN:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// GENERIC-DAG: #[[MN:.+]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// GENERIC-LABEL: func.func @matmul
// GENERIC-NOT: linalg.matmul
// GENERIC: linalg.generic {indexing_maps = [#[[MK]], #[[KN]], #[[MN]]], iterator_types = ["parallel", "reduction", "parallel"]}
// GENERIC: arith.mulf
// GENERIC: arith.addf
func.func @matmul(%a: tensor<8x16xf32>, %b: tensor<16x4xf32>) -> tensor<8x4xf32> {
  %0 = kiln.matmul %a, %b : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

// Batched with broadcast batch dimensions: [2,1,5,7] x [3,7,4].
// CHECK-DAG: #[[LHS:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d2, d3)>
// CHECK-DAG: #[[RHS:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d3, d4)>
// CHECK-DAG: #[[OUT:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
// CHECK-LABEL: func.func @batched_matmul
// CHECK: tensor.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : tensor<2x1x5x7xf32> into tensor<2x5x7xf32>
// CHECK: linalg.generic {indexing_maps = [#[[LHS]], #[[RHS]], #[[OUT]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]}
// CHECK-NOT: linalg.matmul
func.func @batched_matmul(%a: tensor<2x1x5x7xf32>, %b: tensor<3x7x4xf32>) -> tensor<2x3x5x4xf32> {
  %0 = kiln.matmul %a, %b : (tensor<2x1x5x7xf32>, tensor<3x7x4xf32>) -> tensor<2x3x5x4xf32>
  return %0 : tensor<2x3x5x4xf32>
}

// -----

// The same batch dimensions: one linalg.batch_matmul over the collapsed batch
// ([2, 3] -> 6), expanded back.
// CHECK-LABEL: func.func @batch_matmul
// CHECK: %[[A:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : tensor<2x3x5x7xf32> into tensor<6x5x7xf32>
// CHECK: %[[B:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : tensor<2x3x7x4xf32> into tensor<6x7x4xf32>
// CHECK: %[[P:.+]] = linalg.batch_matmul ins(%[[A]], %[[B]] : tensor<6x5x7xf32>, tensor<6x7x4xf32>)
// CHECK: tensor.expand_shape %[[P]] {{\[}}[0, 1], [2], [3]]{{.*}} : tensor<6x5x4xf32> into tensor<2x3x5x4xf32>
// GENERIC-LABEL: func.func @batch_matmul
// GENERIC-NOT: linalg.batch_matmul
// GENERIC: linalg.generic
func.func @batch_matmul(%a: tensor<2x3x5x7xf32>, %b: tensor<2x3x7x4xf32>) -> tensor<2x3x5x4xf32> {
  %0 = kiln.matmul %a, %b : (tensor<2x3x5x7xf32>, tensor<2x3x7x4xf32>) -> tensor<2x3x5x4xf32>
  return %0 : tensor<2x3x5x4xf32>
}

// -----

// Rows sharing one matrix ([2, 3, 7] x [7, 4], a dense layer at every
// position): one [6, 7] x [7, 4] linalg.matmul on the collapsed rows.
// CHECK-LABEL: func.func @rows_matmul
// CHECK: %[[X:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : tensor<2x3x7xf32> into tensor<6x7xf32>
// CHECK: %[[P:.+]] = linalg.matmul ins(%[[X]], %{{.+}} : tensor<6x7xf32>, tensor<7x4xf32>)
// CHECK: tensor.expand_shape %[[P]] {{\[}}[0, 1], [2]]{{.*}} : tensor<6x4xf32> into tensor<2x3x4xf32>
func.func @rows_matmul(%a: tensor<2x3x7xf32>, %b: tensor<7x4xf32>) -> tensor<2x3x4xf32> {
  %0 = kiln.matmul %a, %b : (tensor<2x3x7xf32>, tensor<7x4xf32>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

// Softmax subtracts the row maximum: max reduction, exp-sum reduction, then
// one elementwise pass.
// CHECK-LABEL: func.func @softmax
// CHECK: %[[NEGINF:.+]] = arith.constant 0xFF800000 : f32
// CHECK: linalg.fill ins(%[[NEGINF]] : f32)
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]
// CHECK: arith.maximumf
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]
// CHECK: arith.subf
// CHECK: math.exp
// CHECK: arith.addf
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]
// CHECK: math.exp
// CHECK: arith.divf
// CHECK-LABEL: func.func @log_softmax
// CHECK: linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]
// CHECK: math.log
// CHECK-NOT: math.exp
// CHECK: return
func.func @softmax(%x: tensor<4x10xf32>) -> tensor<4x10xf32> {
  %0 = kiln.softmax %x axis = 1 : tensor<4x10xf32>
  return %0 : tensor<4x10xf32>
}
func.func @log_softmax(%x: tensor<4x10xf32>) -> tensor<4x10xf32> {
  %0 = kiln.log_softmax %x axis = 0 : tensor<4x10xf32>
  return %0 : tensor<4x10xf32>
}

// -----

// CHECK-DAG: #[[IN:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[KEPT:.+]] = affine_map<(d0, d1, d2) -> (d1)>
// CHECK-LABEL: func.func @reduce_mean_keepdims
// CHECK: linalg.generic {indexing_maps = [#[[IN]], #[[KEPT]]], iterator_types = ["reduction", "parallel", "reduction"]}
// CHECK: arith.addf
// CHECK: %[[SCALED:.+]] = linalg.generic
// CHECK: arith.constant 0.083333333333333329 : f64
// CHECK: arith.mulf
// CHECK: tensor.expand_shape %[[SCALED]] {{\[}}[0, 1, 2]] output_shape [1, 5, 1] : tensor<5xf64> into tensor<1x5x1xf64>
func.func @reduce_mean_keepdims(%x: tensor<3x5x4xf64>) -> tensor<1x5x1xf64> {
  %0 = kiln.reduce_mean %x axes = [0, 2] {keepdims = true} : tensor<3x5x4xf64> -> tensor<1x5x1xf64>
  return %0 : tensor<1x5x1xf64>
}

// -----

// CHECK-DAG: #[[ALL:.+]] = affine_map<(d0, d1) -> ()>
// CHECK-LABEL: func.func @reduce_max_all
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: linalg.generic {indexing_maps = [#{{.+}}, #[[ALL]]], iterator_types = ["reduction", "reduction"]}
// CHECK: arith.maximumf
func.func @reduce_max_all(%x: tensor<3x5xf32>) -> tensor<f32> {
  %0 = kiln.reduce_max %x axes = [0, 1] : tensor<3x5xf32> -> tensor<f32>
  %1 = kiln.reduce_sum %x axes = [1] : tensor<3x5xf32> -> tensor<3xf32>
  return %0 : tensor<f32>
}

// -----

// Argmax carries (max, index); strict ogt keeps the first index on ties.
// CHECK-LABEL: func.func @argmax
// CHECK: %[[R:.+]]:2 = linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]
// CHECK-SAME: outs(%{{.+}}, %{{.+}} : tensor<5xf32>, tensor<5xi32>)
// CHECK: %[[I:.+]] = linalg.index 0 : index
// CHECK: %[[I32:.+]] = arith.index_cast %[[I]] : index to i32
// CHECK: %[[GT:.+]] = arith.cmpf ogt
// CHECK: arith.select %[[GT]], %[[I32]]
// CHECK: return %[[R]]#1
func.func @argmax(%x: tensor<3x5xf32>) -> tensor<5xi32> {
  %0 = kiln.argmax %x axis = 0 : tensor<3x5xf32> -> tensor<5xi32>
  return %0 : tensor<5xi32>
}

// -----

// Reshape through rank 1, as views.
// CHECK-LABEL: func.func @reshape
// CHECK: %[[FLAT:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0, 1]] : tensor<2x6xi32> into tensor<12xi32>
// CHECK: tensor.expand_shape %[[FLAT]] {{\[}}[0, 1, 2]] output_shape [3, 2, 2] : tensor<12xi32> into tensor<3x2x2xi32>
// CHECK-LABEL: func.func @reshape_scalar
// CHECK: tensor.expand_shape %{{.+}} [] output_shape [1] : tensor<f32> into tensor<1xf32>
// CHECK-NOT: tensor.expand_shape
func.func @reshape(%x: tensor<2x6xi32>) -> tensor<3x2x2xi32> {
  %0 = kiln.reshape %x : tensor<2x6xi32> -> tensor<3x2x2xi32>
  return %0 : tensor<3x2x2xi32>
}
func.func @reshape_scalar(%x: tensor<f32>) -> tensor<1xf32> {
  %0 = kiln.reshape %x : tensor<f32> -> tensor<1xf32>
  return %0 : tensor<1xf32>
}

// -----

// CHECK-LABEL: func.func @transpose_broadcast_one_hot
// CHECK: linalg.transpose ins(%{{.+}} : tensor<2x3x4xf32>) outs(%{{.+}} : tensor<4x2x3xf32>) permutation = [2, 0, 1]
// CHECK: tensor.collapse_shape %{{.+}} {{\[}}[0, 1]] : tensor<3x1xf32> into tensor<3xf32>
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: linalg.yield %[[IN]] : f32
// CHECK: linalg.index 1
// CHECK: arith.cmpi eq
func.func @transpose_broadcast_one_hot(%x: tensor<2x3x4xf32>, %y: tensor<3x1xf32>, %l: tensor<6xi32>) -> (tensor<4x2x3xf32>, tensor<2x3x4xf32>, tensor<6x5xf32>) {
  %0 = kiln.transpose %x perm = [2, 0, 1] : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
  %1 = kiln.broadcast_to %y : tensor<3x1xf32> -> tensor<2x3x4xf32>
  %2 = kiln.one_hot %l : tensor<6xi32> -> tensor<6x5xf32>
  return %0, %1, %2 : tensor<4x2x3xf32>, tensor<2x3x4xf32>, tensor<6x5xf32>
}

// -----

// kiln.param ops stay for kiln-entry-abi.
// CHECK: kiln.param @w : tensor<2xf32> = zeros
// CHECK-LABEL: func.func @constant
// CHECK: arith.constant dense<{{\[}}1.000000e+00, 2.000000e+00]> : tensor<2xf32>
kiln.param @w : tensor<2xf32> = zeros
func.func @constant() -> tensor<2xf32> {
  %0 = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// Cross-entropy: row max, then one pass for sum(exp(x - max)) and the
// label's logit, then the mean of logsumexp - logit.
// CHECK-LABEL: func.func @cross_entropy
// CHECK: arith.maximumf
// CHECK: %[[ROWS:.+]]:2 = linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]
// CHECK-SAME: ins(%{{.+}}, %{{.+}}, %{{.+}} : tensor<8x10xf32>, tensor<8xf32>, tensor<8xi32>)
// CHECK: math.exp
// CHECK: linalg.index 1
// CHECK: arith.cmpi eq
// CHECK: linalg.generic {{.+}} iterator_types = ["reduction"]
// CHECK: math.log
// CHECK: arith.constant 1.250000e-01 : f32
func.func @cross_entropy(%x: tensor<8x10xf32>, %l: tensor<8xi32>) -> tensor<f32> {
  %0 = kiln.cross_entropy %x, %l : (tensor<8x10xf32>, tensor<8xi32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

// CHECK-LABEL: func.func @mse
// CHECK: linalg.generic {{.+}} iterator_types = ["reduction", "reduction"]
// CHECK: arith.subf
// CHECK: arith.mulf
// CHECK: arith.constant 6.250000e-02 : f32
// CHECK-LABEL: func.func @bce
// CHECK: arith.maximumf
// CHECK: math.absf
// CHECK: math.exp
// CHECK: math.log1p
func.func @mse(%x: tensor<4x4xf32>, %t: tensor<4x4xf32>) -> tensor<f32> {
  %0 = kiln.mse %x, %t : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}
func.func @bce(%x: tensor<4x4xf32>, %t: tensor<4x4xf32>) -> tensor<f32> {
  %0 = kiln.bce_with_logits %x, %t : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

// Optimizer updates: scalars from hyper outside, one generic with a result
// per updated tensor.
// CHECK-LABEL: func.func @adam
// CHECK: %[[LR:.+]] = tensor.extract %{{.+}}[%c0] : tensor<4xf32>
// CHECK: arith.extf %[[LR]] : f32 to f64
// CHECK: %[[T:.+]] = tensor.extract %{{.+}}[%c1] : tensor<4xf32>
// CHECK: %[[T64:.+]] = arith.extf %[[T]] : f32 to f64
// CHECK: math.powf %{{.+}}, %[[T64]] : f64
// CHECK: %[[R:.+]]:3 = linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]
// CHECK-SAME: outs(%{{.+}}, %{{.+}}, %{{.+}} : tensor<3x5xf64>, tensor<3x5xf64>, tensor<3x5xf64>)
// CHECK: math.sqrt
// CHECK: linalg.yield
// CHECK: return %[[R]]#0, %[[R]]#1, %[[R]]#2
func.func @adam(%p: tensor<3x5xf64>, %g: tensor<3x5xf64>, %m: tensor<3x5xf64>, %v: tensor<3x5xf64>, %h: tensor<4xf32>) -> (tensor<3x5xf64>, tensor<3x5xf64>, tensor<3x5xf64>) {
  %0:3 = kiln.adam_update %p, %g, %m, %v, %h {beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.0 : f64, decoupled = false} : tensor<3x5xf64>, tensor<4xf32>
  return %0#0, %0#1, %0#2 : tensor<3x5xf64>, tensor<3x5xf64>, tensor<3x5xf64>
}

// -----

// CHECK-LABEL: func.func @sgd_momentum
// CHECK: linalg.generic
// CHECK-SAME: outs(%{{.+}} : tensor<5xf32>)
// CHECK: %{{.+}}:2 = linalg.generic
// CHECK-SAME: outs(%{{.+}}, %{{.+}} : tensor<5xf32>, tensor<5xf32>)
func.func @sgd_momentum(%p: tensor<5xf32>, %g: tensor<5xf32>, %v: tensor<5xf32>, %h: tensor<4xf32>) -> (tensor<5xf32>, tensor<5xf32>, tensor<5xf32>) {
  %0 = kiln.sgd_update %p, %g, %h {weight_decay = 0.0 : f64} : tensor<5xf32>, tensor<4xf32>
  %1:2 = kiln.momentum_update %p, %g, %v, %h {momentum = 0.9 : f64, weight_decay = 0.0 : f64, nesterov = true} : tensor<5xf32>, tensor<4xf32>
  return %0, %1#0, %1#1 : tensor<5xf32>, tensor<5xf32>, tensor<5xf32>
}

// -----

// Parameters must be arguments by now.
kiln.param @w : tensor<2xf32> = zeros
func.func @load(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @below {{is not supported by codegen: parameters must be entry-function arguments}}
  %w = kiln.load_param @w : tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

// conv2d: im2col columns [C*KH*KW, N*OH*OW] gathered with a bounds mask (the
// padded axis only), then a matmul with the filter [O, C*KH*KW], then NCHW.
// CHECK-DAG: #[[ONTON:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d0, d2, d3)>
// CHECK-LABEL: func.func @conv2d
// CHECK: %[[COLS:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<3x3x2x2x4x2xf32>)
// CHECK: arith.cmpi slt
// CHECK: tensor.extract %{{.+}} : tensor<2x3x7x6xf32>
// CHECK: %[[COLS2:.+]] = tensor.collapse_shape %[[COLS]] {{\[}}[0, 1, 2], [3, 4, 5]] : tensor<3x3x2x2x4x2xf32> into tensor<18x16xf32>
// CHECK: %[[F:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0], [1, 2, 3]] : tensor<4x3x3x2xf32> into tensor<4x18xf32>
// CHECK: %[[Y:.+]] = linalg.matmul ins(%[[F]], %[[COLS2]] : tensor<4x18xf32>, tensor<18x16xf32>)
// CHECK: %[[Y4:.+]] = tensor.expand_shape %[[Y]] {{\[}}[0], [1, 2, 3]] output_shape [4, 2, 4, 2]
// CHECK: linalg.generic {indexing_maps = [#[[ONTON]], #{{.+}}], {{.+}} ins(%[[Y4]] : tensor<4x2x4x2xf32>) outs(%{{.+}} : tensor<2x4x4x2xf32>)
func.func @conv2d(%x: tensor<2x3x7x6xf32>, %w: tensor<4x3x3x2xf32>) -> tensor<2x4x4x2xf32> {
  %0 = kiln.conv2d %x, %w strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x7x6xf32>, tensor<4x3x3x2xf32>) -> tensor<2x4x4x2xf32>
  return %0 : tensor<2x4x4x2xf32>
}

// -----

// The gradients: the filter's is the transpose of a matmul of the columns
// (the forward layout) with the output gradient in NHWC order; the input's a
// matmul with the transposed filter, then col2im as a scatter-add with affine
// indices (stride 2, dilation 2) into a zero-padded dx, and the interior.
// CHECK-DAG: #[[SIX:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d1, d3, d4, d0, d2, d5)>
// CHECK-DAG: #[[SCATTER:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 * 2 + d3, d5 * 2 + d4 * 2)>
// CHECK-LABEL: func.func @conv2d_backward
// CHECK: %[[COLS:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<3x3x2x2x4x2xf32>)
// CHECK: linalg.transpose ins(%{{.+}} : tensor<2x4x4x2xf32>) outs(%{{.+}} : tensor<2x4x2x4xf32>) permutation = [0, 2, 3, 1]
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<18x16xf32>, tensor<16x4xf32>)
// CHECK: linalg.transpose ins(%{{.+}} : tensor<18x4xf32>) outs(%{{.+}} : tensor<4x18xf32>) permutation = [1, 0]
// CHECK: tensor.expand_shape %{{.+}} {{\[}}[0], [1, 2, 3]] output_shape [4, 3, 3, 2] : tensor<4x18xf32> into tensor<4x3x3x2xf32>
// CHECK: linalg.transpose ins(%{{.+}} : tensor<4x18xf32>) outs(%{{.+}} : tensor<18x4xf32>) permutation = [1, 0]
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<18x4xf32>, tensor<4x16xf32>)
// CHECK: %[[ZERO:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<2x3x9x6xf32>)
// CHECK: %[[DX:.+]] = linalg.generic {indexing_maps = [#[[SIX]], #[[SCATTER]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]} ins(%{{.+}} : tensor<3x3x2x2x4x2xf32>) outs(%[[ZERO]] : tensor<2x3x9x6xf32>)
// CHECK: arith.addf
// CHECK: %[[IN:.+]] = tensor.extract_slice %[[DX]][0, 0, 1, 0] [2, 3, 7, 6] [1, 1, 1, 1]
// CHECK: linalg.copy ins(%[[IN]] : tensor<2x3x7x6xf32>)
func.func @conv2d_backward(%x: tensor<2x3x7x6xf32>, %w: tensor<4x3x3x2xf32>, %g: tensor<2x4x4x2xf32>) -> (tensor<4x3x3x2xf32>, tensor<2x3x7x6xf32>) {
  %0 = kiln.conv2d_backward_filter %x, %g strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x7x6xf32>, tensor<2x4x4x2xf32>) -> tensor<4x3x3x2xf32>
  %1 = kiln.conv2d_backward_input %g, %w strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x4x4x2xf32>, tensor<4x3x3x2xf32>) -> tensor<2x3x7x6xf32>
  return %0, %1 : tensor<4x3x3x2xf32>, tensor<2x3x7x6xf32>
}

// -----

// Pooling. Strided windows without padding: a parallel generic over the
// result with one operand per tap (x through an affine map). Otherwise a
// window operand gives the reduction loops their extents; the window loops
// sit between the rows and the columns of the result, so that the innermost
// loop runs along a row. The gradient of windows that tile the input (2x2
// stride 2 on 8x8) is elementwise over the input, reading the window's
// maximum and gradient through floordiv maps; overlapping windows (3x3
// stride 2) gather over the windows that contain each element.
// CHECK-DAG: #[[TAP00:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 * 2, d3 * 2)>
// CHECK-DAG: #[[TAP11:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 * 2 + 1, d3 * 2 + 1)>
// CHECK-DAG: #[[WIN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d3, d4)>
// CHECK-DAG: #[[RES:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d5)>
// CHECK-DAG: #[[TILE:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 floordiv 2, d3 floordiv 2)>
// CHECK-DAG: #[[ID4:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @pools
// CHECK: linalg.generic {indexing_maps = [#[[TAP00]], #{{.+}}, #{{.+}}, #[[TAP11]], #[[ID4]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-COUNT-3: arith.maximumf
// CHECK: linalg.generic {indexing_maps = [#[[TAP00]], #{{.+}}, #{{.+}}, #[[TAP11]], #[[ID4]]]
// CHECK-COUNT-3: arith.addf
// CHECK: arith.constant 2.500000e-01 : f32
// CHECK: linalg.generic {indexing_maps = [#[[TILE]], #[[ID4]], #[[TILE]], #[[ID4]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK: arith.cmpf oeq
// CHECK: arith.select
// CHECK: linalg.generic {indexing_maps = [#[[RES]], #[[WIN]], #[[RES]]]
// CHECK: arith.cmpf oeq
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: linalg.generic {indexing_maps = [#[[WIN]], #[[RES]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
// CHECK: arith.maximumf
func.func @pools(%x: tensor<1x2x8x8xf32>, %g: tensor<1x2x4x4xf32>, %g3: tensor<1x2x3x3xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x7x7xf32>) {
  %0 = kiln.max_pool2d %x kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<1x2x8x8xf32> -> tensor<1x2x4x4xf32>
  %1 = kiln.avg_pool2d %x kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<1x2x8x8xf32> -> tensor<1x2x4x4xf32>
  %2 = kiln.max_pool2d_backward %x, %0, %g kernel = [2, 2] strides = [2, 2] padding = [0, 0] : (tensor<1x2x8x8xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x8x8xf32>
  %3 = kiln.max_pool2d %x kernel = [3, 3] strides = [2, 2] padding = [0, 0] : tensor<1x2x8x8xf32> -> tensor<1x2x3x3xf32>
  %4 = kiln.max_pool2d_backward %x, %3, %g3 kernel = [3, 3] strides = [2, 2] padding = [0, 0] : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) -> tensor<1x2x8x8xf32>
  %5 = kiln.max_pool2d %x kernel = [2, 2] strides = [1, 1] padding = [0, 0] : tensor<1x2x8x8xf32> -> tensor<1x2x7x7xf32>
  return %0, %1, %2, %4, %5 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x7x7xf32>
}

// -----

// Dropout: the key from hyper's step and seed, a hash of the element index
// counted from hyper's shard times the 32 elements (a data-parallel job's
// process numbers its examples after those of the processes before it), an
// integer threshold ceil(0.25 * 2^24) = 4194304; without hyper, identity.
// CHECK-LABEL: func.func @dropout
// CHECK: %[[STEP:.+]] = arith.fptoui %{{.+}} : f32 to i32
// CHECK: %[[SEED:.+]] = arith.fptoui %{{.+}} : f32 to i32
// CHECK: %[[SHARD:.+]] = tensor.extract %arg1[%c3] : tensor<4xf32>
// CHECK: %[[SHARDI:.+]] = arith.fptoui %[[SHARD]] : f32 to i32
// CHECK: %[[BASE:.+]] = arith.muli %[[SHARDI]], %c32_i32 : i32
// CHECK: linalg.generic
// CHECK: %[[INDEX:.+]] = arith.index_cast %{{.+}} : index to i32
// CHECK: arith.addi %[[INDEX]], %[[BASE]] : i32
// CHECK: arith.shrui
// CHECK: arith.cmpi ult, %{{.+}}, %c4194304_i32
// CHECK: arith.select
// CHECK: return %{{.+}}, %arg0
func.func @dropout(%x: tensor<4x8xf32>, %h: tensor<4xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %0 = kiln.dropout %x, %h : tensor<4xf32> {rate = 0.25 : f64, salt = 7 : i64} : tensor<4x8xf32>
  %1 = kiln.dropout %x {rate = 0.25 : f64, salt = 7 : i64} : tensor<4x8xf32>
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

func.func @modes(%a: tensor<2xf32>, %b: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @below {{is not supported by codegen: kiln-autodiff and kiln-entry-points resolve it}}
  %0 = kiln.if_training %a, %b : tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// A scan is one scf.for: carries and stacked outputs are iter_args, each step
// takes a rank-reducing slice of the sequence (step 4 - i in reverse), inserts
// its output slice, and copies the new carry into the carry last (in place
// once bufferized); the body is lowered in place.
// CHECK-LABEL: func.func @scan
// CHECK: %[[EMPTY:.+]] = tensor.empty() : tensor<2x5x4xf32>
// CHECK: %[[LOOP:.+]]:2 = scf.for %[[I:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[H:.+]] = %{{.+}}, %[[ACC:.+]] = %[[EMPTY]]) -> (tensor<2x4xf32>, tensor<2x5x4xf32>) {
// CHECK: %[[T:.+]] = arith.subi %{{.+}}, %[[I]] : index
// CHECK: %[[XT:.+]] = tensor.extract_slice %{{.+}}[0, %[[T]], 0] [2, 1, 4] [1, 1, 1] : tensor<2x5x4xf32> to tensor<2x4xf32>
// CHECK: %[[NEW:.+]] = linalg.generic {{.*}} ins(%[[H]], %[[XT]] :
// CHECK: %[[INS:.+]] = tensor.insert_slice %[[NEW]] into %[[ACC]][0, %[[T]], 0] [2, 1, 4] [1, 1, 1]
// CHECK: %[[COPY:.+]] = linalg.copy ins(%[[NEW]] : tensor<2x4xf32>) outs(%[[H]] : tensor<2x4xf32>)
// CHECK: scf.yield %[[COPY]], %[[INS]]
// CHECK: return %[[LOOP]]#0, %[[LOOP]]#1
func.func @scan(%h0: tensor<2x4xf32>, %x: tensor<2x5x4xf32>) -> (tensor<2x4xf32>, tensor<2x5x4xf32>) {
  %h, %hs = kiln.scan length = 5 axis = 1 reverse carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x5x4xf32>) consts() {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x4xf32>):
    %0 = kiln.add %hp, %xt : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    kiln.yield %0, %0 : tensor<2x4xf32>, tensor<2x4xf32>
  } -> (tensor<2x4xf32>, tensor<2x5x4xf32>)
  return %h, %hs : tensor<2x4xf32>, tensor<2x5x4xf32>
}

// -----

// gelu and its derivative use erf; fused_dense is a matmul and one pass for
// bias + activation; fused_conv2d applies bias + activation while moving the
// product to NCHW, then pools, and returns the activation too when asked.
// CHECK-LABEL: func.func @fused
// CHECK: math.erf
// CHECK: math.erf
// CHECK: math.exp
// CHECK: %[[MM:.+]] = linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<5x20xf32>, tensor<20x13xf32>)
// CHECK: linalg.generic {{.+}} ins(%[[MM]], %{{.+}} : tensor<5x13xf32>, tensor<13xf32>)
// CHECK: arith.addf
// CHECK: arith.maximumf
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<4x27xf32>, tensor<27x96xf32>)
// CHECK: %[[ACT:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<2x4x8x6xf32>)
// CHECK: math.tanh
// CHECK: %[[POOL:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<2x4x4x3xf32>)
// CHECK: arith.maximumf
// CHECK: return {{.+}}, %[[POOL]], %[[ACT]]
func.func @fused(%v: tensor<6xf32>, %x: tensor<5x20xf32>, %w: tensor<20x13xf32>, %b: tensor<13xf32>,
                 %i: tensor<2x3x8x6xf32>, %f: tensor<4x3x3x3xf32>, %c: tensor<4xf32>)
    -> (tensor<6xf32>, tensor<6xf32>, tensor<5x13xf32>, tensor<2x4x4x3xf32>, tensor<2x4x8x6xf32>) {
  %0 = kiln.gelu %v : tensor<6xf32>
  %1 = kiln.gelu_derivative %v : tensor<6xf32>
  %2 = kiln.fused_dense %x, %w, %b activation = relu : (tensor<5x20xf32>, tensor<20x13xf32>, tensor<13xf32>) -> tensor<5x13xf32>
  %3, %4 = kiln.fused_conv2d %i, %f, %c activation = tanh pool = max {strides = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>,
      pool_kernel = array<i64: 2, 2>, pool_strides = array<i64: 2, 2>, pool_padding = array<i64: 0, 0>}
      : (tensor<2x3x8x6xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> (tensor<2x4x4x3xf32>, tensor<2x4x8x6xf32>)
  return %0, %1, %2, %3, %4 : tensor<6xf32>, tensor<6xf32>, tensor<5x13xf32>, tensor<2x4x4x3xf32>, tensor<2x4x8x6xf32>
}

// -----

// The forward pass and the filter gradient gather the same im2col columns,
// each marked for kiln-share-im2col (share-im2col.mlir), which keeps one.
// CHECK-LABEL: func.func @marked_columns
// CHECK-COUNT-2: outs(%{{.+}} : tensor<3x3x2x2x4x2xf32>) attrs = {kiln.im2col}
func.func @marked_columns(%x: tensor<2x3x7x6xf32>, %w: tensor<4x3x3x2xf32>, %g: tensor<2x4x4x2xf32>) -> (tensor<2x4x4x2xf32>, tensor<4x3x3x2xf32>) {
  %0 = kiln.conv2d %x, %w strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x7x6xf32>, tensor<4x3x3x2xf32>) -> tensor<2x4x4x2xf32>
  %1 = kiln.conv2d_backward_filter %x, %g strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x7x6xf32>, tensor<2x4x4x2xf32>) -> tensor<4x3x3x2xf32>
  return %0, %1 : tensor<2x4x4x2xf32>, tensor<4x3x3x2xf32>
}

// -----

// x^T w (a dense layer's weight gradient) reads x in place (the transpose is
// left dead, for the canonicalizer).
// CHECK-LABEL: func.func @transposed_lhs
// CHECK: linalg.matmul_transpose_a ins(%arg0, %arg1 : tensor<4x3xf32>, tensor<4x5xf32>)
// GENERIC-LABEL: func.func @transposed_lhs
// GENERIC: linalg.transpose
func.func @transposed_lhs(%x: tensor<4x3xf32>, %g: tensor<4x5xf32>) -> tensor<3x5xf32> {
  %t = kiln.transpose %x perm = [1, 0] : tensor<4x3xf32> -> tensor<3x4xf32>
  %0 = kiln.matmul %t, %g : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  return %0 : tensor<3x5xf32>
}
