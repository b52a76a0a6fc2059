//===- Import.cpp - `import nn`: the libraries built into the compiler ----===//
//
// The standard library is written in Kiln (lib/*.kiln) and embedded into the
// compiler at build time, so a compiled kilnc needs no files beside it. An
// import parses the library as another buffer of the SourceMgr (its errors
// and the locations of its ops name `lib/nn.kiln`) and adds to the program
// the functions that the program does not define itself.
//
//===----------------------------------------------------------------------===//

#include "frontend/Parser.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace kiln;

namespace {

struct Library {
  llvm::StringRef name;
  llvm::StringRef text;
};

const Library kLibraries[] = {
#include "frontend/Libraries.inc"
};

} // namespace

std::unique_ptr<ast::Module> kiln::parseProgram(llvm::SourceMgr &srcMgr,
                                                DiagnosticReporter &reporter) {
  std::unique_ptr<ast::Module> program =
      parseModule(srcMgr.getMainFileID(), reporter);
  if (!program)
    return nullptr;
  llvm::StringSet<> loaded;
  // Libraries may import others; each is parsed once.
  std::vector<ast::Ident> pending = program->imports;
  while (!pending.empty()) {
    ast::Ident import = pending.back();
    pending.pop_back();
    if (!loaded.insert(import.name).second)
      continue;
    const Library *library = nullptr;
    for (const Library &l : kLibraries)
      if (l.name == import.name)
        library = &l;
    if (!library) {
      std::string known;
      for (const Library &l : kLibraries)
        known += (known.empty() ? "" : ", ") + l.name.str();
      reporter.emitError(import.loc, "unknown library '" + import.name +
                                         "'; the libraries are: " + known);
      continue;
    }
    unsigned id = srcMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBuffer(library->text,
                                         "lib/" + import.name + ".kiln"),
        import.loc);
    std::unique_ptr<ast::Module> lib = parseModule(id, reporter);
    if (!lib)
      continue;
    for (ast::ModelDecl &model : lib->models)
      reporter.emitError(model.name.loc, "a library declares functions only");
    // The file's own functions take precedence over a library's (a model
    // may define its own `dense`).
    for (ast::FnDecl &fn : lib->functions)
      if (!llvm::any_of(program->functions, [&](const ast::FnDecl &own) {
            return own.name.name == fn.name.name;
          }))
        program->functions.push_back(std::move(fn));
    llvm::append_range(pending, lib->imports);
  }
  return program;
}
