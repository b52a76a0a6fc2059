// RUN: kiln-opt --kiln-noalias-kernels --split-input-file %s | FileCheck %s

// Two views of the arena with disjoint byte ranges, and an entry argument:
// the op moves into a kernel whose three buffers are all noalias.
// CHECK-LABEL: func.func @disjoint
// CHECK: call @disjoint_kernel_0(%{{.+}}, %arg0, %{{.+}})
// CHECK-NOT: linalg.generic
// CHECK: func.func private @disjoint_kernel_0(%{{.+}}: memref<16xf32> {llvm.noalias}, %{{.+}}: memref<16xf32> {llvm.noalias}, %{{.+}}: memref<16xf32> {llvm.noalias})
// CHECK: linalg.generic
memref.global "private" @arena : memref<128xi8> = uninitialized
#id = affine_map<(d0) -> (d0)>
func.func @disjoint(%x: memref<16xf32>) {
  %arena = memref.get_global @arena : memref<128xi8>
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %a = memref.view %arena[%c0][] : memref<128xi8> to memref<16xf32>
  %b = memref.view %arena[%c64][] : memref<128xi8> to memref<16xf32>
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
      ins(%a, %x : memref<16xf32>, memref<16xf32>) outs(%b : memref<16xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %0 = arith.addf %p, %q : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// Views whose byte ranges overlap: neither is noalias; the argument is.
// CHECK-LABEL: func.func private @overlap_kernel_0
// CHECK-SAME: (%{{.+}}: memref<16xf32>, %{{.+}}: memref<16xf32> {llvm.noalias}, %{{.+}}: memref<16xf32>)
memref.global "private" @arena : memref<128xi8> = uninitialized
#id = affine_map<(d0) -> (d0)>
func.func @overlap(%x: memref<16xf32>) {
  %arena = memref.get_global @arena : memref<128xi8>
  %c0 = arith.constant 0 : index
  %c32 = arith.constant 32 : index
  %a = memref.view %arena[%c0][] : memref<128xi8> to memref<16xf32>
  %b = memref.view %arena[%c32][] : memref<128xi8> to memref<16xf32>
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
      ins(%a, %x : memref<16xf32>, memref<16xf32>) outs(%b : memref<16xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %0 = arith.addf %p, %q : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// A tile of a parallel loop: the kernel takes the whole buffers and the
// loop index, and takes its subviews itself.
// CHECK-LABEL: func.func @tiled
// CHECK: scf.parallel (%[[I:.+]]) =
// CHECK-NEXT: call @tiled_kernel_0(%arg0, %[[I]], %arg1) : (memref<4x8xf32>, index, memref<4x8xf32>) -> ()
// CHECK: func.func private @tiled_kernel_0(%[[A:.+]]: memref<4x8xf32> {llvm.noalias}, %[[J:.+]]: index, %[[B:.+]]: memref<4x8xf32> {llvm.noalias})
// CHECK: memref.subview %[[A]][%[[J]], 0] [1, 8] [1, 1]
// CHECK: memref.subview %[[B]][%[[J]], 0] [1, 8] [1, 1]
// CHECK: linalg.generic
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @tiled(%a: memref<4x8xf32>, %b: memref<4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %sa = memref.subview %a[%i, 0] [1, 8] [1, 1] : memref<4x8xf32> to memref<1x8xf32, strided<[8, 1], offset: ?>>
    %sb = memref.subview %b[%i, 0] [1, 8] [1, 1] : memref<4x8xf32> to memref<1x8xf32, strided<[8, 1], offset: ?>>
    linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
        ins(%sa : memref<1x8xf32, strided<[8, 1], offset: ?>>) outs(%sb : memref<1x8xf32, strided<[8, 1], offset: ?>>) {
    ^bb0(%p: f32, %r: f32):
      linalg.yield %p : f32
    }
    scf.reduce
  }
  return
}
