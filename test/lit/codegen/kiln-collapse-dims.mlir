// RUN: kiln-opt --kiln-collapse-dims --split-input-file %s | FileCheck %s

// An elementwise op on contiguous buffers: one loop over all elements.
// CHECK-LABEL: func.func @elementwise
// CHECK: %[[A:.+]] = memref.collapse_shape %arg0 {{\[}}[0, 1, 2, 3]] : memref<4x3x5x6xf32> into memref<360xf32>
// CHECK: %[[B:.+]] = memref.collapse_shape %arg1 {{\[}}[0, 1, 2, 3]] : memref<4x3x5x6xf32> into memref<360xf32>
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel"]} ins(%[[A]] : memref<360xf32>) outs(%[[B]] : memref<360xf32>)
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @elementwise(%a: memref<4x3x5x6xf32>, %b: memref<4x3x5x6xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%a : memref<4x3x5x6xf32>) outs(%b : memref<4x3x5x6xf32>) {
  ^bb0(%x: f32, %y: f32):
    %0 = arith.mulf %x, %x : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// [O, N, H, W] -> [N, O, H, W] with a bias over O (a convolution epilogue):
// only H and W are contiguous in every operand.
// CHECK-LABEL: func.func @transpose_bias
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel"]} ins(%{{.+}}, %arg1 : memref<3x4x30xf32>, memref<3xf32>) outs(%{{.+}} : memref<4x3x30xf32>)
#onhw = affine_map<(d0, d1, d2, d3) -> (d1, d0, d2, d3)>
#o = affine_map<(d0, d1, d2, d3) -> (d1)>
#nohw = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @transpose_bias(%y: memref<3x4x5x6xf32>, %bias: memref<3xf32>, %out: memref<4x3x5x6xf32>) {
  linalg.generic {indexing_maps = [#onhw, #o, #nohw], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%y, %bias : memref<3x4x5x6xf32>, memref<3xf32>) outs(%out : memref<4x3x5x6xf32>) {
  ^bb0(%x: f32, %b: f32, %o: f32):
    %0 = arith.addf %x, %b : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// A reduction over N, H, W (a bias gradient): H and W merge, N and O do not
// (different iterator types).
// CHECK-LABEL: func.func @bias_gradient
// CHECK: linalg.generic {{.+}} iterator_types = ["reduction", "parallel", "reduction"]} ins(%{{.+}} : memref<4x3x30xf32>) outs(%arg1 : memref<3xf32>)
#in = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#c = affine_map<(d0, d1, d2, d3) -> (d1)>
func.func @bias_gradient(%g: memref<4x3x5x6xf32>, %db: memref<3xf32>) {
  linalg.generic {indexing_maps = [#in, #c], iterator_types = ["reduction", "parallel", "reduction", "reduction"]}
      ins(%g : memref<4x3x5x6xf32>) outs(%db : memref<3xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %0 = arith.addf %acc, %x : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// Left alone: a strided operand (a subview) and a body that reads indices.
// CHECK-LABEL: func.func @strided
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]}
// CHECK-LABEL: func.func @indexed
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]}
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @strided(%a: memref<4x8xf32>, %b: memref<4x4xf32>) {
  %s = memref.subview %a[0, 0] [4, 4] [1, 1] : memref<4x8xf32> to memref<4x4xf32, strided<[8, 1]>>
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%s : memref<4x4xf32, strided<[8, 1]>>) outs(%b : memref<4x4xf32>) {
  ^bb0(%x: f32, %y: f32):
    linalg.yield %x : f32
  }
  return
}
func.func @indexed(%b: memref<4x4xf32>) {
  linalg.generic {indexing_maps = [#id2], iterator_types = ["parallel", "parallel"]}
      outs(%b : memref<4x4xf32>) {
  ^bb0(%y: f32):
    %i = linalg.index 1 : index
    %c = arith.index_cast %i : index to i32
    %f = arith.sitofp %c : i32 to f32
    linalg.yield %f : f32
  }
  return
}
