//===- ObjectEmitter.cpp - LLVM dialect to an object file -----------------===//

#include "codegen/ObjectEmitter.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;

namespace kiln {

std::unique_ptr<llvm::TargetMachine> createHostTargetMachine(Location loc) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  std::string triple = llvm::sys::getDefaultTargetTriple();
  std::string error;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) {
    emitError(loc) << "no LLVM target for the host triple '" << triple
                   << "': " << error;
    return nullptr;
  }
  std::string features;
  for (const auto &feature : llvm::sys::getHostCPUFeatures()) {
    if (!features.empty())
      features += ",";
    features += (feature.second ? "+" : "-") + feature.first().str();
  }
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, llvm::sys::getHostCPUName(), features, options, llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    emitError(loc) << "cannot create a target machine for '" << triple << "'";
  return machine;
}

std::unique_ptr<llvm::Module> translateToLLVMIR(ModuleOp module,
                                                llvm::LLVMContext &llvmContext,
                                                bool optimize) {
  Location loc = module.getLoc();
  registerBuiltinDialectTranslation(*module.getContext());
  registerLLVMDialectTranslation(*module.getContext());
  // The parallel matmul loops: omp.parallel / omp.wsloop -> __kmpc_* calls.
  registerOpenMPDialectTranslation(*module.getContext());
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext, "kiln");
  if (!llvmModule) {
    emitError(loc) << "cannot translate the module to LLVM IR (is it all in "
                      "the LLVM dialect?)";
    return nullptr;
  }
  std::unique_ptr<llvm::TargetMachine> machine = createHostTargetMachine(loc);
  if (!machine)
    return nullptr;
  llvmModule->setTargetTriple(machine->getTargetTriple().getTriple());
  llvmModule->setDataLayout(machine->createDataLayout());

  std::string message;
  llvm::raw_string_ostream messageStream(message);
  if (llvm::verifyModule(*llvmModule, &messageStream)) {
    emitError(loc) << "internal error: invalid LLVM IR: " << message;
    return nullptr;
  }
  if (!optimize)
    return llvmModule;
  auto transformer =
      makeOptimizingTransformer(/*optLevel=*/3, /*sizeLevel=*/0, machine.get());
  if (llvm::Error err = transformer(llvmModule.get())) {
    emitError(loc) << "LLVM optimization failed: "
                   << llvm::toString(std::move(err));
    return nullptr;
  }
  return llvmModule;
}

LogicalResult emitObject(llvm::Module &module, llvm::raw_pwrite_stream &os,
                         bool assembly, Location loc) {
  std::unique_ptr<llvm::TargetMachine> machine = createHostTargetMachine(loc);
  if (!machine)
    return failure();
  if (module.getDataLayout() != machine->createDataLayout()) {
    module.setTargetTriple(machine->getTargetTriple().getTriple());
    module.setDataLayout(machine->createDataLayout());
  }
  llvm::legacy::PassManager pm;
  llvm::CodeGenFileType type = assembly ? llvm::CodeGenFileType::AssemblyFile
                                        : llvm::CodeGenFileType::ObjectFile;
  if (machine->addPassesToEmitFile(pm, os, nullptr, type))
    return emitError(loc) << "the host target cannot emit "
                          << (assembly ? "assembly" : "object files");
  pm.run(module);
  return success();
}

} // namespace kiln
