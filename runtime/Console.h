//===- Console.h - Where the runtime prints: output, diagnostics, quiet --===//
//
// The commands print through a Console rather than to stdout/stderr directly,
// so that tests can capture what they print.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CONSOLE_H
#define KILN_RUNTIME_CONSOLE_H

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace kiln::rt {

/// 1234567 -> `1,234,567`.
inline std::string groupDigits(int64_t n) {
  std::string digits = fmt::format("{}", n < 0 ? -n : n), grouped;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      grouped += ',';
    grouped += digits[i];
  }
  return n < 0 ? "-" + grouped : grouped;
}

struct Console {
  FILE *out = stdout;   ///< results and progress
  FILE *err = stderr;   ///< errors, warnings and notes
  bool quiet = false;   ///< progress, notes and summaries off
  bool warnings = true; ///< warnings on (all but one process of a job: off)

  /// Whether OUT is a terminal (progress lines are then redrawn with \r).
  bool outIsTerminal() const { return isatty(fileno(out)) == 1; }

  template <typename... Args>
  void print(fmt::format_string<Args...> format, Args &&...args) const {
    if (!quiet)
      fmt::print(out, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void note(fmt::format_string<Args...> format, Args &&...args) const {
    if (quiet)
      return;
    std::fflush(out); // keep the order of output and notes on a terminal
    fmt::print(err, "note: {}\n",
               fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void warning(fmt::format_string<Args...> format, Args &&...args) const {
    if (!warnings)
      return;
    std::fflush(out);
    fmt::print(err, "warning: {}\n",
               fmt::format(format, std::forward<Args>(args)...));
  }
};

} // namespace kiln::rt

#endif // KILN_RUNTIME_CONSOLE_H
