//===- KilnDialect.td - The kiln dialect definition ------------*- tablegen -*-===//
//
// The kiln dialect is Kiln's own IR: a static-shape tensor graph of neural-network
// ops, produced by the frontend and transformed by Kiln's passes (autodiff, fusion,
// memory planning) before lowering to linalg.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_TD
#define KILN_DIALECT_TD

include "mlir/IR/OpBase.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln";
  let summary = "Static-shape neural-network graphs";
  let description = [{
    Tensors are builtin ranked tensors with fully static shapes (f32, f64 or i32
    elements). Trainable parameters are module-level `kiln.param` symbols, read inside
    functions with `kiln.load_param`. A model's forward graph is the function
    `@forward`, whose arguments are the model inputs (`kiln.input` argument
    attribute) and whose results are the loss (`kiln.loss`) and named outputs
    (`kiln.output`).
  }];
  let hasConstantMaterializer = 1;
  // The enum attributes of KilnOps.td (`#kiln<activation relu>`).
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
    /// Attribute names shared by the frontend, the passes and the runtime ABI
    /// (defined in runtime/Contract.h).
    static constexpr llvm::StringLiteral kInputAttrName =
        ::kiln::contract::kInputAttr;
    static constexpr llvm::StringLiteral kOutputAttrName =
        ::kiln::contract::kOutputAttr;
    static constexpr llvm::StringLiteral kLossAttrName =
        ::kiln::contract::kLossAttr;
    static constexpr llvm::StringLiteral kModelAttrName =
        ::kiln::contract::kModelAttr;
    static constexpr llvm::StringLiteral kTrainAttrName =
        ::kiln::contract::kTrainAttr;
  }];
}

#endif // KILN_DIALECT_TD
