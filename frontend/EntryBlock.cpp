//===- EntryBlock.cpp - Entry points beside the model's: generate, sample -===//
//
// A block written like a model body, with the model's layers, builds an entry
// point of its own that reads the model's parameters (found by name: the block
// calls the model's layers with the same names):
//
// - `generate charlm { input char: i32[1, 1] ... output scores = ... }` builds
//   @generate_step, an entry of kind `step`: its inputs and for every
//   recurrence one carry argument per carried value, which the step
//   overwrites with the state after it. The runtime's `generate` command
//   zeroes the carries, feeds the prompt one character a call and then its
//   own samples: N characters cost N steps.
// - `sample vae { z = random_normal(64, 20) ... output image = ... }` builds
//   @sample, an entry of kind `infer` without inputs: each call draws new
//   random numbers (keyed by the call and --seed) and returns a batch of
//   examples, which the runtime's `sample` command writes as an image grid
//   or lines of text.
// - `reconstruct rvae { input line: ... output decoded = ... }` builds
//   @reconstruct, an `infer` entry that the runtime's `reconstruct` command
//   runs instead of predict: a recurrent VAE's lines decoded from their
//   latents, printed beside the lines.
// - `translate translate { input source: ... input target: ... output scores
//   = ... }` builds @translate, an `infer` entry from a source sentence and
//   the target so far to the scores of each next target token, which the
//   runtime's `translate` command decodes (greedy or beam search) one token
//   a call. With cached layers (nn.kiln's cached_decoder_layer) the block is
//   a `step` entry from the last token and the outputs of an `encode` block
//   (@encode, an `infer` entry run once per batch of sentences) to the next
//   token's scores.
//
//===----------------------------------------------------------------------===//

#include "frontend/Builtins.h"

#include "runtime/Contract.h"

#include "mlir/IR/Verifier.h"

using namespace kiln;
using namespace kiln::sema;

namespace {

/// The entry point a block builds.
struct EntryBlockInfo {
  const char *entry;
  contract::EntryKind kind;
};

EntryBlockInfo info(ast::EntryBlockKind kind) {
  switch (kind) {
  case ast::EntryBlockKind::Generate:
    return {contract::kGenerateStepEntry, contract::EntryKind::Step};
  case ast::EntryBlockKind::Sample:
    return {contract::kSampleEntry, contract::EntryKind::Infer};
  case ast::EntryBlockKind::Reconstruct:
    return {contract::kReconstructEntry, contract::EntryKind::Infer};
  case ast::EntryBlockKind::Translate:
    return {contract::kTranslateEntry, contract::EntryKind::Infer};
  case ast::EntryBlockKind::Encode:
    return {contract::kEncodeEntry, contract::EntryKind::Infer};
  }
  llvm_unreachable("unknown entry block");
}

} // namespace

void Elaborator::elaborateEntryBlock(const ast::EntryDecl &decl) {
  std::string block = std::string(keyword(decl.kind)) + " block";
  if (decl.model.name != modelName) {
    error(decl.model.loc, block + " for '" + decl.model.name +
                              "', but the model is '" + modelName + "'");
    return;
  }
  // The model's inputs and outputs, by name: the step's must not reuse a
  // name with another type (the runtime binds buffers by name).
  llvm::StringMap<mlir::Type> modelBuffers;
  for (const Input &in : inputs)
    modelBuffers[in.name] = in.value.getType();
  for (const Output &out : outputs)
    modelBuffers[out.name] = out.value.getType();

  mlir::OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(moduleOp->getBody());
  mlir::Location loc = reporter.getLoc(decl.loc);
  EntryBlockInfo entry = info(decl.kind);
  auto step = builder.create<mlir::func::FuncOp>(
      loc, entry.entry, builder.getFunctionType({}, {}));
  builder.setInsertionPointToEnd(step.addEntryBlock());

  std::vector<Input> modelInputs = std::move(inputs);
  std::vector<Output> modelOutputs = std::move(outputs);
  llvm::StringMap<llvm::SMLoc> modelInputLocs = std::move(inputLocs),
                               modelOutputLocs = std::move(outputLocs);
  inputs.clear();
  outputs.clear();
  inputLocs.clear();
  outputLocs.clear();
  current = step;
  entryBlock = &decl;
  Frame frame;
  elaborateBlock(decl.body, frame);
  entryBlock = nullptr;
  current = forward;
  std::vector<Input> stepInputs = std::move(inputs);
  std::vector<Output> stepOutputs = std::move(outputs);
  inputs = std::move(modelInputs);
  outputs = std::move(modelOutputs);
  inputLocs = std::move(modelInputLocs);
  outputLocs = std::move(modelOutputLocs);
  if (reporter.hadError()) {
    step.erase();
    return;
  }
  if (stepOutputs.empty()) {
    error(decl.loc, decl.kind == ast::EntryBlockKind::Generate
                        ? "the generate block has no output; declare the "
                          "scores of the next character, e.g. 'output scores "
                          "= ...'"
                        : "the " + block +
                              " has no output; declare what it makes, e.g. "
                              "'output image = ...'");
    return;
  }
  if (decl.kind == ast::EntryBlockKind::Sample && !stepInputs.empty()) {
    reporter.emitError(stepInputs.front().loc,
                       "a sample block takes no input: it draws its own "
                       "random numbers, e.g. 'z = random_normal(64, 20)'");
    return;
  }
  auto isIds = [](const Input &in) {
    auto type = typeOf(in.value);
    return type.getElementType().isInteger(32) && type.getRank() == 2;
  };
  if (decl.kind == ast::EntryBlockKind::Translate && carries.empty() &&
      (stepInputs.size() != 2 || !llvm::all_of(stepInputs, isIds))) {
    error(decl.loc, "a translate block takes two inputs, the source and the "
                    "target so far, each i32[batch, length] of token ids (or, "
                    "with cached layers, the last token and the encode "
                    "block's outputs)");
    return;
  }
  if (decl.kind == ast::EntryBlockKind::Translate && !carries.empty() &&
      llvm::count_if(stepInputs, [&](const Input &in) {
        return isIds(in) && typeOf(in.value).getShape()[1] == 1;
      }) != 1) {
    error(decl.loc, "a cached translate block takes one i32[batch, 1] input, "
                    "the last token, beside the encode block's outputs");
    return;
  }
  if (decl.kind == ast::EntryBlockKind::Encode &&
      (stepInputs.size() != 1 || !isIds(stepInputs.front()))) {
    error(decl.loc, "an encode block takes one input, the source sentences, "
                    "i32[batch, length] of token ids");
    return;
  }
  // A translate block with cached layers is one step of a recurrence, over
  // as many target positions as its caches hold.
  if (decl.kind == ast::EntryBlockKind::Translate && !carries.empty()) {
    if (!(*moduleOp)->hasAttr(contract::kGenerateContextAttr)) {
      error(decl.loc, "a cached translate block declares the target positions "
                      "its caches hold, e.g. 'T = context(63)'");
      return;
    }
    entry.kind = contract::EntryKind::Step;
  }
  for (const Input &in : stepInputs) {
    auto it = modelBuffers.find(in.name);
    if (it != modelBuffers.end() && it->second != in.value.getType())
      reporter.emitError(in.loc, "input '" + in.name + "' of the " + block +
                                     " is " + typeStr(in.value.getType()) +
                                     ", but the model's '" + in.name + "' is " +
                                     typeStr(it->second) +
                                     "; give it another name");
  }
  for (const Output &out : stepOutputs) {
    auto it = modelBuffers.find(out.name);
    if (it != modelBuffers.end() && it->second != out.value.getType())
      error(decl.loc, "output '" + out.name + "' of the " + block + " is " +
                          typeStr(out.value.getType()) + ", but the model's '" +
                          out.name + "' is " + typeStr(it->second) +
                          "; give it another name");
  }
  if (reporter.hadError())
    return;

  // Arguments: the inputs, then the carries (added as the scans were built,
  // in between; reorder nothing: attributes name each one).
  llvm::SmallVector<mlir::Value> results;
  for (const Output &out : stepOutputs)
    results.push_back(out.value);
  for (const Carry &c : carries)
    results.push_back(c.final);
  builder.create<mlir::func::ReturnOp>(loc, results);
  step.setFunctionType(builder.getFunctionType(
      step.getBody().getArgumentTypes(), mlir::ValueRange(results).getTypes()));
  using contract::Role;
  for (const Input &in : stepInputs)
    step.setArgAttr(in.value.getArgNumber(), contract::info(Role::Input).attr,
                    builder.getStringAttr(in.name));
  for (const Carry &c : carries)
    step.setArgAttr(c.initial.getArgNumber(), contract::info(Role::Carry).attr,
                    builder.getStringAttr(c.name));
  for (auto [i, out] : llvm::enumerate(stepOutputs))
    step.setResultAttr(i, contract::info(Role::Output).attr,
                       builder.getStringAttr(out.name));
  for (auto [i, c] : llvm::enumerate(carries))
    step.setResultAttr(stepOutputs.size() + i, contract::info(Role::Carry).attr,
                       builder.getStringAttr(c.name));
  step->setAttr(contract::kEntryAttr,
                builder.getStringAttr(contract::info(entry.kind).name));
  if (failed(mlir::verify(*moduleOp)))
    mlir::emitError(loc, "internal error: kilnc built invalid IR for the ")
        << block << " of '" << modelName << "'";
}
