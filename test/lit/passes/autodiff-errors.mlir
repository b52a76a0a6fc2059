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
