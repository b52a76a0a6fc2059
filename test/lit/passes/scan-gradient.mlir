// RUN: sed 's/LEN/16/g' %s | kiln-opt --kiln-autodiff | FileCheck %s
// RUN: sed 's/LEN/16/g' %s | kiln-opt --kiln-autodiff | grep -c "kiln\." > %t.16
// RUN: sed 's/LEN/256/g' %s | kiln-opt --kiln-autodiff | grep -c "kiln\." > %t.256
// RUN: diff %t.16 %t.256
// RUN: sed 's/LEN/16/g' %s | kiln-opt --kiln-autodiff --canonicalize | FileCheck %s --check-prefix=CLEAN
//
// Backpropagation through time is a loop too: the training step of an RNN
// holds two scans whatever the sequence length (the forward pass, saving each
// step's carry, and the reverse scan of the gradients), and the IR has the
// same size at 16 and at 256 steps. The scan that saves takes the place of
// the forward one, which is left dead: the recurrence runs forward once.
//
// CLEAN-LABEL: func.func @train_step(
// CLEAN-COUNT-2: kiln.scan
// CLEAN-NOT: kiln.scan

module attributes {kiln.train = {optimizer = {name = "sgd", lr = 1.0e-01 : f64}}} {
  kiln.param @wx : tensor<3x4xf32> = glorot_uniform(3.0, 4.0)
  kiln.param @wh : tensor<4x4xf32> = glorot_uniform(4.0, 4.0)
  func.func @forward(%x: tensor<2xLENx3xf32> {kiln.input = "x"}, %y: tensor<2x4xf32> {kiln.input = "y"}) -> (tensor<f32> {kiln.loss}) {
    %wx = kiln.load_param @wx : tensor<3x4xf32>
    %wh = kiln.load_param @wh : tensor<4x4xf32>
    %h0 = kiln.constant dense<0.0> : tensor<2x4xf32>
    %h, %hs = kiln.scan length = LEN axis = 1 carries(%h0 : tensor<2x4xf32>) xs(%x : tensor<2xLENx3xf32>) consts(%wx, %wh : tensor<3x4xf32>, tensor<4x4xf32>) {
    ^bb0(%hp: tensor<2x4xf32>, %xt: tensor<2x3xf32>, %a: tensor<3x4xf32>, %b: tensor<4x4xf32>):
      %0 = kiln.matmul %xt, %a : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
      %1 = kiln.matmul %hp, %b : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %2 = kiln.add %0, %1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
      %3 = kiln.tanh %2 : tensor<2x4xf32>
      kiln.yield %3, %3 : tensor<2x4xf32>, tensor<2x4xf32>
    } -> (tensor<2x4xf32>, tensor<2xLENx4xf32>)
    %l = kiln.mse %h, %y : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[WX:[^:]+]]: tensor<3x4xf32> {kiln.param = "wx"}, %[[WH:[^:]+]]: tensor<4x4xf32> {kiln.param = "wh"}
// The forward pass, also stacking each step's input carry and the products
// of its two matmuls; the loss reads it.
// CHECK: %[[SAVE:.+]]:5 = kiln.scan length = 16 axis = 1 carries(%{{.+}}) xs(%{{.+}}) consts(%[[WX]], %[[WH]] : {{.*}}) {
// CHECK: kiln.yield %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
// CHECK: } -> (tensor<2x4xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>)
// CHECK: kiln.mse %[[SAVE]]#0
// The gradients, in reverse: carries dh, dwx, dwh; sequences: the saved
// carries, x, the stacked output's (zero) gradient and the saved products;
// the step's reverse mode in the body, which reads the saved products instead
// of multiplying again.
// CHECK: %[[BWD:.+]]:4 = kiln.scan length = 16 axis = 1 reverse carries({{.*}} : tensor<2x4xf32>, tensor<3x4xf32>, tensor<4x4xf32>) xs(%[[SAVE]]#2, %{{.+}}, %{{.+}}, %[[SAVE]]#3, %[[SAVE]]#4 : tensor<2x16x4xf32>, tensor<2x16x3xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>)
// CHECK-NEXT: ^bb0({{.*}}, %[[P0:[^:]+]]: tensor<2x4xf32>, %[[P1:[^:]+]]: tensor<2x4xf32>, %{{[^:]+}}: tensor<3x4xf32>, %{{[^:]+}}: tensor<4x4xf32>):
// CHECK: kiln.add %[[P0]], %[[P1]]
// CHECK: kiln.tanh
// CHECK: kiln.yield {{.*}} : tensor<2x4xf32>, tensor<3x4xf32>, tensor<4x4xf32>, tensor<2x3xf32>
// CHECK: kiln.sgd_update %[[WX]], %[[BWD]]#1
// CHECK: kiln.sgd_update %[[WH]], %[[BWD]]#2
