//===- Graph.h - The elaborated, typed model ----------------------*- C++
//-*-===//
//
// Semantic analysis elaborates a .kiln model into this flat, fully typed
// dataflow graph: every function call inlined, every shape static, every
// parameter named and every training setting resolved. Everything here has been
// checked; MLIRGen translates it one node to one kiln op without further
// analysis.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_GRAPH_H
#define KILN_FRONTEND_GRAPH_H

#include "ir/KilnOps.h"

#include "mlir/IR/Location.h"
#include "llvm/ADT/SmallVector.h"

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kiln::graph {

enum class DType { F32, I32 };

/// The DSL spelling of a dtype (`f32`).
llvm::StringRef str(DType dtype);

struct TensorType {
  DType dtype = DType::F32;
  llvm::SmallVector<int64_t, 4> shape;
  bool operator==(const TensorType &o) const {
    return dtype == o.dtype && shape == o.shape;
  }
  bool operator!=(const TensorType &o) const { return !(*this == o); }
  /// `f32[64, 784]`
  std::string str() const;
};

/// What a node computes; one kind per kiln op.
enum class OpKind {
  Input,    // model input number `index`
  Param,    // parameter number `index`
  Constant, // a scalar `value` of the node's type
  // elementwise binary (broadcasting)
  Add,
  Sub,
  Mul,
  Div,
  Maximum,
  Minimum,
  // elementwise unary
  Neg,
  Relu,
  Sigmoid,
  Tanh,
  Exp,
  Log,
  Sqrt,
  Abs,
  Matmul,
  Softmax,
  LogSoftmax, // `axis`
  ReduceSum,
  ReduceMean,
  ReduceMax, // `axes`, `keepDims`
  Argmax,    // `axis`
  Reshape,   // to the node's type
  Transpose, // `axes` holds the permutation
  CrossEntropy,
  Mse,
  BceWithLogits,
  Gelu,
  Conv2d,      // operands: input, filter; `strides`, `padding`, `dilation`
  MaxPool2d,   // `kernel`, `strides`, `padding`
  AvgPool2d,   // `kernel`, `strides`, `padding`
  Dropout,     // `value` = rate, `index` = salt
  IfTraining,  // operands: training value, evaluation value
  AssignParam, // operand: the new value of buffer parameter `index`
};

struct Node {
  Node(OpKind kind, TensorType type, mlir::Location loc)
      : kind(kind), type(std::move(type)), loc(loc) {}
  OpKind kind;
  TensorType type;
  llvm::SmallVector<unsigned, 2> operands; // indices of earlier nodes
  mlir::Location loc;
  // Attributes, by kind.
  unsigned index = 0;
  double value = 0;
  int64_t axis = 0;
  llvm::SmallVector<int64_t, 4> axes;
  bool keepDims = false;
  llvm::SmallVector<int64_t, 2> strides, padding, dilation, kernel;
};

struct Input {
  std::string name;
  TensorType type;
  mlir::Location loc;
};

struct Param {
  std::string name; // hierarchical: `fc1.w`
  TensorType type;
  InitKind init;
  llvm::SmallVector<double, 2> initArgs;
  mlir::Location loc;
  /// Not trained: set by AssignParam (batch normalization's running
  /// statistics).
  bool buffer = false;
};

struct Output {
  std::string name;
  unsigned node;
  mlir::Location loc;
};

/// A scalar setting value (hyper-parameters, data options).
using Setting = std::variant<int64_t, double, bool, std::string>;

/// Where the data for one model input comes from: `idx("path", scale = 1/255)`.
struct DataSource {
  std::string format; // idx | npy | csv
  std::string path;
  std::map<std::string, Setting> options;
};

struct TrainConfig {
  std::string optimizer; // sgd | momentum | adam | adamw
  std::map<std::string, Setting>
      hyper; // every hyper-parameter, defaults filled
  int64_t batch = 0;
  int64_t epochs = 1;
  int64_t seed = 0;
  std::map<std::string, DataSource> data; // by input name
  std::map<std::string, DataSource> test; // by input name
};

struct Model {
  std::string name;
  std::vector<Input> inputs;
  std::vector<Param> params;
  std::vector<Node> nodes;
  unsigned loss = 0;
  std::vector<Output> outputs;
  std::optional<TrainConfig> train;
};

} // namespace kiln::graph

#endif // KILN_FRONTEND_GRAPH_H
