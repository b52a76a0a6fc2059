//===- Registration.h - The dialects and passes Kiln's tools know -*- C++
//-*-===//
//
// The single place that registers upstream dialects and passes: each upstream
// registration header is expensive to compile, so only what Kiln uses is
// listed.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TOOLS_REGISTRATION_H
#define KILN_TOOLS_REGISTRATION_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace kiln {

/// Adds the kiln dialect and every upstream dialect Kiln's pipeline produces.
void registerAllDialects(mlir::DialectRegistry &registry);

/// Registers Kiln's passes and the upstream passes its pipeline runs, so that
/// kiln-opt and kilnc's pipeline options can name them.
void registerAllPasses();

} // namespace kiln

#endif // KILN_TOOLS_REGISTRATION_H
