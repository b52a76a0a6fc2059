//===- ABIWrappers.cpp - The void ** step wrappers and kiln_manifest ------===//
//
// The last pass before translation to LLVM IR. kiln-entry-abi gave each entry
// function one bare pointer per ABI buffer, in ABI order, so a wrapper only
// loads buffers[i] for each argument and calls the entry.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/Passes.h"

namespace kiln {
#define GEN_PASS_DEF_KILNABIWRAPPERS
#include "codegen/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// Runtime helpers of MLIR's own libraries; the Kiln runtime has none of them.
bool isMlirRuntimeHelper(StringRef name) {
  return name == "memrefCopy" || name.starts_with("_mlir_") ||
         name.starts_with("mgpu") || name.starts_with("printMemref");
}

struct KilnAbiWrappersPass
    : kiln::impl::KilnAbiWrappersBase<KilnAbiWrappersPass> {
  void runOnOperation() override;
};

void KilnAbiWrappersPass::runOnOperation() {
  ModuleOp module = getOperation();
  MLIRContext *ctx = &getContext();
  Location loc = module.getLoc();

  bool ok = true;
  module.walk([&](LLVM::LLVMFuncOp func) {
    if (func.isExternal() && isMlirRuntimeHelper(func.getName())) {
      func.emitError() << "generated code calls @" << func.getName()
                       << ", an MLIR runtime helper that compiled models "
                          "cannot link against";
      ok = false;
    }
  });
  if (!ok)
    return signalPassFailure();

  auto manifest = module->getAttrOfType<StringAttr>(kManifestAttrName);
  if (!manifest) {
    module.emitError() << "no " << kManifestAttrName
                       << " attribute: run kiln-entry-abi first";
    return signalPassFailure();
  }

  // Everything but the ABI becomes internal, so that LLVM inlines the entries
  // into their wrappers and the object exports only the kiln_* symbols.
  for (auto func : module.getOps<LLVM::LLVMFuncOp>())
    if (!func.isExternal())
      func.setLinkage(LLVM::Linkage::Internal);

  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto voidType = LLVM::LLVMVoidType::get(ctx);
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  for (EntryKind kind :
       {EntryKind::TrainStep, EntryKind::EvalStep, EntryKind::Predict}) {
    StringRef name = getEntryName(kind);
    std::string wrapperName = ("kiln_" + name).str();
    if (module.lookupSymbol(wrapperName)) {
      module.emitError() << "@" << wrapperName << " is already defined";
      return signalPassFailure();
    }
    auto inner = module.lookupSymbol<LLVM::LLVMFuncOp>(name);
    if (inner) {
      LLVM::LLVMFunctionType type = inner.getFunctionType();
      bool barePointers = isa<LLVM::LLVMVoidType>(type.getReturnType()) &&
                          llvm::all_of(type.getParams(), [](Type t) {
                            return isa<LLVM::LLVMPointerType>(t);
                          });
      if (!barePointers || inner.isExternal()) {
        inner.emitError() << "entry @" << name
                          << " must be defined and take only bare pointers "
                             "(convert-func-to-llvm with "
                             "use-bare-ptr-memref-call-conv)";
        return signalPassFailure();
      }
    }
    b.setInsertionPointToEnd(module.getBody());
    auto wrapper = b.create<LLVM::LLVMFuncOp>(
        loc, wrapperName, LLVM::LLVMFunctionType::get(voidType, {ptrType}));
    Block *body = wrapper.addEntryBlock(b);
    b.setInsertionPointToStart(body);
    if (inner) {
      SmallVector<Value> buffers;
      for (unsigned i = 0; i < inner.getNumArguments(); ++i) {
        Value slot = b.create<LLVM::GEPOp>(
            loc, ptrType, ptrType, body->getArgument(0),
            ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)},
            /*inbounds=*/true);
        buffers.push_back(b.create<LLVM::LoadOp>(loc, ptrType, slot));
      }
      b.create<LLVM::CallOp>(loc, inner, buffers);
      ++numWrappers;
    }
    b.create<LLVM::ReturnOp>(loc, ValueRange{});
  }

  // const char *kiln_manifest(void).
  std::string text = manifest.getValue().str();
  text.push_back('\0');
  b.setInsertionPointToEnd(module.getBody());
  auto arrayType =
      LLVM::LLVMArrayType::get(IntegerType::get(ctx, 8), text.size());
  auto global = b.create<LLVM::GlobalOp>(
      loc, arrayType, /*isConstant=*/true, LLVM::Linkage::Internal,
      "__kiln_manifest", b.getStringAttr(text));
  auto getter = b.create<LLVM::LLVMFuncOp>(
      loc, "kiln_manifest", LLVM::LLVMFunctionType::get(ptrType, {}));
  b.setInsertionPointToStart(getter.addEntryBlock(b));
  Value address = b.create<LLVM::AddressOfOp>(loc, global);
  b.create<LLVM::ReturnOp>(loc, address);

  // Kiln's attributes have no LLVM IR meaning; the manifest carries them now.
  for (NamedAttribute attr : llvm::to_vector(module->getDialectAttrs()))
    if (attr.getName().getValue().starts_with("kiln."))
      module->removeAttr(attr.getName());
  module.walk([](LLVM::LLVMFuncOp func) {
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      if (DictionaryAttr attrs = func.getArgAttrDict(i))
        for (NamedAttribute attr : llvm::to_vector(attrs.getValue()))
          if (attr.getName().getValue().starts_with("kiln."))
            func.removeArgAttr(i, attr.getName());
  });
}

} // namespace
