// RUN: kiln-opt --kiln-vectorize-transpose="vector-bits=256" --split-input-file %s | FileCheck %s
// RUN: kiln-opt --kiln-vectorize-transpose="vector-bits=512 parallel-min-elements=64" --split-input-file %s | FileCheck %s --check-prefix=AVX512

// NCHW -> NHWC: a batch of [C, H*W] -> [H*W, C] transposes on collapsed
// views, in 8 x 8 tiles of row vectors transposed by shuffles; the 4 columns
// past the last full tile (20 = 2 * 8 + 4) are copied element by element.
// CHECK-LABEL: func.func @nchw_to_nhwc
// CHECK-NOT: linalg.transpose
// CHECK-DAG: %[[IN:.+]] = memref.collapse_shape %arg0 {{\[}}[0], [1], [2, 3]] : memref<2x8x4x5xf32> into memref<2x8x20xf32>
// CHECK-DAG: %[[OUT:.+]] = memref.collapse_shape %arg1 {{\[}}[0], [1, 2], [3]] : memref<2x4x5x8xf32> into memref<2x20x8xf32>
// CHECK: scf.for %[[B:.+]] = %{{.+}} to %c2{{.*}} step
// CHECK: scf.for %[[C0:.+]] = %{{.+}} to %c16{{.*}} step %c8
// CHECK: scf.for %[[R0:.+]] = %{{.+}} to %c8{{.*}} step %c8
// CHECK-COUNT-8: vector.load %[[IN]][%[[B]], %{{.+}}, %[[C0]]] : memref<2x8x20xf32>, vector<8xf32>
// CHECK: vector.shuffle
// CHECK-NOT: vector.transpose
// CHECK-COUNT-8: vector.store %{{.+}}, %[[OUT]][%[[B]], %{{.+}}, %[[R0]]] : memref<2x20x8xf32>, vector<8xf32>
// CHECK: memref.load %[[IN]]
// CHECK: memref.store %{{.+}}, %[[OUT]]
// AVX512-LABEL: func.func @nchw_to_nhwc
// AVX512: scf.parallel (%{{.+}}) = (%{{.+}}) to (%c2{{.*}}) step
func.func @nchw_to_nhwc(%x: memref<2x8x4x5xf32>, %y: memref<2x4x5x8xf32>) {
  linalg.transpose ins(%x : memref<2x8x4x5xf32>) outs(%y : memref<2x4x5x8xf32>) permutation = [0, 2, 3, 1]
  return
}

// -----

// A 2-D transpose with no batch; 512-bit vectors: 16 x 16 tiles.
// AVX512-LABEL: func.func @matrix
// AVX512-COUNT-16: vector.load %arg0{{.+}} : memref<32x16xf32>, vector<16xf32>
// AVX512-COUNT-16: vector.store %{{.+}}, %arg1{{.+}} : memref<16x32xf32>, vector<16xf32>
func.func @matrix(%x: memref<32x16xf32>, %y: memref<16x32xf32>) {
  linalg.transpose ins(%x : memref<32x16xf32>) outs(%y : memref<16x32xf32>) permutation = [1, 0]
  return
}

// -----

// The last dimension stays last (rows are copied whole): left alone.
// CHECK-LABEL: func.func @rows
// CHECK: linalg.transpose
func.func @rows(%x: memref<2x3x4xf32>, %y: memref<3x2x4xf32>) {
  linalg.transpose ins(%x : memref<2x3x4xf32>) outs(%y : memref<3x2x4xf32>) permutation = [1, 0, 2]
  return
}
