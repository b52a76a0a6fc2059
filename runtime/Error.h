//===- Error.h - Error values for the runtime (built without exceptions) --===//
//
// The runtime is compiled with -fno-exceptions, like the rest of Kiln: a
// function that can fail returns an Error (success, or a one-line message) or
// an Expected<T> (a value, or an Error). Messages are written without the
// leading "error: "; the command line front end adds it and picks the exit
// code.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_ERROR_H
#define KILN_RUNTIME_ERROR_H

#include <fmt/format.h>

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace kiln::rt {

/// Exit codes of the generated executable.
enum ExitCode : int {
  ExitSuccess = 0,
  ExitFailure = 1, ///< bad data, checkpoint, NaN loss, I/O errors
  ExitUsage = 2,   ///< malformed command line
};

/// Success, or a failure with a one-line message and an exit code.
class [[nodiscard]] Error {
public:
  /// A success value.
  Error() = default;
  static Error success() { return Error(); }
  static Error failure(std::string message, int exitCode = ExitFailure) {
    Error e;
    e.message_ = std::move(message);
    e.exitCode_ = exitCode;
    return e;
  }
  /// A usage error (exit code 2).
  static Error usage(std::string message) {
    return failure(std::move(message), ExitUsage);
  }
  /// A failure that process 0 of a data-parallel job reports for all, with
  /// EXITCODE (runtime/Comm.h): this process prints nothing and exits
  /// quietly.
  static Error silent(int exitCode) { return failure(std::string(), exitCode); }

  /// True for a failure (as llvm::Error).
  explicit operator bool() const { return message_.has_value(); }
  const std::string &message() const {
    assert(message_ && "message() of a success value");
    return *message_;
  }
  int exitCode() const { return exitCode_; }

  /// Prefixes the message with context: `"reading x.npy: " + message`.
  Error withContext(const std::string &context) && {
    if (message_)
      message_ = context + ": " + *message_;
    return std::move(*this);
  }

private:
  std::optional<std::string> message_;
  int exitCode_ = ExitSuccess;
};

/// Builds a failure from a fmt format string.
template <typename... Args>
Error makeError(fmt::format_string<Args...> format, Args &&...args) {
  return Error::failure(fmt::format(format, std::forward<Args>(args)...));
}

/// A value of type T, or an Error.
template <typename T> class [[nodiscard]] Expected {
public:
  Expected(T value) : value_(std::move(value)) {}
  Expected(Error error) : error_(std::move(error)) {
    assert(error_ && "Expected constructed from a success Error");
  }

  /// True when a value is present (as llvm::Expected).
  explicit operator bool() const { return value_.has_value(); }
  T &operator*() { return *value_; }
  const T &operator*() const { return *value_; }
  T *operator->() { return &*value_; }
  const T *operator->() const { return &*value_; }
  /// The error; only for a failure.
  Error takeError() {
    assert(!value_ && "takeError() of a value");
    return std::move(error_);
  }
  const Error &error() const { return error_; }

private:
  std::optional<T> value_;
  Error error_;
};

} // namespace kiln::rt

#endif // KILN_RUNTIME_ERROR_H
