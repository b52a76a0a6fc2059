// RUN: kiln-opt --kiln-to-linalg --kiln-share-im2col --split-input-file %s | FileCheck %s
// RUN: kiln-opt --kiln-to-linalg --kiln-share-im2col="report=true" --split-input-file %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
//
// kiln-share-im2col: a convolution's forward pass and its filter gradient
// multiply by the same im2col columns of the same input; kiln-to-linalg gathers
// them for each (and marks the gathers kiln.im2col), this pass keeps the first
// gather and removes the mark.

// The filter gradient reads the forward pass's gather.
// CHECK-LABEL: func.func @forward_and_filter_gradient
// CHECK: %[[GATHER:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<3x3x2x2x4x2xf32>) {
// CHECK: tensor.collapse_shape %[[GATHER]] {{\[}}[0, 1, 2], [3, 4, 5]] : tensor<3x3x2x2x4x2xf32> into tensor<18x16xf32>
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<4x18xf32>, tensor<18x16xf32>)
// CHECK-NOT: outs(%{{.+}} : tensor<3x3x2x2x4x2xf32>)
// CHECK: tensor.collapse_shape %[[GATHER]] {{\[}}[0, 1, 2], [3, 4, 5]] : tensor<3x3x2x2x4x2xf32> into tensor<18x16xf32>
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<18x16xf32>, tensor<16x4xf32>)
// CHECK-NOT: kiln.im2col
// CHECK: return
// REPORT: remark: kiln-share-im2col: @forward_and_filter_gradient: 1 of 2 im2col gathers shared
func.func @forward_and_filter_gradient(%x: tensor<2x3x7x6xf32>, %w: tensor<4x3x3x2xf32>, %g: tensor<2x4x4x2xf32>) -> (tensor<2x4x4x2xf32>, tensor<4x3x3x2xf32>) {
  %0 = kiln.conv2d %x, %w strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x7x6xf32>, tensor<4x3x3x2xf32>) -> tensor<2x4x4x2xf32>
  %1 = kiln.conv2d_backward_filter %x, %g strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x7x6xf32>, tensor<2x4x4x2xf32>) -> tensor<4x3x3x2xf32>
  return %0, %1 : tensor<2x4x4x2xf32>, tensor<4x3x3x2xf32>
}

// -----

// Two convolutions of one input with one window (two filters) share too.
// CHECK-LABEL: func.func @two_filters
// CHECK-COUNT-1: outs(%{{.+}} : tensor<3x3x3x1x5x5xf32>)
// CHECK-NOT: outs(%{{.+}} : tensor<3x3x3x1x5x5xf32>)
// CHECK: return
// REPORT: remark: kiln-share-im2col: @two_filters: 1 of 2 im2col gathers shared
func.func @two_filters(%x: tensor<1x3x5x5xf32>, %w1: tensor<2x3x3x3xf32>, %w2: tensor<4x3x3x3xf32>) -> (tensor<1x2x5x5xf32>, tensor<1x4x5x5xf32>) {
  %0 = kiln.conv2d %x, %w1 strides = [1, 1] padding = [1, 1] dilation = [1, 1] : (tensor<1x3x5x5xf32>, tensor<2x3x3x3xf32>) -> tensor<1x2x5x5xf32>
  %1 = kiln.conv2d %x, %w2 strides = [1, 1] padding = [1, 1] dilation = [1, 1] : (tensor<1x3x5x5xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x5x5xf32>
  return %0, %1 : tensor<1x2x5x5xf32>, tensor<1x4x5x5xf32>
}

// -----

// Negative: the gradient's input is another tensor; both gathers stay.
// CHECK-LABEL: func.func @other_input
// CHECK-COUNT-2: outs(%{{.+}} : tensor<3x3x2x2x4x2xf32>)
// CHECK-NOT: kiln.im2col
// REPORT: remark: kiln-share-im2col: @other_input: 0 of 2 im2col gathers shared
func.func @other_input(%x: tensor<2x3x7x6xf32>, %y: tensor<2x3x7x6xf32>, %w: tensor<4x3x3x2xf32>, %g: tensor<2x4x4x2xf32>) -> (tensor<2x4x4x2xf32>, tensor<4x3x3x2xf32>) {
  %0 = kiln.conv2d %x, %w strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x7x6xf32>, tensor<4x3x3x2xf32>) -> tensor<2x4x4x2xf32>
  %1 = kiln.conv2d_backward_filter %y, %g strides = [2, 2] padding = [1, 0] dilation = [1, 2] : (tensor<2x3x7x6xf32>, tensor<2x4x4x2xf32>) -> tensor<4x3x3x2xf32>
  return %0, %1 : tensor<2x4x4x2xf32>, tensor<4x3x3x2xf32>
}

// -----

// Negative: same input and column shape, but another window (dilated taps,
// more padding); both gathers stay.
// CHECK-LABEL: func.func @other_window
// CHECK-COUNT-2: outs(%{{.+}} : tensor<3x3x3x1x5x5xf32>)
// REPORT: remark: kiln-share-im2col: @other_window: 0 of 2 im2col gathers shared
func.func @other_window(%x: tensor<1x3x5x5xf32>, %w: tensor<2x3x3x3xf32>) -> (tensor<1x2x5x5xf32>, tensor<1x2x5x5xf32>) {
  %0 = kiln.conv2d %x, %w strides = [1, 1] padding = [1, 1] dilation = [1, 1] : (tensor<1x3x5x5xf32>, tensor<2x3x3x3xf32>) -> tensor<1x2x5x5xf32>
  %1 = kiln.conv2d %x, %w strides = [1, 1] padding = [2, 2] dilation = [2, 2] : (tensor<1x3x5x5xf32>, tensor<2x3x3x3xf32>) -> tensor<1x2x5x5xf32>
  return %0, %1 : tensor<1x2x5x5xf32>, tensor<1x2x5x5xf32>
}

// -----

// Only the gathers kiln-to-linalg marks are candidates: two identical
// unmarked generics stay.
// CHECK-LABEL: func.func @unmarked
// CHECK-COUNT-2: linalg.generic
// REPORT: remark: kiln-share-im2col: @unmarked: 0 of 0 im2col gathers shared
func.func @unmarked(%x: tensor<4x4xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
  %e0 = tensor.empty() : tensor<2x3xf32>
  %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} outs(%e0 : tensor<2x3xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %v = tensor.extract %x[%i, %j] : tensor<4x4xf32>
    linalg.yield %v : f32
  } -> tensor<2x3xf32>
  %e1 = tensor.empty() : tensor<2x3xf32>
  %1 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} outs(%e1 : tensor<2x3xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %v = tensor.extract %x[%i, %j] : tensor<4x4xf32>
    linalg.yield %v : f32
  } -> tensor<2x3xf32>
  return %0, %1 : tensor<2x3xf32>, tensor<2x3xf32>
}
