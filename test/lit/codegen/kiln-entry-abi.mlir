// RUN: kiln-opt --kiln-entry-abi --split-input-file --verify-diagnostics %s | FileCheck %s

// A train step: params in kiln.param order (not the argument order), state,
// inputs, hyper, loss; updated params and state go back into their own
// buffers, the loss into its buffer.
// CHECK-LABEL: module attributes
// CHECK-SAME: kiln.entries = ["train_step"]
// CHECK-SAME: kiln.manifest = "kiln-manifest 2\0Amodel m\0Aparam w f32 3x2 glorot_uniform 3 2\0Aparam b f32 2 zeros\0Astate w.m f32 3x2\0Ainput x f32 4x3\0Aentry train_step train\0Aarg param w\0Aarg param b\0Aarg state w.m\0Aarg input x\0Aarg hyper\0Aarg loss\0A"
// CHECK-NOT: kiln.param @
// CHECK: func.func @train_step(%[[W:.+]]: memref<3x2xf32> {kiln.param = "w"}, %[[B:.+]]: memref<2xf32> {kiln.param = "b"}, %[[M:.+]]: memref<3x2xf32> {kiln.state = "w.m"}, %[[X:.+]]: memref<4x3xf32> {kiln.input = "x"}, %[[H:.+]]: memref<4xf32> {kiln.hyper}, %[[LOSS:.+]]: memref<f32> {kiln.loss}) attributes {kiln.entry = "train"} {
// CHECK-DAG: %[[TW:.+]] = bufferization.to_tensor %[[W]] restrict writable : memref<3x2xf32>
// CHECK-DAG: %[[TB:.+]] = bufferization.to_tensor %[[B]] restrict : memref<2xf32>
// CHECK-DAG: %[[TM:.+]] = bufferization.to_tensor %[[M]] restrict writable : memref<3x2xf32>
// CHECK-DAG: %[[TX:.+]] = bufferization.to_tensor %[[X]] restrict : memref<4x3xf32>
// CHECK-DAG: %[[TH:.+]] = bufferization.to_tensor %[[H]] restrict : memref<4xf32>
// CHECK: %[[NW:.+]], %[[NM:.+]] = kiln.momentum_update %[[TW]], %{{.+}}, %[[TM]], %[[TH]]
// CHECK: bufferization.materialize_in_destination %[[NW]] in %[[TW]] : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<3x2xf32>
// CHECK-NOT: in %[[TB]]
// CHECK: bufferization.materialize_in_destination %[[NM]] in %[[TM]] : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<3x2xf32>
// CHECK: bufferization.materialize_in_destination %{{.+}} in restrict writable %[[LOSS]] : (tensor<f32>, memref<f32>) -> ()
// CHECK-NEXT: return
module attributes {kiln.model = "m"} {
  kiln.param @w : tensor<3x2xf32> = glorot_uniform(3.0, 2.0)
  kiln.param @b : tensor<2xf32> = zeros
  func.func @train_step(%b: tensor<2xf32> {kiln.param = "b"}, %w: tensor<3x2xf32> {kiln.param = "w"},
                        %m: tensor<3x2xf32> {kiln.state = "w.m"}, %x: tensor<4x3xf32> {kiln.input = "x"},
                        %h: tensor<4xf32> {kiln.hyper})
      -> (tensor<3x2xf32> {kiln.param = "w"}, tensor<2xf32> {kiln.param = "b"}, tensor<3x2xf32> {kiln.state = "w.m"}, tensor<f32> {kiln.loss}) {
    %y = kiln.matmul %x, %w : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %z = kiln.add %y, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    %l = kiln.reduce_sum %z axes = [0, 1] : tensor<4x2xf32> -> tensor<f32>
    %xt = kiln.transpose %x perm = [1, 0] : tensor<4x3xf32> -> tensor<3x4xf32>
    %g = kiln.matmul %xt, %z : (tensor<3x4xf32>, tensor<4x2xf32>) -> tensor<3x2xf32>
    %nw, %nm = kiln.momentum_update %w, %g, %m, %h {momentum = 0.9 : f64, weight_decay = 0.0 : f64, nesterov = false} : tensor<3x2xf32>, tensor<4xf32>
    // b is returned unchanged: nothing is written back.
    return %nw, %b, %nm, %l : tensor<3x2xf32>, tensor<2xf32>, tensor<3x2xf32>, tensor<f32>
  }
}

// -----

// Eval and predict: every entry takes every param, and its own inputs and
// outputs. Unused helpers are erased, used ones become private.
// CHECK-LABEL: module attributes
// CHECK-SAME: output p f32 2\0Aoutput c i32 scalar\0Aentry eval_step eval\0Aarg param v\0Aarg param u\0Aarg input x\0Aarg input label\0Aarg loss\0Aarg output p\0Aentry predict infer\0Aarg param v\0Aarg param u\0Aarg input x\0Aarg output c\0A"
// CHECK: func.func private @helper
// CHECK: func.func @eval_step(%{{.+}}: memref<2xf32> {kiln.param = "v"}, %{{.+}}: memref<2xf32> {kiln.param = "u"}, %[[X:.+]]: memref<2xf32> {kiln.input = "x"}, %{{.+}}: memref<i32> {kiln.input = "label"}, %[[LOSS:.+]]: memref<f32> {kiln.loss}, %[[P:.+]]: memref<2xf32> {kiln.output = "p"}) attributes {kiln.entry = "eval"}
// CHECK: func.func @predict(%[[V:.+]]: memref<2xf32> {kiln.param = "v"}, %{{.+}}: memref<2xf32> {kiln.param = "u"}, %[[PX:.+]]: memref<2xf32> {kiln.input = "x"}, %[[PC:.+]]: memref<i32> {kiln.output = "c"}) attributes {kiln.entry = "infer"}
// CHECK-NOT: bufferization.to_tensor %[[V]]
// CHECK: bufferization.to_tensor %[[PX]] restrict : memref<2xf32>
// CHECK: bufferization.materialize_in_destination %{{.+}} in restrict writable %[[PC]]
// CHECK-NOT: @unused
module attributes {kiln.model = "m2"} {
  kiln.param @v : tensor<2xf32> = uniform(-1.0, 1.0)
  kiln.param @u : tensor<2xf32> = constant(0.5)
  func.func @unused() {
    return
  }
  func.func @helper(%a: tensor<2xf32>) -> tensor<2xf32> {
    %0 = kiln.relu %a : tensor<2xf32>
    return %0 : tensor<2xf32>
  }
  func.func @eval_step(%v: tensor<2xf32> {kiln.param = "v"}, %x: tensor<2xf32> {kiln.input = "x"}, %l: tensor<i32> {kiln.input = "label"})
      -> (tensor<f32> {kiln.loss}, tensor<2xf32> {kiln.output = "p"}) {
    %p = kiln.mul %v, %x : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    %loss = kiln.reduce_sum %p axes = [0] : tensor<2xf32> -> tensor<f32>
    return %loss, %p : tensor<f32>, tensor<2xf32>
  }
  func.func @predict(%x: tensor<2xf32> {kiln.input = "x"}) -> (tensor<i32> {kiln.output = "c"}) {
    %h = func.call @helper(%x) : (tensor<2xf32>) -> tensor<2xf32>
    %c = kiln.argmax %h axis = 0 : tensor<2xf32> -> tensor<i32>
    return %c : tensor<i32>
  }
}

// -----

// The manifest carries kiln.metrics and kiln.train; paths stay one field.
// CHECK-LABEL: module attributes
// CHECK-SAME: metric accuracy c label\0Alabels label 10\0Aoptimizer adam beta1=0.9 lr=0.001\0Atrain batch=2 epochs=3 seed=1 shuffle=true\0Adata train x idx dir%20with%20space/x%25.idx scale=0.5\0Adata test x npy t.npy\0Aentry predict infer\0Aarg input x\0Aarg output c\0A"
module attributes {kiln.model = "m3", kiln.metrics = [["accuracy", "c", "label"]], kiln.labels = {label = 10 : i64},
    kiln.train = {optimizer = {name = "adam", lr = 1.0e-3 : f64, beta1 = 0.9 : f64},
                  batch = 2 : i64, epochs = 3 : i64, seed = 1 : i64, shuffle = true,
                  data = {x = {format = "idx", path = "dir with space/x%.idx", scale = 0.5 : f64}},
                  test = {x = {format = "npy", path = "t.npy"}}}} {
  func.func @predict(%x: tensor<2xf32> {kiln.input = "x"}) -> (tensor<i32> {kiln.output = "c"}) {
    %c = kiln.argmax %x axis = 0 : tensor<2xf32> -> tensor<i32>
    return %c : tensor<i32>
  }
}

// -----

// expected-error @below {{@predict argument #0 has no ABI role}}
func.func @predict(%x: tensor<2xf32>) -> (tensor<2xf32> {kiln.output = "y"}) {
  return %x : tensor<2xf32>
}

// -----

// expected-error @below {{no kiln.param op declares 'w'}}
func.func @predict(%w: tensor<2xf32> {kiln.param = "w"}) -> (tensor<2xf32> {kiln.output = "y"}) {
  return %w : tensor<2xf32>
}

// -----

kiln.param @w : tensor<2xf32> = zeros
// expected-error @below {{has type 'tensor<3xf32>' but parameter 'w' is 'tensor<2xf32>'}}
func.func @predict(%w: tensor<3xf32> {kiln.param = "w"}) -> (tensor<3xf32> {kiln.output = "y"}) {
  return %w : tensor<3xf32>
}

// -----

// expected-error @below {{kiln.state is not allowed here}}
func.func @eval_step(%s: tensor<2xf32> {kiln.state = "s"}) -> (tensor<2xf32> {kiln.output = "y"}) {
  return %s : tensor<2xf32>
}

// -----

// expected-error @below {{kiln.hyper must be 'tensor<4xf32>'}}
func.func @train_step(%h: tensor<2xf32> {kiln.hyper}) -> (tensor<f32> {kiln.loss}) {
  %l = kiln.reduce_sum %h axes = [0] : tensor<2xf32> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

func.func @sample(%x: tensor<3xf32> {kiln.input = "x"}) -> (tensor<3xf32> {kiln.output = "y"}) attributes {kiln.entry = "infer"} {
  return %x : tensor<3xf32>
}
// expected-error @below {{output 'y' has type 'tensor<2xf32>' here but 'tensor<3xf32>' elsewhere}}
func.func @predict(%x: tensor<2xf32> {kiln.input = "z"}) -> (tensor<2xf32> {kiln.output = "y"}) {
  return %x : tensor<2xf32>
}

// -----

// expected-error @below {{kiln.input 'x' is passed twice}}
func.func @predict(%x: tensor<2xf32> {kiln.input = "x"}, %y: tensor<2xf32> {kiln.input = "x"}) -> (tensor<2xf32> {kiln.output = "y"}) {
  return %x : tensor<2xf32>
}

// -----

// expected-error @below {{@decode: kiln.entry must be one of train, eval, infer, step, got "sample"}}
func.func @decode(%x: tensor<2xf32> {kiln.input = "x"}) -> (tensor<2xf32> {kiln.output = "y"}) attributes {kiln.entry = "sample"} {
  return %x : tensor<2xf32>
}

// -----

// expected-error @below {{eval entry @eval_step returns no kiln.loss}}
func.func @eval_step(%x: tensor<2xf32> {kiln.input = "x"}) -> (tensor<2xf32> {kiln.output = "y"}) {
  return %x : tensor<2xf32>
}

// -----

// expected-error @below {{train entry @step takes no kiln.hyper argument}}
func.func @step(%x: tensor<2xf32> {kiln.input = "x"}) -> (tensor<f32> {kiln.loss}) attributes {kiln.entry = "train"} {
  %l = kiln.reduce_sum %x axes = [0] : tensor<2xf32> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A model's own entry (kind infer) is a row of the table like the standard
// ones, with its own inputs and outputs.
// CHECK-LABEL: module attributes
// CHECK-SAME: kiln.entries = ["predict", "sample"]
// CHECK-SAME: entry predict infer\0Aarg input x\0Aarg output c\0Aentry sample infer\0Aarg input z\0Aarg output image\0A"
// CHECK: func.func @sample(%{{.+}}: memref<3x2xf32> {kiln.input = "z"}, %{{.+}}: memref<3x4xf32> {kiln.output = "image"}) attributes {kiln.entry = "infer"}
module attributes {kiln.model = "m4"} {
  func.func @predict(%x: tensor<2x4xf32> {kiln.input = "x"}) -> (tensor<2xi32> {kiln.output = "c"}) {
    %c = kiln.argmax %x axis = 1 : tensor<2x4xf32> -> tensor<2xi32>
    return %c : tensor<2xi32>
  }
  func.func @sample(%z: tensor<3x2xf32> {kiln.input = "z"}) -> (tensor<3x4xf32> {kiln.output = "image"}) attributes {kiln.entry = "infer"} {
    %w = kiln.constant dense<1.0> : tensor<2x4xf32>
    %i = kiln.matmul %z, %w : (tensor<3x2xf32>, tensor<2x4xf32>) -> tensor<3x4xf32>
    return %i : tensor<3x4xf32>
  }
}

// -----

// Results whose inits CSE merged get an init each, so that bufferization
// computes each in its own buffer (no copy) and empty-tensor elimination
// puts each into its own output.
// CHECK-LABEL: func.func @eval_step
// CHECK-DAG: %[[E1:.+]] = tensor.empty() : tensor<4xf32>
// CHECK-DAG: %[[E2:.+]] = tensor.empty() : tensor<4xf32>
// CHECK-DAG: %[[F1:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[E1]] : tensor<4xf32>)
// CHECK-DAG: %[[F2:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[E2]] : tensor<4xf32>)
// CHECK: linalg.generic
// CHECK-SAME: outs(%[[F2]], %[[F1]] : tensor<4xf32>, tensor<4xf32>)
func.func @eval_step(%x: tensor<4x8xf32> {kiln.input = "x"})
    -> (tensor<f32> {kiln.loss}, tensor<4xf32> {kiln.output = "a"}, tensor<4xf32> {kiln.output = "b"}) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
  %r:2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0)>],
                         iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x8xf32>) outs(%f, %f : tensor<4xf32>, tensor<4xf32>) {
  ^bb0(%in: f32, %a: f32, %b: f32):
    %s = arith.addf %a, %in : f32
    %m = arith.maximumf %b, %in : f32
    linalg.yield %s, %m : f32, f32
  } -> (tensor<4xf32>, tensor<4xf32>)
  %z = tensor.empty() : tensor<f32>
  %l = linalg.fill ins(%cst : f32) outs(%z : tensor<f32>) -> tensor<f32>
  return %l, %r#0, %r#1 : tensor<f32>, tensor<4xf32>, tensor<4xf32>
}
