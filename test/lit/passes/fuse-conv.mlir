// RUN: kiln-opt --kiln-fuse-conv="report-missed=true" --split-input-file -verify-diagnostics %s | FileCheck %s
// RUN: kiln-opt --kiln-fuse-conv="report-stats=true" %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=STATS
//
// kiln-fuse-conv: conv2d + bias + activation + pool and matmul + bias +
// activation become single fused ops; what must stay visible stays.

// CHECK-LABEL: func.func @conv_bias_relu_pool
// CHECK-SAME: (%[[X:.+]]: tensor<2x1x8x8xf32>, %[[W:.+]]: tensor<4x1x3x3xf32>, %[[B:.+]]: tensor<4xf32>)
// CHECK: %[[F:.+]] = kiln.fused_conv2d %[[X]], %[[W]], %[[B]] activation = relu pool = max {dilation = array<i64: 1, 1>, padding = array<i64: 1, 1>, pool_kernel = array<i64: 2, 2>, pool_padding = array<i64: 0, 0>, pool_strides = array<i64: 2, 2>, strides = array<i64: 1, 1>} : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>, tensor<4xf32>) -> tensor<2x4x4x4xf32>
// CHECK-NOT: kiln.conv2d
// CHECK-NOT: kiln.add
// CHECK-NOT: kiln.relu
// CHECK-NOT: kiln.max_pool2d
// CHECK: return %[[F]]
func.func @conv_bias_relu_pool(%x: tensor<2x1x8x8xf32>, %w: tensor<4x1x3x3xf32>, %b: tensor<4xf32>) -> tensor<2x4x4x4xf32> {
  %c = kiln.conv2d %x, %w strides = [1, 1] padding = [1, 1] dilation = [1, 1] : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>) -> tensor<2x4x8x8xf32>
  %b3 = kiln.reshape %b : tensor<4xf32> -> tensor<4x1x1xf32>
  %a = kiln.add %c, %b3 : (tensor<2x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<2x4x8x8xf32>
  %r = kiln.relu %a : tensor<2x4x8x8xf32>
  %p = kiln.max_pool2d %r kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<2x4x8x8xf32> -> tensor<2x4x4x4xf32>
  return %p : tensor<2x4x4x4xf32>
}

// -----

// The backward pass reads the activation before the pool (max pooling's
// gradient) and the relu mask: the fused op returns the activation too, and the
// mask greater(a, 0) is moved onto relu(a) so that `a` stays internal.
// CHECK-LABEL: func.func @saves_what_backward_needs
// CHECK: %[[P:[^,]+]], %[[A:.+]] = kiln.fused_conv2d
// CHECK-SAME: -> (tensor<2x4x4x4xf32>, tensor<2x4x8x8xf32>)
// CHECK: kiln.max_pool2d_backward %[[A]], %[[P]]
// CHECK: kiln.greater %[[A]]
func.func @saves_what_backward_needs(%x: tensor<2x1x8x8xf32>, %w: tensor<4x1x3x3xf32>, %b: tensor<4x1x1xf32>, %g: tensor<2x4x4x4xf32>) -> (tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>) {
  %c = kiln.conv2d %x, %w strides = [1, 1] padding = [1, 1] dilation = [1, 1] : (tensor<2x1x8x8xf32>, tensor<4x1x3x3xf32>) -> tensor<2x4x8x8xf32>
  %a = kiln.add %c, %b : (tensor<2x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<2x4x8x8xf32>
  %r = kiln.relu %a : tensor<2x4x8x8xf32>
  %p = kiln.max_pool2d %r kernel = [2, 2] strides = [2, 2] padding = [0, 0] : tensor<2x4x8x8xf32> -> tensor<2x4x4x4xf32>
  %dr = kiln.max_pool2d_backward %r, %p, %g kernel = [2, 2] strides = [2, 2] padding = [0, 0] : (tensor<2x4x8x8xf32>, tensor<2x4x4x4xf32>, tensor<2x4x4x4xf32>) -> tensor<2x4x8x8xf32>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %mask = kiln.greater %a, %zero : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %da = kiln.mul %dr, %mask : (tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  return %da, %dr : tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>
}

// -----

// Negative: the biased pre-activation is read elsewhere (here, returned), so
// only the convolution and its bias fuse; the add result must remain.
// CHECK-LABEL: func.func @preactivation_escapes
// CHECK: %[[F:.+]] = kiln.fused_conv2d {{.*}} activation = none pool = none {
// CHECK: kiln.relu %[[F]]
func.func @preactivation_escapes(%x: tensor<1x1x4x4xf32>, %w: tensor<2x1x3x3xf32>, %b: tensor<1x2x1x1xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
  %c = kiln.conv2d %x, %w strides = [1, 1] padding = [0, 0] dilation = [1, 1] : (tensor<1x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x2x2xf32>
  // expected-remark @below {{not fused: the biased result has other users (the backward pass reads it)}}
  %a = kiln.add %c, %b : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x2x2xf32>
  %r = kiln.relu %a : tensor<1x2x2x2xf32>
  return %r, %a : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
}

// -----

// Negative: a bias that is not per-channel is not absorbed.
// CHECK-LABEL: func.func @not_a_channel_bias
// CHECK: kiln.conv2d
// CHECK: kiln.add
func.func @not_a_channel_bias(%x: tensor<1x1x4x4xf32>, %w: tensor<2x1x3x3xf32>, %b: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %c = kiln.conv2d %x, %w strides = [1, 1] padding = [0, 0] dilation = [1, 1] : (tensor<1x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x2x2xf32>
  // expected-remark @below {{not fused: the add's other operand is not a per-channel bias of shape [2, 1, 1]}}
  %a = kiln.add %c, %b : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %a : tensor<1x2x2x2xf32>
}

// -----

// Dense layers: matmul + bias + activation.
// CHECK-LABEL: func.func @dense
// CHECK: %[[D:.+]] = kiln.fused_dense %{{.+}}, %{{.+}}, %{{.+}} activation = tanh : (tensor<8x16xf32>, tensor<16x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
// CHECK-NOT: kiln.matmul
// CHECK: return %[[D]]
func.func @dense(%x: tensor<8x16xf32>, %w: tensor<16x4xf32>, %b: tensor<4xf32>) -> tensor<8x4xf32> {
  %m = kiln.matmul %x, %w : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>
  %a = kiln.add %m, %b : (tensor<8x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  %t = kiln.tanh %a : tensor<8x4xf32>
  return %t : tensor<8x4xf32>
}

// -----

// Negative: the product is read twice.
// CHECK-LABEL: func.func @product_escapes
// CHECK: kiln.matmul
func.func @product_escapes(%x: tensor<8x16xf32>, %w: tensor<16x4xf32>, %b: tensor<4xf32>) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  // expected-remark @below {{not fused: the product has other users}}
  %m = kiln.matmul %x, %w : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>
  %a = kiln.add %m, %b : (tensor<8x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  return %a, %m : tensor<8x4xf32>, tensor<8x4xf32>
}

// Without --split-input-file, the whole file is one module:
// STATS: remark: kiln-fuse-conv: 3 fused-conv (3 with bias, 2 with activation, 2 with pool), 1 fused-dense, 1 relu-mask-rewrites, 3 refused
