// RUN: kiln-opt --kiln-scan-precompute %s | FileCheck %s
//
// The input projection of a recurrent cell leaves the loop: x_t @ w + b for
// every step is one matmul of [B*T, I] x [I, G] (the bias, which reaches the
// time axis, gets a unit dimension there), and the loop reads its result as
// its sequence; the x it no longer reads is not passed in. h @ u reads a carry
// and stays.
// CHECK-LABEL: func.func @rnn
// CHECK: %[[FLAT:.+]] = kiln.reshape %[[X:.+]] : tensor<2x3x5xf32> -> tensor<6x5xf32>
// CHECK: %[[P:.+]] = kiln.matmul %[[FLAT]], %[[W:.+]] : (tensor<6x5xf32>, tensor<5x4xf32>) -> tensor<6x4xf32>
// CHECK: %[[PS:.+]] = kiln.reshape %[[P]] : tensor<6x4xf32> -> tensor<2x3x4xf32>
// CHECK: %[[B:.+]] = kiln.reshape %{{.+}} : tensor<2x4xf32> -> tensor<2x1x4xf32>
// CHECK: %[[PB:.+]] = kiln.add %[[PS]], %[[B]] : (tensor<2x3x4xf32>, tensor<2x1x4xf32>) -> tensor<2x3x4xf32>
// CHECK: kiln.scan length = 3 axis = 1 carries(%{{.+}} : tensor<2x4xf32>) xs(%[[PB]] : tensor<2x3x4xf32>)
// CHECK-NEXT: ^bb0(%[[H:[^:]+]]: tensor<2x4xf32>, %[[PT:[^:]+]]: tensor<2x4xf32>,
// CHECK-NOT: %[[X]]
// CHECK: %[[HU:.+]] = kiln.matmul %[[H]], %{{.+}} : (tensor<2x4xf32>, tensor<4x4xf32>)
// CHECK: kiln.add %[[PT]], %[[HU]]
func.func @rnn(%x: tensor<2x3x5xf32>, %h0: tensor<2x4xf32>, %w: tensor<5x4xf32>, %b: tensor<2x4xf32>, %u: tensor<4x4xf32>) -> tensor<2x3x4xf32> {
  %h, %hs = kiln.scan length = 3 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2x3x5xf32>) consts(%w, %b, %u : tensor<5x4xf32>, tensor<2x4xf32>, tensor<4x4xf32>) {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x5xf32>, %wc: tensor<5x4xf32>, %bc: tensor<2x4xf32>, %uc: tensor<4x4xf32>):
    %0 = kiln.matmul %xt, %wc : (tensor<2x5xf32>, tensor<5x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.add %0, %bc : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %2 = kiln.matmul %hp, %uc : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %3 = kiln.add %1, %2 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %4 = kiln.tanh %3 : tensor<2x4xf32>
    kiln.yield %4, %4 : tensor<2x4xf32>, tensor<2x4xf32>
  } -> (tensor<2x4xf32>, tensor<2x3x4xf32>)
  return %hs : tensor<2x3x4xf32>
}
