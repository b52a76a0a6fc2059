// RUN: kiln-opt --kiln-fuse-attention="report-missed report-stats" %s -split-input-file -verify-diagnostics | FileCheck %s

// softmax(q @ transpose(k) * 0.25) @ v: one kiln.attention on q, k and v.
// CHECK-LABEL: func.func @scaled
// CHECK-SAME: (%[[Q:.+]]: tensor<2x4x8x16xf32>, %[[K:.+]]: tensor<2x4x8x16xf32>, %[[V:.+]]: tensor<2x4x8x16xf32>)
// CHECK: %[[O:.+]], %{{.+}} = kiln.attention %[[Q]], %[[K]], %[[V]] scale = 2.500000e-01
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.matmul
// CHECK: return %[[O]]
// expected-remark @below {{kiln-fuse-attention: 1 fused-attention (0 causal), 0 refused}}
module {
func.func @scaled(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = kiln.transpose %k perm = [0, 1, 3, 2] : tensor<2x4x8x16xf32> -> tensor<2x4x16x8xf32>
  %s = kiln.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = kiln.constant dense<0.25> : tensor<f32>
  %ss = kiln.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = kiln.softmax %ss axis = 3 : tensor<2x4x8x8xf32>
  %o = kiln.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}
}

// -----

// Divided by sqrt(d), with a causal mask (-inf above the diagonal), and k^T
// given directly (k is then its transpose).
// CHECK-LABEL: func.func @causal_div
// CHECK-SAME: (%[[Q:.+]]: tensor<3x3x2xf32>, %[[KT:.+]]: tensor<3x2x3xf32>, %[[V:.+]]: tensor<3x3x4xf32>)
// CHECK: %[[K:.+]] = kiln.transpose %[[KT]] perm = [0, 2, 1]
// CHECK: kiln.attention %[[Q]], %[[K]], %[[V]] causal scale = 5.000000e-01
// expected-remark @below {{kiln-fuse-attention: 1 fused-attention (1 causal), 0 refused}}
module {
func.func @causal_div(%q: tensor<3x3x2xf32>, %kt: tensor<3x2x3xf32>, %v: tensor<3x3x4xf32>) -> tensor<3x3x4xf32> {
  %s = kiln.matmul %q, %kt : (tensor<3x3x2xf32>, tensor<3x2x3xf32>) -> tensor<3x3x3xf32>
  %c = kiln.constant dense<2.0> : tensor<f32>
  %ss = kiln.div %s, %c : (tensor<3x3x3xf32>, tensor<f32>) -> tensor<3x3x3xf32>
  %mask = kiln.constant dense<[[0.0, 0xFF800000, 0xFF800000], [0.0, 0.0, 0xFF800000], [0.0, 0.0, 0.0]]> : tensor<3x3xf32>
  %sm = kiln.add %ss, %mask : (tensor<3x3x3xf32>, tensor<3x3xf32>) -> tensor<3x3x3xf32>
  %p = kiln.softmax %sm axis = 2 : tensor<3x3x3xf32>
  %o = kiln.matmul %p, %v : (tensor<3x3x3xf32>, tensor<3x3x4xf32>) -> tensor<3x3x4xf32>
  return %o : tensor<3x3x4xf32>
}
}

// -----

// Refused: the probabilities are also returned; a mask that is not causal;
// a softmax over another axis; a scale that is not a constant.
// CHECK-LABEL: func.func @refused
// CHECK-NOT: kiln.attention
// expected-remark @below {{kiln-fuse-attention: 0 fused-attention (0 causal), 4 refused}}
module {
func.func @refused(%q: tensor<3x4xf32>, %k: tensor<3x4xf32>, %v: tensor<3x4xf32>, %w: tensor<f32>) -> (tensor<3x4xf32>, tensor<3x3xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>) {
  %kt = kiln.transpose %k perm = [1, 0] : tensor<3x4xf32> -> tensor<4x3xf32>
  %s = kiln.matmul %q, %kt : (tensor<3x4xf32>, tensor<4x3xf32>) -> tensor<3x3xf32>
  // expected-remark @below {{attention not fused: the probabilities are not read by exactly one matmul with the values (p @ v)}}
  %p = kiln.softmax %s axis = 1 : tensor<3x3xf32>
  %o = kiln.matmul %p, %v : (tensor<3x3xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %s2 = kiln.matmul %q, %kt : (tensor<3x4xf32>, tensor<4x3xf32>) -> tensor<3x3xf32>
  %mask = kiln.constant dense<1.0> : tensor<3x3xf32>
  %sm = kiln.add %s2, %mask : (tensor<3x3xf32>, tensor<3x3xf32>) -> tensor<3x3xf32>
  // expected-remark @below {{attention not fused: the scores get an addition that is not a constant causal mask}}
  %p2 = kiln.softmax %sm axis = 1 : tensor<3x3xf32>
  %o2 = kiln.matmul %p2, %v : (tensor<3x3xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %s3 = kiln.matmul %q, %kt : (tensor<3x4xf32>, tensor<4x3xf32>) -> tensor<3x3xf32>
  // expected-remark @below {{attention not fused: the softmax is not over the last axis of [..., queries, keys] scores}}
  %p3 = kiln.softmax %s3 axis = 0 : tensor<3x3xf32>
  %o3 = kiln.matmul %p3, %v : (tensor<3x3xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %s4 = kiln.matmul %q, %kt : (tensor<3x4xf32>, tensor<4x3xf32>) -> tensor<3x3xf32>
  %ss4 = kiln.mul %s4, %w : (tensor<3x3xf32>, tensor<f32>) -> tensor<3x3xf32>
  // expected-remark @below {{attention not fused: the scores are multiplied by something other than a positive scalar constant}}
  %p4 = kiln.softmax %ss4 axis = 1 : tensor<3x3xf32>
  %o4 = kiln.matmul %p4, %v : (tensor<3x3xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  return %o, %p, %o2, %o3, %o4 : tensor<3x4xf32>, tensor<3x3xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>
}
}
