// RUN: kiln-opt --kiln-autodiff=data-parallel=1 %s | FileCheck %s
// RUN: kiln-opt --kiln-autodiff %s | FileCheck %s --check-prefix=ALONE
//
// kiln-autodiff{data-parallel} averages the step's gradients, its buffer
// updates (running statistics) and its loss over the processes of a
// data-parallel job: one kiln.all_reduce over all of them, flattened and
// concatenated, between the backward pass and the optimizer update (and
// before clipping, which must see the averaged gradient).

module attributes {kiln.train = {optimizer = {name = "sgd", lr = 1.0e-01 : f64, weight_decay = 0.0 : f64, clip_norm = 1.0 : f64}}} {
  kiln.param @w : tensor<4x3xf32> = glorot_uniform(4.0, 3.0)
  kiln.param @b : tensor<3xf32> = zeros
  kiln.param @running : tensor<3xf32> = zeros {buffer}
  func.func @forward(%x: tensor<2x4xf32> {kiln.input = "x"}, %y: tensor<2xi32> {kiln.input = "y"}) -> (tensor<f32> {kiln.loss}) {
    %w = kiln.load_param @w : tensor<4x3xf32>
    %b = kiln.load_param @b : tensor<3xf32>
    %0 = kiln.matmul %x, %w : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    %1 = kiln.add %0, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %m = kiln.reduce_mean %1 axes = [0] : tensor<2x3xf32> -> tensor<3xf32>
    kiln.assign_param @running, %m : tensor<3xf32>
    %l = kiln.cross_entropy %1, %y : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: attributes {kiln.data_parallel
// CHECK: %[[LOSS:.+]] = kiln.cross_entropy
// Flattened: the gradients of w and b, the new running statistics, the loss.
// CHECK-DAG: %[[DW:.+]] = kiln.reshape %{{.+}} : tensor<4x3xf32> -> tensor<12xf32>
// CHECK-DAG: %[[L1:.+]] = kiln.reshape %[[LOSS]] : tensor<f32> -> tensor<1xf32>
// CHECK: %[[ALL:.+]] = kiln.concat %[[DW]], %{{.+}}, %{{.+}}, %[[L1]] axis = 0 : (tensor<12xf32>, tensor<3xf32>, tensor<3xf32>, tensor<1xf32>) -> tensor<19xf32>
// CHECK: %[[MEAN:.+]] = kiln.all_reduce %[[ALL]] : tensor<19xf32>
// CHECK-NOT: kiln.all_reduce
// CHECK: %[[PARTS:.+]]:4 = kiln.split %[[MEAN]] axis = 0 sizes = [12, 3, 3, 1]
// CHECK: %[[MLOSS:.+]] = kiln.reshape %[[PARTS]]#3 : tensor<1xf32> -> tensor<f32>
// Clipping sees the averaged gradients.
// CHECK: kiln.sqrt
// CHECK: kiln.sgd_update
// CHECK: kiln.sgd_update
// CHECK: return %{{.+}}, %{{.+}}, %{{.+}}, %[[MLOSS]]

// Alone, nothing is averaged.
// ALONE-LABEL: func.func @train_step(
// ALONE-NOT: kiln.data_parallel
// ALONE-NOT: kiln.all_reduce
