// RUN: kiln-opt --kiln-autodiff --split-input-file %s | FileCheck %s
//
// kiln-autodiff builds @train_step: forward with parameters as arguments, the
// backward pass from the gradient rules, and the optimizer update.

module attributes {kiln.train = {optimizer = {name = "sgd", lr = 1.0e-01 : f64, weight_decay = 0.0 : f64, clip_norm = 0.0 : f64}}} {
  kiln.param @w : tensor<4x3xf32> = glorot_uniform(4.0, 3.0)
  kiln.param @b : tensor<3xf32> = zeros
  func.func @forward(%x: tensor<2x4xf32> {kiln.input = "x"}, %y: tensor<2xi32> {kiln.input = "y"}) -> (tensor<f32> {kiln.loss}) {
    %w = kiln.load_param @w : tensor<4x3xf32>
    %b = kiln.load_param @b : tensor<3xf32>
    %0 = kiln.matmul %x, %w : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    %1 = kiln.add %0, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %l = kiln.cross_entropy %1, %y : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W:.+]]: tensor<4x3xf32> {kiln.param = "w"}, %[[B:.+]]: tensor<3xf32> {kiln.param = "b"},
// CHECK-SAME: %[[X:.+]]: tensor<2x4xf32> {kiln.input = "x"}, %[[Y:.+]]: tensor<2xi32> {kiln.input = "y"},
// CHECK-SAME: %[[H:.+]]: tensor<4xf32> {kiln.hyper})
// CHECK-SAME: -> (tensor<4x3xf32> {kiln.param = "w"}, tensor<3xf32> {kiln.param = "b"}, tensor<f32> {kiln.loss})
// CHECK-NOT: kiln.load_param
// CHECK: %[[MM:.+]] = kiln.matmul %[[X]], %[[W]]
// CHECK: %[[LOGITS:.+]] = kiln.add %[[MM]], %[[B]]
// CHECK: %[[LOSS:.+]] = kiln.cross_entropy %[[LOGITS]], %[[Y]]
// The cross-entropy rule: (softmax - one_hot) * g / N.
// CHECK: kiln.softmax %[[LOGITS]] axis = 1
// CHECK: kiln.one_hot %[[Y]]
// The bias gradient sums the broadcast dimension away.
// CHECK: %[[DB:.+]] = kiln.reduce_sum %{{.+}} axes = [0] : tensor<2x3xf32> -> tensor<3xf32>
// The weight gradient is x^T @ g.
// CHECK: %[[XT:.+]] = kiln.transpose %[[X]] perm = [1, 0]
// CHECK: %[[DW:.+]] = kiln.matmul %[[XT]], %{{.+}} : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
// CHECK: %[[NW:.+]] = kiln.sgd_update %[[W]], %[[DW]], %[[H]]
// CHECK: %[[NB:.+]] = kiln.sgd_update %[[B]], %[[DB]], %[[H]]
// CHECK: return %[[NW]], %[[NB]], %[[LOSS]]
// CHECK: func.func @forward

// -----

// Adam keeps two state tensors per parameter, named after it; clip_norm adds the
// global-norm scaling before the update.
module attributes {kiln.train = {optimizer = {name = "adamw", lr = 1.0e-03 : f64, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-08 : f64, weight_decay = 0.01 : f64, clip_norm = 1.0 : f64}}} {
  kiln.param @w : tensor<3xf32> = normal(0.0, 1.0)
  func.func @forward(%x: tensor<3xf32> {kiln.input = "x"}) -> (tensor<f32> {kiln.loss}) {
    %w = kiln.load_param @w : tensor<3xf32>
    %0 = kiln.mse %x, %w : (tensor<3xf32>, tensor<3xf32>) -> tensor<f32>
    return %0 : tensor<f32>
  }
}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: {kiln.param = "w"}, %[[M:.+]]: tensor<3xf32> {kiln.state = "w:m"}, %[[V:.+]]: tensor<3xf32> {kiln.state = "w:v"}
// CHECK: kiln.sqrt
// CHECK: kiln.minimum
// CHECK: kiln.adam_update %{{.+}}, %{{.+}}, %[[M]], %[[V]], %{{.+}} {{{.*}}decoupled = true{{.*}}weight_decay = 1.000000e-02
// CHECK: return {{.*}} : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<f32>

// -----

// A parameter the loss does not use gets a zero gradient; momentum keeps a
// velocity.
module attributes {kiln.train = {optimizer = {name = "momentum", lr = 1.0e-02 : f64, momentum = 0.9 : f64, nesterov = true, weight_decay = 0.0 : f64, clip_norm = 0.0 : f64}}} {
  kiln.param @used : tensor<2xf32> = zeros
  kiln.param @unused : tensor<2xf32> = ones
  func.func @forward(%x: tensor<2xf32> {kiln.input = "x"}) -> (tensor<f32> {kiln.loss}) {
    %u = kiln.load_param @used : tensor<2xf32>
    %0 = kiln.mse %x, %u : (tensor<2xf32>, tensor<2xf32>) -> tensor<f32>
    return %0 : tensor<f32>
  }
}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: {kiln.state = "used:velocity"}
// CHECK-SAME: {kiln.state = "unused:velocity"}
// CHECK: %[[ZERO:.+]] = kiln.constant dense<0.000000e+00> : tensor<2xf32>
// CHECK: kiln.momentum_update
// CHECK: kiln.momentum_update %{{.+}}, %[[ZERO]], {{.*}}nesterov = true
