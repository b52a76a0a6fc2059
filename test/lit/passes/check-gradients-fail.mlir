// RUN: kiln-opt --kiln-check-gradients="tolerance=1e-30" %s -verify-diagnostics -o /dev/null
//
// The checker must be able to fail: with an impossible tolerance, the finite
// differences' own rounding error (~1e-10) is reported as a mismatch.

// expected-error @below {{gradient check failed for @tanh}}
func.func @tanh(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = kiln.tanh %x : tensor<4xf32>
  return %0 : tensor<4xf32>
}
