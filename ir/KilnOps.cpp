//===- KilnOps.cpp - Operations of the kiln dialect -----------------------===//
//
// Verifiers and result-type inference. Shape logic lives in ir/ShapeRules.cpp
// so that the frontend reports exactly the same rules to users.
//
//===----------------------------------------------------------------------===//

#include "ir/KilnOps.h"
#include "ir/ShapeRules.h"
#include "runtime/KilnABI.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SmallString.h"

#include <cmath>

using namespace mlir;
using namespace kiln;

#include "ir/KilnInterfaces.cpp.inc"
#include "ir/KilnOpsEnums.cpp.inc"

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

static RankedTensorType getTensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Emits `error` at `loc` (when there is one) and fails.
static LogicalResult inferError(std::optional<Location> loc,
                                const std::string &error) {
  return emitOptionalError(loc, error);
}

static LogicalResult inferBroadcast(std::optional<Location> loc, Value lhs,
                                    Value rhs, SmallVectorImpl<Type> &results) {
  RankedTensorType a = getTensorType(lhs), b = getTensorType(rhs);
  if (a.getElementType() != b.getElementType())
    return emitOptionalError(loc, "operands have different element types: ",
                             a.getElementType(), " and ", b.getElementType());
  std::string error;
  FailureOr<shape::Shape> shape =
      shape::broadcast(a.getShape(), b.getShape(), error);
  if (failed(shape))
    return inferError(loc, error);
  results.push_back(RankedTensorType::get(*shape, a.getElementType()));
  return success();
}

static LogicalResult inferReduce(std::optional<Location> loc, Value input,
                                 ArrayRef<int64_t> axes, bool keepDims,
                                 SmallVectorImpl<Type> &results) {
  RankedTensorType type = getTensorType(input);
  std::string error;
  FailureOr<shape::Shape> shape =
      shape::reduce(type.getShape(), axes, keepDims, error);
  if (failed(shape))
    return inferError(loc, error);
  results.push_back(RankedTensorType::get(*shape, type.getElementType()));
  return success();
}

/// Fails unless all of `types` (shaped) have one element type.
static LogicalResult verifySameElementType(Operation *op, TypeRange types) {
  Type element = cast<ShapedType>(types.front()).getElementType();
  for (Type type : types.drop_front())
    if (cast<ShapedType>(type).getElementType() != element)
      return op->emitOpError()
             << "operands and results must have one element type, got "
             << element << " and " << cast<ShapedType>(type).getElementType();
  return success();
}

/// Fails unless `op`'s operands and results have one element type.
static LogicalResult verifySameElementType(Operation *op) {
  SmallVector<Type> types(op->getOperandTypes());
  llvm::append_range(types, op->getResultTypes());
  return verifySameElementType(op, types);
}

/// The step's hyper vector (runtime/KilnABI.h), when there is one, holds
/// KILN_HYPER_COUNT floats: the lowerings read it at the KILN_HYPER_* indices.
static LogicalResult verifyHyper(Operation *op, Value hyper) {
  if (!hyper)
    return success();
  constexpr int64_t size = KILN_HYPER_COUNT;
  RankedTensorType type = getTensorType(hyper);
  if (type.getShape() != ArrayRef<int64_t>{size})
    return op->emitOpError() << "the hyper vector must have shape [" << size
                             << "] (runtime/KilnABI.h), got " << type;
  return success();
}

/// Fails unless the attribute `name` of `op` lies in [0, 1).
static LogicalResult verifyFraction(Operation *op, StringRef name,
                                    APFloat value) {
  double v = value.convertToDouble();
  if (v >= 0 && v < 1)
    return success();
  SmallString<16> text;
  value.toString(text);
  return op->emitOpError() << "'" << name << "' must be in [0, 1), got "
                           << text;
}

static LogicalResult inferLoss(std::optional<Location> loc, Value lhs,
                               LogicalResult check,
                               SmallVectorImpl<Type> &results) {
  if (failed(check))
    return failure();
  results.push_back(
      RankedTensorType::get({}, getTensorType(lhs).getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// custom<Init>: `kind` or `kind(arg, ...)`.
//===----------------------------------------------------------------------===//

static ParseResult parseInit(OpAsmParser &parser, InitKindAttr &kind,
                             DenseF64ArrayAttr &args) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<InitKind> parsed = symbolizeInitKind(keyword);
  if (!parsed)
    return parser.emitError(loc) << "unknown initializer '" << keyword << "'";
  kind = InitKindAttr::get(parser.getContext(), *parsed);
  SmallVector<double> values;
  if (succeeded(parser.parseOptionalLParen())) {
    if (parser.parseCommaSeparatedList([&]() -> ParseResult {
          double v;
          if (parser.parseFloat(v))
            return failure();
          values.push_back(v);
          return success();
        }) ||
        parser.parseRParen())
      return failure();
  }
  args = DenseF64ArrayAttr::get(parser.getContext(), values);
  return success();
}

/// Prints the shortest decimal form of `v` that parses back to the same double.
static void printShortestDouble(raw_ostream &os, double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    os << static_cast<int64_t>(v) << ".0";
    return;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (strtod(buf, nullptr) == v)
      break;
  }
  StringRef s(buf);
  os << s;
  // Keep it a float literal for the MLIR lexer.
  if (s.find_first_of(".eEn") == StringRef::npos)
    os << ".0";
}

static void printInit(OpAsmPrinter &printer, Operation *, InitKindAttr kind,
                      DenseF64ArrayAttr args) {
  printer << stringifyInitKind(kind.getValue());
  if (!args || args.empty())
    return;
  printer << "(";
  llvm::interleaveComma(args.asArrayRef(), printer, [&](double v) {
    printShortestDouble(printer.getStream(), v);
  });
  printer << ")";
}

//===----------------------------------------------------------------------===//
// custom<Keyword>: an enum attribute (KilnOps.td) as its bare keyword, `relu`.
// (The attribute's own printer writes `#kiln<activation relu>` and, stripped
// in an op's assembly, ` relu` with a space of its own.)
//===----------------------------------------------------------------------===//

template <typename AttrT>
static ParseResult parseKeyword(OpAsmParser &parser, AttrT &attr) {
  using Enum = decltype(std::declval<AttrT>().getValue());
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseKeyword(&keyword))
    return failure();
  if (std::optional<Enum> value = symbolizeEnum<Enum>(keyword)) {
    attr = AttrT::get(parser.getContext(), *value);
    return success();
  }
  InFlightDiagnostic diag = parser.emitError(loc)
                            << "unknown " << AttrT::getMnemonic() << " '"
                            << keyword << "'; expected ";
  // The cases are numbered from 0 on; past the last, the name is empty.
  for (uint32_t i = 0;; ++i) {
    StringRef name = stringifyEnum(static_cast<Enum>(i));
    if (name.empty())
      break;
    diag << (i == 0 ? "" : ", ") << name;
  }
  return diag;
}

template <typename AttrT>
static void printKeyword(OpAsmPrinter &printer, Operation *, AttrT attr) {
  printer << stringifyEnum(attr.getValue());
}

//===----------------------------------------------------------------------===//
// ParamOp / LoadParamOp / ConstantOp
//===----------------------------------------------------------------------===//

unsigned ParamOp::getNumInitArgs(InitKind kind) {
  // The contract's table (EntryTableTest checks the two enums agree).
  return contract::info(static_cast<contract::InitKind>(kind)).numArgs;
}

LogicalResult ParamOp::verify() {
  unsigned expected = getNumInitArgs(getInit());
  if (getInitArgs().size() != expected)
    return emitOpError() << "initializer '" << stringifyInitKind(getInit())
                         << "' takes " << expected << " argument(s), got "
                         << getInitArgs().size();
  return success();
}

LogicalResult
LoadParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param =
      symbolTable.lookupNearestSymbolFrom<ParamOp>(*this, getParamAttr());
  if (!param)
    return emitOpError() << "'" << getParam() << "' does not name a kiln.param";
  if (param.getType() != getType())
    return emitOpError() << "result type " << getType()
                         << " differs from the type of parameter '"
                         << getParam() << "': " << param.getType();
  return success();
}

LogicalResult ConstantOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location>, ValueRange,
                                           DictionaryAttr attributes,
                                           OpaqueProperties properties,
                                           RegionRange,
                                           SmallVectorImpl<Type> &results) {
  Properties *props = properties.as<Properties *>();
  if (!props || !props->value)
    return failure();
  results.push_back(props->value.getType());
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

/// Folds an elementwise op on two splat constants into a splat constant.
template <typename Fn>
static OpFoldResult foldSplats(Type resultType, ArrayRef<Attribute> operands,
                               Fn fn) {
  auto lhs = dyn_cast_or_null<SplatElementsAttr>(operands[0]);
  auto rhs = dyn_cast_or_null<SplatElementsAttr>(operands[1]);
  auto type = dyn_cast<RankedTensorType>(resultType);
  if (!lhs || !rhs || !type)
    return {};
  APFloat a = lhs.getSplatValue<APFloat>(), b = rhs.getSplatValue<APFloat>();
  return DenseElementsAttr::get(type, fn(a, b));
}

/// True if `attr` is a splat constant equal to `value`.
static bool isSplatOf(Attribute attr, double value) {
  auto splat = dyn_cast_or_null<SplatElementsAttr>(attr);
  return splat && splat.getSplatValue<APFloat>().convertToDouble() == value;
}

OpFoldResult AddOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 0) && getLhs().getType() == getType())
    return getLhs();
  return foldSplats(getType(), adaptor.getOperands(),
                    [](APFloat a, const APFloat &b) { return a + b; });
}
OpFoldResult SubOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 0) && getLhs().getType() == getType())
    return getLhs();
  return foldSplats(getType(), adaptor.getOperands(),
                    [](APFloat a, const APFloat &b) { return a - b; });
}
OpFoldResult MulOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 1) && getLhs().getType() == getType())
    return getLhs();
  return foldSplats(getType(), adaptor.getOperands(),
                    [](APFloat a, const APFloat &b) { return a * b; });
}
OpFoldResult DivOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 1) && getLhs().getType() == getType())
    return getLhs();
  return foldSplats(getType(), adaptor.getOperands(),
                    [](APFloat a, const APFloat &b) { return a / b; });
}
OpFoldResult MaximumOp::fold(FoldAdaptor adaptor) {
  return foldSplats(getType(), adaptor.getOperands(),
                    [](APFloat a, const APFloat &b) { return maximum(a, b); });
}
OpFoldResult MinimumOp::fold(FoldAdaptor adaptor) {
  return foldSplats(getType(), adaptor.getOperands(),
                    [](APFloat a, const APFloat &b) { return minimum(a, b); });
}
OpFoldResult GreaterOp::fold(FoldAdaptor adaptor) {
  return foldSplats(getType(), adaptor.getOperands(),
                    [](APFloat a, const APFloat &b) {
                      return APFloat(a.getSemantics(),
                                     a.compare(b) == APFloat::cmpGreaterThan);
                    });
}

#define KILN_INFER_BINARY(OP)                                                  \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &results) {                                        \
    return inferBroadcast(loc, adaptor.getLhs(), adaptor.getRhs(), results);   \
  }
KILN_INFER_BINARY(AddOp)
KILN_INFER_BINARY(SubOp)
KILN_INFER_BINARY(MulOp)
KILN_INFER_BINARY(DivOp)
KILN_INFER_BINARY(MaximumOp)
KILN_INFER_BINARY(MinimumOp)
KILN_INFER_BINARY(GreaterOp)
#undef KILN_INFER_BINARY

//===----------------------------------------------------------------------===//
// Contractions, normalizations, reductions
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  RankedTensorType a = getTensorType(adaptor.getLhs()),
                   b = getTensorType(adaptor.getRhs());
  if (a.getElementType() != b.getElementType())
    return emitOptionalError(loc, "operands have different element types: ",
                             a.getElementType(), " and ", b.getElementType());
  std::string error;
  FailureOr<shape::Shape> shape =
      shape::matmul(a.getShape(), b.getShape(), error);
  if (failed(shape))
    return inferError(loc, error);
  results.push_back(RankedTensorType::get(*shape, a.getElementType()));
  return success();
}

template <typename Op> static LogicalResult verifyAxisOp(Op op) {
  int64_t rank = op.getType().getRank();
  int64_t axis = static_cast<int64_t>(op.getAxis());
  if (axis < 0 || axis >= rank)
    return op.emitOpError() << "axis " << axis
                            << " is out of range for a tensor of rank " << rank;
  return success();
}
LogicalResult SoftmaxOp::verify() { return verifyAxisOp(*this); }
LogicalResult LogSoftmaxOp::verify() { return verifyAxisOp(*this); }

#define KILN_INFER_REDUCE(OP)                                                  \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &results) {                                        \
    return inferReduce(loc, adaptor.getInput(), adaptor.getAxes(),             \
                       adaptor.getKeepdims(), results);                        \
  }
KILN_INFER_REDUCE(ReduceSumOp)
KILN_INFER_REDUCE(ReduceMeanOp)
KILN_INFER_REDUCE(ReduceMaxOp)
#undef KILN_INFER_REDUCE

LogicalResult ArgmaxOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  RankedTensorType type = getTensorType(adaptor.getInput());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= type.getRank())
    return emitOptionalError(loc, "axis ", axis,
                             " is out of range for a tensor of rank ",
                             type.getRank());
  std::string error;
  FailureOr<shape::Shape> shape = shape::dropAxis(type.getShape(), axis, error);
  if (failed(shape))
    return inferError(loc, error);
  results.push_back(RankedTensorType::get(*shape, IntegerType::get(ctx, 32)));
  return success();
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  RankedTensorType in = getTensorType(getInput()), out = getType();
  if (in.getElementType() != out.getElementType())
    return emitOpError("cannot change the element type");
  if (in.getNumElements() != out.getNumElements())
    return emitOpError() << "cannot reshape " << in << " ("
                         << in.getNumElements() << " elements) to " << out
                         << " (" << out.getNumElements() << " elements)";
  return success();
}

OpFoldResult ReshapeOp::fold(FoldAdaptor) {
  if (getInput().getType() == getType())
    return getInput();
  // reshape(reshape(x)) = reshape(x).
  if (auto inner = getInput().getDefiningOp<ReshapeOp>()) {
    if (inner.getInput().getType() == getType())
      return inner.getInput();
    getInputMutable().assign(inner.getInput());
    return getResult();
  }
  return {};
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  RankedTensorType type = getTensorType(adaptor.getInput());
  std::string error;
  FailureOr<shape::Shape> shape =
      shape::transpose(type.getShape(), adaptor.getPerm(), error);
  if (failed(shape))
    return inferError(loc, error);
  results.push_back(RankedTensorType::get(*shape, type.getElementType()));
  return success();
}

LogicalResult SplitOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &results) {
  RankedTensorType type = getTensorType(adaptor.getInput());
  std::string error;
  FailureOr<SmallVector<shape::Shape>> pieces = shape::split(
      type.getShape(), adaptor.getAxis(), adaptor.getSizes(), error);
  if (failed(pieces))
    return inferError(loc, error);
  for (const shape::Shape &piece : *pieces)
    results.push_back(RankedTensorType::get(piece, type.getElementType()));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  SmallVector<shape::Shape> shapes;
  Type element;
  for (Value input : adaptor.getInputs()) {
    RankedTensorType type = getTensorType(input);
    if (element && type.getElementType() != element)
      return inferError(loc, "cannot concatenate tensors of different element "
                             "types");
    element = type.getElementType();
    shapes.emplace_back(type.getShape());
  }
  std::string error;
  FailureOr<shape::Shape> shape =
      shape::concat(shapes, adaptor.getAxis(), error);
  if (failed(shape))
    return inferError(loc, error);
  results.push_back(RankedTensorType::get(*shape, element));
  return success();
}

/// The result types of an attention: `[..., Tq, Dv]` and the log-sum-exp
/// `[..., Tq]`.
static LogicalResult attentionTypes(std::optional<Location> loc, Value q,
                                    Value k, Value v, Value mask, bool causal,
                                    SmallVectorImpl<Type> &results) {
  RankedTensorType tq = getTensorType(q), tk = getTensorType(k),
                   tv = getTensorType(v);
  if (tq.getElementType() != tk.getElementType() ||
      tq.getElementType() != tv.getElementType() ||
      (mask && getTensorType(mask).getElementType() != tq.getElementType()))
    return emitOptionalError(loc, "operands have different element types");
  std::string error;
  FailureOr<shape::Shape> shape = shape::attention(
      tq.getShape(), tk.getShape(), tv.getShape(), causal, error);
  if (failed(shape))
    return inferError(loc, error);
  if (mask &&
      failed(shape::attentionMask(tq.getShape(), tk.getShape(),
                                  getTensorType(mask).getShape(), error)))
    return inferError(loc, error);
  results.push_back(RankedTensorType::get(*shape, tq.getElementType()));
  results.push_back(
      RankedTensorType::get(tq.getShape().drop_back(), tq.getElementType()));
  return success();
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  return attentionTypes(loc, adaptor.getQuery(), adaptor.getKey(),
                        adaptor.getValue(), adaptor.getKeyMask(),
                        adaptor.getCausal(), results);
}

LogicalResult
AttentionBackwardOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                      Adaptor adaptor,
                                      SmallVectorImpl<Type> &results) {
  for (Value v : {adaptor.getQuery(), adaptor.getKey(), adaptor.getValue()})
    results.push_back(v.getType());
  return success();
}

/// An attention's dropout rate is in [0, 1).
static LogicalResult verifyDropout(Operation *op, double rate) {
  if (!(rate >= 0 && rate < 1))
    return op->emitOpError("needs a dropout rate in [0, 1), got ") << rate;
  return success();
}

LogicalResult AttentionOp::verify() {
  return verifyDropout(*this, getDropout().convertToDouble());
}

LogicalResult AttentionBackwardOp::verify() {
  if (failed(verifyDropout(*this, getDropout().convertToDouble())))
    return failure();
  SmallVector<Type> forward;
  if (failed(attentionTypes(getLoc(), getQuery(), getKey(), getValue(),
                            getKeyMask(), getCausal(), forward)))
    return failure();
  if (getOut().getType() != forward[0] || getDout().getType() != forward[0])
    return emitOpError("needs out and dout of the attention's type ")
           << forward[0];
  if (getLse().getType() != forward[1] || getDlse().getType() != forward[1])
    return emitOpError("needs lse and dlse of type ") << forward[1];
  return success();
}

LogicalResult LayerNormOp::verify() {
  if (getInput().getType().getRank() < 1)
    return emitOpError("needs a tensor of rank >= 1, got a scalar");
  if (!(getEps().convertToDouble() > 0))
    return emitOpError("needs eps > 0, got ") << getEps().convertToDouble();
  return success();
}

LogicalResult BroadcastToOp::verify() {
  RankedTensorType in = getTensorType(getInput()), out = getType();
  if (in.getElementType() != out.getElementType())
    return emitOpError("cannot change the element type");
  if (!shape::broadcastsTo(in.getShape(), out.getShape()))
    return emitOpError() << in << " does not broadcast to " << out;
  return success();
}

LogicalResult OneHotOp::verify() {
  RankedTensorType labels = getTensorType(getLabels()), out = getType();
  if (labels.getRank() != 1 || out.getRank() != 2 ||
      out.getDimSize(0) != labels.getDimSize(0))
    return emitOpError() << "expects labels [N] and a result [N, C], got "
                         << labels << " -> " << out;
  return success();
}

/// Checks table [V, D], ids [N] and rows [N, D] of a gather or scatter_add.
static LogicalResult verifyRows(Operation *op, RankedTensorType table,
                                RankedTensorType ids, RankedTensorType rows) {
  if (table.getRank() != 2 || ids.getRank() != 1 || rows.getRank() != 2 ||
      rows.getDimSize(0) != ids.getDimSize(0) ||
      rows.getDimSize(1) != table.getDimSize(1) ||
      rows.getElementType() != table.getElementType())
    return op->emitOpError()
           << "expects a table [V, D], ids [N] and rows [N, D] of the "
              "table's element type, got "
           << table << ", " << ids << " and " << rows;
  return success();
}

LogicalResult GatherOp::verify() {
  return verifyRows(*this, getTensorType(getTable()), getTensorType(getIds()),
                    getType());
}

LogicalResult ScatterAddOp::verify() {
  return verifyRows(*this, getType(), getTensorType(getIds()),
                    getTensorType(getUpdates()));
}

//===----------------------------------------------------------------------===//
// Convolution and pooling
//===----------------------------------------------------------------------===//

LogicalResult Conv2dOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  RankedTensorType in = getTensorType(adaptor.getInput()),
                   filter = getTensorType(adaptor.getFilter());
  if (in.getElementType() != filter.getElementType())
    return emitOptionalError(loc, "operands have different element types");
  std::string error;
  FailureOr<shape::Shape> shape =
      shape::conv2d(in.getShape(), filter.getShape(), adaptor.getStrides(),
                    adaptor.getPadding(), adaptor.getDilation(), error);
  if (failed(shape))
    return inferError(loc, error);
  results.push_back(RankedTensorType::get(*shape, in.getElementType()));
  return success();
}

/// The shared verifier of the convolution and pooling gradients, whose
/// operands are a forward op's input (or its gradient), its output (or its
/// gradient) and its attributes: `shape` is what the forward op's shape rule
/// gives for the input (or a failure, with `error`), and must be `output`'s
/// shape; `describe` names the forward computation in the message. All
/// operands and results have one element type.
template <typename Op>
static LogicalResult
verifyWindowShapes(Op op, const FailureOr<shape::Shape> &shape,
                   const std::string &error, RankedTensorType output,
                   function_ref<void(InFlightDiagnostic &)> describe) {
  if (failed(verifySameElementType(op)))
    return failure();
  if (failed(shape))
    return op.emitOpError() << error;
  if (ArrayRef<int64_t>(*shape) == output.getShape())
    return success();
  InFlightDiagnostic diag = op.emitOpError();
  describe(diag);
  return diag << " gives shape " << shape::str(*shape) << ", not " << output;
}

/// Checks that convolving `input` with `filter` gives `output`'s shape.
template <typename Op>
static LogicalResult verifyConvShapes(Op op, RankedTensorType input,
                                      RankedTensorType filter,
                                      RankedTensorType output) {
  std::string error;
  FailureOr<shape::Shape> shape =
      shape::conv2d(input.getShape(), filter.getShape(), op.getStrides(),
                    op.getPadding(), op.getDilation(), error);
  return verifyWindowShapes(
      op, shape, error, output, [&](InFlightDiagnostic &diag) {
        diag << "a convolution of " << input << " with " << filter;
      });
}

/// Checks that pooling `input` with the op's window gives `output`'s shape.
template <typename Op>
static LogicalResult verifyPoolShapes(Op op, RankedTensorType input,
                                      RankedTensorType output) {
  std::string error;
  FailureOr<shape::Shape> shape =
      shape::pool2d(input.getShape(), op.getKernel(), op.getStrides(),
                    op.getPadding(), error);
  return verifyWindowShapes(
      op, shape, error, output,
      [&](InFlightDiagnostic &diag) { diag << "pooling " << input; });
}

LogicalResult Conv2dBackwardInputOp::verify() {
  return verifyConvShapes(*this, getType(), getTensorType(getFilter()),
                          getTensorType(getGrad()));
}

LogicalResult Conv2dBackwardFilterOp::verify() {
  return verifyConvShapes(*this, getTensorType(getInput()), getType(),
                          getTensorType(getGrad()));
}

#define KILN_INFER_POOL(OP)                                                    \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &results) {                                        \
    RankedTensorType in = getTensorType(adaptor.getInput());                   \
    std::string error;                                                         \
    FailureOr<shape::Shape> shape =                                            \
        shape::pool2d(in.getShape(), adaptor.getKernel(),                      \
                      adaptor.getStrides(), adaptor.getPadding(), error);      \
    if (failed(shape))                                                         \
      return inferError(loc, error);                                           \
    results.push_back(RankedTensorType::get(*shape, in.getElementType()));     \
    return success();                                                          \
  }
KILN_INFER_POOL(MaxPool2dOp)
KILN_INFER_POOL(AvgPool2dOp)
#undef KILN_INFER_POOL

LogicalResult MaxPool2dBackwardOp::verify() {
  RankedTensorType input = getTensorType(getInput());
  if (getType() != input)
    return emitOpError() << "result type " << getType()
                         << " differs from the input's, " << input;
  if (getOutput().getType() != getGrad().getType())
    return emitOpError() << "the pooled output " << getOutput().getType()
                         << " and its gradient " << getGrad().getType()
                         << " differ in type";
  return verifyPoolShapes(*this, input, getTensorType(getOutput()));
}

LogicalResult AvgPool2dBackwardOp::verify() {
  return verifyPoolShapes(*this, getType(), getTensorType(getGrad()));
}

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

LogicalResult FusedConv2dOp::verify() {
  if (failed(verifySameElementType(*this)))
    return failure();
  RankedTensorType in = getTensorType(getInput()),
                   filter = getTensorType(getFilter());
  std::string error;
  FailureOr<shape::Shape> conv =
      shape::conv2d(in.getShape(), filter.getShape(), getStrides(),
                    getPadding(), getDilation(), error);
  if (failed(conv))
    return emitOpError() << error;
  if (getBias() && getTensorType(getBias()).getShape() !=
                       ArrayRef<int64_t>{filter.getDimSize(0)})
    return emitOpError() << "the bias must have shape [" << filter.getDimSize(0)
                         << "], got " << getBias().getType();
  shape::Shape out = *conv;
  switch (getPool()) {
  case PoolKind::none:
    if (getActivationOut())
      return emitOpError("returns the activation before pooling, but does not "
                         "pool");
    break;
  case PoolKind::max:
  case PoolKind::avg: {
    FailureOr<shape::Shape> pooled = shape::pool2d(
        *conv, getPoolKernel(), getPoolStrides(), getPoolPadding(), error);
    if (failed(pooled))
      return emitOpError() << error;
    out = *pooled;
    break;
  }
  }
  if (ArrayRef<int64_t>(out) != getResult().getType().getShape())
    return emitOpError() << "result must have shape " << shape::str(out)
                         << ", got " << getResult().getType();
  if (getActivationOut() &&
      ArrayRef<int64_t>(*conv) != getActivationOut().getType().getShape())
    return emitOpError() << "the saved activation must have shape "
                         << shape::str(*conv);
  return success();
}

LogicalResult FusedDenseOp::verify() {
  if (failed(verifySameElementType(*this)))
    return failure();
  RankedTensorType in = getTensorType(getInput()),
                   w = getTensorType(getWeight()), b = getTensorType(getBias());
  if (in.getRank() != 2 || w.getRank() != 2 || b.getRank() != 1 ||
      in.getDimSize(1) != w.getDimSize(0) || b.getDimSize(0) != w.getDimSize(1))
    return emitOpError() << "expects [M, K] @ [K, N] + [N], got " << in << ", "
                         << w << ", " << b;
  if (getType().getShape() !=
      ArrayRef<int64_t>{in.getDimSize(0), w.getDimSize(1)})
    return emitOpError() << "result must be [M, N]";
  return success();
}

//===----------------------------------------------------------------------===//
// Training-only behaviour
//===----------------------------------------------------------------------===//

LogicalResult DropoutOp::verify() {
  // The kept elements are scaled by 1 / (1 - rate).
  if (failed(verifyFraction(*this, "rate", getRate())))
    return failure();
  if (getStep() && getTensorType(getStep()).getNumElements() != 1)
    return emitOpError() << "the step must be one i32, got "
                         << getStep().getType();
  return verifyHyper(*this, getHyper());
}

OpFoldResult DropoutOp::fold(FoldAdaptor) {
  if (!getHyper() || getRate().convertToDouble() == 0)
    return getInput();
  return {};
}

LogicalResult WarmupOp::verify() {
  if (getSteps() < 1)
    return emitOpError() << "steps must be at least 1, got " << getSteps();
  return verifyHyper(*this, getHyper());
}

LogicalResult RandomUniformOp::verify() {
  return verifyHyper(*this, getHyper());
}

LogicalResult RandomNormalOp::verify() {
  return verifyHyper(*this, getHyper());
}

LogicalResult
AssignParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param =
      symbolTable.lookupNearestSymbolFrom<ParamOp>(*this, getParamAttr());
  if (!param)
    return emitOpError() << "'" << getParam() << "' does not name a kiln.param";
  if (!param.getBuffer())
    return emitOpError() << "parameter '" << getParam()
                         << "' is trained by the optimizer; only a buffer "
                            "parameter can be assigned";
  if (param.getType() != getValue().getType())
    return emitOpError() << "value type " << getValue().getType()
                         << " differs from the type of parameter '"
                         << getParam() << "': " << param.getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

LogicalResult CrossEntropyOp::inferReturnTypes(MLIRContext *,
                                               std::optional<Location> loc,
                                               Adaptor adaptor,
                                               SmallVectorImpl<Type> &results) {
  std::string error;
  LogicalResult check =
      shape::crossEntropy(getTensorType(adaptor.getLhs()).getShape(),
                          getTensorType(adaptor.getRhs()).getShape(), error);
  if (failed(check))
    return inferError(loc, error);
  return inferLoss(loc, adaptor.getLhs(), check, results);
}

#define KILN_INFER_SAME_SHAPE_LOSS(OP)                                         \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &results) {                                        \
    std::string error;                                                         \
    RankedTensorType a = getTensorType(adaptor.getLhs()),                      \
                     b = getTensorType(adaptor.getRhs());                      \
    LogicalResult check =                                                      \
        shape::sameShapeLoss(a.getShape(), b.getShape(), error);               \
    if (failed(check))                                                         \
      return inferError(loc, error);                                           \
    if (a.getElementType() != b.getElementType())                              \
      return emitOptionalError(loc, "operands have different element types");  \
    return inferLoss(loc, adaptor.getLhs(), check, results);                   \
  }
KILN_INFER_SAME_SHAPE_LOSS(MseOp)
KILN_INFER_SAME_SHAPE_LOSS(BceWithLogitsOp)
#undef KILN_INFER_SAME_SHAPE_LOSS

//===----------------------------------------------------------------------===//
// Optimizer updates
//===----------------------------------------------------------------------===//

LogicalResult SgdUpdateOp::verify() { return verifyHyper(*this, getHyper()); }

LogicalResult MomentumUpdateOp::verify() {
  return verifyHyper(*this, getHyper());
}

LogicalResult AdamUpdateOp::verify() {
  // The bias corrections divide by 1 - beta^t, the update by sqrt(v) + eps.
  if (failed(verifyFraction(*this, "beta1", getBeta1())) ||
      failed(verifyFraction(*this, "beta2", getBeta2())))
    return failure();
  if (!(getEps().convertToDouble() > 0)) {
    SmallString<16> text;
    getEps().toString(text);
    return emitOpError() << "'eps' must be > 0, got " << text;
  }
  return verifyHyper(*this, getHyper());
}

#define GET_OP_CLASSES
#include "ir/KilnOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Recurrence
//===----------------------------------------------------------------------===//

/// `shape` with `axis` removed.
static SmallVector<int64_t> dropDim(ArrayRef<int64_t> shape, int64_t axis) {
  SmallVector<int64_t> out(shape);
  out.erase(out.begin() + axis);
  return out;
}

RankedTensorType ScanOp::getSliceType(Type sequence) {
  auto type = cast<RankedTensorType>(sequence);
  return RankedTensorType::get(dropDim(type.getShape(), getAxis()),
                               type.getElementType());
}

namespace {

/// A scan like `scan` with results `types`, `carries` and `consts`, that takes
/// over its body with the terminator yielding `yielded`: what the patterns
/// below build when they change what a scan carries, stacks or captures. The
/// caller replaces `scan`'s results.
ScanOp rebuildScan(PatternRewriter &rewriter, ScanOp scan, TypeRange types,
                   ValueRange carries, ValueRange consts, ValueRange yielded) {
  auto yield = cast<YieldOp>(scan.getBody().front().getTerminator());
  rewriter.setInsertionPoint(yield);
  rewriter.replaceOpWithNewOp<YieldOp>(yield, yielded);
  rewriter.setInsertionPoint(scan);
  auto rebuilt = rewriter.create<ScanOp>(
      scan.getLoc(), types, carries, scan.getXs(), consts, scan.getLengthAttr(),
      scan.getAxisAttr(), scan.getReverseAttr());
  rewriter.inlineRegionBefore(scan.getBody(), rebuilt.getBody(),
                              rebuilt.getBody().end());
  return rebuilt;
}

/// An op of a scan's body that reads only the consts computes the same value
/// at every step (the transpose of a weight in the backward scan): compute it
/// once before the loop, and pass it in as a const.
struct HoistLoopInvariantOps : OpRewritePattern<ScanOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ScanOp scan,
                                PatternRewriter &rewriter) const override {
    Block &body = scan.getBody().front();
    unsigned firstConst = scan.getCarries().size() + scan.getXs().size();
    auto constIndex = [&](Value v) -> std::optional<unsigned> {
      auto arg = dyn_cast<BlockArgument>(v);
      if (!arg || arg.getOwner() != &body || arg.getArgNumber() < firstConst)
        return std::nullopt;
      return arg.getArgNumber() - firstConst;
    };
    for (Operation &op : body.without_terminator()) {
      // Constants stay: they cost nothing inside the loop.
      if (op.getNumRegions() || !op.getNumOperands() || !isPure(&op) ||
          !llvm::all_of(op.getOperands(),
                        [&](Value v) { return constIndex(v).has_value(); }))
        continue;
      IRMapping map;
      for (Value v : op.getOperands())
        map.map(v, scan.getConsts()[*constIndex(v)]);
      rewriter.setInsertionPoint(scan);
      Operation *hoisted = rewriter.clone(op, map);
      SmallVector<Value> consts(scan.getConsts());
      rewriter.modifyOpInPlace(scan, [&] {
        for (auto [inner, outer] :
             llvm::zip(op.getResults(), hoisted->getResults())) {
          inner.replaceAllUsesWith(
              body.addArgument(inner.getType(), inner.getLoc()));
          consts.push_back(outer);
        }
        scan.getConstsMutable().assign(consts);
      });
      rewriter.eraseOp(&op);
      return success();
    }
    return failure();
  }
};

/// Stacked outputs that nothing reads are not stacked (the gradient of a
/// sequence that is a model input; the states of a layer whose last state
/// alone is used); the body's ops that computed them then die.
struct DropUnusedStackedOutputs : OpRewritePattern<ScanOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ScanOp scan,
                                PatternRewriter &rewriter) const override {
    size_t numCarries = scan.getCarries().size();
    SmallVector<Type> types;
    SmallVector<unsigned> kept;
    for (OpResult r : scan.getResults())
      if (r.getResultNumber() < numCarries || !r.use_empty()) {
        types.push_back(r.getType());
        kept.push_back(r.getResultNumber());
      }
    if (kept.size() == scan.getNumResults())
      return failure();
    auto yield = cast<YieldOp>(scan.getBody().front().getTerminator());
    SmallVector<Value> values;
    for (unsigned i : kept)
      values.push_back(yield.getValues()[i]);
    ScanOp smaller = rebuildScan(rewriter, scan, types, scan.getCarries(),
                                 scan.getConsts(), values);
    SmallVector<Value> replacements(scan.getNumResults());
    for (auto [i, index] : llvm::enumerate(kept))
      replacements[index] = smaller.getResult(i);
    rewriter.replaceOp(scan, replacements);
    return success();
  }
};

/// Two stacked outputs of the same value are one.
struct MergeDuplicateStackedOutputs : OpRewritePattern<ScanOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ScanOp scan,
                                PatternRewriter &rewriter) const override {
    auto yield = cast<YieldOp>(scan.getBody().front().getTerminator());
    unsigned numCarries = scan.getCarries().size();
    ValueRange values = yield.getValues();
    for (unsigned j = numCarries; j < values.size(); ++j)
      for (unsigned k = numCarries; k < j; ++k)
        if (values[j] == values[k] && !scan.getResult(j).use_empty()) {
          rewriter.replaceAllUsesWith(scan.getResult(j), scan.getResult(k));
          return success(); // DropUnusedStackedOutputs removes it
        }
    return failure();
  }
};

/// Sequences and consts that the body no longer reads are not passed in.
struct DropUnusedInputs : OpRewritePattern<ScanOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ScanOp scan,
                                PatternRewriter &rewriter) const override {
    Block &body = scan.getBody().front();
    unsigned numCarries = scan.getCarries().size();
    unsigned numXs = scan.getXs().size();
    for (BlockArgument arg : llvm::reverse(body.getArguments())) {
      unsigned i = arg.getArgNumber();
      if (i < numCarries || !arg.use_empty())
        continue;
      rewriter.modifyOpInPlace(scan, [&] {
        if (i < numCarries + numXs)
          scan.getXsMutable().erase(i - numCarries);
        else
          scan.getConstsMutable().erase(i - numCarries - numXs);
        body.eraseArgument(i);
      });
      return success();
    }
    return failure();
  }
};

/// A carry that accumulates `acc + a_t^T @ b_t` (a weight's gradient in a
/// backward scan) or `acc + sum(b_t, axis 0)` (a bias's) is computed after the
/// loop instead, as one matmul (or reduction) over all the steps' rows: the
/// loop stacks b_t (and a_t, unless it is a slice of a sequence already) and
/// carries the accumulator through unchanged. One [K, T*B] x [T*B, N]
/// product runs far faster than T small ones added up.
struct HoistAccumulatedProducts : OpRewritePattern<ScanOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ScanOp scan,
                                PatternRewriter &rewriter) const override {
    int64_t axis = scan.getAxis(), length = scan.getLength();
    if (axis > 1)
      return failure();
    Block &body = scan.getBody().front();
    auto yield = cast<YieldOp>(body.getTerminator());
    unsigned numCarries = scan.getCarries().size();
    unsigned numXs = scan.getXs().size();
    // A step value of rank 2 that varies per step: a sequence slice or a
    // value the body computes.
    auto perStep = [&](Value v) {
      auto type = dyn_cast<RankedTensorType>(v.getType());
      if (!type || type.getRank() != 2)
        return false;
      auto arg = dyn_cast<BlockArgument>(v);
      if (!arg)
        return v.getParentBlock() == &body;
      return arg.getOwner() == &body && arg.getArgNumber() >= numCarries &&
             arg.getArgNumber() < numCarries + numXs;
    };
    for (unsigned i = 0; i < numCarries; ++i) {
      BlockArgument acc = body.getArgument(i);
      auto add = yield.getValues()[i].getDefiningOp<AddOp>();
      if (!add || !acc.hasOneUse() || add.getType() != acc.getType())
        continue;
      Value term = add.getLhs() == acc   ? add.getRhs()
                   : add.getRhs() == acc ? add.getLhs()
                                         : Value();
      if (!term)
        continue;
      SmallVector<Value, 2> factors;
      if (auto matmul = term.getDefiningOp<MatmulOp>()) {
        auto t = matmul.getLhs().getDefiningOp<TransposeOp>();
        if (!t || t.getPerm() != ArrayRef<int64_t>{1, 0})
          continue;
        factors = {t.getInput(), matmul.getRhs()};
      } else if (auto sum = term.getDefiningOp<ReduceSumOp>()) {
        if (sum.getAxes() != ArrayRef<int64_t>{0} || sum.getKeepdims())
          continue;
        factors = {sum.getInput()};
      } else {
        continue;
      }
      if (!llvm::all_of(factors, perStep))
        continue;

      // The new scan: the same, stacking the factors that are not sequences.
      SmallVector<Value> stackedValues(
          yield.getValues().drop_front(numCarries));
      SmallVector<Type> types(scan.getResultTypes());
      SmallVector<int> stackIndex; // per factor: its new output, or -1
      for (Value f : factors) {
        auto arg = dyn_cast<BlockArgument>(f);
        if (arg) {
          stackIndex.push_back(-1);
          continue;
        }
        stackIndex.push_back(types.size());
        auto type = cast<RankedTensorType>(f.getType());
        SmallVector<int64_t> shape(type.getShape());
        shape.insert(shape.begin() + axis, length);
        types.push_back(RankedTensorType::get(shape, type.getElementType()));
        stackedValues.push_back(f);
      }
      SmallVector<Value> values(yield.getValues().take_front(numCarries));
      values[i] = acc;
      llvm::append_range(values, stackedValues);
      ScanOp bigger = rebuildScan(rewriter, scan, types, scan.getCarries(),
                                  scan.getConsts(), values);

      // After the loop: every step's rows at once.
      rewriter.setInsertionPointAfter(bigger);
      Location loc = scan.getLoc();
      SmallVector<Value, 2> flat;
      for (auto [f, index] : llvm::zip(factors, stackIndex)) {
        Value seq = index < 0
                        ? bigger.getXs()[cast<BlockArgument>(f).getArgNumber() -
                                         numCarries]
                        : bigger.getResult(index);
        auto type = cast<RankedTensorType>(seq.getType());
        auto flatType = RankedTensorType::get(
            {type.getDimSize(0) * type.getDimSize(1), type.getDimSize(2)},
            type.getElementType());
        flat.push_back(rewriter.create<ReshapeOp>(loc, flatType, seq));
      }
      Value whole;
      if (flat.size() == 2) {
        Value at =
            rewriter.create<TransposeOp>(loc, flat[0], ArrayRef<int64_t>{1, 0});
        whole = rewriter.create<MatmulOp>(loc, at, flat[1]);
      } else {
        whole = rewriter.create<ReduceSumOp>(loc, flat[0], ArrayRef<int64_t>{0},
                                             false);
      }
      Value total = rewriter.create<AddOp>(loc, bigger.getResult(i), whole);
      SmallVector<Value> replacements(
          bigger.getResults().take_front(scan.getNumResults()));
      replacements[i] = total;
      rewriter.replaceOp(scan, replacements);
      return success();
    }
    return failure();
  }
};

/// A carry the body yields back unchanged is the same at every step: a const.
struct PassThroughCarriesAreConsts : OpRewritePattern<ScanOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ScanOp scan,
                                PatternRewriter &rewriter) const override {
    Block &body = scan.getBody().front();
    auto yield = cast<YieldOp>(body.getTerminator());
    unsigned numCarries = scan.getCarries().size();
    for (unsigned i = 0; i < numCarries; ++i) {
      BlockArgument arg = body.getArgument(i);
      if (yield.getValues()[i] != arg)
        continue;
      Value init = scan.getCarries()[i];
      SmallVector<Value> carries(scan.getCarries()), consts(scan.getConsts()),
          values(yield.getValues());
      SmallVector<Type> types(scan.getResultTypes());
      carries.erase(carries.begin() + i);
      consts.push_back(init);
      values.erase(values.begin() + i);
      types.erase(types.begin() + i);
      ScanOp smaller =
          rebuildScan(rewriter, scan, types, carries, consts, values);
      Block &moved = smaller.getBody().front();
      BlockArgument asConst = moved.addArgument(arg.getType(), arg.getLoc());
      rewriter.replaceAllUsesWith(arg, asConst);
      moved.eraseArgument(i);
      SmallVector<Value> replacements;
      for (unsigned r = 0; r < scan.getNumResults(); ++r)
        replacements.push_back(r == i  ? init
                               : r < i ? smaller.getResult(r)
                                       : smaller.getResult(r - 1));
      rewriter.replaceOp(scan, replacements);
      return success();
    }
    return failure();
  }
};

} // namespace

void ScanOp::getCanonicalizationPatterns(RewritePatternSet &patterns,
                                         MLIRContext *context) {
  patterns.add<HoistLoopInvariantOps, DropUnusedStackedOutputs,
               MergeDuplicateStackedOutputs, DropUnusedInputs,
               HoistAccumulatedProducts, PassThroughCarriesAreConsts>(context);
}

LogicalResult ScanOp::verify() {
  int64_t length = getLength(), axis = getAxis();
  if (length < 1)
    return emitOpError("length must be positive, got ") << length;
  if (axis < 0)
    return emitOpError("axis must be non-negative, got ") << axis;
  for (auto [i, x] : llvm::enumerate(getXs())) {
    RankedTensorType type = getTensorType(x);
    if (type.getRank() <= axis)
      return emitOpError("sequence #")
             << i << " of type " << type << " has no axis " << axis;
    if (type.getDimSize(axis) != length)
      return emitOpError("sequence #")
             << i << " of type " << type << " has " << type.getDimSize(axis)
             << " steps along axis " << axis << ", not " << length;
  }
  size_t numCarries = getCarries().size();
  if (getNumResults() < numCarries)
    return emitOpError("has ")
           << getNumResults() << " results but " << numCarries << " carries";
  for (auto [i, pair] :
       llvm::enumerate(llvm::zip(getCarries(), getFinalCarries())))
    if (std::get<0>(pair).getType() != std::get<1>(pair).getType())
      return emitOpError("final carry #")
             << i << " has type " << std::get<1>(pair).getType()
             << " but its initial value " << std::get<0>(pair).getType();
  for (auto [i, y] : llvm::enumerate(getStacked()))
    if (getTensorType(y).getRank() <= axis ||
        getTensorType(y).getDimSize(axis) != length)
      return emitOpError("stacked output #")
             << i << " of type " << y.getType() << " does not have " << length
             << " steps along axis " << axis;
  return success();
}

LogicalResult ScanOp::verifyRegions() {
  Block &body = getBody().front();
  // Block arguments: carries, slices of xs, consts.
  SmallVector<Type> expected(getCarries().getTypes());
  for (Value x : getXs())
    expected.push_back(getSliceType(x.getType()));
  llvm::append_range(expected, getConsts().getTypes());
  if (body.getNumArguments() != expected.size())
    return emitOpError("body takes ")
           << body.getNumArguments() << " arguments, expected "
           << expected.size() << " (carries, sequence slices, consts)";
  for (auto [i, pair] :
       llvm::enumerate(llvm::zip(body.getArgumentTypes(), expected)))
    if (std::get<0>(pair) != std::get<1>(pair))
      return emitOpError("body argument #")
             << i << " has type " << std::get<0>(pair) << ", expected "
             << std::get<1>(pair);
  // Yield: new carries, then one slice per stacked output.
  auto yield = dyn_cast<YieldOp>(body.getTerminator());
  if (!yield)
    return emitOpError("body must end in kiln.yield");
  if (yield.getValues().size() != getNumResults())
    return emitOpError("body yields ")
           << yield.getValues().size() << " values for " << getNumResults()
           << " results";
  size_t numCarries = getCarries().size();
  for (auto [i, v] : llvm::enumerate(yield.getValues())) {
    Type want = i < numCarries ? getCarries()[i].getType()
                               : Type(getSliceType(getResult(i).getType()));
    if (v.getType() != want)
      return yield.emitOpError("value #")
             << i << " has type " << v.getType() << ", expected " << want
             << (i < numCarries ? " (a carry keeps its type)"
                                : " (one step of the stacked output)");
  }
  return success();
}
