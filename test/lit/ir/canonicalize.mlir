// RUN: kiln-opt --canonicalize %s | FileCheck %s
//
// Folders: elementwise ops on splat constants fold to a constant; adding zero
// and multiplying by one fold away when the shape does not change.

// CHECK-LABEL: func.func @fold_constants
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<2.500000e-01> : tensor<f32>
// CHECK-NEXT: return %[[C]]
func.func @fold_constants() -> tensor<f32> {
  %a = kiln.constant dense<1.0> : tensor<f32>
  %b = kiln.constant dense<4.0> : tensor<f32>
  %c = kiln.constant dense<2.0> : tensor<f32>
  %0 = kiln.div %a, %b : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %1 = kiln.mul %0, %c : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %2 = kiln.sub %1, %0 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %3 = kiln.maximum %2, %a : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %4 = kiln.minimum %3, %0 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  return %4 : tensor<f32>
}

// CHECK-LABEL: func.func @identities
// CHECK-SAME: (%[[X:.+]]: tensor<3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @identities(%x: tensor<3xf32>) -> tensor<3xf32> {
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %0 = kiln.add %x, %zero : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %1 = kiln.mul %0, %one : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %2 = kiln.div %1, %one : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  return %2 : tensor<3xf32>
}

// Adding a zero that broadcasts the operand to a larger shape is not an identity.
// CHECK-LABEL: func.func @not_identity
// CHECK: kiln.add
func.func @not_identity(%x: tensor<3xf32>) -> tensor<2x3xf32> {
  %zero = kiln.constant dense<0.0> : tensor<2x3xf32>
  %0 = kiln.add %x, %zero : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @reshape_noop
// CHECK-NOT: kiln.reshape
func.func @reshape_noop(%x: tensor<3xf32>) -> tensor<3xf32> {
  %0 = kiln.reshape %x : tensor<3xf32> -> tensor<3xf32>
  return %0 : tensor<3xf32>
}

// CHECK-LABEL: func.func @reshape_chain
// CHECK-SAME: (%[[X:.+]]: tensor<6xf32>)
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[X]] : tensor<6xf32> -> tensor<3x2xf32>
// CHECK-NEXT: return %[[X]], %[[R]]
func.func @reshape_chain(%x: tensor<6xf32>) -> (tensor<6xf32>, tensor<3x2xf32>) {
  %0 = kiln.reshape %x : tensor<6xf32> -> tensor<6x1x1xf32>
  %1 = kiln.reshape %0 : tensor<6x1x1xf32> -> tensor<6xf32>
  %2 = kiln.reshape %0 : tensor<6x1x1xf32> -> tensor<3x2xf32>
  return %1, %2 : tensor<6xf32>, tensor<3x2xf32>
}


// A scan computes what is the same at every step once, before the loop (the
// transpose of %w becomes a const), stops stacking the output nobody reads, and
// stops passing the sequence %unused that its body no longer reads.
// CHECK-LABEL: func.func @scan_cleanup
// CHECK: %[[WT:.+]] = kiln.transpose %[[W:.+]] perm = [1, 0]
// CHECK: %[[R:.+]] = kiln.scan length = 3 axis = 1 carries(%{{.+}} : tensor<2x4xf32>) xs(%{{.+}} : tensor<2x3x4xf32>) consts(%[[WT]] : tensor<4x4xf32>) {
// CHECK-NEXT: ^bb0(%[[H:.+]]: tensor<2x4xf32>, %[[X:.+]]: tensor<2x4xf32>, %[[C:.+]]: tensor<4x4xf32>):
// CHECK-NOT: kiln.transpose
// CHECK: kiln.matmul %[[H]], %[[C]]
// CHECK: kiln.yield %{{.+}} : tensor<2x4xf32>
// CHECK: } -> (tensor<2x4xf32>)
// CHECK: return %[[R]]
func.func @scan_cleanup(%h0: tensor<2x4xf32>, %x: tensor<2x3x4xf32>, %unused: tensor<2x3x5xf32>, %w: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %h, %hs = kiln.scan length = 3 axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x, %unused : tensor<2x3x4xf32>, tensor<2x3x5xf32>) consts(%w : tensor<4x4xf32>) {
  ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x4xf32>, %ut: tensor<2x5xf32>, %wc: tensor<4x4xf32>):
    %t = kiln.transpose %wc perm = [1, 0] : tensor<4x4xf32> -> tensor<4x4xf32>
    %0 = kiln.matmul %hp, %t : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.add %0, %xt : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %2 = kiln.tanh %ut : tensor<2x5xf32>
    kiln.yield %1, %2 : tensor<2x4xf32>, tensor<2x5xf32>
  } -> (tensor<2x4xf32>, tensor<2x3x5xf32>)
  return %h : tensor<2x4xf32>
}

// A carry that accumulates a_t^T @ b_t (a weight's gradient) or sum(b_t) (a
// bias's) is computed after the loop from every step's rows: the loop stacks
// b_t once (a_t is a slice of %x already), the accumulators leave the carries,
// and one matmul and one reduction over [T*B] rows follow the loop.
// CHECK-LABEL: func.func @scan_accumulators
// CHECK: %[[S:.+]]:2 = kiln.scan length = 3 axis = 1 carries(%{{.+}} : tensor<2x4xf32>) xs(%[[X:.+]] : tensor<2x3x5xf32>) consts(%{{.+}} : tensor<5x4xf32>) {
// CHECK: kiln.yield %[[B:.+]], %[[B]] : tensor<2x4xf32>, tensor<2x4xf32>
// CHECK: } -> (tensor<2x4xf32>, tensor<2x3x4xf32>)
// CHECK-DAG: %[[XF:.+]] = kiln.reshape %[[X]] : tensor<2x3x5xf32> -> tensor<6x5xf32>
// CHECK-DAG: kiln.reshape %[[S]]#1 : tensor<2x3x4xf32> -> tensor<6x4xf32>
// CHECK-DAG: %[[XT:.+]] = kiln.transpose %[[XF]] perm = [1, 0]
// CHECK-DAG: %[[DW:.+]] = kiln.matmul %[[XT]], %{{.+}} : (tensor<5x6xf32>, tensor<6x4xf32>) -> tensor<5x4xf32>
// CHECK-DAG: kiln.add %[[W0:.+]], %[[DW]]
// CHECK-DAG: %[[DB:.+]] = kiln.reduce_sum %{{.+}} axes = [0] : tensor<6x4xf32> -> tensor<4xf32>
func.func @scan_accumulators(%h0: tensor<2x4xf32>, %x: tensor<2x3x5xf32>, %w: tensor<5x4xf32>, %dw0: tensor<5x4xf32>, %db0: tensor<4xf32>) -> (tensor<2x4xf32>, tensor<5x4xf32>, tensor<4xf32>) {
  %h, %dw, %db = kiln.scan length = 3 axis = 1 carries(%h0, %dw0, %db0 : tensor<2x4xf32>, tensor<5x4xf32>, tensor<4xf32>) xs(%x : tensor<2x3x5xf32>) consts(%w : tensor<5x4xf32>) {
  ^bb0(%hp: tensor<2x4xf32>, %acc: tensor<5x4xf32>, %bacc: tensor<4xf32>, %xt: tensor<2x5xf32>, %wc: tensor<5x4xf32>):
    %0 = kiln.matmul %xt, %wc : (tensor<2x5xf32>, tensor<5x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.add %0, %hp : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %2 = kiln.transpose %xt perm = [1, 0] : tensor<2x5xf32> -> tensor<5x2xf32>
    %3 = kiln.matmul %2, %1 : (tensor<5x2xf32>, tensor<2x4xf32>) -> tensor<5x4xf32>
    %4 = kiln.add %acc, %3 : (tensor<5x4xf32>, tensor<5x4xf32>) -> tensor<5x4xf32>
    %5 = kiln.reduce_sum %1 axes = [0] : tensor<2x4xf32> -> tensor<4xf32>
    %6 = kiln.add %bacc, %5 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    kiln.yield %1, %4, %6 : tensor<2x4xf32>, tensor<5x4xf32>, tensor<4xf32>
  } -> (tensor<2x4xf32>, tensor<5x4xf32>, tensor<4xf32>)
  return %h, %dw, %db : tensor<2x4xf32>, tensor<5x4xf32>, tensor<4xf32>
}
