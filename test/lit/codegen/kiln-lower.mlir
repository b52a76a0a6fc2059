// RUN: kiln-opt --kiln-lower %s | FileCheck %s
// RUN: kiln-opt --kiln-lower="fast-matmul=0 fuse-elementwise=0" %s | FileCheck %s
// RUN: kiln-opt --kiln-lower="stop-after=linalg" %s | FileCheck %s --check-prefix=LINALG
// RUN: kiln-opt --kiln-lower="stop-after=bufferized" %s | FileCheck %s --check-prefix=BUF

// The whole pipeline (codegen/Pipeline.cpp) on a small train step and
// predict: LLVM dialect only, the ABI functions (one wrapper per entry, the
// entry table, the manifest), everything else internal, no MLIR runtime
// helpers.
// CHECK-NOT: kiln.
// CHECK-NOT: linalg.
// CHECK-NOT: memref.
// CHECK-NOT: bufferization.
// CHECK-NOT: llvm.func @memrefCopy
// CHECK-DAG: llvm.func internal @train_step(%{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr)
// CHECK-DAG: llvm.func internal @predict(%{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr)
// CHECK-DAG: llvm.func @kiln_train_step(%{{.+}}: !llvm.ptr)
// CHECK-NOT: llvm.func @kiln_eval_step
// CHECK-DAG: llvm.func @kiln_entries() -> !llvm.ptr
// CHECK-DAG: llvm.func @kiln_predict(%{{.+}}: !llvm.ptr)
// CHECK-DAG: llvm.func @kiln_manifest() -> !llvm.ptr
// CHECK-DAG: llvm.mlir.global internal constant @__kiln_manifest("kiln-manifest 2\0Amodel tiny\0Aparam w f32 8x4 glorot_uniform 8 4\0Aparam b f32 4 zeros\0Ainput x f32 2x8\0Ainput label i32 2\0Aoutput cls i32 2\0Aentry train_step train\0Aarg param w\0Aarg param b\0Aarg input x\0Aarg input label\0Aarg hyper\0Aarg loss\0Aentry predict infer\0Aarg param w\0Aarg param b\0Aarg input x\0Aarg output cls\0A\00")

// LINALG: kiln.manifest = "kiln-manifest 2
// LINALG-NOT: = kiln.
// LINALG-NOT: kiln.param @
// LINALG: func.func @train_step(%{{.+}}: memref<8x4xf32> {kiln.param = "w"}, %{{.+}}: memref<4xf32> {kiln.param = "b"}, %{{.+}}: memref<2x8xf32> {kiln.input = "x"}, %{{.+}}: memref<2xi32> {kiln.input = "label"}, %{{.+}}: memref<4xf32> {kiln.hyper}, %{{.+}}: memref<f32> {kiln.loss})
// LINALG: linalg.matmul
// LINALG: bufferization.materialize_in_destination

// The updated parameters are computed in the caller's buffers: no copy back.
// BUF-LABEL: func.func @train_step
// BUF-SAME: (%[[W:.+]]: memref<8x4xf32> {kiln.param = "w"}, %[[B:.+]]: memref<4xf32> {kiln.param = "b"}
// BUF-NOT: bufferization.
// BUF-NOT: memref.copy
// BUF: linalg.generic {{.+}} outs(%[[W]] : memref<8x4xf32>)
// BUF: return
// BUF-LABEL: func.func @predict
module attributes {kiln.model = "tiny"} {
  kiln.param @w : tensor<8x4xf32> = glorot_uniform(8.0, 4.0)
  kiln.param @b : tensor<4xf32> = zeros
  func.func @train_step(%w: tensor<8x4xf32> {kiln.param = "w"}, %b: tensor<4xf32> {kiln.param = "b"},
                        %x: tensor<2x8xf32> {kiln.input = "x"}, %label: tensor<2xi32> {kiln.input = "label"},
                        %h: tensor<4xf32> {kiln.hyper})
      -> (tensor<8x4xf32> {kiln.param = "w"}, tensor<4xf32> {kiln.param = "b"}, tensor<f32> {kiln.loss}) {
    %0 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.add %0, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    %loss = kiln.cross_entropy %1, %label : (tensor<2x4xf32>, tensor<2xi32>) -> tensor<f32>
    %p = kiln.softmax %1 axis = 1 : tensor<2x4xf32>
    %y = kiln.one_hot %label : tensor<2xi32> -> tensor<2x4xf32>
    %d = kiln.sub %p, %y : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %xt = kiln.transpose %x perm = [1, 0] : tensor<2x8xf32> -> tensor<8x2xf32>
    %gw = kiln.matmul %xt, %d : (tensor<8x2xf32>, tensor<2x4xf32>) -> tensor<8x4xf32>
    %gb = kiln.reduce_sum %d axes = [0] : tensor<2x4xf32> -> tensor<4xf32>
    %nw = kiln.sgd_update %w, %gw, %h {weight_decay = 0.0 : f64} : tensor<8x4xf32>, tensor<4xf32>
    %nb = kiln.sgd_update %b, %gb, %h {weight_decay = 0.0 : f64} : tensor<4xf32>, tensor<4xf32>
    return %nw, %nb, %loss : tensor<8x4xf32>, tensor<4xf32>, tensor<f32>
  }
  func.func @predict(%w: tensor<8x4xf32> {kiln.param = "w"}, %b: tensor<4xf32> {kiln.param = "b"},
                     %x: tensor<2x8xf32> {kiln.input = "x"}) -> (tensor<2xi32> {kiln.output = "cls"}) {
    %0 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.add %0, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    %c = kiln.argmax %1 axis = 1 : tensor<2x4xf32> -> tensor<2xi32>
    return %c : tensor<2xi32>
  }
}
