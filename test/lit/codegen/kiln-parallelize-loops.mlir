// RUN: kiln-opt --kiln-parallelize-loops="min-iterations=64" --split-input-file %s | FileCheck %s
// RUN: kiln-opt --kiln-parallelize-loops --split-input-file %s | FileCheck %s --check-prefix=SMALL

// An elementwise op: its first loop becomes an scf.parallel of one row each;
// the op runs on the row's subviews.
// CHECK-LABEL: func.func @elementwise
// CHECK: scf.parallel (%[[I:.+]]) = (%{{.+}}) to (%c16) step (%{{.+}}) {
// CHECK: %[[A:.+]] = memref.subview %arg0[%[[I]], 0] [1, 32] [1, 1]
// CHECK: %[[B:.+]] = memref.subview %arg1[%[[I]], 0] [1, 32] [1, 1]
// CHECK: linalg.generic {{.+}} ins(%[[A]] : memref<1x32xf32, strided<[32, 1], offset: ?>>) outs(%[[B]] : memref<1x32xf32, strided<[32, 1], offset: ?>>)
// CHECK: arith.mulf
// SMALL-LABEL: func.func @elementwise
// SMALL-NOT: scf.parallel
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @elementwise(%a: memref<16x32xf32>, %b: memref<16x32xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<16x32xf32>) outs(%b : memref<16x32xf32>) {
  ^bb0(%x: f32, %y: f32):
    %0 = arith.mulf %x, %x : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// A reduction over the first and last loops (a bias gradient): the outermost
// parallel loop is split, and linalg.index reads see the tile's offset.
// CHECK-LABEL: func.func @reduction
// CHECK: scf.parallel (%[[C:.+]]) = (%{{.+}}) to (%c8) step (%{{.+}}) {
// CHECK: linalg.generic {{.+}} iterator_types = ["reduction", "parallel", "reduction"]
// CHECK: linalg.index 1
// CHECK: affine.apply {{.+}}(%{{.+}}, %[[C]])
#in = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#out = affine_map<(d0, d1, d2) -> (d1)>
func.func @reduction(%a: memref<4x8x16xf32>, %b: memref<8xf32>) {
  linalg.generic {indexing_maps = [#in, #out], iterator_types = ["reduction", "parallel", "reduction"]}
      ins(%a : memref<4x8x16xf32>) outs(%b : memref<8xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %i = linalg.index 1 : index
    %c = arith.index_cast %i : index to i32
    %f = arith.sitofp %c : i32 to f32
    %0 = arith.mulf %x, %f : f32
    %1 = arith.addf %acc, %0 : f32
    linalg.yield %1 : f32
  }
  return
}

// -----

// No parallel loop with enough trips (min-trips 4): left alone.
// CHECK-LABEL: func.func @full_reduction
// CHECK-NOT: scf.parallel
// CHECK: linalg.generic
#in2 = affine_map<(d0, d1) -> (d0, d1)>
#out2 = affine_map<(d0, d1) -> (d0)>
func.func @full_reduction(%a: memref<2x256xf32>, %b: memref<2xf32>) {
  linalg.generic {indexing_maps = [#in2, #out2], iterator_types = ["parallel", "reduction"]}
      ins(%a : memref<2x256xf32>) outs(%b : memref<2xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %0 = arith.addf %acc, %x : f32
    linalg.yield %0 : f32
  }
  return
}
