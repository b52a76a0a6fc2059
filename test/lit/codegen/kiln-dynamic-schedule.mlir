// RUN: kiln-opt --kiln-dynamic-schedule %s | FileCheck %s

// Worksharing loops (from convert-scf-to-openmp) get schedule(dynamic): a
// thread the OS does not run leaves its iterations to the others.
// CHECK-LABEL: func.func @loop
// CHECK: omp.wsloop schedule(dynamic)
func.func @loop(%n: index, %buffer: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  omp.parallel {
    omp.wsloop {
      omp.loop_nest (%i) : index = (%c0) to (%n) step (%c1) {
        memref.store %zero, %buffer[%i] : memref<?xf32>
        omp.yield
      }
      omp.terminator
    }
    omp.terminator
  }
  return
}
