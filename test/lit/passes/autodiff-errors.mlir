// RUN: kiln-opt --kiln-autodiff --split-input-file -verify-diagnostics %s -o /dev/null
//
// kiln-autodiff never skips an op between a parameter and the loss: an op
// without a gradient rule, single- or multi-result, is an error at its
// location, and so is an op whose regions could capture values.

module {
  kiln.param @w : tensor<3xf32> = zeros
  func.func @forward(%x: tensor<3xf32> {kiln.input = "x"}) -> (tensor<f32> {kiln.loss}) {
    %w = kiln.load_param @w : tensor<3xf32>
    %h = kiln.constant dense<0.0> : tensor<4xf32>
    // expected-error @below {{cannot differentiate 'kiln.momentum_update': it has no gradient rule, and it lies between a parameter and the loss}}
    %p, %v = kiln.momentum_update %w, %x, %x, %h {momentum = 0.9 : f64, weight_decay = 0.0 : f64, nesterov = false} : tensor<3xf32>, tensor<4xf32>
    %l = kiln.mse %p, %x : (tensor<3xf32>, tensor<3xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

module {
  kiln.param @w : tensor<3xf32> = zeros
  func.func @forward(%x: tensor<3xf32> {kiln.input = "x"}) -> (tensor<f32> {kiln.loss}) {
    %w = kiln.load_param @w : tensor<3xf32>
    // expected-error @below {{cannot differentiate 'tensor.generate': its regions may capture values from above; ops with regions must be isolated from above}}
    %g = tensor.generate {
    ^bb0(%i: index):
      %e = tensor.extract %w[%i] : tensor<3xf32>
      tensor.yield %e : f32
    } : tensor<3xf32>
    %l = kiln.mse %g, %x : (tensor<3xf32>, tensor<3xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// A scan's gradient stacks each step's carries along its axis, which a
// scalar carry does not have.
module {
  kiln.param @w : tensor<2x3xf32> = zeros
  func.func @forward(%x: tensor<2x4x3xf32> {kiln.input = "x"}) -> (tensor<f32> {kiln.loss}) {
    %w = kiln.load_param @w : tensor<2x3xf32>
    %s0 = kiln.constant dense<0.0> : tensor<f32>
    // expected-error @below {{'kiln.scan' op cannot be differentiated: carry #0 has rank 0, too low to stack its steps along axis 1}}
    %s = kiln.scan length = 4 axis = 1 carries(%s0 : tensor<f32>) xs(%x : tensor<2x4x3xf32>) consts(%w : tensor<2x3xf32>) {
    ^bb0(%sp: tensor<f32>, %xt: tensor<2x3xf32>, %a: tensor<2x3xf32>):
      %0 = kiln.mul %xt, %a : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
      %1 = kiln.reduce_sum %0 axes = [0, 1] : tensor<2x3xf32> -> tensor<f32>
      %2 = kiln.add %sp, %1 : (tensor<f32>, tensor<f32>) -> tensor<f32>
      kiln.yield %2 : tensor<f32>
    } -> (tensor<f32>)
    return %s : tensor<f32>
  }
}
