//===- Cli.h - The command line of a compiled model executable ----------===//
//
// `./model <command> [flags]` with the commands train, eval, predict, info and
// bench.
// runMain parses the command line, runs the command and returns the exit
// code; errors are printed as `error: <message>` (exit 1, or 2 for command-line
// mistakes).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CLI_H
#define KILN_RUNTIME_CLI_H

#include "runtime/Console.h"
#include "runtime/Model.h"

#include <cstdio>
#include <string>
#include <vector>

namespace kiln::rt {

/// Runs the executable's command line ARGS (ARGS[0] is the program name).
int runMain(const std::vector<std::string> &args, const ModelAbi &abi,
            FILE *out = stdout, FILE *err = stderr);

/// Prints the manifest in readable form (the `info` command).
void printInfo(const Manifest &manifest, FILE *out);

} // namespace kiln::rt

#endif // KILN_RUNTIME_CLI_H
