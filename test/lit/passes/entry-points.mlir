// RUN: kiln-opt --kiln-entry-points %s | FileCheck %s
//
// kiln-entry-points derives @eval_step (loss and outputs) and @predict (outputs
// only, from the inputs they need) from @forward, and records the accuracy
// metric of a classifier.

// CHECK: module attributes {kiln.labels = {label = 3 : i64}, kiln.metrics = {{\[}}["accuracy", "prediction", "label"]]
module {
  kiln.param @w : tensor<4x3xf32> = glorot_uniform(4.0, 3.0)
  func.func @forward(%image: tensor<2x4xf32> {kiln.input = "image"}, %label: tensor<2xi32> {kiln.input = "label"}) -> (tensor<f32> {kiln.loss}, tensor<2xi32> {kiln.output = "prediction"}) {
    %w = kiln.load_param @w : tensor<4x3xf32>
    %0 = kiln.matmul %image, %w : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    %l = kiln.cross_entropy %0, %label : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
    %p = kiln.argmax %0 axis = 1 : tensor<2x3xf32> -> tensor<2xi32>
    return %l, %p : tensor<f32>, tensor<2xi32>
  }
}

// CHECK-LABEL: func.func @eval_step(
// CHECK-SAME: %[[W:.+]]: tensor<4x3xf32> {kiln.param = "w"}, %[[X:.+]]: tensor<2x4xf32> {kiln.input = "image"}, %[[Y:.+]]: tensor<2xi32> {kiln.input = "label"})
// CHECK-SAME: -> (tensor<f32> {kiln.loss}, tensor<2xi32> {kiln.output = "prediction"})
// CHECK: kiln.cross_entropy
// CHECK: kiln.argmax

// The labels are only needed by the loss: @predict does not take them.
// CHECK-LABEL: func.func @predict(
// CHECK-SAME: %{{.+}}: tensor<4x3xf32> {kiln.param = "w"}, %{{.+}}: tensor<2x4xf32> {kiln.input = "image"})
// CHECK-SAME: -> (tensor<2xi32> {kiln.output = "prediction"})
// CHECK-NOT: kiln.cross_entropy
// CHECK: kiln.argmax
// CHECK-NOT: func.func @forward
