// RUN: kiln-opt --kiln-vectorize-matmul=vector-bits=256 --split-input-file %s | FileCheck %s
// RUN: kiln-opt --kiln-vectorize-matmul="k-block=8 vector-bits=256" --split-input-file %s | FileCheck %s --check-prefix=KBLOCK
// RUN: kiln-opt --kiln-vectorize-matmul="vector-bits=256 parallel=false" --split-input-file %s | FileCheck %s --check-prefix=SERIAL

// 6x20 += 6x20 * 20x20 in f32 (8 lanes, 4x2-vector tiles): one full column
// tile of 16 (rows 0-3 in a loop, rows 4-5 as a 2-row tile), then the last 4
// columns with a constant lane mask.
// CHECK-LABEL: func.func @f32_edges
// CHECK-SAME: (%[[A:.+]]: memref<6x20xf32>, %[[B:.+]]: memref<20x20xf32>, %[[C:.+]]: memref<6x20xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: scf.for %[[J:.+]] = %{{.+}} to %c16 step %{{.+}} {
// CHECK: scf.for %[[I:.+]] = %{{.+}} to %c4{{.*}} step %{{.+}} {
// CHECK-COUNT-8: vector.load %[[C]]
// CHECK: %[[ACC:.+]]:8 = scf.for %[[K:.+]] = %{{.+}} to %c20 step %{{.+}} iter_args({{.+}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>) {
// CHECK-COUNT-2: vector.load %[[B]][%[[K]], %{{.+}}] : memref<20x20xf32>, vector<8xf32>
// CHECK: %[[AIK:.+]] = memref.load %[[A]][%[[I]], %[[K]]] : memref<6x20xf32>
// CHECK: %[[SPLAT:.+]] = vector.broadcast %[[AIK]] : f32 to vector<8xf32>
// CHECK: vector.fma %[[SPLAT]]
// CHECK-COUNT-7: vector.fma
// CHECK: scf.yield
// CHECK-COUNT-8: vector.store %[[ACC]]
// The 2-row tile.
// CHECK: scf.for {{.+}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// The masked column tile.
// CHECK: %[[MASK:.+]] = vector.constant_mask [4] : vector<8xi1>
// CHECK: vector.maskedload %[[C]][%{{.+}}, %c16{{.*}}], %[[MASK]]
// CHECK: vector.maskedload %[[B]]
// CHECK: vector.maskedstore %[[C]]
// CHECK: vector.constant_mask [4] : vector<8xi1>
// CHECK: scf.for {{.+}} -> (vector<8xf32>, vector<8xf32>)
// CHECK: return
// Blocks of 8 values of k: an outer loop over k, inner loops up to min(k0 + 8, 20).
// KBLOCK-LABEL: func.func @f32_edges
// KBLOCK: scf.for %[[K0:.+]] = %{{.+}} to %c20 step %c8
// KBLOCK: %[[END:.+]] = arith.addi %[[K0]], %c8
// KBLOCK: %[[KHI:.+]] = arith.minsi %[[END]], %c20
// KBLOCK: scf.for %{{.+}} = %[[K0]] to %[[KHI]] step
func.func @f32_edges(%a: memref<6x20xf32>, %b: memref<20x20xf32>, %c: memref<6x20xf32>) {
  linalg.matmul ins(%a, %b : memref<6x20xf32>, memref<20x20xf32>) outs(%c : memref<6x20xf32>)
  return
}

// -----

// f64: 4 lanes; 10 columns = one tile of 8, then 2 masked lanes.
// CHECK-LABEL: func.func @f64
// CHECK: vector.fma {{.+}} : vector<4xf64>
// CHECK: vector.constant_mask [2] : vector<4xi1>
func.func @f64(%a: memref<4x3xf64>, %b: memref<3x10xf64>, %c: memref<4x10xf64>) {
  linalg.matmul ins(%a, %b : memref<4x3xf64>, memref<3x10xf64>) outs(%c : memref<4x10xf64>)
  return
}

// -----

// Tensors (before bufferization) and columns with a stride are left alone.
// CHECK-LABEL: func.func @not_vectorized
// CHECK: linalg.matmul
// CHECK: linalg.matmul
// CHECK-NOT: vector.
func.func @not_vectorized(%a: memref<4x3xf32>, %b: memref<3x8xf32, strided<[16, 2]>>, %c: memref<4x8xf32>,
                          %t: tensor<4x3xf32>, %u: tensor<3x8xf32>, %v: tensor<4x8xf32>) -> tensor<4x8xf32> {
  linalg.matmul ins(%a, %b : memref<4x3xf32>, memref<3x8xf32, strided<[16, 2]>>) outs(%c : memref<4x8xf32>)
  %r = linalg.matmul ins(%t, %u : tensor<4x3xf32>, tensor<3x8xf32>) outs(%v : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// -----

// 2 * 64 * 128 * 256 = 4.2 MFLOP, over the default parallel-min-flops: the 8
// column tiles of 16 run as an scf.parallel loop, each with its own row
// tiles and k loop (k blocks inside, with KBLOCK). Without `parallel`, the
// serial nest.
// CHECK-LABEL: func.func @parallel_columns
// CHECK: scf.parallel (%[[J:.+]]) = (%{{.+}}) to (%c128) step (%c16) {
// CHECK: scf.for %[[I:.+]] = %{{.+}} to %c64{{.*}} step %c4
// CHECK: scf.for {{.+}} = %{{.+}} to %c256{{.*}} step
// CHECK: vector.fma
// CHECK: scf.reduce
// KBLOCK-LABEL: func.func @parallel_columns
// KBLOCK: scf.parallel (%{{.+}}) = (%{{.+}}) to (%c128) step (%c16) {
// KBLOCK: scf.for %{{.+}} = %{{.+}} to %c256{{.*}} step %c8
// SERIAL-LABEL: func.func @parallel_columns
// SERIAL-NOT: scf.parallel
// SERIAL: return
func.func @parallel_columns(%a: memref<64x256xf32>, %b: memref<256x128xf32>, %c: memref<64x128xf32>) {
  linalg.matmul ins(%a, %b : memref<64x256xf32>, memref<256x128xf32>) outs(%c : memref<64x128xf32>)
  return
}

// -----

// One column tile but 16 row tiles of 4 (plus 2 rows): the row tiles run in
// parallel, the last 2 rows after them.
// CHECK-LABEL: func.func @parallel_rows
// CHECK: scf.parallel (%[[I:.+]]) = (%{{.+}}) to (%c64) step (%c4) {
// CHECK: scf.for {{.+}} = %{{.+}} to %c16{{.*}} step %c16{{.*}} {
// CHECK: scf.reduce
// CHECK: scf.for {{.+}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: return
// SERIAL-LABEL: func.func @parallel_rows
// SERIAL-NOT: scf.parallel
// SERIAL: return
func.func @parallel_rows(%a: memref<66x2048xf32>, %b: memref<2048x16xf32>, %c: memref<66x16xf32>) {
  linalg.matmul ins(%a, %b : memref<66x2048xf32>, memref<2048x16xf32>) outs(%c : memref<66x16xf32>)
  return
}

// -----

// C zero-filled right before the product: the fill is folded away, the first
// k block (peeled off the k-block loop) starts from zero vectors instead of
// loading C, and the later blocks load and store C as usual.
// KBLOCK-LABEL: func.func @zero_filled
// KBLOCK-NOT: linalg.fill
// KBLOCK: %[[ZERO:.+]] = arith.constant dense<0.000000e+00> : vector<8xf32>
// KBLOCK-NOT: vector.load %arg2
// KBLOCK: scf.for {{.+}} = %{{.+}} to %c8{{.*}} step %c1{{.*}} iter_args(%{{.+}} = %[[ZERO]], %{{.+}} = %[[ZERO]],
// KBLOCK: vector.store
// KBLOCK: scf.for %[[K0:.+]] = %c8{{.*}} to %c24{{.*}} step %c8
// KBLOCK: vector.load %arg2
// A nonzero fill stays.
// KBLOCK-LABEL: func.func @one_filled
// KBLOCK: linalg.fill
func.func @zero_filled(%a: memref<4x24xf32>, %b: memref<24x16xf32>, %c: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<4x16xf32>)
  linalg.matmul ins(%a, %b : memref<4x24xf32>, memref<24x16xf32>) outs(%c : memref<4x16xf32>)
  return
}
func.func @one_filled(%a: memref<4x24xf32>, %b: memref<24x16xf32>, %c: memref<4x16xf32>) {
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%one : f32) outs(%c : memref<4x16xf32>)
  linalg.matmul ins(%a, %b : memref<4x24xf32>, memref<24x16xf32>) outs(%c : memref<4x16xf32>)
  return
}

// -----

// 16 row tiles share each column tile: the tile's block of B is first packed
// into a contiguous stack buffer (rows of B 4 KiB apart would share one L1
// set), masked past the last column and zero-filled there, and the row tiles
// read the packed copy without masks.
// SERIAL-LABEL: func.func @packed
// SERIAL: %[[PACKED:.+]] = memref.alloca() {alignment = 64 : i64} : memref<8x16xf32>
// SERIAL: scf.for %[[K:.+]] = %{{.+}} to %c8{{.*}} step %{{.+}} {
// SERIAL: %[[ROW:.+]] = arith.subi %[[K]], %{{.+}} : index
// SERIAL: %[[V:.+]] = vector.load %arg1[%[[K]], %{{.+}}] : memref<8x1020xf32>, vector<8xf32>
// SERIAL: vector.store %[[V]], %[[PACKED]][%[[ROW]], %{{.+}}]
// SERIAL: vector.load %[[PACKED]]
// SERIAL: vector.maskedload %arg1
// SERIAL: vector.store %{{.+}}, %[[PACKED]]
func.func @packed(%a: memref<64x8xf32>, %b: memref<8x1020xf32>, %c: memref<64x1020xf32>) {
  linalg.matmul ins(%a, %b : memref<64x8xf32>, memref<8x1020xf32>) outs(%c : memref<64x1020xf32>)
  return
}

// -----

// The same matmul inside a loop (a scan's step) is not packed: the stack
// buffer would be allocated again at every iteration and never given back.
// SERIAL-LABEL: func.func @packed_in_loop
// SERIAL-NOT: memref.alloca
// SERIAL: vector.fma
// SERIAL-NOT: memref.alloca
// SERIAL: return
func.func @packed_in_loop(%a: memref<64x8xf32>, %b: memref<8x1020xf32>, %c: memref<64x1020xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c100 = arith.constant 100 : index
  scf.for %i = %c0 to %c100 step %c1 {
    linalg.matmul ins(%a, %b : memref<64x8xf32>, memref<8x1020xf32>) outs(%c : memref<64x1020xf32>)
  }
  return
}

// -----

// matmul_transpose_a: A is stored [k, m]; the kernel broadcasts A[k, i + r].
// CHECK-LABEL: func.func @transpose_a
// CHECK-NOT: linalg.matmul_transpose_a
// CHECK: scf.for %[[K:.+]] = %{{.+}} to %c12{{.*}} step %{{.+}} iter_args
// CHECK: memref.load %arg0[%[[K]], %{{.+}}] : memref<12x4xf32>
// CHECK: vector.fma
func.func @transpose_a(%a: memref<12x4xf32>, %b: memref<12x16xf32>, %c: memref<4x16xf32>) {
  linalg.matmul_transpose_a ins(%a, %b : memref<12x4xf32>, memref<12x16xf32>) outs(%c : memref<4x16xf32>)
  return
}

// -----

// linalg.batch_matmul: the kernel on each matrix's rank-reduced view; a large
// batch splits over threads by matrix (2 * 8 * 64^3 flops), serially inside.
// CHECK-LABEL: func.func @batched
// CHECK-NOT: linalg.batch_matmul
// CHECK: scf.parallel (%[[I:.+]]) = (%c0{{.*}}) to (%c8{{.*}}) step (%c1{{.*}}) {
// CHECK: memref.subview %{{.+}}[%[[I]], 0, 0] [1, 64, 64] [1, 1, 1] : memref<8x64x64xf32> to memref<64x64xf32, strided<[64, 1], offset: ?>>
// CHECK-NOT: scf.parallel
// CHECK: vector.fma
// SERIAL-LABEL: func.func @batched
// SERIAL-NOT: scf.parallel
// SERIAL: scf.for
// SERIAL: vector.fma
func.func @batched(%a: memref<8x64x64xf32>, %b: memref<8x64x64xf32>, %c: memref<8x64x64xf32>) {
  linalg.batch_matmul ins(%a, %b : memref<8x64x64xf32>, memref<8x64x64xf32>) outs(%c : memref<8x64x64xf32>)
  return
}
