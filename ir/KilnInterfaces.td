//===- KilnInterfaces.td - Interfaces of the kiln dialect ------*- tablegen -*-===//

#ifndef KILN_INTERFACES_TD
#define KILN_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Kiln_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::kiln";
  let description = [{
    An op with a reverse-mode gradient rule. All rules live in
    ir/GradientRules.cpp, one short function per op.
  }];
  let methods = [
    InterfaceMethod<[{
        Given the gradient of each of the op's results (in result order; the
        driver passes zeros for a float result that does not reach the loss, and
        null for a non-float result), builds and returns the gradient of each
        operand, in operand order: null for an operand that is not
        differentiable (integer labels, masks). A returned gradient may have
        the broadcast shape of the result; the autodiff driver reduces it to
        the operand's shape. A rule that cannot differentiate this instance
        emits an error and returns no gradients.
      }],
      "::llvm::SmallVector<::mlir::Value>", "buildGradients",
      (ins "::mlir::OpBuilder &":$builder,
           "::mlir::ArrayRef<::mlir::Value>":$resultGrads)>,
  ];
}

#endif // KILN_INTERFACES_TD
