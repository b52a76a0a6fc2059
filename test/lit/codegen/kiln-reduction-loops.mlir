// RUN: kiln-opt --kiln-reduction-loops --split-input-file %s | FileCheck %s

// A bias gradient (reduce over n, h*w; keep c): the parallel loop outside,
// both reduction loops inside in their order, the output element loaded
// once, carried through both loops and stored once.
// CHECK-LABEL: func.func @bias_gradient
// CHECK-NOT: linalg.generic
// CHECK: scf.for %[[C:.+]] = %{{.+}} to %c3{{.*}} step
// CHECK: %[[INIT:.+]] = memref.load %arg1[%[[C]]] : memref<3xf32>
// CHECK: %[[SUM:.+]] = scf.for %[[N:.+]] = %{{.+}} to %c4{{.*}} step %{{.+}} iter_args(%[[ACC:.+]] = %[[INIT]]) -> (f32) {
// CHECK: %[[ROW:.+]] = scf.for %[[HW:.+]] = %{{.+}} to %c30{{.*}} step %{{.+}} iter_args(%[[ACC2:.+]] = %[[ACC]]) -> (f32) {
// CHECK: %[[X:.+]] = memref.load %arg0[%[[N]], %[[C]], %[[HW]]] : memref<4x3x30xf32>
// CHECK: %[[NEXT:.+]] = arith.addf %[[ACC2]], %[[X]] fastmath<reassoc,contract> : f32
// CHECK: scf.yield %[[NEXT]] : f32
// CHECK: scf.yield %[[ROW]] : f32
// CHECK: memref.store %[[SUM]], %arg1[%[[C]]] : memref<3xf32>
#in = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#c = affine_map<(d0, d1, d2) -> (d1)>
func.func @bias_gradient(%g: memref<4x3x30xf32>, %db: memref<3xf32>) {
  linalg.generic {indexing_maps = [#in, #c], iterator_types = ["reduction", "parallel", "reduction"]}
      ins(%g : memref<4x3x30xf32>) outs(%db : memref<3xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %0 = arith.addf %acc, %x fastmath<reassoc,contract> : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// linalg.index reads become the loop's induction variable.
// CHECK-LABEL: func.func @indexed
// CHECK: scf.for %[[I:.+]] = %{{.+}} to %c2{{.*}} step
// CHECK: scf.for %[[J:.+]] = %{{.+}} to %c5{{.*}} step %{{.+}} iter_args
// CHECK: arith.index_cast %[[J]] : index to i32
#in2 = affine_map<(d0, d1) -> (d0, d1)>
#out2 = affine_map<(d0, d1) -> (d0)>
func.func @indexed(%a: memref<2x5xf32>, %b: memref<2xf32>) {
  linalg.generic {indexing_maps = [#in2, #out2], iterator_types = ["parallel", "reduction"]}
      ins(%a : memref<2x5xf32>) outs(%b : memref<2xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %j = linalg.index 1 : index
    %k = arith.index_cast %j : index to i32
    %f = arith.sitofp %k : i32 to f32
    %0 = arith.mulf %x, %f : f32
    %1 = arith.addf %acc, %0 : f32
    linalg.yield %1 : f32
  }
  return
}

// -----

// Left to convert-linalg-to-loops: a window op, whose innermost loop runs
// along an output row. A sum to a scalar has no parallel loop: one load, the
// reduction loop, one store.
// CHECK-LABEL: func.func @window
// CHECK: linalg.generic
// CHECK-LABEL: func.func @total
// CHECK-NOT: linalg.generic
// CHECK: memref.load %arg1[] : memref<f32>
// CHECK: scf.for
// CHECK: memref.store %{{.+}}, %arg1[] : memref<f32>
#win = affine_map<(d0, d1, d2) -> (d1)>
#row = affine_map<(d0, d1, d2) -> (d0, d2)>
func.func @window(%w: memref<3xf32>, %y: memref<4x8xf32>) {
  linalg.generic {indexing_maps = [#win, #row], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%w : memref<3xf32>) outs(%y : memref<4x8xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %0 = arith.addf %acc, %x : f32
    linalg.yield %0 : f32
  }
  return
}
#all = affine_map<(d0) -> (d0)>
#none = affine_map<(d0) -> ()>
func.func @total(%a: memref<16xf32>, %s: memref<f32>) {
  linalg.generic {indexing_maps = [#all, #none], iterator_types = ["reduction"]}
      ins(%a : memref<16xf32>) outs(%s : memref<f32>) {
  ^bb0(%x: f32, %acc: f32):
    %0 = arith.addf %acc, %x : f32
    linalg.yield %0 : f32
  }
  return
}
