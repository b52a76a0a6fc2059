// RUN: kiln-opt --pass-pipeline="builtin.module(func.func(kiln-approximate-math))" %s | FileCheck %s

// f32 transcendental functions become polynomials (arith only: loops around
// them vectorize); f64 keeps the libm-backed math ops; sqrt is left to LLVM.
// CHECK-LABEL: func.func @f32
// CHECK-NOT: math.exp
// CHECK-NOT: math.log
// CHECK-NOT: math.tanh
// CHECK-NOT: math.erf
// CHECK: math.sqrt
// CHECK-LABEL: func.func @f64
// CHECK: math.exp %{{.+}} : f64
// CHECK: math.tanh %{{.+}} : f64
func.func @f32(%x: f32) -> (f32, f32, f32, f32, f32, f32) {
  %0 = math.exp %x : f32
  %1 = math.log %x : f32
  %2 = math.log1p %x : f32
  %3 = math.tanh %x : f32
  %4 = math.erf %x : f32
  %5 = math.sqrt %x : f32
  return %0, %1, %2, %3, %4, %5 : f32, f32, f32, f32, f32, f32
}
func.func @f64(%x: f64) -> (f64, f64) {
  %0 = math.exp %x : f64
  %1 = math.tanh %x : f64
  return %0, %1 : f64, f64
}
