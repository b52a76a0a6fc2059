//===- Parser.h - Parses .kiln source into an AST ---------------*- C++ -*-===//

#ifndef KILN_FRONTEND_PARSER_H
#define KILN_FRONTEND_PARSER_H

#include "frontend/AST.h"
#include "frontend/Diagnostics.h"

#include <memory>

namespace kiln {

/// Parses the buffer `bufferId` of the reporter's SourceMgr. Syntax errors are
/// reported through `reporter` (the parser recovers at statement and
/// declaration boundaries, so one run reports several); the returned module
/// holds everything that parsed. Never crashes or hangs, whatever the bytes.
std::unique_ptr<ast::Module> parseModule(unsigned bufferId,
                                         DiagnosticReporter &reporter);

/// Parses the main file of `srcMgr` and the libraries it imports (`import
/// nn`: the library `lib/nn.kiln` that is built into the compiler), each once,
/// as buffers of `srcMgr`: the result holds the main file's declarations and
/// the libraries' functions. Errors are reported through `reporter`.
std::unique_ptr<ast::Module> parseProgram(llvm::SourceMgr &srcMgr,
                                          DiagnosticReporter &reporter);

} // namespace kiln

#endif // KILN_FRONTEND_PARSER_H
