//===- ABIWrappers.cpp - The void ** step wrappers and kiln_manifest ------===//
//
// The last pass before translation to LLVM IR. kiln-entry-abi gave each entry
// function one bare pointer per ABI buffer, in ABI order, so a wrapper only
// loads buffers[i] for each argument and calls the entry. The wrappers are
// exported one by one (`kiln_NAME`) and as the entry table `kiln_entries()`,
// in the order of the manifest's entry records.
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

  auto entries = module->getAttrOfType<ArrayAttr>(kEntriesAttrName);
  if (!entries) {
    module.emitError() << "no " << kEntriesAttrName
                       << " attribute: run kiln-entry-abi first";
    return signalPassFailure();
  }
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto voidType = LLVM::LLVMVoidType::get(ctx);
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  SmallVector<LLVM::LLVMFuncOp> wrappers;
  for (Attribute entry : entries) {
    StringRef name = cast<StringAttr>(entry).getValue();
    std::string wrapperName = (contract::kEntrySymbolPrefix + name).str();
    if (module.lookupSymbol(wrapperName)) {
      module.emitError() << "@" << wrapperName << " is already defined";
      return signalPassFailure();
    }
    auto inner = module.lookupSymbol<LLVM::LLVMFuncOp>(name);
    if (!inner) {
      module.emitError() << "entry @" << name << " is missing";
      return signalPassFailure();
    }
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
    b.setInsertionPointToEnd(module.getBody());
    auto wrapper = b.create<LLVM::LLVMFuncOp>(
        loc, wrapperName, LLVM::LLVMFunctionType::get(voidType, {ptrType}));
    Block *body = wrapper.addEntryBlock(b);
    b.setInsertionPointToStart(body);
    SmallVector<Value> buffers;
    for (unsigned i = 0; i < inner.getNumArguments(); ++i) {
      Value slot =
          b.create<LLVM::GEPOp>(loc, ptrType, ptrType, body->getArgument(0),
                                ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)},
                                /*inbounds=*/true);
      buffers.push_back(b.create<LLVM::LoadOp>(loc, ptrType, slot));
    }
    b.create<LLVM::CallOp>(loc, inner, buffers);
    b.create<LLVM::ReturnOp>(loc, ValueRange{});
    wrappers.push_back(wrapper);
    ++numWrappers;
  }

  // const kiln_entry_fn *kiln_entries(void): the wrappers in manifest order
  // (a null pointer ends the table, so that it is never empty).
  b.setInsertionPointToEnd(module.getBody());
  auto tableType = LLVM::LLVMArrayType::get(ptrType, wrappers.size() + 1);
  auto table = b.create<LLVM::GlobalOp>(loc, tableType, /*isConstant=*/true,
                                        LLVM::Linkage::Internal,
                                        "__kiln_entries", Attribute());
  {
    Block *init = b.createBlock(&table.getInitializerRegion());
    b.setInsertionPointToStart(init);
    Value array = b.create<LLVM::UndefOp>(loc, tableType);
    for (auto [i, wrapper] : llvm::enumerate(wrappers)) {
      Value address = b.create<LLVM::AddressOfOp>(loc, wrapper);
      array = b.create<LLVM::InsertValueOp>(loc, array, address,
                                            ArrayRef<int64_t>{int64_t(i)});
    }
    Value null = b.create<LLVM::ZeroOp>(loc, ptrType);
    array = b.create<LLVM::InsertValueOp>(
        loc, array, null, ArrayRef<int64_t>{int64_t(wrappers.size())});
    b.create<LLVM::ReturnOp>(loc, array);
  }
  b.setInsertionPointToEnd(module.getBody());
  auto tableGetter = b.create<LLVM::LLVMFuncOp>(
      loc, "kiln_entries", LLVM::LLVMFunctionType::get(ptrType, {}));
  b.setInsertionPointToStart(tableGetter.addEntryBlock(b));
  b.create<LLVM::ReturnOp>(loc,
                           b.create<LLVM::AddressOfOp>(loc, table).getResult());

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
    func->removeAttr(contract::kEntryAttr);
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      if (DictionaryAttr attrs = func.getArgAttrDict(i))
        for (NamedAttribute attr : llvm::to_vector(attrs.getValue()))
          if (attr.getName().getValue().starts_with("kiln."))
            func.removeArgAttr(i, attr.getName());
  });
}

} // namespace
