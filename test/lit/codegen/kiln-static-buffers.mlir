// RUN: kiln-opt --kiln-static-buffers --split-input-file %s | FileCheck %s

// Temporaries of an entry function become views into one arena; %a and %c
// are never live at the same time (%a dies at its last use, through a view,
// before %c is allocated), so they share offset 0; %b overlaps both.
// CHECK: memref.global "private" @__kiln_arena : memref<512xi8> = uninitialized {alignment = 64 : i64}
// CHECK-LABEL: func.func @predict
// CHECK-NOT: memref.alloc
// CHECK: %[[ARENA:.+]] = memref.get_global @__kiln_arena : memref<512xi8>
// CHECK: %[[C0:.+]] = arith.constant 0 : index
// CHECK: memref.view %[[ARENA]][%[[C0]]][] : memref<512xi8> to memref<64xf32>
// CHECK: %[[C256:.+]] = arith.constant 256 : index
// CHECK: memref.view %[[ARENA]][%[[C256]]][] : memref<512xi8> to memref<16x4xf32>
// CHECK: %[[C0B:.+]] = arith.constant 0 : index
// CHECK: memref.view %[[ARENA]][%[[C0B]]][] : memref<512xi8> to memref<8x8xf32>
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.dealloc
// Other functions keep their allocations.
// CHECK-LABEL: func.func private @helper
// CHECK: memref.alloc
func.func @predict(%x: memref<64xf32>, %y: memref<8x8xf32>) {
  %a = memref.alloc() : memref<64xf32>
  %b = memref.alloc() : memref<16x4xf32>
  memref.copy %x, %a : memref<64xf32> to memref<64xf32>
  %av = memref.expand_shape %a [[0, 1]] output_shape [8, 8] : memref<64xf32> into memref<8x8xf32>
  memref.copy %av, %y : memref<8x8xf32> to memref<8x8xf32>
  %c = memref.alloc() : memref<8x8xf32>
  memref.copy %y, %c : memref<8x8xf32> to memref<8x8xf32>
  %bv = memref.expand_shape %b [[0], [1, 2]] output_shape [16, 2, 2] : memref<16x4xf32> into memref<16x2x2xf32>
  %cv = memref.collapse_shape %c [[0, 1]] : memref<8x8xf32> into memref<64xf32>
  memref.copy %cv, %x : memref<64xf32> to memref<64xf32>
  return
}
func.func private @helper() {
  %a = memref.alloc() : memref<4xf32>
  return
}

// -----

// A loop's temporaries are planned too: %t lives within one step and is
// reused by the next; %w is written inside the loop but read after it, so it
// is live across the whole loop and does not share with %t; %y is handed to
// the next step (yielded), so it stays on the heap.
// CHECK-LABEL: func.func @predict
// CHECK: %[[ARENA:.+]] = memref.get_global @__kiln_arena : memref<512xi8>
// CHECK: %[[C0:.+]] = arith.constant 0 : index
// CHECK: %[[W:.+]] = memref.view %[[ARENA]][%[[C0]]][] : memref<512xi8> to memref<64xf32>
// CHECK: scf.for
// CHECK: %[[C256:.+]] = arith.constant 256 : index
// CHECK: memref.view %[[ARENA]][%[[C256]]][] : memref<512xi8> to memref<64xf32>
// CHECK: %[[Y:.+]] = memref.alloc() : memref<64xf32>
// CHECK: scf.yield %[[Y]]
func.func @predict(%x: memref<64xf32>, %out: memref<64xf32>) {
  %c1 = arith.constant 1 : index
  %c5 = arith.constant 5 : index
  %w = memref.alloc() : memref<64xf32>
  %r = scf.for %i = %c1 to %c5 step %c1 iter_args(%h = %x) -> (memref<64xf32>) {
    %t = memref.alloc() : memref<64xf32>
    memref.copy %h, %t : memref<64xf32> to memref<64xf32>
    memref.copy %t, %w : memref<64xf32> to memref<64xf32>
    %y = memref.alloc() : memref<64xf32>
    memref.copy %t, %y : memref<64xf32> to memref<64xf32>
    scf.yield %y : memref<64xf32>
  }
  memref.copy %w, %out : memref<64xf32> to memref<64xf32>
  return
}
