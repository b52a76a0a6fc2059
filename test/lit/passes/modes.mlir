// RUN: kiln-opt --kiln-autodiff --kiln-entry-points %s | FileCheck %s
//
// Training and evaluation modes: kiln.if_training picks its first operand in
// @train_step and its second in @eval_step/@predict; dropout is keyed by the
// step's hyper vector in training and vanishes in evaluation; a buffer parameter
// is not trained but takes the value kiln.assign_param gives it.

module attributes {kiln.train = {optimizer = {name = "adam", lr = 1.0e-03 : f64, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-08 : f64, weight_decay = 0.0 : f64, clip_norm = 0.0 : f64}}} {
  kiln.param @w : tensor<3xf32> = ones
  kiln.param @running : tensor<3xf32> = zeros {buffer}
  func.func @forward(%x: tensor<2x3xf32> {kiln.input = "x"}) -> (tensor<f32> {kiln.loss}, tensor<2x3xf32> {kiln.output = "y"}) {
    %w = kiln.load_param @w : tensor<3xf32>
    %r = kiln.load_param @running : tensor<3xf32>
    %mean = kiln.reduce_mean %x axes = [0] : tensor<2x3xf32> -> tensor<3xf32>
    %centered_train = kiln.sub %x, %mean : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %centered_eval = kiln.sub %x, %r : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %c = kiln.if_training %centered_train, %centered_eval : tensor<2x3xf32>
    kiln.assign_param @running, %mean : tensor<3xf32>
    %cw = kiln.mul %c, %w : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %d = kiln.dropout %cw {rate = 0.5 : f64, salt = 1 : i64} : tensor<2x3xf32>
    %y = kiln.mul %d, %w : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %l = kiln.reduce_sum %y axes = [0, 1] : tensor<2x3xf32> -> tensor<f32>
    return %l, %y : tensor<f32>, tensor<2x3xf32>
  }
}

// CHECK-LABEL: func.func @eval_step(
// CHECK-SAME: %[[EW:[^:]+]]: tensor<3xf32> {kiln.param = "w"}, %[[ER:[^:]+]]: tensor<3xf32> {kiln.param = "running"}, %[[EX:[^:]+]]: tensor<2x3xf32> {kiln.input = "x"})
// CHECK-NOT: kiln.dropout
// CHECK-NOT: kiln.assign_param
// CHECK: %[[EC:.+]] = kiln.sub %[[EX]], %[[ER]]
// CHECK: %[[ECW:.+]] = kiln.mul %[[EC]], %[[EW]]
// CHECK: kiln.mul %[[ECW]], %[[EW]]

// The buffer has no optimizer state; only @w has m and v.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W:[^:]+]]: tensor<3xf32> {kiln.param = "w"}, %[[R:[^:]+]]: tensor<3xf32> {kiln.param = "running"},
// CHECK-SAME: {kiln.state = "w:m"}, %{{[^:]+}}: tensor<3xf32> {kiln.state = "w:v"}, %[[X:[^:]+]]: tensor<2x3xf32> {kiln.input = "x"}, %[[H:[^:]+]]: tensor<4xf32> {kiln.hyper})
// CHECK-NOT: kiln.if_training
// CHECK: %[[MEAN:.+]] = kiln.reduce_mean %[[X]]
// CHECK: %[[C:.+]] = kiln.sub %[[X]], %[[MEAN]]
// CHECK: %[[CW:.+]] = kiln.mul %[[C]], %[[W]]
// CHECK: kiln.dropout %[[CW]], %[[H]] : tensor<4xf32> {rate = 5.000000e-01 : f64, salt = 1 : i64}
// The gradient of dropout is the same dropout of the incoming gradient.
// CHECK: kiln.dropout %{{.+}}, %[[H]] : tensor<4xf32> {rate = 5.000000e-01 : f64, salt = 1 : i64}
// CHECK: %[[NW:[^,]+]], %{{.+}}, %{{.+}} = kiln.adam_update %[[W]]
// CHECK-NOT: kiln.adam_update
// CHECK: return %[[NW]], %[[MEAN]],
