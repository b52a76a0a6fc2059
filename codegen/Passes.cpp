//===- Passes.cpp - Registration of Kiln's code generation passes ---------===//

#include "codegen/Passes.h"

namespace kiln {
namespace {
#define GEN_PASS_REGISTRATION
#include "codegen/Passes.h.inc"
} // namespace

void registerCodegenPasses() { registerKilnCodegenPasses(); }
} // namespace kiln
