//===- MLIRGen.cpp - Builds kiln IR from an elaborated model --------------===//
//
// One graph node becomes one kiln op, at the node's source location (a
// CallSiteLoc chain for code inlined from functions).
//
//===----------------------------------------------------------------------===//

#include "frontend/MLIRGen.h"

#include "ir/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

using namespace mlir;
using namespace kiln;
using graph::OpKind;

namespace {

class Generator {
public:
  Generator(MLIRContext &ctx, const graph::Model &model)
      : model(model), b(&ctx) {}

  OwningOpRef<ModuleOp> run();

private:
  RankedTensorType convert(const graph::TensorType &t) {
    Type element = t.dtype == graph::DType::F32 ? Type(b.getF32Type())
                                                : Type(b.getI32Type());
    return RankedTensorType::get(t.shape, element);
  }
  Attribute convert(const graph::Setting &s) {
    if (auto *i = std::get_if<int64_t>(&s))
      return b.getI64IntegerAttr(*i);
    if (auto *d = std::get_if<double>(&s))
      return b.getF64FloatAttr(*d);
    if (auto *v = std::get_if<bool>(&s))
      return b.getBoolAttr(*v);
    return b.getStringAttr(std::get<std::string>(s));
  }
  DictionaryAttr convert(const std::map<std::string, graph::Setting> &m) {
    SmallVector<NamedAttribute> attrs;
    for (const auto &[k, v] : m)
      attrs.push_back(b.getNamedAttr(k, convert(v)));
    return b.getDictionaryAttr(attrs);
  }
  DictionaryAttr convert(const std::map<std::string, graph::DataSource> &m) {
    SmallVector<NamedAttribute> attrs;
    for (const auto &[input, source] : m) {
      SmallVector<NamedAttribute> fields{
          b.getNamedAttr("format", b.getStringAttr(source.format)),
          b.getNamedAttr("path", b.getStringAttr(source.path))};
      for (const auto &[k, v] : source.options)
        fields.push_back(b.getNamedAttr(k, convert(v)));
      attrs.push_back(b.getNamedAttr(input, b.getDictionaryAttr(fields)));
    }
    return b.getDictionaryAttr(attrs);
  }
  DictionaryAttr convert(const graph::TrainConfig &t) {
    SmallVector<NamedAttribute> optimizer{
        b.getNamedAttr("name", b.getStringAttr(t.optimizer))};
    for (NamedAttribute a : convert(t.hyper))
      optimizer.push_back(a);
    return b.getDictionaryAttr({
        b.getNamedAttr("optimizer", b.getDictionaryAttr(optimizer)),
        b.getNamedAttr("batch", b.getI64IntegerAttr(t.batch)),
        b.getNamedAttr("epochs", b.getI64IntegerAttr(t.epochs)),
        b.getNamedAttr("seed", b.getI64IntegerAttr(t.seed)),
        b.getNamedAttr("data", convert(t.data)),
        b.getNamedAttr("test", convert(t.test)),
    });
  }

  Value emit(const graph::Node &node, ArrayRef<Value> operands,
             func::FuncOp func);

  const graph::Model &model;
  OpBuilder b;
};

Value Generator::emit(const graph::Node &node, ArrayRef<Value> ops,
                      func::FuncOp func) {
  Location loc = node.loc;
  RankedTensorType type = convert(node.type);
  switch (node.kind) {
  case OpKind::Input:
    return func.getArgument(node.index);
  case OpKind::Param:
    return b.create<LoadParamOp>(loc, type, model.params[node.index].name);
  case OpKind::Constant: {
    Attribute value =
        node.type.dtype == graph::DType::F32
            ? Attribute(b.getF32FloatAttr(node.value))
            : Attribute(b.getI32IntegerAttr(static_cast<int32_t>(node.value)));
    return b.create<ConstantOp>(loc, DenseElementsAttr::get(type, value));
  }
#define BINARY(KIND, OP)                                                       \
  case OpKind::KIND:                                                           \
    return b.create<OP>(loc, type, ops[0], ops[1]);
    BINARY(Add, AddOp)
    BINARY(Sub, SubOp)
    BINARY(Mul, MulOp)
    BINARY(Div, DivOp)
    BINARY(Maximum, MaximumOp)
    BINARY(Minimum, MinimumOp)
    BINARY(Matmul, MatmulOp)
    BINARY(CrossEntropy, CrossEntropyOp)
    BINARY(Mse, MseOp)
    BINARY(BceWithLogits, BceWithLogitsOp)
#undef BINARY
#define UNARY(KIND, OP)                                                        \
  case OpKind::KIND:                                                           \
    return b.create<OP>(loc, type, ops[0]);
    UNARY(Neg, NegOp)
    UNARY(Relu, ReluOp)
    UNARY(Sigmoid, SigmoidOp)
    UNARY(Tanh, TanhOp)
    UNARY(Exp, ExpOp)
    UNARY(Log, LogOp)
    UNARY(Sqrt, SqrtOp)
    UNARY(Abs, AbsOp)
    UNARY(Gelu, GeluOp)
    UNARY(Reshape, ReshapeOp)
#undef UNARY
  case OpKind::Softmax:
    return b.create<SoftmaxOp>(loc, type, ops[0],
                               b.getI64IntegerAttr(node.axis));
  case OpKind::LogSoftmax:
    return b.create<LogSoftmaxOp>(loc, type, ops[0],
                                  b.getI64IntegerAttr(node.axis));
  case OpKind::Argmax:
    return b.create<ArgmaxOp>(loc, type, ops[0],
                              b.getI64IntegerAttr(node.axis));
#define REDUCE(KIND, OP)                                                       \
  case OpKind::KIND:                                                           \
    return b.create<OP>(loc, type, ops[0], b.getDenseI64ArrayAttr(node.axes),  \
                        b.getBoolAttr(node.keepDims));
    REDUCE(ReduceSum, ReduceSumOp)
    REDUCE(ReduceMean, ReduceMeanOp)
    REDUCE(ReduceMax, ReduceMaxOp)
#undef REDUCE
  case OpKind::Conv2d:
    return b.create<Conv2dOp>(loc, type, ops[0], ops[1],
                              b.getDenseI64ArrayAttr(node.strides),
                              b.getDenseI64ArrayAttr(node.padding),
                              b.getDenseI64ArrayAttr(node.dilation));
  case OpKind::MaxPool2d:
    return b.create<MaxPool2dOp>(loc, type, ops[0],
                                 b.getDenseI64ArrayAttr(node.kernel),
                                 b.getDenseI64ArrayAttr(node.strides),
                                 b.getDenseI64ArrayAttr(node.padding));
  case OpKind::AvgPool2d:
    return b.create<AvgPool2dOp>(loc, type, ops[0],
                                 b.getDenseI64ArrayAttr(node.kernel),
                                 b.getDenseI64ArrayAttr(node.strides),
                                 b.getDenseI64ArrayAttr(node.padding));
  case OpKind::Dropout:
    return b.create<DropoutOp>(loc, type, ops[0], Value(),
                               b.getF64FloatAttr(node.value),
                               b.getI64IntegerAttr(node.index));
  case OpKind::IfTraining:
    return b.create<IfTrainingOp>(loc, type, ops[0], ops[1]);
  case OpKind::AssignParam:
    b.create<AssignParamOp>(loc, model.params[node.index].name, ops[0]);
    return ops[0];
  case OpKind::Transpose:
    return b.create<TransposeOp>(loc, type, ops[0],
                                 b.getDenseI64ArrayAttr(node.axes));
  }
  llvm_unreachable("unknown node kind");
}

OwningOpRef<ModuleOp> Generator::run() {
  Location fileLoc =
      model.inputs.empty() ? b.getUnknownLoc() : model.inputs.front().loc;
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  module->getOperation()->setAttr(KilnDialect::kModelAttrName,
                                  b.getStringAttr(model.name));
  if (model.train)
    module->getOperation()->setAttr(KilnDialect::kTrainAttrName,
                                    convert(*model.train));
  b.setInsertionPointToEnd(module->getBody());

  for (const graph::Param &p : model.params) {
    auto param = b.create<ParamOp>(p.loc, p.name, convert(p.type), p.init,
                                   b.getDenseF64ArrayAttr(p.initArgs));
    param.setBuffer(p.buffer);
  }

  SmallVector<Type> argTypes, resultTypes;
  for (const graph::Input &in : model.inputs)
    argTypes.push_back(convert(in.type));
  resultTypes.push_back(convert(model.nodes[model.loss].type));
  for (const graph::Output &out : model.outputs)
    resultTypes.push_back(convert(model.nodes[out.node].type));
  auto func = b.create<func::FuncOp>(fileLoc, "forward",
                                     b.getFunctionType(argTypes, resultTypes));
  for (auto [i, in] : llvm::enumerate(model.inputs))
    func.setArgAttr(i, KilnDialect::kInputAttrName, b.getStringAttr(in.name));
  func.setResultAttr(0, KilnDialect::kLossAttrName, b.getUnitAttr());
  for (auto [i, out] : llvm::enumerate(model.outputs))
    func.setResultAttr(i + 1, KilnDialect::kOutputAttrName,
                       b.getStringAttr(out.name));

  Block *entry = func.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  std::vector<Value> values;
  values.reserve(model.nodes.size());
  for (const graph::Node &node : model.nodes) {
    SmallVector<Value, 2> operands;
    for (unsigned id : node.operands)
      operands.push_back(values[id]);
    values.push_back(emit(node, operands, func));
  }
  SmallVector<Value> results{values[model.loss]};
  for (const graph::Output &out : model.outputs)
    results.push_back(values[out.node]);
  b.create<func::ReturnOp>(fileLoc, results);

  if (failed(verify(*module))) {
    emitError(fileLoc, "internal error: kilnc built invalid IR for model '")
        << model.name << "'";
    return nullptr;
  }
  return module;
}

} // namespace

OwningOpRef<ModuleOp> kiln::mlirGen(MLIRContext &ctx,
                                    const graph::Model &model) {
  ctx.loadDialect<KilnDialect, func::FuncDialect>();
  return Generator(ctx, model).run();
}
