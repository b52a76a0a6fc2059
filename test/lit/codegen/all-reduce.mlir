// RUN: kiln-opt --kiln-autodiff=data-parallel=1 --kiln-entry-points --canonicalize --kiln-lower="stop-after=bufferized" %s | FileCheck %s
// RUN: kiln-opt --kiln-autodiff=data-parallel=1 --kiln-entry-points --canonicalize --kiln-lower %s | FileCheck %s --check-prefix=LLVM
//
// A data-parallel train step's kiln.all_reduce becomes, in bufferization
// (codegen/AllReduce.cpp), one call of the runtime's kiln_all_reduce_f32 on
// the flat buffer that holds the step's gradients and loss: after every
// gradient is written into it, before the optimizer reads them back.

// CHECK: func.func private @kiln_all_reduce_f32(!llvm.ptr, i64)
// Evaluation communicates nothing.
// CHECK-LABEL: func.func @eval_step
// CHECK-NOT: kiln_all_reduce
// CHECK: return
// CHECK-LABEL: func.func @train_step
// The weight gradient (8x4) and the bias gradient (4) go into the flat buffer,
// then the loss.
// CHECK: linalg.matmul_transpose_a
// CHECK: memref.subview %[[FLAT:.+]][0] [32] [1] : memref<37xf32>
// CHECK: memref.subview %[[FLAT]][32] [4] [1]
// CHECK: memref.subview %[[FLAT]][36] [1] [1]
// CHECK: %[[ADDRESS:.+]] = memref.extract_aligned_pointer_as_index %[[FLAT]] : memref<37xf32> -> index
// CHECK: %[[I64:.+]] = arith.index_cast %[[ADDRESS]] : index to i64
// CHECK: %[[PTR:.+]] = llvm.inttoptr %[[I64]] : i64 to !llvm.ptr
// CHECK: call @kiln_all_reduce_f32(%[[PTR]], %c37_i64) : (!llvm.ptr, i64) -> ()
// CHECK-NOT: call @kiln_all_reduce_f32
// The SGD updates read the averaged gradients.
// CHECK: linalg.generic
// CHECK: linalg.generic
// CHECK: return

// The manifest tells the runtime that the step averages.
// LLVM: llvm.func @kiln_all_reduce_f32(!llvm.ptr, i64)
// LLVM: llvm.call @kiln_all_reduce_f32
// LLVM: \0Aparallel data\0A
module attributes {kiln.model = "tiny", kiln.train = {optimizer = {name = "sgd", lr = 1.0e-01 : f64}}} {
  kiln.param @w : tensor<8x4xf32> = glorot_uniform(8.0, 4.0)
  kiln.param @b : tensor<4xf32> = zeros
  func.func @forward(%x: tensor<2x8xf32> {kiln.input = "x"}, %y: tensor<2xi32> {kiln.input = "label"}) -> (tensor<f32> {kiln.loss}) {
    %w = kiln.load_param @w : tensor<8x4xf32>
    %b = kiln.load_param @b : tensor<4xf32>
    %0 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
    %1 = kiln.add %0, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    %l = kiln.cross_entropy %1, %y : (tensor<2x4xf32>, tensor<2xi32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
