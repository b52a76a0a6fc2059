# lit configuration for Kiln's FileCheck tests. Files under test/lit mirror the
# source tree: frontend/ (.kiln -> IR and diagnostics), ir/, passes/, codegen/, e2e/.
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "Kiln"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".kiln"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test", "lit")
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py.in"]

config.substitutions.append(("%kiln_src", config.kiln_src_root))
config.substitutions.append(("%python", "/usr/bin/python3"))

# The sanitizers' options reach the tools and the executables they make
# (scripts/configure --sanitize).
llvm_config.with_system_environment(["HOME", "TMPDIR", "ASAN_OPTIONS",
                                     "UBSAN_OPTIONS", "LSAN_OPTIONS"])
llvm_config.use_default_substitutions()

# Helper scripts (test/e2e/*.sh) call the tools by name.
llvm_config.with_environment("PATH", config.kiln_tools_dir, append_path=True)

tool_dirs = [config.kiln_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(
    ["kilnc", "kiln-opt", "FileCheck", "not", "count", "llvm-dwarfdump"], tool_dirs)
